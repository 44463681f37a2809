"""crmsim's core mechanics written the way a Mesa user would: one Agent per customer.

This is the yardstick for crmsim's vectorised engine (DESIGN section 2, issue 6): the same
model, with the same parameters read from the same composed config, but every customer is a
``mesa.discrete_space.FixedAgent`` sitting on a node of a ``mesa.discrete_space.Network`` and
the step is a loop over agents in Python. ``tests/test_reference.py`` checks that both give the
same key KPIs on average, so that the speed ratio printed by ``python -m benchmarks`` compares
two implementations of one model.

What each customer does is the per-person form of the formulas in ``crmsim/behavior/``
(written with ``math`` and ``random`` because a numpy call per agent would be slower still).
Time has units as in the engine: rates are per year, amounts per year, durations in days, and
a step of ``sim.period_days`` days is ``dt = period_days / 365`` years (``crmsim.units`` turns
half-lives and e-folding times into per-step factors).

* ``step`` (``shuffle_do``): an active customer meets the firm a Poisson number of times in
  the step (mean ``encounter_rate * dt``, drawn by multiplying uniforms). Each encounter is
  judged on its own: the experience is quality + fit + noise, minus a shock in a rude incident;
  its signal ``tanh(gain * (performance + w * disconfirmation))`` moves satisfaction and
  expectation; a salient bad encounter may become a complaint, which may be put right (then
  it is no story). Every other salient encounter is a story; each story is told with the
  tell probability (so the stories told are Binomial), and each story told reaches
  ``tell`` people: each of ``min(tell, degree)`` ties gets ``1/degree`` of them, the rest go to
  people anywhere (8 good and 21 bad, seed 002). Each bad story told may go viral, at most one
  incident per person and step.
* ``listen``: everyone rounds the messages heard at random; sentiment fades with its
  half-life and moves with them; then the model moves the firm's reputation toward the mean
  sentiment (with its own half-life) and takes the viral incidents' toll.
* ``decide``: customers may churn (annual base churn scaled by the hazard multiplier, with
  contagion from recently lapsed neighbours: their fading lapse signal averaged over the
  step), lapsed customers may return, prospects may adopt (Bass on the network: the share of
  neighbours who are content customers, moved by sentiment and reputation).
* ``advance``: the decisions take effect; customers gain tenure and commitment and buy their
  yearly spend times ``dt``. Those who joined or left in the step were customers for half of
  it and buy for that half (leavers too, before they go); every buyer may pay late (a
  Gamma-distributed personal rate per year) or never.

Word of mouth, churn and adoption read what their neighbours did *earlier* in the step, so
the model runs in these four stages (Mesa's staged activation, each stage a ``shuffle_do``):
the order of agents within a stage does not change the outcome, exactly as in the vectorised
engine where each mechanism updates everyone at once.

``ReferenceModel.summary`` gives the KPIs under their ``crmsim.metrics.SUMMARY`` names,
including ``retention_rate_annual`` as the engine defines it: exp(-churned / customer-years
at risk), a leaver being at risk for half of their last step.

Scope: the core mechanics of the default market. The firm spends no CRM budget (run the
comparison with ``firm.crm_budget=0``: the policy is not a core mechanic, and the vectorised
engine's policy only adds work on its side of the speed ratio). Networks are the generated
kinds (``small_world``, ``scale_free``, ``random``) without a weak-tie layer, built by
``crmsim.network.build_network`` so that both implementations face the same network model.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import mesa
import networkx as nx
import numpy as np
from mesa.discrete_space import FixedAgent
from mesa.discrete_space import Network as NetworkSpace
from omegaconf import DictConfig

from crmsim.config import CRMConfig
from crmsim.errors import ConfigError
from crmsim.network import build_network
from crmsim.population import ACTIVE, LAPSED, PROSPECT, lognormal_sigma
from crmsim.units import fade_per_step, mean_of_fade, step_years
from crmsim.validation import validate

SUPPORTED_NETWORKS = ("small_world", "scale_free", "random")

# mesa 3.5's Network space computes a spring layout of the graph unless told not to (hours at
# 10**5 nodes); mesa 3.3 has no layout argument at all.
_NETWORK_KWARGS = (
    {"layout": None} if "layout" in inspect.signature(NetworkSpace.__init__).parameters else {}
)


@dataclass(frozen=True)
class Params:
    """The parameters the agents read, taken from a validated crmsim config."""

    n: int
    dt: float
    initial_customer_share: float
    competitor_quality: float
    value_mu: float
    value_sigma: float
    spend_satisfaction_effect: float
    needs_dims: int
    needs_concentration: float
    churn_enabled: bool
    churn_alpha: float
    churn_beta: float
    satisfaction_effect: float
    dissatisfied_effect: float
    commitment_effect: float
    sentiment_effect: float
    price_effect: float
    contagion: float
    lapse_fade: float             # per step: a neighbour's lapse signal fades by this ...
    lapse_mean: float             # ... and its mean over the step, relative to its start
    winback_rate: float
    fit_weight: float
    disconfirmation_weight: float
    gain: float
    learning_rate: float
    expectation_rate: float
    salience: float
    commitment_rate: float
    complaint_propensity: float
    late_pay_rate: float          # mean late payments per customer-year
    default_prob: float
    deal_seeker_share: float
    deal_seeker_premium: float
    price_sensitivity: float
    quality: float
    no_encounter: float           # exp(-encounter_rate * dt): P(no encounter in a step)
    noise_sd: float
    rude_prob: float
    rude_shock: float
    recovery_prob: float
    recovery_boost: float
    reputation: float
    reputation_fade: float        # per step
    tell_positive: float
    tell_negative: float
    recommend_prob: float
    complain_to_others_prob: float
    strong_rate: float
    message_weight: float
    sentiment_fade: float         # per step
    viral_prob: float
    viral_reach: float
    viral_reputation_hit: float
    innovation: float
    imitation: float
    adoption_sentiment_effect: float
    reputation_effect: float

    @classmethod
    def from_config(cls, c: CRMConfig) -> Params:
        m, ch, ex, tr = c.market, c.market.churn, c.market.experience, c.market.traits
        svc, w, a = c.firm.service, c.wom, c.adoption
        sigma = lognormal_sigma(m.spend.top20_share)
        days = c.sim.period_days
        dt = step_years(days)
        return cls(
            n=m.n_people, dt=dt,
            initial_customer_share=m.initial_customer_share,
            competitor_quality=m.competitor_quality,
            value_mu=math.log(m.spend.mean) - sigma**2 / 2.0, value_sigma=sigma,
            spend_satisfaction_effect=m.spend.satisfaction_effect,
            needs_dims=m.needs.dims, needs_concentration=m.needs.concentration,
            churn_enabled=ch.enabled, churn_alpha=ch.alpha, churn_beta=ch.beta,
            satisfaction_effect=ch.satisfaction_effect, dissatisfied_effect=ch.dissatisfied_effect,
            commitment_effect=ch.commitment_effect,
            sentiment_effect=ch.sentiment_effect, price_effect=ch.price_effect,
            contagion=ch.contagion, lapse_fade=math.exp(-days / ch.contagion_days),
            lapse_mean=mean_of_fade(days, ch.contagion_days),
            winback_rate=ch.winback_rate,
            fit_weight=ex.fit_weight, disconfirmation_weight=ex.disconfirmation_weight,
            gain=ex.gain, learning_rate=ex.learning_rate, expectation_rate=ex.expectation_rate,
            salience=ex.salience, commitment_rate=ex.commitment_rate,
            complaint_propensity=tr.complaint_propensity, late_pay_rate=tr.late_pay_rate,
            default_prob=tr.default_prob, deal_seeker_share=tr.deal_seeker_share,
            deal_seeker_premium=tr.deal_seeker_premium, price_sensitivity=tr.price_sensitivity,
            quality=c.firm.quality, no_encounter=math.exp(-svc.encounter_rate * dt), noise_sd=svc.noise_sd,
            rude_prob=svc.rude_prob * (1.0 - svc.training_effect * c.firm.training),
            rude_shock=svc.rude_shock, recovery_prob=svc.recovery_prob,
            recovery_boost=svc.recovery_boost,
            reputation=c.firm.reputation,
            reputation_fade=fade_per_step(c.firm.reputation_half_life_days, days),
            tell_positive=w.tell_positive, tell_negative=w.tell_negative,
            recommend_prob=w.recommend_prob, complain_to_others_prob=w.complain_to_others_prob,
            strong_rate=w.strong_rate, message_weight=w.message_weight,
            sentiment_fade=fade_per_step(w.sentiment_half_life_days, days), viral_prob=w.viral_prob,
            viral_reach=w.viral_reach, viral_reputation_hit=w.viral_reputation_hit,
            innovation=a.innovation, imitation=a.imitation,
            adoption_sentiment_effect=a.sentiment_effect, reputation_effect=a.reputation_effect,
        )


def check_supported(c: CRMConfig) -> None:
    """Stop on a config the reference does not implement, naming the key."""
    if c.network.kind not in SUPPORTED_NETWORKS:
        raise ConfigError("network.kind", c.network.kind,
                          "one of " + ", ".join(SUPPORTED_NETWORKS) + " in the Mesa reference")
    if c.network.weak_degree != 0:
        raise ConfigError("network.weak_degree", c.network.weak_degree,
                          "0 in the Mesa reference (it has one layer of ties)")
    if c.firm.crm_budget != 0:
        raise ConfigError("firm.crm_budget", c.firm.crm_budget,
                          "0 in the Mesa reference (it runs the core mechanics without a policy)")
    if c.market.growth != 0:
        raise ConfigError("market.growth", c.market.growth,
                          "0 in the Mesa reference (it simulates a closed market)")


def _beta_with_mean(rng, mean: float, concentration: float = 4.0) -> float:
    """One draw of crmsim.population.beta_with_mean."""
    if mean <= 0.0 or mean >= 1.0:
        return mean
    return rng.betavariate(concentration * mean, concentration * (1.0 - mean))


class Customer(FixedAgent):
    """One person: a prospect, a customer or a former customer of the firm."""

    def __init__(self, model: ReferenceModel, cell) -> None:
        super().__init__(model)
        self.cell = cell
        p, r = model.p, self.random
        self.status = ACTIVE if r.random() < p.initial_customer_share else PROSPECT
        self.value = r.lognormvariate(p.value_mu, p.value_sigma)
        gammas = [r.gammavariate(p.needs_concentration, 1.0) for _ in range(p.needs_dims)]
        total = sum(gammas)
        if p.needs_dims > 1:
            tv = 0.5 * sum(abs(g / total - 1.0 / p.needs_dims) for g in gammas)
            needs_distance = tv / (1.0 - 1.0 / p.needs_dims)
        else:
            needs_distance = 0.0
        self.fit = 1.0 - needs_distance
        self.base_churn = r.betavariate(p.churn_alpha, p.churn_beta)
        self.price_sensitivity = (r.expovariate(1.0 / p.price_sensitivity)
                                  if p.price_sensitivity > 0 else 0.0)
        self.complaint_propensity = _beta_with_mean(r, p.complaint_propensity)
        # Late payments: a personal rate per year, Gamma(shape 2) around the market's mean.
        self.late_pay_rate = p.late_pay_rate * r.gammavariate(2.0, 0.5)
        self.deal_seeker = r.random() < p.deal_seeker_share
        self.price = 1.0
        self.sentiment = 0.0
        self.lapse_signal = 0.0
        self.tenure = 0
        self.heard_pos = 0.0      # expected messages from neighbours this step
        self.heard_neg = 0.0
        self.next_status = self.status
        self.revenue = 0.0
        if self.status == ACTIVE:
            # Existing customers have been with the firm up to three years and are used to its
            # typical encounter (crmsim.model.CRMModel._settle_initial_customers).
            self.commitment = 1.0 - math.exp(-p.commitment_rate * 3.0 * r.random())
            typical = p.quality + p.fit_weight * (self.fit - 0.5)
            self.expectation = typical
            self.satisfaction = math.tanh(p.gain * (typical - p.competitor_quality))
        else:
            self.commitment = 0.0
            self.expectation = p.competitor_quality
            self.satisfaction = 0.0

    # -- stage 1: service encounters, complaints, word of mouth -----------------------------
    def step(self) -> None:
        if self.status != ACTIVE:
            return
        p, r = self.model.p, self.random
        # A Poisson number of encounters (Knuth): one more for every uniform that keeps the
        # running product above exp(-encounter_rate * dt).
        good = bad = 0
        product = r.random()
        while product > p.no_encounter:
            story = self.encounter()
            good += story > 0
            bad += story < 0
            product *= r.random()
        # Each story is told with the tell probability: the stories told are Binomial.
        told_good = sum(r.random() < p.recommend_prob for _ in range(good))
        told_bad = sum(r.random() < p.complain_to_others_prob for _ in range(bad))
        if told_good:
            self.tell(told_good, p.tell_positive, positive=True)
        if told_bad:
            self.tell(told_bad, p.tell_negative, positive=False)
            # Each bad story told may go viral; a person makes at most one incident a step.
            if any(r.random() < p.viral_prob for _ in range(told_bad)):
                self.model.viral_incidents += 1

    def encounter(self) -> int:
        """One encounter, its complaint and recovery. Returns the story it makes: 1 good,
        -1 bad, 0 none (not salient, or a bad experience put right)."""
        p, r, model = self.model.p, self.random, self.model
        model.encounters += 1
        experienced = p.quality + p.fit_weight * (self.fit - 0.5) + p.noise_sd * r.gauss(0.0, 1.0)
        if r.random() < p.rude_prob:
            experienced -= p.rude_shock
        signal = math.tanh(p.gain * ((experienced - p.competitor_quality)
                                     + p.disconfirmation_weight * (experienced - self.expectation)))
        self.satisfaction += p.learning_rate * (signal - self.satisfaction)
        self.expectation += p.expectation_rate * (experienced - self.expectation)
        if signal < -p.salience and r.random() < self.complaint_propensity:
            model.complaints += 1
            if r.random() < p.recovery_prob:
                self.satisfaction = min(self.satisfaction + p.recovery_boost, 1.0)
                return 0
        return 1 if signal > p.salience else -1 if signal < -p.salience else 0

    def tell(self, stories: int, count: float, positive: bool) -> None:
        """Tell each of ``stories`` stories to ``count`` people: the network ties first,
        anyone else for the rest."""
        neighbours = list(self.cell.neighborhood.agents)
        degree = len(neighbours)
        if degree:
            each = self.model.p.strong_rate * stories * min(count, degree) / degree
            for other in neighbours:
                if positive:
                    other.heard_pos += each
                else:
                    other.heard_neg += each
        beyond = stories * max(count - degree, 0.0)
        if positive:
            self.model.beyond_pos += beyond
        else:
            self.model.beyond_neg += beyond

    # -- stage 2: what everyone heard moves their sentiment --------------------------------
    def listen(self) -> None:
        model, p, r = self.model, self.model.p, self.random
        lam_pos = self.heard_pos + model.beyond_pos / p.n
        lam_neg = (self.heard_neg + model.beyond_neg / p.n
                   + model.viral_incidents * p.viral_reach / p.n)
        heard_pos = _stochastic_round(lam_pos, r.random())
        heard_neg = _stochastic_round(lam_neg, r.random())
        model.wom_positive += heard_pos
        model.wom_negative += heard_neg
        self.sentiment = min(max(p.sentiment_fade * self.sentiment
                                 + p.message_weight * (heard_pos - heard_neg), -1.0), 1.0)
        self.heard_pos = self.heard_neg = 0.0

    # -- stage 3: stay or leave, come back, adopt ------------------------------------------
    def decide(self) -> None:
        p, r = self.model.p, self.random
        if self.status == ACTIVE:
            self.model.at_risk += 1
            # Lapsed neighbours' signals fade during the step: the hazard feels their mean.
            exposure = p.lapse_mean * sum(other.lapse_signal
                                          for other in self.cell.neighborhood.agents)
            s, c = self.satisfaction, self.commitment
            felt = s * (1.0 - c) if s < 0 else s
            felt_price = self.price * (1.0 + p.deal_seeker_premium * self.deal_seeker)
            log_m = (-p.satisfaction_effect * felt - p.commitment_effect * c
                     - p.sentiment_effect * self.sentiment
                     + p.price_effect * self.price_sensitivity * (felt_price - 1.0))
            if s < 0:   # a dissatisfied customer looks at the competitor (crmsim/behavior/churn.py)
                log_m += p.dissatisfied_effect * (1.0 - c)
            m = math.exp(log_m) * (1.0 + p.contagion * exposure)
            leave = -math.expm1(p.dt * m * math.log1p(-min(self.base_churn, 1.0 - 1e-12)))
            if p.churn_enabled and r.random() < leave:
                self.next_status = LAPSED
        elif self.status == LAPSED:
            back = -math.expm1(-p.winback_rate * math.exp(p.sentiment_effect * self.sentiment)
                               * p.dt)
            if r.random() < back:
                self.next_status = ACTIVE
        elif self.status == PROSPECT:
            # Prospects imitate the neighbours who are customers content with the firm.
            neighbours = list(self.cell.neighborhood.agents)
            share = (sum(other.status == ACTIVE and other.satisfaction >= 0
                         for other in neighbours) / len(neighbours) if neighbours else 0.0)
            prob = _bass_step_probability(share, p.innovation, p.imitation, p.dt)
            scale = math.exp(p.adoption_sentiment_effect * self.sentiment
                             + p.reputation_effect * self.model.reputation)
            prob = -math.expm1(scale * math.log1p(-min(prob, 1.0 - 1e-12)))
            if r.random() < prob:
                self.next_status = ACTIVE

    # -- stage 4: decisions take effect; customers buy -------------------------------------
    def advance(self) -> None:
        p, model = self.model.p, self.model
        self.lapse_signal *= p.lapse_fade
        years = p.dt
        if self.next_status != self.status:
            # Joined or left during the step: a customer for half of it, on average.
            years = 0.5 * p.dt
            if self.next_status == LAPSED:
                model.churned += 1
                self.lapse_signal = 1.0
                self.buy(years)           # a leaver buys for the half step before going
                self.status, self.tenure = LAPSED, 0
                return
            if self.status == PROSPECT:
                model.acquired += 1
            else:
                model.won_back += 1
            # New and returning customers start neutral, expecting the market's usual quality.
            self.satisfaction = 0.0
            self.commitment = 0.0
            self.expectation = p.competitor_quality
            self.status, self.tenure = ACTIVE, 0
        if self.status != ACTIVE:
            return
        self.tenure += 1
        grow = p.commitment_rate * p.dt * self.satisfaction
        c = self.commitment
        c = c + grow * (1.0 - c) if self.satisfaction > 0 else c * (1.0 + grow)
        self.commitment = min(max(c, 0.0), 1.0)
        self.buy(years)

    def buy(self, years: float) -> None:
        """Buy for ``years`` of the yearly spend, then pay: late, never, or on time."""
        p, model = self.model.p, self.model
        amount = (self.value * self.price
                  * max(1.0 + p.spend_satisfaction_effect * self.satisfaction, 0.0) * years)
        self.revenue += amount
        model.revenue += amount
        u = self.random.random()
        if u < p.default_prob:
            model.defaults += 1
        elif u < p.default_prob - math.expm1(-self.late_pay_rate * years):
            model.late_payments += 1


def _stochastic_round(lam: float, u: float) -> int:
    base = math.floor(lam)
    return int(base) + (u < lam - base)


def _bass_step_probability(share: float, p: float, q: float, dt: float) -> float:
    """crmsim.behavior.adoption.bass_step_probability for one person."""
    share = min(max(share, 0.0), 1.0)
    e = math.exp(-(p + q) * dt)
    rate = p + q * share
    den = rate + q * (1.0 - share) * e
    return rate * (1.0 - e) / den if den > 0 else 0.0


# Per-step tallies the agents add to; the DataCollector reads them at the end of the step.
TALLIES = ("encounters", "complaints", "viral_incidents", "wom_positive", "wom_negative",
           "at_risk", "churned", "acquired", "won_back", "revenue", "late_payments", "defaults")


class ReferenceModel(mesa.Model):
    """The core of crmsim, one ``Customer`` agent per person on a Mesa network space."""

    def __init__(self, cfg: CRMConfig | DictConfig, seed: int | None = None) -> None:
        c = cfg if isinstance(cfg, CRMConfig) else validate(cfg)
        check_supported(c)
        seed = c.seed if seed is None else seed
        super().__init__(rng=seed)
        self.p = Params.from_config(c)
        net = build_network(c.network.kind, c.market.n_people, c.network.mean_degree,
                            np.random.default_rng(seed), rewire_prob=c.network.rewire_prob)
        upper = net.strong.tocoo()
        graph = nx.Graph()
        graph.add_nodes_from(range(c.market.n_people))
        graph.add_edges_from((int(i), int(j)) for i, j in zip(upper.row, upper.col, strict=True)
                             if i < j)
        self.space = NetworkSpace(graph, capacity=1, random=self.random, **_NETWORK_KWARGS)
        for node in range(c.market.n_people):
            Customer(self, self.space[node])
        self.reputation = self.p.reputation
        self.beyond_pos = self.beyond_neg = 0.0
        self._reset_tallies()
        self.totals = dict.fromkeys(TALLIES, 0)
        self.datacollector = mesa.DataCollector(model_reporters={
            "n_active": lambda m: sum(1 for a in m.agents if a.status == ACTIVE),
            **{name: name for name in TALLIES},
            "reputation": "reputation",
        })

    def _reset_tallies(self) -> None:
        for name in TALLIES:
            setattr(self, name, 0)

    def step(self) -> None:
        self._reset_tallies()
        self.beyond_pos = self.beyond_neg = 0.0
        self.agents.shuffle_do("step")
        self.agents.shuffle_do("listen")
        mean_sentiment = sum(self.agents.get("sentiment")) / self.p.n
        fade = self.p.reputation_fade
        self.reputation = min(max(
            fade * self.reputation + (1.0 - fade) * mean_sentiment
            - self.p.viral_reputation_hit * self.viral_incidents, -1.0), 1.0)
        self.agents.shuffle_do("decide")
        self.agents.shuffle_do("advance")
        for name in TALLIES:
            self.totals[name] += getattr(self, name)
        self.datacollector.collect(self)

    def summary(self) -> dict[str, float]:
        """The KPIs the comparison uses, under their names in ``crmsim.metrics.SUMMARY``."""
        t = self.totals
        # Customer-years at risk: a leaver was at risk for half of their last step.
        exposure_years = (t["at_risk"] - t["churned"] / 2.0) * self.p.dt
        return {
            "active_final": sum(1 for a in self.agents if a.status == ACTIVE),
            "acquired_total": t["acquired"],
            "churned_total": t["churned"],
            "won_back_total": t["won_back"],
            "revenue_total": float(t["revenue"]),
            "wom_positive_total": t["wom_positive"],
            "wom_negative_total": t["wom_negative"],
            "complaints_total": t["complaints"],
            "retention_rate_annual": (math.exp(-t["churned"] / exposure_years)
                                      if exposure_years > 0 else 1.0),
        }


def run(cfg: CRMConfig | DictConfig, steps: int | None = None,
        seed: int | None = None) -> ReferenceModel:
    """Build the reference model for ``cfg`` and run it ``steps`` steps (default ``sim.steps``)."""
    c = cfg if isinstance(cfg, CRMConfig) else validate(cfg)
    model = ReferenceModel(c, seed=seed)
    for _ in range(c.sim.steps if steps is None else steps):
        model.step()
    return model
