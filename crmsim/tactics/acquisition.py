"""Acquisition (seed 001): new customers, new to the category or won from a competitor.

Channels (ads, e-mail, free samples) reach prospects the firm cannot yet tell apart, at a cost
per contact, and add ``lift`` to the reached prospects' annual adoption hazard this step.
``ads`` is a media buy: the whole allocation is spent even when there are fewer prospects than
it could reach. ``seeding`` gives the product to the best-connected prospects, whose adoption
then spreads through imitation. ``win_back`` makes lapsed customers an offer (a better price,
free maintenance, extra benefits) that raises their return hazard.
"""

from __future__ import annotations

import numpy as np

from ..actions import Actions
from ..firm import FirmView
from ..population import LAPSED, PROSPECT
from .base import Tactic


class Channel(Tactic):
    category = "acquisition"
    params = ("cost_per_customer", "lift")
    audience = PROSPECT
    effects = {"adoption_lift": "lift"}


class Ads(Channel):
    name = "ads"

    def run(self, view: FirmView, budget: float, actions: Actions,
            priority: np.ndarray | None = None) -> np.ndarray:
        idx = self.select(view, budget, None)   # broadcast: nobody is singled out
        actions.pay(self.category, max(budget, 0.0))
        self.apply(actions, idx)
        return idx


class Email(Channel):
    name = "email"


class FreeSample(Channel):
    name = "free_sample"


class Seeding(Channel):
    """Target high-influence prospects (seed 003's benchmarks: others follow them)."""

    name = "seeding"

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None):
        return super().select(view, budget, view.degree.astype(np.float64))


class WinBack(Tactic):
    name = "win_back"
    category = "acquisition"
    params = ("cost_per_customer", "lift")
    audience = LAPSED
    effects = {"return_lift": "lift"}
