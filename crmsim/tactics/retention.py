"""Retention tactics (seed 001).

Positive retention gives customers more reason to stay: ``value_add`` (more value at the same
price: a better experience at each encounter while covered, and an ongoing benefit: the churn
hazard is ``hazard_cut`` lower while covered, since the customer would lose the extra value by
leaving), ``loyalty`` (membership rewards that build commitment at ``commitment_per_year``),
``promotion`` (a discount while covered: the price feels lower, so churn drops now; sales rise
by ``sales_bump`` while it runs, a share ``borrowed`` of that bump is bought ahead and not
bought after the promotion (the post-promotion dip: stockpiling, Blattberg, Briesch & Fox 1995,
"How promotions work", Marketing Science; van Heerde, Leeflang & Wittink 2000 on the
post-promotion dip), and promotions train deal-seeking at ``deal_training_per_year``, so
deal-seekers feel the full price more later).

Negative retention makes leaving costly. ``switching_cost`` is a contract: signing costs
``cost_per_contact``, it adds ``lock`` to the switching cost for ``term_days``, and at expiry
the lock ends and churn spikes (for ``expiry_window_days`` the hazard is ``expiry_factor``
times what it would be, all of it felt in the step of expiry; an assumption echoing the churn
that telecom and subscription firms see at contract end); a customer without a running
contract can sign again. ``exit_penalty`` is a fee charged on leaving, booked as revenue,
signed once per customer. Churn falls now, but a customer
who would have left and could not feels trapped: their sentiment drops and they tell a bad
story (the model's trap rule), so negative word of mouth and reputation damage grow and later
adoption falls.
"""

from __future__ import annotations

import numpy as np

from ..actions import Actions
from ..constraints import Interval
from ..firm import FirmView
from ..units import DAYS_PER_YEAR, share_in_step
from .base import NONNEGATIVE, POSITIVE, SHARE, Coverage, Tactic, take_affordable


class ValueAdd(Coverage):
    name = "value_add"
    category = "retention"
    capability = "processes"
    effects = {"experience_bonus": "bonus", "churn_cut": "hazard_cut"}
    _parameter_constraints = {"cost_per_year": POSITIVE, "bonus": NONNEGATIVE, "hazard_cut": SHARE}


class Loyalty(Coverage):
    name = "loyalty"
    category = "retention"
    capability = "processes"
    _parameter_constraints = {"cost_per_year": POSITIVE, "commitment_per_year": NONNEGATIVE}

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        actions.add("commitment", idx, self.commitment_per_year * view.dt)


class Promotion(Coverage):
    """While covered the customer feels ``discount`` off the price; the firm pays the discount
    on their estimated spend plus ``cost_per_year`` of handling."""

    name = "promotion"
    category = "retention"
    _parameter_constraints = {"cost_per_year": POSITIVE, "discount": SHARE,
                              "deal_training_per_year": NONNEGATIVE, "sales_bump": NONNEGATIVE,
                              "borrowed": SHARE}

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None):
        # The discount is given on everything bought on the deal, the bump included.
        self._unit = (self.cost_per_year
                      + self.discount * (1.0 + self.sales_bump) * view.value_est) * view.dt
        order = view.u if priority is None else -priority
        return take_affordable(self.candidates(view), order, self._unit, budget)

    def cost(self, idx: np.ndarray, view: FirmView) -> float:
        return float(self._unit[idx].sum())

    def unit_costs(self, idx: np.ndarray, view: FirmView) -> np.ndarray:
        return self._unit[idx]

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        actions.add("discount", idx, self.discount)
        actions.add("sales_bump", idx, self.sales_bump)
        actions.add("stockpile", idx, self.sales_bump * self.borrowed)
        actions.add("deal_seeking", idx, share_in_step(self.deal_training_per_year, view.dt))


class SwitchingCost(Tactic):
    """A contract with a term: the lock ends at expiry, with a churn spike (module docstring)."""

    name = "switching_cost"
    category = "retention"
    effects = {"switching_cost": "lock", "contract_days": "term_days"}
    _parameter_constraints = {"cost_per_contact": POSITIVE, "lock": SHARE,
                              "term_days": Interval(1.0, 36500.0), "expiry_factor": Interval(1.0),
                              "expiry_window_days": NONNEGATIVE}

    def candidates(self, view: FirmView) -> np.ndarray:
        # One running contract at a time: a customer with no lock can sign (again).
        return super().candidates(view) & (view.switching_cost == 0)

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        super().apply(actions, idx, view)
        # The spike's extra hazard, in years' worth of the customer's hazard at expiry.
        actions.add("expiry_spike", idx,
                    (self.expiry_factor - 1.0) * self.expiry_window_days / DAYS_PER_YEAR)


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
