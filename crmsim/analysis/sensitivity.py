"""Global sensitivity: which market parameters move a KPI most (SALib, extra ``sensitivity``).

A design (``study.design`` in the config) names parameters and their ranges. SALib turns it
into a sample of points; a sweep runs every point (``study.point=0..M-1``, times the seeds),
each an ordinary run with its parameters set; the report averages the KPI over seeds at each
point and hands (X, Y) back to SALib, which ranks the parameters:

- ``morris`` (elementary effects, Morris 1991; Campolongo et al. 2007): ``trajectories`` x
  (k + 1) runs; mu* is the mean absolute effect of moving one parameter across its range,
  sigma its spread (non-linearity and interactions).
- ``sobol`` (variance shares, Saltelli 2002): ``trajectories`` x (k + 2) runs (a power of 2);
  S1 is the share of the KPI's variance a parameter explains alone, ST with its interactions.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError

METHODS = ("morris", "sobol")
INSTALL = 'the sensitivity extra (pip install "crmsim[sensitivity]")'


def _salib(module: str):
    try:
        return __import__(f"SALib.{module}", fromlist=["*"])
    except ImportError:
        raise ConfigError("study.design", "SALib", f"an installed SALib: {INSTALL}") from None


def check_design(design: dict[str, Any]) -> None:
    """Stop on a design SALib cannot sample, naming the key, the value and what is allowed."""
    method = design.get("method")
    if method not in METHODS:
        raise ConfigError("study.design.method", method, "one of " + ", ".join(METHODS))
    bounds = design.get("bounds")
    if not isinstance(bounds, dict) or len(bounds) < 2:
        raise ConfigError("study.design.bounds", bounds,
                          "a mapping of at least two config keys to [low, high]")
    for key, pair in bounds.items():
        ok = (isinstance(pair, list | tuple) and len(pair) == 2
              and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair)
              and pair[0] < pair[1])
        if not ok:
            raise ConfigError(f"study.design.bounds.{key}", pair, "[low, high] with low < high")
    n = design.get("trajectories")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ConfigError("study.design.trajectories", n, "a whole number >= 2")
    if method == "sobol" and n & (n - 1):
        raise ConfigError("study.design.trajectories", n, "a power of 2 for method=sobol")
    levels = design.get("levels", 4)
    if method == "morris" and (isinstance(levels, bool) or not isinstance(levels, int)
                               or levels < 2 or levels % 2):
        raise ConfigError("study.design.levels", levels, "an even whole number >= 2")
    seed = design.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError("study.design.seed", seed, "a whole number >= 0")


def _plain(design: DictConfig | dict) -> dict[str, Any]:
    if isinstance(design, DictConfig):
        return OmegaConf.to_container(design, resolve=True)  # type: ignore[return-value]
    return dict(design)


def problem(design: dict[str, Any]) -> dict[str, Any]:
    bounds = design["bounds"]
    return {"num_vars": len(bounds), "names": list(bounds),
            "bounds": [list(map(float, b)) for b in bounds.values()]}


@functools.lru_cache(maxsize=8)
def _sample(text: str) -> np.ndarray:
    design = json.loads(text)
    prob = problem(design)
    n, seed = design["trajectories"], design.get("seed", 0)
    if design["method"] == "morris":
        return _salib("sample.morris").sample(prob, N=n, num_levels=design.get("levels", 4),
                                              seed=seed)
    return _salib("sample.sobol").sample(prob, N=n, calc_second_order=False, seed=seed)


def sample(design: DictConfig | dict) -> np.ndarray:
    """The design's points, one row per point, one column per parameter (deterministic)."""
    plain = _plain(design)
    check_design(plain)
    return _sample(json.dumps(plain))   # key order matters: it is the column order


def size(design: DictConfig | dict) -> int:
    return int(sample(design).shape[0])


def apply_point(cfg: DictConfig) -> dict[str, Any]:
    """Set the parameters of design point ``cfg.study.point`` in ``cfg``; return them.

    A parameter whose default is a whole number (a count) is rounded.
    """
    design = _plain(cfg.study.design)
    point = cfg.study.point
    x = sample(design)
    if isinstance(point, bool) or not isinstance(point, int) or not 0 <= point < x.shape[0]:
        raise ConfigError("study.point", point, f"a whole number from 0 to {x.shape[0] - 1} "
                          "(the points of study.design)")
    values = {}
    for key, value in zip(design["bounds"], x[point], strict=True):
        current = OmegaConf.select(cfg, key, default=None)
        if current is None:
            raise ConfigError(f"study.design.bounds.{key}", key, "an existing config key")
        v = int(round(value)) if isinstance(current, int) and not isinstance(current, bool) else float(value)
        OmegaConf.update(cfg, key, v, merge=False)
        values[key] = v
    return values


def analyze(design: DictConfig | dict, runs: pd.DataFrame, kpi: str,
            point: str = "study.point") -> pd.DataFrame:
    """Rank the design's parameters by their effect on ``kpi``.

    ``runs`` has one row per run with the design point and the KPI; runs of the same point
    (different seeds) are averaged first. Every point of the design must be present.
    """
    plain = _plain(design)
    x = sample(plain)
    y = runs.groupby(point)[kpi].mean().reindex(range(x.shape[0]))
    if y.isna().any():
        missing = [int(i) for i in y.index[y.isna()]][:10]
        raise ValueError(f"design points without a finished run: {missing}; rerun the sweep "
                         "with --resume to complete it")
    prob = problem(plain)
    seed = plain.get("seed", 0)
    if plain["method"] == "morris":
        si = _salib("analyze.morris").analyze(prob, x, y.to_numpy(), num_levels=plain.get("levels", 4),
                                              conf_level=0.95, seed=seed)
        table = pd.DataFrame({"parameter": prob["names"], "mu_star": si["mu_star"],
                              "mu_star_conf": si["mu_star_conf"], "mu": si["mu"],
                              "sigma": si["sigma"]})
        table = table.sort_values("mu_star", ascending=False)
    else:
        si = _salib("analyze.sobol").analyze(prob, y.to_numpy(), calc_second_order=False,
                                             conf_level=0.95, seed=seed)
        table = pd.DataFrame({"parameter": prob["names"], "ST": si["ST"], "ST_conf": si["ST_conf"],
                              "S1": si["S1"], "S1_conf": si["S1_conf"]})
        table = table.sort_values("ST", ascending=False)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.reset_index(drop=True)
