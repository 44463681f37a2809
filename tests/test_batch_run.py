"""``CRMModel`` built the way Mesa builds models: keyword parameters, ``rng``, ``running``, and
Mesa's own ``mesa.batch_run`` on whichever Mesa line this Python resolves (3.3 on 3.11, 3.5 on
3.12)."""

from __future__ import annotations

import inspect
import warnings

import mesa
import pandas as pd
import pytest

import crmsim
from crmsim.viz.page import DashboardModel

STEPS = 4
PARAMS = {"policy": ["transactional", "qci"], "market.n_people": 200, "sim.steps": STEPS}
# Mesa 3.5's batch_run takes the replications' seeds as rng=[...]; Mesa 3.3's has no rng
# argument, and the same seeds go in as a parameter, which it passes to the model as a keyword.
RNG_ARGUMENT = "rng" in inspect.signature(mesa.batch_run).parameters


def batch_run(model_cls, parameters, rng=None, **kw) -> pd.DataFrame:
    kw = dict(max_steps=50, number_processes=1, data_collection_period=1, display_progress=False,
              **kw)
    if rng is not None:
        if RNG_ARGUMENT:
            kw["rng"] = rng
        else:
            parameters = {**parameters, "rng": rng}
    with warnings.catch_warnings():
        # Mesa 3.5 deprecates iterations= (tested below because Mesa 3.3 has nothing else)
        warnings.simplefilter("ignore", DeprecationWarning)
        return pd.DataFrame(mesa.batch_run(model_cls, parameters=parameters, **kw))


def run_alone(rng: int, **params) -> pd.DataFrame:
    model = crmsim.CRMModel(**params, rng=rng)
    while model.running:
        model.step()
    return model.timeseries()


def test_keyword_parameters_are_config_keys():
    model = crmsim.CRMModel(**{"policy": "qci", "market.n_people": 300}, rng=3)
    assert (model.cfg.policy.name, model.cfg.market.n_people, model.cfg.seed) == ("qci", 300, 3)
    same = crmsim.CRMModel(["policy=qci", "market.n_people=300", "seed=3"])
    assert same.cfg == model.cfg
    on_a_config = crmsim.CRMModel(crmsim.load_config(["market.n_people=300"]), policy="qci",
                                  **{"firm.quality": 0.4}, seed=3)
    assert on_a_config.cfg.policy == model.cfg.policy and on_a_config.cfg.firm.quality == 0.4


def test_bad_keywords_are_config_errors():
    with pytest.raises(crmsim.ConfigError, match=r"'firm.quality': 1.5"):
        crmsim.CRMModel(**{"firm.quality": 1.5})
    with pytest.raises(crmsim.ConfigError, match="'rng'.*integer >= 0"):
        crmsim.CRMModel(rng=-1)
    with pytest.raises(crmsim.ConfigError, match="'rng'.*pass one of them"):
        crmsim.CRMModel(rng=1, seed=2)


def test_seeds_follow_mesa():
    cfg = crmsim.load_config(["market.n_people=100"])
    # a config carries its seed; rng overrides it; None draws a fresh one (and records it)
    assert crmsim.CRMModel(cfg).cfg.seed == cfg.seed
    assert crmsim.CRMModel(cfg, rng=7).cfg.seed == 7
    drawn = {crmsim.CRMModel(cfg, rng=None).cfg.seed for _ in range(3)}
    assert len(drawn) == 3
    # keywords alone, without a seed: a fresh one, as mesa.Model() does
    assert len({crmsim.CRMModel(**{"market.n_people": 100}).cfg.seed for _ in range(3)}) == 3


def test_running_stops_after_sim_steps():
    model = crmsim.CRMModel(**{"market.n_people": 100, "sim.steps": 3}, rng=0)
    steps = 0
    while model.running and steps < 100:
        model.step()
        steps += 1
    assert model.steps == 3 and len(model.timeseries()) == 4


def test_mesa_batch_run_replications_differ_and_repeat_exactly():
    df = batch_run(crmsim.CRMModel, PARAMS, rng=[0, 1, 2])
    runs = df.groupby("RunId")
    assert runs.ngroups == 2 * 3
    # Every run stopped at sim.steps although max_steps allowed 50. Mesa 3.5 reports steps
    # 0..sim.steps; Mesa 3.3's batch_run reports 0..steps-1 (it leaves out the last collection).
    last = STEPS if RNG_ARGUMENT else STEPS - 1
    assert (runs.size() == last + 1).all()
    assert (runs["step"].max() == last).all() and (df["Step"] == df["step"]).all()
    # replications differ ...
    final = df[df["step"] == last].set_index(["policy", "rng"])
    for policy in PARAMS["policy"]:
        assert final.loc[policy, "revenue"].nunique() == 3
    # ... and each is the run its seed gives on its own, to the last bit
    for (policy, rng), run in df.groupby(["policy", "rng"]):
        alone = run_alone(rng, **{**PARAMS, "policy": policy}).iloc[: last + 1]
        got = run.sort_values("step")[alone.columns].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, alone, check_dtype=False, check_exact=True)


def test_mesa_batch_run_iterations_without_seeds_differ():
    df = batch_run(crmsim.CRMModel, {**PARAMS, "policy": "qci"}, iterations=3)
    totals = df.groupby("RunId")["revenue"].sum()
    assert len(totals) == 3 and totals.nunique() == 3


def test_dashboard_model_seed_sweep_keeps_its_seeds():
    df = batch_run(DashboardModel, {"base": [["sim.steps=2"]], "n_people": 100, "seed": [5, 6]})
    assert sorted(df["seed"].unique()) == [5, 6]
    model = DashboardModel(base=["sim.steps=2"], n_people=100, seed=6)
    assert model.cfg.seed == 6 and model.config.seed == 6
    for seed, run in df.groupby("seed"):
        alone = DashboardModel(base=["sim.steps=2"], n_people=100, seed=seed)
        while alone.running:
            alone.step()
        want = alone.timeseries().iloc[: len(run)]
        pd.testing.assert_frame_equal(run.sort_values("step")[want.columns].reset_index(drop=True),
                                      want, check_dtype=False, check_exact=True)
