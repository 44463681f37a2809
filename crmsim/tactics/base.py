"""The shape every tactic has, so policies can swap one for another.

A tactic is a lever with a target set, a cost and an effect:
``select(view, budget, priority) -> indices`` picks whom it reaches from what the firm knows
(the highest ``priority`` first, at random when the policy gives none), ``cost(indices)``
prices that, and ``apply(actions, indices)`` writes the effect into the step's ``Actions``.
``run`` does the three and books the spend under the tactic's category. Parameter values come
from ``configs/policy/tactics/catalogue.yaml`` (one place, with their sources).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..actions import Actions
from ..errors import ConfigError
from ..firm import FirmView
from ..population import ACTIVE


class Tactic:
    name: ClassVar[str]
    category: ClassVar[str]            # ledger category of its spend
    params: ClassVar[tuple[str, ...]] = ("cost_per_customer",)
    audience: ClassVar[int] = ACTIVE   # the status of the people it can reach
    effects: ClassVar[dict[str, str]] = {}   # person effect -> the parameter that sizes it

    def __init__(self, **params: Any) -> None:
        for key in self.params:
            setattr(self, key, float(params[key]))

    @classmethod
    def check(cls, prefix: str, params: dict[str, Any]) -> None:
        """Stop on unknown, missing or negative parameters, naming the config key."""
        allowed = {"enabled", "share", *cls.params}
        for key in params:
            if key not in allowed:
                raise ConfigError(f"{prefix}.{key}", params[key],
                                  f"a parameter of '{cls.name}': {', '.join(sorted(allowed))}")
        for key in cls.params:
            if key not in params:
                raise ConfigError(f"{prefix}.{key}", None, "a number (this parameter has no value)")
            value = params[key]
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{prefix}.{key}", value, "a finite number >= 0")
        if "cost_per_customer" in cls.params and params.get("cost_per_customer") == 0:
            raise ConfigError(f"{prefix}.cost_per_customer", 0, "a cost > 0")

    # -- the interface ----------------------------------------------------------------------
    def candidates(self, view: FirmView) -> np.ndarray:
        return view.status == self.audience

    def unit_cost(self, view: FirmView) -> float:
        return self.cost_per_customer

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None) -> np.ndarray:
        candidates = self.candidates(view)
        # Compared as floats first: budget // cost can exceed any int (firm.crm_budget=1e308).
        k = int(min(budget // self.unit_cost(view), candidates.size)) if budget > 0 else 0
        order = view.u if priority is None else -priority
        return take_first(candidates, order, k)

    def cost(self, idx: np.ndarray) -> float:
        return idx.size * self.cost_per_customer

    def apply(self, actions: Actions, idx: np.ndarray) -> None:
        for effect, param in self.effects.items():
            actions.add(effect, idx, getattr(self, param))

    def run(self, view: FirmView, budget: float, actions: Actions,
            priority: np.ndarray | None = None) -> np.ndarray:
        idx = self.select(view, budget, priority)
        actions.pay(self.category, self.cost(idx))
        self.apply(actions, idx)
        return idx

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k):g}" for k in self.params)
        return f"{type(self).__name__}({args})"


def take_affordable(candidates: np.ndarray, order_key: np.ndarray, unit_cost: np.ndarray,
                    budget: float) -> np.ndarray:
    """Candidates in ``order_key`` order (smallest first, ties by index) for as long as the
    budget lasts, each costing its own ``unit_cost``."""
    idx = np.flatnonzero(candidates)
    if idx.size == 0 or budget <= 0:
        return idx[:0]
    # Only the cheapest-case number of people can be afforded: sort just the candidates whose
    # key is within that many of the smallest (all ties included, so the result is the prefix
    # of the full stable sort), not all of them.
    cheapest = float(unit_cost[idx].min())
    if cheapest > 0 and budget / cheapest < idx.size - 1:
        k = int(budget / cheapest) + 1
        keys = order_key[idx]
        threshold = np.partition(keys, k - 1)[k - 1]
        idx = idx[keys <= threshold]
    idx = idx[np.argsort(order_key[idx], kind="stable")]
    return idx[:np.searchsorted(np.cumsum(unit_cost[idx]), budget, side="right")]


def take_first(candidates: np.ndarray, order_key: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` candidates with the smallest ``order_key`` (all of them if fewer)."""
    idx = np.flatnonzero(candidates)
    if k <= 0:
        return idx[:0]
    if k >= idx.size:
        return idx
    return idx[np.argpartition(order_key[idx], k - 1)[:k]]
