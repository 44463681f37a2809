"""Simulating a candidate market and the moments calibration compares with the data.

A candidate is run at a small size on fixed seeds (the same seeds for every candidate: common
random numbers, so two candidates differ by their parameters, not their luck). The moments:

- contractual: the retention of the customers present at the start in each period (the share
  of those active at the start of period k - 1 still active at the start of period k), the
  simulated counterpart of the data's pooled cohort retention;
- non-contractual: for the customers present at the start, the distribution of their repeat
  purchases and of their recency (time from first to last purchase, as a share of the span),
  as a retailer would see them.

Stage B (``smm``) fits the keys stage A cannot pin down because modifiers interact (observed
retention = base hazard x satisfaction, contagion and tactic effects) by simulated method of
moments with Optuna.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..compose import load_config
from ..replicates import Replicates
from .data import YEAR_DAYS

FREQ_BINS = np.array([0, 1, 2, 3, 5, 8, 13, 21, 34, 55, np.inf])
RECENCY_BINS = np.linspace(0.0, 1.0, 6)


@dataclass
class Target:
    """What a candidate must reproduce: the observed moments and their standard errors."""

    setting: str
    period_days: float
    periods: int
    observed: np.ndarray
    se: np.ndarray
    n_start: int                     # customers the observed moments are computed on
    # Share of a simulated start cohort each moment is computed on (its sampling variance).
    at_risk: np.ndarray | None = None


@dataclass
class Fitted:
    keys: tuple[str, ...]
    best: dict[str, float]
    low: dict[str, float]
    high: dict[str, float]
    distance: float
    trials: int
    seeds: list[int]
    n_people: int
    seconds: float
    history: list[tuple[dict, float]] = field(default_factory=list)
    method: str = ""
    moments: int = 0                 # the moments the distance sums over


def cohort_target(cohorts: dict, period_days: float) -> Target:
    """The pooled retention of periods 1..K (the share of those active at the start of period
    k - 1 still active at the start of period k, over the cohorts observed that long): nearly
    independent moments, each with its binomial standard error."""
    longest = max(len(c) for c in cohorts.values()) - 1
    at = np.array([sum(c[k - 1] for c in cohorts.values() if len(c) > k) for k in range(1, longest + 1)])
    kept = np.array([sum(c[k] for c in cohorts.values() if len(c) > k) for k in range(1, longest + 1)])
    r = kept / np.maximum(at, 1)
    se = np.sqrt(np.maximum(r * (1 - r), 1e-4) / np.maximum(at, 1))
    first = max(cohorts.values(), key=len)
    return Target("contractual", period_days, longest, r, se, int(first[0]),
                  at_risk=np.concatenate([[1.0], np.cumprod(r)[:-1]]))


def log_moments(freq: np.ndarray, recency_share: np.ndarray) -> np.ndarray:
    f = np.histogram(freq, FREQ_BINS)[0] / max(freq.size, 1)
    rep = recency_share[freq > 0]
    r = np.histogram(np.clip(rep, 0, 1), RECENCY_BINS)[0] / max(freq.size, 1)
    return np.concatenate([f, r])


def log_target(freq: np.ndarray, recency_share: np.ndarray, period_days: float,
               periods: int) -> Target:
    m = log_moments(freq, recency_share)
    se = np.sqrt(np.maximum(m * (1 - m), 1e-4) / max(freq.size, 1))
    return Target("noncontractual", period_days, periods, m, se, int(freq.size))


def base_config(target: Target, overrides: list[str], n_start: int):
    """The config every candidate starts from, composed once. Steps are one period of the data
    long unless the overrides set ``sim.period_days`` (the step is only a resolution: DESIGN §3,
    tests/test_time_units.py). The market has about ``n_start`` customers at the start
    (at least 500 people, at most 20,000, for speed)."""
    given = [o.partition("=")[2] for o in overrides if o.partition("=")[0] == "sim.period_days"]
    days = float(given[-1]) if given else target.period_days
    steps = int(math.ceil(target.periods * target.period_days / days - 1e-9))
    cfg = load_config([*overrides, f"sim.period_days={days!r}", f"market.purchase.kind={target.setting}",
                       f"sim.steps={steps}", "sim.record_events=true"])
    share = float(cfg.market.initial_customer_share)
    cfg.market.n_people = int(min(max(n_start / max(share, 1e-3), 500), 20000))
    return cfg


def moments_of(result, target: Target) -> np.ndarray:
    ev = result.events
    start = ev.loc[(ev["event"] == "acquisition") & (ev["step"] == 0), "customer_id"].unique()
    dt_days = float(result.config.sim.period_days)
    if target.setting == "contractual":
        out = ev[ev["event"].isin(("churn", "termination")) & ev["customer_id"].isin(start)]
        left = out.groupby("customer_id")["step"].min().reindex(start).to_numpy(float)
        # churn in step s: gone before (s - 1) x step; survived t days if (s - 1) x step >= t
        t = np.arange(1, target.periods + 1) * target.period_days
        alive = np.where(np.isnan(left), np.inf, (left - 1) * dt_days)
        survival = np.concatenate([[1.0], (alive[None, :] >= t[:, None] - 1e-9).mean(axis=1)])
        return survival[1:] / np.maximum(survival[:-1], 1e-12)
    buys = ev[(ev["event"] == "purchase") & ev["customer_id"].isin(start)]
    span = result.config.sim.steps * dt_days / YEAR_DAYS
    freq, rec = _record(buys, start, span)
    return log_moments(freq, rec)


def _record(buys: pd.DataFrame, ids, span_years: float) -> tuple[np.ndarray, np.ndarray]:
    """Repeat purchases and recency / span of customers ``ids`` from their purchases (the first
    at the start of the span)."""
    g = buys.groupby("customer_id")["date"]
    n = g.size().reindex(ids, fill_value=1).to_numpy()
    first = g.min().reindex(ids)
    last = g.max().reindex(ids)
    rec = ((last - first) / pd.Timedelta(days=YEAR_DAYS)).fillna(0).to_numpy(float) / span_years
    return n - 1, rec


def data_log_target(log: pd.DataFrame, end: pd.Timestamp, period_days: float) -> Target | None:
    """The moments of the customers whose first purchase is in the log's first period."""
    start = log["date"].min()
    first = log.groupby("customer_id")["date"].min()
    ids = first.index[(first - start) / pd.Timedelta(days=1) < period_days].to_numpy()
    if ids.size < 50:
        return None
    span = (end - start) / pd.Timedelta(days=YEAR_DAYS)
    periods = int(round((end - start) / pd.Timedelta(days=period_days)))
    freq, rec = _record(log[log["customer_id"].isin(ids)], ids, span)
    return log_target(freq, rec, period_days, max(periods, 1))


def simulate_moments(target: Target, values: dict, base, seeds: list[int],
                     runner: Replicates | None = None) -> np.ndarray:
    """The moments of the candidate ``values`` (config keys) on each seed, one row per seed in
    the order of ``seeds``: the same seeds for every candidate (common random numbers). Each
    row is ``moments_of(crmsim.simulate(the candidate with that seed))``, computed by
    ``runner``'s worker processes (None: in this process); ``crmsim.simulate``'s checks run
    once per candidate, before any of its simulations."""
    from omegaconf import OmegaConf

    cfg = base.copy()
    for k, v in values.items():
        OmegaConf.update(cfg, k, float(v))
    reduce = functools.partial(moments_of, target=target)
    return np.array((runner or Replicates(workers=1)).run(cfg, seeds, reduce))


def variance(target: Target, n_sim: int) -> np.ndarray:
    """The variance of each moment's difference, simulated minus observed: the data's binomial
    variance plus the simulation's (``n_sim`` simulated customers at the start, over all seeds)."""
    n = max(n_sim, 1) * (target.at_risk if target.at_risk is not None else 1.0)
    return target.se**2 + np.maximum(target.observed * (1 - target.observed), 1e-4) / np.maximum(n, 1)


def simulated_customers(base, seeds: list[int]) -> int:
    """Customers at the start of a candidate's simulations, over all its seeds."""
    return round(int(base.market.n_people) * float(base.market.initial_customer_share)) * len(seeds)


def distance(sim: np.ndarray, target: Target, n_sim: int) -> float:
    """Sum of squared differences between the mean simulated and the observed moments, each
    over its variance (the data's plus the simulation's); about chi-square at the truth."""
    m = sim.mean(axis=0)
    return float(((m - target.observed) ** 2 / variance(target, n_sim)).sum())


# Candidates within the chi-square window of the best needed to report an interval.
MIN_INSIDE = 3

STAGE_B_KEYS = {
    # Base churn of the full model: stage A's sBG reads the observed retention, which the
    # model's modifiers (satisfaction, contagion, tactics) move away from the base hazard.
    "contractual": ("market.churn.alpha", "market.churn.beta"),
    # The scales of the purchase rate and of the dropout: the modifiers move both; the shapes
    # (r, a) stay at stage A's values.
    "noncontractual": ("market.purchase.alpha", "market.purchase.b"),
}


def smm(target: Target, start: dict, overrides: list[str], trials: int, seeds: list[int],
        n_start: int = 1000, seed: int = 0, spread: float = 4.0,
        runner: Replicates | None = None) -> Fitted:
    """Simulated method of moments over ``STAGE_B_KEYS[target.setting]`` with Optuna's TPE
    sampler (seeded), searching each key on a log scale within ``spread``x of its stage A
    value; every candidate runs on the same ``seeds``, side by side on ``runner``'s worker
    processes (None: a pool of one per core for this search). The numbers do not depend on
    the workers: each candidate's moments are those of its seeds run one after the other."""
    if runner is None:
        with Replicates() as own:
            return smm(target, start, overrides, trials, seeds, n_start, seed, spread, own)
    import time

    import optuna

    keys = STAGE_B_KEYS[target.setting]
    base = base_config(target, overrides, n_start)
    n_people = int(base.market.n_people)
    n_sim = simulated_customers(base, seeds)
    history: list[tuple[dict, float]] = []

    def objective(trial: optuna.Trial) -> float:
        values = {k: trial.suggest_float(k, start[k] / spread, start[k] * spread, log=True)
                  for k in keys}
        d = distance(simulate_moments(target, values, base, seeds, runner), target, n_sim)
        history.append((values, d))
        return d

    t0 = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({k: start[k] for k in keys})
    study.optimize(objective, n_trials=trials)
    best = dict(study.best_params)
    # An approximate 95% confidence set: the candidates whose distance is within the
    # chi-square 95% quantile (one degree of freedom per key) of the best.
    cut = study.best_value + stats.chi2.ppf(0.95, len(keys))
    inside = [v for v, d in history if d <= cut]
    if len(inside) >= MIN_INSIDE:
        low = {k: min(v[k] for v in inside) for k in keys}
        high = {k: max(v[k] for v in inside) for k in keys}
    else:    # too few candidates near the best to bound it: no interval rather than a point
        low = high = {k: float("nan") for k in keys}
    method = (f"simulated method of moments (Optuna TPE, {trials} candidates, seeds {seeds} for "
              f"every candidate, {n_people:,} people); interval: the candidates within the "
              f"chi-square 95% quantile of the best distance (none when fewer than {MIN_INSIDE}: "
              "run more --trials)")
    return Fitted(keys, best, low, high, study.best_value, trials, seeds, n_people,
                  time.perf_counter() - t0, history, method, int(target.observed.size))
