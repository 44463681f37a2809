"""The sweepers' configs, registered in Hydra's ConfigStore as ``hydra/sweeper`` options."""

# No `from __future__ import annotations`, and typing's Optional / Dict / List: Hydra's plugin
# scan runs this module outside sys.modules, and OmegaConf reads the annotations as types.
# ruff: noqa: UP006, UP035, UP045
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore

# Optuna's TPE sampler by default; any optuna.samplers class can be named with _target_.
# Seeded: a search is reproducible; the same seed for every framework of a tuned comparison.
TPE = {"_target_": "optuna.samplers.TPESampler", "seed": 0, "n_startup_trials": 10}


@dataclass
class OptunaSweeperConf:
    """One study: ``params`` (Hydra's sweep syntax: ``interval(a, b)``, ``int(interval(a, b))``,
    ``tag(log, interval(a, b))``, ``choice(x, y)``, ``range(a, b)``) searched for ``n_trials``
    trials, ``n_jobs`` at a time, in ``storage`` (SQLite: rerunning continues the study)."""

    _target_: str = "hydra_plugins.crmsim_optuna_sweeper.sweepers.OptunaSweeper"
    _recursive_: bool = False          # the sampler is made by the sweeper, once per study
    sampler: Dict[str, Any] = field(default_factory=lambda: dict(TPE))
    direction: str = "maximize"        # of the job's return: study.objective (crmsim.sweep)
    # Kept next to the study's sweeps: a rerun of the same study continues it.
    storage: Optional[str] = "sqlite:///${hydra.sweep.dir}/../optuna.db"
    study_name: Optional[str] = "${study.name}"
    n_trials: int = 30
    n_jobs: int = 2                    # trials per batch, run in parallel by the launcher
    params: Optional[Dict[str, str]] = None


@dataclass
class TunedSweeperConf:
    """Tuned comparison: each policy's search space (``configs/hparams_search/<policy>.yaml``)
    searched for ``n_trials`` trials on ``train_seeds``; hand-set and tuned parameters then run
    on ``test_seeds`` (never trained on). Checked by ``crmsim.tune.settings``."""

    _target_: str = "hydra_plugins.crmsim_optuna_sweeper.sweepers.TunedSweeper"
    _recursive_: bool = False
    sampler: Dict[str, Any] = field(default_factory=lambda: dict(TPE))
    direction: str = "maximize"
    # In the sweep's own directory: --resume continues every framework's study.
    storage: Optional[str] = "sqlite:///${hydra.sweep.dir}/optuna.db"
    policies: List[str] = field(default_factory=list)     # empty: every registered policy
    n_trials: int = 20
    n_jobs: int = 2
    train_seeds: Any = None
    test_seeds: Any = None
    params: Optional[Dict[str, str]] = None                   # unused: the spaces are per policy


ConfigStore.instance().store(group="hydra/sweeper", name="crmsim_optuna", node=OptunaSweeperConf,
                             provider="crmsim")
ConfigStore.instance().store(group="hydra/sweeper", name="crmsim_tuned", node=TunedSweeperConf,
                             provider="crmsim")
