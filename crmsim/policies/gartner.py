"""Gartner's eight building blocks of CRM (seed 003), as maturity levels.

Each block has a maturity in 0..1 (``params.maturity``); the budget follows maturity, since a
firm can only spend well on what it is able to do:
- vision and strategy: how focused targeting is: with maturity m = (vision + strategy) / 2,
  a share m of each targeted tactic's reach goes by estimated value, the rest at random;
- valued customer experience: ``value_add`` and ``service_recovery``;
- organisational collaboration: ``multichannel`` (one face to the customer);
- processes: ``triggered_contact``;
- information: ``information``;
- technology: ``feedback_request`` (automated two-way contact);
- metrics: a closed loop between acquisition and the rest: how far the split moves toward
  measured returns at each review is the metrics maturity.
Each tactic's share is its block's maturity times its configured share; what is not spent
buys acquisition.
"""

from __future__ import annotations

import numpy as np

from ..constraints import Each, Interval
from ..firm import FirmView
from .base import ClosedLoop

MATURITY = ("vision", "strategy", "customer_experience", "collaboration", "processes",
            "information", "technology", "metrics")
BLOCKS = {
    "customer_experience": ["value_add", "service_recovery"],
    "collaboration": ["multichannel"],
    "processes": ["triggered_contact"],
    "information": ["information"],
    "technology": ["feedback_request"],
}


class Gartner(ClosedLoop):
    name = "gartner"
    _parameter_constraints = {**ClosedLoop._parameter_constraints,
                              "maturity": Each(MATURITY, Interval(0.0, 1.0))}
    areas = {
        "acquisition": ["ads"],
        "retention": ["value_add", "service_recovery", "multichannel", "triggered_contact",
                      "feedback_request", "information"],
    }

    def __init__(self, tactics, shares, params, termination) -> None:
        maturity = params["maturity"]
        scaled = dict(shares)
        for block, names in BLOCKS.items():
            for t in names:
                if t in scaled:
                    scaled[t] = shares[t] * maturity[block]
        params = {**params, "learning_rate": params["learning_rate"] * maturity["metrics"]}
        super().__init__(tactics, scaled, params, termination)
        self.focus = (maturity["vision"] + maturity["strategy"]) / 2.0

    def initial_area_shares(self) -> dict[str, float]:
        retention = min(sum(self.shares.get(t, 0.0) for t in self.areas["retention"]), 1.0)
        return {"acquisition": 1.0 - retention, "retention": retention}

    def priority(self, tactic: str, view: FirmView) -> np.ndarray | None:
        if tactic in ("ads", "information", "training"):
            return None
        # Focused firms rank by estimated value; the rest of their reach is random.
        ranked = view.value_est / max(float(view.value_est.max(initial=0.0)), 1e-9)
        return self.focus * ranked + (1.0 - self.focus) * (1.0 - view.u)
