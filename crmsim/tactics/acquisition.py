"""Acquisition (seed 001): new customers, new to the category or won from a competitor.

``ads`` is a media presence billed per prospect-year of exposure: a covered prospect's annual
adoption hazard rises by ``lift`` while covered, and the whole allocation is spent even when
there are fewer prospects than it could cover. The contact channels (``email``,
``free_sample``) reach prospects the firm cannot yet tell apart, at a cost per contact; each
contact adds ``conversion`` to the prospect's cumulative adoption hazard (for small values,
about the chance that this contact alone converts them), whatever the step length.
``seeding`` gives the product to the best-connected prospects, whose adoption then spreads
through imitation. ``win_back`` makes lapsed customers an offer (a better price, free
maintenance, extra benefits) that adds ``conversion`` to their cumulative return hazard.
"""

from __future__ import annotations

import numpy as np

from ..actions import Actions
from ..firm import FirmView
from ..population import LAPSED, PROSPECT
from .base import CADENCE, NONNEGATIVE, POSITIVE, Coverage, Tactic


class Ads(Coverage):
    name = "ads"
    category = "acquisition"
    audience = PROSPECT
    effects = {"adoption_lift": "lift"}
    _parameter_constraints = {"cost_per_year": POSITIVE, "lift": NONNEGATIVE}

    def run(self, view: FirmView, budget: float, actions: Actions,
            priority: np.ndarray | None = None) -> np.ndarray:
        idx = self.select(view, budget, None)   # broadcast: nobody is singled out
        actions.pay(self.category, max(budget, 0.0))
        self.apply(actions, idx, view)
        return idx


class Channel(Tactic):
    """A contact that adds ``conversion`` to the reached person's cumulative hazard."""

    category = "acquisition"
    audience = PROSPECT
    lift_effect = "adoption_lift"
    _parameter_constraints = {"cost_per_contact": POSITIVE, "conversion": NONNEGATIVE,
                              "cadence_days": CADENCE}

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        # Spread over the step as an annual hazard, so the step adds ``conversion`` in all.
        actions.add(self.lift_effect, idx, self.conversion / view.dt)


class Email(Channel):
    name = "email"


class FreeSample(Channel):
    name = "free_sample"


class Seeding(Channel):
    """Target high-influence prospects (seed 003's benchmarks: others follow them)."""

    name = "seeding"

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None):
        return super().select(view, budget, view.degree.astype(np.float64))


class WinBack(Channel):
    name = "win_back"
    audience = LAPSED
    lift_effect = "return_lift"
