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
from .base import Tactic, take_first


class ValueAdd(Tactic):
    name = "value_add"
    category = "retention"
    params = ("cost_per_customer", "bonus")

    def apply(self, actions: Actions, idx: np.ndarray) -> None:
        actions.add("experience_bonus", idx, self.bonus)


class Loyalty(Tactic):
    name = "loyalty"
    category = "retention"
    params = ("cost_per_customer", "commitment")

    def apply(self, actions: Actions, idx: np.ndarray) -> None:
        actions.add("commitment", idx, self.commitment)


class Promotion(Tactic):
    """The coupon's face value is the discount on the customer's estimated spend."""

    name = "promotion"
    category = "retention"
    params = ("cost_per_customer", "discount", "deal_training")

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None):
        self._value = view.value_est
        unit = self.cost_per_customer + self.discount * float(np.mean(view.value_est))
        k = int(budget // unit) if budget > 0 else 0
        return take_first(self.candidates(view), view.u if priority is None else -priority, k)

    def cost(self, idx: np.ndarray) -> float:
        return float(idx.size * self.cost_per_customer + self.discount * self._value[idx].sum())

    def apply(self, actions: Actions, idx: np.ndarray) -> None:
        actions.add("discount", idx, self.discount)
        actions.add("deal_seeking", idx, self.deal_training)


class SwitchingCost(Tactic):
    name = "switching_cost"
    category = "retention"
    params = ("cost_per_customer", "lock")

    def candidates(self, view: FirmView) -> np.ndarray:
        # A contract is signed once per customer.
        return super().candidates(view) & (view.switching_cost == 0)

    def apply(self, actions: Actions, idx: np.ndarray) -> None:
        actions.add("switching_cost", idx, self.lock)


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
