"""Payne & Frow's five processes (seeds 000, 003).

- Strategy development: choose whom to serve: the top ``segment_share`` of customers by
  estimated lifetime value are the target segment.
- Value creation: what the segment gets: ``value_add``, ``customization`` (the most unusual
  estimated needs first) and ``cross_sell`` (more of what it values), the value the firm
  receives in return.
- Multichannel integration: one consistent experience across channels (``multichannel``:
  experienced quality varies less), for everyone.
- Information management: ``information`` (records) and the data and IT capability
  (``capability_technology_data``) sharpen every estimate.
- Performance assessment: a closed loop: every ``review_days`` days the return of value
  creation is measured against acquisition's and the budget follows (``ClosedLoop``).
"""

from __future__ import annotations

import numpy as np

from ..firm import FirmView
from ..population import ACTIVE
from .base import SHARE, ClosedLoop, focus, top_share


class PayneFrow(ClosedLoop):
    name = "payne_frow"
    _parameter_constraints = {**ClosedLoop._parameter_constraints, "segment_share": SHARE}
    areas = {
        "acquisition": ["ads"],
        "retention": ["value_add", "customization"],
        "penetration": ["cross_sell"],
    }

    def priority(self, tactic: str, view: FirmView) -> np.ndarray | None:
        segment = self.per_step(view, "segment", lambda: top_share(
            view.clv_est, view.status == ACTIVE, self.params["segment_share"]))
        if tactic == "customization":
            return focus(view.clv_est * view.needs_distance_est, segment)
        if tactic in ("value_add", "loyalty", "feedback_request", "triggered_contact",
                      "cross_sell"):
            return focus(view.clv_est, segment)
        return None
