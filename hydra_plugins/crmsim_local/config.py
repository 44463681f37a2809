"""The launcher's and sweeper's configs, registered in Hydra's ConfigStore."""

# No `from __future__ import annotations`, and typing's Optional / Dict: Hydra's plugin scan runs
# this module outside sys.modules, and OmegaConf reads the annotations as types.
# ruff: noqa: UP006, UP035, UP045
from dataclasses import dataclass
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class LocalLauncherConf:
    """``n_jobs`` worker processes (-1: one per core; -2: all but one, as in joblib)."""

    _target_: str = "hydra_plugins.crmsim_local.launcher.PoolLauncher"
    n_jobs: int = -1


@dataclass
class BasicSweeperConf:
    """Hydra's basic sweeper's settings: the sweep (``params``) and the batch size."""

    _target_: str = "hydra_plugins.crmsim_local.launcher.PlannedSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/launcher", name="crmsim_local", node=LocalLauncherConf,
                             provider="crmsim")
ConfigStore.instance().store(group="hydra/sweeper", name="crmsim_basic", node=BasicSweeperConf,
                             provider="crmsim")
