"""Spending and payment.

Active customers spend their base value at their price, more when satisfied (seed 002: a good
experience keeps people longer and spending more). Some pay late; a few never pay (bad debt).
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
) -> np.ndarray:
    amount = value * price * np.maximum(1.0 + satisfaction_effect * satisfaction, 0.0) * (1.0 + uplift)
    return np.where(active, amount, 0.0)


def payment(
    buyers: np.ndarray,
    late_prob: np.ndarray,
    default_prob: float,
    u: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Late payers and defaulters among the buyers; one uniform decides both."""
    default = buyers & (u < default_prob)
    late = buyers & ~default & (u < default_prob + late_prob)
    return late, default
