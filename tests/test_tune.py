"""Tuned comparisons (experiment=compare_tuned) and the search spaces of the frameworks."""

import json

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from crmsim import tune
from crmsim.analysis import report as reports
from crmsim.cli import main
from crmsim.errors import ConfigError
from crmsim.policies import POLICIES


@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_policy_has_a_search_space_of_its_own_keys(policy):
    space = tune.search_space(policy)
    # Keys of the composed config, hand-set values inside their ranges (trial 0 runs them).
    assert tune.space_problems(policy) == []
    assert all(k.startswith(("policy.params.", "policy.tactics.")) for k in space)
    # Only the baseline, whose one tactic buys the whole budget, may have nothing to tune.
    assert space or policy == "transactional"


def test_search_spaces_read_hydras_sweep_syntax():
    dists, fixed = tune.distributions([
        "a=interval(0.0, 0.5)", "b=int(interval(30, 365))", "c=tag(log, interval(0.01, 1.0))",
        "d=choice(x, y)", "e=range(1, 4)", "market.n_people=300"])
    assert dists == {"a": FloatDistribution(0.0, 0.5), "b": IntDistribution(30, 365),
                     "c": FloatDistribution(0.01, 1.0, log=True),
                     "d": CategoricalDistribution(["x", "y"]), "e": IntDistribution(1, 3)}
    assert fixed == ["market.n_people=300"]
    with pytest.raises(ConfigError, match="hydra.sweeper.params"):
        tune.distributions(["a=interval(0.0"])


def test_training_and_held_out_seeds_must_differ(tmp_path, capsys):
    code = main(["run", "-m", "experiment=compare_tuned", "hydra.sweeper.train_seeds=[0,1]",
                 "hydra.sweeper.test_seeds=[1,2]"])
    assert code == 2
    assert "hydra.sweeper.test_seeds" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_a_tiny_compare_tuned_tunes_on_training_seeds_and_judges_on_held_out_ones(tmp_path):
    train, test = [0], [5, 6]
    # The report is built below, without its plots (they are tested with every report).
    code = main(["run", "-m", "-q", "--no-report", "experiment=compare_tuned", "launcher=serial",
                 "market.n_people=300", "sim.steps=4", "hydra.sweeper.n_trials=2",
                 f"hydra.sweeper.train_seeds={train}", f"hydra.sweeper.test_seeds={test}",
                 "hydra.sweeper.policies=[transactional,idic]"])
    assert code == 0
    (sweep,) = (tmp_path / "results" / "compare_tuned").iterdir()
    out = reports.build(sweep, plots=False).terminal
    record = json.loads((sweep / "tuned.json").read_text())
    assert record["train_seeds"] == train and record["test_seeds"] == test

    # The runs of each phase used only that phase's seeds.
    def seeds_below(part):
        return {json.loads(p.read_text())["seed"] for p in (sweep / part).rglob("summary.json")}
    assert seeds_below("train") == set(train) and seeds_below("test") == set(test)

    # Two trials of IDIC's space, the first its hand-set values; the tuned values are the best.
    idic = record["policies"]["idic"]
    study = optuna.load_study(study_name="compare_tuned.idic", storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert len(study.trials) == idic["trials"] == 2
    assert study.trials[0].params == idic["hand_set"]
    assert idic["tuned"] == study.best_params and idic["train"]["tuned"] == study.best_value
    # What each framework ended with is reported, next to its hand-set value.
    report = (sweep / "report" / "report.md").read_text()
    for key, value in idic["tuned"].items():
        line = next(li for li in report.splitlines() if f"| idic | {key} |" in li)
        assert f"{value:,.4g}" in line and f"{idic['hand_set'][key]:,.4g}" in line
    assert "What each framework ended with" in out

    # The verdict: paired differences on the held-out seeds only, recomputed from their runs.
    def npv(path):
        return json.loads((sweep / path / "summary.json").read_text())["kpis"]["npv_total"]
    table = pd.read_csv(sweep / "report" / "report.csv")
    for tuning in ("hand_set", "tuned"):
        base = [npv(r) for r in record["policies"]["transactional"]["runs"][tuning]]
        mine = [npv(r) for r in idic["runs"][tuning]]
        row = table[(table["stratum"] == f"tuning={tuning}") & (table["variant"] == "idic")
                    & (table["kpi"] == "npv_total")].iloc[0]
        assert row["n"] == len(test)
        assert row["diff"] == pytest.approx(np.mean(np.subtract(mine, base)), rel=1e-9)


def test_an_interrupted_comparison_resumes_to_the_same_number_of_trials(tmp_path):
    # The ask/tell loop with a stand-in for the launcher (no simulation): a job's value is
    # read from its overrides, and the second batch is interrupted.
    from omegaconf import OmegaConf

    sweeper = OmegaConf.create({
        "policies": ["transactional", "idic"], "n_trials": 3, "n_jobs": 2, "direction": "maximize",
        "train_seeds": [0], "test_seeds": [5], "storage": f"sqlite:///{tmp_path / 'optuna.db'}",
        "sampler": {"_target_": "optuna.samplers.RandomSampler", "seed": 0}})
    s = tune.settings(sweeper, OmegaConf.create({"baseline": None, "objective": "npv_total"}), "t")
    batches = []

    def launch(jobs, interrupt_at=None):
        batches.append(jobs)
        if len(batches) == interrupt_at:
            raise KeyboardInterrupt
        share = [float(o.partition("=")[2]) for job in jobs for o in job
                 if o.startswith("policy.params.target_share=")]
        return share or [0.0] * len(jobs)

    with pytest.raises(KeyboardInterrupt):
        tune.run_comparison(s, [], lambda jobs: launch(jobs, interrupt_at=2), tmp_path)
    assert not (tmp_path / "tuned.json").exists()
    record = tune.run_comparison(s, [], launch, tmp_path)
    study = optuna.load_study(study_name="t.idic", storage=s.storage)
    states = [t.state.name for t in study.trials]
    # Trials 0-1 ran, trial 2 was interrupted (closed as failed, not counted), trial 3 replaced it.
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"] and tune.finished(study) == 3
    assert record["policies"]["idic"]["tuned"]["policy.params.target_share"] == max(
        t.params["policy.params.target_share"] for t in study.trials if t.state.name == "COMPLETE")
    assert record["policies"]["transactional"]["runs"]["tuned"] == ["test/transactional/hand_set/seed=5"]
