"""The open market (``market.growth``): who enters when, the status invariant, and nothing
changed when the market is closed.

The invariant (``crmsim/population.py``): at every step prospect + active + lapsed +
terminated + outside = everyone simulated (market.n_people plus the entrants over the run),
``n_outside`` never rises, and ``entered`` is exactly its fall. Everything here is counted, not
sampled: entry times are deterministic (the j-th entrant at j / (growth x n_people) years), so
the timing checks are exact bounds, not statistical tolerances.

A closed market (growth 0) was checked bit for bit against the code before the open market: the
digests of ``tests/test_determinism.py`` (time series over the columns that existed before, the
customer table, the events and the summary) of every policy, every network kind, the four
``+validation`` presets, the non-contractual setting and 30-day steps were all unchanged. Here
``test_a_growth_too_small_to_bring_anyone_is_a_closed_market`` keeps that property checked.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import crmsim  # noqa: E402
from crmsim.errors import ConfigError  # noqa: E402
from crmsim.network import KINDS  # noqa: E402
from crmsim.policies import POLICIES  # noqa: E402
from crmsim.population import OUTSIDE, PROSPECT, STATUS_NAMES, entrant_count  # noqa: E402

STOCKS = ["n_prospect", "n_active", "n_lapsed", "n_terminated", "n_outside"]
N, STEPS, GROWTH = 600, 52, 0.25        # 150 entrants a year, about 3 a week


def config(*overrides: str):
    return crmsim.load_config([f"market.n_people={N}", f"sim.steps={STEPS}",
                               f"market.growth={GROWTH}", *overrides])


def check_invariant(ts: pd.DataFrame, n_total: int) -> None:
    """The documented invariant, and the flows that move the prospects."""
    assert (ts[STOCKS].sum(axis=1) == n_total).all()
    outside = ts["n_outside"].to_numpy()
    assert (np.diff(outside) <= 0).all()
    entered = ts["entered"].to_numpy()
    assert entered[0] == 0
    np.testing.assert_array_equal(entered[1:], -np.diff(outside))
    # Prospects move only by entering and adopting (only customers can be terminated).
    np.testing.assert_array_equal(np.diff(ts["n_prospect"].to_numpy()),
                                  entered[1:] - ts["acquired"].to_numpy()[1:])


@pytest.mark.parametrize("overrides", [
    *([f"policy={p}"] for p in sorted(POLICIES)),
    *([f"network={k}"] for k in KINDS if k != "edgelist"),
    ["market.purchase.kind=noncontractual"],
    ["sim=monthly", "sim.steps=12"],
    ["policy.termination.rules=[serial_complainers,late_payers,unprofitable]",
     "policy.termination.method=price_increase"],
], ids=lambda o: " ".join(o))
def test_status_counts_add_up_every_step(overrides):
    cfg = config("sim.record_events=true", *overrides)
    res = crmsim.simulate(cfg)
    ts, c = res.timeseries, res.config
    years = c.sim.steps * c.sim.period_days / 365
    n_total = N + entrant_count(GROWTH, N, years)
    assert n_total > N
    check_invariant(ts, n_total)
    # Everyone allocated has entered by the end of the run, and is in the customer table.
    assert ts["n_outside"].iloc[0] == n_total - N and ts["n_outside"].iloc[-1] == 0
    assert res.summary["n_people"] == n_total == len(res.customers)
    # The entrants' first event, if any, comes after they entered.
    entry = res.customers["entry_time"].to_numpy()
    ev = res.events
    first = ev.groupby("customer_id")["step"].min()
    dt = c.sim.period_days / 365
    assert (first.to_numpy() * dt >= entry[first.index] - dt / 2 - 1e-9).all()


def test_people_outside_the_market_are_only_heard_from_the_outside():
    """Outside the market nobody adopts, is contacted, served or counted in the means; word of
    mouth reaches them. Checked step by step on a model driven by hand."""
    cfg = config("policy=value_chain")
    model = crmsim.CRMModel(cfg)
    pop = model.population
    heard = False
    for _ in range(STEPS):
        model.step()
        out = pop.status == OUTSIDE
        # The people in the market are the first ones (entrants are allocated in entry order).
        assert not out[:model.in_market].any() and out[model.in_market:].all()
        assert not pop.ever_customer[out].any()
        for column in ("tenure", "satisfaction", "commitment", "revenue", "complaints",
                       "customization", "penetration", "switching_cost"):
            assert not getattr(pop, column)[out].any(), column
        heard |= bool(pop.sentiment[out].any())
        assert model.row["sentiment_mean"] == pop.sentiment[:model.in_market].mean(
            dtype=np.float64)
    assert heard, "word of mouth should reach someone not yet in the market"


@pytest.mark.parametrize("growth", [0.02, 0.25, 1.0])
def test_entrants_per_year_agree_at_weekly_and_monthly_steps(growth):
    """1260 days is 180 weeks and 42 months: the same horizon at both step lengths. By the step
    nearest each whole year the number entered is growth x n_people x year to within half a
    step's entrants (an entrant enters at the step nearest its time) plus one (the count is
    whole); over the whole horizon the two agree exactly."""
    rate = growth * N
    totals = {}
    for days, steps in ((7, 180), (30, 42)):
        ts = crmsim.simulate(crmsim.load_config([
            f"market.n_people={N}", f"sim.steps={steps}", f"sim.period_days={days}",
            f"market.growth={growth}", "sim.record_customers=false"])).timeseries
        dt = days / 365
        cum = ts["entered"].cumsum().to_numpy()
        for year in (1, 2, 3):
            k = round(year / dt)
            assert abs(cum[k] - rate * k * dt) <= rate * dt / 2 + 1, (days, year, cum[k])
            assert abs(cum[k] - rate * year) <= rate * dt + 1, (days, year, cum[k])
        totals[days] = cum[-1]
    assert totals[7] == totals[30] == math.floor(rate * 1260 / 365 + 1e-9)


def test_a_closed_market_allocates_no_one():
    res = crmsim.simulate(crmsim.load_config(["market.n_people=400", "sim.steps=12"]))
    assert res.config.market.growth == 0
    assert res.summary["n_people"] == 400 == len(res.customers)
    assert (res.timeseries["n_outside"] == 0).all() and (res.timeseries["entered"] == 0).all()
    assert "entry_time" not in res.customers
    assert set(res.customers["status"]) <= set(STATUS_NAMES[:4])


def test_a_growth_too_small_to_bring_anyone_is_a_closed_market():
    """400 x 0.01 x 12 weeks is 0.92 of a person: nobody is allocated, and the run is the
    closed market's to the last bit."""
    base = ["market.n_people=400", "sim.steps=12", "sim.record_events=true", "seed=4"]
    closed = crmsim.simulate(crmsim.load_config(base))
    open_ = crmsim.simulate(crmsim.load_config([*base, "market.growth=0.01"]))
    pd.testing.assert_frame_equal(closed.timeseries, open_.timeseries, check_exact=True)
    pd.testing.assert_frame_equal(closed.customers, open_.customers, check_exact=True)
    pd.testing.assert_frame_equal(closed.events, open_.events, check_exact=True)
    assert closed.summary == open_.summary


def test_the_initial_market_is_the_same_whatever_the_growth():
    """Entrants are drawn after the initial market from the population stream, so the people
    of the initial market keep their traits (the runs differ after that: the network and the
    other streams draw for everyone)."""
    closed = crmsim.CRMModel(crmsim.load_config([f"market.n_people={N}", f"sim.steps={STEPS}"]))
    grown = crmsim.CRMModel(config())
    assert grown.population.n > N
    for column in ("status", "value", "needs", "base_churn", "late_pay_rate", "destructive",
                   "satisfaction", "commitment"):
        np.testing.assert_array_equal(getattr(closed.population, column),
                                      getattr(grown.population, column)[:N], err_msg=column)


@pytest.mark.parametrize("preset", ["bass", "bgnbd", "clv", "cohort"])
def test_the_limit_cases_run_in_a_closed_market(preset):
    """The closed forms of tests/test_limits.py hold for a closed market; every preset is one."""
    cfg = crmsim.load_config([f"+validation={preset}"])
    assert cfg.market.growth == 0


@pytest.mark.parametrize("overrides, allowed", [
    (["market.growth=-0.1"], "0"),
    (["market.growth=11"], "10"),
    (["network=edgelist", "network.path=edges.csv", "market.growth=0.1"], "edgelist"),
    ([f"market.n_people={2**31 - 100}", "market.growth=0.001"], "2147483647"),
])
def test_bad_growth_is_refused_naming_the_key(overrides, allowed):
    with pytest.raises(ConfigError) as err:
        crmsim.load_config(overrides)
    assert err.value.key == "market.growth"
    assert allowed in str(err.value)


def test_the_network_view_shows_who_is_outside():
    from crmsim.viz.plots import plot_network

    model = crmsim.CRMModel(crmsim.load_config(["market.n_people=150", "market.growth=2",
                                                "sim.steps=20"]))
    assert model.network.n == model.population.n > 150
    model.step()
    ax = plot_network(model, "status", max_nodes=model.population.n)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("outside") for label in labels)
    assert any(label.startswith(STATUS_NAMES[PROSPECT]) for label in labels)


def test_the_mesa_reference_refuses_an_open_market():
    from benchmarks import mesa_reference

    cfg = crmsim.load_config(["market.n_people=50", "firm.crm_budget=0", "market.growth=0.1"])
    with pytest.raises(ConfigError, match="market.growth"):
        mesa_reference.ReferenceModel(cfg)
