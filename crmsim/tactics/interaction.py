"""Interaction tactics (seed 004): a relationship is two-way communication.

``feedback_request`` asks customers what they think: the firm learns about them, and people who
are heard feel better (a dissatisfied customer asked for feedback regains some satisfaction).
``triggered_contact`` reaches out when a signal fires: estimated satisfaction below a threshold,
high estimated churn risk or long silence: the contact is a service encounter with personal
attention, and the firm learns. ``information`` is investment in data and IT: the firm learns
about everyone it has records of without contacting them.
"""

from __future__ import annotations

import numpy as np

from ..actions import Actions
from ..firm import FirmView
from ..population import ACTIVE, LAPSED
from .base import Tactic


class FeedbackRequest(Tactic):
    name = "feedback_request"
    category = "interaction"
    params = ("cost_per_customer", "knowledge", "heard")
    effects = {"knowledge": "knowledge", "heard": "heard"}


class TriggeredContact(Tactic):
    name = "triggered_contact"
    category = "interaction"
    params = ("cost_per_customer", "bonus", "knowledge", "satisfaction_below", "risk_above")

    def candidates(self, view: FirmView) -> np.ndarray:
        triggered = (view.satisfaction_est < self.satisfaction_below) | (
            view.risk_est > self.risk_above)
        return super().candidates(view) & triggered

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None):
        # The most dissatisfied first unless the policy ranks them itself.
        rank = -view.satisfaction_est if priority is None else priority
        return super().select(view, budget, rank)

    def apply(self, actions: Actions, idx: np.ndarray) -> None:
        actions.add("encounter_lift", idx, 1.0)
        actions.add("experience_bonus", idx, self.bonus)
        actions.add("knowledge", idx, self.knowledge)


class Information(Tactic):
    name = "information"
    category = "interaction"
    params = ("cost_per_customer", "knowledge")
    effects = {"knowledge": "knowledge"}

    def candidates(self, view: FirmView) -> np.ndarray:
        return (view.status == ACTIVE) | (view.status == LAPSED)

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None):
        # Data is worth most where the firm knows least.
        rank = view.knowledge_sd.astype(np.float64) if priority is None else priority
        return super().select(view, budget, rank)
