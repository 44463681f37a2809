"""``crmsim calibrate``: known truth recovered, bad files refused, the shipped example end to end.

Recovery: crmsim generates a cohort table (``+validation=cohort``, exactly sBG), a retail log
(``+validation=bgnbd``, exactly BG/NBD with Gamma-Gamma spend), a subscription log (spend
lognormal with the 80/20 share) and a launch (``+validation=bass``) with parameters chosen here;
``crmsim.calibrate`` reads them back from the files a firm would have. Each test uses one fixed
seed and checks that every generating value lies within 3.29 reported standard errors of the
estimate on the log scale (two-sided 0.1% for a correct model; the intervals written to
calibration.json are the 95% ones, whose coverage over many repeats is measured by
experiments/calibrate_coverage.py and stated in docs/calibrate.md), and that the standard errors
are small enough for this to mean something.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats

import crmsim
from crmsim.calibrate import calibrate, overrides_of, write
from crmsim.calibrate.data import cohort_table_of
from crmsim.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
Z = stats.norm.ppf(1 - 0.001 / 2)          # 3.29
MONTH = 365 / 12


def within(estimate, truth: float) -> bool:
    """|log estimate - log truth| < 3.29 standard errors of log estimate (delta method)."""
    se_log = estimate.se / estimate.value
    return abs(np.log(estimate.value) - np.log(truth)) < Z * se_log and estimate.low < estimate.high


def monthly(preset: str, months: int, *overrides: str):
    """A run of a limit-case preset in steps of a month, with its event log."""
    return crmsim.simulate(crmsim.load_config([
        f"+validation={preset}", f"sim.period_days={MONTH!r}", f"sim.steps={months}",
        "sim.record_events=true", *overrides]))


def test_sbg_recovers_annual_churn_from_monthly_cohorts(tmp_path):
    alpha, beta = 0.9, 2.0
    run = monthly("cohort", 36, "market.n_people=4000", f"market.churn.alpha={alpha}",
                  f"market.churn.beta={beta}", "seed=21")
    path = tmp_path / "cohorts.csv"
    cohort_table_of(run).to_csv(path, index=False)
    cal = calibrate(path, period="month")
    a, b = cal.estimates["market.churn.alpha"], cal.estimates["market.churn.beta"]
    assert a.se / a.value < 0.25 and b.se / b.value < 0.3, (a, b)
    assert within(a, alpha) and within(b, beta), (a, b)
    # The same data read in weeks would be another market: the period is not a formality.
    weeks = calibrate(path, period="week").estimates["market.churn.beta"]
    assert not within(weeks, beta)


def _log(result, path: Path, event_rows: bool = False) -> Path:
    ev = result.events
    if not event_rows:
        ev = ev.loc[ev["event"] == "purchase", ["customer_id", "date", "amount"]]
    ev.to_parquet(path, index=False)
    return path


def test_bgnbd_and_gamma_gamma_recovered_from_a_retail_log(tmp_path):
    truth = {"r": 2.0, "alpha": 0.4, "a": 1.0, "b": 9.0, "p": 5.0, "q": 4.0, "gamma": 60.0}
    run = crmsim.simulate(crmsim.load_config([
        "+validation=bgnbd", "market.n_people=3000", "seed=22",
        *(f"market.purchase.{k}={v}" for k, v in truth.items())]))
    # crmsim's own events table (all event types and a step column) as a firm would export it
    cal = calibrate(_log(run, tmp_path / "log.parquet", event_rows=True))
    for k, v in truth.items():
        e = cal.estimates[f"market.purchase.{k}"]
        assert e.se / e.value < 0.6, (k, e)
        assert within(e, v), (k, v, e)
    assert "Bass" in " ".join(cal.stage_a.notes)     # everyone was a customer at the start
    # Holdout: BG/NBD on the first year predicts the second year's purchases; the total's
    # sampling sd for independent customers is at most sqrt(sum y_i^2); 4 of them.
    h = cal.stage_a.holdout
    assert abs(h["predicted"] - h["actual"]) < 4 * h["actual_sd"], h


def test_spend_mean_and_top20_share_from_a_subscription_log(tmp_path):
    # The cohort preset leaves spend's satisfaction effect on; off here, so payments are the
    # pure lognormal spend (DESIGN §3, the 80/20 limit case).
    run = monthly("cohort", 24, "market.n_people=2000", "market.spend.mean=600",
                  "market.spend.top20_share=0.6", "market.churn.alpha=1", "market.churn.beta=6",
                  "market.spend.satisfaction_effect=0",
                  "seed=23")
    cal = calibrate(_log(run, tmp_path / "subs.parquet"), setting="contractual", period="month")
    mean, top = cal.estimates["market.spend.mean"], cal.estimates["market.spend.top20_share"]
    # Percentile-bootstrap intervals: the truth within the interval widened to 3.29 / 1.96.
    for e, v in ((mean, 600.0), (top, 0.6)):
        half = (e.high - e.low) / 2 * Z / 1.96
        assert abs(e.value - v) < half, (e, v)
    # the log's cohorts give the churn back as well (sBG on payments)
    assert within(cal.estimates["market.churn.beta"], 6.0)
    # Holdout in time: sBG on the first 12 months predicts who still pays in months 12-23. Each
    # month's prediction within 3.29 of its standard deviation (binomial plus the fit's, delta
    # method), which stays below 4% of the count, so the check can fail.
    h = cal.stage_a.holdout
    assert h["kind"] == "subscription" and h["fit_periods"] == 12, h
    t, obs, pred, sd = (np.array(c) for c in zip(*h["rows"], strict=True))
    assert list(t) == list(range(12, 24))
    assert np.all(np.abs(pred - obs) < Z * sd) and np.all(sd < 0.04 * obs), h["rows"]
    report = tmp_path / "report"
    write(cal, report)
    assert "still paying" in (report / "report.md").read_text()


def test_a_payment_on_a_period_start_belongs_to_that_period():
    # crmsim's monthly steps fall exactly on the period starts; the division's rounding must
    # not move one into the period before (which would leave a month with nobody paying)
    from crmsim.calibrate.data import period_index

    start = pd.Timestamp("2026-01-31 10:00")
    dates = pd.Series([start + pd.Timedelta(days=MONTH * k) for k in range(48)])
    assert list(period_index(dates, start, MONTH)) == list(range(48))


def test_bass_p_and_q_recovered_from_a_launch(tmp_path):
    p, q = 0.08, 0.9
    run = monthly("bass", 72, "market.n_people=3000", f"adoption.innovation={p}",
                  f"adoption.imitation={q}", "seed=24")
    cal = calibrate(_log(run, tmp_path / "launch.parquet"), setting="contractual", period="month")
    ep, eq = cal.estimates["adoption.innovation"], cal.estimates["adoption.imitation"]
    assert within(ep, p) and within(eq, q), (ep, eq)
    m = cal.stage_a.fits["bass"].estimates["market_potential"]
    assert within(m, 3000), m


# ---- bad input: exit 2, a message naming the column or value, nothing written ----------------

def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BAD = {
    "missing column": ("c.csv", "cohort,period\nA,0\n", "active"),
    "non-monotone cohort": ("c.csv", "cohort,period,active\nA,0,100\nA,1,90\nA,2,95\n", "95"),
    "period gap": ("c.csv", "cohort,period,active\nA,0,100\nA,2,90\n", "period"),
    "unparseable date": ("l.csv", "customer_id,date,amount\n1,2024-01-03,5\n2,yesterday,5\n", "yesterday"),
    "negative amount": ("l.csv", "customer_id,date,amount\n1,2024-01-03,5\n2,2024-01-04,-3\n", "-3"),
    "empty file": ("l.csv", "", "no rows"),
    "unknown format": ("l.xlsx", "customer_id,date,amount\n", ".xlsx"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_file_is_refused_with_its_column_and_value(tmp_path, capsys, case):
    name, text, shown = BAD[case]
    data = _write(tmp_path / name, text)
    out = tmp_path / "out"
    assert main(["calibrate", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "crmsim: error:" in err and shown in err, err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("args, shown", [
    (["--period", "fortnight"], "fortnight"), (["--setting", "retail"], "retail"),
    (["--setting", "noncontractual"], "noncontractual"), (["market.churn.alfa=1"], "market.churn.alfa"),
    (["--stage-b", "--posterior", "mcmc"], "mcmc"),
    (["--stage-b", "--posterior", "sbi", "--simulations", "3"], "--simulations"),
    (["--stage-b", "--workers", "0"], "--workers"),
])
def test_bad_arguments_are_refused(tmp_path, capsys, args, shown):
    out = tmp_path / "out"
    assert main(["calibrate", str(EXAMPLES / "cohorts.csv"), *args, "--out", str(out)]) == 2
    assert shown in capsys.readouterr().err
    assert not out.exists()


def test_overrides_and_options_mix_in_any_order(tmp_path, capsys):
    from crmsim.cli import _parse, build_parser

    args = _parse(build_parser(), ["calibrate", "d.csv", "a=1", "--out", "X", "b=2", "--stage-b",
                                   "--period", "week", "c.d=3"])
    assert (args.data, args.overrides, args.out, args.period, args.stage_b) == \
        ("d.csv", ["a=1", "b=2", "c.d=3"], "X", "week", True)
    with pytest.raises(SystemExit):          # an unknown option is still refused
        _parse(build_parser(), ["calibrate", "d.csv", "--out", "X", "a=1", "--bogus"])
    with pytest.raises(SystemExit):          # and other commands keep argparse's rules
        _parse(build_parser(), ["report", "DIR", "--no-plots", "extra"])
    # an override after the options reaches the config check (exit 2, the key named)
    out = tmp_path / "out"
    assert main(["calibrate", str(EXAMPLES / "cohorts.csv"), "--out", str(out), "market.churn.alfa=1"]) == 2
    assert "market.churn.alfa" in capsys.readouterr().err and not out.exists()


def test_a_folder_that_holds_something_is_never_written(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["calibrate", str(EXAMPLES / "cohorts.csv"), "--out", str(out)]) == 2
    assert "--out" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


# ---- the shipped example end to end -----------------------------------------------------------

def test_the_shipped_examples_are_small():
    assert {p.name for p in EXAMPLES.iterdir()} >= {"cohorts.csv", "transactions.parquet"}
    assert sum(p.stat().st_size for p in EXAMPLES.iterdir()) < 200_000


@pytest.mark.parametrize("name, keys", [
    ("cohorts.csv", {"market.churn.alpha", "market.churn.beta"}),
    ("transactions.parquet", {f"market.purchase.{k}" for k in ("r", "alpha", "a", "b", "p", "q", "gamma")}),
])
def test_calibrate_the_shipped_examples_and_run_the_calibrated_market(tmp_path, capsys, name, keys):
    out = tmp_path / "cal"
    assert main(["calibrate", str(EXAMPLES / name), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {"market.yaml", "calibration.json", "report.md"}
    doc = json.loads((out / "calibration.json").read_text())
    assert set(doc) == keys
    for entry in doc.values():
        assert set(entry) == {"value", "low", "high", "method"}
        assert 0 < entry["low"] < entry["value"] < entry["high"]
    report = (out / "report.md").read_text()
    for section in ("## Estimates", "## Holdout check", "## Identifiability", "## Provenance", "sha256"):
        assert section in report
    # The calibrated market composes: its values are in the config crmsim runs ...
    cfg = crmsim.load_config(overrides_of(out / "market.yaml"))
    for key, entry in doc.items():
        assert OmegaConf.select(cfg, key) == pytest.approx(entry["value"])
    # ... and `crmsim run --market` runs it (command-line overrides still win)
    runs = tmp_path / "runs"
    assert main(["run", "--market", str(out / "market.yaml"), "market.n_people=200", "sim.steps=3",
                 "--out", str(runs), "-q"]) == 0
    saved = OmegaConf.load(next(runs.rglob("config.yaml")))
    assert saved.market.n_people == 200
    for key, entry in doc.items():
        assert OmegaConf.select(saved, key) == pytest.approx(entry["value"])


def test_a_bad_market_file_is_refused(tmp_path, capsys):
    bad = _write(tmp_path / "market.yaml", "firm:\n  quality: 2\n")
    assert main(["run", "--market", str(bad), "--out", str(tmp_path / "runs")]) == 2
    assert "--market" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_small_stage_b_refits_base_churn_by_simulation(tmp_path):
    # Two candidates of a few hundred people on one seed: that stage B runs end to end, keeps
    # its candidates in the searched range and reports its method (its accuracy is not tested
    # here; docs/calibrate.md gives the full-size results).
    cal = calibrate(EXAMPLES / "cohorts.csv", stage_b=True, trials=2, seeds=1, n_start=150)
    a = cal.stage_a.estimates()
    for key in ("market.churn.alpha", "market.churn.beta"):
        e = cal.estimates[key]
        assert "simulated method of moments" in e.method
        assert a[key].value / 4 <= e.value <= a[key].value * 4
        # an interval over the candidates near the best, or none with two candidates
        assert (np.isnan(e.low) and np.isnan(e.high)) or e.low <= e.value <= e.high
    assert len(cal.stage_b.history) == 2 and np.isfinite(cal.stage_b.distance)
    # The report names how many moments the distance sums over (one per cohort period).
    from crmsim import layout
    from crmsim.calibrate import report

    report.write(cal, tmp_path)
    text = (tmp_path / layout.CALIBRATION_REPORT).read_text()
    assert cal.stage_b.moments > 0 and f"over {cal.stage_b.moments} moments" in text


# ---- stage B's optional posterior by simulation-based inference ------------------------------

def test_the_sbi_posterior_without_its_extra_names_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sbi", None)     # as if the calibrate-sbi extra were missing
    monkeypatch.setitem(sys.modules, "sbi.inference", None)
    out = tmp_path / "out"
    args = ["calibrate", str(EXAMPLES / "cohorts.csv"), "--stage-b", "--posterior", "sbi", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "crmsim: error:" in err and 'pip install "crmsim[calibrate-sbi]"' in err, err
    assert not out.exists()
    # and --posterior belongs to stage B
    assert main(["calibrate", str(EXAMPLES / "cohorts.csv"), "--posterior", "sbi", "--out", str(out)]) == 2
    assert "--stage-b" in capsys.readouterr().err
    assert not out.exists()


def test_a_small_sbi_posterior_of_base_churn(tmp_path):
    # Ten draws of the prior, a few hundred people on one seed: that the posterior runs end
    # to end, its quantiles become the estimates (2.5 <= 50 <= 97.5%, inside the prior) and the
    # report shows it; its accuracy at this budget is not tested (docs/calibrate.md measures it).
    pytest.importorskip("sbi")
    cal = calibrate(EXAMPLES / "cohorts.csv", stage_b=True, posterior="sbi", simulations=10,
                    seeds=1, n_start=150)
    a = cal.stage_a.estimates()
    for key in ("market.churn.alpha", "market.churn.beta"):
        e = cal.estimates[key]
        assert e.method == "sbi-npe"
        assert a[key].value / 4 <= e.low <= e.value <= e.high <= a[key].value * 4, (key, e)
    assert cal.stage_b.samples.shape == (4000, 2)
    out = write(cal, tmp_path / "cal")
    report = (out / "report.md").read_text()
    assert "## Stage B posterior" in report and (out / "posterior.png").is_file()
    assert json.loads((out / "calibration.json").read_text())["market.churn.beta"]["method"] == "sbi-npe"
    assert not (tmp_path / "sbi-logs").exists() and not Path("sbi-logs").exists()
