"""Policies: one file per CRM framework, each a ``Policy`` (DESIGN section 5).

Adding a framework is one Python file here (a ``Policy`` subclass) and one
``configs/policy/<name>.yaml``.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..config import PolicyConfig
from ..constraints import check_params
from ..errors import ConfigError
from ..tactics import Termination, check_tactics, make_tactics
from .base import ClosedLoop, Policy

# Every module of this package is imported, so each Policy subclass with a name registers.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

POLICIES: dict[str, type[Policy]] = dict(sorted(Policy.registry.items()))


def check_policy_config(cfg: PolicyConfig) -> None:
    if cfg.name not in POLICIES:
        raise ConfigError("policy.name", cfg.name, "one of " + ", ".join(POLICIES))
    cls = POLICIES[cfg.name]
    check_params("policy.params", cfg.params, cls._parameter_constraints, f"'{cfg.name}'")
    check_tactics(cfg.tactics)
    if "ads" not in cfg.tactics:
        raise ConfigError("policy.tactics.ads", None,
                          "the ads tactic in the catalogue (when enabled, it buys what no other "
                          "tactic spends)")
    Termination.check(cfg.termination.rules, cfg.termination.method, cfg.termination.params)


def make_policy(cfg: PolicyConfig) -> Policy:
    tactics = make_tactics(cfg.tactics)
    shares = {name: float(p.get("share", 0.0)) for name, p in cfg.tactics.items()
              if p.get("enabled", False)}
    termination = Termination(cfg.termination.rules, cfg.termination.method,
                              dict(cfg.termination.params))
    return POLICIES[cfg.name](tactics, shares, dict(cfg.params), termination)


__all__ = ["POLICIES", "ClosedLoop", "Policy", "check_policy_config", "make_policy"]
