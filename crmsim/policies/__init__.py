"""Policies: one file per CRM framework, each a ``Policy`` (DESIGN section 5).

Adding a framework is one Python file here (a ``Policy`` subclass) and one
``configs/policy/<name>.yaml``.
"""

from __future__ import annotations

import math
from typing import Any

from ..config import PolicyConfig
from ..errors import ConfigError
from ..tactics import Termination, check_tactics, check_termination, make_tactics
from .base import ClosedLoop, Policy
from .gartner import MATURITY, Gartner
from .idic import IDIC
from .payne_frow import PayneFrow
from .qci import QCi
from .transactional import Transactional
from .value_chain import ValueChain

POLICIES: dict[str, type[Policy]] = {p.name: p for p in (
    Transactional, IDIC, ValueChain, QCi, PayneFrow, Gartner)}


def _check_number(key: str, value: Any, lo: float, hi: float | None) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if not ok or value < lo or (hi is not None and value > hi):
        allowed = f"a number in [{lo:g}, {hi:g}]" if hi is not None else f"a number >= {lo:g}"
        raise ConfigError(key, value, allowed)


def check_policy_config(cfg: PolicyConfig) -> None:
    if cfg.name not in POLICIES:
        raise ConfigError("policy.name", cfg.name, "one of " + ", ".join(sorted(POLICIES)))
    cls = POLICIES[cfg.name]
    for key in cls.required:
        if key not in cfg.params:
            raise ConfigError(f"policy.params.{key}", None, f"a value (policy '{cfg.name}' needs it)")
    for key, value in cfg.params.items():
        if key not in cls.required:
            raise ConfigError(f"policy.params.{key}", value,
                              f"a parameter of '{cfg.name}': {', '.join(cls.required) or 'none'}")
        if key == "maturity":
            if not isinstance(value, dict) or set(value) != set(MATURITY):
                raise ConfigError("policy.params.maturity", value,
                                  "a level in [0, 1] for each of " + ", ".join(MATURITY))
            for block, level in value.items():
                _check_number(f"policy.params.maturity.{block}", level, 0.0, 1.0)
        elif key == "review_every":
            _check_number("policy.params.review_every", value, 1.0, None)
        else:
            _check_number(f"policy.params.{key}", value, 0.0, 1.0)
    check_tactics(cfg.tactics)
    if "ads" not in cfg.tactics:
        raise ConfigError("policy.tactics.ads", None,
                          "the ads tactic in the catalogue (unspent budget buys ads)")
    check_termination(cfg.termination.rules, cfg.termination.method, cfg.termination.params)


def make_policy(cfg: PolicyConfig) -> Policy:
    tactics = make_tactics(cfg.tactics)
    shares = {name: float(p.get("share", 0.0)) for name, p in cfg.tactics.items()
              if p.get("enabled", False)}
    termination = Termination(cfg.termination.rules, cfg.termination.method,
                              dict(cfg.termination.params))
    return POLICIES[cfg.name](tactics, shares, dict(cfg.params), termination)


__all__ = ["POLICIES", "ClosedLoop", "Policy", "check_policy_config", "make_policy"]
