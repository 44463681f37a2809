"""Structured configs: the schema every composed config is checked against.

The numbers live in the YAML files under ``configs/`` (each with its source); this module holds
only types and allowed ranges, so a default is written exactly once. ``validate`` turns a
composed ``DictConfig`` into these dataclasses and stops on the first bad value with a
``ConfigError`` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

from .errors import ConfigError

NETWORK_KINDS = ("small_world", "scale_free", "random", "complete", "edgelist")


def _f(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
       hi_open: bool = False) -> Any:
    """A required number with an allowed interval (checked by ``validate``)."""
    return field(default=MISSING, metadata={"range": (lo, hi, lo_open, hi_open)})


def _prob() -> Any:
    return _f(0.0, 1.0)


@dataclass
class SimConfig:
    steps: int = _f(1)
    period_days: float = _f(0.0, 365.0, lo_open=True)
    discount_rate: float = _f(0.0)
    record_events: bool = MISSING
    record_customers: bool = MISSING


@dataclass
class SpendConfig:
    # Per-person spend is float32 (max 3.4e38); the cap leaves room for the lognormal tail.
    mean: float = _f(0.0, 1e12, lo_open=True)
    top20_share: float = _f(0.2, 1.0, hi_open=True)
    satisfaction_effect: float = _f(0.0)


@dataclass
class NeedsConfig:
    dims: int = _f(1)
    concentration: float = _f(0.0, lo_open=True)


@dataclass
class ChurnConfig:
    enabled: bool = MISSING
    alpha: float = _f(0.0, lo_open=True)
    beta: float = _f(0.0, lo_open=True)
    satisfaction_effect: float = _f(0.0)
    commitment_effect: float = _f(0.0)
    sentiment_effect: float = _f(0.0)
    switching_cost_effect: float = _f(0.0)
    price_effect: float = _f(0.0)
    contagion: float = _f(0.0)
    contagion_days: float = _f(0.0, lo_open=True)
    winback_rate: float = _f(0.0)
    trap_resentment: float = _f(0.0, 2.0)


@dataclass
class ExperienceConfig:
    fit_weight: float = _f(0.0)
    disconfirmation_weight: float = _f(0.0)
    gain: float = _f(0.0, lo_open=True)
    learning_rate: float = _f(0.0, 1.0)
    expectation_rate: float = _f(0.0, 1.0)
    salience: float = _f(0.0, 1.0)
    commitment_rate: float = _f(0.0)


@dataclass
class TraitsConfig:
    complaint_propensity: float = _prob()
    late_pay_prob: float = _prob()
    default_prob: float = _prob()
    destructive_share: float = _prob()
    innovator_share: float = _prob()
    deal_seeker_share: float = _prob()
    deal_seeker_premium: float = _f(0.0)
    price_sensitivity: float = _f(0.0)


# Node ids of the network's sparse matrices are int32.
MAX_PEOPLE = 2**31 - 1


@dataclass
class MarketConfig:
    n_people: int = _f(2, MAX_PEOPLE)
    initial_customer_share: float = _prob()
    competitor_quality: float = _f(0.0, 1.0)
    spend: SpendConfig = field(default_factory=SpendConfig)
    needs: NeedsConfig = field(default_factory=NeedsConfig)
    churn: ChurnConfig = field(default_factory=ChurnConfig)
    experience: ExperienceConfig = field(default_factory=ExperienceConfig)
    traits: TraitsConfig = field(default_factory=TraitsConfig)


@dataclass
class NetworkConfig:
    kind: str = MISSING
    mean_degree: float = _f(0.0, lo_open=True)
    rewire_prob: float = _prob()
    weak_degree: float = _f(0.0)
    path: str | None = None


# People one person tells (and one viral message reaches): message counts per person are int32
# in the model, so the bound keeps a step's messages per person far below 2^31.
MAX_TOLD = 1e5
# Money per event, per step or per run: above this, sums over a market and a run stop being
# meaningful (and an infinite total is no answer).
MAX_MONEY = 1e15


@dataclass
class WomConfig:
    tell_positive: float = _f(0.0, MAX_TOLD)
    tell_negative: float = _f(0.0, MAX_TOLD)
    recommend_prob: float = _prob()
    complain_to_others_prob: float = _prob()
    strong_rate: float = _prob()
    weak_rate: float = _prob()
    message_weight: float = _f(0.0)
    sentiment_memory: float = _f(0.0, 1.0)
    viral_prob: float = _prob()
    viral_reach: float = _f(0.0, MAX_TOLD)
    viral_reputation_hit: float = _f(0.0, 1.0)


@dataclass
class AdoptionConfig:
    innovation: float = _f(0.0)
    imitation: float = _f(0.0)
    sentiment_effect: float = _f(0.0)
    reputation_effect: float = _f(0.0)


@dataclass
class ServiceConfig:
    encounter_prob: float = _prob()
    noise_sd: float = _f(0.0)
    rude_prob: float = _prob()
    rude_shock: float = _f(0.0)
    training_effect: float = _prob()
    cost_per_encounter: float = _f(0.0, MAX_MONEY)
    satisfied_cost_cut: float = _prob()
    complaint_cost: float = _f(0.0, MAX_MONEY)
    recovery_prob: float = _prob()
    recovery_boost: float = _f(0.0, 2.0)


@dataclass
class KnowledgeConfig:
    noise_sd: float = _f(0.0)
    learning: float = _prob()
    floor: float = _prob()


@dataclass
class FirmConfig:
    crm_budget: float = _f(0.0, MAX_MONEY)
    quality: float = _f(0.0, 1.0)
    training: float = _f(0.0, 1.0)
    margin: float = _f(0.0, 1.0)
    fixed_cost: float = _f(0.0, MAX_MONEY)
    reputation: float = _f(-1.0, 1.0)
    reputation_memory: float = _f(0.0, 1.0)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)


@dataclass
class TerminationConfig:
    rules: list[str] = field(default_factory=list)
    method: str = MISSING
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class PolicyConfig:
    name: str = MISSING
    params: dict[str, Any] = field(default_factory=dict)
    tactics: dict[str, Any] = field(default_factory=dict)
    termination: TerminationConfig = field(default_factory=TerminationConfig)


@dataclass
class StudyConfig:
    """What a sweep is for: where its runs land and how the report reads them.

    Nothing here changes a simulation (``crmsim.result.config_hash`` leaves it out); the
    values are documented in ``configs/config.yaml`` and checked by ``crmsim.sweep``. The
    defaults here repeat them so that a config saved without a study still runs.
    """

    name: str | None = None
    baseline: str | None = None
    replicates: list[str] = field(default_factory=lambda: ["seed"])
    objective: str = "npv_profit"
    design: dict[str, Any] = field(default_factory=dict)
    point: int | None = None


@dataclass
class CRMConfig:
    seed: int = _f(0)
    sim: SimConfig = field(default_factory=SimConfig)
    market: MarketConfig = field(default_factory=MarketConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    wom: WomConfig = field(default_factory=WomConfig)
    adoption: AdoptionConfig = field(default_factory=AdoptionConfig)
    firm: FirmConfig = field(default_factory=FirmConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    study: StudyConfig = field(default_factory=StudyConfig)


def register_schema() -> None:
    """Register the schema so ``configs/config.yaml`` can list it first in its defaults."""
    ConfigStore.instance().store(name="crmsim_schema", node=CRMConfig)


# Money that scales with the market is written per person in the YAML, e.g.
# `crm_budget: ${per_person:0.15}` = 0.15 x market.n_people; an override with a plain number
# (firm.crm_budget=2000) sets it absolutely.
OmegaConf.register_new_resolver(
    "per_person", lambda amount, *, _root_: float(amount) * _root_.market.n_people, replace=True
)


def _describe(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool,
              whole: bool = False) -> str:
    if whole:  # integer bounds are always closed
        if lo is not None and hi is not None:
            return f"a whole number from {lo:.0f} to {hi:.0f}"
        return f"a whole number >= {lo:.0f}" if lo is not None else f"a whole number <= {hi:.0f}"
    if lo is not None and hi is not None:
        return f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"a number {'>' if lo_open else '>='} {lo:g}"
    return f"a number {'<' if hi_open else '<='} {hi:g}"


def _check_ranges(obj: Any, prefix: str) -> None:
    for f in dataclasses.fields(obj):
        key = f"{prefix}{f.name}"
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check_ranges(value, key + ".")
            continue
        bounds = f.metadata.get("range")
        if bounds is None:
            continue
        lo, hi, lo_open, hi_open = bounds
        allowed = _describe(lo, hi, lo_open, hi_open, whole=f.type == "int")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(key, value, allowed)
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise ConfigError(key, value, allowed)
        if hi is not None and (value > hi or (hi_open and value == hi)):
            raise ConfigError(key, value, allowed)


def _check_relations(c: CRMConfig) -> None:
    if c.network.kind not in NETWORK_KINDS:
        raise ConfigError("network.kind", c.network.kind, "one of " + ", ".join(NETWORK_KINDS))
    if c.network.kind != "edgelist" and c.network.mean_degree > c.market.n_people - 1:
        raise ConfigError(
            "network.mean_degree", c.network.mean_degree,
            f"a number at most market.n_people - 1 ({c.market.n_people - 1})",
        )
    if c.network.kind != "complete" and c.network.weak_degree >= c.market.n_people:
        # The exact bound depends on the strong ties drawn; the network builder checks it.
        raise ConfigError(
            "network.weak_degree", c.network.weak_degree,
            f"a number >= 0 and below market.n_people ({c.market.n_people})",
        )
    if c.network.kind == "edgelist" and not c.network.path:
        raise ConfigError("network.path", c.network.path,
                          "the path of an edge-list file when network.kind=edgelist")


def error_from_omegaconf(err: OmegaConfBaseException) -> ConfigError:
    """A ConfigError from OmegaConf's own (key, value, type) complaint."""
    key = getattr(err, "full_key", None) or "config"
    msg = str(err).splitlines()[0]
    if isinstance(err, InterpolationResolutionError):   # `${...}` that does not resolve
        node = getattr(err, "child_node", None)
        written = node._value() if node is not None else getattr(err, "value", None)
        expected = _expected_type(key)
        return ConfigError(key, written, (expected + ", or " if expected else "")
                           + "an interpolation that resolves", f"The interpolation failed: {msg}.")
    if "not in" in msg or "Key '" in msg:
        return ConfigError(key, None, "only keys of the crmsim schema (check the spelling)", msg)
    value = getattr(err, "value", None)
    expected = _expected_type(key)
    return ConfigError(key, value, expected or "a value of the type the schema declares")


def _expected_type(key: str) -> str | None:
    """What the schema declares for ``key``, in words."""
    node: Any = CRMConfig
    for part in key.split("."):
        hints = {f.name: f for f in dataclasses.fields(node)} if dataclasses.is_dataclass(node) else {}
        if part not in hints:
            return None
        f = hints[part]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        node = default if dataclasses.is_dataclass(default) else f
    if dataclasses.is_dataclass(node):  # `market.spend=3`: a whole section replaced by a value
        return "a section with the keys " + ", ".join(g.name for g in dataclasses.fields(node))
    if not isinstance(node, dataclasses.Field):
        return None
    words = {"int": "a whole number", "float": "a number", "bool": "true or false",
             "str": "a string", "str | None": "a path or null",
             "list[str]": "a list of names in brackets, e.g. [a,b]"}
    base = words.get(str(node.type), f"a value of type {node.type}")
    bounds = node.metadata.get("range")
    return _describe(*bounds, whole=str(node.type) == "int") if bounds else base


def validate(cfg: DictConfig | dict) -> CRMConfig:
    """Check a composed config against the schema and the allowed ranges.

    Returns the typed config; raises ``ConfigError`` (key, value, what is allowed) on the first
    problem, before anything runs.
    """
    from .policies import check_policy_config  # local: policies import config

    try:
        # A plain container, so that keys added with Hydra's `+` are checked against the schema.
        plain = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg
        merged = OmegaConf.merge(OmegaConf.structured(CRMConfig), plain)
        missing = OmegaConf.missing_keys(merged)
        if missing:
            key = sorted(missing)[0]
            raise ConfigError(key, "???", "a value (the key is required and has none)")
        typed: CRMConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        raise error_from_omegaconf(err) from None
    _check_ranges(typed, "")
    _check_relations(typed)
    check_policy_config(typed.policy)
    return typed
