"""Offering tactics: what the customer gets.

``customization`` (IDIC's Customize) moves a customer's offering toward their needs: each
customization closes a share of the gap between the standard offering and the needs, but only
as well as the firm knows those needs (the step is scaled by 1 - knowledge noise), at a cost
per customization that grows with how unusual the needs are. ``cross_sell`` (QCi's
penetration: cross-sell and up-sell) is a sales offer: only a share of the contacted take it
(``response_rate`` times their satisfaction: only satisfied customers buy more, seed 002), and
those who do spend ``take_uplift`` more for good, up to a cap. Offers tire: each recent offer
(fading with a half-life of ``fatigue_half_life_days``) cuts the response by ``fatigue_drop``,
and a customer who does not take an offer is annoyed with a chance of ``annoy_share`` times
(1 + recent offers); the annoyed keep a churn hazard ``annoy_hazard`` higher (a field
experiment with 65,000 customers found retention contacts raised churn from 6.4% to 10.0%,
Ascarza, Iyengar & Schleicher 2016, "The perils of proactive churn prevention using plan
recommendations", Journal of Marketing Research; the rates here are assumptions). Both are
contacts, at most one per ``cadence_days`` for each person. Both reset when a customer lapses
(the model's transitions).
"""

from __future__ import annotations

import numpy as np

from ..actions import Actions
from ..firm import FirmView
from .base import CADENCE, NONNEGATIVE, POSITIVE, SHARE, Tactic, take_affordable


class Customization(Tactic):
    name = "customization"
    category = "offering"
    capability = "technology_data"
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

    def unit_costs(self, idx: np.ndarray, view: FirmView) -> np.ndarray:
        return self._unit[idx]

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        actions.add("customization", idx, self.step * self._accuracy[idx])


class CrossSell(Tactic):
    name = "cross_sell"
    category = "offering"
    capability = "people"
    _parameter_constraints = {
        "cost_per_contact": POSITIVE, "response_rate": SHARE, "take_uplift": NONNEGATIVE,
        "max_uplift": NONNEGATIVE, "cadence_days": CADENCE, "fatigue_half_life_days": POSITIVE,
        "fatigue_drop": SHARE, "annoy_share": SHARE, "annoy_hazard": NONNEGATIVE}

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._fatigue: np.ndarray | None = None   # recent offers, as of the last offer
        self._offered_day: np.ndarray | None = None

    def candidates(self, view: FirmView) -> np.ndarray:
        return super().candidates(view) & (view.penetration < self.max_uplift)

    def recent_offers(self, idx: np.ndarray, view: FirmView) -> np.ndarray:
        """Offers made to ``idx`` before now, each faded by the days since it was made."""
        if self._fatigue is None:
            self._fatigue = np.zeros(view.n)
            self._offered_day = np.full(view.n, -np.inf)
        elapsed = view.day - self._offered_day[idx]
        return self._fatigue[idx] * np.power(0.5, elapsed / self.fatigue_half_life_days)

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        recent = self.recent_offers(idx, view)
        actions.add("offer_take", idx, self.response_rate * (1.0 - self.fatigue_drop) ** recent)
        actions.add("offer_gain", idx, self.take_uplift)
        actions.add("offer_annoy", idx, np.minimum(self.annoy_share * (1.0 + recent), 1.0))
        actions.add("annoy_hazard", idx, self.annoy_hazard)
        self._fatigue[idx] = recent + 1.0
        self._offered_day[idx] = view.day


__all__ = ["CrossSell", "Customization"]
