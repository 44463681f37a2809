"""Policies: one file per CRM framework, each a ``Policy`` (DESIGN section 5)."""

from __future__ import annotations

from ..config import PolicyConfig
from ..errors import ConfigError
from ..tactics import check_tactics, make_tactics
from .base import Policy
from .transactional import Transactional

POLICIES: dict[str, type[Policy]] = {p.name: p for p in (Transactional,)}


def check_policy_config(cfg: PolicyConfig) -> None:
    if cfg.name not in POLICIES:
        raise ConfigError("policy.name", cfg.name, "one of " + ", ".join(sorted(POLICIES)))
    check_tactics(cfg.tactics)
    if cfg.termination.rules:
        raise ConfigError("policy.termination.rules", cfg.termination.rules,
                          "[] (no termination rules are available yet)")


def make_policy(cfg: PolicyConfig) -> Policy:
    return POLICIES[cfg.name](make_tactics(cfg.tactics), dict(cfg.params), cfg.termination)


__all__ = ["POLICIES", "Policy", "check_policy_config", "make_policy"]
