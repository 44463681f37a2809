"""``crmsim.compare``: run variants on the same seeds and compare them pairwise."""

from __future__ import annotations

import functools
import itertools
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

import pandas as pd
from omegaconf import DictConfig
from tqdm.auto import tqdm

from .. import metrics
from ..errors import ConfigError
from ..result import Result
from .stats import paired_differences

Measures = Callable[[Result], dict[str, float]]


@functools.lru_cache(maxsize=128)
def _variant_config(overrides: tuple[str, ...], keep_customers: bool) -> DictConfig:
    """Compose a variant once (composition costs more than a small run); seeds vary later."""
    from ..api import load_config

    keep = [] if keep_customers else ["sim.record_customers=false"]
    return load_config([*overrides, *keep])


def _row(name: str, measures: Measures | None, result: Result) -> dict:
    """A run's row of ``runs``: made where the run is (a worker), so only the row comes back."""
    return {"variant": name, "seed": result.config.seed, **result.summary,
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
    your own computed from each run's ``Result``; ``n_jobs`` runs that many in parallel, on
    a pool of worker processes (``crmsim.Replicates``) that serves every variant.
    """
    from ..replicates import Replicates

    seeds, kpis = _check_arguments(variants, seeds, baseline, kpis, n_jobs, measures)
    baseline = baseline if baseline is not None else next(iter(variants))
    calls = [(_variant_config(tuple(ov), measures is not None), seeds,
              functools.partial(_row, name, measures)) for name, ov in variants.items()]
    with (tqdm(total=len(calls) * len(seeds), desc="runs", unit="run", disable=not progress,
               leave=False) as bar, Replicates(workers=n_jobs) as runner):
        rows = runner.run_many(calls, bar.update)
    runs = pd.DataFrame([row for variant in rows for row in variant])
    extra = [k for k in runs.columns if k not in metrics.SUMMARY and k not in ("variant", "seed")]
    missing = [k for k in kpis or [] if k not in runs.columns]
    if missing:
        raise ConfigError("kpis", missing, "KPIs of crmsim.metrics.SUMMARY or of your measures: "
                          + ", ".join([*metrics.SUMMARY, *extra]))
    # Every KPI the runs have (npv_total at a horizon only when the runs reach it).
    table = paired_differences(
        runs, list(kpis or [k for k in [*metrics.SUMMARY, *extra] if k in runs.columns]), baseline)
    table.attrs["runs"] = runs
    table.attrs["baseline"] = baseline
    return table


def _check_arguments(variants, seeds, baseline, kpis, n_jobs,
                     measures=None) -> tuple[list[int], list[str] | None]:
    """Misuse named before anything runs: ``ConfigError`` (a ``ValueError``) with the argument,
    the value and what is allowed. Repeated seeds are dropped with a warning (a market counted
    twice would narrow the interval without new evidence)."""
    if not isinstance(variants, Mapping) or not variants:
        raise ConfigError("variants", variants, "a non-empty mapping of names to lists of "
                          "overrides, e.g. {'transactional': ['policy=transactional']}")
    for name, ov in variants.items():
        if isinstance(ov, str | bytes) or not all(isinstance(o, str) for o in ov):
            raise ConfigError(f"variants[{name!r}]", ov, "a list of override strings")
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Iterable):
        raise ConfigError("seeds", seeds, "whole numbers >= 0, e.g. range(10)")
    seeds = list(seeds)
    if not seeds or not all(isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= 0
                            for x in seeds):
        raise ConfigError("seeds", seeds, "one or more whole numbers >= 0, e.g. range(10)")
    unique = list(dict.fromkeys(int(x) for x in seeds))
    if len(unique) < len(seeds):
        warnings.warn(f"compare: repeated seeds dropped ({len(seeds) - len(unique)}); a seed is "
                      f"one market, counted once: seeds={unique}", UserWarning, stacklevel=3)
    if baseline is not None and baseline not in variants:
        raise ConfigError("baseline", baseline, "one of the variants: "
                          + ", ".join(map(str, variants)))
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs < 1:
        raise ConfigError("n_jobs", n_jobs, "a whole number >= 1 (processes run in parallel)")
    if kpis is not None:
        if isinstance(kpis, str | bytes) or not all(isinstance(k, str) for k in kpis) or not kpis:
            raise ConfigError("kpis", kpis, "a non-empty list of KPI names, e.g. ['npv_profit']")
        kpis = list(kpis)
        unknown = [k for k in kpis if k not in metrics.SUMMARY]
        if unknown and measures is None:   # measures add KPIs known only once a run is made
            raise ConfigError("kpis", unknown, "KPIs of crmsim.metrics.SUMMARY: "
                              + ", ".join(metrics.SUMMARY))
    return unique, kpis


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
