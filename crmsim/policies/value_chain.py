"""Buttle's CRM value chain (seeds 000, 003).

Primary stages:
- Customer portfolio analysis: the strategically significant customers (SSC), four types,
  each served for what makes it significant:
  the top ``ssc_share`` by estimated lifetime value (*highest value*); the best-connected
  ``benchmark_share`` (*benchmarks*: others follow them); the estimated innovators
  (*inspirations*: they drive product change); the top ``magnet_share`` by volume (*cost
  magnets*: they absorb fixed cost).
- Customer intimacy: learn about the SSCs (``information``), and ask the inspirations first
  (``feedback_request``): their ideas improve the product (quality) for everyone.
- Network development: staff and partners: ``training`` raises quality for everyone.
- Value proposition: ``value_add`` and ``loyalty`` for the highest-value SSCs and the cost
  magnets; the customers who are not SSCs are served at lower cost (``cost_to_serve``).
- Relationship (lifecycle) management: ``triggered_contact`` for slipping SSCs (benchmarks
  first: their word of mouth reaches most), ``cross_sell`` (customer development) for the
  highest-value SSCs, ``win_back`` for lapsed SSCs; acquisition (ads) with what is left.
Supporting conditions (leadership and culture, people, processes, data and IT) are the
firm's capabilities (``capability_*`` levers): they multiply how well the levers above work.
"""

from __future__ import annotations

import numpy as np

from ..firm import FirmView
from ..population import ACTIVE, LAPSED
from .base import SHARE, Policy, focus, only, top_share

SSC_TYPES = ("top_value", "benchmark", "inspiration", "magnet")


class ValueChain(Policy):
    name = "value_chain"
    _parameter_constraints = {"ssc_share": SHARE, "benchmark_share": SHARE, "magnet_share": SHARE}

    def ssc_types(self, view: FirmView, status: int) -> dict[str, np.ndarray]:
        """Portfolio analysis: a mask per SSC type among the people of ``status``."""
        return self.per_step(view, f"ssc{status}", lambda: self._ssc_types(view, status))

    def _ssc_types(self, view: FirmView, status: int) -> dict[str, np.ndarray]:
        p = self.params
        eligible = view.status == status
        return {
            "top_value": top_share(view.clv_est, eligible, p["ssc_share"]),
            "benchmark": top_share(view.degree.astype(np.float64), eligible, p["benchmark_share"]),
            "inspiration": eligible & (view.innovator_est > 0.5),
            "magnet": top_share(view.value_est, eligible, p["magnet_share"]),
        }

    def ssc(self, view: FirmView, status: int) -> np.ndarray:
        types = self.ssc_types(view, status)
        return types["top_value"] | types["benchmark"] | types["inspiration"] | types["magnet"]

    def priority(self, tactic: str, view: FirmView) -> np.ndarray | None:
        if tactic == "win_back":
            return focus(view.value_est, self.ssc(view, LAPSED))
        if tactic == "cost_to_serve":
            return only(-view.clv_est, (view.status == ACTIVE) & ~self.ssc(view, ACTIVE))
        types = self.ssc_types(view, ACTIVE)
        if tactic == "feedback_request":
            # Inspirations first (their ideas), then the other SSCs.
            return focus(focus(view.clv_est, self.ssc(view, ACTIVE)), types["inspiration"])
        if tactic in ("value_add", "loyalty"):
            return focus(view.clv_est, types["top_value"] | types["magnet"])
        if tactic == "cross_sell":
            return only(view.clv_est, types["top_value"])
        if tactic == "triggered_contact":
            return focus(focus(view.clv_est, self.ssc(view, ACTIVE)), types["benchmark"])
        if tactic in ("information", "customization", "welcome"):
            return focus(view.clv_est, self.ssc(view, ACTIVE))
        return None
