"""The people, as columns.

One numpy array per attribute, one entry per person, so every mechanism updates everyone at
once (the mesa-frames pattern). A person's index is their id for the whole run.

An open market (``market.growth`` > 0): ``growth x market.n_people`` new prospects enter per
year, evenly spread (by time t, ``floor(growth x n_people x t)`` have entered). Everyone who
enters during the run is allocated at the start, after the initial market (indices
``n_people ..``, in order of entry), with status OUTSIDE, their own traits and their place in
the network: they are part of the social world (word of mouth reaches them) but not of the
market (nobody acquires, serves or counts them) until they enter as prospects. The people in
the market are therefore always the first ones, and at every step
``prospect + active + lapsed + terminated + outside = n``, ``outside`` never rises and the people
who entered in a step are exactly its fall. With ``growth = 0`` nothing is allocated beyond
``n_people`` and every draw is the one of a closed market.

The social world is everyone simulated: networks (``complete`` included, whose contacts are
drawn from everyone) span the entrants, so a longer run of an open market has more people to
know, and the share of a person's contacts who are customers counts contacts not yet in the
market as non-customers. ``network=edgelist`` is refused with growth (its file names the people).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np
from scipy.stats import norm

from .config import MarketConfig

PROSPECT, ACTIVE, LAPSED, TERMINATED, OUTSIDE = 0, 1, 2, 3, 4
STATUS_NAMES = ("prospect", "active", "lapsed", "terminated", "outside")


def entrant_count(growth: float, n_people: int, years: float) -> int:
    """How many people enter an open market within ``years``: ``floor(growth x n_people x
    years)`` (+ 1e-9 so that a product such as 0.1 x 3650 x 10 counts 3650, not 3649)."""
    return math.floor(growth * n_people * years + 1e-9)


def entry_times(growth: float, n_people: int, years: float) -> np.ndarray:
    """When the entrants of an open market enter, in years since the start (ascending): the
    j-th at ``j / (growth x n_people)``, for every j up to the horizon ``years``."""
    count = entrant_count(growth, n_people, years)
    return np.arange(1, count + 1, dtype=np.float64) / (growth * n_people) if count > 0 else np.zeros(0)


def lognormal_sigma(top20_share: float) -> float:
    """The lognormal sigma for which the top 20% of people hold ``top20_share`` of the total.

    For a lognormal, the share held by the top fraction f is Phi(sigma - Phi^-1(1 - f)), so
    sigma = Phi^-1(top20_share) + Phi^-1(0.8); top20_share = 0.2 gives sigma = 0 (equal spend).
    """
    return float(norm.ppf(top20_share) + norm.ppf(0.8))


def beta_with_mean(rng: np.random.Generator, mean: float, n: int, concentration: float = 4.0):
    """Per-person probabilities around ``mean`` (a Beta with a+b = concentration)."""
    if mean <= 0.0 or mean >= 1.0:
        return np.full(n, mean, dtype=np.float32)
    return rng.beta(concentration * mean, concentration * (1.0 - mean), n).astype(np.float32)


@dataclass
class Population:
    """Per-person state. Static traits are sampled once; dynamic state changes every step."""

    # status and history
    status: np.ndarray          # int8: PROSPECT, ACTIVE, LAPSED, TERMINATED, OUTSIDE
    tenure: np.ndarray          # int32: steps in the current customer spell
    lapsed_at: np.ndarray       # int32: step of the last lapse (-1 never)
    ever_customer: np.ndarray   # bool
    # static traits
    value: np.ndarray           # float32: base spend per year
    needs: np.ndarray           # float32 (n, dims): a point on the needs simplex
    needs_distance: np.ndarray  # float32: distance of needs from the standard offering, 0..1
    base_churn: np.ndarray      # float32: annual base churn probability theta
    price_sensitivity: np.ndarray
    complaint_propensity: np.ndarray
    late_pay_rate: np.ndarray   # float32: late payments per year
    destructive: np.ndarray     # bool
    innovator: np.ndarray       # bool
    deal_seeker: np.ndarray     # float32 0..1: drive to chase deals (promotions train it)
    # dynamic state
    customization: np.ndarray   # float32 0..1: how far the offering moved toward the needs
    expectation: np.ndarray     # float32: expected experience, 0..1 scale
    satisfaction: np.ndarray    # float32 -1..1
    commitment: np.ndarray      # float32 0..1
    sentiment: np.ndarray       # float32 -1..1: what the person has heard of the brand
    switching_cost: np.ndarray  # float32 0..1
    price: np.ndarray           # float32: price multiplier, 1 = list price
    penetration: np.ndarray     # float32: extra relative spend from cross-sell and up-sell
    exit_fee: np.ndarray        # float32: penalty a customer pays on leaving (negative retention)
    grievance: np.ndarray       # bool: has a bad story to tell next step (trapped, terminated)
    lapse_signal: np.ndarray    # float32: 1 at a lapse, fading (churn contagion)
    contract_end: np.ndarray    # float64: day the current contract expires (-1: none)
    contract_lock: np.ndarray   # float32: switching cost the contract adds, removed at expiry
    contract_spike: np.ndarray  # float32: extra years' worth of churn hazard felt at expiry
    pantry: np.ndarray          # float32: years of normal purchases bought ahead on promotion
    annoyance: np.ndarray       # float32: relative churn hazard added by annoying sales contacts
    # per-person ledgers
    complaints: np.ndarray      # int32 count
    late_payments: np.ndarray   # int32 count
    revenue: np.ndarray         # float64 total
    margin_discounted: np.ndarray  # float64: discounted gross margin (realised CLV)
    # non-contractual purchasing only (market.purchase.kind=noncontractual; None otherwise)
    purchase_rate: np.ndarray | None = None   # float64: purchases per year while alive (lambda)
    dropout_prob: np.ndarray | None = None    # float64: prob. of dropping out after a purchase
    spend_rate: np.ndarray | None = None      # float64: nu, the Gamma-Gamma rate of amounts
    # the purchase record the firm keeps (times in years since the start; NaN = none yet)
    first_purchase: np.ndarray | None = None  # float64: the purchase that made them a customer
    last_purchase: np.ndarray | None = None   # float64
    repeat_purchases: np.ndarray | None = None  # int32: purchases after the first (x)
    repeat_amount: np.ndarray | None = None   # float64: total of those purchases
    # open market only (market.growth > 0; None otherwise)
    entry_time: np.ndarray | None = None  # float64: years since the start at which each entered

    @property
    def n(self) -> int:
        return int(self.status.shape[0])

    @property
    def fit(self) -> np.ndarray:
        """How well the offering meets each person's needs (1 = perfectly)."""
        return 1.0 - (1.0 - self.customization) * self.needs_distance

    def fit_at(self, idx: np.ndarray) -> np.ndarray:
        """``fit[idx]``, computed for those people only."""
        return 1.0 - (1.0 - self.customization[idx]) * self.needs_distance[idx]

    def counts(self) -> np.ndarray:
        """People per status (PROSPECT, ACTIVE, LAPSED, TERMINATED, OUTSIDE)."""
        # Byte-wise comparisons beat np.bincount, which first widens int8 to int64.
        return np.array([np.count_nonzero(self.status == s) for s in range(len(STATUS_NAMES))],
                        dtype=np.intp)

    @classmethod
    def sample(cls, market: MarketConfig, rng: np.random.Generator,
               years: float = 0.0) -> Population:
        """The initial market, then (``market.growth`` > 0) the people who enter it within
        ``years``, drawn after it from the same stream: the initial market is the same whatever
        the growth."""
        pop = cls._sample(market, rng, market.n_people, market.initial_customer_share)
        times = entry_times(market.growth, market.n_people, years)
        if times.size == 0:
            return pop
        new = cls._sample(market, rng, times.size, 0.0)
        new.status[:] = OUTSIDE
        joined = {f.name: np.concatenate([getattr(pop, f.name), getattr(new, f.name)])
                  for f in fields(cls) if getattr(pop, f.name) is not None}
        joined["entry_time"] = np.concatenate([np.zeros(market.n_people), times])
        return replace(pop, **joined)

    @classmethod
    def _sample(cls, market: MarketConfig, rng: np.random.Generator, n: int,
                customer_share: float) -> Population:
        t = market.traits
        status = np.where(rng.random(n) < customer_share, ACTIVE, PROSPECT)
        status = status.astype(np.int8)

        sigma = lognormal_sigma(market.spend.top20_share)
        mu = np.log(market.spend.mean) - sigma**2 / 2.0   # keeps the mean at spend.mean
        value = np.exp(mu + sigma * rng.standard_normal(n)).astype(np.float32)

        dims = market.needs.dims
        needs = rng.dirichlet(np.full(dims, market.needs.concentration), n).astype(np.float32)
        # Total-variation distance from the standard offering (the simplex centre), scaled to 0..1.
        if dims > 1:
            tv = 0.5 * np.abs(needs - 1.0 / dims).sum(axis=1)
            needs_distance = (tv / (1.0 - 1.0 / dims)).astype(np.float32)
        else:
            needs_distance = np.zeros(n, dtype=np.float32)

        base_churn = rng.beta(market.churn.alpha, market.churn.beta, n).astype(np.float32)
        price_sensitivity = rng.exponential(t.price_sensitivity, n).astype(np.float32)
        complaint_propensity = beta_with_mean(rng, t.complaint_propensity, n)
        # Heterogeneous around the mean: Gamma with shape 2 (an assumption).
        late_pay_rate = (t.late_pay_rate * rng.gamma(2.0, 0.5, n)).astype(np.float32)
        destructive = rng.random(n) < t.destructive_share
        innovator = rng.random(n) < t.innovator_share
        deal_seeker = (rng.random(n) < t.deal_seeker_share).astype(np.float32)

        active = status == ACTIVE
        # Existing customers have been with the firm for a while: up to three years.
        tenure_years = np.where(active, 3.0 * rng.random(n), 0.0)
        commitment = (1.0 - np.exp(-market.experience.commitment_rate * tenure_years))

        f32 = np.float32
        return cls(
            status=status,
            tenure=np.zeros(n, dtype=np.int32),
            lapsed_at=np.full(n, -1, dtype=np.int32),
            ever_customer=active.copy(),
            value=value,
            needs=needs,
            needs_distance=needs_distance,
            base_churn=base_churn,
            price_sensitivity=price_sensitivity,
            complaint_propensity=complaint_propensity,
            late_pay_rate=late_pay_rate,
            destructive=destructive,
            innovator=innovator,
            deal_seeker=deal_seeker,
            customization=np.zeros(n, dtype=f32),
            expectation=np.full(n, market.competitor_quality, dtype=f32),
            satisfaction=np.zeros(n, dtype=f32),
            commitment=commitment.astype(f32),
            sentiment=np.zeros(n, dtype=f32),
            switching_cost=np.zeros(n, dtype=f32),
            price=np.ones(n, dtype=f32),
            penetration=np.zeros(n, dtype=f32),
            exit_fee=np.zeros(n, dtype=f32),
            grievance=np.zeros(n, dtype=bool),
            lapse_signal=np.zeros(n, dtype=f32),
            contract_end=np.full(n, -1.0),
            contract_lock=np.zeros(n, dtype=f32),
            contract_spike=np.zeros(n, dtype=f32),
            pantry=np.zeros(n, dtype=f32),
            annoyance=np.zeros(n, dtype=f32),
            complaints=np.zeros(n, dtype=np.int32),
            late_payments=np.zeros(n, dtype=np.int32),
            revenue=np.zeros(n, dtype=np.float64),
            margin_discounted=np.zeros(n, dtype=np.float64),
        )

    def table(self) -> dict[str, np.ndarray]:
        """The per-person columns as a dict (1-d columns only; needs are split per dimension)."""
        out: dict[str, np.ndarray] = {"customer_id": np.arange(self.n, dtype=np.int64)}
        for f in fields(self):
            arr = getattr(self, f.name)
            if arr is None:
                continue
            if arr.ndim == 1:
                out[f.name] = arr
            else:
                for k in range(arr.shape[1]):
                    out[f"{f.name}_{k}"] = arr[:, k]
        out["fit"] = self.fit
        out["status"] = np.asarray(STATUS_NAMES)[self.status]
        return out
