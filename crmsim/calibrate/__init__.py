"""Calibrate a market to a firm's own data: a cohort table or a transaction log.

Stage A (``stage_a``, ``estimators``): direct estimators in seconds (sBG, BG/NBD, Gamma-Gamma,
spend, Bass). Stage B (``simulate``): simulated method of moments with Optuna for what the
model's modifiers move. ``core.calibrate`` runs both; ``core.write`` writes ``market.yaml``,
``calibration.json`` and ``report.md``. Command: ``crmsim calibrate`` (docs/calibrate.md).
"""

from .core import Calibration, calibrate, overrides_of, write

__all__ = ["Calibration", "calibrate", "overrides_of", "write"]
