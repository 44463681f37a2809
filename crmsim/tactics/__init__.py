"""Tactics: the levers every policy pulls (DESIGN section 4).

Every tactic has the same small interface (``Tactic``: select, cost, apply, run), so a policy
can use any of them; ``policy.tactics.<name>.enabled`` and the tactic's own parameters can be
overridden on every policy.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .acquisition import Ads, Email, FreeSample, Seeding, WinBack
from .base import Tactic
from .interaction import FeedbackRequest, Information, TriggeredContact
from .offering import CrossSell, Customization
from .retention import ExitPenalty, Loyalty, Promotion, SwitchingCost, ValueAdd
from .service import Multichannel, ServiceRecovery, Training
from .termination import METHODS, RULES, Termination, check_termination

TACTICS: dict[str, type[Tactic]] = {t.name: t for t in (
    ValueAdd, Loyalty, Promotion, SwitchingCost, ExitPenalty,
    FeedbackRequest, TriggeredContact, Information,
    ServiceRecovery, Training, Multichannel,
    Customization, CrossSell,
    Ads, Email, FreeSample, WinBack, Seeding,
)}


def check_tactics(tactics: dict[str, Any], prefix: str = "policy.tactics") -> None:
    for name, params in tactics.items():
        key = f"{prefix}.{name}"
        if name not in TACTICS:
            raise ConfigError(key, name, "one of the tactics " + ", ".join(sorted(TACTICS)))
        if not isinstance(params, dict):
            raise ConfigError(key, params, "a mapping of the tactic's parameters")
        TACTICS[name].check(key, params)
        enabled = params.get("enabled", False)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{key}.enabled", enabled, "true or false")
        share = params.get("share", 0.0)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ConfigError(f"{key}.share", share, "a share of the CRM budget in [0, 1]")


def make_tactics(tactics: dict[str, Any]) -> dict[str, Tactic]:
    """Every tactic of the catalogue, built from its parameters (enabled or not)."""
    return {name: TACTICS[name](**{k: params[k] for k in TACTICS[name].params})
            for name, params in tactics.items()}


__all__ = ["METHODS", "RULES", "TACTICS", "Tactic", "Termination", "check_termination",
           "check_tactics", "make_tactics"]
