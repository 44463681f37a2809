"""Interaction tactics (seed 004): a relationship is two-way communication.

``feedback_request`` asks customers what they think: the firm learns about them, and people who
are heard feel better (a dissatisfied customer asked for feedback regains some satisfaction).
``triggered_contact`` reaches out when a signal fires: estimated satisfaction below a threshold
or high estimated churn risk: the contact is a service encounter with personal attention, and
the firm learns. An innovator who is asked for feedback brings an idea that lifts the firm's
quality (seed 003: inspirations drive product change). ``welcome`` contacts new customers in
their first ``within_days`` (QCi's welcoming). All three are contacts, at most one per
``cadence_days`` for each person.
``information`` is investment in data and IT, billed per person-year of records kept: the firm
learns about everyone it covers without contacting them (``knowledge_per_year`` interactions'
worth of learning a year).
"""

from __future__ import annotations

import numpy as np

from ..actions import Actions
from ..constraints import Interval
from ..firm import FirmView
from ..population import ACTIVE, LAPSED
from ..units import DAYS_PER_YEAR
from .base import CADENCE, NONNEGATIVE, POSITIVE, Coverage, Tactic


class FeedbackRequest(Tactic):
    name = "feedback_request"
    category = "interaction"
    capability = "people"
    effects = {"knowledge": "knowledge", "heard": "heard", "ideas": "idea_quality"}
    _parameter_constraints = {"cost_per_contact": POSITIVE, "knowledge": NONNEGATIVE,
                              "heard": Interval(0.0, 2.0), "idea_quality": NONNEGATIVE,
                              "cadence_days": CADENCE}


class Welcome(Tactic):
    """Welcoming a new customer (QCi's welcoming; seed 001: new customers leave at the first
    bad service): a personal contact within ``within_days`` of joining: one more encounter with
    ``bonus`` at it, ``commitment`` gained and the firm learns. Once a year at most."""

    name = "welcome"
    category = "interaction"
    capability = "people"
    _parameter_constraints = {"cost_per_contact": POSITIVE, "bonus": NONNEGATIVE,
                              "commitment": Interval(0.0, 1.0), "knowledge": NONNEGATIVE,
                              "within_days": Interval(1.0, 3650.0), "cadence_days": CADENCE}

    def candidates(self, view: FirmView) -> np.ndarray:
        days = view.tenure * (view.dt * DAYS_PER_YEAR)
        return super().candidates(view) & (days < self.within_days)

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None):
        # The newest first unless the policy ranks them itself.
        rank = -view.tenure.astype(np.float64) if priority is None else priority
        return super().select(view, budget, rank)

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        actions.add("encounter_lift", idx, 1.0)
        actions.add("contact_bonus", idx, self.bonus)
        actions.add("commitment", idx, self.commitment)
        actions.add("knowledge", idx, self.knowledge)


class TriggeredContact(Tactic):
    name = "triggered_contact"
    category = "interaction"
    capability = "people"
    _parameter_constraints = {
        "cost_per_contact": POSITIVE, "bonus": NONNEGATIVE, "knowledge": NONNEGATIVE,
        "satisfaction_below": Interval(-1.0, 1.0), "risk_above": Interval(0.0, 1.0),
        "cadence_days": CADENCE}

    def candidates(self, view: FirmView) -> np.ndarray:
        triggered = (view.satisfaction_est < self.satisfaction_below) | (
            view.risk_est > self.risk_above)
        return super().candidates(view) & triggered

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None):
        # The most dissatisfied first unless the policy ranks them itself.
        rank = -view.satisfaction_est if priority is None else priority
        return super().select(view, budget, rank)

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        actions.add("encounter_lift", idx, 1.0)
        actions.add("contact_bonus", idx, self.bonus)
        actions.add("knowledge", idx, self.knowledge)


class Information(Coverage):
    name = "information"
    category = "interaction"
    capability = "technology_data"
    _parameter_constraints = {"cost_per_year": POSITIVE, "knowledge_per_year": NONNEGATIVE}

    def candidates(self, view: FirmView) -> np.ndarray:
        return (view.status == ACTIVE) | (view.status == LAPSED)

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None):
        # Data is worth most where the firm knows least.
        rank = view.knowledge_sd.astype(np.float64) if priority is None else priority
        return super().select(view, budget, rank)

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        actions.add("knowledge", idx, self.knowledge_per_year * view.dt)
