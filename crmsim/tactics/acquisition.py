"""Acquisition tactics (seed 001): reach prospects through a channel.

Each channel contacts prospects at random (the firm cannot yet tell who will buy) at a cost per
contact, and adds ``lift`` to the contacted prospects' annual adoption hazard this step. The
channels differ only in their numbers: ads are broad and cheap per contact, e-mail cheaper and
weaker, free samples dear and strong.
"""

from __future__ import annotations

import numpy as np

from ..actions import Actions
from ..firm import FirmView
from ..population import PROSPECT
from .base import Tactic, affordable, cheapest_first


class Channel(Tactic):
    category = "acquisition"
    params = ("cost_per_contact", "lift")

    def select(self, view: FirmView, budget: float) -> np.ndarray:
        k = affordable(budget, self.cost_per_contact)
        return cheapest_first(view.status == PROSPECT, view.u, k)

    def cost(self, idx: np.ndarray) -> float:
        return idx.size * self.cost_per_contact

    def apply(self, actions: Actions, idx: np.ndarray) -> None:
        actions.add("adoption_lift", idx, self.lift)


class Ads(Channel):
    name = "ads"


class Email(Channel):
    name = "email"


class FreeSample(Channel):
    name = "free_sample"
