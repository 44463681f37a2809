"""Each mechanism on its own, then each one's effect on a whole run (paired by seed)."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import crmsim
from crmsim.behavior import adoption, churn, experience, wom
from crmsim.network import build_network


@pytest.mark.parametrize("share", [0.0, 0.2, 0.7])
@pytest.mark.parametrize("dt", [7 / 365, 1.0])
def test_bass_step_probability_integrates_the_bass_equation(share, dt):
    p, q = 0.03, 0.38
    sol = solve_ivp(lambda t, f: (p + q * f) * (1 - f), (0, dt), [share], rtol=1e-11, atol=1e-13)
    f_end = sol.y[0, -1]
    expected = (f_end - share) / (1 - share)
    assert adoption.bass_step_probability(np.array([share]), p, q, dt)[0] == pytest.approx(
        expected, rel=1e-7)


def test_bass_probability_edge_cases():
    assert adoption.bass_step_probability(np.array([0.5]), 0.0, 0.0, 1.0)[0] == 0.0
    # p = 0: pure imitation is logistic growth
    s, q, dt = 0.1, 0.5, 1.0
    logistic = s / (s + (1 - s) * np.exp(-q * dt))
    assert adoption.bass_step_probability(np.array([s]), 0.0, q, dt)[0] == pytest.approx(
        (logistic - s) / (1 - s))


def test_leave_probability_is_the_annual_rate_compounded():
    theta = np.array([0.1, 0.5, 0.9])
    assert churn.leave_probability(theta, 1.0, 1.0) == pytest.approx(theta)
    weekly = churn.leave_probability(theta, 1.0, 7 / 365)
    assert 1 - (1 - weekly) ** (365 / 7) == pytest.approx(theta)
    # The multiplier scales the hazard rate: doubling it squares the survival.
    assert 1 - churn.leave_probability(theta, 2.0, 1.0) == pytest.approx((1 - theta) ** 2)


def test_churn_multiplier_directions():
    base = dict(satisfaction=np.array([0.0]), commitment=np.array([0.0]),
                sentiment=np.array([0.0]), switching_cost=np.array([0.0]),
                price=np.array([1.0]), price_sensitivity=np.array([1.0]),
                contagion_exposure=np.array([0.0]), satisfaction_effect=1.0,
                commitment_effect=1.0, sentiment_effect=0.5, switching_cost_effect=2.0,
                price_effect=1.0, contagion=0.8)
    m0 = churn.hazard_multiplier(**base)[0]
    assert m0 == pytest.approx(1.0)

    def m(**kw):
        return churn.hazard_multiplier(**{**base, **{k: np.array([v]) for k, v in kw.items()}})[0]

    assert m(satisfaction=0.8) < m0 < m(satisfaction=-0.8)
    assert m(commitment=0.9) < m0
    assert m(switching_cost=0.5) < m0
    assert m(price=1.2) > m0
    assert m(contagion_exposure=1.0) == pytest.approx(1.8)   # +80% per lapsed neighbour
    # Commitment buffers dissatisfaction: a committed customer forgives a bad experience.
    assert m(satisfaction=-0.8, commitment=0.9) < m(satisfaction=-0.8) * np.exp(-0.9)

    # Below zero satisfaction the hazard jumps (a dissatisfied customer looks at the
    # competitor), by exp(effect x (1 - commitment)); at or above zero nothing changes.
    jump = {**base, "dissatisfied_effect": 2.0}
    assert churn.hazard_multiplier(**{**jump, "satisfaction": np.array([-0.01])})[0] == \
        pytest.approx(np.exp(2.0 + 0.01))
    assert churn.hazard_multiplier(**{**jump, "satisfaction": np.array([0.0])})[0] == \
        pytest.approx(1.0)
    committed = {**jump, "satisfaction": np.array([-0.01]), "commitment": np.array([0.5])}
    assert churn.hazard_multiplier(**committed)[0] == pytest.approx(
        np.exp(2.0 * 0.5 + 0.01 * 0.5 - 0.5))


def test_stochastic_rounding_keeps_the_mean():
    rng = np.random.default_rng(1)
    lam = np.full(200_000, 2.3)
    heard = wom.stochastic_round(lam, rng.random(lam.size))
    assert set(np.unique(heard)) == {2, 3}
    # Bernoulli(0.3) remainder: sd of the mean is sqrt(0.21 / N)
    assert abs(heard.mean() - 2.3) <= 4 * np.sqrt(0.21 / lam.size)


@pytest.mark.parametrize("p", [0.0, 0.22, 0.78, 1.0])
def test_stories_told_are_scipys_binomial_quantiles(p):
    """``told`` inverts the Binomial by the distribution's own ``_ppf``, skipping ``ppf``'s
    argument checks: the counts are ``scipy.stats.binom.ppf``'s, at q = 1 (u = 0) too."""
    from scipy.stats import binom

    rng = np.random.default_rng(3)
    stories = rng.integers(0, 12, 5000).astype(np.int16)
    u = rng.random(stories.size)
    u[:50] = 0.0                                  # q = 1 - u = 1: ppf's own branch
    u[50:100] = np.nextafter(1.0, 0.0)            # the smallest q
    expected = np.where(stories > 1, binom.ppf(1.0 - u, stories, p),
                        (stories > 0) & (u < p)).astype(np.int16)
    assert np.array_equal(wom.told(stories, p, u), expected)


def test_bad_news_reaches_more_people():
    rng = np.random.default_rng(0)
    net = build_network("small_world", 5000, 10, rng)
    told = rng.random(5000) < 0.05
    pos = wom.expected_heard(net, told, 8, 1.0, 0.5).sum()
    neg = wom.expected_heard(net, told, 21, 1.0, 0.5).sum()
    # Every message lands somewhere: tellers x tell count.
    assert pos == pytest.approx(told.sum() * 8)
    assert neg == pytest.approx(told.sum() * 21)
    complete = build_network("complete", 5000, 10, rng)
    assert wom.expected_heard(complete, told, 21, 1.0, 0.5).sum() == pytest.approx(told.sum() * 21)


def test_rude_incidents_fall_with_training():
    assert experience.rude_probability(0.02, 1.0, 0.7) == pytest.approx(0.006)
    assert experience.rude_probability(0.02, 0.0, 0.7) == pytest.approx(0.02)


def test_better_experience_raises_satisfaction():
    met = np.ones(3, dtype=bool)
    sat = np.zeros(3, dtype=np.float32)
    exp_ = np.full(3, 0.55, dtype=np.float32)
    experienced = np.array([0.3, 0.55, 0.8], dtype=np.float32)
    new_sat, new_exp, signal = experience.satisfaction_update(
        met, experienced, sat, exp_, 0.55, 0.5, 4.0, 0.3, 0.1)
    assert signal[0] < 0 == signal[1] < signal[2]
    assert new_sat[0] < new_sat[1] < new_sat[2]
    assert new_exp[0] < 0.55 < new_exp[2]


# -- whole-run effects, paired by seed ------------------------------------------------------

def run(*overrides, seeds=range(3)):
    keys = ("churned_total", "wom_negative_total", "revenue_total", "npv_profit",
            "acquired_total", "complaints_total", "retention_rate_annual")
    out = {k: 0.0 for k in keys}
    for seed in seeds:
        s = crmsim.simulate(crmsim.load_config(
            ["market.n_people=3000", "sim.steps=52", f"seed={seed}", *overrides])).summary
        for k in keys:
            out[k] += s[k]
    return out


def test_churn_contagion_raises_churn():
    with_contagion = run("market.churn.contagion=0.8")
    without = run("market.churn.contagion=0")
    assert with_contagion["churned_total"] > without["churned_total"]


def test_service_quality_keeps_customers_and_earns_more():
    good = run("firm.quality=0.8")
    poor = run("firm.quality=0.4")
    assert good["churned_total"] < poor["churned_total"]
    assert good["revenue_total"] > poor["revenue_total"]
    assert good["wom_negative_total"] < poor["wom_negative_total"]


def test_more_negative_telling_means_more_bad_news_and_fewer_adopters():
    loud = run("wom.tell_negative=40")
    quiet = run("wom.tell_negative=8")
    assert loud["wom_negative_total"] > quiet["wom_negative_total"]
    assert loud["acquired_total"] < quiet["acquired_total"]


def test_marketing_budget_buys_customers():
    spend = run("firm.crm_budget=104000")   # per year
    none = run("firm.crm_budget=0")
    assert spend["acquired_total"] > none["acquired_total"]
