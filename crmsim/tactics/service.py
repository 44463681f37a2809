"""Service tactics (seed 002: hire the right people, train them, reward good service).

``training`` is firm-wide: money spent per person in the market raises training (fewer rude
incidents) and quality, with diminishing returns as both approach 1. ``service_recovery`` funds
complaint handling for the customers it covers this step (a complaint is more often put right).
``multichannel`` integrates the channels a customer uses, so experience varies less.
"""

from __future__ import annotations

import numpy as np

from ..actions import Actions
from ..firm import FirmView
from .base import Tactic


class Training(Tactic):
    name = "training"
    category = "service_investment"
    params = ("training_per_money", "quality_per_money")

    def run(self, view: FirmView, budget: float, actions: Actions,
            priority: np.ndarray | None = None) -> np.ndarray:
        # Firm-wide: nobody is selected and the whole allocation is spent.
        per_person = max(budget, 0.0) / view.n
        actions.pay(self.category, max(budget, 0.0))
        actions.adjust_firm("training", self.training_per_money * per_person * (1 - view.training))
        actions.adjust_firm("quality", self.quality_per_money * per_person * (1 - view.quality))
        return np.arange(0)


class ServiceRecovery(Tactic):
    name = "service_recovery"
    category = "service_investment"
    params = ("cost_per_customer", "lift")
    effects = {"recovery_lift": "lift"}


class Multichannel(Tactic):
    name = "multichannel"
    category = "service_investment"
    params = ("cost_per_customer", "noise_cut")
    effects = {"noise_cut": "noise_cut"}
