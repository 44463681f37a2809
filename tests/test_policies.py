"""The frameworks: same budget, only the split differs; knowledge through noise only."""

import numpy as np
import pytest

import crmsim
from crmsim.model import CRMModel
from crmsim.policies import POLICIES
from crmsim.policies.base import top_share
from crmsim.population import ACTIVE

FRAMEWORKS = ["transactional", "idic", "value_chain", "qci", "payne_frow", "gartner"]


def test_every_framework_is_registered_with_its_config():
    assert set(FRAMEWORKS) <= set(POLICIES)
    for name in FRAMEWORKS:
        cfg = crmsim.load_config([f"policy={name}"])
        assert cfg.policy.name == name


@pytest.mark.parametrize("name", FRAMEWORKS)
@pytest.mark.parametrize("ads", [True, False])
def test_budget_parity_on_the_default_market(name, ads):
    """Every policy accounts for the same budget: spend + unspent. With ads enabled the
    leftover buys media; without them it stays unspent, and is not a cost."""
    cfg = crmsim.load_config([f"policy={name}", "market.n_people=4000", "sim.steps=52",
                              f"policy.tactics.ads.enabled={str(ads).lower()}"])
    res = crmsim.simulate(cfg)
    budget = cfg.firm.crm_budget * cfg.sim.steps * cfg.sim.period_days / 365   # per year
    ts = res.timeseries
    assert res.summary["crm_spend_total"] + ts["unspent"].sum() == pytest.approx(budget, rel=1e-9)
    if ads:     # prospects are left all along on this market: media takes every leftover
        assert ts["unspent"].sum() == 0
    elif name == "transactional":      # no tactic at all: the whole budget is kept
        assert res.summary["crm_spend_total"] == 0
    assert np.allclose(ts["profit"], ts["revenue"] - ts["cost_total"])


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_every_framework_runs_at_100k_people(name):
    cfg = crmsim.load_config([f"policy={name}", "market.n_people=100000", "sim.steps=3",
                              "sim.record_customers=false"])
    res = crmsim.simulate(cfg)
    budget = cfg.firm.crm_budget * 3 * cfg.sim.period_days / 365
    assert res.summary["crm_spend_total"] == pytest.approx(budget, rel=0.01)


@pytest.mark.parametrize("rule, method", [
    ("serial_complainers", "direct"), ("late_payers", "direct"), ("destructive", "direct"),
    ("deal_seekers", "price_increase"), ("unprofitable", "unbundle"),
    ("serial_complainers", "redesign"),
])
def test_termination_rules_and_methods(rule, method):
    cfg = crmsim.load_config(["market.n_people=3000", "sim.steps=52",
                              "market.initial_customer_share=0.6",
                              f"policy.termination.rules=[{rule}]",
                              f"policy.termination.method={method}"])
    model = CRMModel(cfg)
    for _ in range(52):
        model.step()
    handled = model.policy.termination._handled
    assert handled is not None and handled.any()
    ts = model.timeseries()
    assert ts["cost_termination"].sum() > 0
    if method == "direct":
        assert ts["terminated"].sum() == handled.sum()
        assert (model.population.status[handled] == 3).all()
    if method == "price_increase":
        assert (model.population.price[handled] > 1).all()
    if method in ("unbundle", "redesign"):
        # Their offering lost its extras until they lapse (a returning customer starts over
        # from the standard offering).
        pop = model.population
        kept = handled & (pop.lapsed_at == -1)
        assert kept.any() and (pop.customization[kept] < 0).all()
        assert (pop.customization[handled & (pop.status == 2)] == 0).all()


def test_termination_picks_the_people_its_rule_names():
    """Flags come from noisy records, but they hit the named group far above its base rate."""
    cfg = crmsim.load_config(["market.n_people=5000", "sim.steps=52",
                              "market.initial_customer_share=0.6",
                              "policy.termination.rules=[destructive]"])
    model = CRMModel(cfg)
    for _ in range(52):
        model.step()
    handled = model.policy.termination._handled
    base_rate = model.population.destructive.mean()
    assert model.population.destructive[handled].mean() > 5 * base_rate


def targeting_precision(model: CRMModel, share=0.2) -> float:
    """Of the top `share` customers by the firm's estimate of value, how many truly are."""
    view = model.firm.observe(model.population, model.network.degree, model.steps,
                              model.cfg.sim.period_days, model.streams["policy"], 0.3, 0.5)
    active = model.population.status == ACTIVE
    est = top_share(view.value_est, active, share)
    true = top_share(model.population.value.astype(float), active, share)
    return (est & true).sum() / true.sum()


def test_targeting_accuracy_is_below_one_with_noise_and_rises_with_knowledge():
    exact = CRMModel(crmsim.load_config(["market.n_people=5000", "firm.knowledge.noise_sd=0"]))
    assert targeting_precision(exact) == 1.0
    noisy = CRMModel(crmsim.load_config(["market.n_people=5000"]))
    before = targeting_precision(noisy)
    assert before < 0.9
    noisy.firm.learn(np.ones(5000, dtype=bool), 20.0)   # twenty interactions with everyone
    after = targeting_precision(noisy)
    assert before < after <= 1.0


def test_policies_only_see_the_firms_view():
    """A policy's decide() gets a FirmView whose arrays it cannot write into."""
    model = CRMModel(crmsim.load_config(["market.n_people=500", "policy=idic"]))
    view = model.firm.observe(model.population, model.network.degree, 0,
                              model.cfg.sim.period_days, model.streams["policy"], 0.3, 0.5)
    with pytest.raises(ValueError):
        view.status[0] = 3
    assert not hasattr(view, "population")


def test_closed_loop_frameworks_reallocate():
    cfg = crmsim.load_config(["policy=qci", "market.n_people=4000", "sim.steps=60"])
    model = CRMModel(cfg)
    start = dict(model.policy.tracker.shares)
    for _ in range(60):
        model.step()
    assert model.policy.tracker.last_returns
    assert model.policy.tracker.shares != start
    assert sum(model.policy.tracker.shares.values()) == pytest.approx(1.0)
