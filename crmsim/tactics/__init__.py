"""Tactics: the levers every policy pulls (DESIGN section 4)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .acquisition import Ads, Email, FreeSample
from .base import Tactic

TACTICS: dict[str, type[Tactic]] = {t.name: t for t in (Ads, Email, FreeSample)}


def check_tactics(tactics: dict[str, Any], prefix: str = "policy.tactics") -> None:
    total = 0.0
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
        total += share if enabled else 0.0
    if total > 1.0 + 1e-9:
        raise ConfigError(f"{prefix}.*.share", round(total, 6),
                          "enabled tactics' shares that add up to at most 1 (the whole CRM budget)")


def make_tactics(tactics: dict[str, Any]) -> dict[str, tuple[Tactic, float]]:
    """The enabled tactics with their budget shares, in config order."""
    out: dict[str, tuple[Tactic, float]] = {}
    for name, params in tactics.items():
        if params.get("enabled", False):
            cls = TACTICS[name]
            out[name] = (cls(**{k: params[k] for k in cls.params}), float(params.get("share", 0.0)))
    return out


__all__ = ["TACTICS", "Tactic", "check_tactics", "make_tactics"]
