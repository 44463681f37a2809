"""Result: what a simulation returns, and how it is written to disk without ever half-writing."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from . import __version__

# Config keys that say how a run is filed and read, not what is simulated.
NOT_SIMULATED = ("study",)


def config_hash(cfg: DictConfig | dict) -> str:
    """A short stable fingerprint of what a config simulates (same simulation, same hash).

    The ``study`` node (where a run is filed, how a report reads it) is left out, so renaming
    a study or changing its baseline does not make a finished run look different.
    """
    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    for key in NOT_SIMULATED:
        plain.pop(key, None)
    text = OmegaConf.to_yaml(OmegaConf.create(plain), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_summary(directory: str | os.PathLike) -> dict | None:
    """The ``summary.json`` of a run directory, or None when there is none (or it is unreadable)."""
    path = Path(directory) / "summary.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="microseconds")


def write_run_dir(target: str | os.PathLike, write: Callable[[Path], None],
                  replace: bool = False) -> Path:
    """Create run directory ``target`` with ``write(tmp)`` so it appears complete or not at all.

    Everything is written into a hidden ``.<name>.*.incomplete`` sibling and renamed into place
    in one step. An empty ``target`` (a launcher makes job directories before the job runs) is
    taken over; a non-empty one is never overwritten unless ``replace`` (a sweep rerunning a
    failed job), and then the old one is moved aside first and deleted only once the new one is
    in place.
    """
    target = Path(target)
    if target.exists() and not (target.is_dir() and not any(target.iterdir())) and not replace:
        raise FileExistsError(f"{target} already exists; crmsim never overwrites a run")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".incomplete", dir=target.parent))
    try:
        write(tmp)
        old = None
        if target.exists():
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
            else:
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".replaced",
                                            dir=target.parent))
                os.rename(target, old / "run")
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _dump(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


@dataclass
class Result:
    timeseries: pd.DataFrame
    summary: dict[str, float]
    customers: pd.DataFrame | None
    config: DictConfig
    events: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: str | os.PathLike, replace: bool = False) -> Path:
        """Write the run into ``directory``, which must not exist yet (or be empty).

        Everything is written into a hidden temporary sibling first and renamed into place in
        one step, so a reader sees either the whole run or nothing; an existing run is never
        overwritten unless ``replace`` is given (see ``write_run_dir``).
        """

        def write(tmp: Path) -> None:
            self.timeseries.to_parquet(tmp / "timeseries.parquet", index=False)
            if self.customers is not None:
                self.customers.to_parquet(tmp / "customers.parquet", index=False)
            if self.events is not None:
                self.events.to_parquet(tmp / "events.parquet", index=False)
            (tmp / "config.yaml").write_text(OmegaConf.to_yaml(self.config, resolve=True))
            doc = {"status": "ok", "crmsim_version": __version__,
                   "config_hash": config_hash(self.config), **self.meta,
                   "saved_at": _now(), "kpis": self.summary}
            _dump(tmp / "summary.json", doc)

        return write_run_dir(directory, write, replace=replace)


def save_failure(directory: str | os.PathLike, error: BaseException, trace: str,
                 config: DictConfig | None = None, meta: dict[str, Any] | None = None,
                 replace: bool = False) -> Path:
    """Write a run directory that records a failed run: ``summary.json`` with status ``failed``,
    the error and its traceback, and the config it was given (when there was one)."""

    def write(tmp: Path) -> None:
        doc: dict[str, Any] = {"status": "failed", "crmsim_version": __version__}
        if config is not None:
            try:
                (tmp / "config.yaml").write_text(OmegaConf.to_yaml(config, resolve=True))
                doc["config_hash"] = config_hash(config)
            except Exception:  # a config that cannot even be resolved is part of the failure
                (tmp / "config.yaml").write_text(OmegaConf.to_yaml(config, resolve=False))
        doc.update(meta or {})
        doc.update(error=f"{type(error).__name__}: {error}", traceback=trace, saved_at=_now(),
                   kpis={})
        _dump(tmp / "summary.json", doc)

    return write_run_dir(directory, write, replace=replace)
