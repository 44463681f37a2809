"""The firm: a Mesa agent with a ledger and a noisy picture of its customers.

Policies never see the true state of the people; they see a ``FirmView`` built here each step.
Facts the firm records itself (who is a customer, since when, what they bought, prices) are
exact. Everything it must infer (value, needs, satisfaction, churn risk, how often someone
complains or pays late, who is destructive, who chases deals, who brings ideas) is blurred by
per-person noise ``knowledge_sd`` that shrinks with every interaction and with investment in
information (IDIC's Identify, Payne & Frow's information management, the value chain's data &
IT). Each person's misjudgement is persistent (a fixed standard-normal error per attribute,
drawn once), so the firm's picture of someone is stable and sharpens as it learns rather than
flickering from step to step. Estimates are computed only when a policy first asks for them.
"""

from __future__ import annotations

from functools import cached_property

import mesa
import numpy as np

from .behavior import purchase as buying
from .population import ACTIVE, LAPSED, PROSPECT, TERMINATED, Population
from .units import DAYS_PER_YEAR, step_years


def _read_only(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


ERRORS = ("value", "satisfaction", "risk", "needs_distance", "complaints", "late_payments",
          "destructive", "innovator", "deal_seeker")


CAPABILITIES = ("people", "processes", "technology_data", "leadership_culture")
MIN_PRECISION = 0.01   # technology_data at 1% of the reference: the firm's noise is 10x


class Capabilities:
    """The firm's CRM capabilities (people, processes, technology and data, leadership and
    culture), each a level in 0..1 (DESIGN section 5; ``firm.capabilities``).

    - Effect: a lever that relies on capability k has its effect sizes multiplied by
      ``level_k / reference`` (``effectiveness``); technology and data multiply the precision
      (1 / variance) of the firm's estimates by the same ratio (``precision``).
    - Dynamics, per year: ``dC/dt = g s (1 - C) - d (C - C0)``. The firm's running costs
      hold each capability at its starting level C0 (``firm.capabilities.<name>``); money
      invested through the ``capability_*`` levers, s per person in the market per year, raises
      it with diminishing returns (``gain_per_money`` = g; the closer to 1, the less a unit
      buys), and what was built above C0 decays without upkeep at d, the rate of a
      ``half_life_days`` half-life. Leadership and culture slow the others' decay:
      ``d_k = d (1 - L) / (1 - reference)`` for k != leadership_culture (at L = 1 nothing
      decays, at the reference at d). Within a step s is constant and the equation is solved
      exactly, so the path does not depend on the step length.
    """

    def __init__(self, levels: dict[str, float], reference: float, half_life_days: float,
                 gain_per_money: float) -> None:
        self.level = {k: float(levels[k]) for k in CAPABILITIES}
        self.baseline = dict(self.level)
        self.reference = reference
        self.decay = np.log(2.0) * DAYS_PER_YEAR / half_life_days    # per year
        self.gain = gain_per_money

    def effectiveness(self, name: str | None) -> float:
        """Multiplier of the effect sizes of a lever that relies on capability ``name``."""
        return 1.0 if name is None else self.level[name] / self.reference

    def precision(self) -> float:
        return max(self.effectiveness("technology_data"), MIN_PRECISION)

    def decay_rate(self, name: str) -> float:
        """Per year: leadership and culture slow the decay of the other capabilities."""
        if name == "leadership_culture":
            return self.decay
        if self.reference >= 1.0:
            return 0.0
        return self.decay * max(1.0 - self.level["leadership_culture"], 0.0) / (1.0 - self.reference)

    def upkeep(self, name: str, level: float, people: int) -> float:
        """Money per year that holds capability ``name`` at ``level`` (< 1); nothing at or
        below its starting level, which the firm's running costs hold."""
        built = level - self.baseline[name]
        if built <= 0:
            return 0.0
        if self.gain <= 0:
            return float("inf")
        return self.decay_rate(name) * built / (1.0 - level) / self.gain * people

    def develop(self, invested: dict[str, float], people: int, dt: float) -> None:
        """Advance the levels by one step of ``dt`` years in which ``invested`` money (by
        capability) was spent in a market of ``people``."""
        decay = {k: self.decay_rate(k) for k in CAPABILITIES}
        for k in CAPABILITIES:
            d = decay[k]
            a = self.gain * invested.get(k, 0.0) / max(people, 1) / dt
            if a + d <= 0:
                continue
            steady = (a + d * self.baseline[k]) / (a + d)
            self.level[k] = float(steady + (self.level[k] - steady) * np.exp(-(a + d) * dt))


class FirmView:
    """What the firm knows at the start of a step. Arrays have one entry per person."""

    def __init__(self, pop: Population, degree: np.ndarray, knowledge_sd: np.ndarray, step: int,
                 period_days: float, errors: dict[str, np.ndarray], u: np.ndarray,
                 u_due: np.ndarray, margin: float, service_cost: float, quality: float,
                 training: float, purchase=None, capabilities: Capabilities | None = None) -> None:
        self._pop = pop
        self.capabilities = capabilities
        self._errors = errors
        self.step = step
        self.day = step * period_days         # days since the start of the run
        self.dt = step_years(period_days)     # the step length in years
        self.n = pop.n
        self.margin = margin
        self.service_cost = service_cost      # expected service cost per customer-year
        self.quality = quality
        self.training = training
        # Exact: the firm's own records.
        self.status = _read_only(pop.status)
        self.tenure = _read_only(pop.tenure)
        self.lapsed_at = _read_only(pop.lapsed_at)
        self.revenue = _read_only(pop.revenue)
        self.price = _read_only(pop.price)
        self.switching_cost = _read_only(pop.switching_cost)   # its own contracts
        self.exit_fee = _read_only(pop.exit_fee)
        self.customization = _read_only(pop.customization)
        self.penetration = _read_only(pop.penetration)
        self.degree = _read_only(degree)      # social reach is public (followers, referrals)
        self.knowledge_sd = _read_only(knowledge_sd)
        self.u = u                            # uniforms for random targeting (policy stream)
        self.u_due = u_due                    # ... and for when a contact falls due (cadences)
        # Non-contractual setting (``purchase`` = market.purchase): the firm never sees a
        # dropout. Its records are each person's purchases; who it counts a customer (ACTIVE)
        # or lapsed, and since when, comes from them and its estimate of P(alive).
        self.purchase = purchase
        if purchase is not None:
            now = (step - 1) * self.dt                 # the end of the last step, in years
            first = pop.first_purchase
            bought = ~np.isnan(first)
            self.frequency = _read_only(pop.repeat_purchases)        # x: repeat purchases
            self.T = np.where(bought, now - first, 0.0)                # years since the first
            self.recency = np.where(bought, pop.last_purchase - first, 0.0)   # t_x, years
            self.monetary = pop.repeat_amount / np.maximum(pop.repeat_purchases, 1)
            seen = np.where(self.p_alive >= purchase.alive_threshold, ACTIVE, LAPSED)
            status = np.where(bought, seen, PROSPECT)
            # It knows whom it ended and who is not yet in the market (market.growth).
            self.status = _read_only(np.where(pop.status >= TERMINATED, pop.status,
                                              status).astype(np.int8))
            self.tenure = _read_only(np.floor(self.T / self.dt + 1e-9).astype(np.int32))

    def effectiveness(self, capability: str | None) -> float:
        """Multiplier of the effect sizes of a lever relying on ``capability`` (``Capabilities``)."""
        return 1.0 if self.capabilities is None else self.capabilities.effectiveness(capability)

    def _noise(self, attribute: str) -> np.ndarray:
        return self.knowledge_sd * self._errors[attribute]

    def _count(self, attribute: str) -> np.ndarray:
        return getattr(self._pop, attribute) * np.exp(self._noise(attribute))

    def _flag(self, attribute: str, flag: np.ndarray) -> np.ndarray:
        """The true yes/no seen through noise; above 0.5 reads as 'yes'. A trait the firm
        sees as yes/no evidence is blurred half as much as an amount: at the starting noise of
        0.5 about 2% of the 'no's read as 'yes'."""
        return flag.astype(np.float32) + 0.5 * self._noise(attribute)

    @cached_property
    def p_alive(self) -> np.ndarray:
        """Non-contractual: the BG/NBD probability that each person is still a customer, from
        their record at the market's parameters (1 for people who never bought)."""
        pc = self.purchase
        out = np.ones(self.n)                  # without a repeat purchase, P(alive) = 1
        i = np.flatnonzero(self.frequency)
        out[i] = buying.p_alive(self.frequency[i], self.recency[i], self.T[i], pc.r, pc.alpha,
                                pc.a, pc.b)
        return out

    @cached_property
    def value_est(self) -> np.ndarray:
        """Estimated spend per year."""
        if self.purchase is not None:
            # Expected spend per year while alive: posterior purchase rate x Gamma-Gamma
            # expected amount, from the firm's exact records.
            pc = self.purchase
            rate = buying.expected_rate(self.frequency, self.T, pc.r, pc.alpha)
            amount = buying.expected_amount(self.frequency, self.monetary, pc.p, pc.q, pc.gamma)
            return rate * amount
        return self._pop.value * (1.0 + self._pop.penetration) * np.exp(self._noise("value"))

    @cached_property
    def satisfaction_est(self) -> np.ndarray:
        return np.clip(self._pop.satisfaction + self._noise("satisfaction"), -1.0, 1.0)

    @cached_property
    def risk_est(self) -> np.ndarray:
        """Estimated annual churn probability."""
        if self.purchase is not None:
            # Gone a year from now: not alive now, or dropping out after one of the year's
            # expected purchases (posterior dropout a/(a+b+x) for the alive).
            pc, x = self.purchase, self.frequency
            rate = buying.expected_rate(x, self.T, pc.r, pc.alpha)
            stay = np.exp(-rate * pc.a / (pc.a + pc.b + x))
            return 1.0 - self.p_alive * stay
        return np.clip(self._pop.base_churn * np.exp(self._noise("risk")), 0.0, 1.0)

    @cached_property
    def needs_est(self) -> np.ndarray:
        pop = self._pop
        z = self._errors["needs"]
        est = np.clip(pop.needs + self.knowledge_sd[:, None] * z / pop.needs.shape[1], 0.0, None)
        return est / np.maximum(est.sum(axis=1, keepdims=True), 1e-9)

    @cached_property
    def needs_distance_est(self) -> np.ndarray:
        return np.clip(self._pop.needs_distance + 0.5 * self._noise("needs_distance"), 0.0, 1.0)

    @cached_property
    def complaints_est(self) -> np.ndarray:
        return self._count("complaints")

    @cached_property
    def late_payments_est(self) -> np.ndarray:
        return self._count("late_payments")

    @cached_property
    def destructive_est(self) -> np.ndarray:
        return self._flag("destructive", self._pop.destructive)

    @cached_property
    def innovator_est(self) -> np.ndarray:
        return self._flag("innovator", self._pop.innovator)

    @cached_property
    def deal_seeker_est(self) -> np.ndarray:
        return self._flag("deal_seeker", self._pop.deal_seeker > 0.5)

    @cached_property
    def profit_est(self) -> np.ndarray:
        """Estimated contribution per year: margin on spend less the cost of serving them."""
        return self.value_est * self.price * self.margin - self.service_cost

    @cached_property
    def clv_est(self) -> np.ndarray:
        """Estimated lifetime contribution: profit per year over the expected remaining life
        (1 / annual churn risk years, at most 50)."""
        years_left = 1.0 / np.maximum(self.risk_est, 0.02)
        return self.profit_est * years_left


class Firm(mesa.Agent):
    """Quality, training, reputation, CRM capabilities, knowledge of each customer, and the ledger."""

    def __init__(
        self,
        model: mesa.Model,
        n: int,
        quality: float,
        training: float,
        reputation: float,
        knowledge_sd: float,
        knowledge_learning: float,
        knowledge_floor: float,
        rng: np.random.Generator,
        needs_dims: int,
        capabilities: Capabilities | None = None,
    ) -> None:
        super().__init__(model)
        self.capabilities = capabilities or Capabilities(
            dict.fromkeys(CAPABILITIES, 0.5), 0.5, 730.0, 0.0)
        # One persistent error per person and attribute, drawn in a fixed order so that every
        # policy run on the same seed misjudges the same people in the same way.
        self.errors = {name: rng.standard_normal(n).astype(np.float32) for name in ERRORS}
        self.errors["needs"] = rng.standard_normal((n, needs_dims)).astype(np.float32)
        self.quality = quality
        self.training = training
        self.reputation = reputation
        self.knowledge_sd = np.full(n, knowledge_sd, dtype=np.float32)
        self.learning = knowledge_learning
        self.floor = min(knowledge_floor, knowledge_sd)  # a floor never adds noise

    def observe(self, pop: Population, degree: np.ndarray, step: int, period_days: float,
                policy_rng: np.random.Generator | np.ndarray, margin: float, service_cost: float,
                purchase=None) -> FirmView:
        # The targeting uniforms, from the policy stream (or already drawn from it: (2, n)).
        u, u_due = (policy_rng.random((2, pop.n)) if isinstance(policy_rng, np.random.Generator)
                    else policy_rng)
        # Technology and data multiply the precision (1 / variance) of every estimate.
        precision = self.capabilities.precision()
        sd = self.knowledge_sd if precision == 1.0 else \
            (self.knowledge_sd / np.sqrt(precision)).astype(np.float32)
        return FirmView(pop, degree, sd, step, period_days, self.errors, u, u_due, margin,
                        service_cost, self.quality, self.training, purchase, self.capabilities)

    def learn(self, interacted: np.ndarray, strength: np.ndarray | float = 1.0) -> None:
        """Each interaction removes ``learning`` of the remaining noise (``strength`` interactions' worth)."""
        # Only the people who interacted change (the rest are at or above the floor already);
        # on a copy, so a FirmView handed out earlier keeps what the firm knew then.
        idx = np.flatnonzero(interacted)
        s = strength[idx] if np.ndim(strength) else np.float64(strength)
        sd = self.knowledge_sd.copy()
        sd[idx] = np.maximum(sd[idx] * (1.0 - self.learning) ** s, self.floor)
        self.knowledge_sd = sd
