"""How sure about the model: prior ranges for every assumed number, and paired draws from them.

The ranges live in one file, ``configs/uncertainty/<name>.yaml`` (``study.uncertainty.priors``
names it, or gives the path of a file of the same form). It says which numbers of the config are
*illustrative* (assumed, not measured, not chosen) and gives each a range:

    scope        the config sections whose numbers are candidates (market, firm, policy, ...)
    not_assumed  patterns (fnmatch: ``*`` matches across dots) of numbers in scope that are not
                 assumptions, each with its reason: decisions the firm takes (tactic shares, cadences,
                 triggers), and the description of the firm's own situation (its size, spend, margin)
    ranges       ``key: {low, high, scale (linear or log), basis}``; basis is a citation, or
                 "assumption: <reasoning>"

Every number in scope (ints and floats, not booleans; in the default config and under every
policy option) that no pattern names is illustrative and must have a range (tests/test_uncertainty.py
lists any that lacks one, and any range that names no key).

``study.uncertainty.draws=K`` in a sweep runs K replicates; replicate ``study.uncertainty.draw=r``
sets every ranged parameter to row r of a Latin hypercube over the ranges
(``scipy.stats.qmc.LatinHypercube``, seeded by ``study.uncertainty.seed``). The row depends only
on (priors, K, seed, r), never on the policy, so every framework of a replicate meets the same
assumptions, as it meets the same people and luck through its seed: the comparison stays paired.
"""

from __future__ import annotations

import fnmatch
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError

SCALES = ("linear", "log")
DEFAULT_PRIORS = "default"
KEY = "study.uncertainty"


@dataclass(frozen=True)
class Range:
    """A plausible range of one parameter and where it comes from."""

    key: str
    low: float
    high: float
    scale: str
    basis: str

    def value(self, u: float) -> float:
        """The value at quantile ``u`` (0..1) of the range: uniform on its scale."""
        if self.scale == "log":
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        return float(self.low + u * (self.high - self.low))

    @property
    def sourced(self) -> bool:
        return not self.basis.lower().startswith("assumption")


@dataclass(frozen=True)
class Priors:
    path: Path
    scope: tuple[str, ...]
    not_assumed: dict[str, str]
    ranges: dict[str, Range]

    @property
    def keys(self) -> list[str]:
        return list(self.ranges)


def priors_path(name: str) -> Path:
    """``default`` -> the packaged ``configs/uncertainty/default.yaml``; a path -> itself."""
    from .compose import config_dir

    if not isinstance(name, str) or not name:
        raise ConfigError(f"{KEY}.priors", name, "the name of a file in configs/uncertainty/ "
                          "(e.g. default) or the path of a YAML file of the same form")
    packaged = config_dir() / "uncertainty" / f"{name}.yaml"
    if "/" not in name and not name.endswith((".yaml", ".yml")):
        if not packaged.is_file():
            from .compose import group_options

            raise ConfigError(f"{KEY}.priors", name, "one of " + ", ".join(group_options("uncertainty"))
                              + ", or the path of a YAML file of the same form")
        return packaged
    path = Path(name).expanduser()
    if not path.is_file():
        raise ConfigError(f"{KEY}.priors", name, "an existing YAML file of prior ranges "
                          "(see configs/uncertainty/default.yaml)")
    return path.absolute()


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _parse(path: Path) -> Priors:
    where = f"{KEY}.priors ({path})"
    try:
        doc = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as err:
        raise ConfigError(f"{KEY}.priors", str(path), "a readable YAML file of prior ranges",
                          str(err).splitlines()[0]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("ranges"), dict):
        raise ConfigError(where, type(doc).__name__, "a mapping with scope, not_assumed and ranges")
    scope = doc.get("scope") or []
    not_assumed = doc.get("not_assumed") or {}
    if not (isinstance(scope, list) and all(isinstance(s, str) for s in scope)):
        raise ConfigError(f"{where}: scope", scope, "a list of config sections, e.g. [market, policy]")
    if not (isinstance(not_assumed, dict) and all(isinstance(v, str) and v for v in not_assumed.values())):
        raise ConfigError(f"{where}: not_assumed", not_assumed, "a mapping of key patterns to the "
                          "reason each is not an assumption")
    ranges = {}
    for key, spec in doc["ranges"].items():
        name = f"{where}: ranges.{key}"
        if not isinstance(spec, dict):
            raise ConfigError(name, spec, "{low: L, high: H, basis: '...'} (scale: log optional)")
        low, high, scale = spec.get("low"), spec.get("high"), spec.get("scale", "linear")
        basis = spec.get("basis")
        if not (_number(low) and _number(high) and low < high):
            raise ConfigError(name, {"low": low, "high": high}, "numbers with low < high")
        if scale not in SCALES:
            raise ConfigError(f"{name}.scale", scale, "one of " + ", ".join(SCALES))
        if scale == "log" and low <= 0:
            raise ConfigError(f"{name}.low", low, "a number > 0 on a log scale")
        if not isinstance(basis, str) or not basis.strip():
            raise ConfigError(f"{name}.basis", basis, "a citation, or 'assumption: <reasoning>'")
        unknown = set(spec) - {"low", "high", "scale", "basis"}
        if unknown:
            raise ConfigError(name, sorted(unknown), "only low, high, scale and basis")
        ranges[str(key)] = Range(str(key), float(low), float(high), str(scale), basis.strip())
    return Priors(path=path, scope=tuple(scope), not_assumed=dict(not_assumed), ranges=ranges)


@functools.lru_cache(maxsize=8)
def _cached(path: str, mtime: float) -> Priors:
    return _parse(Path(path))


def load_priors(name: str = DEFAULT_PRIORS) -> Priors:
    """The prior ranges ``name`` (see ``priors_path``), checked; ``ConfigError`` when malformed."""
    path = priors_path(name)
    return _cached(str(path), path.stat().st_mtime)


# ---------------------------------------------------------------------------------------------
# Which numbers are illustrative

def _leaves(node: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        out = []
        for k, v in node.items():
            out += _leaves(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [(prefix, node)]


def is_assumed(priors: Priors, key: str) -> bool:
    """Whether ``key`` is in scope and no ``not_assumed`` pattern names it."""
    in_scope = any(key == s or key.startswith(s + ".") for s in priors.scope)
    return in_scope and not any(fnmatch.fnmatchcase(key, p) for p in priors.not_assumed)


def illustrative(cfg: DictConfig | dict, priors: Priors) -> dict[str, float]:
    """The illustrative numbers of a composed config: ``{key: value}`` by the rule above."""
    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    return {k: v for k, v in _leaves(plain, "") if _number(v) and is_assumed(priors, k)}


def reference_configs() -> dict[str, DictConfig]:
    """The configs whose numbers the ranges must cover: the default, and every policy option
    (a policy may add parameters of its own)."""
    from hydra import compose

    from . import config as config_mod
    from .compose import _hydra_context, group_options

    config_mod.register_schema()
    choices = {"default": [], **{f"policy={o}": [f"policy={o}"] for o in group_options("policy")}}
    with _hydra_context():
        return {name: compose(config_name="config", overrides=o) for name, o in choices.items()}


@dataclass
class Coverage:
    missing: dict[str, list[str]]      # illustrative key -> configs where it has no range
    unknown: list[str]                 # ranges naming a key no reference config has
    not_illustrative: list[str]        # ranges naming a key the rule does not call illustrative
    outside: dict[str, list[str]]      # key -> configs whose value lies outside its range


def coverage(priors: Priors, configs: dict[str, DictConfig] | None = None) -> Coverage:
    """What the ranges miss, by the rule, over ``configs`` (default ``reference_configs()``)."""
    configs = reference_configs() if configs is None else configs
    missing: dict[str, list[str]] = {}
    outside: dict[str, list[str]] = {}
    seen: set[str] = set()
    for name, cfg in configs.items():
        for key, value in illustrative(cfg, priors).items():
            seen.add(key)
            r = priors.ranges.get(key)
            if r is None:
                missing.setdefault(key, []).append(name)
            elif not r.low <= value <= r.high:
                outside.setdefault(key, []).append(f"{name}: {value:g}")
    all_keys: set[str] = set()
    for cfg in configs.values():
        all_keys |= {k for k, _ in _leaves(OmegaConf.to_container(cfg, resolve=True), "")}
    unknown = [k for k in priors.ranges if k not in all_keys]
    not_illustrative = [k for k in priors.ranges if k in all_keys and k not in seen]
    return Coverage(missing, unknown, not_illustrative, outside)


# ---------------------------------------------------------------------------------------------
# Draws

def _whole(v: Any, name: str, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(name, v, f"a whole number >= {low}")
    return v


@functools.lru_cache(maxsize=16)
def _unit_sample(d: int, draws: int, seed: int) -> np.ndarray:
    import inspect

    from scipy.stats import qmc

    # A Generator gives the same design under both names of the argument (scipy >= 1.15: rng).
    name = "rng" if "rng" in inspect.signature(qmc.LatinHypercube).parameters else "seed"
    return qmc.LatinHypercube(d=d, **{name: np.random.default_rng(seed)}).random(draws)


def sample(priors: Priors, draws: int, seed: int = 0) -> np.ndarray:
    """The design: ``draws`` rows, one column per range (in the file's order), a Latin hypercube
    on each range's scale. Deterministic in (ranges, draws, seed)."""
    u = _unit_sample(len(priors.ranges), draws, seed)
    out = np.empty_like(u)
    for j, r in enumerate(priors.ranges.values()):
        out[:, j] = [r.value(x) for x in u[:, j]]
    return out


def settings(cfg: DictConfig) -> dict[str, Any] | None:
    """``study.uncertainty`` checked: None when it draws nothing (draws = 0)."""
    node = OmegaConf.select(cfg, KEY, default=None)
    if node is None:
        return None
    draws = _whole(node.get("draws", 0), f"{KEY}.draws", 0)
    if draws == 0:
        return None
    draw = node.get("draw", 0)
    if isinstance(draw, bool) or not isinstance(draw, int) or not 0 <= draw < draws:
        raise ConfigError(f"{KEY}.draw", draw, f"a whole number from 0 to {draws - 1} (the "
                          f"replicates of {KEY}.draws={draws}); crmsim run -m sweeps them")
    seed = _whole(node.get("seed", 0), f"{KEY}.seed", 0)
    fixed = node.get("fixed") or []
    if not all(isinstance(k, str) for k in fixed):
        raise ConfigError(f"{KEY}.fixed", list(fixed), "a list of config keys held at their value")
    return {"draws": draws, "draw": draw, "seed": seed, "fixed": set(fixed),
            "priors": load_priors(node.get("priors", DEFAULT_PRIORS))}


def draw_values(priors: Priors, draws: int, seed: int, draw: int) -> dict[str, float]:
    """Row ``draw`` of the design as ``{key: value}``."""
    row = sample(priors, draws, seed)[draw]
    return dict(zip(priors.ranges, (float(v) for v in row), strict=True))


_ABSENT = object()


def apply_draw(cfg: DictConfig) -> dict[str, float]:
    """Set the parameters of replicate ``study.uncertainty.draw`` in ``cfg``; return what was set.

    A parameter whose value is a whole number (a count, a number of days) is rounded; one in
    ``study.uncertainty.fixed`` keeps its value (the draw is the same for the others). A range
    whose key this config lacks is skipped (a parameter of another policy); a range naming a
    key outside ``policy`` that the config lacks is an error.
    """
    s = settings(cfg)
    if s is None:
        return {}
    values = draw_values(s["priors"], s["draws"], s["seed"], s["draw"])
    before = _current(cfg, values)
    sections: dict[str, DictConfig] = {}
    applied = {}
    for key, value in values.items():
        if key in s["fixed"]:
            continue
        current = before[key]
        if current is _ABSENT:
            if key.startswith("policy."):
                continue
            raise ConfigError(f"{KEY}.priors", f"{s['priors'].path}: {key}",
                              "ranges of existing config keys", f"{key} is not a key of this config.")
        v = int(round(value)) if isinstance(current, int) and not isinstance(current, bool) else value
        # Set where it is, as OmegaConf.update(cfg, key, v, merge=False) sets it (~2x faster).
        path, _, leaf = key.rpartition(".")
        if path not in sections:
            sections[path] = OmegaConf.select(cfg, path) if path else cfg
        sections[path][leaf] = v
        applied[key] = v
    return applied


def _current(cfg: DictConfig, keys) -> dict[str, Any]:
    """Each key's value in ``cfg``, resolved (``_ABSENT`` for no such key or a missing value, as
    ``OmegaConf.select`` gives them): from one resolved container, or key by key for a config
    that does not resolve."""
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException:
        return {k: OmegaConf.select(cfg, k, default=_ABSENT, throw_on_missing=False) for k in keys}
    return {k: _lookup(resolved, k) for k in keys}


def _lookup(plain: dict, key: str) -> Any:
    """The value at the dotted ``key`` of a resolved config, or ``_ABSENT`` (no such key, or a
    missing value: what ``OmegaConf.select`` gives them)."""
    node: Any = plain
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _ABSENT
        node = node[part]
    return _ABSENT if node == "???" else node


def held(priors: Priors, keys: list[str]) -> list[str]:
    """The ranged keys among ``keys`` (what a sweep sets itself, so it is not drawn)."""
    return [k for k in dict.fromkeys(keys) if k in priors.ranges]


def drawn(cfg: DictConfig) -> dict[str, float]:
    """The drawn parameters of a prepared config, ``{key: value}`` ({} when nothing is drawn)."""
    s = settings(cfg)
    if s is None:
        return {}
    return {k: v for k, v in _current(cfg, s["priors"].ranges).items() if v is not _ABSENT}
