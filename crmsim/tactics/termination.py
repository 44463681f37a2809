"""Ending relationships (seed 001).

Keep the satisfied, the innovation-suggesting and the valuable; end serial complainers,
persistent late payers, destructive customers and constant deal-seekers — or, more generally,
the unprofitable. A rule flags people from what the firm knows (noisy estimates, so some
flags are wrong); a method ends the relationship:

- ``direct``: the firm ends it now (the person is terminated and tells a bad story);
- ``price_increase``: a filter: the flagged pay more; the profitable stay, the rest leave;
- ``unbundle``: the extras they relied on are taken out of their offering (fit falls);
- ``redesign``: the product moves away from what they want (their fit falls a lot), and a
  little for everyone else too.

Each person is handled once; at most ``max_share`` of active customers per step, and no more
than the CRM budget pays for (ending relationships is paid before any other tactic).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..actions import Actions
from ..errors import ConfigError
from ..firm import FirmView
from ..population import ACTIVE

RULES = ("serial_complainers", "late_payers", "destructive", "deal_seekers", "unprofitable")
METHODS = ("direct", "price_increase", "unbundle", "redesign")
PARAMS = ("complaints_min", "late_payments_min", "unprofitable_below", "max_share",
          "cost_per_customer", "price_rise", "unbundle_fit_loss", "redesign_fit_loss",
          "redesign_spill")


def check_termination(rules: list[str], method: str, params: dict[str, Any]) -> None:
    for rule in rules:
        if rule not in RULES:
            raise ConfigError("policy.termination.rules", rule, "a list drawn from " + ", ".join(RULES))
    if method not in METHODS:
        raise ConfigError("policy.termination.method", method, "one of " + ", ".join(METHODS))
    for key, value in params.items():
        if key not in PARAMS:
            raise ConfigError(f"policy.termination.params.{key}", value,
                              "a parameter of termination: " + ", ".join(PARAMS))
    for key in PARAMS:
        value = params.get(key)
        if value is None:
            raise ConfigError(f"policy.termination.params.{key}", None, "a number")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"policy.termination.params.{key}", value, "a finite number")
        if key != "unprofitable_below" and value < 0:
            raise ConfigError(f"policy.termination.params.{key}", value, "a number >= 0")


class Termination:
    category = "termination"

    def __init__(self, rules: list[str], method: str, params: dict[str, Any]) -> None:
        self.rules = list(rules)
        self.method = method
        for key in PARAMS:
            setattr(self, key, float(params[key]))
        self._handled: np.ndarray | None = None

    def flag(self, view: FirmView) -> np.ndarray:
        """Whom the rules pick, from the firm's estimates."""
        flagged = np.zeros(view.n, dtype=bool)
        for rule in self.rules:
            if rule == "serial_complainers":
                flagged |= view.complaints_est >= self.complaints_min
            elif rule == "late_payers":
                flagged |= view.late_payments_est >= self.late_payments_min
            elif rule == "destructive":
                flagged |= view.destructive_est > 0.5
            elif rule == "deal_seekers":
                flagged |= view.deal_seeker_est > 0.5
            elif rule == "unprofitable":
                flagged |= view.profit_est < self.unprofitable_below
        return flagged

    def run(self, view: FirmView, actions: Actions, budget: float) -> np.ndarray:
        """Handle the flagged, at most ``max_share`` of active customers and what ``budget`` pays."""
        if not self.rules:
            return np.arange(0)
        if self._handled is None:
            self._handled = np.zeros(view.n, dtype=bool)
        active = view.status == ACTIVE
        flagged = np.flatnonzero(self.flag(view) & active & ~self._handled)
        cap = int(self.max_share * np.count_nonzero(active))
        if self.cost_per_customer > 0:
            cap = int(min(cap, max(budget, 0.0) // self.cost_per_customer))
        if flagged.size > cap:
            flagged = flagged[np.argsort(view.u[flagged])[:cap]]
        self._handled[flagged] = True
        actions.pay(self.category, flagged.size * self.cost_per_customer)
        if self.method == "direct":
            actions.add("terminate", flagged, 1.0)
        elif self.method == "price_increase":
            actions.add("price", flagged, self.price_rise)
        elif self.method == "unbundle":
            actions.add("customization", flagged, -self.unbundle_fit_loss)
        elif self.method == "redesign":
            if flagged.size:
                others = np.flatnonzero(active)
                actions.add("customization", others, -self.redesign_spill)
                actions.add("customization", flagged, -(self.redesign_fit_loss - self.redesign_spill))
        return flagged
