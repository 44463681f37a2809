"""Offering tactics: what the customer gets.

``customization`` (IDIC's Customize) moves a customer's offering toward their needs: each
customization closes a share of the gap between the standard offering and the needs, but only
as well as the firm knows those needs (the step is scaled by 1 - knowledge noise), at a cost
per customization that grows with how unusual the needs are. ``cross_sell`` (QCi's
penetration: cross-sell and up-sell) is a sales contact that adds products to a customer's
basket: spend rises for good, up to a cap. Both are contacts, at most one per ``cadence_days``
for each person.
"""

from __future__ import annotations

import numpy as np

from ..actions import Actions
from ..firm import FirmView
from .base import CADENCE, NONNEGATIVE, POSITIVE, SHARE, Tactic, take_affordable


class Customization(Tactic):
    name = "customization"
    category = "offering"
    _parameter_constraints = {"cost_per_contact": POSITIVE, "step": SHARE, "cadence_days": CADENCE}

    def candidates(self, view: FirmView) -> np.ndarray:
        return super().candidates(view) & (view.customization < 0.95)

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None):
        # Unusual needs cost more to meet: cost scales with the estimated distance.
        self._unit = self.cost_per_contact * (0.5 + view.needs_distance_est)
        self._accuracy = np.clip(1.0 - view.knowledge_sd, 0.0, 1.0)
        order = view.u if priority is None else -priority
        return take_affordable(self.candidates(view), order, self._unit, budget)

    def cost(self, idx: np.ndarray, view: FirmView) -> float:
        return float(self._unit[idx].sum())

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        actions.add("customization", idx, self.step * self._accuracy[idx])


class CrossSell(Tactic):
    name = "cross_sell"
    category = "offering"
    effects = {"penetration": "uplift"}
    _parameter_constraints = {"cost_per_contact": POSITIVE, "uplift": NONNEGATIVE,
                              "max_uplift": NONNEGATIVE, "cadence_days": CADENCE}

    def candidates(self, view: FirmView) -> np.ndarray:
        return super().candidates(view) & (view.penetration < self.max_uplift)


__all__ = ["CrossSell", "Customization"]
