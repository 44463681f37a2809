"""The shape every policy has: ``decide(view, budget, step) -> Actions``.

A policy sees only the firm's knowledge (``FirmView``), spends exactly the CRM budget it is
given, and returns ``Actions``; the model applies them. Every lever of the catalogue works on
every framework; frameworks differ by their logic: how they split the budget among levers
(``allocate``), whom each lever reaches first or not at all (``priority``, -inf leaves a
person out) and how they learn (``observe_outcome``). What a targeted tactic cannot spend
(too few people to reach), and the share of no enabled tactic, buys media when the policy
enables ``ads`` (whose response saturates, so the leftover earns less and less) and is
otherwise left ``unspent`` (``metrics.TIMESERIES``); spend + unspent is the same budget for
every policy.

Every targeted tactic keeps a control group (``policy.holdout_share``; ``setup_controls``,
``crmsim.levers``): the policy books each lever's spend and the firm's records in a
``LeverBook``, from which ``levers_table`` gives each lever's incremental effect and closed
loops (``ReturnTracker``) learn.

A framework declares its parameters' constraints next to its class (``_parameter_constraints``,
checked by ``crmsim.constraints``); defining a subclass with a ``name`` registers it, and the
modules of this package are discovered, so adding a framework is its class and its YAML.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..actions import Actions
from ..constraints import Constraint, Interval
from ..firm import FirmView
from ..levers import ControlGroup, LeverBook
from ..population import ACTIVE, LAPSED, OUTSIDE, PROSPECT
from ..tactics import Tactic, Termination
from ..units import DAYS_PER_YEAR

SHARE = Interval(0.0, 1.0)
FALLBACK = "ads"   # saturating media: it takes what the targeted tactics leave, if enabled


class Policy:
    name: ClassVar[str]
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}   # its ``params``
    registry: ClassVar[dict[str, type[Policy]]] = {}
    book: LeverBook | None = None     # spend per lever and the firm's records (setup_controls)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            Policy.registry[cls.name] = cls

    def __init__(self, tactics: dict[str, Tactic], shares: dict[str, float],
                 params: dict[str, Any], termination: Termination) -> None:
        self.tactics = tactics
        self.shares = shares            # enabled tactics and their configured budget shares
        self.params = params
        self.termination = termination

    # -- what frameworks customise ---------------------------------------------------------
    def allocate(self, view: FirmView, budget: float, step: int) -> dict[str, float]:
        """Money per tactic; by default the configured shares, normalised to at most 1."""
        return split(budget, self.shares)

    def priority(self, tactic: str, view: FirmView) -> np.ndarray | None:
        """Whom ``tactic`` reaches first (highest first); None = at random."""
        return None

    def per_step(self, view: FirmView, key: str, compute) -> Any:
        """``compute()`` once per step (a segment several tactics rank by, say)."""
        if getattr(self, "_cache_step", None) != view.step:
            self._cache, self._cache_step = {}, view.step
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def observe_outcome(self, view: FirmView, step: int) -> None:
        """Hook for closed-loop frameworks: called with each new view before deciding."""

    # -- the shared machinery --------------------------------------------------------------
    def setup_controls(self, share: float, seed: np.random.SeedSequence,
                       discount_rate: float) -> None:
        """Give every enabled tactic that reaches people one by one its control group of
        ``share`` (``policy.holdout_share``), each from its own stream under ``seed``."""
        self.book = LeverBook(discount_rate)
        for name in self.shares:
            tactic = self.tactics[name]
            tactic.control = (ControlGroup(name, share, seed, self.book.records)
                              if tactic.control_group else None)

    def controls(self) -> dict[str, ControlGroup]:
        """The enabled tactics' control groups that hold anyone out (share > 0)."""
        return {name: self.tactics[name].control for name in self.shares
                if self.tactics[name].control is not None and self.tactics[name].control.share > 0}

    def levers_table(self, view: FirmView):
        """``levers.parquet``: one row per enabled lever (and termination when it spent), from
        the firm's records at ``view`` (the run's end); see ``crmsim.levers``."""
        if self.book is None:
            raise RuntimeError("levers_table needs setup_controls first (CRMModel calls it)")
        order = list(self.shares) + (["termination"] if "termination" in self.book.spend else [])
        return self.book.table(view, self.controls(), order)

    def decide(self, view: FirmView, budget: float, step: int) -> Actions:
        actions = Actions(view.n)
        total = max(budget, 0.0)
        if self.book is not None:
            self.book.observe(view)
        self.observe_outcome(view, step)
        self.termination.run(view, actions, budget)
        budget = max(budget - actions.total_spend, 0.0)   # ending relationships is paid first
        allocation = self.allocate(view, budget, step)
        self.reached: dict[str, np.ndarray] = {}
        self.spent: dict[str, float] = {}
        for name, money in allocation.items():
            if name == FALLBACK or money <= 0:
                continue
            before = actions.total_spend
            self.reached[name] = self.tactics[name].run(view, money, actions,
                                                        self.priority(name, view))
            self.spent[name] = actions.total_spend - before
        if FALLBACK in self.shares:
            # Run every step, with or without money: the media's carry-over still works.
            leftover = max(budget - actions.total_spend + _spent(actions, "termination"), 0.0)
            before = actions.total_spend
            self.reached[FALLBACK] = self.tactics[FALLBACK].run(view, leftover, actions)
            self.spent[FALLBACK] = actions.total_spend - before
        actions.unspent = max(total - actions.total_spend, 0.0)
        if self.book is not None:
            for name, money in self.spent.items():
                self.book.pay(name, self.tactics[name].category, money, view)
            if _spent(actions, "termination") > 0:
                self.book.pay("termination", "termination", _spent(actions, "termination"), view)
        return actions

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shares={self.shares})"


def split(budget: float, shares: dict[str, float]) -> dict[str, float]:
    """``budget`` by ``shares``; shares adding up to more than 1 are scaled down to 1."""
    total = sum(shares.values())
    scale = 1.0 / total if total > 1.0 else 1.0
    return {name: budget * share * scale for name, share in shares.items()}


def _spent(actions: Actions, category: str) -> float:
    return actions.spend.get(category, 0.0)


def top_share(score: np.ndarray, eligible: np.ndarray, share: float) -> np.ndarray:
    """Mask of the top ``share`` of ``eligible`` people by ``score``."""
    idx = np.flatnonzero(eligible)
    k = int(round(share * idx.size))
    mask = np.zeros(score.shape[0], dtype=bool)
    if k > 0:
        mask[idx[np.argpartition(-score[idx], k - 1)[:k]]] = True
    return mask


def focus(score: np.ndarray, group: np.ndarray) -> np.ndarray:
    """A priority that puts ``group`` first, ordered by ``score`` within and outside it."""
    s = np.asarray(score, dtype=np.float64)
    span = float(np.ptp(s)) + 1.0 if s.size else 1.0
    return s + group * (span + abs(float(s.max(initial=0.0))) + 1.0)


def only(score: np.ndarray, group: np.ndarray) -> np.ndarray:
    """A priority that reaches ``group`` alone, ordered by ``score`` (-inf leaves out)."""
    return np.where(group, np.asarray(score, dtype=np.float64), -np.inf)


class ReturnTracker:
    """Closed-loop budgeting: measure each area's return on its spend and shift money to it.

    Areas are groups of tactics. Between reviews the tracker remembers what each area spent
    and whom it reached. At a review it values the period from the firm's own records:

    - a tactic with a control group (``crmsim.levers``) by its **incremental** margin: the
      gross margin on the sales its treated arm booked in the period minus what its control arm
      booked, per person, times the treated arm's size (Ascarza 2018: target on the response,
      not on risk; customers who would have stayed or bought anyway earn nothing), shrunk
      toward zero by its sampling error (``ControlGroup.period_gain``). The arms
      persist, so a lever's lasting effects (customers kept, spend raised) keep counting in
      later periods: in a steady state this is its margin per money; it lags for levers whose
      gains come later.
    - a tactic without one (media, firm-level levers, or every tactic at ``holdout_share=0``)
      by the gross measure: prospects reached who became customers (acquisition), customers
      reached who stayed beyond what their estimated risk predicted (retention), extra basket
      share (penetration), each at their estimated margin per year, times the period's years
      when control groups are in use (so both measures are margin in the period); without any
      control group the run rate itself, as before.

    Return = value / spend; shares move toward the returns at ``rate``, never below ``floor``.
    """

    def __init__(self, areas: dict[str, list[str]], shares: dict[str, float], rate: float,
                 floor: float) -> None:
        self.areas = areas
        self.shares = dict(shares)
        self.rate = rate
        self.floor = floor
        self.last_returns: dict[str, float] = {}
        self._reset()

    def _reset(self) -> None:
        self.spend = dict.fromkeys(self.areas, 0.0)
        self.reached: dict[str, list[np.ndarray]] = {a: [] for a in self.areas}

    def record(self, area: str, idx: np.ndarray, money: float, incremental: bool = False) -> None:
        """What a tactic of ``area`` spent and reached this step; ``incremental``: it has a
        control group, and its value is measured by it rather than from ``idx``."""
        self.spend[area] += money
        if not incremental:
            self.reached[area].append(idx)

    def review(self, view: FirmView, start: dict[str, np.ndarray], years: float,
               controls: dict[str, ControlGroup] | None = None) -> None:
        """Measure the period since ``start`` (the firm's records then) and move the shares;
        ``controls``: the control groups of the areas' tactics that have one."""
        controls = controls or {}
        per_period = years if controls else 1.0
        returns = {}
        for area, tactics in self.areas.items():
            idx = _union(self.reached[area], view.n)
            money = self.spend[area]
            value = measured_value(area, idx, view, start, years) * per_period if idx.size else 0.0
            for t in tactics:
                if t in controls:
                    value += controls[t].period_gain(start["revenue"], start["day"], view.day,
                                                     view.margin)
            returns[area] = value / money if money > 0 else 0.0
        total = sum(max(r, 0.0) for r in returns.values())
        if total > 0:
            mixed = {a: (1 - self.rate) * self.shares[a] + self.rate * max(returns[a], 0.0) / total
                     for a in self.areas}
            floored = {a: max(v, self.floor) for a, v in mixed.items()}
            norm = sum(floored.values())
            self.shares = {a: v / norm for a, v in floored.items()}
        self.last_returns = returns
        self._reset()


def _union(parts: list[np.ndarray], n: int) -> np.ndarray:
    """The sorted distinct indices in ``parts`` (a mask: np.unique hashes, ~1 s at 10^6)."""
    seen = np.zeros(n, dtype=bool)
    for idx in parts:
        seen[idx] = True
    return np.flatnonzero(seen)


def measured_value(area: str, idx: np.ndarray, view: FirmView, start: dict[str, np.ndarray],
                   years: float) -> float:
    """Annualised margin the firm can attribute to an area's contacts over the last period."""
    if idx.size == 0:
        return 0.0
    margin = view.value_est[idx] * view.margin       # per year
    now_active = view.status[idx] == ACTIVE
    if area == "acquisition":
        # Prospects at the start, or people who entered the market since (market.growth).
        was_out = (start["status"][idx] == PROSPECT) | (start["status"][idx] == OUTSIDE)
        return float((margin * (was_out & now_active)).sum())
    if area == "retention":
        expected = (1.0 - view.risk_est[idx]) ** years
        return float((margin * (now_active - expected)).sum())
    if area == "win_back":
        return float((margin * ((start["status"][idx] == LAPSED) & now_active)).sum())
    if area == "penetration":
        gained = view.penetration[idx] - start["penetration"][idx]
        return float((margin * gained * now_active).sum())
    raise ValueError(f"unknown area {area!r}")


class ClosedLoop(Policy):
    """A policy whose ``areas`` share the budget by measured return, reviewed periodically.

    Params: ``review_days`` (days between reviews), ``learning_rate`` (how far shares move
    toward the measured returns at a review), ``min_area_share``. Tactics outside the areas keep their
    configured shares; the rest of the budget is split among the areas, and within an area by
    its tactics' configured shares.
    """

    areas: ClassVar[dict[str, list[str]]]
    _parameter_constraints = {"review_days": Interval(1.0, 3650.0), "learning_rate": SHARE,
                              "min_area_share": SHARE}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        p = self.params
        self.tracker = ReturnTracker(self.areas, self.initial_area_shares(), p["learning_rate"],
                                     p["min_area_share"])
        self._start: dict[str, np.ndarray] | None = None
        self._start_day = 0.0

    def initial_area_shares(self) -> dict[str, float]:
        return {a: 1.0 / len(self.areas) for a in self.areas}

    def observe_outcome(self, view: FirmView, step: int) -> None:
        # A review at the step nearest to ``review_days`` after the last one.
        elapsed = view.day - self._start_day
        if self._start is not None and elapsed + view.dt * DAYS_PER_YEAR / 2 >= self.params["review_days"]:
            controls = {t: g for t, g in self.controls().items()
                        if any(t in ts for ts in self.areas.values())}
            self.tracker.review(view, self._start, elapsed / DAYS_PER_YEAR, controls)
            self._start = None
        if self._start is None:
            self._start = {"status": view.status.copy(), "penetration": view.penetration.copy(),
                           "revenue": np.array(view.revenue, dtype=np.float64),
                           "day": view.day}
            self._start_day = view.day

    def allocate(self, view: FirmView, budget: float, step: int) -> dict[str, float]:
        in_areas = {t for ts in self.areas.values() for t in ts}
        money = split(budget, {t: s for t, s in self.shares.items() if t not in in_areas})
        rest = max(budget - sum(money.values()), 0.0)
        for area, tactics in self.areas.items():
            enabled = [t for t in tactics if t in self.shares]
            weight = sum(self.shares[t] for t in enabled)
            for t in enabled:
                if weight > 0:
                    money[t] = rest * self.tracker.shares[area] * self.shares[t] / weight
        return money

    def decide(self, view: FirmView, budget: float, step: int) -> Actions:
        actions = super().decide(view, budget, step)
        controlled = self.controls()
        for area, tactics in self.areas.items():
            for t in tactics:
                if t in self.reached:
                    self.tracker.record(area, self.reached[t], self.spent[t], t in controlled)
        return actions
