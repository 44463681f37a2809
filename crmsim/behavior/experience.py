"""Service encounters: expectation-disconfirmation with rude incidents.

A customer who meets the firm experiences the firm's quality, shifted by how well the offering
fits their needs and by any tactic, plus noise; a rude incident (less likely with training) is a
large negative shock. The encounter registers as a signal in -1..1 that weighs the experience
against the competitor's quality and against the customer's own expectation (Oliver's
disconfirmation); satisfaction moves toward the signal and expectation drifts toward experience.
"""

from __future__ import annotations

import numpy as np


def rude_probability(rude_prob: float, training: float, training_effect: float) -> float:
    """Training removes ``training_effect`` of rude incidents at full training (seed 002)."""
    return rude_prob * (1.0 - training_effect * training)


def encounter(
    met: np.ndarray | bool,
    quality: float,
    fit: np.ndarray,
    bonus: np.ndarray | float,
    noise_sd: np.ndarray | float,
    rude_p: float,
    rude_shock: float,
    fit_weight: float,
    z: np.ndarray,
    u_rude: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Experienced quality for everyone (meaningful where ``met``; ``True``: everyone met the
    firm) and the rude-incident mask."""
    rude = met & (u_rude < rude_p)
    experienced = quality + fit_weight * (fit - 0.5) + bonus + noise_sd * z
    experienced = experienced - rude_shock * rude
    return experienced.astype(np.float32), rude


def satisfaction_update(
    met: np.ndarray | bool,
    experienced: np.ndarray,
    satisfaction: np.ndarray,
    expectation: np.ndarray,
    competitor_quality: float,
    disconfirmation_weight: float,
    gain: float,
    learning_rate: float,
    expectation_rate: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New satisfaction and expectation, and each encounter's signal (0 where no encounter;
    ``met`` ``True``: everyone met the firm)."""
    if _same_length_arrays(met, experienced, satisfaction, expectation):
        # Only the people who met the firm change (about one in ten in a step): the same
        # formulas run on them alone, and everyone else keeps their values exactly.
        idx = np.flatnonzero(met)
        exp_m, sat_m, ex_m = experienced[idx], satisfaction[idx], expectation[idx]
        sig_m = np.tanh(gain * ((exp_m - competitor_quality)
                                + disconfirmation_weight * (exp_m - ex_m))).astype(np.float32)
        signal = np.zeros(met.shape, dtype=np.float32)
        signal[idx] = sig_m
        new_sat = satisfaction.astype(np.float32)
        new_sat[idx] = sat_m + learning_rate * (sig_m - sat_m)
        new_exp = expectation.astype(np.float32)
        new_exp[idx] = ex_m + expectation_rate * (exp_m - ex_m)
        return new_sat, new_exp, signal
    performance = experienced - competitor_quality
    disconfirmation = experienced - expectation
    signal = np.tanh(gain * (performance + disconfirmation_weight * disconfirmation))
    signal = np.where(met, signal, 0.0).astype(np.float32)
    new_sat = np.where(met, satisfaction + learning_rate * (signal - satisfaction), satisfaction)
    new_exp = np.where(met, expectation + expectation_rate * (experienced - expectation), expectation)
    return new_sat.astype(np.float32), new_exp.astype(np.float32), signal


def complaints(
    signal: np.ndarray, salience: float, propensity: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """A salient bad encounter becomes a complaint with the person's complaint propensity."""
    return (signal < -salience) & (u < propensity)


def recovery(
    complained: np.ndarray, recovery_prob: float | np.ndarray, u: np.ndarray
) -> np.ndarray:
    """Complaints handled well (the firm restores part of the lost satisfaction)."""
    return complained & (u < recovery_prob)


def commitment_update(
    active: np.ndarray, commitment: np.ndarray, satisfaction: np.ndarray, rate: float, dt: float
) -> np.ndarray:
    """Commitment grows toward 1 while satisfied and erodes while dissatisfied (seed 001)."""
    if _same_length_arrays(active, commitment, satisfaction):
        # The same formulas on the active customers alone; the others keep their commitment.
        idx = np.flatnonzero(active)
        c, s = commitment[idx], satisfaction[idx]
        step = rate * dt * s
        grown = np.where(s > 0, c + step * (1.0 - c), c * (1.0 + step))
        out = commitment.astype(np.float32)
        out[idx] = np.clip(grown, 0.0, 1.0)
        return out
    step = rate * dt * satisfaction
    grown = np.where(satisfaction > 0, commitment + step * (1.0 - commitment), commitment * (1.0 + step))
    return np.where(active, np.clip(grown, 0.0, 1.0), commitment).astype(np.float32)


def _same_length_arrays(mask: np.ndarray, *arrays: np.ndarray) -> bool:
    """True when ``mask`` is a boolean vector and every other argument a vector as long: then
    working on the masked people alone gives, element for element, what the full formula gives
    (the values are computed by the same operations on the same dtypes)."""
    return (isinstance(mask, np.ndarray) and mask.dtype == bool and mask.ndim == 1
            and all(isinstance(a, np.ndarray) and a.shape == mask.shape for a in arrays))
