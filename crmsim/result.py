"""Result: what a simulation returns, and how it is written to disk without ever half-writing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from . import __version__


def config_hash(cfg: DictConfig) -> str:
    """A short stable fingerprint of a resolved config (same config, same hash)."""
    text = OmegaConf.to_yaml(cfg, resolve=True, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Result:
    timeseries: pd.DataFrame
    summary: dict[str, float]
    customers: pd.DataFrame | None
    config: DictConfig
    events: pd.DataFrame | None = None
    meta: dict[str, str] = field(default_factory=dict)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the run into ``directory``, which must not exist yet.

        Everything is written into a hidden temporary sibling first and renamed into place in
        one step, so a reader sees either the whole run or nothing; an existing directory is
        never overwritten.
        """
        target = Path(directory)
        if target.exists():
            raise FileExistsError(f"{target} already exists; crmsim never overwrites a run")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".incomplete",
                                    dir=target.parent))
        try:
            self.timeseries.to_parquet(tmp / "timeseries.parquet", index=False)
            if self.customers is not None:
                self.customers.to_parquet(tmp / "customers.parquet", index=False)
            if self.events is not None:
                self.events.to_parquet(tmp / "events.parquet", index=False)
            (tmp / "config.yaml").write_text(OmegaConf.to_yaml(self.config, resolve=True))
            doc = {"status": "ok", "crmsim_version": __version__,
                   "config_hash": config_hash(self.config), **self.meta,
                   "kpis": self.summary}
            (tmp / "summary.json").write_text(json.dumps(doc, indent=2) + "\n")
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target
