"""Composing a config: the packaged Hydra configs, overrides, and the checks before a run.

``load_config`` is the one way a config is made (the CLI, the API, sweeps, notebooks and the
dashboard all use it); it needs nothing of the model, so the model's own construction can use it
too. ``crmsim.api`` re-exports it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import importlib.resources
import pickle
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from . import checks, validation
from . import config as config_mod
from .errors import ConfigError
from .network import load_edgelist


def config_dir() -> Path:
    """The packaged Hydra configs (``configs/`` in the source tree)."""
    return Path(str(importlib.resources.files("crmsim.configs")))


def group_options(group: str) -> list[str]:
    """The options of a config group, e.g. ``group_options("policy")``."""
    path = config_dir() / group
    return sorted(p.stem for p in path.glob("*.yaml")) if path.is_dir() else []


# Directories of configs/ that crmsim reads itself rather than Hydra composing them as a group.
NOT_GROUPS = ("uncertainty",)   # prior ranges: study.uncertainty.priors, crmsim/uncertainty.py


def config_groups() -> list[str]:
    return sorted(p.name for p in config_dir().iterdir()
                  if p.is_dir() and not p.name.startswith("_") and p.name not in NOT_GROUPS
                  and any(p.glob("*.yaml")))


@functools.cache
def register_plugins() -> None:
    """Make crmsim's sweepers and launcher (``hydra_plugins.crmsim_optuna_sweeper``,
    ``hydra_plugins.crmsim_local``) known to Hydra.

    Hydra finds plugins by listing the ``hydra_plugins`` directories on ``sys.path``; an editable
    install (``make install``) maps the package through an import hook that cannot be listed, so
    the sweepers and their configs are registered here, once per process (a launcher hands the
    registry to its workers).
    """
    from hydra.core.plugins import Plugins

    from hydra_plugins.crmsim_local import config as local_config  # noqa: F401 (registers)
    from hydra_plugins.crmsim_local import launcher
    from hydra_plugins.crmsim_optuna_sweeper import config, sweepers  # noqa: F401 (registers)

    for plugin in (sweepers.OptunaSweeper, sweepers.TunedSweeper, launcher.PlannedSweeper,
                   launcher.PoolLauncher):
        Plugins.instance().register(plugin)


@contextlib.contextmanager
def _hydra_context() -> Iterator[None]:
    """Hydra's compose API, usable any number of times, even inside a running Hydra app."""
    register_plugins()
    gh = GlobalHydra.instance()
    saved = None
    if gh.is_initialized():
        saved = gh.hydra
        gh.clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3",
                                   job_name="crmsim"):
            yield
    finally:
        if saved is not None:
            GlobalHydra.instance().initialize(saved)


def _all_keys(node, prefix: str = "") -> list[str]:
    keys = []
    for k, v in node.items():
        keys.append(prefix + str(k))
        if isinstance(v, dict):
            keys.extend(_all_keys(v, f"{prefix}{k}."))
    return keys


@functools.cache
def _default_keys() -> tuple[str, ...]:
    """Every key of the default config (composing it takes ~0.1 s, so once per process)."""
    with _hydra_context():
        base = OmegaConf.to_container(compose(config_name="config"), resolve=False)
    return tuple(_all_keys(base))


def _unknown_key(key: str, value: object) -> ConfigError:
    close = difflib.get_close_matches(key, _default_keys(), n=3)
    hint = f"Did you mean {' or '.join(close)}?" if close else ""
    return ConfigError(key, value, "only keys of the crmsim schema (`crmsim run --help`)", hint)


_OVERRIDE_SYNTAX = "key=value, group=option, +key=value or ~key (Hydra override syntax)"


def _given(key: str, overrides: Sequence[str]) -> str | None:
    """The value the user wrote for ``key`` (with or without a ``+``/``++``/``~`` prefix); the
    last one, as in Hydra."""
    return next((o.partition("=")[2] for o in reversed(overrides)
                 if o.lstrip("+~").startswith(key + "=")), None)


def _group_choice_error(group: str, value: object) -> ConfigError:
    options = group_options(group)
    return ConfigError(group, value, "one of " + ", ".join(options) if options
                       else "an existing config group")


def _composition_error(err: Exception, overrides: Sequence[str]) -> ConfigError:
    msg = str(err)
    first = msg.splitlines()[0] if msg else type(err).__name__
    if isinstance(err, ValueError) and "Config group override" in msg:
        # Hydra's own ValueError for `sim=3` or `market=null`: it does not say which group.
        groups = set(config_groups())
        group = next((o.partition("=")[0].lstrip("+~") for o in overrides
                      if o.partition("=")[0].lstrip("+~") in groups), None)
        if group is None:  # `=5`: no key at all
            bad = next((o for o in overrides if not o.partition("=")[0].lstrip("+~")), overrides)
            return ConfigError("override", bad, _OVERRIDE_SYNTAX)
        return _group_choice_error(group, _given(group, overrides))
    missing = re.search(r"Could not (?:find|load) '([\w/]+)/([^']+)'", msg)
    if missing:
        return _group_choice_error(missing.group(1), missing.group(2))
    if isinstance(err, OverrideParseException):
        bad = re.search(r"override '([^']*)'", msg)
        line = bad.group(1) if bad else _unparsable(overrides)
        if line is None:
            return ConfigError("override", list(overrides), _OVERRIDE_SYNTAX)
        key, _, value = line.partition("=")
        if value and re.search(r"[()\[\]{}, '\"=:]", value):
            return ConfigError("override", line, _OVERRIDE_SYNTAX,
                               f"Its value holds characters Hydra's grammar reads (parentheses, "
                               f"brackets, commas, spaces, quotes): quote it, as {key}='{value}' "
                               "(in a shell, wrap the whole override in double quotes)")
        return ConfigError("override", line, _OVERRIDE_SYNTAX)
    unknown = re.search(r"Could not override '([^']+)'", msg)
    if unknown:
        key = unknown.group(1)
        inner = getattr(err.__cause__, "full_key", None)
        if inner and inner != key:  # `network={a: 1}`: the unknown key is network.a
            return _unknown_key(inner, _given(key, overrides))
        if key in config_groups():  # an optional group, not in the defaults: `lever=promotion`
            return ConfigError(key, _given(key, overrides),
                               f"+{key}=OPTION (the group is added with '+'), OPTION one of "
                               + ", ".join(group_options(key)))
        return _unknown_key(key, _given(key, overrides))
    exists = re.search(r"An item is already at '([^']+)'", msg)
    if exists:
        key = exists.group(1)
        return ConfigError(key, _given(key, overrides),
                           f"an override without '+', since the key exists ({key}=VALUE)")
    cause = err.__cause__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        return validation.error_from_omegaconf(cause)
    return ConfigError("overrides", list(overrides), "overrides of existing keys", first)


def _unparsable(overrides: Sequence[str]) -> str | None:
    """The first override Hydra's grammar cannot read."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for line in overrides:
        try:
            parser.parse_override(line)
        except Exception:
            return line
    return None


def _check_one_config(overrides: list[str]) -> None:
    """What one config cannot hold: swept values, and Hydra settings (only a sweep uses them;
    here they would be ignored without a word)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for line in overrides:
        key, _, value = line.lstrip("+~").partition("=")
        if key.startswith(("hydra.", "hydra/")):
            raise ConfigError(key, value, "Hydra settings only in a sweep (crmsim run -m); a "
                              "single run goes to --out DIR (the results root)")
        try:
            swept = parser.parse_override(line).is_sweep_override()
        except Exception:        # a malformed override: composing it says what is wrong
            continue
        if swept:
            raise ConfigError(key, value, "a single value; to run every value, add -m "
                              f"(crmsim run -m {line}), or use crmsim.compare from Python")


def _blame_deletion(err: ConfigError, overrides: Sequence[str]) -> ConfigError:
    """A value missing or an interpolation failing after a ``~key`` deletion: name the deletion
    (``~market`` would otherwise blame the first key it took with it)."""
    fallout = err.value == "???" or "interpolation" in err.allowed
    for line in overrides:
        key = line[1:].partition("=")[0]
        if line.startswith("~") and (fallout or err.key.startswith(key + ".")):
            return ConfigError(key, line, "keys and sections that stay: every one is required "
                               f"({err.key} has no value once {key} is deleted); set a value "
                               f"({key}=...) or choose another option instead")
    return err


def load_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose the packaged configs with Hydra overrides, e.g. ``["policy=transactional"]``.

    Works from any directory, in notebooks and scripts, any number of times. The result is
    checked against the schema; a bad value raises ``ConfigError``.
    """
    config_mod.register_schema()
    if isinstance(overrides, str | bytes) or not all(isinstance(o, str) for o in overrides):
        shown = overrides if isinstance(overrides, str | bytes) else [
            o for o in overrides if not isinstance(o, str)][0]
        raise ConfigError("overrides", shown, "a list of override strings, e.g. "
                          "load_config([\"policy=idic\", \"seed=3\"])")
    overrides = list(overrides)
    _check_one_config(overrides)

    def composed() -> DictConfig:
        with _hydra_context():
            return compose(config_name="config", overrides=overrides)

    return checked_composition(overrides, composed)


def checked_composition(overrides: list[str], composed: Callable[[], DictConfig]) -> DictConfig:
    """The config ``composed()`` makes from ``overrides``, checked as ``load_config`` checks it:
    a failure to compose, a bad value or a missing input raises ``ConfigError`` naming the
    override to blame."""
    try:
        cfg = composed()
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise _blame_deletion(_composition_error(err, overrides), overrides) from None
    try:
        typed = validation.validate(cfg)
    except ConfigError as err:
        if "schema" in err.allowed:  # a key added with `+`, at the top level or nested
            given = _given(err.key, overrides)
            raise _unknown_key(err.key, err.value if given is None else given) from None
        raise _blame_deletion(err, overrides) from None
    check_inputs(typed)
    return cfg


def check_inputs(typed: config_mod.CRMConfig) -> None:
    """What a valid config still needs from the machine: the memory, and a readable edge list
    (read now, so a missing or malformed file stops the run before anything is simulated or
    written; the model reads it again, parsing is ~0.4 s per 10^6 edges)."""
    checks.check_memory(typed)
    if typed.network.kind == "edgelist":
        checks.check_edgelist_file(typed.network.path)
        _read_edgelist(typed.network.path, typed.market.n_people)


@functools.lru_cache(maxsize=8)
def _read_edgelist(path: str, n: int) -> None:
    load_edgelist(path, n)


@dataclasses.dataclass
class JobSpec:
    """What a worker process needs to make one job's config (``config()``), small to send: the
    pickled composition the job's config-group choices share, the job's own values
    (``seed=3``), and its ``hydra`` fields."""

    base: bytes                     # the pickled composition (``load_sweep_config``)
    values: list[str]               # the overrides set on it, e.g. ["seed=3"]
    task: list[str]                 # hydra.overrides.task
    override_dirname: str           # hydra.job.override_dirname
    cache: dict                     # the sweep config's resolver cache (``${now:...}``)
    job: dict = dataclasses.field(default_factory=dict)   # more hydra.job fields (id, num)

    def config(self) -> DictConfig:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra.core.override_parser.overrides_parser import OverridesParser

        cfg = pickle.loads(self.base)
        with read_write(cfg):
            ConfigLoaderImpl._apply_overrides_to_config(
                OverridesParser.create().parse_overrides(self.values), cfg)
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.overrides.task = list(self.task)
            cfg.hydra.job.override_dirname = self.override_dirname
            for key, value in self.job.items():
                cfg.hydra.job[key] = value
        OmegaConf.set_cache(cfg, self.cache)
        return cfg


class JobComposer:
    """The config of each job of a sweep, as Hydra's ``load_sweep_config`` makes it, at a
    fraction of the cost.

    Composing a job's config from the defaults list takes ~0.2-0.5 s, as long as a small
    simulation. Jobs that pick the same config-group options (``policy=idic``) share one such
    composition, pickled once; a job's values (``seed=3``) are set on a copy unpickled from it
    (~3x faster than a deep copy) with Hydra's own override code, and its ``hydra`` node (task
    overrides, ``override_dirname``) filled in the way Hydra fills it. ``spec`` says what to do
    (a ``JobSpec``, which a worker turns into the config) and checks that it can be done; calling
    the composer does it. ``tests/test_sweep_launcher.py`` checks the result equals Hydra's for
    every job of a sweep. ``loader`` and ``master`` are the sweeper's config loader and the
    sweep's config; a sweep being planned has no config yet: ``master=None`` and the Hydra
    overrides it will have (its compositions are kept for the launcher, ``sweep_composition``).
    """

    def __init__(self, loader, master: DictConfig | None, hydra_overrides: Sequence[str] = (),
                 config_name: str = "config") -> None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        self.loader = loader
        # What load_sweep_config takes from the sweep's config, and its resolver cache (each
        # job's to set); without one (a sweep being planned), the Hydra overrides it will have.
        self.hydra_overrides = (list(hydra_overrides) if master is None
                                else OmegaConf.to_container(master.hydra.overrides.hydra))
        self.config_name = config_name if master is None else master.hydra.job.config_name
        self.cache = {} if master is None else OmegaConf.get_cache(master)
        self.parser = OverridesParser.create(config_loader=loader)
        self._bases: dict[tuple[str, ...], bytes] = {}   # group choices -> pickled composition
        self._scratch: dict[tuple[str, ...], DictConfig] = {}   # a copy of each, for checks
        self._groups = {str(p) for p in config_groups()}

    def _composes(self, override) -> bool:
        """An override that changes what is composed (a group option, a Hydra setting)
        rather than a value set on the composed config."""
        key = override.key_or_group
        return (override.is_hydra_override() or key.split("/")[0] in self._groups
                or key.startswith("hydra") or override.is_delete())

    def spec(self, overrides: Sequence[str]) -> JobSpec:
        """The ``JobSpec`` of the job with ``overrides``, checked: Hydra's error if its values
        cannot be set. Plain ``key=value`` overrides are tried on one scratch copy of the
        composition (each job sets the same keys, so one job's values cannot hide another's
        error); ``+key``, ``++key`` and ``~key`` on the job's own config."""
        from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname

        parsed = self.parser.parse_overrides(list(overrides))
        values = [o for o in parsed if not self._composes(o)]
        key = tuple(o.input_line for o in parsed if self._composes(o))
        if key not in self._bases:
            self._bases[key] = sweep_composition(self.loader, self.config_name,
                                                 self.hydra_overrides, key)
            self._scratch[key] = pickle.loads(self._bases[key])
        dirname = self._scratch[key].hydra.job.config.override_dirname
        task = [o for o in parsed if not o.is_hydra_override()]
        spec = JobSpec(base=self._bases[key], values=[o.input_line for o in values],
                       task=[o.input_line for o in task],
                       override_dirname=get_overrides_dirname(
                           overrides=task, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep,
                           exclude_keys=dirname.exclude_keys),
                       cache=self.cache)
        if all(not (o.is_add() or o.is_force_add()) for o in values):
            with read_write(self._scratch[key]):
                ConfigLoaderImpl._apply_overrides_to_config(values, self._scratch[key])
        else:
            spec.config()
        return spec

    def __call__(self, overrides: Sequence[str]) -> DictConfig:
        return self.spec(overrides).config()

    def task_config(self, overrides: Sequence[str]) -> DictConfig:
        """The job's config as its task gets it: without the ``hydra`` node."""
        cfg = self(overrides)
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
        return cfg


# Compositions a sweep's process made, by config name, the sweep's Hydra overrides and a job's
# group choices: the plan's checks and the launcher compose each once (crmsim.sweep clears it).
_composed: dict[tuple, bytes] = {}


def sweep_composition(loader, config_name: str, hydra_overrides: Sequence[str],
                      key: Sequence[str]) -> bytes:
    """Hydra's ``load_sweep_config`` for a job whose group choices are ``key``, pickled (the
    sweep config's resolver cache is each ``JobSpec``'s to set), composed once per process."""
    from hydra.types import RunMode

    index = (config_name, tuple(hydra_overrides), tuple(key))
    if index not in _composed:
        _composed[index] = pickle.dumps(loader.load_configuration(
            config_name=config_name, overrides=[*hydra_overrides, *key], run_mode=RunMode.RUN))
    return _composed[index]


def forget_compositions() -> None:
    """Drop the compositions ``sweep_composition`` kept (the config files may change)."""
    _composed.clear()
