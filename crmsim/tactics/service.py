"""Service tactics (seed 002: hire the right people, train them, reward good service).

``training`` is firm-wide: money spent per person in the market raises training (fewer rude
incidents) and quality, with diminishing returns as both approach 1 (the gain per unit of money
does not depend on how the year's spending is split into steps, to first order).
``service_recovery`` funds complaint handling for the customers it covers (a complaint is more
often put right); ``multichannel`` integrates the channels a customer uses, so experience
varies less; ``cost_to_serve`` serves the customers it covers through a cheaper, slightly worse
channel. All three are billed per customer-year of coverage.
"""

from __future__ import annotations

import numpy as np

from ..actions import Actions
from ..firm import FirmView
from .base import NONNEGATIVE, POSITIVE, SHARE, Coverage, Tactic


class Training(Tactic):
    name = "training"
    category = "service_investment"
    control_group = False   # firm-wide: nobody to hold out (crmsim.levers)
    _parameter_constraints = {"training_per_money": NONNEGATIVE, "quality_per_money": NONNEGATIVE}

    def run(self, view: FirmView, budget: float, actions: Actions,
            priority: np.ndarray | None = None) -> np.ndarray:
        # Firm-wide: nobody is selected and the whole allocation is spent.
        per_person = max(budget, 0.0) / view.n
        actions.pay(self.category, max(budget, 0.0))
        actions.adjust_firm("training", self.training_per_money * per_person * (1 - view.training))
        actions.adjust_firm("quality", self.quality_per_money * per_person * (1 - view.quality))
        return np.arange(0)


class ServiceRecovery(Coverage):
    name = "service_recovery"
    category = "service_investment"
    capability = "people"
    effects = {"recovery_lift": "lift"}
    _parameter_constraints = {"cost_per_year": POSITIVE, "lift": SHARE}


class Multichannel(Coverage):
    name = "multichannel"
    category = "service_investment"
    capability = "processes"
    effects = {"noise_cut": "noise_cut"}
    _parameter_constraints = {"cost_per_year": POSITIVE, "noise_cut": SHARE}


class CostToServe(Coverage):
    """A cheaper way of serving the customers it covers (Buttle's value chain serves
    customers who are not strategically significant at lower cost, seed 003): each encounter
    costs ``cost_cut`` less, and experienced quality is ``quality_cut`` lower (a self-service
    or remote channel is a little worse). The channel runs at ``cost_per_year`` per customer
    covered."""

    name = "cost_to_serve"
    category = "service_investment"
    effects = {"serve_cost_cut": "cost_cut", "serve_quality_cut": "quality_cut"}
    _parameter_constraints = {"cost_per_year": POSITIVE, "cost_cut": SHARE,
                              "quality_cut": NONNEGATIVE}
