"""Control groups and the levers table (crmsim/levers.py): held-out people get nothing and cost
nothing, the estimate agrees with what the lever really did, and levers.parquet round-trips."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import crmsim
from crmsim import layout
from crmsim.errors import ConfigError
from crmsim.levers import COLUMNS, HELD, TREATED
from crmsim.model import CRMModel
from crmsim.policies.base import Policy, split
from crmsim.validation import validate

SMALL = ["market.n_people=1500", "sim.steps=8", "policy.tactics.loyalty.enabled=true",
         "policy.tactics.loyalty.share=0.3"]


def test_held_out_people_get_no_effect_and_cost_nothing():
    cfg = validate(crmsim.load_config([*SMALL, "policy.holdout_share=0.3",
                                       "market.initial_customer_share=0.8"]))
    model = CRMModel(cfg)
    view = model._observe(1, np.random.default_rng(1))
    budget = 50.0        # pays for fewer people than are eligible: the list is not exhausted
    actions = model.policy.decide(view, budget, 1)
    loyalty = model.policy.tactics["loyalty"]
    arm = loyalty.control.arm
    treated, held = np.flatnonzero(arm == TREATED), np.flatnonzero(arm == HELD)
    assert held.size > 0 and treated.size > 0
    commitment = actions.person["commitment"]
    assert np.all(commitment[held] == 0) and np.all(commitment[treated] > 0)
    # Only the treated are billed. The list is drawn up for 1/(1 - 0.3) times the people the
    # money buys and its held-out members are left out, so the treated are as many as the money
    # buys on average: Binomial(listed, 0.7); 3 standard deviations of that is the tolerance.
    unit = loyalty.unit_cost(view)
    affordable = int(split(budget, model.policy.shares)["loyalty"] // unit)
    listed = treated.size + held.size
    assert model.policy.spent["loyalty"] == treated.size * unit
    assert treated.size <= affordable
    assert abs(treated.size - 0.7 * listed) <= 3 * np.sqrt(listed * 0.3 * 0.7)
    assert abs(listed - affordable / 0.7) <= 1


def test_holdout_share_zero_runs_as_without_control_groups(monkeypatch):
    """With holdout_share=0 the control-group machinery changes nothing: the run is bit for bit
    the one made with it switched off altogether."""
    overrides = [*SMALL, "policy=qci", "policy.holdout_share=0"]
    with_machinery = crmsim.simulate(crmsim.load_config(overrides))
    monkeypatch.setattr(Policy, "setup_controls", lambda self, *a: None)
    monkeypatch.setattr(CRMModel, "levers_table", lambda self: None)
    without = crmsim.simulate(crmsim.load_config(overrides))
    pd.testing.assert_frame_equal(with_machinery.timeseries, without.timeseries, check_exact=True)
    pd.testing.assert_frame_equal(with_machinery.customers, without.customers, check_exact=True)
    assert not with_machinery.levers["control_group"].any()


def test_levers_parquet_round_trips(tmp_path):
    result = crmsim.simulate(crmsim.load_config([*SMALL, "policy=qci"]))
    assert list(result.levers.columns) == list(COLUMNS)
    assert result.levers.loc[result.levers["lever"] == "ads", "control_group"].item() is False
    assert result.levers["held_out"].sum() > 0
    result.save(tmp_path / "run")
    back = pd.read_parquet(tmp_path / "run" / layout.LEVERS)
    pd.testing.assert_frame_equal(back, result.levers, check_exact=True)


def test_control_group_estimate_agrees_with_the_paired_run_difference():
    """free_sample (a clear effect: each sample converts about 6% of prospects) on a small market
    without ads, with and without the lever, on the same seeds (common random numbers). The
    paired difference in customers at the end (active_final) is what the lever did; the control
    group's estimate is its retention_effect (treated - control share of customers at the end)
    times the treated arm. holdout_share=0.3 gives a control arm of ~500 people, so the
    interval is narrow enough for the lever's effect to stand out from zero.

    Tolerance: the estimate's standard error pooled over the seeds, sqrt(sum SE_s^2) / 3, with
    SE_s from each seed's 95% Welch interval (half-width / t quantile); the paired run
    difference must lie within 1.96 of those of the pooled estimate. Word-of-mouth and imitation
    spill over from the converted to others (the run difference includes them, the control
    group cannot see them); over half a year they stay well inside that tolerance.
    """
    base = ["market.n_people=2000", "sim.steps=13", "sim.period_days=14",
            "policy.tactics.ads.enabled=false", "policy.holdout_share=0.3"]
    lever = ["policy.tactics.free_sample.enabled=true", "policy.tactics.free_sample.share=1.0"]
    runs, estimates, variances = [], [], []
    for seed in range(3):
        off = crmsim.simulate(crmsim.load_config([*base, f"seed={seed}"]))
        on = crmsim.simulate(crmsim.load_config([*base, *lever, f"seed={seed}"]))
        row = on.levers.set_index("lever").loc["free_sample"]
        n_t, n_c = row["treated"], row["held_out"]
        t_q = stats.t.ppf(0.975, min(n_t, n_c) - 1)   # Welch df lies between this and n_t+n_c-2
        se = (row["retention_high"] - row["retention_low"]) / 2 / t_q * n_t
        runs.append(on.summary["active_final"] - off.summary["active_final"])
        estimates.append(row["retention_effect"] * n_t)
        variances.append(se ** 2)
    estimate, run = np.mean(estimates), np.mean(runs)
    tolerance = 1.96 * np.sqrt(np.sum(variances)) / len(runs)
    assert estimate - tolerance > 0, "the lever's effect should stand out from zero"
    assert abs(run - estimate) <= tolerance, (run, estimate, tolerance)


def test_a_holdout_share_outside_zero_to_one_is_refused():
    with pytest.raises(ConfigError, match="policy.holdout_share"):
        validate(crmsim.load_config(["policy.holdout_share=1.5"]))


def test_closed_loops_learn_from_incremental_not_gross_returns():
    """Customers a lever reaches who buy as much as its control group earn it nothing, however
    much they buy (Ascarza 2018); what the treated buy beyond the control is its return."""
    from types import SimpleNamespace

    from crmsim.levers import ControlGroup, Records
    from crmsim.policies.base import ReturnTracker

    n, margin = 1000, 0.3
    records = Records(discount_rate=0.0)

    def view(step, revenue):
        return SimpleNamespace(n=n, step=step, dt=7 / 365, day=7.0 * step, revenue=revenue,
                               value_est=np.full(n, 1000.0), margin=margin,
                               status=np.ones(n, dtype=np.int8))

    start = np.zeros(n)
    records.observe(view(1, start))
    group = ControlGroup("loyalty", 0.5, np.random.SeedSequence(4), records)
    treated, held = group.split(np.arange(n), n)
    group.join(treated, held, view(1, start))
    tracker = ReturnTracker({"retention": ["loyalty"]}, {"retention": 1.0}, rate=0.5, floor=0.1)
    for lift, expected in ((0.0, 0.0), (50.0, 50.0 * treated.size * margin / 100.0)):
        revenue = np.full(n, 100.0)
        revenue[treated] += lift
        now = view(14, revenue)
        records.observe(now)
        tracker.record("retention", treated, 100.0, incremental=True)
        tracker.review(now, {"revenue": start, "day": 7.0, "status": now.status,
                             "penetration": np.zeros(n)}, 13 * 7 / 365, {"loyalty": group})
        assert tracker.last_returns["retention"] == pytest.approx(expected)
