"""The shape every policy has: ``decide(view, budget, step) -> Actions``.

A policy sees only the firm's knowledge (``FirmView``), spends exactly the CRM budget it is
given, and returns ``Actions``; the model applies them. Frameworks differ only in how they
split the budget among tactics (``allocate``) and whom each tactic reaches first
(``priority``). What a targeted tactic cannot spend (too few people to reach), and the share
of no enabled tactic, buys media when the policy enables ``ads`` (whose response saturates, so
the leftover earns less and less) and is otherwise left ``unspent`` (``metrics.TIMESERIES``);
spend + unspent is the same budget for every policy.

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
from ..population import ACTIVE, LAPSED, OUTSIDE, PROSPECT
from ..tactics import Tactic, Termination
from ..units import DAYS_PER_YEAR

SHARE = Interval(0.0, 1.0)
FALLBACK = "ads"   # saturating media: it takes what the targeted tactics leave, if enabled


class Policy:
    name: ClassVar[str]
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}   # its ``params``
    registry: ClassVar[dict[str, type[Policy]]] = {}

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
    def decide(self, view: FirmView, budget: float, step: int) -> Actions:
        actions = Actions(view.n)
        total = max(budget, 0.0)
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

    Areas are groups of tactics. Between reviews the tracker remembers whom each area reached
    and what it spent; at a review it values what happened to those people, from the firm's
    own records: prospects reached who became customers (acquisition), customers reached who
    stayed beyond what their estimated risk predicted (retention), extra basket share
    (penetration). Return = value / spend; shares move toward the returns at ``rate``, never
    below ``floor``.
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

    def record(self, area: str, idx: np.ndarray, money: float) -> None:
        self.spend[area] += money
        self.reached[area].append(idx)

    def review(self, view: FirmView, start: dict[str, np.ndarray], years: float) -> None:
        returns = {}
        for area in self.areas:
            parts = self.reached[area]
            idx = _union(parts, view.n)
            money = self.spend[area]
            returns[area] = measured_value(area, idx, view, start, years) / money if money > 0 else 0.0
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
            self.tracker.review(view, self._start, elapsed / DAYS_PER_YEAR)
            self._start = None
        if self._start is None:
            self._start = {"status": view.status.copy(), "penetration": view.penetration.copy()}
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
        for area, tactics in self.areas.items():
            for t in tactics:
                if t in self.reached:
                    self.tracker.record(area, self.reached[t], self.spent[t])
        return actions
