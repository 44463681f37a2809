"""Optuna searches: search spaces in Hydra's sweep syntax, and tuned comparisons of frameworks.

A framework's search space is ``hydra.sweeper.params`` of ``configs/hparams_search/<policy>.yaml``
(``policy.params.<p>: interval(a, b)``, ``policy.tactics.<t>.share: interval(a, b)``,
``int(interval(a, b))``, ``tag(log, interval(a, b))``, ``choice(x, y)``); the same file runs a
single search of that framework (``crmsim run -m hparams_search=<policy>``, the
``crmsim_optuna`` sweeper) and declares what ``experiment=compare_tuned`` tunes.

A tuned comparison (the ``crmsim_tuned`` sweeper, ``run_comparison``) gives every framework the
same number of Optuna trials, the same sampler and sampler seed; a trial's value is the mean of
the objective over the training seeds. The hand-set values are the first trial of every study
(when they lie in its space), so the tuned values do at least as well on the training seeds.
Then the hand-set and the tuned values of every framework run on held-out seeds, never seen in
training, and the report's verdict (paired differences to the baseline) uses those runs only.
The record of it all is ``tuned.json`` in the sweep's directory (``crmsim.layout.TUNED``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from . import layout
from . import overrides as ov
from .compose import config_dir, load_config
from .errors import ConfigError

SPACES = "hparams_search"          # the config group holding one search space per framework
SAMPLERS = "optuna.samplers."      # the only classes a sampler's _target_ may name

# Runs the jobs given as lists of overrides (in this order); returns each job's objective (NaN
# for a failed job). The sweepers pass their Hydra launcher's.
Launch = Callable[[list[list[str]]], list[float]]


# ---------------------------------------------------------------------------------------------
# Search spaces

def space_file(policy: str) -> Path:
    return config_dir() / SPACES / f"{policy}.yaml"


def search_space(policy: str) -> dict[str, str]:
    """The search space of ``policy``: ``{key: sweep}``; empty when it has nothing to tune.

    Raises ``ConfigError`` when ``configs/hparams_search/<policy>.yaml`` is missing or does not
    name ``policy``.
    """
    path = space_file(policy)
    if not path.is_file():
        raise ConfigError("policy", policy, "a framework with a search space: one of "
                          + ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml"))),
                          f"Declare its parameters in {SPACES}/{policy}.yaml (docs/extending.md).")
    doc = OmegaConf.load(path)
    chosen = [d["override /policy"] for d in doc.get("defaults") or []
              if isinstance(d, Mapping) and "override /policy" in d]
    if chosen != [policy]:
        raise ConfigError(f"{SPACES}/{policy}.yaml: defaults", chosen,
                          f"'override /policy: {policy}' (a search space is its framework's)")
    params = OmegaConf.select(doc, "hydra.sweeper.params", default=None) or {}
    return {str(k): str(v) for k, v in params.items()}


def distributions(lines: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Optuna distributions of the sweeps among ``lines`` (``key=interval(0, 1)`` ...), and the
    other lines (fixed values, deletions), passed to every trial as they are.

    ``interval`` is a float range (an int one when both ends are whole numbers or it is wrapped
    in ``int(...)``), ``tag(log, ...)`` makes it logarithmic; ``choice`` is categorical;
    ``range(a, b[, step])`` a stepped range. Anything else is a ``ConfigError``.
    """
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dists: dict[str, Any] = {}
    fixed: list[str] = []
    try:
        parsed = ov.parser().parse_overrides(list(lines))
    except Exception as err:   # Hydra's OverrideParseException, with the grammar's message
        raise ConfigError("hydra.sweeper.params", list(lines), "key=interval(a, b), "
                          "int(interval(a, b)), tag(log, interval(a, b)) or choice(x, y)",
                          str(err).splitlines()[0]) from None
    for o in parsed:
        if not o.is_sweep_override():
            fixed.append(o.input_line)
            continue
        key, value = o.get_key_element(), o.value()
        if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
            dists[key] = CategoricalDistribution(list(o.sweep_iterator()))
        elif isinstance(value, RangeSweep):
            if any(isinstance(x, float) for x in (value.start, value.stop, value.step)):
                dists[key] = FloatDistribution(float(value.start), float(value.stop),
                                               step=float(value.step))
            else:
                dists[key] = IntDistribution(int(value.start), int(value.stop) - 1, step=int(value.step))
        elif isinstance(value, IntervalSweep):
            log = "log" in value.tags
            if isinstance(value.start, int) and isinstance(value.end, int):
                dists[key] = IntDistribution(value.start, value.end, log=log)
            else:
                dists[key] = FloatDistribution(float(value.start), float(value.end), log=log)
        else:
            raise ConfigError(key, o.input_line, "interval(a, b), int(interval(a, b)), "
                              "tag(log, interval(a, b)), choice(x, y) or range(a, b)")
    return dists, fixed


def space_problems(policy: str, cfg: DictConfig | None = None) -> list[str]:
    """What is wrong with ``policy``'s search space against its composed config: keys it does
    not have, hand-set values outside their range (they could not be the first trial), and
    shares of levers the framework does not enable (tuning them would change nothing)."""
    cfg = cfg if cfg is not None else load_config([f"policy={policy}"])
    dists, _ = distributions([f"{k}={v}" for k, v in search_space(policy).items()])
    problems = []
    missing = object()
    for key, dist in dists.items():
        value = OmegaConf.select(cfg, key, default=missing)
        if value is missing:
            problems.append(f"{key}: not a key of policy={policy}'s config")
        elif not _contains(dist, value):
            problems.append(f"{key}: its hand-set value {value!r} lies outside {_describe(dist)}")
        elif key.startswith("policy.tactics.") and key.endswith(".share") and \
                not OmegaConf.select(cfg, key[:-len("share")] + "enabled", default=False):
            problems.append(f"{key}: the share of a lever policy={policy} does not enable")
    return problems


def _contains(dist: Any, value: Any) -> bool:
    from optuna.distributions import CategoricalDistribution

    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    return isinstance(value, int | float) and not isinstance(value, bool) and dist.low <= value <= dist.high


def _describe(dist: Any) -> str:
    from optuna.distributions import CategoricalDistribution

    if isinstance(dist, CategoricalDistribution):
        return f"choice{tuple(dist.choices)}"
    return f"[{dist.low}, {dist.high}]"


def assignments(params: Mapping[str, Any]) -> list[str]:
    """Trial parameters as overrides Hydra reads back exactly (floats in full, repr)."""
    return [f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()]


# ---------------------------------------------------------------------------------------------
# Studies

def make_sampler(spec: Mapping[str, Any]):
    """A fresh sampler from its config (``_target_`` one of optuna.samplers, and its kwargs)."""
    from hydra.utils import instantiate

    spec = dict(OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else spec)
    target = str(spec.get("_target_", ""))
    if not target.startswith(SAMPLERS):
        raise ConfigError("hydra.sweeper.sampler._target_", target or None,
                          f"a sampler class of Optuna, e.g. {SAMPLERS}TPESampler or "
                          f"{SAMPLERS}RandomSampler")
    return instantiate(spec)


def finished(study) -> int:
    """Trials whose jobs all ran (``search`` marks them ``ran``), whatever their value."""
    return sum(bool(t.user_attrs.get("ran")) for t in study.trials)


def close_interrupted(study) -> None:
    """Trials left running by an interrupted sweep are closed as failed (never marked ``ran``),
    so a resumed study asks for new ones. Only for a study no other process is running."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)


@dataclass
class Search:
    """One study's part of a search: the trials it still needs and the jobs of a trial."""

    study: Any
    dists: dict[str, Any]
    to_go: int
    jobs: Callable[[Any], list[list[str]]]      # a trial's jobs (lists of overrides)


def search(searches: Sequence[Search], n_jobs: int, launch: Launch) -> None:
    """Ask/tell rounds: each study asks up to ``n_jobs`` trials, every job of the round is
    launched at once, and each trial is told the mean objective of its jobs (failed when one
    of them failed). Studies take turns in a fixed order, so a search is reproducible."""
    import numpy as np
    from optuna.trial import TrialState

    while any(s.to_go > 0 for s in searches):
        batch, lines = [], []
        for s in searches:
            for _ in range(min(n_jobs, s.to_go)):
                trial = s.study.ask(s.dists)
                jobs = s.jobs(trial)
                batch.append((s, trial, len(jobs)))
                lines += jobs
                s.to_go -= 1
        values = launch(lines)
        start = 0
        for s, trial, n in batch:
            got = [float(v) for v in values[start:start + n]]
            start += n
            trial.set_user_attr("ran", True)
            if got and all(math.isfinite(v) for v in got):
                s.study.tell(trial, float(np.mean(got)))
            else:
                s.study.tell(trial, state=TrialState.FAIL)


def best(study) -> tuple[dict[str, Any] | None, float | None]:
    """The best trial's parameters and value; (None, None) when no trial completed."""
    from optuna.trial import TrialState

    if not any(t.state == TrialState.COMPLETE for t in study.trials):
        return None, None
    return dict(study.best_trial.params), float(study.best_value)


# ---------------------------------------------------------------------------------------------
# Tuned comparisons

@dataclass
class Settings:
    """A tuned comparison's settings (``hydra.sweeper`` of ``experiment=compare_tuned``)."""

    name: str
    policies: list[str]
    baseline: str
    objective: str
    direction: str
    n_trials: int
    n_jobs: int
    train_seeds: list[int]
    test_seeds: list[int]
    sampler: dict[str, Any]
    storage: str | None = None
    spaces: dict[str, dict[str, str]] = field(default_factory=dict)


def _seeds(value: Any, key: str) -> list[int]:
    """Seeds as a list of whole numbers or Hydra's ``range(a, b)``; at least one, no repeats."""
    allowed = "one or more different whole numbers >= 0: a list [0, 1, 2] or range(0, 3)"
    if isinstance(value, str):
        try:
            o = ov.parser().parse_override(f"x={value}")
            value = [int(v) for v in o.sweep_string_iterator()] if o.is_sweep_override() else o.value()
        except Exception:
            raise ConfigError(key, value, allowed) from None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    elif OmegaConf.is_list(value):
        value = OmegaConf.to_container(value)
    items = list(value) if isinstance(value, list | tuple | range) else None
    if not items or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in items) \
            or len(set(items)) < len(items):
        raise ConfigError(key, value, allowed)
    return [int(s) for s in items]


def settings(sweeper: DictConfig, study: DictConfig, name: str) -> Settings:
    """The checked settings of a tuned comparison; ``ConfigError`` names the first bad key."""
    from .policies import POLICIES

    key = "hydra.sweeper."
    policies = [str(p) for p in (sweeper.get("policies") or [])] or list(POLICIES)
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or len(set(policies)) < len(policies):
        raise ConfigError(key + "policies", policies, "different registered policies: "
                          + ", ".join(POLICIES) + " (empty: all of them)")
    baseline = str(study.baseline or "policy=transactional")
    baseline = baseline.removeprefix("policy=")
    if baseline not in policies:
        raise ConfigError("study.baseline", study.baseline,
                          "policy=<one of the compared policies: " + ", ".join(policies) + ">")
    for k in ("n_trials", "n_jobs"):
        v = sweeper.get(k)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(key + k, v, "a whole number >= 1")
    if sweeper.get("direction") not in ("maximize", "minimize"):
        raise ConfigError(key + "direction", sweeper.get("direction"), "maximize or minimize")
    train = _seeds(sweeper.get("train_seeds"), key + "train_seeds")
    test = _seeds(sweeper.get("test_seeds"), key + "test_seeds")
    shared = sorted(set(train) & set(test))
    if shared:
        raise ConfigError(key + "test_seeds", test, "seeds that are not training seeds "
                          f"({key}train_seeds={train})",
                          f"Seeds {shared} are in both: a verdict on seeds the tuning saw "
                          "would flatter the tuned frameworks.")
    sampler = OmegaConf.to_container(sweeper.sampler, resolve=True) if OmegaConf.is_config(
        sweeper.get("sampler")) else dict(sweeper.get("sampler") or {})
    make_sampler(sampler)      # a bad sampler stops before anything runs
    spaces = {p: search_space(p) for p in policies}
    for space in spaces.values():
        distributions([f"{k}={v}" for k, v in space.items()])
    return Settings(name=name, policies=policies, baseline=baseline, objective=str(study.objective),
                    direction=str(sweeper.direction), n_trials=int(sweeper.n_trials),
                    n_jobs=int(sweeper.n_jobs), train_seeds=train, test_seeds=test,
                    sampler=sampler, storage=sweeper.get("storage"), spaces=spaces)


def expected_jobs(s: Settings) -> int:
    """Jobs of a tuned comparison: the trials on the training seeds of every framework with
    something to tune, then the hand-set and the tuned values on the held-out seeds."""
    tuned = sum(bool(space) for space in s.spaces.values())
    return tuned * s.n_trials * len(s.train_seeds) + (len(s.policies) + tuned) * len(s.test_seeds)


def check(primary: DictConfig, task: Sequence[str], name: str) -> Settings:
    """Before a tuned comparison runs: its settings, no seed or policy on the command line (the
    experiment picks them), and every search space against its framework's composed config."""
    for line in task:
        if ov.key_of(line) in ("seed", "policy"):
            raise ConfigError(ov.key_of(line), line.partition("=")[2],
                              "no value here: a tuned comparison sets the policy and the seeds "
                              "itself (hydra.sweeper.policies, train_seeds, test_seeds)")
    s = settings(primary.hydra.sweeper, primary.study, name)
    fixed = [o for o in task if not ov.is_hydra(o)]
    for p in s.policies:
        problems = space_problems(p, load_config([*fixed, f"policy={p}"]))
        if problems:
            raise ConfigError(f"{SPACES}/{p}.yaml", "; ".join(problems),
                              f"keys of policy={p}'s config, with ranges that hold its "
                              "hand-set values")
    return s


def _subdir(path: str) -> str:
    return f"hydra.sweep.subdir='{path}'"


def run_comparison(s: Settings, fixed: Sequence[str], launch: Launch, sweep_dir: Path) -> dict:
    """Tune every framework on the training seeds, run hand-set and tuned values on the
    held-out seeds, and write ``tuned.json``; returns its content.

    ``fixed``: the command line's overrides, given to every job. Job directories:
    ``train/<policy>/trial=<n>/seed=<s>`` and ``test/<policy>/<hand_set|tuned>/seed=<s>``.
    A rerun into the same directory (``--resume``) continues each study to ``n_trials``
    finished trials; finished jobs are not run again.
    """
    import optuna

    fixed = [o for o in fixed if not ov.is_hydra(o)]
    studies, searches, hand = {}, [], {}
    for p in s.policies:
        dists, rest = distributions([f"{k}={v}" for k, v in s.spaces[p].items()])
        cfg = load_config([*fixed, f"policy={p}"])
        hand[p] = {k: OmegaConf.select(cfg, k) for k in dists}
        if not dists:
            continue
        study = optuna.create_study(study_name=f"{s.name}.{p}", storage=s.storage,
                                    sampler=make_sampler(s.sampler), direction=s.direction,
                                    load_if_exists=True)
        close_interrupted(study)
        if not study.trials:
            study.enqueue_trial(hand[p], user_attrs={"hand_set": True})   # trial 0

        def jobs(trial, p=p, rest=rest):
            return [[*fixed, f"policy={p}", *rest, *assignments(trial.params), f"seed={seed}",
                     _subdir(f"train/{p}/trial={trial.number}/seed={seed}")]
                    for seed in s.train_seeds]

        studies[p] = study
        searches.append(Search(study, dists, max(0, s.n_trials - finished(study)), jobs))
    search(searches, s.n_jobs, launch)

    record: dict[str, Any] = {
        "study": s.name, "objective": s.objective, "direction": s.direction,
        "baseline": s.baseline, "n_trials": s.n_trials, "sampler": s.sampler,
        "train_seeds": s.train_seeds, "test_seeds": s.test_seeds, "policies": {}}
    lines: list[list[str]] = []
    for p in s.policies:
        entry: dict[str, Any] = {"space": s.spaces[p], "hand_set": hand[p], "tuned": {},
                                 "trials": 0, "train": {}, "runs": {}}
        _, rest = distributions([f"{k}={v}" for k, v in s.spaces[p].items()])
        variants = {"hand_set": {}}
        if p in studies:
            study = studies[p]
            params, value = best(study)
            entry["trials"] = finished(study)
            entry["train"] = {"tuned": value, "hand_set": _first_value(study)}
            if params is None:
                entry["tuned"] = None        # no trial completed: nothing to judge
            else:
                entry["tuned"] = params
                variants["tuned"] = params
        else:
            entry["tuned"] = {}
        for variant, params in variants.items():
            dirs = []
            for seed in s.test_seeds:
                where = f"test/{p}/{variant}/seed={seed}"
                lines.append([*fixed, f"policy={p}", *rest, *assignments(params), f"seed={seed}",
                              _subdir(where)])
                dirs.append(where)
            entry["runs"][variant] = dirs
        if "tuned" not in variants and entry["tuned"] == {}:
            entry["runs"]["tuned"] = entry["runs"]["hand_set"]   # nothing to tune: the same runs
        record["policies"][p] = entry
    launch(lines)
    write_record(sweep_dir, record)
    return record


def _first_value(study) -> float | None:
    """The training value of the hand-set values (trial 0), None when it did not complete."""
    from optuna.trial import TrialState

    first = next((t for t in study.trials if t.user_attrs.get("hand_set")), None)
    return float(first.value) if first is not None and first.state == TrialState.COMPLETE else None


def write_record(sweep_dir: Path, record: dict) -> None:
    """Write ``tuned.json`` in one rename (strict JSON: no NaN)."""
    doc, _ = layout.finite(record)
    layout.replace_file(Path(sweep_dir) / layout.TUNED,
                        json.dumps(doc, indent=2, allow_nan=False) + "\n")


def read_record(directory: Path) -> dict | None:
    """The tuned comparison recorded in ``directory``, or None when it holds none."""
    path = Path(directory) / layout.TUNED
    if not path.is_file():
        return None
    doc, why = layout.read_json(path)
    if why or not isinstance(doc, dict) or not isinstance(doc.get("policies"), dict):
        raise ValueError(f"{path}: {why or 'not a tuned comparison'}")
    return doc


def heldout_runs(runs, record: dict):
    """The held-out runs of a tuned comparison from a collection's runs table (``run`` relative
    to the sweep's directory): one row per (policy, tuning, seed) with columns ``policy``,
    ``tuning`` (``hand_set`` or ``tuned``), the run's status, seed and KPIs. A framework with
    nothing to tune has the same runs in both; a framework with no tuned values (no trial
    completed) has none in ``tuned``. Runs of the training seeds are never among them."""
    import pandas as pd

    test = set(record.get("test_seeds") or [])
    by_run = runs.set_index("run", drop=False)
    parts = []
    for policy, entry in record["policies"].items():
        for tuning, dirs in (entry.get("runs") or {}).items():
            rows = by_run.reindex([d for d in dirs if d in by_run.index]).copy()
            rows = rows[rows["seed"].isin(test)]
            rows["policy"], rows["tuning"] = policy, tuning
            parts.append(rows)
    columns = [c for c in runs.columns if c not in ("policy", "tuning")]
    if not parts:
        return pd.DataFrame(columns=[*columns, "policy", "tuning"])
    return pd.concat(parts, ignore_index=True)[[*columns, "policy", "tuning"]]


def ended_with(record: dict) -> list[dict[str, Any]]:
    """What each framework ended with: one row per (policy, key) with its hand-set and tuned
    value (the tuned one None when no trial completed), in the record's order."""
    rows = []
    for policy, entry in record["policies"].items():
        tuned = entry.get("tuned")
        for key, hand in (entry.get("hand_set") or {}).items():
            rows.append({"policy": policy, "key": key, "hand_set": hand,
                         "tuned": None if tuned is None else tuned.get(key)})
    return rows
