"""Paired comparisons across seeds.

Runs of different variants with the same seed share their people, network and luck (common
random numbers), so the difference between two variants is measured seed by seed and its
interval comes from the spread of those per-seed differences (a paired t interval). The
unpaired (Welch) interval on the same runs is reported next to it, to show what pairing buys.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats


@lru_cache(maxsize=256)
def _t_quantile(level: float, df: int) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom (one call
    of scipy's ``ppf`` per sample size, not per KPI)."""
    return stats.t.ppf(0.5 + level / 2, df)


def _t_interval(x: np.ndarray, level: float) -> tuple[float, float, float]:
    """Mean and two-sided t interval of ``x`` (nan interval for fewer than two values)."""
    n = x.size
    mean = float(x.mean()) if n else float("nan")
    if n < 2:
        return mean, float("nan"), float("nan")
    half = _t_quantile(level, n - 1) * x.std(ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def _welch_interval(a: np.ndarray, b: np.ndarray, level: float) -> tuple[float, float]:
    if a.size < 2 or b.size < 2:
        return float("nan"), float("nan")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = np.sqrt(va + vb)
    if se == 0:
        d = float(a.mean() - b.mean())
        return d, d
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = stats.t.ppf(0.5 + level / 2, df) * se
    d = float(a.mean() - b.mean())
    return d - half, d + half


def paired_differences(
    runs: pd.DataFrame,
    kpis: Sequence[str],
    baseline: str,
    variant: str = "variant",
    seed: str = "seed",
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per (variant, KPI): mean, sd, n, and the paired difference to ``baseline``.

    ``runs`` has one row per run with columns ``variant``, ``seed`` and the KPIs. Differences
    use only seeds that both the variant and the baseline have. Columns: ``variant, kpi, n,
    mean, std, ci_low, ci_high, diff, diff_low, diff_high, unpaired_low, unpaired_high,
    p_value`` (paired t test; nan for the baseline itself).
    """
    if baseline not in set(runs[variant]):
        raise ValueError(f"baseline {baseline!r} is not among the variants {sorted(set(runs[variant]))}")
    rows = []
    base = runs[runs[variant] == baseline].set_index(seed)
    # Every KPI's per-seed differences at once, aligned by seed as one KPI's would be (a KPI
    # the runs lack raises below, where it did one KPI at a time).
    present = [k for k in dict.fromkeys(kpis) if k in runs.columns]
    for name, group in runs.groupby(variant, sort=False):
        g = group.set_index(seed)
        common = g.index.intersection(base.index)
        diffs = g.loc[common, present] - base.loc[common, present] if name != baseline else None
        for kpi in kpis:
            x = g[kpi].to_numpy(dtype=float)
            mean, lo, hi = _t_interval(x, level)
            row = {variant: name, "kpi": kpi, "n": x.size, "mean": mean,
                   "std": float(x.std(ddof=1)) if x.size > 1 else float("nan"),
                   "ci_low": lo, "ci_high": hi}
            if name == baseline:
                row.update(diff=0.0, diff_low=0.0, diff_high=0.0, unpaired_low=0.0,
                           unpaired_high=0.0, p_value=float("nan"))
            else:
                d = diffs[kpi].to_numpy(dtype=float)
                dm, dlo, dhi = _t_interval(d, level)
                ulo, uhi = _welch_interval(x, base[kpi].to_numpy(dtype=float), level)
                if d.size > 1 and d.std(ddof=1) > 0:
                    p = float(stats.ttest_1samp(d, 0.0).pvalue)
                else:
                    p = float("nan") if d.size < 2 else (1.0 if dm == 0 else 0.0)
                row.update(diff=dm, diff_low=dlo, diff_high=dhi, unpaired_low=ulo,
                           unpaired_high=uhi, p_value=p)
            rows.append(row)
    return pd.DataFrame(rows)
