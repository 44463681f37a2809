"""``crmsim.compare``: run variants on the same seeds and compare them pairwise."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
from tqdm.auto import tqdm

from .. import metrics
from .stats import paired_differences


def _run(job: tuple[str, int, tuple[str, ...]]) -> dict:
    from ..api import load_config, simulate

    name, seed, overrides = job
    cfg = load_config([*overrides, f"seed={seed}", "sim.record_customers=false"])
    return {"variant": name, "seed": seed, **simulate(cfg).summary}


def compare(
    variants: Mapping[str, Sequence[str]],
    seeds: Iterable[int] = range(5),
    baseline: str | None = None,
    kpis: Sequence[str] | None = None,
    n_jobs: int = 1,
    progress: bool = False,
) -> pd.DataFrame:
    """Run every variant on every seed and compare each with ``baseline``.

    ``variants`` maps a name to a list of overrides, e.g.
    ``{"transactional": ["policy=transactional"], "idic": ["policy=idic"]}``. Every variant
    runs on the same seeds, so it meets the same people, network and luck (common random
    numbers) and differences are paired seed by seed. Returns one row per (variant, KPI) with
    the mean across seeds, its 95% interval, and the paired difference to the baseline with its
    95% interval (``diff``, ``diff_low``, ``diff_high``; the unpaired Welch interval is
    ``unpaired_low``/``unpaired_high``). The per-run summaries are in ``result.attrs["runs"]``.
    """
    if not variants:
        raise ValueError("compare needs at least one variant")
    seeds = list(seeds)
    baseline = baseline if baseline is not None else next(iter(variants))
    if baseline not in variants:
        raise ValueError(f"baseline {baseline!r} is not one of the variants {list(variants)}")
    jobs = [(name, seed, tuple(ov)) for name, ov in variants.items() for seed in seeds]
    bar = tqdm(total=len(jobs), desc="runs", unit="run", disable=not progress, leave=False)
    rows = []
    if n_jobs == 1:
        for job in jobs:
            rows.append(_run(job))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            for row in pool.map(_run, jobs):
                rows.append(row)
                bar.update()
    bar.close()
    runs = pd.DataFrame(rows)
    table = paired_differences(runs, list(kpis or metrics.SUMMARY), baseline)
    table.attrs["runs"] = runs
    table.attrs["baseline"] = baseline
    return table
