"""Sweeps: ``crmsim run -m`` through Hydra's multirun, with its sweeper and launcher plugins.

Before anything runs, ``plan`` composes the sweep the way Hydra will (the primary config, the
sweeper's ``params`` and the command line), lists the jobs, checks every job's config and
picks the directories: ``results/<study>/<date-time>/<job>/``, a job being named by the values
that vary across the sweep (``policy=idic,seed=3``). A bad value stops the sweep there, with
nothing written. ``launch`` then hands the command line to a real ``@hydra.main`` app, so the
configured sweeper (basic, Optuna) and launcher (crmsim's pool, submitit, Ray) do the work; every job
runs ``run_job``, which writes the job's results and a ``summary.json`` with its parameters,
KPIs and status (``failed`` with the error when it fails, so one failure never stops the
others). Rerunning a sweep into the same directory (``--resume DIR``) skips every job whose
summary says ``ok`` for the same config (``crmsim.result.config_hash``) and reruns the rest.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.util
import json
import math
import os
import shlex
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from . import api, checks, compose, layout, metrics, processes, tune, uncertainty, validation
from . import config as config_mod
from . import overrides as ov
from .compose import JobComposer, register_plugins
from .errors import ConfigError
from .layout import MANIFEST, read_summary
from .overrides import params_of
from .processes import PARENT_ENV, owner, watch_parent
from .result import config_hash, save_failure

# Hydra's basic sweeper, and crmsim's (the default: it checks jobs without composing each twice).
BASIC_SWEEPERS = ("hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                  "hydra_plugins.crmsim_local.launcher.PlannedSweeper")
NAME_LIMIT = 200   # longest job directory name built from its values (file systems allow 255)

# Config-group choices that need a plugin from an extra: (group, option or "*") -> module, extra.
PLUGINS = {
    ("launcher", "submitit_local"): ("hydra_plugins.hydra_submitit_launcher", "cluster"),
    ("launcher", "submitit_slurm"): ("hydra_plugins.hydra_submitit_launcher", "cluster"),
    ("launcher", "ray"): ("hydra_plugins.hydra_ray_launcher", "ray"),
}
# crmsim's own Optuna sweepers (hydra_plugins.crmsim_optuna_sweeper): one study, and the
# tuned comparison of frameworks (crmsim.tune).
OPTUNA_SWEEPERS = ("OptunaSweeper", "TunedSweeper")


def check_plugins(overrides: Sequence[str]) -> None:
    """Stop early, with the install command, when a chosen launcher or search is not installed."""
    for line in overrides:
        group, _, value = line.lstrip("+~").partition("=")
        for option in (o.strip() for o in value.split(",")):
            hit = PLUGINS.get((group, option)) or (PLUGINS.get((group, "*")) if option != "null" else None)
            if hit and importlib.util.find_spec(hit[0]) is None:
                raise ConfigError(group, option, f'an installed plugin: pip install "crmsim[{hit[1]}]"')


def choice(overrides: Sequence[str], group: str) -> str | None:
    """The option chosen for config group ``group`` on the command line, if any."""
    for line in overrides:
        key, _, value = line.lstrip("+~").partition("=")
        if key == group and value not in ("", "null"):
            return value
    return None


def study_name(cfg: DictConfig, choices: dict[str, Any]) -> str:
    """Where a study's runs land: ``study.name``, else the experiment's name, else ``runs``."""
    name = cfg.study.name or choices.get("experiment") or choices.get("hparams_search") or "runs"
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ConfigError("study.name", name, "a directory name (no '/', not starting with '.')")
    return name


def check_study(cfg: DictConfig) -> None:
    study = cfg.study
    if study.objective not in metrics.SUMMARY:
        raise ConfigError("study.objective", study.objective,
                          "one of the KPIs " + ", ".join(metrics.SUMMARY))
    if not all(isinstance(k, str) for k in study.replicates):
        raise ConfigError("study.replicates", list(study.replicates), "a list of config keys")


def prepare(cfg: DictConfig, validate: bool = True, cwd: Path | None = None,
            copy: bool = True) -> DictConfig:
    """The config a job runs: a copy of ``cfg`` (``copy=False``: ``cfg`` itself, for a caller
    that owns it) with its design point applied and its file paths made absolute against ``cwd``
    (the directory crmsim was run from; default the current one), checked (``validate=False``
    leaves the schema check to ``simulate``, which makes it anyway).

    Raises ``ConfigError`` (key, value, what is allowed) on the first problem.
    """
    if copy:
        cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    else:
        OmegaConf.set_readonly(cfg, False)
        OmegaConf.set_struct(cfg, False)
    for key in ov.PATH_KEYS:
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if isinstance(value, str) and value and "${" not in value:
            OmegaConf.update(cfg, key, ov.absolute(value, cwd or Path.cwd()))
    check_study(cfg)
    if cfg.study.design:
        from .analysis import sensitivity

        if cfg.study.point is None:
            raise ConfigError("study.point", None, "a design point; run the design with crmsim run -m")
        sensitivity.apply_point(cfg)
    uncertainty.apply_draw(cfg)   # study.uncertainty.draws > 0: this replicate's assumptions
    if validate:
        validation.validate(cfg)
    return cfg


# ---------------------------------------------------------------------------------------------
# The job: what every launcher runs, in whatever process or machine it picks.

def run_job(cfg: DictConfig) -> float:
    """Run one job of a sweep into Hydra's job directory; return the study's objective KPI.

    Never raises for a failing simulation: the failure is written to the job's summary.json
    (status ``failed``, the error and its traceback) and the objective is NaN, so the sweep goes
    on and an optimiser records a failed trial. A job that cannot save at all (a full disk)
    says so in one line on stderr and is left missing, for ``--resume``.
    """
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    watch_parent()
    job_dir = Path(hc.runtime.output_dir)
    task = list(hc.overrides.task)
    meta: dict[str, Any] = {
        "params": params_of(task),
        "study": OmegaConf.to_container(cfg.study, resolve=True) if "study" in cfg else {},
        "job": {"num": hc.job.num, "dir": job_dir.name, "overrides": task},
    }
    objective = str(cfg.study.objective) if "study" in cfg else config_mod.DEFAULT_OBJECTIVE
    old = read_summary(job_dir)
    finished = bool(old and old.get("status") == layout.OK)
    prepared = None
    try:
        # A launcher hands every job a config of its own (Hydra's run_job copies it).
        prepared = prepare(cfg, validate=False, cwd=Path(hc.runtime.cwd), copy=False)
        meta["seed"] = prepared.seed
        if prepared.study.design:
            design_keys = list(prepared.study.design.bounds)
            meta["params"].update({k: OmegaConf.select(prepared, k) for k in design_keys})
        if uncertainty.settings(prepared) is not None:
            meta["drawn"] = uncertainty.drawn(prepared)
        if finished:
            if old.get("config_hash") == config_hash(prepared):
                value = (old.get("kpis") or {}).get(objective)
                return float(value) if isinstance(value, int | float) else math.nan
            raise FileExistsError(f"{job_dir} holds a finished run of another config")
        result = api.simulate(prepared)
        result.meta.update(meta)
        result.save(job_dir, replace=layout.is_run)
        _drop_interrupted(job_dir)
        return float(result.summary.get(objective, math.nan))
    except Exception as err:
        if finished:   # a finished run is never overwritten, not even by a failure record
            raise
        try:
            save_failure(job_dir, err, traceback.format_exc(),
                         config=prepared if prepared is not None else cfg, meta=meta,
                         replace=layout.is_run)
        except OSError as save_err:
            print(f"crmsim: job {job_dir.name}: {err if isinstance(err, OSError) else save_err}",
                  file=sys.stderr)
            return math.nan
        _drop_interrupted(job_dir)
        return math.nan


# ---------------------------------------------------------------------------------------------
# Workers stop with the sweep: a launcher's worker processes on this machine watch the crmsim
# process that started the sweep and exit when it is gone (``processes.watch_parent``).

# Launchers whose workers run on this machine, as children of the sweep's process.
LOCAL_LAUNCHERS = ("PoolLauncher", "JoblibLauncher", "LocalLauncher", "BasicLauncher")
PARALLEL_LAUNCHERS = ("PoolLauncher", "JoblibLauncher")   # several jobs at once, n_jobs of them


def _drop_interrupted(job_dir: Path) -> None:
    """Delete what earlier attempts at this job left when killed while saving (hidden
    ``.<job>.XXXXXXXX.incomplete`` siblings): the job now has its own record, and a report
    would otherwise list the job as incomplete forever. The name is matched exactly, so
    ``seed=1`` never takes ``seed=1.5``'s."""
    pattern = layout.incomplete_pattern(job_dir.name)
    for path in job_dir.parent.iterdir():
        if pattern.fullmatch(path.name) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Planning: everything is checked before the first job starts.

@dataclass
class Job:
    overrides: list[str]
    dir: str                  # directory name below the sweep directory
    skip: bool = False        # finished before with the same config (resume)


@dataclass
class Plan:
    overrides: list[str]              # task and hydra overrides, as Hydra gets them
    hydra_overrides: list[str]        # crmsim's own settings for this sweep
    sweep_dir: Path
    study: str
    sweeper: str
    launcher: str
    swept: list[str]
    replicates: list[str]
    jobs: list[Job] | None            # None: the sweeper decides as it goes (Optuna)
    expected: int | None
    resumed: bool = False
    named: bool = False               # the user named the sweep directory (hydra.sweep.dir)
    created: str = field(default_factory=lambda: dt.datetime.now().isoformat(timespec="seconds"))

    @property
    def to_run(self) -> int | None:
        return None if self.jobs is None else sum(not j.skip for j in self.jobs)

    def manifest(self) -> dict[str, Any]:
        return {
            "command": shlex.join(["crmsim", "run", "-m", *self.overrides]),
            "overrides": self.overrides, "study": self.study, "sweeper": self.sweeper,
            "launcher": self.launcher, "swept": self.swept, "replicates": self.replicates,
            "expected": self.expected, "created": self.created,
            "jobs": None if self.jobs is None else [{"dir": j.dir, "overrides": j.overrides}
                                                    for j in self.jobs],
        }


def _compose_primary(overrides: list[str]) -> DictConfig:
    """The sweep's primary config, composed the way Hydra composes it for the sweeper."""
    from hydra.types import RunMode

    with api._hydra_context():
        loader = GlobalHydra.instance().config_loader()
        try:
            return loader.load_configuration(config_name="config", overrides=overrides,
                                             run_mode=RunMode.MULTIRUN)
        except (HydraException, OmegaConfBaseException, ValueError) as err:
            raise api._composition_error(err, [o for o in overrides if not ov.is_hydra(o)]) from None


def _expand_basic(primary: DictConfig, task: list[str]) -> tuple[list[list[str]], list[str]]:
    """The jobs of Hydra's basic sweeper (its own expansion) and the keys it sweeps."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    params = primary.hydra.sweeper.get("params") or {}
    lines = [f"{k}={v}" for k, v in params.items()] + task
    try:
        with api._hydra_context():   # glob(*) lists a config group's options: it needs the loader
            parsed = ov.parser(GlobalHydra.instance().config_loader()).parse_overrides(lines)
            jobs = BasicSweeper.split_arguments(parsed, None)[0]
    except HydraException as err:
        raise ConfigError("overrides", lines, "key=value or a sweep such as key=a,b or "
                          "key=range(0,10)", str(err).splitlines()[0]) from None
    swept = [o.key_or_group for o in parsed[:len(params)]] + [o.key_or_group for o in parsed[len(params):]
                                                              if o.is_sweep_override()]
    return jobs, list(dict.fromkeys(swept))


def _job_dirs(jobs: list[list[str]]) -> tuple[list[str], list[str], bool]:
    """Directory names: the overrides that vary across the sweep (Hydra's override_dirname
    with the constant keys excluded), or job numbers when nothing varies or a name would not
    make a safe directory."""
    parsed = [ov.parser().parse_overrides(job) for job in jobs]
    values: dict[str, set[tuple[str, ...]]] = {}
    for job in parsed:
        lines: dict[str, tuple[str, ...]] = {}
        for o in job:   # a key may come twice: ~key then +key=...
            lines[o.key_or_group] = (*lines.get(o.key_or_group, ()), o.input_line)
        for key, line in lines.items():
            values.setdefault(key, set()).add(line)
    varying = [k for k, v in values.items() if len(v) > 1]
    names = [",".join(sorted(o.input_line for o in job if o.key_or_group in varying)) for job in parsed]
    safe = (varying and len(set(names)) == len(names)
            and all(n and "/" not in n and not n.startswith(".") and len(n) <= NAME_LIMIT
                    for n in names))
    if not safe:
        return [str(i) for i in range(len(jobs))], [], False
    return names, [k for k in values if k not in varying], True


def _is_group(key: str) -> bool:
    """A config group (``policy=idic`` picks a file) rather than a value."""
    return key.startswith("hydra") or (api.config_dir() / key).is_dir()


def _check_jobs(jobs: list[list[str]], replicates: list[str], existing: list[bool],
                hydra_overrides: list[str]) -> tuple[list[str | None], int]:
    """Compose and check every job's config; return the config hash of each job in ``existing``
    (a finished run is in its directory: resume compares hashes), None for the others, and the
    memory the largest job needs (``crmsim.checks.memory_needed``).

    Composing is the slow part, so jobs that pick the same config-group options share one
    composition and their plain values are set on a copy, as Hydra sets them after composing.
    The composition is the one the launcher's ``JobComposer`` makes with the sweep's Hydra
    overrides (``hydra_overrides``, as Hydra will hold them), kept for it in this process.
    Every combination of values is checked once; a replicate value (the seed) once for the
    whole sweep, as its allowed range does not depend on the rest (each job checks its whole
    config again before it runs). A job that differs from one checked before only by a whole
    seed, when no value of the config refers to the seed, is checked on that job's typed config
    with its seed set (``validation.reseeded``, ~1 ms instead of ~30 ms): a sweep of many
    replicates plans in a fraction of a second.
    """
    groups: dict[tuple[str, ...], list[tuple[int, list]]] = {}
    for i, job in enumerate(jobs):
        parsed = ov.parser().parse_overrides(job)
        values = [o for o in parsed if not _is_group(o.key_or_group) and not o.is_add()
                  and not o.is_delete() and not o.is_force_add()]
        composed = tuple(o.input_line for o in parsed if o not in values)
        groups.setdefault(composed, []).append((i, values))
    hashes: list[str | None] = [None] * len(jobs)
    peak = 0
    seen_replicates: set[tuple[str, ...]] = set()
    bases = {}
    with api._hydra_context():
        composer = JobComposer(GlobalHydra.instance().config_loader(), None, hydra_overrides)
        for composed, members in groups.items():
            # With the first job's values: a group option may need one (network=edgelist, a path).
            lines = [*composed, *(o.input_line for o in members[0][1])]
            bases[composed] = compose.checked_composition(
                lines, functools.partial(composer.task_config, lines))
    for composed, members in groups.items():
        base = bases[composed]
        seen: dict[tuple[str, ...], config_mod.CRMConfig] = {}   # rest -> a typed config of it
        seed_free = not _refers_to(base, "seed")
        for i, values in members:
            rest = tuple(o.input_line for o in values if o.key_or_group not in replicates)
            reps = tuple(o.input_line for o in values if o.key_or_group in replicates)
            rep_values = {o.key_or_group: o.value() for o in values if o.key_or_group in replicates}
            if rest in seen and not existing[i]:
                if reps in seen_replicates:
                    continue
                if seed_free and list(rep_values) == ["seed"] and type(rep_values["seed"]) is int:
                    validation.reseeded(seen[rest], rep_values["seed"])
                    seen_replicates.add(reps)
                    continue
            cfg = base.copy()
            for o in values:
                OmegaConf.update(cfg, o.key_or_group, o.value(), merge=True)
            prepared = prepare(cfg, validate=False)
            typed = validation.validate(prepared)
            api.check_inputs(typed)
            peak = max(peak, checks.memory_needed(typed))
            seen[rest] = typed
            seen_replicates.add(reps)
            if existing[i]:
                hashes[i] = config_hash(prepared)
    return hashes, peak


def _refers_to(cfg: DictConfig, key: str) -> bool:
    """Whether any value of ``cfg`` is an interpolation that may use ``key`` (conservatively:
    any ``${...}`` whose text contains the key's name)."""
    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return isinstance(node, str) and "${" in node and key in node

    return walk(OmegaConf.to_container(cfg, resolve=False))


def _check_parallel_memory(primary: DictConfig, launcher: str, peak: int, to_run: int) -> None:
    """Jobs that each fit in memory may not fit side by side: refuse a parallel launcher's
    ``n_jobs`` that would run more of them at once than the available memory holds."""
    if launcher not in PARALLEL_LAUNCHERS:
        return
    n_jobs = primary.hydra.launcher.get("n_jobs", 1)
    at_once = min(to_run, processes.workers(n_jobs))
    have = checks.memory_available()
    if have is None or at_once < 2 or peak * at_once <= have:
        return
    fit = max(1, have // max(peak, 1))
    raise ConfigError("hydra.launcher.n_jobs", n_jobs,
                      f"at most {fit} jobs at once, as many as fit side by side in the memory "
                      f"this machine has available now ({have / 1e9:,.1f} GB)",
                      f"Each job needs about {peak / 1e9:,.1f} GB; run with "
                      f"hydra.launcher.n_jobs={fit} (or launcher=serial).")


def _launcher_only(line: str) -> bool:
    """An override that only says where jobs run, not what they simulate."""
    key = ov.key_of(line)
    return key in ("launcher", "hydra/launcher") or key.startswith("hydra.launcher.")


def _resume_overrides(manifest: dict[str, Any], given: list[str], resume: Path) -> list[str]:
    """The sweep's own overrides, with the launcher-only overrides given now in place of its
    own; anything else given is refused (it would change what the sweep's jobs simulate)."""
    other = [o for o in given if not _launcher_only(o)]
    own = [str(o) for o in manifest.get("overrides") or []]
    if other:
        raise ConfigError("--resume", " ".join(other),
                          "no overrides except where the jobs run (launcher=..., "
                          "hydra.launcher.*=...)",
                          f"A resumed sweep finishes exactly its own jobs; {resume} was planned "
                          f"with: {shlex.join(own) or '(no overrides)'}. For other settings start "
                          f"a new sweep.")
    launch = [o for o in given if _launcher_only(o)]
    keep = [o for o in own if not (launch and _launcher_only(o))
            and ov.key_of(o) != "hydra.sweep.dir"]
    return keep + launch


def _sweep_dir_given(overrides: list[str]) -> Path | None:
    """``hydra.sweep.dir=...`` as a path (quotes removed), made absolute; checked."""
    line = next((o for o in reversed(overrides) if ov.key_of(o) == "hydra.sweep.dir"), None)
    if line is None:
        return None
    raw = line.partition("=")[2]
    ov.check_literal_path("hydra.sweep.dir", raw)
    try:
        value = ov.parser().parse_override(line.lstrip("+~")).value()
    except Exception:
        value = raw
    if not isinstance(value, str) or not value:
        raise ConfigError("hydra.sweep.dir", raw, "one directory path")
    path = Path(value).expanduser().absolute()
    check_sweep_dir(path, "hydra.sweep.dir")
    if path.is_dir() and any(path.iterdir()) and not (path / MANIFEST).is_file():
        raise ConfigError("hydra.sweep.dir", str(path), "a new or empty directory, or a sweep's "
                          f"own (it holds {MANIFEST})", "It holds files crmsim did not write; "
                          "a sweep never writes into them.")
    return path


def check_sweep_dir(path: Path, key: str) -> None:
    """A sweep directory must be (or become) a directory crmsim can write into."""
    probe = layout.unwritable(path)
    if probe is not None:
        raise ConfigError(key, str(path), "a directory crmsim can create and write to",
                          f"{probe} is {'a file' if probe.is_file() else 'not writable'}.")


def plan(overrides: Sequence[str], root: Path, resume: Path | None = None) -> Plan:
    """Check a sweep and decide where everything goes; raises ``ConfigError``, writes nothing.

    File paths are made absolute against the current directory first (jobs may run
    elsewhere). ``resume``: the sweep in that directory, with exactly its own overrides (only
    launcher overrides may be given, see ``_resume_overrides``) and exactly its own jobs.
    """
    config_mod.register_schema()
    compose.forget_compositions()
    overrides = ov.resolve_paths(list(overrides))
    manifest = None
    if resume is not None:
        resume = resume.absolute()
        manifest = _read_manifest(resume)
        overrides = _resume_overrides(manifest, overrides, resume)
    check_plugins(overrides)
    user_dir = None if resume is not None else _sweep_dir_given(overrides)
    overrides = [o for o in overrides if ov.key_of(o) != "hydra.sweep.dir"]
    primary = _compose_primary(overrides)
    check_study(primary)
    choices = OmegaConf.to_container(primary.hydra.runtime.choices)
    study = study_name(primary, choices)
    task = [o for o in overrides if not ov.is_hydra(o)]
    replicates = [str(r) for r in primary.study.replicates]
    sweeper = str(primary.hydra.sweeper._target_)
    launcher = str(primary.hydra.launcher._target_).rsplit(".", 1)[-1]

    if resume is not None:
        sweep_dir = resume
    elif user_dir:
        sweep_dir = user_dir
    else:
        sweep_dir = (root / study / layout.stamp()).absolute()
    hydra_overrides = ["hydra.job.name=crmsim", sweep_dir_override(sweep_dir)]
    if sweeper == BASIC_SWEEPERS[0]:
        # Hydra's basic sweeper as crmsim's: it checks each job with the launcher's composer
        # instead of composing every job a second time (an experiment's own sweeper stays).
        hydra_overrides.append("hydra/sweeper=crmsim_basic")
    if primary.study.design and sweeper in BASIC_SWEEPERS:
        from .analysis import sensitivity

        if not any(o.lstrip("+~").startswith("study.point=") for o in task):
            n = sensitivity.size(OmegaConf.to_container(primary.study.design))
            task.append(f"study.point=range(0,{n})")
            overrides.append(task[-1])
    draws = uncertainty.settings(primary)
    if draws is not None:
        # What the sweep sets itself (its axes, the command line) is held, not drawn.
        swept = [str(k).lstrip("+~") for k in (primary.hydra.sweeper.get("params") or {})]
        keep = uncertainty.held(draws["priors"], [*swept, *map(ov.key_of, task)])
        if keep and not any(ov.key_of(o) == "study.uncertainty.fixed" for o in task):
            task.append("study.uncertainty.fixed=[" + ",".join(sorted(draws["fixed"] | set(keep))) + "]")
            overrides.append(task[-1])
        if sweeper in BASIC_SWEEPERS and not any(ov.key_of(o) == "study.uncertainty.draw" for o in task):
            task.append(f"study.uncertainty.draw=range(0,{draws['draws']})")
            overrides.append(task[-1])

    if sweeper in BASIC_SWEEPERS:
        job_lines, swept = _expand_basic(primary, task)
        for group in ("experiment", "hparams_search"):
            if group in swept:   # its own sweep settings would apply to none of the jobs
                raise ConfigError(group, choice(task, group), "one option per sweep: each is a "
                                  f"sweep of its own (crmsim run -m {group}=NAME); run them one "
                                  "after another (crmsim run --help lists them)")
        if not job_lines:
            raise ConfigError("overrides", " ".join(task), "a sweep of at least one job",
                              "A swept value has no values (e.g. range(0,0)); nothing was run.")
        names, constant, by_values = _job_dirs(job_lines)
        if manifest is not None and manifest.get("jobs") is not None and \
                [j.get("dir") for j in manifest["jobs"]] != names:
            raise ConfigError("--resume", str(sweep_dir), "a sweep directory whose plan this "
                              "version of crmsim makes the same way",
                              f"Its {MANIFEST} lists other jobs than its overrides give now; "
                              "nothing was run.")
        if user_dir is not None and (user_dir / MANIFEST).is_file():
            # Another sweep's directory: its plan (and the jobs it still misses) stays its own.
            own = _read_manifest(user_dir, "hydra.sweep.dir")
            if [j.get("dir") for j in own.get("jobs") or []] != names:
                raise ConfigError("hydra.sweep.dir", str(user_dir), "a new directory, or a "
                                  "sweep's own with the same jobs",
                                  f"It holds another sweep ({MANIFEST}); finish that one with "
                                  f"crmsim run -m --resume {user_dir}, or sweep into a new "
                                  "directory.")
        if by_values:
            keys = ",".join(f"'{k}'" for k in constant)
            hydra_overrides += ["hydra.sweep.subdir=${hydra.job.override_dirname}",
                                f"hydra.job.config.override_dirname.exclude_keys=[{keys}]"]
        else:
            hydra_overrides.append("hydra.sweep.subdir=${hydra.job.num}")
        olds = [read_summary(sweep_dir / name) for name in names]
        finished = [bool(o and o.get("status") == "ok") for o in olds]
        # The Hydra overrides Hydra will hold: the command line's, crmsim's (see launch), and
        # the mode --multirun adds when no config sets one (if they differ, the launcher
        # composes each job's config itself).
        hashes, peak = _check_jobs(job_lines, replicates, finished,
                                   [o for o in overrides if ov.is_hydra(o)] + hydra_overrides
                                   + ["hydra.mode=MULTIRUN"])
        _check_parallel_memory(primary, launcher, peak, sum(not d for d in hashes))
        jobs = []
        for lines, name, old, digest in zip(job_lines, names, olds, hashes, strict=True):
            if digest and old.get("config_hash") != digest:
                # A finished run is never overwritten, least of all by a different config.
                raise ConfigError("--resume" if resume else "hydra.sweep.dir", str(sweep_dir),
                                  "a sweep directory whose finished jobs have the same configs",
                                  f"{name} holds a finished run of another config; resume with "
                                  f"the sweep's own overrides (crmsim run -m --resume DIR) or "
                                  f"start a new sweep")
            jobs.append(Job(overrides=list(lines), dir=name, skip=digest is not None))
        expected: int | None = len(jobs)
    else:
        # An optimiser picks each job's values as it goes: check the fixed part now, each trial
        # is checked by its job (a bad one becomes a failed trial).
        prepare(api.load_config([o for o in task if not ov.parser().parse_override(o).is_sweep_override()]))
        swept = [str(k).lstrip("+~") for k in (primary.hydra.sweeper.get("params") or {})]
        jobs = None
        hydra_overrides.append("hydra.sweep.subdir=${hydra.job.num}")
        expected = primary.hydra.sweeper.get("n_trials")
        kind = sweeper.rsplit(".", 1)[-1]
        if kind == "TunedSweeper":
            settings = tune.check(primary, task, study)
            swept = ["policy", *dict.fromkeys(k for sp in settings.spaces.values() for k in sp)]
            expected = tune.expected_jobs(settings)
        elif kind == "OptunaSweeper":      # the search space's syntax, before anything runs
            params = primary.hydra.sweeper.get("params") or {}
            if not tune.distributions([f"{k}={v}" for k, v in params.items()] + task)[0]:
                raise ConfigError("hydra.sweeper.params", dict(params), "at least one parameter "
                                  "to search, e.g. key=interval(0.0, 0.5)",
                                  "This search space is empty: nothing to tune.")
            tune.make_sampler(primary.hydra.sweeper.sampler)
    p = Plan(overrides=overrides, hydra_overrides=hydra_overrides, sweep_dir=sweep_dir,
             study=study, sweeper="basic" if sweeper in BASIC_SWEEPERS else sweeper.rsplit(".", 1)[-1],
             launcher=launcher, swept=swept, replicates=replicates, jobs=jobs,
             expected=expected, resumed=resume is not None, named=user_dir is not None)
    if manifest is not None and manifest.get("created"):
        p.created = str(manifest["created"])
    return p


def sweep_dir_override(sweep_dir: Path) -> str:
    # Quoted: a path may hold characters Hydra's override grammar reads (commas, spaces).
    quoted = str(sweep_dir).replace("'", "\\'")
    return f"hydra.sweep.dir='{quoted}'"


def _read_manifest(directory: Path, key: str = "--resume") -> dict[str, Any]:
    ov.check_literal_path(key, str(directory))
    doc, why = layout.read_json(directory / MANIFEST)
    if why is None and not (isinstance(doc, dict) and isinstance(doc.get("overrides"), list)):
        why = "not a sweep's plan"
    if why:
        raise ConfigError(key, str(directory),
                          f"a sweep directory written by crmsim run -m (it holds {MANIFEST})",
                          f"Its {MANIFEST} is {why}.")
    return doc


def write_manifest(p: Plan) -> None:
    """Write the sweep's plan into its directory. A new sweep gets a directory of its own
    (``crmsim.layout.reserve``: two sweeps started at once never share one); a resumed sweep
    keeps the plan it has."""
    if p.resumed:
        return
    if not p.resumed and not p.named:
        p.sweep_dir = layout.reserve(p.sweep_dir.parent, p.sweep_dir.name)
        p.hydra_overrides = [sweep_dir_override(p.sweep_dir) if o.startswith("hydra.sweep.dir=")
                             else o for o in p.hydra_overrides]
    try:
        p.sweep_dir.mkdir(parents=True, exist_ok=True)
        layout.replace_file(p.sweep_dir / MANIFEST, json.dumps(p.manifest(), indent=2) + "\n")
    except OSError as err:
        raise layout.SaveError(p.sweep_dir / MANIFEST, err) from err


# ---------------------------------------------------------------------------------------------
# Running: Hydra does it; crmsim watches the job directories fill up.

class Progress:
    """A progress bar for the whole sweep, whatever launcher runs the jobs: it counts the job
    summaries written since the sweep started (the job directories are on a shared disk)."""

    def __init__(self, p: Plan, quiet: bool) -> None:
        from tqdm.auto import tqdm

        self.plan = p
        self.start = time.time()
        skipped = 0 if p.jobs is None else sum(j.skip for j in p.jobs)
        self.bar = tqdm(total=p.expected, initial=skipped, desc=p.study, unit="job",
                        disable=quiet, dynamic_ncols=True)
        self.skipped = skipped
        self.finished: set[Path] = set()    # summaries seen written: not looked at again
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _done(self) -> int:
        if self.plan.jobs is not None:
            paths = [self.plan.sweep_dir / j.dir / layout.SUMMARY for j in self.plan.jobs if not j.skip]
        else:      # an optimiser's jobs, at any depth (a tuned comparison's train/ and test/)
            try:
                paths = list(self.plan.sweep_dir.rglob(layout.SUMMARY))
            except OSError:   # a job's directory renamed into place while we walked: next time
                return self.bar.n
        for path in paths:
            if path in self.finished:
                continue
            try:
                if path.stat().st_mtime >= self.start:
                    self.finished.add(path)
            except OSError:
                pass
        return self.skipped + len(self.finished)

    def _advance(self) -> None:
        n = self._done()
        if n > self.bar.n:
            self.bar.update(n - self.bar.n)

    def _watch(self) -> None:
        while not self.stop.wait(0.5):
            self._advance()

    def __enter__(self) -> Progress:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._advance()
        self.bar.close()


def launch(p: Plan, quiet: bool = False) -> int:
    """Run the planned sweep through Hydra's multirun; return Hydra's exit code (0 = ran)."""
    import hydra

    write_manifest(p)
    register_plugins()
    if p.sweeper in OPTUNA_SWEEPERS:   # the progress bar and the report say what the trials did
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    argv = ["crmsim", "--multirun", *p.overrides, *p.hydra_overrides]
    app = hydra.main(version_base="1.3", config_path=str(api.config_dir()), config_name="config")(run_job)
    saved = sys.argv
    saved_env = {k: os.environ.get(k) for k in (PARENT_ENV, "PYTHONWARNINGS")}
    if p.launcher in LOCAL_LAUNCHERS:      # workers inherit it: see watch_parent
        os.environ[PARENT_ENV] = owner()
        # multiprocessing's resource tracker (a helper process of the workers) lists the locks
        # of workers stopped by Ctrl-C at exit; they are released, the list is noise.
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [
            saved_env["PYTHONWARNINGS"], "ignore:resource_tracker:UserWarning"]))
    if p.launcher == "PoolLauncher":   # its imports go on while Hydra composes and checks
        processes.warm_up()
    code = 0
    GlobalHydra.instance().clear()
    with Progress(p, quiet):
        try:
            sys.argv = argv
            app()
        except SystemExit as e:   # Hydra reports its own errors and exits
            code = e.code if isinstance(e.code, int) else 1
        finally:
            sys.argv = saved
            GlobalHydra.instance().clear()
            from hydra_plugins.crmsim_local import launcher as pool

            pool.shutdown()
            compose.forget_compositions()
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return code


@dataclass
class Outcome:
    ok: list[str]
    failed: list[tuple[str, str]]      # (job directory, error)
    missing: list[str]


def outcome(p: Plan) -> Outcome:
    """What each job of the sweep left behind."""
    if p.jobs is not None:
        dirs = [j.dir for j in p.jobs]
    else:
        found = (path.parent.relative_to(p.sweep_dir) for path in p.sweep_dir.rglob(layout.SUMMARY))
        dirs = sorted((str(d) for d in found if not any(part.startswith(".") or part == layout.REPORT_DIR
                                                     for part in d.parts)),
                      key=lambda s: (s.count("/"), len(s), s))
    out = Outcome([], [], [])
    for name in dirs:
        doc = read_summary(p.sweep_dir / name)
        if doc is None:
            out.missing.append(name)
        elif doc.get("status") == "ok":
            out.ok.append(name)
        else:
            out.failed.append((name, str(doc.get("error", "unknown error"))))
    return out
