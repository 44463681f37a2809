"""Optimisation (hparams_search, Optuna) and sensitivity designs (SALib), run for real on tiny markets."""

import json

import numpy as np
import pandas as pd
import pytest

from crmsim.analysis import sensitivity
from crmsim.cli import main

TINY = ["market.n_people=300", "sim.steps=4"]


def test_an_optuna_search_of_3_trials_is_stored_and_resumable(tmp_path, capsys):
    import optuna

    def search(trials: int) -> int:
        # launcher=serial: the trials run in this process (the launcher is tested elsewhere).
        return main(["run", "-m", "-q", "--no-report", "hparams_search=value_chain", "launcher=serial",
                     f"hydra.sweeper.n_trials={trials}", *TINY])

    assert search(3) == 0
    study_dir = tmp_path / "results" / "optimise_value_chain"
    (sweep,) = [d for d in study_dir.iterdir() if d.is_dir()]
    jobs = {d.name: json.loads((d / "summary.json").read_text()) for d in sweep.iterdir()
            if (d / "summary.json").exists()}
    assert sorted(jobs) == ["0", "1", "2"] and all(j["status"] == "ok" for j in jobs.values())
    tuned = {"policy.params.ssc_share", "policy.tactics.value_add.share", "policy.tactics.ads.share"}
    assert all(tuned <= set(j["params"]) for j in jobs.values())
    storage = f"sqlite:///{study_dir / 'optuna.db'}"
    study = optuna.load_study(study_name="optimise_value_chain", storage=storage)
    values = sorted(t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert values == pytest.approx(sorted(j["kpis"]["npv_total"] for j in jobs.values()))
    assert f"best trial: {max(values):,.6g}" in capsys.readouterr().out
    # Rerunning continues the same study from its SQLite storage.
    assert search(2) == 0
    study = optuna.load_study(study_name="optimise_value_chain", storage=storage)
    assert len(study.trials) == 5


def test_morris_ranks_the_parameter_that_matters_first():
    pytest.importorskip("SALib", reason="needs the sensitivity extra")
    design = {"method": "morris", "trajectories": 6, "levels": 4, "seed": 0,
              "bounds": {"a": [0.0, 1.0], "b": [0.0, 1.0], "c": [10.0, 20.0]}}
    x = sensitivity.sample(design)
    assert x.shape == (6 * 4, 3)
    # A known response: only a and c matter, c's effect over its range (10 per 10) beats a's (3).
    y = 3 * x[:, 0] + 1.0 * x[:, 2]
    runs = pd.DataFrame({"study.point": np.arange(len(y)), "npv_profit": y})
    ranking = sensitivity.analyze(design, runs, "npv_profit")
    assert list(ranking["parameter"]) == ["c", "a", "b"]
    # Elementary effects of a linear response are exact: the slope times the parameter's range
    # (SALib measures steps in units of the range), whatever the trajectories.
    assert ranking.set_index("parameter")["mu_star"].to_dict() == pytest.approx(
        {"c": 1.0 * 10, "a": 3.0 * 1, "b": 0.0}, abs=1e-9)


def test_a_sensitivity_design_runs_as_a_sweep_and_is_ranked(tmp_path):
    pytest.importorskip("SALib", reason="needs the sensitivity extra")
    # Two parameters, two trajectories: 6 runs, in this process one after another.
    code = main(["run", "-m", "-q", "launcher=serial", "experiment=sensitivity", *TINY,
                 "study.design.trajectories=2", "~study.design.bounds",
                 "+study.design.bounds={market.churn.alpha:[0.5,2.0],market.competitor_quality:[0.4,0.7]}"])
    assert code == 0
    (sweep,) = list((tmp_path / "results" / "sensitivity").iterdir())
    jobs = sorted(p.name for p in sweep.iterdir() if (p / "summary.json").exists())
    assert jobs == [f"study.point={i}" for i in range(6)]
    doc = json.loads((sweep / "study.point=3" / "summary.json").read_text())
    point = sensitivity.sample(doc["study"]["design"])[3]
    assert doc["params"]["market.churn.alpha"] == pytest.approx(point[0])
    ranking = pd.read_csv(sweep / "report" / "report.csv")
    assert set(ranking["parameter"]) == {"market.churn.alpha", "market.competitor_quality"}
    assert (sweep / "report" / "sensitivity.png").exists()


def test_a_bad_design_is_bad_input(tmp_path, capsys):
    pytest.importorskip("SALib", reason="needs the sensitivity extra")
    assert main(["run", "-m", "experiment=sensitivity", "study.design.method=latin"]) == 2
    assert "study.design.method" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
