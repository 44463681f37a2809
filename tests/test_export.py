"""crmsim.export: the event log in the shapes pymc-marketing and lifetimes read."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crmsim
from crmsim import export
from crmsim.model import DATE_ORIGIN, EVENT_TYPES


def log(rows):
    """An event log from (customer_id, step, day, event, amount) rows, with 7-day steps."""
    df = pd.DataFrame(rows, columns=["customer_id", "step", "day", "event", "amount"])
    df["date"] = DATE_ORIGIN + pd.to_timedelta(df.pop("day"), unit="D")
    df["event"] = pd.Categorical(df["event"], categories=EVENT_TYPES)
    return df[["customer_id", "step", "date", "event", "amount"]]


RETAIL = log([
    (0, 0, 0.0, "acquisition", 0.0), (0, 0, 0.0, "purchase", 10.0),
    (0, 1, 3.2, "purchase", 20.0), (0, 1, 3.9, "purchase", 5.0),    # one day: counted once, summed
    (0, 2, 10.5, "purchase", 30.0),
    (1, 1, 5.0, "purchase", 7.0), (1, 1, 7.0, "complaint", 0.0),
    (2, 3, 20.0, "purchase", 9.0),                                  # after the observation end
    (1, 2, 14.0, "churn", 0.0),
])
END = DATE_ORIGIN + pd.Timedelta(days=14)


def strict(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


def test_rfm_by_hand():
    d = strict(export.rfm, RETAIL, observation_end=END).set_index("customer_id")
    assert list(d.columns) == ["frequency", "recency", "T", "monetary_value"]
    assert list(d.index) == [0, 1]
    assert d.loc[0].tolist() == [2, 10.0, 14.0, 27.5]     # days 0, 3 and 10; (25 + 30) / 2
    assert d.loc[1].tolist() == [0, 0.0, 9.0, 0.0]


def test_rfm_units_and_origin():
    years = strict(export.rfm, RETAIL, observation_end=END, time_scaler=365.0)
    assert years["T"].tolist() == pytest.approx([14 / 365, 9 / 365])
    hours = strict(export.rfm, RETAIL, observation_end=END, time_unit="h")
    assert hours.set_index("customer_id").loc[0, "recency"] == 10 * 24 + 12   # day 10.5, to the hour
    assert hours.set_index("customer_id").loc[0, "frequency"] == 3            # 3.2 and 3.9 differ
    moved = strict(export.rfm, RETAIL, origin="2020-03-01", observation_end="2020-03-15")
    pd.testing.assert_frame_equal(moved, strict(export.rfm, RETAIL, observation_end=END))


def test_the_observation_end_defaults_to_the_end_of_the_last_step():
    # The last step here is 3 and 7-day steps (from the churn at step 2, day 14): day 21.
    assert export.last_step_end(RETAIL) == DATE_ORIGIN + pd.Timedelta(days=21)
    assert strict(export.rfm, RETAIL)["customer_id"].tolist() == [0, 1, 2]


@pytest.fixture(scope="module")
def runs():
    base = ["market.n_people=1500", "sim.steps=26", "sim.record_events=true", "seed=6"]
    return {kind: crmsim.simulate(crmsim.load_config([*base, f"market.purchase.kind={kind}"]))
            for kind in ("contractual", "noncontractual")}


def test_rfm_of_a_run_and_of_its_events_agree(runs):
    r = runs["noncontractual"]
    assert export.purchase_kind(r.events) == "noncontractual"
    assert export.last_step_end(r.events) == DATE_ORIGIN + pd.Timedelta(days=26 * 7)
    pd.testing.assert_frame_equal(strict(export.rfm, r), strict(export.rfm, r.events))
    d = strict(export.rfm, r, time_scaler=365.0)
    assert (d["recency"] <= d["T"]).all() and (d["T"] <= 0.5).all()
    assert (d.loc[d["frequency"] == 0, "monetary_value"] == 0).all()
    assert (d.loc[d["frequency"] > 0, "monetary_value"] > 0).all()


def test_a_contractual_log_warns_that_rfm_models_do_not_apply(runs):
    r = runs["contractual"]
    assert export.purchase_kind(r.events) == "contractual"
    for source in (r, r.events):
        with pytest.warns(export.EventLogWarning, match="contractual setting"):
            export.rfm(source)
    with pytest.warns(export.EventLogWarning, match="never sees"):
        export.cohort_table(runs["noncontractual"])


def test_cohort_table_by_hand():
    ev = log([
        (0, 0, 0, "acquisition", 0), (1, 0, 0, "acquisition", 0), (2, 0, 0, "acquisition", 0),
        (0, 4, 28, "churn", 0), (1, 2, 14, "termination", 0),
        (3, 3, 21, "acquisition", 0), (3, 5, 35, "churn", 0), (3, 8, 56, "win_back", 0),
        (4, 9, 63, "acquisition", 0), (2, 10, 70, "purchase", 5.0),
    ])
    t = strict(export.cohort_table, ev).set_index("customer_id")
    assert list(t.columns) == ["recency", "T", "cohort"]
    assert t.loc[[0, 1, 2, 3], ["recency", "T"]].values.tolist() == [[4, 10], [2, 10], [10, 10], [2, 7]]
    assert t.loc[3, "cohort"] == "2026-01-22" and t.loc[0, "cohort"] == "2026-01-01"
    assert 4 not in t.index                                  # observed for one step only
    kept = strict(export.cohort_table, ev, include_terminated=False).set_index("customer_id")
    assert kept.loc[1, "recency"] == 10


def test_cohort_table_of_a_contractual_run_matches_its_counts():
    r = crmsim.simulate(crmsim.load_config(["+validation=cohort", "market.n_people=3000",
                                            "sim.steps=40", "sim.record_events=true"]))
    t = strict(export.cohort_table, r)
    assert len(t) == 3000 and (t["T"] == 40).all() and t["cohort"].nunique() == 1
    assert ((t["recency"] >= 1) & (t["recency"] <= t["T"])).all()
    assert (t["recency"] < t["T"]).sum() + (r.events["step"].eq(40) & r.events["event"].eq("churn")).sum() \
        == r.summary["churned_total"]
    assert (t["recency"] == t["T"]).sum() - (r.events["step"].eq(40) & r.events["event"].eq("churn")).sum() \
        == r.summary["active_final"]


def test_bad_input_is_a_clear_error(runs):
    no_events = crmsim.simulate(crmsim.load_config(["market.n_people=300", "sim.steps=2"]))
    with pytest.raises(ValueError, match="sim.record_events=true"):
        export.rfm(no_events)
    with pytest.raises(ValueError, match="amount"):
        export.rfm(RETAIL.drop(columns="amount"))


def test_rfm_matches_pymc_marketing():
    clv_utils = pytest.importorskip("pymc_marketing.clv.utils")
    theirs = clv_utils.rfm_summary(RETAIL[RETAIL["event"] == "purchase"], "customer_id", "date",
                                   "amount", observation_period_end=END, time_unit="D")
    ours = strict(export.rfm, RETAIL, observation_end=END)
    pd.testing.assert_frame_equal(ours.reset_index(drop=True), theirs[ours.columns].reset_index(drop=True),
                                  check_dtype=False)


def test_rfm_matches_lifetimes():
    lt_utils = pytest.importorskip("lifetimes.utils")
    theirs = lt_utils.summary_data_from_transaction_data(
        RETAIL[RETAIL["event"] == "purchase"], "customer_id", "date", "amount",
        observation_period_end=END, freq="D")
    ours = strict(export.rfm, RETAIL, observation_end=END).set_index("customer_id")
    np.testing.assert_allclose(ours.to_numpy(float), theirs[ours.columns].to_numpy(float))


def test_the_pymc_marketing_example_runs():
    # Only where the optional extra is installed (pip install -e ".[clv]").
    pytest.importorskip("pymc_marketing")
    script = Path(__file__).resolve().parents[1] / "experiments" / "clv_pymc_marketing.py"
    out = subprocess.run([sys.executable, str(script), "--n-people", "2000"], capture_output=True,
                         text=True, timeout=900, check=True).stdout
    assert "BG/NBD" in out and "shifted-beta-geometric" in out
