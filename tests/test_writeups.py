"""The measures the experiments' write-ups compare are declared KPIs (crmsim/metrics.py), and
the write-up script builds its tables from a sweep's report."""

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

import crmsim
from crmsim.units import step_years

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import writeups  # noqa: E402


def test_writeup_measures_agree_with_the_time_series(small):
    r = crmsim.simulate(small("policy=transactional"))     # 30 weekly steps: within a year
    s, ts = r.summary, r.timeseries[r.timeseries["step"] > 0]
    dt = step_years(r.config.sim.period_days)
    # Within the first year, year-1 churn is the whole run's: the same life-table estimate.
    assert s["churn_year1"] == pytest.approx(1 - s["retention_rate_annual"], rel=1e-12)
    assert s["spend_per_customer_year"] * ts["n_active"].sum() * dt == pytest.approx(ts["sales"].sum())
    customers = int(r.customers["ever_customer"].sum())
    assert s["profit_per_customer"] * customers == pytest.approx(s["profit_total"])
    assert s["trapped_total"] == ts["trapped"].sum()
    assert s["reputation_final"] == ts["reputation"].iloc[-1]
    assert all(math.isfinite(s[k]) for k in ("churn_year1", "npv_per_customer"))


def test_every_writeup_names_declared_kpis_and_existing_experiments():
    from crmsim.api import group_options

    assert set(writeups.WRITEUPS) | {"sensitivity", "compare_robust"} == set(group_options("experiment"))
    for spec in writeups.WRITEUPS.values():
        assert set(spec.measures) <= set(crmsim.metrics.SUMMARY), spec.title


def test_the_measures_table_reads_report_csv_rows():
    table = pd.DataFrame({"variant": ["a", "a", "b", "b"], "kpi": ["npv_total", "churn_year1"] * 2,
                          "mean": [10.0, 0.2, 12.0, 0.1], "diff": [0.0, 0.0, 2.0, -0.1],
                          "diff_low": [0.0, 0.0, 1.0, -0.15], "diff_high": [0.0, 0.0, 3.0, -0.05]})
    md = writeups.measures_table(table, ["npv_total", "churn_year1"], "a")
    lines = md.splitlines()
    assert lines[0].startswith("| variant | NPV total | Δ NPV total [95% CI] | churn in year 1")
    assert "| a | 10 | — | 20.0% | — |" == lines[2]
    assert lines[3] == "| b | 12 | +2.00 [+1.00, +3.00] | 10.0% | -10.00 pp [-15.00, -5.00] |"
