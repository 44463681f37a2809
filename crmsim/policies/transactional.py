"""The transactional baseline: mass acquisition, one standard offering, no retention targeting.

It is the firm without CRM: the whole budget buys reach among prospects (ads by default), every
customer gets the same offering, and nobody is singled out to be kept. Every framework is
compared against it.
"""

from __future__ import annotations

from .base import Policy


class Transactional(Policy):
    name = "transactional"
