"""Retention tactics (seed 001).

Positive retention gives customers more reason to stay: ``value_add`` (more value at the same
price: a better experience at each encounter), ``loyalty`` (rewards that build commitment),
``promotion`` (a discount, gift or coupon this step: the price feels lower, so churn drops now,
but every promotion trains deal-seeking, and deal-seekers feel the full price more later).

Negative retention makes leaving costly: ``switching_cost`` and ``exit_penalty`` (a fee charged
on leaving, booked as revenue). Churn falls now, but a customer who would have left and could
not feels trapped: their sentiment drops and they tell a bad story (the model's trap rule), so
negative word of mouth and reputation damage grow and later adoption falls.
"""

from __future__ import annotations

import numpy as np

from ..actions import Actions
from ..firm import FirmView
from .base import Tactic, take_affordable


class ValueAdd(Tactic):
    name = "value_add"
    category = "retention"
    params = ("cost_per_customer", "bonus")
    effects = {"experience_bonus": "bonus"}


class Loyalty(Tactic):
    name = "loyalty"
    category = "retention"
    params = ("cost_per_customer", "commitment")
    effects = {"commitment": "commitment"}


class Promotion(Tactic):
    """The coupon's face value is the discount on the customer's estimated spend."""

    name = "promotion"
    category = "retention"
    params = ("cost_per_customer", "discount", "deal_training")
    effects = {"discount": "discount", "deal_seeking": "deal_training"}

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None):
        self._unit = self.cost_per_customer + self.discount * view.value_est
        order = view.u if priority is None else -priority
        return take_affordable(self.candidates(view), order, self._unit, budget)

    def cost(self, idx: np.ndarray) -> float:
        return float(self._unit[idx].sum())


class SwitchingCost(Tactic):
    name = "switching_cost"
    category = "retention"
    params = ("cost_per_customer", "lock")
    effects = {"switching_cost": "lock"}

    def candidates(self, view: FirmView) -> np.ndarray:
        # A contract is signed once per customer.
        return super().candidates(view) & (view.switching_cost == 0)


class ExitPenalty(Tactic):
    name = "exit_penalty"
    category = "retention"
    params = ("cost_per_customer", "lock", "fee_steps")

    def candidates(self, view: FirmView) -> np.ndarray:
        return super().candidates(view) & (view.exit_fee == 0)

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None):
        idx = super().select(view, budget, priority)
        self._fee = self.fee_steps * view.value_est[idx]   # the fee: some steps' worth of spend
        return idx

    def apply(self, actions: Actions, idx: np.ndarray) -> None:
        actions.add("switching_cost", idx, self.lock)
        actions.add("exit_fee", idx, self._fee)
