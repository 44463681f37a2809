"""Acquisition (seed 001): new customers, new to the category or won from a competitor.

``ads`` buys media exposures for the prospects: the response saturates in how often a prospect
is reached and carries over (adstock), so money poured into media earns less and less (``Ads``
gives the curve and its source); with no prospects left it spends nothing. The contact channels (``email``,
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
from ..constraints import Interval
from ..firm import FirmView
from ..population import LAPSED, PROSPECT
from ..units import DAYS_PER_YEAR, fade_per_step
from .base import CADENCE, NONNEGATIVE, POSITIVE, Tactic


class Ads(Tactic):
    """Media with carry-over and saturation (Jin, Wang, Sun, Chan & Koehler 2017, "Bayesian
    methods for media mix modeling with carryover and shape effects", Google: geometric
    adstock and a Hill response; Hanssens, Parsons & Schultz 2001, "Market Response Models",
    on the diminishing returns of advertising frequency).

    The allocation buys exposures at ``cost_per_exposure``, spread evenly over the prospects
    (the firm cannot tell them apart). Each prospect keeps an exposure stock that fades with a
    half-life of ``half_life_days`` (geometric adstock written in continuous time: exposures
    arriving at r a year hold a stock of r x the mean carry-over time, half_life / ln 2, so the
    stock does not depend on the step length). The extra annual adoption hazard is a Hill curve
    of the stock: ``max_lift * S^shape / (S^shape + half_saturation^shape)``. The stock is the
    firm's own record of its media plan, kept here like a contact tactic's cadence record.
    """

    name = "ads"
    category = "acquisition"
    audience = PROSPECT
    control_group = False   # spread over all prospects: nobody to hold out (crmsim.levers)
    _parameter_constraints = {"cost_per_exposure": POSITIVE, "half_life_days": Interval(1.0, 3650.0),
                              "max_lift": NONNEGATIVE, "half_saturation": POSITIVE,
                              "shape": Interval(0.1, 10.0)}

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._stock: np.ndarray | None = None
        self._stock_day = 0.0

    def stock_inflow(self, exposures: np.ndarray | float, view: FirmView) -> np.ndarray | float:
        """What ``exposures`` spread evenly over this step add to the stock by its end."""
        mean_years = self.half_life_days / DAYS_PER_YEAR / np.log(2.0)
        fade = fade_per_step(self.half_life_days, view.dt * DAYS_PER_YEAR)
        return exposures / view.dt * mean_years * (1.0 - fade)

    def response(self, stock: np.ndarray) -> np.ndarray:
        """Extra annual adoption hazard at an exposure stock (the Hill curve)."""
        s = np.power(np.maximum(stock, 0.0), self.shape)
        return self.max_lift * s / (s + self.half_saturation ** self.shape)

    def run(self, view: FirmView, budget: float, actions: Actions,
            priority: np.ndarray | None = None) -> np.ndarray:
        """Spend ``budget`` on exposures for the prospects (nothing when there are none) and
        give every prospect the lift of their stock, carried over from earlier buys too."""
        if self._stock is None:
            self._stock = np.zeros(view.n)
            self._stock_day = view.day
        self._stock *= fade_per_step(self.half_life_days, view.day - self._stock_day)
        self._stock_day = view.day
        idx = np.flatnonzero(view.status == self.audience)
        if idx.size and budget > 0:
            actions.pay(self.category, budget)
            self._stock[idx] += self.stock_inflow(budget / self.cost_per_exposure / idx.size, view)
        if idx.size:
            actions.add("adoption_lift", idx, self.response(self._stock[idx]))
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
    capability = "people"
    audience = LAPSED
    lift_effect = "return_lift"
