"""Structured configs: the schema every composed config is checked against.

The numbers live in the YAML files under ``configs/`` (each with its source); this module holds
only types and allowed ranges (``crmsim.constraints``), so a default is written exactly once.
``crmsim.validation.validate`` turns a composed ``DictConfig`` into these dataclasses and stops
on the first bad value with a ``ConfigError`` naming the key, the value and what is allowed.
Units: every amount is per year, per event or per person; durations are in days; nothing is
per step (the step length ``sim.period_days`` is only the resolution).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from .constraints import Interval, Options

NETWORK_KINDS = ("small_world", "scale_free", "random", "complete", "edgelist")


def _f(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
       hi_open: bool = False, whole: bool = False) -> Any:
    """A required number with an allowed interval (checked by ``crmsim.validation``)."""
    return field(default=MISSING, metadata={
        "constraint": Interval(lo, hi, lo_open, hi_open, whole)})


def _whole(lo: float | None = None, hi: float | None = None) -> Any:
    return _f(lo, hi, whole=True)


def _one_of(names: tuple[str, ...]) -> Any:
    """A required name from a fixed set."""
    return field(default=MISSING, metadata={"constraint": Options(names)})


def _prob() -> Any:
    return _f(0.0, 1.0)


@dataclass
class SimConfig:
    steps: int = _whole(1)
    period_days: float = _f(0.0, 365.0, lo_open=True)
    discount_rate: float = _f(0.0)
    record_events: bool = MISSING
    record_customers: bool = MISSING


@dataclass
class SpendConfig:
    # Per-person spend is float32 (max 3.4e38); the cap leaves room for the lognormal tail.
    mean: float = _f(0.0, 1e12, lo_open=True)        # per customer per year
    top20_share: float = _f(0.2, 1.0, hi_open=True)
    satisfaction_effect: float = _f(0.0)


@dataclass
class NeedsConfig:
    dims: int = _whole(1)
    concentration: float = _f(0.0, lo_open=True)


@dataclass
class ChurnConfig:
    enabled: bool = MISSING
    alpha: float = _f(0.0, lo_open=True)
    beta: float = _f(0.0, lo_open=True)
    satisfaction_effect: float = _f(0.0)
    dissatisfied_effect: float = _f(0.0)
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
    late_pay_rate: float = _f(0.0, 365.0)           # late payments per customer-year
    default_prob: float = _prob()                   # share of billed amounts never paid
    destructive_share: float = _prob()
    innovator_share: float = _prob()
    deal_seeker_share: float = _prob()
    deal_seeker_premium: float = _f(0.0)
    deal_seeker_discount: float = _f(0.0, 1.0)      # price share a deal-seeker does not pay
    destructive_stories_per_year: float = _f(0.0, 365.0)
    destructive_staff_harm: float = _f(0.0, 1000.0)  # training lost a year per share of encounters
    price_sensitivity: float = _f(0.0)


PURCHASE_KINDS = ("contractual", "noncontractual")


@dataclass
class PurchaseConfig:
    """How customers buy (``crmsim/behavior/purchase.py``). ``contractual``: an active customer
    pays every step and the firm sees who leaves. ``noncontractual``: BG/NBD purchase occasions
    with Gamma-Gamma amounts; the firm sees purchases only (Fader, Hardie & Lee 2005)."""

    kind: str = _one_of(PURCHASE_KINDS)
    r: float = _f(0.0, lo_open=True)        # purchase rate lambda ~ Gamma(r, alpha), per year
    alpha: float = _f(0.0, lo_open=True)    # in years
    a: float = _f(0.0, lo_open=True)        # dropout per purchase p ~ Beta(a, b)
    b: float = _f(0.0, lo_open=True)
    p: float = _f(0.0, lo_open=True)        # amount per transaction ~ Gamma(p, nu)
    q: float = _f(0.0, lo_open=True)        # nu ~ Gamma(q, gamma)
    gamma: float = _f(0.0, lo_open=True)    # in currency units
    satisfaction_effect: float = _f(0.0)
    sentiment_effect: float = _f(0.0)
    price_effect: float = _f(0.0)
    alive_threshold: float = _f(0.0, 1.0, lo_open=True, hi_open=True)


# Node ids of the network's sparse matrices are int32.
MAX_PEOPLE = 2**31 - 1


@dataclass
class MarketConfig:
    n_people: int = _whole(2, MAX_PEOPLE)
    initial_customer_share: float = _prob()
    competitor_quality: float = _f(0.0, 1.0)
    growth: float = _f(0.0, 10.0)   # new prospects per year, as a share of n_people (population.py)
    spend: SpendConfig = field(default_factory=SpendConfig)
    needs: NeedsConfig = field(default_factory=NeedsConfig)
    churn: ChurnConfig = field(default_factory=ChurnConfig)
    experience: ExperienceConfig = field(default_factory=ExperienceConfig)
    traits: TraitsConfig = field(default_factory=TraitsConfig)
    purchase: PurchaseConfig = field(default_factory=PurchaseConfig)


@dataclass
class NetworkConfig:
    kind: str = _one_of(NETWORK_KINDS)
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
    sentiment_half_life_days: float = _f(0.0, lo_open=True)
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
    encounter_rate: float = _f(0.0, 3650.0)          # encounters per customer-year
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
class CollectionConfig:
    cost_per_late_payment: float = _f(0.0)          # per late payment
    days_late: float = _f(0.0, 3650.0)              # how long a late payment stays unpaid


@dataclass
class CapabilityConfig:
    """Firm-level CRM capabilities (DESIGN section 5): levels 0..1 at the start, how they decay
    and what investment buys (crmsim/firm.py, ``Capabilities``)."""

    people: float = _prob()
    processes: float = _prob()
    technology_data: float = _prob()
    leadership_culture: float = _prob()
    reference: float = _f(0.0, 1.0, lo_open=True)   # the level at which levers have their catalogue effect
    half_life_days: float = _f(0.0, lo_open=True)   # without upkeep (at reference leadership)
    gain_per_money: float = _f(0.0)                 # per year, per money per person-year, x (1 - level)


@dataclass
class FirmConfig:
    crm_budget: float = _f(0.0, MAX_MONEY)           # per year
    quality: float = _f(0.0, 1.0)
    training: float = _f(0.0, 1.0)
    margin: float = _f(0.0, 1.0)
    fixed_cost: float = _f(0.0, MAX_MONEY)           # per year
    reputation: float = _f(-1.0, 1.0)
    reputation_half_life_days: float = _f(0.0, lo_open=True)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
    collection: CollectionConfig = field(default_factory=CollectionConfig)
    capabilities: CapabilityConfig = field(default_factory=CapabilityConfig)


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
    # Share of each targeted lever's target list held out as its control group (crmsim/levers.py).
    holdout_share: float = _prob()


# What a sweep's verdict and an optimiser maximise unless a study says otherwise: the run's
# discounted profit plus the customer equity it leaves behind (crmsim/metrics.py).
DEFAULT_OBJECTIVE = "npv_total"


@dataclass
class UncertaintyConfig:
    """Paired draws from the prior ranges (``crmsim/uncertainty.py``): ``draws`` replicates
    (0 = none), this run's ``draw``, the ``seed`` of the Latin hypercube, ``priors``, a file
    of ``configs/uncertainty/`` or a path, and the keys held ``fixed`` (not drawn)."""

    draws: int = 0
    draw: int = 0
    seed: int = 0
    priors: str = "default"
    fixed: list[str] = field(default_factory=list)


@dataclass
class StudyConfig:
    """What a sweep is for: where its runs land and how the report reads them.

    Nothing here changes a simulation (``crmsim.result.config_hash`` leaves it out); the
    values are documented in ``configs/config.yaml`` and checked by ``crmsim.sweep``. The
    defaults here repeat them so that a config saved without a study still runs.
    """

    name: str | None = None
    baseline: str | None = None
    replicates: list[str] = field(default_factory=lambda: ["seed", "study.uncertainty.draw"])
    objective: str = DEFAULT_OBJECTIVE
    design: dict[str, Any] = field(default_factory=dict)
    point: int | None = None
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)


@dataclass
class CRMConfig:
    seed: int = _whole(0)
    sim: SimConfig = field(default_factory=SimConfig)
    market: MarketConfig = field(default_factory=MarketConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    wom: WomConfig = field(default_factory=WomConfig)
    adoption: AdoptionConfig = field(default_factory=AdoptionConfig)
    firm: FirmConfig = field(default_factory=FirmConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    study: StudyConfig = field(default_factory=StudyConfig)


def seedless(plain: dict) -> tuple[str, int] | None:
    """A resolved config ``plain`` as (its content without the seed, as text; its seed), or
    None when the seed is not a whole number: configs that differ only by their seed (a
    sweep's replicates) share the text, so what was worked out for one serves the others."""
    seed = plain.get("seed")
    if type(seed) is not int:
        return None
    return json.dumps({k: v for k, v in plain.items() if k != "seed"}, sort_keys=True,
                      default=repr), seed


def register_schema() -> None:
    """Register the schema so ``configs/config.yaml`` can list it first in its defaults."""
    ConfigStore.instance().store(name="crmsim_schema", node=CRMConfig)


# Money that scales with the market is written per person in the YAML, e.g.
# `crm_budget: ${per_person:0.15}` = 0.15 x market.n_people; an override with a plain number
# (firm.crm_budget=2000) sets it absolutely.
OmegaConf.register_new_resolver(
    "per_person", lambda amount, *, _root_: float(amount) * _root_.market.n_people, replace=True
)
