"""Churn: who leaves this step.

Each active person has an annual base churn probability theta. Over a step of dt years the
probability of leaving is 1 - (1 - theta)^(dt * m), i.e. the hazard rate -ln(1 - theta) scaled by
a multiplier m. With every effect at zero, m = 1 and a cohort's survival is exactly the
shifted-beta-geometric B(alpha, beta + t) / B(alpha, beta) (Fader & Hardie 2007) whatever the
step length. m rises with dissatisfaction (buffered by commitment), bad sentiment, higher prices
and recently lapsed neighbours (churn contagion), and falls with commitment and switching costs.

Satisfaction and retention are not linked linearly: a customer who is dissatisfied at all starts
to look at the competitor, so below zero the hazard jumps by exp(``dissatisfied_effect`` x (1 -
commitment)) on top of the smooth effect (a threshold: Jones & Sasser 1995, "Why satisfied
customers defect", HBR; Mittal & Kamakura 2001, JMR 38: the satisfaction-repurchase link is
nonlinear). Commitment buffers it as it buffers the smooth effect (seed 001).
"""

from __future__ import annotations

import numpy as np


def hazard_multiplier(
    satisfaction: np.ndarray,
    commitment: np.ndarray,
    sentiment: np.ndarray,
    switching_cost: np.ndarray,
    price: np.ndarray,
    price_sensitivity: np.ndarray,
    contagion_exposure: np.ndarray,
    satisfaction_effect: float,
    commitment_effect: float,
    sentiment_effect: float,
    switching_cost_effect: float,
    price_effect: float,
    contagion: float,
    dissatisfied_effect: float = 0.0,
) -> np.ndarray:
    # New customers leave at the first bad service; committed ones forgive more (seed 001).
    dissatisfied = satisfaction < 0
    felt = np.where(dissatisfied, satisfaction * (1.0 - commitment), satisfaction)
    log_m = (
        -satisfaction_effect * felt
        - commitment_effect * commitment
        - sentiment_effect * sentiment
        - switching_cost_effect * switching_cost
        + price_effect * price_sensitivity * (price - 1.0)
    )
    if dissatisfied_effect:
        log_m = log_m + dissatisfied_effect * (1.0 - commitment) * dissatisfied
    return np.exp(log_m) * (1.0 + contagion * contagion_exposure)


def leave_probability(base_annual: np.ndarray, multiplier: np.ndarray | float, dt: float):
    """1 - (1 - theta)^(dt * m), computed through log1p for accuracy at small theta."""
    # float64 first: in float32, 1 - 1e-12 rounds to 1 and log1p(-1) is -inf.
    theta = np.minimum(np.asarray(base_annual, dtype=np.float64), 1.0 - 1e-12)
    x = dt * multiplier * np.log1p(-theta)
    if not isinstance(x, np.ndarray) or x.ndim == 0:
        return -np.expm1(x)
    # In place: x is a fresh array, and at 10**6 people each temporary costs ~1 ms.
    np.expm1(x, out=x)
    return np.negative(x, out=x)


def decide(eligible: np.ndarray, probability: np.ndarray, u: np.ndarray) -> np.ndarray:
    return eligible & (u < probability)


def lapse_signal_decay(period_days: float, contagion_days: float) -> float:
    """Per-step factor by which a neighbour's lapse fades (e-folding over ``contagion_days``)."""
    return float(np.exp(-period_days / contagion_days))


def return_probability(rate_annual: np.ndarray | float, multiplier: np.ndarray, dt: float):
    """A lapsed customer comes back with hazard ``rate`` (per year) times ``multiplier``."""
    return -np.expm1(-np.asarray(rate_annual) * multiplier * dt)
