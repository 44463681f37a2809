"""Tactics: the levers every policy pulls (DESIGN section 4).

Every tactic has the same small interface (``Tactic``: select, cost, apply, run), so a policy
can use any of them; ``policy.tactics.<name>.enabled`` and the tactic's own parameters can be
overridden on every policy.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from . import acquisition, capability, interaction, offering, retention, service  # noqa: F401 (they register)
from .base import COMMON, Tactic
from .termination import METHODS, RULES, Termination

# Every Tactic subclass with a name, discovered from the modules above.
TACTICS: dict[str, type[Tactic]] = dict(sorted(Tactic.registry.items()))


def check_tactics(tactics: dict[str, Any], prefix: str = "policy.tactics") -> None:
    for name, params in tactics.items():
        key = f"{prefix}.{name}"
        if name not in TACTICS:
            raise ConfigError(key, name, "one of the tactics " + ", ".join(TACTICS))
        TACTICS[name].check(key, params)


def make_tactics(tactics: dict[str, Any]) -> dict[str, Tactic]:
    """Every tactic of the catalogue, built from its parameters (enabled or not)."""
    return {name: TACTICS[name](**{k: params[k] for k in TACTICS[name]._parameter_constraints})
            for name, params in tactics.items()}


__all__ = ["COMMON", "METHODS", "RULES", "TACTICS", "Tactic", "Termination", "check_tactics",
           "make_tactics"]
