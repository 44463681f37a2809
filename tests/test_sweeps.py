"""Sweeps through Hydra's multirun: layout, summaries, report numbers, failures, resume, launchers.

Markets are tiny (300 people, a few steps): these tests check the machinery, not the model.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crmsim import api
from crmsim.cli import main

TINY = ["market.n_people=300", "sim.steps=4"]


def crmsim_cli(*args, root: Path, cwd: Path, timeout: int = 300):
    env = {**os.environ, "CRMSIM_RESULTS": str(root)}
    return subprocess.run([sys.executable, "-m", "crmsim.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)


def only_sweep(root: Path, study: str = "runs") -> Path:
    sweeps = [d for d in (root / study).iterdir() if d.is_dir()]
    assert len(sweeps) == 1, sweeps
    return sweeps[0]


def summaries(sweep: Path) -> dict[str, dict]:
    return {d.name: json.loads((d / "summary.json").read_text())
            for d in sweep.iterdir() if (d / "summary.json").exists()}


def test_a_2x2_sweep_lands_in_its_layout_and_the_report_recomputes_from_the_summaries(tmp_path, capsys):
    root = tmp_path / "results"
    proc = crmsim_cli("run", "-m", "-q", "--no-report", *TINY, "firm.training=0.1,0.9", "seed=0,1",
                      root=root, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    sweep = only_sweep(root)
    # Hydra's own default directories never appear; the jobs are named by what varies.
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()
    jobs = summaries(sweep)
    assert set(jobs) == {f"firm.training={t},seed={s}" for t in (0.1, 0.9) for s in (0, 1)}
    for name, doc in jobs.items():
        assert doc["status"] == "ok"
        assert doc["params"] == {"market.n_people": 300, "sim.steps": 4,
                                 "firm.training": float(name.split(",")[0].split("=")[1]),
                                 "seed": int(name[-1])}
        assert doc["kpis"]["n_people"] == 300 and doc["config_hash"]
        assert not (sweep / name / ".hydra").exists()
        assert {"timeseries.parquet", "config.yaml"} <= {p.name for p in (sweep / name).iterdir()}

    assert not (sweep / "report").exists()
    assert main(["report", str(sweep), "--baseline", "firm.training=0.1"]) == 0
    out = capsys.readouterr().out
    assert "NPV profit" in out and "baseline" in out and "report.md" in out
    out = sweep / "report"
    assert {"runs.parquet", "report.csv", "report.md", "timeseries.png", "differences.png"} <= {
        p.name for p in out.iterdir()}

    runs = pd.read_parquet(out / "runs.parquet").set_index("job")
    assert len(runs) == 4 and set(runs["status"]) == {"ok"}
    for name, doc in jobs.items():
        for kpi, value in doc["kpis"].items():
            assert runs.loc[name, kpi] == pytest.approx(value, rel=1e-12)

    # The paired difference and its 95% t interval, recomputed from the summaries alone.
    table = pd.read_csv(out / "report.csv")
    for kpi in ("npv_profit", "retention_rate_annual", "revenue_total", "churned_total"):
        base = np.array([jobs[f"firm.training=0.1,seed={s}"]["kpis"][kpi] for s in (0, 1)])
        high = np.array([jobs[f"firm.training=0.9,seed={s}"]["kpis"][kpi] for s in (0, 1)])
        d = high - base
        half = stats.t.ppf(0.975, 1) * d.std(ddof=1) / math.sqrt(2)
        row = table[(table["kpi"] == kpi) & (table["variant"] == 0.9)].iloc[0]
        assert row["mean"] == pytest.approx(high.mean(), rel=1e-9, abs=1e-9)
        assert row["diff"] == pytest.approx(d.mean(), rel=1e-9, abs=1e-9)
        assert row["diff_low"] == pytest.approx(d.mean() - half, rel=1e-9, abs=1e-9)
        assert row["diff_high"] == pytest.approx(d.mean() + half, rel=1e-9, abs=1e-9)
        base_row = table[(table["kpi"] == kpi) & (table["variant"] == 0.1)].iloc[0]
        assert base_row["mean"] == pytest.approx(base.mean(), rel=1e-9, abs=1e-9)


def test_a_bad_value_anywhere_in_a_sweep_stops_it_before_anything_is_written(tmp_path):
    root = tmp_path / "results"
    proc = crmsim_cli("run", "-m", *TINY, "wom.viral_prob=0.1,1.5", "seed=0,1", root=root, cwd=tmp_path)
    assert proc.returncode == 2
    assert "wom.viral_prob" in proc.stderr and "1.5" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not root.exists()


def test_resume_reruns_only_the_job_whose_summary_was_deleted(tmp_path, capsys):
    # launcher=serial: in this process, one job after another (resuming does not depend on it).
    assert main(["run", "-m", "-q", "--no-report", "launcher=serial", *TINY, "seed=0,1,2"]) == 0
    root = tmp_path / "results"
    sweep = only_sweep(root)
    before = summaries(sweep)
    (sweep / "seed=1" / "summary.json").unlink()
    capsys.readouterr()
    assert main(["run", "-m", "--no-report", "--resume", str(sweep)]) == 0
    assert "2 jobs already done, 1 to run" in capsys.readouterr().out
    after = summaries(sweep)
    for kept in ("seed=0", "seed=2"):
        assert after[kept] == before[kept]               # not rerun: written once, at the same time
    assert after["seed=1"]["saved_at"] != before["seed=1"]["saved_at"]
    assert after["seed=1"]["kpis"] == before["seed=1"]["kpis"]   # same config and seed, same run
    assert len(list((root / "runs").iterdir())) == 1              # resumed in place
    # Resuming with other settings would change the sweep's plan: refused, nothing touched.
    assert main(["run", "-m", "--resume", str(sweep), "market.n_people=300", "sim.steps=5",
                 "seed=0,1,2"]) == 2
    assert "A resumed sweep finishes exactly its own jobs" in " ".join(capsys.readouterr().err.split())
    assert summaries(sweep) == after
    # Sweeping another config into the same directory would overwrite finished runs: refused.
    assert main(["run", "-m", f"hydra.sweep.dir={sweep}", "market.n_people=300", "sim.steps=5",
                 "seed=0,1,2"]) == 2
    assert "finished run of another config" in " ".join(capsys.readouterr().err.split())
    assert summaries(sweep) == after


def test_a_failing_job_is_recorded_and_the_others_finish(tmp_path, monkeypatch, capsys):
    real = api.simulate

    def flaky(cfg, progress=False):
        if cfg.seed == 1:
            raise RuntimeError("the model broke on seed 1")
        return real(cfg, progress)

    monkeypatch.setattr(api, "simulate", flaky)
    # launcher=serial runs the jobs in this process, where the patch applies.
    code = main(["run", "-m", "-q", "launcher=serial", *TINY, "seed=0,1,2"])
    assert code == 1
    sweep = only_sweep(tmp_path / "results")
    jobs = summaries(sweep)
    assert {k: v["status"] for k, v in jobs.items()} == {"seed=0": "ok", "seed=1": "failed", "seed=2": "ok"}
    assert "the model broke on seed 1" in jobs["seed=1"]["error"]
    assert "RuntimeError" in jobs["seed=1"]["traceback"]
    assert jobs["seed=1"]["params"]["seed"] == 1
    err = capsys.readouterr().err
    assert "seed=1" in err and "the model broke on seed 1" in err and "--resume" in err
    runs = pd.read_parquet(sweep / "report" / "runs.parquet")
    assert sorted(runs["status"]) == ["failed", "ok", "ok"]


def test_a_submitit_local_sweep(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the cluster extra")
    root = tmp_path / "results"
    proc = crmsim_cli("run", "-m", "-q", "--no-report", "launcher=submitit_local", *TINY, "seed=0,1",
                      root=root, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    sweep = only_sweep(root)
    jobs = summaries(sweep)
    assert {k: v["status"] for k, v in jobs.items()} == {"seed=0": "ok", "seed=1": "ok"}
    assert (sweep / ".submitit").is_dir()          # submitit's own logs, hidden from reports
    assert json.loads((sweep / "sweep.json").read_text())["launcher"] == "LocalLauncher"


def test_run_help_lists_launchers_experiments_and_searches(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for text in ("--multirun", "--resume", "launcher", "submitit_slurm", "experiment",
                 "hparams_search"):
        assert text in out
    for group in ("experiment", "launcher", "policy", "hparams_search"):   # discovered, all shown
        assert api.group_options(group)
        for option in api.group_options(group):
            assert option in out, (group, option)
