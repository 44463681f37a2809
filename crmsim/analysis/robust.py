"""The robust verdict: how sure about the model, not only about the seeds.

A sweep with ``study.uncertainty.draws=K`` runs every framework on the same K replicates, each
with its own seed and its own draw of every assumed number (``crmsim.uncertainty``). Within a
replicate the frameworks meet the same people, luck and assumptions, so they can be ranked
replicate by replicate:

- ``P(rank 1)``: the share of replicates in which a framework is best (ties split evenly, so
  the shares sum to one), with a 95% Wilson interval for the number of replicates;
- expected regret: the mean of (best framework's objective - this framework's), replicate by
  replicate: what choosing it costs on average against knowing the best one;
- rank spread: the median rank and the range of the middle 90% of replicates.

What to measure next is a value-of-information ranking: for each drawn parameter, the expected
value of partial perfect information (EVPPI), estimated by regressing each framework's objective
on the parameter (a quadratic in its quantile, a straight line for fewer than 12 replicates;
the regression method of Strong & Oakley 2014):
E[max_d g_d(x)] - max_d E[g_d(x)], in the objective's units. It is what learning that one number
exactly would be worth to the choice. A family-wise noise floor (the largest EVPPI that as many
parameters with no effect reach in 95% of shuffles, which break any link) tells a real signal
from what K draws produce by chance among so many parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .collect import DRAWN

LEVEL = 0.95
RANK_RANGE = (0.05, 0.95)   # the middle 90% of replicates
SHUFFLES = 200              # permutations for the noise floor
FLOOR_QUANTILE = 0.95
MIN_REPLICATES = 6          # fewest replicates for a value-of-information estimate
QUADRATIC_FROM = 12         # fewer replicates: a straight line (a quadratic would chase noise)
SHOWN = 3                   # parameters named in "before trusting this verdict, measure ..."


@dataclass
class Robust:
    """The robust verdict of one stratum."""

    table: pd.DataFrame         # per variant: p_rank1 (+ interval), regret, ranks, mean
    voi: pd.DataFrame           # per parameter: evppi, floor, above_floor, rho, favours
    replicates: int             # complete replicates (every variant ran)
    evpi: float                 # expected regret of the best-on-average variant
    best: str                   # the variant with the highest mean (= lowest expected regret)
    runner_up: str | None
    dropped: int                # replicates left out because a variant has no run in them

    def measure(self, n: int = SHOWN) -> list[str]:
        """The parameters to measure first: the highest EVPPI above the noise floor."""
        above = self.voi.loc[self.voi["above_floor"].astype(bool), "parameter"]
        return list(above.head(n))


def wilson(k: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n."""
    if n == 0:
        return math.nan, math.nan
    z = stats.norm.ppf(0.5 + level / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def outcome_matrix(runs: pd.DataFrame, objective: str,
                   variant: str = "variant", replicate: str = "replicate") -> tuple[pd.DataFrame, int]:
    """Replicates x variants of the objective, complete replicates only; and how many were
    dropped for a missing run."""
    y = runs.pivot_table(index=replicate, columns=variant, values=objective, aggfunc="last")
    y = y[list(dict.fromkeys(runs[variant]))]
    complete = y.dropna()
    return complete, len(y) - len(complete)


def rank_table(y: pd.DataFrame) -> pd.DataFrame:
    """P(rank 1), expected regret and rank spread per variant (columns of ``y``)."""
    values = y.to_numpy(dtype=float)
    n = values.shape[0]
    best = values.max(axis=1, keepdims=True)
    is_best = values == best
    share = is_best / is_best.sum(axis=1, keepdims=True)          # ties split evenly
    regret = best - values
    ranks = stats.rankdata(-values, axis=1, method="average")
    rows = []
    for j, name in enumerate(y.columns):
        k = share[:, j].sum()
        lo, hi = wilson(k, n)
        r = ranks[:, j]
        rows.append({
            "variant": name, "replicates": n, "p_rank1": k / n, "p_rank1_low": lo,
            "p_rank1_high": hi, "regret_mean": float(regret[:, j].mean()),
            "regret_p90": float(np.quantile(regret[:, j], 0.9)),
            "rank_median": float(np.median(r)),
            "rank_low": float(np.quantile(r, RANK_RANGE[0], method="inverted_cdf")),
            "rank_high": float(np.quantile(r, RANK_RANGE[1], method="inverted_cdf")),
            "mean": float(values[:, j].mean()),
        })
    return pd.DataFrame(rows)


def _design(u: np.ndarray) -> np.ndarray:
    columns = [np.ones_like(u), u - 0.5]
    if len(u) >= QUADRATIC_FROM:
        columns.append((u - 0.5) ** 2)
    return np.column_stack(columns)


def evppi(x: np.ndarray, values: np.ndarray) -> float:
    """EVPPI of one parameter ``x`` (one value per replicate) for the choice among the columns
    of ``values`` (replicates x options), by a regression in the parameter's quantile (a
    quadratic from ``QUADRATIC_FROM`` replicates, a straight line below). Never below zero."""
    u = (stats.rankdata(x) - 0.5) / len(x)
    fitted = _design(u) @ np.linalg.lstsq(_design(u), values, rcond=None)[0]
    return max(0.0, float(fitted.max(axis=1).mean() - values.mean(axis=0).max()))


def null_floor(values: np.ndarray, d: int, rng: np.random.Generator) -> float:
    """The family-wise noise floor: the largest EVPPI that ``d`` parameters with no effect on
    the outcome reach in 95% of shuffles. With many parameters some look large by chance; a
    floor for one parameter alone would let about 5% of them through.

    A drawn parameter enters ``evppi`` only through its ranks, so a parameter with no effect
    is the outcome rows in random order against the grid of quantiles: the fit is one
    projection matrix applied to shuffled rows, for all ``d`` parameters of a shuffle at once.
    """
    n = len(values)
    x = _design((np.arange(n) + 0.5) / n)
    hat = x @ np.linalg.pinv(x)
    best = values.mean(axis=0).max()
    maxima = np.empty(SHUFFLES)
    for i in range(SHUFFLES):
        rows = rng.permuted(np.tile(np.arange(n), (d, 1)), axis=1)      # d shuffles of n rows
        fitted = hat @ values[rows]                                    # d x n x options
        maxima[i] = (fitted.max(axis=2).mean(axis=1) - best).max()
    return max(0.0, float(np.quantile(maxima, FLOOR_QUANTILE)))


def voi_table(x: pd.DataFrame, y: pd.DataFrame, best: str, runner_up: str | None,
              seed: int = 0) -> pd.DataFrame:
    """Per drawn parameter (columns of ``x``, rows aligned with ``y``): EVPPI, the noise floor,
    and the Spearman correlation of (best - runner-up) with it."""
    values = y.to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    if x.shape[1] == 0:
        return pd.DataFrame(columns=["parameter", "evppi", "floor", "above_floor", "rho",
                                     "favoured_when_high"])
    floor = null_floor(values, x.shape[1], rng)
    diff = (y[best] - y[runner_up]).to_numpy(dtype=float) if runner_up is not None else None
    rows = []
    for col in x.columns:
        v = x[col].to_numpy(dtype=float)
        if np.ptp(v) == 0:
            continue
        rho = float(stats.spearmanr(v, diff).statistic) if diff is not None and np.ptp(diff) > 0 else math.nan
        favours = "" if math.isnan(rho) or runner_up is None else (best if rho > 0 else runner_up)
        e = evppi(v, values)
        rows.append({"parameter": col.removeprefix(DRAWN), "evppi": e, "floor": floor,
                     "above_floor": e > floor, "rho": rho, "favoured_when_high": favours})
    table = pd.DataFrame(rows, columns=["parameter", "evppi", "floor", "above_floor", "rho",
                                        "favoured_when_high"])
    return table.sort_values("evppi", ascending=False, kind="stable").reset_index(drop=True)


class DrawMismatch(ValueError):
    """Variants of one replicate that ran with different draws: not a paired comparison."""


def drawn_matrix(runs: pd.DataFrame, columns: list[str], replicates: pd.Index,
                 variant: str = "variant", replicate: str = "replicate") -> pd.DataFrame:
    """The drawn parameters of each replicate (identical for every variant; checked)."""
    sub = runs[runs[replicate].isin(replicates)]
    spread = sub.groupby(replicate)[columns].nunique(dropna=False)
    bad = spread[(spread > 1).any(axis=1)]
    if len(bad):
        raise DrawMismatch(f"replicate {bad.index[0]} ran its variants with different draws of "
                           f"{', '.join(c.removeprefix(DRAWN) for c in bad.columns[(bad.iloc[0] > 1)][:3])}")
    return sub.groupby(replicate)[columns].first().reindex(replicates)


def analyze(runs: pd.DataFrame, objective: str, drawn: list[str]) -> Robust:
    """The robust verdict of runs with columns variant, replicate, the objective and the drawn
    parameters (one stratum)."""
    y, dropped = outcome_matrix(runs, objective)
    table = rank_table(y)
    order = table.sort_values("mean", ascending=False)
    best = str(order["variant"].iloc[0])
    runner = str(order["variant"].iloc[1]) if len(order) > 1 else None
    evpi = float(table.set_index("variant").loc[best, "regret_mean"])
    x = drawn_matrix(runs, drawn, y.index) if drawn else pd.DataFrame(index=y.index)
    if len(y) < MIN_REPLICATES or len(y.columns) < 2:   # a quadratic needs more points
        x = x.iloc[:, :0]
    voi = voi_table(x, y, best, runner)
    table = table.sort_values(["p_rank1", "mean"], ascending=False).reset_index(drop=True)
    return Robust(table=table, voi=voi, replicates=len(y), evpi=evpi, best=best,
                  runner_up=runner, dropped=dropped)
