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

Each person is handled once; at most ``max_share_per_year`` of active customers a year, and no
more than the CRM budget pays for (ending relationships is paid before any other tactic).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..actions import Actions
from ..constraints import Constraint, Interval, ListOf, Options, check_params
from ..firm import FirmView
from ..population import ACTIVE
from .base import NONNEGATIVE, SHARE

RULES = ("serial_complainers", "late_payers", "destructive", "deal_seekers", "unprofitable")
METHODS = ("direct", "price_increase", "unbundle", "redesign")


class Termination:
    """Rules pick, a method ends; parameters declared below (per case, per year or shares)."""

    category = "termination"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "complaints_min": NONNEGATIVE,        # serial complainer: at least this many complaints
        "late_payments_min": NONNEGATIVE,     # persistent late payer
        "unprofitable_below": Interval(),     # estimated contribution per year below this
        "max_share_per_year": NONNEGATIVE,    # share of active customers handled per year at most
        "cost_per_case": NONNEGATIVE,         # administration per person handled
        "price_rise": NONNEGATIVE,
        "unbundle_fit_loss": SHARE,
        "redesign_fit_loss": SHARE,
        "redesign_spill": SHARE,
    }

    @classmethod
    def check(cls, rules: Any, method: Any, params: dict[str, Any]) -> None:
        ListOf(Options(RULES)).check("policy.termination.rules", rules)
        Options(METHODS).check("policy.termination.method", method)
        check_params("policy.termination.params", params, cls._parameter_constraints, "termination")


    def __init__(self, rules: list[str], method: str, params: dict[str, Any]) -> None:
        self.rules = list(rules)
        self.method = method
        for key in self._parameter_constraints:
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
        """Handle the flagged: at most ``max_share_per_year`` of active customers a year (spread
        evenly over the steps) and what ``budget`` pays."""
        if not self.rules:
            return np.arange(0)
        if self._handled is None:
            self._handled = np.zeros(view.n, dtype=bool)
        active = view.status == ACTIVE
        flagged = np.flatnonzero(self.flag(view) & active & ~self._handled)
        cap = int(self.max_share_per_year * view.dt * np.count_nonzero(active))
        if self.cost_per_case > 0:
            cap = int(min(cap, max(budget, 0.0) // self.cost_per_case))
        if flagged.size > cap:
            flagged = flagged[np.argsort(view.u[flagged])[:cap]]
        self._handled[flagged] = True
        actions.pay(self.category, flagged.size * self.cost_per_case)
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
