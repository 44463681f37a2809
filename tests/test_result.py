"""Results: contents, atomic saving, never overwriting, the event log."""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet
import pytest
from omegaconf import OmegaConf

import crmsim


def test_save_writes_everything_and_refuses_to_overwrite(small, tmp_path):
    res = crmsim.simulate(small("sim.steps=5"))
    target = res.save(tmp_path / "run")
    assert sorted(p.name for p in target.iterdir()) == [
        "config.yaml", "customers.parquet", "levers.parquet", "summary.json", "timeseries.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(target / "timeseries.parquet"), res.timeseries)
    saved = json.loads((target / "summary.json").read_text())
    assert saved["kpis"] == pytest.approx(res.summary)
    cfg = OmegaConf.load(target / "config.yaml")
    assert cfg.firm.crm_budget == pytest.approx(7.8 * 1500)    # resolved, not an interpolation
    # The saved config reproduces the run.
    again = crmsim.simulate(cfg)
    pd.testing.assert_frame_equal(again.timeseries, res.timeseries)
    with pytest.raises(FileExistsError):
        res.save(target)


def test_a_failed_save_leaves_nothing(small, tmp_path, monkeypatch):
    res = crmsim.simulate(small("sim.steps=3"))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pyarrow.parquet, "write_table", boom)
    with pytest.raises(OSError):
        res.save(tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_event_log_is_enough_to_fit_clv_models(small):
    res = crmsim.simulate(small("sim.record_events=true", "sim.steps=12"))
    ev = res.events
    assert set(ev.columns) == {"customer_id", "step", "date", "event", "amount"}
    purchases = ev[ev["event"] == "purchase"]
    assert purchases["amount"].sum() == pytest.approx(res.summary["revenue_total"])
    assert (ev["event"] == "churn").sum() == res.summary["churned_total"]
    assert (ev["event"] == "acquisition").sum() == (
        res.summary["acquired_total"] + res.timeseries["n_active"].iloc[0])
    assert ev["date"].is_monotonic_increasing
    assert np.array_equal(np.sort(ev["step"].unique()), np.arange(0, 13))


def test_customers_table_has_one_row_per_person(small):
    res = crmsim.simulate(small("sim.steps=4"))
    assert len(res.customers) == 1500
    assert res.customers["customer_id"].is_unique
    assert set(res.customers["status"]) <= {"prospect", "active", "lapsed", "terminated"}
