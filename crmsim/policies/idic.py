"""IDIC (Peppers & Rogers 2004; seeds 000, 003): Identify, Differentiate, Interact, Customize.

The stages run in that order for each customer, and each stage needs the one before:
- Identify: know each customer: ``information`` (records) and ``capability_technology_data``
  (data and IT: every estimate gets more precise) shrink the noise in the firm's estimates.
- Differentiate by value *and* needs: the top ``target_share`` of active customers by
  estimated value are treated one by one; among them, needs decide the treatment: the firm's
  estimate of how far each one's needs are from the standard offering, and how well it knows
  those needs.
- Interact: ``feedback_request`` goes first to the valued customers whose needs the firm knows
  least (two-way contact is how it learns them); ``triggered_contact`` to valued customers who
  are slipping.
- Customize: ``customization`` only where the expected gain is worth its cost: the expected
  gain in fit (step x accuracy x the remaining gap to the estimated needs) times
  ``fit_worth`` (the share of a customer's estimated lifetime value the firm expects a unit of
  fit to secure: its own planning figure) times the estimated lifetime value, against the cost
  of that customization. Customers the firm does not yet know well gain little (low accuracy)
  and are left to Interact first.
- Share of customer: ``cross_sell`` to the valued customers the firm knows best (an offer
  that fits what they need), highest estimated value x accuracy first.
What is left buys acquisition (ads).
"""

from __future__ import annotations

import numpy as np

from ..constraints import Interval
from ..firm import FirmView
from ..population import ACTIVE
from .base import SHARE, Policy, focus, only, top_share


class IDIC(Policy):
    name = "idic"
    _parameter_constraints = {"target_share": SHARE, "fit_worth": Interval(0.0, 10.0)}

    def valued(self, view: FirmView) -> np.ndarray:
        """Differentiate: the top ``target_share`` of active customers by estimated value."""
        return self.per_step(view, "valued", lambda: top_share(
            view.value_est, view.status == ACTIVE, self.params["target_share"]))

    def customization_gain(self, view: FirmView) -> np.ndarray:
        """Expected gain of one customization per person, in money, less what it costs."""
        tactic = self.tactics["customization"]
        accuracy = np.clip(1.0 - view.knowledge_sd, 0.0, 1.0)
        fit_gain = tactic.step * accuracy * (1.0 - view.customization) * view.needs_distance_est
        cost = tactic.cost_per_contact * (0.5 + view.needs_distance_est)
        return fit_gain * self.params["fit_worth"] * np.maximum(view.clv_est, 0.0) - cost

    def priority(self, tactic: str, view: FirmView) -> np.ndarray | None:
        valued = self.valued(view)
        if tactic == "customization":
            gain = self.customization_gain(view)
            return only(gain, valued & (gain > 0))
        if tactic == "feedback_request":
            # Interact to learn: the valued customers whose needs are least known first.
            return focus(view.knowledge_sd.astype(np.float64), valued)
        if tactic == "cross_sell":
            accuracy = np.clip(1.0 - view.knowledge_sd, 0.0, 1.0)
            return only(view.value_est * accuracy, valued)
        if tactic in ("triggered_contact", "value_add", "loyalty", "welcome"):
            return focus(view.value_est, valued)
        return None
