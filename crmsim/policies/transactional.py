"""The transactional baseline: mass acquisition, one standard offering, no retention targeting.

The firm without CRM: the budget buys reach among prospects (ads), every customer gets the same
offering, nobody is singled out to be kept. Every framework is compared against it.
"""

from __future__ import annotations

from .base import Policy


class Transactional(Policy):
    name = "transactional"
