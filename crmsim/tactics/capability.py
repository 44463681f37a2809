"""Capability levers: money that builds the firm's CRM capabilities (DESIGN section 5).

People, processes, technology and data, leadership and culture (``crmsim.firm.Capabilities``)
are firm-level: every framework can invest in them, and every lever relying on one works
better or worse with its level. A ``capability_*`` lever spends its whole allocation on its
capability (ledger category ``capability``); nobody is selected and nothing is applied to a
person. What the money buys is ``firm.capabilities.gain_per_money`` per year per unit of money
per person in the market, with diminishing returns as the level nears 1; without upkeep the
levels decay (``firm.capabilities.half_life_days``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..actions import Actions
from ..firm import CAPABILITIES, FirmView
from .base import Tactic


class Invest(Tactic):
    """Firm-wide investment in one capability (``builds``)."""

    category = "capability"
    control_group = False   # firm-wide: nobody to hold out (crmsim.levers)
    builds: ClassVar[str]
    _parameter_constraints = {}

    def run(self, view: FirmView, budget: float, actions: Actions,
            priority: np.ndarray | None = None) -> np.ndarray:
        money = max(budget, 0.0)
        actions.pay(self.category, money)
        actions.invest(self.builds, money)
        return np.arange(0)


# One lever per capability, named capability_<name>: defining each registers it.
INVEST_LEVERS = {cap: type(f"Invest_{cap}", (Invest,), {"name": f"capability_{cap}", "builds": cap})
                 for cap in CAPABILITIES}
