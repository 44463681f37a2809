"""The pool launcher and the planned basic sweeper (see the package's docstring).

Each job runs through Hydra's own ``run_job`` (its output directory, callbacks, ``env_set``) in
a worker process of a pool started once per sweep: on Linux the workers are forked from a server
that has imported crmsim once, so a worker starts in milliseconds. The sweep's process composes
and checks each job (``JobComposer``) and sends what makes its config (a ``JobSpec``: the
pickled composition and the job's values); the worker makes the config, runs the job and sends
back its return value.

A worker that dies (killed, out of memory) breaks the pool: the jobs it had not finished are
abandoned (they show as missing and ``--resume`` runs them), as with joblib. Ctrl-C stops the
workers; the sweep's process reports it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cloudpickle
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobRuntime,
    JobStatus,
    configure_log,
    env_override,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, flag_override, open_dict, read_write

from crmsim import processes
from crmsim.compose import JobComposer, JobSpec

# Environment the workers need whatever started the process server (crmsim.sweep sets them).
PASSED_ENV = ("CRMSIM_SWEEP_PARENT", "PYTHONWARNINGS")


class _Composers:
    """One composer per sweep config, shared by the sweeper (which checks a batch) and the
    launcher (which runs it), and the job specs the check made, handed to the launcher."""

    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.composer: JobComposer | None = None
        self.checked: dict[tuple[str, ...], JobSpec] = {}

    def get(self, hydra_context: HydraContext, config: DictConfig) -> JobComposer:
        if self.composer is None or self.config is not config:
            self.config, self.checked = config, {}
            self.composer = JobComposer(hydra_context.config_loader, config)
        return self.composer

    def check(self, hydra_context: HydraContext, config: DictConfig,
              overrides: Sequence[str]) -> None:
        self.checked[tuple(overrides)] = self.get(hydra_context, config).spec(overrides)

    def take(self, hydra_context: HydraContext, config: DictConfig,
             overrides: Sequence[str]) -> JobSpec:
        composer = self.get(hydra_context, config)
        spec = self.checked.pop(tuple(overrides), None)
        return spec if spec is not None else composer.spec(overrides)


_composers = _Composers()


class PlannedSweeper(BasicSweeper):
    """Hydra's basic sweeper; a batch is checked with the composer the launcher then uses."""

    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None) -> None:
        # Not BasicSweeper.__init__: Hydra's plugin scan executes its module again, and its
        # super(BasicSweeper, self) then names a class this one does not derive from.
        Sweeper.__init__(self)
        self.overrides = None
        self.batch_index = 0
        self.max_batch_size = max_batch_size
        self.params = params or {}
        self.hydra_context = None
        self.config = None
        self.launcher = None

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        assert self.hydra_context is not None and self.config is not None
        for overrides in batch:
            _composers.check(self.hydra_context, self.config, list(overrides))


# ---------------------------------------------------------------------------------------------
# The workers

_worker: dict[str, Any] = {}


def _init(state: bytes) -> None:
    """Set a worker up once (after ``crmsim.processes``' own set-up): Hydra's context, the
    task, the registry."""
    hydra_context, task_function, singleton_state = cloudpickle.loads(state)
    setup_globals()
    Singleton.set_state(singleton_state)
    _worker.update(context=hydra_context, task=task_function)


def _execute(spec: JobSpec) -> JobReturn:
    config = spec.config()
    hydra = config.hydra
    if hydra.output_subdir is not None or hydra.job.chdir or hydra.get("callbacks"):
        HydraConfig.instance().set_config(config)
        ret = run_job(hydra_context=_worker["context"], config=config, task_function=_worker["task"],
                      job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    else:
        ret = _run(config)
    ret.cfg = ret.hydra_cfg = None    # the sweep's process has both: keep the answer small
    return ret


def _run(config: DictConfig) -> JobReturn:
    """Hydra's ``run_job`` for crmsim's settings (no ``.hydra/`` files, no change of directory,
    no callbacks), without its copies of the config (two deep copies, ~30 ms each, and
    ``HydraConfig.set_config``'s copy of the ``hydra`` node, ~3 ms): the worker's config is its
    own, so the task gets it with the ``hydra`` node taken off, and that node itself, read-only,
    is the job's Hydra settings (``HydraConfig.get()``: output directory, overrides, job
    number), as ``set_config`` would hold a copy of it."""
    output_dir = os.path.abspath(os.path.join(str(OmegaConf.select(config, "hydra.sweep.dir")),
                                              str(OmegaConf.select(config, "hydra.sweep.subdir"))))
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = output_dir
    _hold_hydra_node(config)
    ret = JobReturn(overrides=list(config.hydra.overrides.task), working_dir=os.getcwd(),
                    task_name=JobRuntime.instance().get("name"))
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    configure_log(config.hydra.job_logging, config.hydra.verbose)
    env = dict(config.hydra.job.env_set)
    with read_write(config), open_dict(config):
        del config["hydra"]
    with env_override(env):
        try:
            ret.return_value = _worker["task"](config)
            ret.status = JobStatus.COMPLETED
        except Exception as err:
            ret.return_value = err
            ret.status = JobStatus.FAILED
    return ret


def _hold_hydra_node(config: DictConfig) -> None:
    """``HydraConfig.instance().set_config(config)`` for a config about to lose its ``hydra``
    node: the node is moved, not copied, into the holder ``set_config`` would make (the same
    flags, type and parent)."""
    node = config._get_node("hydra")
    OmegaConf.set_readonly(node, True)
    holder = OmegaConf.create({})
    with flag_override(holder, "no_deepcopy_set_nodes", True):
        holder.hydra = node
    holder.hydra._set_parent(config)
    HydraConfig.instance().cfg = holder


_pools: list[ProcessPoolExecutor] = []


def shutdown(terminate: bool = False) -> None:
    """Stop every pool this process started (``terminate``: without waiting for running jobs)."""
    while _pools:
        processes.stop(_pools.pop(), terminate)


class PoolLauncher(Launcher):
    def __init__(self, n_jobs: int = -1) -> None:
        self.n_jobs = n_jobs
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self.pool: ProcessPoolExecutor | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
            state = cloudpickle.dumps((self.hydra_context, self.task_function, Singleton.get_state()))
            self.pool = processes.start(processes.workers(self.n_jobs), setup=_init,
                                        setup_args=(state,), env=env)
            _pools.append(self.pool)
        return self.pool

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        specs = []
        for i, overrides in enumerate(job_overrides):
            spec = _composers.take(self.hydra_context, self.config, list(overrides))
            spec.job.update(id=f"{self.config.hydra.job.name}_{initial_job_idx + i}",
                            num=initial_job_idx + i)
            specs.append(spec)
        pool = self._pool()
        futures: list[Future] = [pool.submit(_execute, spec) for spec in specs]
        try:
            return [f.result() for f in futures]
        except BaseException:    # a worker died, or Ctrl-C: stop the others, say so upstream
            self.pool = None
            shutdown(terminate=True)
            raise
