"""The crmsim command: help, a run that writes results, bad input that writes nothing."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from crmsim.cli import main


def run_cli(*args, env_root: Path):
    import os

    env = {**os.environ, "CRMSIM_RESULTS": str(env_root)}
    return subprocess.run([sys.executable, "-m", "crmsim.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_help_lists_groups_and_options(capsys):
    try:
        main(["run", "--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    for text in ("policy", "transactional", "network", "small_world", "complete",
                 "market.n_people", "wom.tell_negative"):
        assert text in out


def test_run_writes_a_complete_run_directory(tmp_path):
    proc = run_cli("run", "-q", "market.n_people=800", "sim.steps=10", env_root=tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    run = runs[0]
    assert f"results: {run}" in proc.stdout
    assert {p.name for p in run.iterdir()} == {
        "summary.json", "config.yaml", "timeseries.parquet", "customers.parquet", "levers.parquet"}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["kpis"]["n_people"] == 800
    assert len(pd.read_parquet(run / "timeseries.parquet")) == 11
    assert "npv_profit" in proc.stdout


def test_bad_input_exits_2_and_writes_nothing(tmp_path):
    proc = run_cli("run", "market.n_people=-3", env_root=tmp_path)
    assert proc.returncode == 2
    assert "market.n_people" in proc.stderr and "-3" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 4   # one paragraph, no traceback
    assert "Traceback" not in proc.stderr
    assert not tmp_path.joinpath("runs").exists()


def test_unwritable_results_root_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = run_cli("run", "market.n_people=300", "sim.steps=2", env_root=blocker / "sub")
    assert proc.returncode == 2
    assert "CRMSIM_RESULTS" in proc.stderr
