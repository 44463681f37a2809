"""Each tactic does what it claims, in a controlled paired setup.

Every comparison runs the same seeds with and without the tactic (common random numbers: the
same people, network and luck), on a market where most people start as customers, with the
tactic taking half of the CRM budget from ads. The claim is checked on the mean paired
difference; the directions are what seeds 001, 002 and 004 say each lever does.
"""

import numpy as np
import pytest

import crmsim

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
    for seed in SEEDS:
        with_ = crmsim.simulate(crmsim.load_config([*on, f"seed={seed}"])).timeseries
        without = crmsim.simulate(crmsim.load_config([*BASE, *long, f"seed={seed}"])).timeseries
        assert with_["reputation"].iloc[-1] < without["reputation"].iloc[-1]
        assert with_["sentiment_mean"].iloc[-1] < without["sentiment_mean"].iloc[-1]


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
