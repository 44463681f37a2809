"""Gartner's eight building blocks of CRM (seed 003), as maturity the firm builds and keeps.

Each block has a target maturity in 0..1 (``params.maturity``). Maturity is capability, not a
budget cut: the firm first spends what it takes to bring its capabilities to the blocks'
targets and hold them there (at most ``capability_share`` of the budget; the rest is scaled
down), then runs its levers at their configured shares, and they work as well as those
capabilities let them:
- vision and strategy -> leadership and culture; they also focus targeting: with maturity
  m = (vision + strategy) / 2, a share m of each targeted lever's reach goes by estimated
  value, the rest at random;
- valued customer experience and organisational collaboration -> people;
- processes -> processes;
- information and technology -> technology and data;
- metrics: a closed loop between acquisition and the rest: how far the split moves toward
  measured returns at each review is the metrics maturity.
Levers: ``value_add`` and ``service_recovery`` (valued customer experience), ``multichannel``
(collaboration: one face to the customer), ``triggered_contact`` (processes), ``information``
and ``feedback_request`` (information, technology), ads with what is left.
"""

from __future__ import annotations

import numpy as np

from ..constraints import Each, Interval
from ..firm import FirmView
from ..population import OUTSIDE
from .base import SHARE, ClosedLoop

MATURITY = ("vision", "strategy", "customer_experience", "collaboration", "processes",
            "information", "technology", "metrics")
# The capability each building block builds (metrics acts on the closed loop instead).
BLOCKS = {
    "leadership_culture": ("vision", "strategy"),
    "people": ("customer_experience", "collaboration"),
    "processes": ("processes",),
    "technology_data": ("information", "technology"),
}
MAX_TARGET = 0.99   # a capability of 1 would take infinite upkeep


class Gartner(ClosedLoop):
    name = "gartner"
    _parameter_constraints = {**ClosedLoop._parameter_constraints,
                              "maturity": Each(MATURITY, Interval(0.0, 1.0)),
                              "capability_share": SHARE}
    areas = {
        "acquisition": ["ads"],
        "retention": ["value_add", "service_recovery", "multichannel", "triggered_contact",
                      "feedback_request", "information"],
    }

    def __init__(self, tactics, shares, params, termination) -> None:
        maturity = params["maturity"]
        params = {**params, "learning_rate": params["learning_rate"] * maturity["metrics"]}
        super().__init__(tactics, shares, params, termination)
        self.targets = {cap: min(float(np.mean([maturity[b] for b in blocks])), MAX_TARGET)
                        for cap, blocks in BLOCKS.items()}
        self.focus = (maturity["vision"] + maturity["strategy"]) / 2.0

    def capability_money(self, view: FirmView, budget: float) -> dict[str, float]:
        """This step's money per ``capability_*`` lever: the upkeep of each target, plus as
        much again as the gap below it (so a gap closes within about a half-life), at most
        ``capability_share`` of the budget in all."""
        caps = view.capabilities
        people = int(np.count_nonzero(view.status != OUTSIDE))
        need = {}
        for cap, target in self.targets.items():
            goal = min(target + max(target - caps.level[cap], 0.0), MAX_TARGET)
            money = caps.upkeep(cap, goal, people) * view.dt
            need[f"capability_{cap}"] = money if np.isfinite(money) else 0.0
        total = sum(need.values())
        cap_money = self.params["capability_share"] * budget
        scale = min(1.0, cap_money / total) if total > 0 else 0.0
        return {name: money * scale for name, money in need.items()}

    def allocate(self, view: FirmView, budget: float, step: int) -> dict[str, float]:
        money = self.capability_money(view, budget)
        rest = max(budget - sum(money.values()), 0.0)
        levers = super().allocate(view, rest, step)
        return {**levers, **{k: v + levers.get(k, 0.0) for k, v in money.items()}}

    def initial_area_shares(self) -> dict[str, float]:
        retention = min(sum(self.shares.get(t, 0.0) for t in self.areas["retention"]), 1.0)
        return {"acquisition": 1.0 - retention, "retention": retention}

    def priority(self, tactic: str, view: FirmView) -> np.ndarray | None:
        if tactic in ("ads", "information", "training"):
            return None
        # Focused firms rank by estimated value; the rest of their reach is random.
        ranked = view.value_est / max(float(view.value_est.max(initial=0.0)), 1e-9)
        return self.focus * ranked + (1.0 - self.focus) * (1.0 - view.u)
