"""Spending and payment.

Active customers spend their base value (per year) at their price over the step's ``years``,
more when satisfied (seed 002: a good experience keeps people longer and spending more). Some
pay late; a few never pay (bad debt).
"""

from __future__ import annotations

import numpy as np


def spend(
    active: np.ndarray,
    value: np.ndarray,
    price: np.ndarray,
    satisfaction: np.ndarray,
    satisfaction_effect: float,
    uplift: np.ndarray | float = 0.0,
    years: np.ndarray | float = 1.0,
) -> np.ndarray:
    arrays = (value, price, satisfaction, uplift, years)
    if (isinstance(active, np.ndarray) and active.dtype == bool and active.ndim == 1
            and all(np.ndim(a) == 0 or np.shape(a) == active.shape for a in arrays)
            and any(np.ndim(a) == 1 for a in arrays)):
        # The same formula for the buyers alone; everyone else spends 0.
        idx = np.flatnonzero(active)
        v, p, s, up, yr = (a if np.ndim(a) == 0 else a[idx] for a in arrays)
        bought = v * p * np.maximum(1.0 + satisfaction_effect * s, 0.0) * (1.0 + up) * yr
        amount = np.zeros(active.shape, dtype=np.result_type(bought, 0.0))
        amount[idx] = bought
        return amount
    amount = (value * price * np.maximum(1.0 + satisfaction_effect * satisfaction, 0.0)
              * (1.0 + uplift) * years)
    return np.where(active, amount, 0.0)


def payment(
    buyers: np.ndarray,
    late_prob: np.ndarray,
    default_prob: float,
    u: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Late payers (``late_prob``: the probability of a late payment this step) and defaulters
    (``default_prob``: the share of bills never paid) among the buyers; one uniform decides
    both."""
    default = buyers & (u < default_prob)
    late = buyers & ~default & (u < default_prob + late_prob)
    return late, default
