"""Frameworks that differ by their logic: one lever catalogue open to every framework, each
framework's own segmentation and learning, and the capability layer (DESIGN section 5)."""

import math

import numpy as np
import pytest

import crmsim
from crmsim.actions import SCALED_EFFECTS, Actions
from crmsim.firm import CAPABILITIES, Capabilities
from crmsim.model import CRMModel
from crmsim.policies import POLICIES
from crmsim.population import ACTIVE
from crmsim.tactics import TACTICS

SMALL = ["market.n_people=2000", "market.initial_customer_share=0.5", "sim.steps=30"]


def every_lever(policy: str) -> list[str]:
    # Shares of 0.02 leave the closed loops' areas (whose shares weigh within an area) part of
    # the budget; five times the default budget gives each lever enough for a few contacts.
    return [f"policy={policy}", *SMALL, "firm.crm_budget=${per_person:39}",
            *(f"policy.tactics.{t}.enabled=true" for t in TACTICS),
            *(f"policy.tactics.{t}.share=0.02" for t in TACTICS)]


def spent_and_reached(model: CRMModel, steps: int) -> tuple[dict, dict]:
    spent, reached = {}, {}
    for _ in range(steps):
        model.step()
        for name, money in model.policy.spent.items():
            spent[name] = spent.get(name, 0.0) + money
        for name, idx in model.policy.reached.items():
            reached[name] = reached.get(name, 0) + len(idx)
    return spent, reached


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_lever_gets_budget_and_reach_on_every_policy(policy):
    """The catalogue is open: with every lever enabled, each one is paid and (if it reaches
    people at all) reaches someone, whatever the framework."""
    model = CRMModel(every_lever(policy))
    spent, reached = spent_and_reached(model, model.cfg.sim.steps)
    firm_wide = {"training"} | {t for t in TACTICS if t.startswith("capability_")}
    for tactic in TACTICS:
        assert spent.get(tactic, 0.0) > 0, f"{tactic} got no money on {policy}"
        if tactic not in firm_wide:
            assert reached.get(tactic, 0) > 0, f"{tactic} reached nobody on {policy}"


# -- capabilities --------------------------------------------------------------------------
def test_what_is_built_decays_with_its_half_life_and_upkeep_holds_a_level():
    caps = Capabilities(dict.fromkeys(CAPABILITIES, 0.5), 0.5, 730.0, 0.5)
    caps.level = dict.fromkeys(CAPABILITIES, 0.9)        # built up above the starting 0.5
    for _ in range(2 * 52):              # two years of weekly steps, no money
        caps.develop({}, 1000, 7 / 365)
    # Leadership's built part decays at the base rate: it halves in 730 days.
    assert caps.level["leadership_culture"] == pytest.approx(0.5 + 0.4 * 0.5 ** (728 / 730), rel=1e-9)
    # The others' built part decays more slowly while leadership is above the reference.
    assert caps.level["people"] > caps.level["leadership_culture"]
    # Without investment nothing falls below the level the running costs hold.
    idle = Capabilities(dict.fromkeys(CAPABILITIES, 0.5), 0.5, 730.0, 0.5)
    for _ in range(52):
        idle.develop({}, 1000, 7 / 365)
    assert idle.level == dict.fromkeys(CAPABILITIES, 0.5)
    held = Capabilities(dict.fromkeys(CAPABILITIES, 0.5), 0.5, 730.0, 0.5)
    held.level = dict.fromkeys(CAPABILITIES, 0.7)
    money = {k: held.upkeep(k, 0.7, 1000) / 52 for k in CAPABILITIES}   # a week's upkeep
    for _ in range(52):
        held.develop(money, 1000, 1 / 52)
    for k in CAPABILITIES:
        assert held.level[k] == pytest.approx(0.7, abs=1e-12)


def test_capability_paths_do_not_depend_on_the_step_length():
    """Investment at a constant rate: the level after a year is the same in 7-day and 73-day
    steps (the equation is solved exactly within a step), and matches the closed form."""
    rate = 900.0                          # money per year, 1000 people
    levels = []
    for days in (7.3, 73.0):
        caps = Capabilities({**dict.fromkeys(CAPABILITIES, 0.2), "leadership_culture": 0.5},
                            0.5, 730.0, 0.5)
        # Leadership held at the reference by its upkeep, so people decay at the base rate.
        lead = caps.upkeep("leadership_culture", 0.5, 1000)
        for _ in range(round(365 / days)):
            caps.develop({"people": rate * days / 365, "leadership_culture": lead * days / 365},
                         1000, days / 365)
        levels.append(caps.level["people"])
    a, d = 0.5 * rate / 1000, math.log(2) * 365 / 730
    steady = (a + d * 0.2) / (a + d)
    expected = steady + (0.2 - steady) * math.exp(-(a + d) * 1.0)
    assert levels[0] == pytest.approx(expected, rel=1e-9)
    assert levels[1] == pytest.approx(expected, rel=1e-9)


def decided(overrides: list[str]) -> tuple[CRMModel, Actions]:
    model = CRMModel(overrides)
    c = model.cfg
    view = model.firm.observe(model.population, model.network.degree, 1, c.sim.period_days,
                              np.random.default_rng(0), c.firm.margin, 30.0)
    return model, model.policy.decide(view, model.per_step.crm_budget, 1)


@pytest.mark.parametrize("level", [0.25, 1.0])
def test_a_levers_effect_sizes_follow_its_capability(level):
    """feedback_request relies on people: at people = level its effect sizes are level /
    reference times the catalogue's; facts of the offer (a contact happens) are not scaled."""
    lever = ["policy=idic", *SMALL, "policy.tactics.triggered_contact.enabled=false"]
    _, base = decided(lever)
    _, scaled = decided([*lever, f"firm.capabilities.people={level}"])
    factor = level / 0.5
    for effect in ("heard", "ideas"):      # only feedback_request adds these on idic
        assert effect in SCALED_EFFECTS
        np.testing.assert_allclose(scaled.person[effect], factor * base.person[effect], rtol=1e-6)
    # Customization relies on technology and data, which stayed at the reference.
    np.testing.assert_array_equal(scaled.person["customization"], base.person["customization"])


def test_technology_and_data_multiply_the_precision_of_the_firms_estimates():
    model = CRMModel(["policy=idic", *SMALL, "firm.capabilities.technology_data=1.0"])
    c = model.cfg
    view = model.firm.observe(model.population, model.network.degree, 1, c.sim.period_days,
                              np.random.default_rng(0), c.firm.margin, 30.0)
    # Precision (1 / variance) doubles at twice the reference: the noise is 1/sqrt(2).
    np.testing.assert_allclose(view.knowledge_sd, model.firm.knowledge_sd / math.sqrt(2), rtol=1e-6)


# -- each framework's own logic ------------------------------------------------------------
def test_idic_customizes_only_where_the_expected_gain_pays_for_it():
    model, actions = decided(["policy=idic", *SMALL])
    c = model.cfg
    view = model.firm.observe(model.population, model.network.degree, 1, c.sim.period_days,
                              np.random.default_rng(0), c.firm.margin, 30.0)
    gain = model.policy.customization_gain(view)
    customized = np.flatnonzero(actions.person.get("customization", np.zeros(view.n)) > 0)
    assert customized.size > 0
    assert (gain[customized] > 0).all()
    assert model.policy.valued(view)[customized].all()
    # A firm that expects nothing from fit customizes nobody.
    _, none = decided(["policy=idic", *SMALL, "policy.params.fit_worth=0"])
    assert "customization" not in none.person or not none.person["customization"].any()


def test_the_value_chain_serves_non_sscs_at_lower_cost_and_asks_inspirations_first():
    # Without control groups, so that everyone the logic selects is reached.
    model, actions = decided(["policy=value_chain", *SMALL, "policy.holdout_share=0"])
    c = model.cfg
    view = model.firm.observe(model.population, model.network.degree, 1, c.sim.period_days,
                              np.random.default_rng(0), c.firm.margin, 30.0)
    ssc = model.policy.ssc(view, ACTIVE)
    cheap = actions.person["serve_cost_cut"] > 0
    assert cheap.any() and not (cheap & ssc).any()
    asked = actions.person["ideas"] > 0
    inspirations = model.policy.ssc_types(view, ACTIVE)["inspiration"]
    # Inspirations come first: none is left out while anyone else is asked.
    assert asked[inspirations].all() or not asked[~inspirations].any()


def test_inspirations_ideas_raise_quality():
    runs = {}
    for ideas in (0.0, 0.2):
        res = crmsim.simulate(crmsim.load_config(
            ["policy=value_chain", *SMALL, f"policy.tactics.feedback_request.idea_quality={ideas}"]))
        runs[ideas] = res.timeseries["quality"]
    assert runs[0.2].iloc[-1] > runs[0.0].iloc[-1]


def test_gartner_maturity_is_capability_it_builds():
    """Gartner spends (at most capability_share of its budget) to bring its capabilities to
    the maturity of its building blocks: a mature firm builds them up, an immature one (below
    the level its running costs hold) invests nothing in them."""
    blocks = ("vision", "strategy", "customer_experience", "collaboration", "processes",
              "information", "technology", "metrics")
    final = {}
    for maturity in (0.4, 0.8):
        res = crmsim.simulate(crmsim.load_config(
            ["policy=gartner", "market.n_people=2000", "sim.steps=36", "sim.period_days=30",
             *(f"policy.params.maturity.{b}={maturity}" for b in blocks)]))
        ts = res.timeseries
        final[maturity] = {cap: ts[f"capability_{cap}"].iloc[-1] for cap in CAPABILITIES}
        assert ts["cost_capability"].sum() <= 0.3 * ts["crm_spend"].sum() + 1e-6
        if maturity < 0.5:
            assert ts["cost_capability"].sum() == 0
    for cap in CAPABILITIES:
        assert final[0.4][cap] == 0.5
        assert final[0.8][cap] > 0.6
