"""Result: what a simulation returns, and how it is written to disk without ever half-writing."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf._utils import get_omega_conf_dumper

from . import layout
from ._version import __version__
from .config import seedless

# Config keys that say how a run is filed and read, not what is simulated.
NOT_SIMULATED = ("study",)


def config_hash(cfg: DictConfig | dict) -> str:
    """A short stable fingerprint of what a config simulates (same simulation, same hash).

    The ``study`` node (where a run is filed, how a report reads it) is left out, so renaming
    a study or changing its baseline does not make a finished run look different.
    """
    plain = (OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
             if isinstance(cfg, DictConfig) else dict(cfg))
    for key in NOT_SIMULATED:
        plain.pop(key, None)
    return hashlib.sha256(yaml_text(plain, sort_keys=True).encode()).hexdigest()[:16]


def _dumper() -> type:
    """OmegaConf's YAML dumper (it quotes strings that would read back as numbers or booleans),
    on libyaml's C emitter when PyYAML has it: the same text, ~3x faster
    (tests/test_sweep_launcher.py compares them)."""
    if not getattr(yaml, "__with_libyaml__", False):
        return get_omega_conf_dumper()

    class Dumper(yaml.CDumper):
        pass

    Dumper.add_representer(str, get_omega_conf_dumper().str_representer)
    return Dumper


_DUMPER = _dumper()


def _dump(plain: dict, sort_keys: bool) -> str:
    return yaml.dump(plain, default_flow_style=False, allow_unicode=True, sort_keys=sort_keys,
                     Dumper=_DUMPER)


# The text of configs that differ only by their seed (a sweep's replicates), split around the
# top-level seed line: (text before it, text after it), by the rest of the config.
_by_seedless: collections.OrderedDict[tuple[str, bool], tuple[str, str] | None] = \
    collections.OrderedDict()


def yaml_text(plain: dict, sort_keys: bool = False) -> str:
    """What ``OmegaConf.to_yaml`` writes for the config ``plain`` (a plain, resolved container).

    A config that differs from one written before only by its whole-number ``seed`` reuses that
    text with its own seed line (tests/test_sweep_launcher.py checks it equals a fresh dump)."""
    rest = seedless(plain)
    if rest is None:
        return _dump(plain, sort_keys)
    key, seed = (rest[0], sort_keys), rest[1]
    if key in _by_seedless:
        parts = _by_seedless[key]
        return _dump(plain, sort_keys) if parts is None else f"{parts[0]}seed: {seed}\n{parts[1]}"
    text = _dump(plain, sort_keys)
    found = list(re.finditer(rf"^seed: {seed}\n", text, flags=re.MULTILINE))
    _by_seedless[key] = (text[:found[0].start()], text[found[0].end():]) if len(found) == 1 else None
    while len(_by_seedless) > 64:
        _by_seedless.popitem(last=False)
    return text


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="microseconds")


def _summary(doc: dict) -> dict:
    """A summary as strict JSON: a KPI that is not a finite number is written as null and named
    under ``not_finite`` (JSON has no NaN or infinity)."""
    clean, where = layout.finite(doc)
    if where:
        clean["not_finite"] = where
    return clean


@dataclass
class Result:
    timeseries: pd.DataFrame
    summary: dict[str, float]
    customers: pd.DataFrame | None
    resolved: dict[str, Any]                # the run's config, resolved: what config.yaml holds
    events: pd.DataFrame | None = None
    levers: pd.DataFrame | None = None      # one row per lever (crmsim.levers.COLUMNS)
    meta: dict[str, Any] = field(default_factory=dict)
    _config: DictConfig | None = field(default=None, repr=False, compare=False)

    @property
    def config(self) -> DictConfig:
        """The run's config (resolved), as an OmegaConf config: made when first read, as a
        sweep's jobs never need it."""
        if self._config is None:
            self._config = OmegaConf.create(self.resolved)
        return self._config

    def save(self, directory: str | os.PathLike, replace: bool = False) -> Path:
        """Write the run into ``directory``, which must not exist yet (or be empty).

        Everything is written into a hidden temporary sibling first and renamed into place in
        one step, so a reader sees either the whole run or nothing; an existing run is never
        overwritten unless ``replace`` is given (see ``crmsim.layout.write_dir``). A failure to
        write raises ``crmsim.layout.SaveError`` naming the directory and the reason.
        """

        def write(tmp: Path) -> None:
            layout.write_parquet(self.timeseries, tmp / layout.TIMESERIES)
            if self.customers is not None:
                layout.write_parquet(self.customers, tmp / layout.CUSTOMERS)
            if self.events is not None:
                layout.write_parquet(self.events, tmp / layout.EVENTS)
            if self.levers is not None:
                layout.write_parquet(self.levers, tmp / layout.LEVERS)
            (tmp / layout.CONFIG).write_text(yaml_text(self.resolved))
            doc = {"status": layout.OK, "crmsim_version": __version__,
                   "config_hash": config_hash(self.resolved), **self.meta,
                   "saved_at": _now(), "kpis": self.summary}
            layout.dump_json(tmp / layout.SUMMARY, _summary(doc))   # last: it says "finished"

        return layout.write_dir(directory, write, replace=replace)


def save_failure(directory: str | os.PathLike, error: BaseException, trace: str,
                 config: DictConfig | None = None, meta: dict[str, Any] | None = None,
                 replace: bool = False) -> Path:
    """Write a run directory that records a failed run: ``summary.json`` with status ``failed``,
    the error and its traceback, and the config it was given (when there was one)."""

    def write(tmp: Path) -> None:
        doc: dict[str, Any] = {"status": layout.FAILED, "crmsim_version": __version__}
        if config is not None:
            try:
                (tmp / layout.CONFIG).write_text(OmegaConf.to_yaml(config, resolve=True))
                doc["config_hash"] = config_hash(config)
            except Exception:  # a config that cannot even be resolved is part of the failure
                (tmp / layout.CONFIG).write_text(OmegaConf.to_yaml(config, resolve=False))
        doc.update(meta or {})
        doc.update(error=f"{type(error).__name__}: {error}", traceback=trace, saved_at=_now(),
                   kpis={})
        layout.dump_json(tmp / layout.SUMMARY, _summary(doc))

    return layout.write_dir(directory, write, replace=replace)
