"""``crmsim.stacked``: replicates of one config stepped as one array axis give each replicate
exactly the numbers of a run on its own (time series, levers table, every person's state),
whichever policy, lever, network or market, and also on the steps finished replicate by
replicate; ``run_stacked`` gives the Results ``run_checked`` gives."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import crmsim
from crmsim import replicates, stacked, validation
from crmsim.errors import ConfigError
from crmsim.model import CRMModel
from crmsim.running import checked, run_checked, run_stacked

SMALL = ["market.n_people=300", "sim.steps=30"]
SEEDS = [4, 0, 7]

CASES = {
    "default": [],
    **{p: [f"policy={p}"] for p in ("idic", "value_chain", "qci", "payne_frow", "gartner")},
    "promotion": ["policy=qci", "+lever=promotion"],        # a pantry, bumps and dips
    "switching_cost": ["policy=payne_frow", "+lever=switching_cost"],   # contracts, the trapped
    "open_market": ["policy=gartner", "market.growth=0.3"],   # entrants on every block
    "weak_ties": ["network=scale_free", "network.weak_degree=3", "+lever=loyalty"],
    "fractional_telling": ["network=random", "wom.tell_positive=2.5"],   # the general route
    "monthly": ["sim=monthly", "sim.steps=12", "policy=idic", "+lever=exit_penalty"],
    "no_contagion": ["market.churn.contagion=0", "+lever=value_add"],
    "customers": ["sim.record_customers=true"],
}


def typed(*overrides: str):
    return checked(crmsim.load_config([*SMALL, *overrides]))[0]


def alone(cfg) -> CRMModel:
    model = CRMModel(cfg)
    for _ in range(cfg.sim.steps):
        model.step()
    return model


def together(cfg, seeds) -> stacked.StackedModel:
    model = stacked.StackedModel([validation.reseeded(cfg, s) for s in seeds])
    for _ in range(cfg.sim.steps):
        model.step()
    model.finish()
    return model


def assert_same_run(a: CRMModel, b: CRMModel) -> None:
    pd.testing.assert_frame_equal(a.timeseries(), b.timeseries(), check_exact=True)
    pd.testing.assert_frame_equal(a.levers_table(), b.levers_table(), check_exact=True)
    for f in fields(a.population):
        x, y = getattr(a.population, f.name), getattr(b.population, f.name)
        if x is None:
            assert y is None
        else:
            np.testing.assert_array_equal(x, y, err_msg=f.name, strict=True)
    assert (a.firm.quality, a.firm.training, a.firm.reputation) == \
        (b.firm.quality, b.firm.training, b.firm.reputation)
    np.testing.assert_array_equal(a.firm.knowledge_sd, b.firm.knowledge_sd, strict=True)
    assert a.firm.capabilities.level == b.firm.capabilities.level


@pytest.mark.parametrize("case", CASES)
def test_each_replicate_is_the_run_on_its_own(case):
    cfg = typed(*CASES[case])
    assert stacked.stackable(cfg)
    model = together(cfg, SEEDS)
    for seed, replicate in zip(SEEDS, model.replicates, strict=True):
        assert replicate.cfg.seed == seed
        assert_same_run(replicate, alone(validation.reseeded(cfg, seed)))


def test_steps_finished_replicate_by_replicate(monkeypatch):
    """When the replicates' policies allocate different effects, the step is finished by each
    replicate on its own (forced here every other step): the same numbers, and the stacked
    arrays carry on from them."""
    merge, calls = stacked._merge, []

    def sometimes(per_rep, n):
        calls.append(len(calls) % 2)
        return merge(per_rep, n) if calls[-1] else None

    monkeypatch.setattr(stacked, "_merge", sometimes)
    cfg = typed("policy=payne_frow", "+lever=promotion", "market.growth=0.2")
    model = together(cfg, SEEDS)
    assert sum(calls) == cfg.sim.steps // 2 and len(calls) == cfg.sim.steps
    for seed, replicate in zip(SEEDS, model.replicates, strict=True):
        assert_same_run(replicate, alone(validation.reseeded(cfg, seed)))


def test_an_effect_some_replicates_allocate_is_not_merged():
    a, b = crmsim.actions.Actions(3), crmsim.actions.Actions(3)
    a.effect("churn_cut")[1] = 0.5
    assert stacked._merge([a, b], 6) is None
    b.effect("churn_cut")
    merged = stacked._merge([a, b], 6)
    np.testing.assert_array_equal(merged.person["churn_cut"], [0, 0.5, 0, 0, 0, 0])
    b.person["churn_cut"] = np.zeros(3)          # float64 beside float32: not merged
    assert stacked._merge([a, b], 6) is None


def test_run_stacked_gives_run_checkeds_results():
    cfg = typed("policy=idic", "sim.record_customers=true")
    configs = [validation.reseeded(cfg, s) for s in SEEDS]
    resolved = [{"seed": s} for s in SEEDS]
    for one, two in zip(run_stacked(configs, resolved),
                        [run_checked(c, r) for c, r in zip(configs, resolved, strict=True)],
                        strict=True):
        assert one.summary == two.summary and one.resolved == two.resolved
        for table in ("timeseries", "levers", "customers"):
            pd.testing.assert_frame_equal(getattr(one, table), getattr(two, table), check_exact=True)
        assert one.meta["timing"]["simulation_cpu_s"] > 0


@pytest.mark.parametrize("overrides", [["market.purchase.kind=noncontractual"],
                                       ["sim.record_events=true"], ["network=complete"]])
def test_what_is_not_stacked(overrides):
    """What sums over a whole market or keeps a log per run is not stacked: the replicate
    runner runs each seed on its own."""
    cfg = typed(*overrides)
    assert not stacked.stackable(cfg)
    assert replicates._groups((cfg, None, None), [1, 2, 3]) == [[1], [2], [3]]


def test_replicates_step_together_up_to_a_number_of_people():
    cfg = typed()
    size = replicates.STACK_PEOPLE // cfg.market.n_people
    seeds = list(range(size + 2))
    assert replicates._groups((cfg, None, None), seeds) == [seeds[:size], seeds[size:]]
    big = typed(f"market.n_people={replicates.STACK_PEOPLE + 1}")
    assert replicates._groups((big, None, None), [1, 2]) == [[1], [2]]


def test_configs_must_be_replicates_of_one_stackable_config():
    cfg = typed()
    with pytest.raises(ConfigError, match="differ only in their seed"):
        stacked.StackedModel([cfg, validation.reseeded(typed("policy=idic"), 1)])
    with pytest.raises(ConfigError, match="configs"):
        stacked.StackedModel([])
    with pytest.raises(ConfigError, match="stackable"):
        stacked.StackedModel([typed("network=complete")])


def test_stacked_network_is_block_diagonal():
    nets = [alone(validation.reseeded(typed("network.weak_degree=2"), s)).network for s in (1, 2)]
    both = stacked.stack_networks(nets)
    for layer in ("strong", "weak"):
        expected = sp.block_diag([getattr(net, layer) for net in nets], format="csr")
        got = getattr(both, layer)
        assert got.indices.dtype == np.int32 and (got != expected).nnz == 0
    np.testing.assert_array_equal(both.degree, np.concatenate([n.degree for n in nets]))
