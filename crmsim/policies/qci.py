"""QCi's customer management model (seed 003): acquisition, retention and penetration, run as a
closed loop, on the enablers people, organisation and technology.

- Enablers: the firm's capabilities, at their configured shares: people
  (``capability_people``), organisation (``capability_processes``) and technology
  (``capability_technology_data``); they multiply how well every lever below works.
- Acquisition: ``ads`` and ``seeding``.
- Retention: ``value_add``, ``loyalty`` and ``triggered_contact`` for the customers of highest
  estimated value; problem management (``service_recovery``, those who complain most first);
  welcoming new customers (``welcome``).
- Penetration: ``cross_sell`` (cross-sell and up-sell), highest estimated value first.
- Win-back: ``win_back`` offers to lapsed customers, highest estimated value first.
Every ``review_days`` days the policy measures each area's return on its spend from the firm's
own records and moves budget toward the better ones (``ClosedLoop``).
"""

from __future__ import annotations

import numpy as np

from ..firm import FirmView
from .base import ClosedLoop


class QCi(ClosedLoop):
    name = "qci"
    areas = {
        "acquisition": ["ads", "seeding"],
        "retention": ["value_add", "loyalty", "triggered_contact", "service_recovery", "welcome"],
        "penetration": ["cross_sell"],
        "win_back": ["win_back"],
    }

    def priority(self, tactic: str, view: FirmView) -> np.ndarray | None:
        if tactic == "service_recovery":
            return view.complaints_est * view.value_est
        if tactic in ("value_add", "loyalty", "cross_sell", "triggered_contact", "win_back"):
            return view.value_est.astype(np.float64)
        return None
