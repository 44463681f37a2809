"""Running a config: checked once (``checked``), then run (``run_checked``), as
``crmsim.simulate`` does for one seed and ``crmsim.replicates`` for many."""

from __future__ import annotations

import time

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from tqdm.auto import tqdm

from . import checks, metrics, validation
from . import config as config_mod
from .errors import ConfigError
from .model import CRMModel
from .result import Result
from .stacked import StackedModel


def checked(cfg: DictConfig) -> tuple[config_mod.CRMConfig, dict | None]:
    """``cfg`` (a config from ``load_config``) checked: its typed config and, for a
    ``DictConfig``, its resolved container (None otherwise); ``ConfigError`` on a bad one."""
    if not isinstance(cfg, DictConfig | dict | config_mod.CRMConfig):
        raise ConfigError("cfg", cfg if not isinstance(cfg, list | tuple) else list(cfg),
                          "a config from crmsim.load_config([...overrides]), e.g. "
                          "simulate(load_config([\"seed=3\"]))")
    resolved = None
    if isinstance(cfg, DictConfig):
        try:
            resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
        except OmegaConfBaseException:
            pass   # validate names the key that does not resolve
    return validation.validate(cfg, resolved), resolved


def run_checked(typed: config_mod.CRMConfig, resolved: dict | None = None,
                progress: bool = False) -> Result:
    """Run a typed config that ``validation`` has checked (``validate`` or ``reseeded``), as
    ``simulate`` does after its checks; ``resolved``: the config's resolved container when the
    caller has it (else it is made from ``typed``, ~30 ms)."""
    checks.check_memory(typed)
    started = time.perf_counter(), time.process_time()
    model = CRMModel(typed)
    for _ in tqdm(range(typed.sim.steps), desc="simulating", unit="step", disable=not progress,
                  leave=False):
        model.step()
    return _result(model, typed, resolved, started)


def run_stacked(configs: list[config_mod.CRMConfig], resolved: list[dict]) -> list[Result]:
    """``run_checked`` of each config (replicates of one config: ``validation.reseeded`` of
    one checked config, their ``resolved`` containers), stepped together as one array axis
    (``crmsim.stacked``; ``stackable`` says which configs can be): the same Results. Each
    run's simulation time is its share of the whole."""
    started = time.perf_counter(), time.process_time()
    model = StackedModel(configs)
    for _ in range(configs[0].sim.steps):
        model.step()
    model.finish()
    share = (time.perf_counter() - started[0]) / len(configs), \
        (time.process_time() - started[1]) / len(configs)
    results = []
    for m, typed, res in zip(model.replicates, configs, resolved, strict=True):
        results.append(_result(m, typed, res, (time.perf_counter() - share[0],
                                                time.process_time() - share[1])))
    return results


def _result(model: CRMModel, typed: config_mod.CRMConfig, resolved: dict | None,
            started: tuple[float, float]) -> Result:
    """The run's Result from its model after the last step (``started``: when the simulation
    started, wall and CPU clock)."""
    ts = model.timeseries()
    summary = metrics.summarize(ts, model.population, typed.sim.period_days)
    customers = pd.DataFrame(model.population.table()) if typed.sim.record_customers else None
    events = model.events_table() if typed.sim.record_events else None
    levers = model.levers_table()
    # The simulation's own cost (building, stepping, its tables), CPU of every thread: what a
    # sweep's overhead is measured against (benchmarks/sweeps.py).
    timing = {"simulation_wall_s": time.perf_counter() - started[0],
              "simulation_cpu_s": time.process_time() - started[1]}
    if resolved is None:
        resolved = OmegaConf.to_container(OmegaConf.structured(typed), resolve=True,
                                          enum_to_str=True)
    return Result(timeseries=ts, summary=summary, customers=customers, resolved=resolved,
                  events=events, levers=levers, meta={"timing": timing})
