"""IDIC (Peppers & Rogers 2004; seeds 000, 003): Identify, Differentiate, Interact, Customize.

- Identify: invest in knowing each customer: ``information`` (data) and every interaction
  shrink the noise in the firm's estimates (``FirmView``).
- Differentiate: rank customers by estimated value; the top ``target_share`` are treated one
  by one, and among them those whose estimated needs are furthest from the standard offering
  gain most from customization.
- Interact: two-way contact with the targeted customers: ``feedback_request`` (they are heard,
  the firm learns) and ``triggered_contact`` when a signal says someone is slipping.
- Customize: ``customization`` moves each targeted customer's offering toward their needs, as
  far as the firm knows them, at a cost per person.
What is left buys acquisition (ads).
"""

from __future__ import annotations

import numpy as np

from ..firm import FirmView
from ..population import ACTIVE
from .base import SHARE, Policy, focus, top_share


class IDIC(Policy):
    name = "idic"
    _parameter_constraints = {"target_share": SHARE}

    def priority(self, tactic: str, view: FirmView) -> np.ndarray | None:
        active = view.status == ACTIVE
        valued = self.per_step(view, "valued", lambda: top_share(
            view.value_est, active, self.params["target_share"]))
        if tactic == "customization":
            return focus(view.value_est * view.needs_distance_est, valued)
        if tactic in ("feedback_request", "triggered_contact", "value_add", "loyalty"):
            return focus(view.value_est, valued)
        return None
