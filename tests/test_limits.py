"""The limit cases of DESIGN section 3, each checked against its closed form.

Tolerances come from the sampling error of the quantity compared, never from a guess:
- cohort survival: the surviving share is a mean of independent Bernoulli(S(t)) (theta_i are
  drawn independently), so its sd is exactly sqrt(S(1-S)/N); we allow 4 sd per point;
- Bass: adoption feeds back on itself, so the spread of F(t) is not binomial; we run R
  independent seeds and test the mean against F(t) with the t-quantile of the replicate spread
  (two-sided 0.1%);
- CLV: per-customer discounted margins are independent; the mean's sd is the sample sd / sqrt(N);
- 80/20: the top-20% share is a ratio of order statistics; its sd is taken from a bootstrap.
With fixed seeds every test is deterministic; the tolerances say how far chance could carry it.
"""

import numpy as np
import pytest
from scipy import stats
from scipy.special import betaln

import crmsim
from crmsim.population import lognormal_sigma


def bass_F(t, p, q):
    e = np.exp(-(p + q) * t)
    return (1 - e) / (1 + (q / p) * e)


@pytest.mark.parametrize("period_days", [7, 30])
def test_bass_diffusion_matches_closed_form(period_days):
    p, q, n, reps, years = 0.03, 0.38, 10_000, 8, 10
    finals = []
    for seed in range(reps):
        cfg = crmsim.load_config([
            "+validation=bass", f"seed={seed}", f"market.n_people={n}",
            f"adoption.innovation={p}", f"adoption.imitation={q}",
            f"sim.steps={int(np.ceil(years * 365 / period_days))}",
            f"sim.period_days={period_days}",
        ])
        ts = crmsim.simulate(cfg).timeseries
        t_years = ts["step"].to_numpy() * period_days / 365
        adopted = (ts["n_active"] + ts["n_lapsed"]).to_numpy() / n
        finals.append((t_years, adopted))
    t_years = finals[0][0]
    runs = np.array([a for _, a in finals])
    checks = [int(np.argmin(np.abs(t_years - y))) for y in range(1, years + 1)]
    tq = stats.t.ppf(1 - 0.0005, reps - 1)
    for k in checks:
        expected = bass_F(t_years[k], p, q)
        mean, se = runs[:, k].mean(), runs[:, k].std(ddof=1) / np.sqrt(reps)
        assert abs(mean - expected) <= tq * se + 1e-12, (t_years[k], mean, expected, se)
    # Without churn nobody ever leaves: cumulative adoption is monotone in every run.
    assert (np.diff(runs, axis=1) >= 0).all()


@pytest.mark.parametrize("period_days", [7, 30, 73, 365])
def test_cohort_survival_is_shifted_beta_geometric(period_days):
    alpha, beta, n, years = 0.704, 1.182, 40_000, 6
    steps = int(np.ceil(years * 365 / period_days))
    cfg = crmsim.load_config([
        "+validation=cohort", f"market.n_people={n}", f"sim.steps={steps}",
        f"sim.period_days={period_days}", f"market.churn.alpha={alpha}",
        f"market.churn.beta={beta}", "sim.record_customers=false",
    ])
    ts = crmsim.simulate(cfg).timeseries
    t_years = ts["step"].to_numpy() * period_days / 365
    survival = ts["n_active"].to_numpy() / n
    for k in range(1, steps + 1):
        expected = np.exp(betaln(alpha, beta + t_years[k]) - betaln(alpha, beta))
        sd = np.sqrt(expected * (1 - expected) / n)
        assert abs(survival[k] - expected) <= 4 * sd, (period_days, k, survival[k], expected)
    # Whole years land exactly on steps when period_days divides 365.
    if 365 % period_days == 0:
        per_year = 365 // period_days
        for year in range(1, years + 1):
            expected = np.exp(betaln(alpha, beta + year) - betaln(alpha, beta))
            assert abs(survival[year * per_year] - expected) <= 4 * np.sqrt(
                expected * (1 - expected) / n)


# The constant-retention market of the CLV and customer-equity limit cases.
CLV = {"alpha": 200.0, "beta": 800.0, "spend": 2000.0, "margin": 0.25, "i": 0.12, "n": 20_000}


def clv_config(period_days: float, years: int):
    """+validation=clv with the CLV market above, over ``years``; returns (cfg, steps)."""
    c, steps = CLV, int(years * 365 // period_days)
    return crmsim.load_config([
        "+validation=clv", f"market.n_people={c['n']}", f"sim.steps={steps}",
        f"sim.period_days={period_days}", f"market.spend.mean={c['spend']}",
        f"firm.margin={c['margin']}", f"sim.discount_rate={c['i']}",
        f"market.churn.alpha={c['alpha']}", f"market.churn.beta={c['beta']}",
    ]), steps


@pytest.mark.parametrize("period_days", [7, 30])
def test_constant_retention_clv(period_days):
    alpha, beta, spend, margin, i, n = (CLV[k] for k in ("alpha", "beta", "spend", "margin", "i", "n"))
    cfg, steps = clv_config(period_days, years=5)
    res = crmsim.simulate(cfg)
    dt = period_days / 365
    k = np.arange(1, steps + 1)
    # The documented timing (crmsim/metrics.py): churn comes before purchase; the margin of
    # step k is collected at its end, a step's worth (spend * dt) from those who survived k
    # steps and half of it from those who left during step k.
    survival = np.exp(betaln(alpha, beta + np.arange(steps + 1) * dt) - betaln(alpha, beta))
    bought = survival[1:] + (survival[:-1] - survival[1:]) / 2
    expected = margin * spend * dt * np.sum(bought / (1 + i) ** (k * dt))
    clv = res.customers["margin_discounted"].to_numpy()
    tolerance = 4 * clv.std(ddof=1) / np.sqrt(n)
    assert abs(res.summary["clv_realised_mean"] - expected) <= tolerance
    assert res.summary["clv_realised_mean"] == pytest.approx(clv.mean())
    # With nearly constant retention the sBG sum is the geometric series of Gupta & Lehmann.
    r = (1 - alpha / (alpha + beta)) ** dt
    geometric = margin * spend * dt * np.sum((r ** k + r ** (k - 1)) / 2 / (1 + i) ** (k * dt))
    assert expected == pytest.approx(geometric, rel=2e-3)


@pytest.mark.parametrize("share", [0.5, 0.8, 0.9])
def test_80_20_spend_concentration(share):
    n = 100_000
    cfg = crmsim.load_config([
        "+validation=clv", f"market.n_people={n}", "sim.steps=3", "market.churn.enabled=false",
        f"market.spend.top20_share={share}",
    ])
    res = crmsim.simulate(cfg)
    value = res.customers["value"].to_numpy()
    rng = np.random.default_rng(0)
    boot = [crmsim.metrics.top_share(value[rng.integers(0, n, n)]) for _ in range(100)]
    tolerance = 4 * np.std(boot, ddof=1)
    assert abs(res.summary["top20_revenue_share"] - share) <= tolerance, tolerance
    # The sample mean of a lognormal has relative sd sqrt(exp(sigma^2) - 1) / sqrt(N).
    rel_sd = np.sqrt(np.expm1(lognormal_sigma(share) ** 2) / n)
    assert abs(value.mean() / cfg.market.spend.mean - 1) <= 4 * rel_sd


def test_the_top_share_is_one_when_the_top_hold_everything():
    """Eight customers with all the revenue among 50: the top 10 hold it all, although their
    sum, added in another order than the total, exceeds it in the last bit (found by
    tests/test_fuzz.py)."""
    value = np.zeros(50)
    value[[39, 48, 21, 35, 6, 14, 42, 25]] = [651.147215588638, 7.449735609587041,
                                              38.781342164352154, 11.975404351744778,
                                              476.727837896859, 281.6660006594705,
                                              71.28637717134761, 0.2448719737124344]
    assert np.partition(value, 40)[40:].sum() > value.sum()     # the rounding the case needs
    assert crmsim.metrics.top_share(value) == 1.0


def test_equal_spend_when_top20_share_is_a_fifth():
    cfg = crmsim.load_config(["+validation=clv", "market.n_people=5000", "sim.steps=2",
                              "market.churn.enabled=false", "market.spend.top20_share=0.2"])
    res = crmsim.simulate(cfg)
    assert np.ptp(res.customers["value"].to_numpy()) == 0
    assert res.summary["top20_revenue_share"] == pytest.approx(0.2)


@pytest.mark.parametrize("period_days", [7, 30])
def test_customer_equity_is_the_expected_future_margin(period_days):
    """Customer equity at the horizon against (a) the constant-retention closed form and (b)
    what the same customers then actually bring: the run is continued for 60 more years and
    their realised discounted margin is compared with the equity predicted at the horizon.

    (a) Under +validation=clv every customer has the same spend and a constant annual churn
    theta_i (a narrow Beta), so each one's equity is the geometric series of Gupta & Lehmann
    under the model's timing: sum over future steps j of margin * spend * dt *
    (r_i^j + (r_i^(j-1) - r_i^j) / 2) * v^j with r_i = (1 - theta_i)^dt, v = (1 + i)^-dt,
    summed here term by term (to rounding: the terms after 4,000 steps are below 1e-12 of the
    first); and with nearly constant retention it is close to the margin multiple at the mean
    retention (within 1%: the survivors' spread of theta, sd 0.013, moves it by ~0.5%).
    (b) The realised future margin per customer is a mean of independent per-customer sums, so
    its tolerance is 4 x sample sd / sqrt(N).
    """
    alpha, beta, spend, margin, i = (CLV[k] for k in ("alpha", "beta", "spend", "margin", "i"))
    cfg, steps = clv_config(period_days, years=3)
    model = crmsim.CRMModel(cfg)
    for _ in range(steps):
        model.step()
    dt = period_days / 365
    equity = model.row["customer_equity"]
    active = model.population.status == 1
    # (a) the geometric series, customer by customer, and the margin multiple at the mean
    v = (1 + i) ** -dt
    r_i = (1 - model.population.base_churn[active].astype(np.float64)) ** dt
    j = np.arange(1, 4001)[:, None]
    terms = (r_i ** j + (r_i ** (j - 1) - r_i ** j) / 2) * v ** j
    series = margin * spend * dt * terms.sum(axis=0)
    assert equity == pytest.approx(series.sum(), rel=1e-6)   # spend is float32 (7 digits)
    r = (1 - alpha / (alpha + beta)) ** dt
    closed = active.sum() * margin * spend * dt * (1 + r) / 2 * v / (1 - r * v)
    assert equity == pytest.approx(closed, rel=1e-2)
    # (b) realised: continue the run and collect what these customers bring, valued at the horizon
    before = model.population.margin_discounted.copy()
    extra = int(60 * 365 // period_days)
    for _ in range(extra):
        model.step()
    horizon_discount = (1 + i) ** (-steps * dt)
    future = (model.population.margin_discounted - before)[active] / horizon_discount
    tolerance = 4 * future.std(ddof=1) / np.sqrt(active.sum())
    assert abs(equity / active.sum() - future.mean()) <= tolerance, (equity / active.sum(),
                                                                     future.mean(), tolerance)
    # The summary discounts the horizon's equity to time 0 and adds it to the run's NPV.
    res = crmsim.simulate(cfg)
    assert res.summary["customer_equity_final"] == pytest.approx(
        res.timeseries["customer_equity"].iloc[-1] * res.timeseries["discount_factor"].iloc[-1])
    assert res.summary["npv_total"] == pytest.approx(
        res.summary["npv_profit"] + res.summary["customer_equity_final"])
