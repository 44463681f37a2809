"""Time has units; the step is only a resolution (DESIGN section 3).

Every rate and amount in the config is per year, per event, or a duration in days. The model
turns them into what one step of ``sim.period_days`` days needs with the functions here, and
nowhere else; nothing in crmsim knows how many steps a year has.
"""

from __future__ import annotations

import math

DAYS_PER_YEAR = 365.0


def step_years(period_days: float) -> float:
    """The step length in years (``dt``)."""
    return period_days / DAYS_PER_YEAR


def share_in_step(rate_per_year: float, dt: float) -> float:
    """The probability of an event with hazard ``rate_per_year`` within a step of ``dt``
    years, which is also the share of the remaining way a quantity pulled toward a target at
    that rate covers in the step: 1 - exp(-rate * dt)."""
    return -math.expm1(-rate_per_year * dt)


def fade_per_step(half_life_days: float, period_days: float) -> float:
    """The factor by which a memory with the given half-life fades over one step."""
    return 0.5 ** (period_days / half_life_days)


def mean_of_fade(period_days: float, efolding_days: float) -> float:
    """The mean over one step of a signal that starts at 1 and fades as exp(-t / efolding)."""
    x = period_days / efolding_days
    return -math.expm1(-x) / x


def poisson_at_least(mean: float, tiny: float = 1e-16) -> tuple[float, ...]:
    """P(K >= k) for k = 1, 2, ... of a Poisson count with this mean, until it is below
    ``tiny``: one uniform u gives K = the number of these that exceed u."""
    out = []
    term = math.exp(-mean)      # P(K = 0)
    cdf, k = term, 0
    while True:
        tail = 1.0 - cdf
        if tail < tiny or len(out) >= 1000:
            return tuple(out) if out else (0.0,)
        out.append(tail)
        k += 1
        term *= mean / k
        cdf += term
