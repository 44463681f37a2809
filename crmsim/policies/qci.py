"""QCi (seed 003): acquisition, retention and penetration, run as a closed loop.

The enablers get their configured shares first: people (``training``), technology
(``information``) and organisation (``multichannel``). The rest is split among three areas:
acquisition (ads, seeding), retention (value_add, loyalty, triggered_contact) and penetration
(cross_sell: cross-sell and up-sell). Every ``review_days`` days the policy measures each
area's return on its spend from the firm's own records and moves budget toward the better
ones (``ClosedLoop``). Retention and penetration go to the customers of highest estimated value.
"""

from __future__ import annotations

import numpy as np

from ..firm import FirmView
from .base import ClosedLoop


class QCi(ClosedLoop):
    name = "qci"
    areas = {
        "acquisition": ["ads", "seeding"],
        "retention": ["value_add", "loyalty", "triggered_contact"],
        "penetration": ["cross_sell"],
    }

    def priority(self, tactic: str, view: FirmView) -> np.ndarray | None:
        if tactic in ("value_add", "loyalty", "cross_sell"):
            return view.value_est.astype(np.float64)
        return None
