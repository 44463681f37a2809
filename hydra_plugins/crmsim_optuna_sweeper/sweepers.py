"""The sweepers: Optuna's ask/tell loop around Hydra's launcher (``crmsim.tune`` does the rest).

Every trial's jobs go to the configured launcher (joblib, submitit, Ray, serial), a batch at a
time; a job returns the study's objective (``crmsim.sweep.run_job``: NaN when it failed, which
fails the trial and the search goes on).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


class _Base(Sweeper):
    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.config: DictConfig | None = None
        self.launcher = None
        self.hydra_context: HydraContext | None = None
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.job_idx = 0
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function)

    def launch(self, jobs: list[list[str]]) -> list[float]:
        """Run ``jobs`` with the launcher; their objectives in order (NaN for a failure)."""
        if not jobs:
            return []
        returns = self.launcher.launch([tuple(j) for j in jobs], initial_job_idx=self.job_idx)
        self.job_idx += len(returns)
        values = []
        for ret in returns:
            try:
                values.append(float(ret.return_value))
            except Exception as err:      # the job raised: Hydra keeps its traceback
                log.warning(f"failed job: {err}")
                values.append(math.nan)
        return values


class OptunaSweeper(_Base):
    """One Optuna study over ``params`` (and the command line's sweeps), ``n_trials`` more
    trials per run, ``n_jobs`` at a time; job ``<n>`` is trial number n of the study."""

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        from crmsim import tune

        s = self.settings
        lines = [f"{k}={v}" for k, v in (s.get("params") or {}).items()] + list(arguments)
        dists, fixed = tune.distributions(lines)
        study = optuna.create_study(study_name=s.get("study_name"), storage=s.get("storage"),
                                    sampler=tune.make_sampler(s["sampler"]),
                                    direction=s["direction"], load_if_exists=True)
        log.info(f"Study {study.study_name} in {s.get('storage')}")

        def jobs(trial) -> list[list[str]]:
            return [[*fixed, *tune.assignments(trial.params),
                     f"hydra.sweep.subdir={trial.number}"]]

        tune.search([tune.Search(study, dists, int(s["n_trials"]), jobs)], int(s["n_jobs"]),
                    self.launch)
        params, value = tune.best(study)
        if params is not None:
            OmegaConf.save(OmegaConf.create({"name": "optuna", "best_params": params,
                                             "best_value": value}),
                           Path(self.config.hydra.sweep.dir) / "optimization_results.yaml")


class TunedSweeper(_Base):
    """``experiment=compare_tuned``: every framework tuned alike, judged on held-out seeds."""

    def sweep(self, arguments: list[str]) -> None:
        from crmsim import sweep, tune

        cfg = self.config
        name = sweep.study_name(cfg, OmegaConf.to_container(cfg.hydra.runtime.choices))
        s = tune.settings(cfg.hydra.sweeper, cfg.study, name)
        tune.run_comparison(s, arguments, self.launch, Path(cfg.hydra.sweep.dir))
