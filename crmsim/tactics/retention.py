"""Retention tactics (seed 001).

Positive retention gives customers more reason to stay: ``value_add`` (more value at the same
price: a better experience at each encounter while covered), ``loyalty`` (membership rewards
that build commitment at ``commitment_per_year``), ``promotion`` (a discount while covered: the
price feels lower, so churn drops now, but promotions train deal-seeking at
``deal_training_per_year``, and deal-seekers feel the full price more later).

Negative retention makes leaving costly: ``switching_cost`` and ``exit_penalty`` (a fee charged
on leaving, booked as revenue), each signed once per customer. Churn falls now, but a customer
who would have left and could not feels trapped: their sentiment drops and they tell a bad
story (the model's trap rule), so negative word of mouth and reputation damage grow and later
adoption falls.
"""

from __future__ import annotations

import numpy as np

from ..actions import Actions
from ..firm import FirmView
from ..units import DAYS_PER_YEAR, share_in_step
from .base import NONNEGATIVE, POSITIVE, SHARE, Coverage, Tactic, take_affordable


class ValueAdd(Coverage):
    name = "value_add"
    category = "retention"
    effects = {"experience_bonus": "bonus"}
    _parameter_constraints = {"cost_per_year": POSITIVE, "bonus": NONNEGATIVE}


class Loyalty(Coverage):
    name = "loyalty"
    category = "retention"
    _parameter_constraints = {"cost_per_year": POSITIVE, "commitment_per_year": NONNEGATIVE}

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        actions.add("commitment", idx, self.commitment_per_year * view.dt)


class Promotion(Coverage):
    """While covered the customer feels ``discount`` off the price; the firm pays the discount
    on their estimated spend plus ``cost_per_year`` of handling."""

    name = "promotion"
    category = "retention"
    _parameter_constraints = {"cost_per_year": POSITIVE, "discount": SHARE,
                              "deal_training_per_year": NONNEGATIVE}

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None):
        self._unit = (self.cost_per_year + self.discount * view.value_est) * view.dt
        order = view.u if priority is None else -priority
        return take_affordable(self.candidates(view), order, self._unit, budget)

    def cost(self, idx: np.ndarray, view: FirmView) -> float:
        return float(self._unit[idx].sum())

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        actions.add("discount", idx, self.discount)
        actions.add("deal_seeking", idx, share_in_step(self.deal_training_per_year, view.dt))


class SwitchingCost(Tactic):
    name = "switching_cost"
    category = "retention"
    effects = {"switching_cost": "lock"}
    _parameter_constraints = {"cost_per_contact": POSITIVE, "lock": SHARE}

    def candidates(self, view: FirmView) -> np.ndarray:
        # A contract is signed once per customer.
        return super().candidates(view) & (view.switching_cost == 0)


class ExitPenalty(Tactic):
    name = "exit_penalty"
    category = "retention"
    _parameter_constraints = {"cost_per_contact": POSITIVE, "lock": SHARE, "fee_days": NONNEGATIVE}

    def candidates(self, view: FirmView) -> np.ndarray:
        return super().candidates(view) & (view.exit_fee == 0)

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        actions.add("switching_cost", idx, self.lock)
        # The fee on leaving: ``fee_days`` worth of the customer's estimated spend.
        actions.add("exit_fee", idx, self.fee_days / DAYS_PER_YEAR * view.value_est[idx])
