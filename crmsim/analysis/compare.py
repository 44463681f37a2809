"""``crmsim.compare``: run variants on the same seeds and compare them pairwise."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
from omegaconf import DictConfig
from tqdm.auto import tqdm

from .. import metrics
from .stats import paired_differences

Measures = Callable[["crmsim.Result"], dict[str, float]]  # noqa: F821


@functools.lru_cache(maxsize=128)
def _variant_config(overrides: tuple[str, ...], keep_customers: bool) -> DictConfig:
    """Compose a variant once (composition costs more than a small run); seeds vary later."""
    from ..api import load_config

    keep = [] if keep_customers else ["sim.record_customers=false"]
    return load_config([*overrides, *keep])


def _run(job: tuple[str, int, tuple[str, ...], Measures | None]) -> dict:
    from ..api import simulate

    name, seed, overrides, measures = job
    cfg = _variant_config(overrides, measures is not None).copy()
    cfg.seed = seed
    result = simulate(cfg)
    return {"variant": name, "seed": seed, **result.summary,
            **(measures(result) if measures else {})}


def compare(
    variants: Mapping[str, Sequence[str]],
    seeds: Iterable[int] = range(5),
    baseline: str | None = None,
    kpis: Sequence[str] | None = None,
    n_jobs: int = 1,
    progress: bool = False,
    measures: Measures | None = None,
) -> pd.DataFrame:
    """Run every variant on every seed and compare each with ``baseline``.

    ``variants`` maps a name to a list of overrides, e.g.
    ``{"transactional": ["policy=transactional"], "idic": ["policy=idic"]}``. Every variant
    runs on the same seeds, so it meets the same people, network and luck (common random
    numbers) and differences are paired seed by seed. Returns one row per (variant, KPI) with
    the mean across seeds, its 95% interval, and the paired difference to the baseline with its
    95% interval (``diff``, ``diff_low``, ``diff_high``; the unpaired Welch interval is
    ``unpaired_low``/``unpaired_high``). The per-run summaries are in ``result.attrs["runs"]``.
    ``measures`` (a module-level function, so runs can go to other processes) adds KPIs of
    your own computed from each run's ``Result``; ``n_jobs`` runs that many in parallel.
    """
    if not variants:
        raise ValueError("compare needs at least one variant")
    seeds = list(seeds)
    baseline = baseline if baseline is not None else next(iter(variants))
    if baseline not in variants:
        raise ValueError(f"baseline {baseline!r} is not one of the variants {list(variants)}")
    jobs = [(name, seed, tuple(ov), measures) for name, ov in variants.items() for seed in seeds]
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
    extra = [k for k in runs.columns if k not in metrics.SUMMARY and k not in ("variant", "seed")]
    table = paired_differences(runs, list(kpis or [*metrics.SUMMARY, *extra]), baseline)
    table.attrs["runs"] = runs
    table.attrs["baseline"] = baseline
    return table


def experiment_variants(name: str, overrides: Sequence[str] = ()) -> tuple[dict[str, list[str]], list[int]]:
    """The variants and seeds of ``configs/experiment/<name>.yaml``, ready for ``compare``.

    A variant is one combination of the swept values other than the seed, named like
    ``policy=idic`` (several keys: ``a=1,b=2``); the seeds are the swept ``seed`` values.
    """
    from hydra import compose
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from ..api import _hydra_context, load_config

    load_config([f"experiment={name}", *overrides])        # stops on a bad name or value
    with _hydra_context():
        cfg = compose(config_name="config", overrides=[f"experiment={name}", *overrides],
                      return_hydra_config=True)
    params = dict(cfg.hydra.sweeper.get("params") or {})
    parser = OverridesParser.create()
    axes: dict[str, list[str]] = {}
    seeds = [0]
    for key, spec in params.items():
        override = parser.parse_override(f"{key}={spec}")
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() \
            else [override.get_value_element_as_str()]
        if key == "seed":
            seeds = [int(v) for v in values]
        else:
            axes[key] = values
    variants = {}
    for combo in itertools.product(*axes.values()):
        pairs = list(zip(axes, combo, strict=True))
        label = ",".join(f"{k.lstrip('+')}={v}" for k, v in pairs)
        variants[label] = [f"experiment={name}", *overrides, *(f"{k}={v}" for k, v in pairs)]
    return variants, seeds
