"""Buttle's CRM value chain (seeds 000, 003).

Primary stages:
- Customer portfolio analysis: find the strategically significant customers (SSC): the top
  ``ssc_share`` by estimated lifetime value, the benchmarks (best-connected: others follow
  them), the inspirations (innovators who drive product change) and the cost magnets (the
  largest volumes, ``magnet_share``).
- Customer intimacy: learn about the SSCs first (``information``, ``feedback_request``).
- Network development: staff and partners: ``training`` raises quality for everyone.
- Value proposition: ``value_add`` and ``loyalty`` rewards for SSCs.
- Relationship (lifecycle) management: ``win_back`` for lapsed SSCs, ``triggered_contact``
  for slipping ones; acquisition (ads) with what is left.
Supporting conditions (leadership and culture, people, processes, data and IT) are not a
separate multiplier: they work through the mechanisms they feed: training lifts quality and
cuts rude incidents; data sharpens the estimates that find the SSCs.
"""

from __future__ import annotations

import numpy as np

from ..firm import FirmView
from ..population import ACTIVE, LAPSED
from .base import SHARE, Policy, focus, top_share


class ValueChain(Policy):
    name = "value_chain"
    _parameter_constraints = {"ssc_share": SHARE, "benchmark_share": SHARE, "magnet_share": SHARE}

    def ssc(self, view: FirmView, status: int) -> np.ndarray:
        return self.per_step(view, f"ssc{status}", lambda: self._ssc(view, status))

    def _ssc(self, view: FirmView, status: int) -> np.ndarray:
        p = self.params
        eligible = view.status == status
        return (top_share(view.clv_est, eligible, p["ssc_share"])
                | top_share(view.degree.astype(np.float64), eligible, p["benchmark_share"])
                | (eligible & (view.innovator_est > 0.5))
                | top_share(view.value_est, eligible, p["magnet_share"]))

    def priority(self, tactic: str, view: FirmView) -> np.ndarray | None:
        if tactic == "win_back":
            return focus(view.value_est, self.ssc(view, LAPSED))
        if tactic in ("value_add", "loyalty", "information", "feedback_request",
                      "triggered_contact", "customization"):
            return focus(view.clv_est, self.ssc(view, ACTIVE))
        return None
