"""Each tactic does what it claims, in a controlled paired setup.

Every comparison runs the same seeds with and without the tactic (common random numbers: the
same people, network and luck), on a market where most people start as customers, with the
tactic taking half of the CRM budget from ads. The claim is checked on the mean paired
difference; the directions are what seeds 001, 002 and 004 say each lever does.
"""

from types import SimpleNamespace

import numpy as np
import pytest

import crmsim
from crmsim.actions import Actions
from crmsim.metrics import CRM_CATEGORIES, OPERATING_COSTS
from crmsim.population import LAPSED, PROSPECT
from crmsim.tactics import make_tactics
from crmsim.units import DAYS_PER_YEAR

BASE = ["market.n_people=3000", "sim.steps=26", "market.initial_customer_share=0.6",
        "firm.crm_budget=78000"]     # per year
SEEDS = range(3)


def paired(tactic, *extra, kpis=None, base_extra=()):
    on = [*BASE, f"policy.tactics.{tactic}.enabled=true", f"policy.tactics.{tactic}.share=1.0",
          *extra]
    table = crmsim.compare({"without": [*BASE, *base_extra], "with": on}, seeds=SEEDS,
                           kpis=kpis)
    rows = table[table["variant"] == "with"].set_index("kpi")
    return rows, table.attrs["runs"]


def diff(rows, kpi):
    return rows.loc[kpi, "diff"]


def test_promotion_lowers_churn_now():
    rows, _ = paired("promotion")
    assert diff(rows, "retention_rate_annual") > 0


@pytest.mark.parametrize("tactic", ["switching_cost", "exit_penalty"])
def test_negative_retention_lowers_churn_but_spreads_bad_news(tactic):
    rows, _ = paired(tactic)
    assert diff(rows, "retention_rate_annual") > 0
    assert diff(rows, "wom_negative_total") > 0


def test_exit_penalty_traps_customers_and_collects_fees():
    cfg = crmsim.load_config([*BASE, "policy.tactics.exit_penalty.enabled=true",
                              "policy.tactics.exit_penalty.share=1.0"])
    ts = crmsim.simulate(cfg).timeseries
    assert ts["trapped"].sum() > 0
    assert ts["exit_fees"].sum() > 0
    assert np.allclose(ts["revenue"], ts["sales"] + ts["exit_fees"])


@pytest.mark.parametrize("tactic", ["switching_cost", "exit_penalty"])
def test_trapped_customers_hurt_the_brand(tactic):
    """Trapped customers' stories lower sentiment and reputation, which lower every prospect's
    adoption hazard (whether total adoption falls also depends on the larger customer base
    that imitation feeds on: the retention_tactics experiment reports it)."""
    long = ["sim.steps=104", "market.initial_customer_share=0.3"]
    on = [*BASE, *long, f"policy.tactics.{tactic}.enabled=true",
          f"policy.tactics.{tactic}.share=1.0"]
    sentiment_diff = []
    for seed in SEEDS:
        with_ = crmsim.simulate(crmsim.load_config([*on, f"seed={seed}"])).timeseries
        without = crmsim.simulate(crmsim.load_config([*BASE, *long, f"seed={seed}"])).timeseries
        assert with_["reputation"].iloc[-1] < without["reputation"].iloc[-1]
        assert with_["wom_negative"].sum() > without["wom_negative"].sum()
        sentiment_diff.append(with_["sentiment_mean"].iloc[-1] - without["sentiment_mean"].iloc[-1])
    # Final sentiment on the mean paired difference, as the other claims here: the customers
    # the lock keeps tell good stories too, which in a seed can offset the trapped ones' bad
    # stories at the last step (only 4 in 10 unhappy customers tell anyone, while the trapped
    # always do: docs/calibration_targets.md).
    assert np.mean(sentiment_diff) < 0


@pytest.mark.parametrize("tactic, kpi", [
    ("value_add", "satisfaction_mean_final"),
    ("loyalty", "retention_rate_annual"),
    ("triggered_contact", "satisfaction_mean_final"),
    ("feedback_request", "satisfaction_mean_final"),
])
def test_positive_levers_raise_what_they_should(tactic, kpi):
    rows, _ = paired(tactic)
    assert diff(rows, kpi) > 0


@pytest.mark.parametrize("tactic", ["email", "free_sample", "seeding"])
def test_acquisition_channels_buy_customers(tactic):
    rows, _ = paired(tactic, "firm.crm_budget=78000", "policy.tactics.ads.enabled=false",
                     base_extra=["firm.crm_budget=0"])
    assert diff(rows, "acquired_total") > 0


def test_win_back_brings_lapsed_customers_back():
    rows, _ = paired("win_back")
    assert diff(rows, "won_back_total") > 0


def run_model(*overrides, steps=26):
    model = crmsim.CRMModel(crmsim.load_config([*BASE, *overrides]))
    for _ in range(steps):
        model.step()
    return model


def test_training_cuts_rude_incidents_and_lifts_quality():
    trained = run_model("policy.tactics.training.enabled=true", "policy.tactics.training.share=1.0")
    plain = run_model()
    assert trained.firm.training > plain.firm.training
    assert trained.firm.quality > plain.firm.quality
    ts_t, ts_p = trained.timeseries(), plain.timeseries()
    assert ts_t["rude_incidents"].sum() < ts_p["rude_incidents"].sum()


def test_service_recovery_puts_more_complaints_right():
    ts_r = run_model("policy.tactics.service_recovery.enabled=true",
                     "policy.tactics.service_recovery.share=1.0").timeseries()
    ts_p = run_model().timeseries()
    assert ts_r["recovered"].sum() / ts_r["complaints"].sum() > \
        ts_p["recovered"].sum() / ts_p["complaints"].sum()


def test_multichannel_makes_experience_steadier():
    ts_m = run_model("policy.tactics.multichannel.enabled=true",
                     "policy.tactics.multichannel.share=1.0").timeseries()
    ts_p = run_model().timeseries()
    # A narrower spread of experience means fewer salient bad encounters, so fewer complaints.
    assert ts_m["complaints"].sum() < ts_p["complaints"].sum()


def test_customization_raises_fit_and_costs_per_person():
    m = run_model("policy.tactics.customization.enabled=true",
                  "policy.tactics.customization.share=1.0")
    p = run_model()
    active = m.population.status == 1
    assert m.population.fit[active].mean() > p.population.fit[p.population.status == 1].mean()
    assert m.timeseries()["cost_offering"].sum() > 0


def test_cross_sell_grows_the_basket_of_satisfied_customers():
    m = run_model("policy.tactics.cross_sell.enabled=true", "policy.tactics.cross_sell.share=1.0")
    pop = m.population
    assert pop.penetration.max() > 0
    assert np.all(pop.penetration[pop.satisfaction <= 0] <= pop.penetration.max())
    rows, _ = paired("cross_sell")
    assert diff(rows, "revenue_total") > 0


@pytest.mark.parametrize("tactic", ["information", "feedback_request", "triggered_contact"])
def test_interaction_and_data_teach_the_firm(tactic):
    m = run_model(f"policy.tactics.{tactic}.enabled=true", f"policy.tactics.{tactic}.share=1.0")
    p = run_model()
    assert m.firm.knowledge_sd.mean() < p.firm.knowledge_sd.mean()


def test_tactic_overrides_work_on_every_policy():
    for policy in crmsim.policies.POLICIES:
        cfg = crmsim.load_config([f"policy={policy}", "policy.tactics.promotion.enabled=true",
                                  "policy.tactics.promotion.discount=0.3"])
        assert cfg.policy.tactics.promotion.enabled
        assert cfg.policy.tactics.promotion.discount == 0.3


# -- levers that behave like their real counterparts ----------------------------------------

def catalogue_tactic(name, **overrides):
    cfg = crmsim.load_config([f"policy.tactics.{name}.{k}={v}" for k, v in overrides.items()])
    return make_tactics({name: cfg.policy.tactics[name]})[name]


def fake_view(n, day, period_days, status=PROSPECT):
    return SimpleNamespace(n=n, day=day, dt=period_days / DAYS_PER_YEAR,
                           status=np.full(n, status, dtype=np.int8))


def run_ads(ads, budget_per_year, days, period_days, n=10):
    """Ads on ``n`` prospects at ``budget_per_year`` for ``days``; the last lift it gave."""
    for k in range(int(days // period_days)):
        view = fake_view(n, k * period_days, period_days)
        actions = Actions(n)
        ads.run(view, budget_per_year * view.dt, actions)
    return float(actions.person["adoption_lift"][0])


@pytest.mark.parametrize("period_days", [7, 14, 30])
def test_ads_adstock_reaches_the_closed_form_whatever_the_step(period_days):
    """Exposures at r a year hold a stock of r x half_life / ln 2 (geometric adstock in
    continuous time); the lift is the Hill curve of that stock. Exact up to rounding."""
    ads = catalogue_tactic("ads")
    n, budget = 10, 260.0                          # per year, for 10 prospects
    lift = run_ads(ads, budget, 3650, period_days, n)
    rate = budget / ads.cost_per_exposure / n      # exposures per prospect-year
    stock = rate * ads.half_life_days / DAYS_PER_YEAR / np.log(2.0)
    assert ads._stock[0] == pytest.approx(stock, rel=1e-9)
    hill = ads.max_lift * stock ** ads.shape / (stock ** ads.shape + ads.half_saturation ** ads.shape)
    assert lift == pytest.approx(hill, rel=1e-6)


def test_ads_saturate_and_carry_over():
    base = run_ads(catalogue_tactic("ads"), 260.0, 730, 7)
    double = run_ads(catalogue_tactic("ads"), 520.0, 730, 7)
    assert base < double < 2 * base                  # diminishing returns in frequency
    ads = catalogue_tactic("ads", half_life_days=14)
    run_ads(ads, 260.0, 730, 14)
    before = ads._stock[0]
    ads.run(fake_view(10, 730 // 14 * 14, 14), 0.0, Actions(10))   # no money: the stock fades
    assert ads._stock[0] == pytest.approx(before / 2, rel=1e-9)


def test_money_no_tactic_can_use_is_unspent_not_linear_media():
    """Without ads, the leftover of a tactic with few people to reach is kept (and is not a
    cost); with ads it buys media, and spend + unspent is the budget either way."""
    common = [*BASE, "policy.tactics.win_back.enabled=true", "policy.tactics.win_back.share=1.0"]
    budget = 78000 * 26 * 7 / 365
    for ads in ("true", "false"):
        res = crmsim.simulate(crmsim.load_config([*common, f"policy.tactics.ads.enabled={ads}"]))
        ts = res.timeseries
        assert ts["crm_spend"].sum() + ts["unspent"].sum() == pytest.approx(budget, rel=1e-9)
        assert (ts["unspent"].sum() > 0) == (ads == "false")
        assert np.allclose(ts["cost_total"], ts[[f"cost_{k}" for k in CRM_CATEGORIES]].sum(axis=1)
                           + ts[list(OPERATING_COSTS)].sum(axis=1))


def test_value_add_lowers_the_hazard_while_covered():
    rows, _ = paired("value_add", "policy.tactics.value_add.bonus=0",
                     "policy.tactics.value_add.hazard_cut=0.5",
                     base_extra=["policy.tactics.value_add.enabled=true",
                                 "policy.tactics.value_add.share=1.0",
                                 "policy.tactics.value_add.bonus=0",
                                 "policy.tactics.value_add.hazard_cut=0"])
    assert diff(rows, "retention_rate_annual") > 0


def contract_model(*extra):
    return crmsim.CRMModel(crmsim.load_config([
        *BASE, "policy.tactics.switching_cost.enabled=true", "policy.tactics.switching_cost.share=1.0",
        "policy.tactics.switching_cost.term_days=91", *extra]))


def test_contracts_expire_and_the_lock_ends():
    model = contract_model()
    model.step()
    pop = model.population
    signed = np.flatnonzero(pop.contract_end >= 0)
    assert signed.size > 0
    assert np.all(pop.contract_end[signed] == model.steps * 7 + 91)
    while model.steps * 7 + 3.5 < 7 + 91:           # up to the step nearest the expiry day
        model.step()
    # Who stayed throughout (one who left and came back may have signed a new contract).
    stayed = signed[(pop.status[signed] == 1) & (pop.lapsed_at[signed] < 1)]
    # The lock ended at expiry: in the same step nobody who stayed holds this contract.
    assert stayed.size > 0
    assert np.all(pop.contract_end[stayed] == -1)
    assert np.all(pop.switching_cost[stayed] == 0)
    model.step()                                     # and they can sign a new one
    assert (pop.contract_end[stayed] >= 0).mean() > 0.5


def test_churn_spikes_at_contract_expiry():
    """The same customers and luck with and without the spike: in the step of expiry more of
    the expiring leave. Checked on 3 seeds; the spike (a factor 20 for 30 days) raises the
    expiring customers' leave probability from ~0.3% to ~6%, far above the seed-to-seed
    spread of a few hundred customers' churn."""
    for seed in SEEDS:
        churned = {}
        for factor in (1, 20):
            model = contract_model(f"seed={seed}",
                                   f"policy.tactics.switching_cost.expiry_factor={factor}")
            for _ in range(14):
                model.step()
            churned[factor] = model.timeseries()["churned"].iloc[14]
        assert churned[20] > churned[1]


def promotion_model(*extra):
    return crmsim.CRMModel(crmsim.load_config([*BASE, *extra]))


def test_promotion_bump_then_dip():
    """Paired (the same seed): sales are higher while the promotion runs, lower in the step
    after it ends (the stockpile is used up instead of buying), and the pantry empties."""
    on = ["policy.tactics.promotion.enabled=true", "policy.tactics.promotion.share=1.0"]
    for seed in SEEDS:
        promo = promotion_model(*on, f"seed={seed}")
        plain = promotion_model(f"seed={seed}")
        for _ in range(8):
            promo.step()
            plain.step()
        bumped = promo.timeseries()["sales"].iloc[1:].sum() > plain.timeseries()["sales"].iloc[1:].sum()
        assert bumped
        pantry = promo.population.pantry.sum()
        assert pantry > 0
        promo.policy.shares.pop("promotion")        # the promotion ends
        promo.step()
        plain.step()
        assert promo.timeseries()["sales"].iloc[-1] < plain.timeseries()["sales"].iloc[-1]
        assert promo.population.pantry.sum() < pantry


def test_cross_sell_response_rate_is_a_share_of_the_contacted():
    """Who takes an offer is a Bernoulli draw with p = response_rate x satisfaction+ (no
    fatigue at the first offer): the takers' count is within 4 standard deviations of its
    expectation (a binomial sum's variance, sum p(1 - p))."""
    model = run_model("policy.tactics.cross_sell.enabled=true",
                      "policy.tactics.cross_sell.share=1.0", steps=0)
    rate = model.policy.tactics["cross_sell"].response_rate
    sat = model.population.satisfaction.copy()
    model.step()
    contacted = model.policy.reached["cross_sell"]
    assert contacted.size > 100
    p = rate * np.maximum(sat[contacted], 0.0)
    took = np.count_nonzero(model.population.penetration[contacted] > 0)
    assert abs(took - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())
    assert took < contacted.size / 2


def test_cross_sell_fatigue_and_annoyance():
    cross = catalogue_tactic("cross_sell", fatigue_half_life_days=90)
    n = 4
    view = fake_view(n, 0.0, 7, status=1)
    first = Actions(n)
    cross.apply(first, np.arange(n), view)
    later = Actions(n)
    cross.apply(later, np.arange(n), fake_view(n, 90.0, 7, status=1))
    # One offer 90 days ago (one half-life) counts as half an offer.
    assert later.person["offer_take"][0] == pytest.approx(
        first.person["offer_take"][0] * (1 - cross.fatigue_drop) ** 0.5, rel=1e-6)
    assert later.person["offer_annoy"][0] == pytest.approx(cross.annoy_share * 1.5, rel=1e-6)
    # The annoyed leave more: with every offer annoying, annual retention falls (paired).
    rows, _ = paired("cross_sell", "policy.tactics.cross_sell.annoy_share=1.0",
                     "policy.tactics.cross_sell.annoy_hazard=1.0",
                     base_extra=["policy.tactics.cross_sell.enabled=true",
                                 "policy.tactics.cross_sell.share=1.0",
                                 "policy.tactics.cross_sell.annoy_share=0"])
    assert diff(rows, "retention_rate_annual") < 0


def test_penetration_and_customization_reset_at_a_lapse():
    model = run_model("policy.tactics.cross_sell.enabled=true", "policy.tactics.cross_sell.share=0.5",
                      "policy.tactics.customization.enabled=true",
                      "policy.tactics.customization.share=0.5", steps=0)
    pop = model.population
    carried = 0
    for _ in range(26):
        built = (pop.penetration > 0) | (pop.customization > 0)
        model.step()
        lapsed_now = (pop.status == LAPSED) & (pop.lapsed_at == model.steps)
        carried += np.count_nonzero(built & lapsed_now)
    assert carried > 0                               # some who lapsed had something to lose
    # Every lapsed customer has lost them, so one who returns starts without them.
    lapsed = pop.status == LAPSED
    assert np.all(pop.penetration[lapsed] == 0) and np.all(pop.customization[lapsed] == 0)
