"""The shape every tactic has, so policies can swap one for another.

A tactic is a lever with a target set, a cost and an effect:
``select(view, budget) -> indices`` picks whom it reaches from what the firm knows,
``cost(indices) -> money`` prices that, and ``apply(actions, indices)`` writes the effect into
the step's ``Actions``. ``run`` does the three and books the spend under the tactic's category.
Parameter values come from ``configs/policy/tactics/catalogue.yaml`` (one place, with sources).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..actions import Actions
from ..errors import ConfigError
from ..firm import FirmView


class Tactic:
    name: ClassVar[str]
    category: ClassVar[str]        # ledger category of its spend
    params: ClassVar[tuple[str, ...]] = ()

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
                                  f"one of the parameters of '{cls.name}': {', '.join(sorted(allowed))}")
        for key in cls.params:
            if key not in params:
                raise ConfigError(f"{prefix}.{key}", None, "a number (this parameter has no value)")
            value = params[key]
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{prefix}.{key}", value, "a finite number >= 0")

    def select(self, view: FirmView, budget: float) -> np.ndarray:
        raise NotImplementedError

    def cost(self, idx: np.ndarray) -> float:
        raise NotImplementedError

    def apply(self, actions: Actions, idx: np.ndarray) -> None:
        raise NotImplementedError

    def run(self, view: FirmView, budget: float, actions: Actions) -> np.ndarray:
        idx = self.select(view, budget)
        actions.pay(self.category, self.cost(idx))
        self.apply(actions, idx)
        return idx

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k):g}" for k in self.params)
        return f"{type(self).__name__}({args})"


def cheapest_first(candidates: np.ndarray, order_key: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` candidates with the smallest ``order_key`` (all of them if fewer)."""
    idx = np.flatnonzero(candidates)
    if k <= 0:
        return idx[:0]
    if k >= idx.size:
        return idx
    return idx[np.argpartition(order_key[idx], k - 1)[:k]]


def affordable(budget: float, unit_cost: float) -> int:
    if unit_cost <= 0:
        raise ValueError("a tactic's unit cost must be positive")
    return int(budget // unit_cost)
