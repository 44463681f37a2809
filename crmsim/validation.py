"""Every check of a composed config, before anything runs.

The schema (``crmsim.config``) declares each field's type and allowed interval; policies,
tactics and termination declare their parameters' constraints next to their classes
(``_parameter_constraints``). ``validate`` runs them all through the one engine of
``crmsim.constraints`` and returns the typed config, or raises ``ConfigError`` naming the key,
the value and what is allowed. Dependencies run one way: validation imports the schema and the
policies; neither imports validation.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

from .config import MAX_PEOPLE, CRMConfig
from .errors import ConfigError
from .parallel import threads_wanted
from .policies import check_policy_config
from .population import entrant_count
from .units import step_years


def _check_fields(obj: Any, prefix: str) -> None:
    """Every schema field with a declared constraint, depth first."""
    for f in dataclasses.fields(obj):
        key = f"{prefix}{f.name}"
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check_fields(value, key + ".")
            continue
        constraint = f.metadata.get("constraint")
        if constraint is not None:
            constraint.check(key, value)


def _check_relations(c: CRMConfig) -> None:
    if c.network.kind != "edgelist" and c.network.mean_degree > c.market.n_people - 1:
        raise ConfigError(
            "network.mean_degree", c.network.mean_degree,
            f"a number at most market.n_people - 1 ({c.market.n_people - 1})",
        )
    if c.network.kind != "complete" and c.network.weak_degree >= c.market.n_people:
        # The exact bound depends on the strong ties drawn; the network builder checks it.
        raise ConfigError(
            "network.weak_degree", c.network.weak_degree,
            f"a number >= 0 and below market.n_people ({c.market.n_people})",
        )
    if c.market.growth > 0 and c.network.kind == "edgelist":
        # The user's edge list names the people; it has no place for people yet to enter.
        raise ConfigError("market.growth", c.market.growth,
                          "0 when network.kind=edgelist (the edge list defines the people; an "
                          "open market needs a generated network)")
    m = c.market
    if m.growth > 0:
        years = c.sim.steps * step_years(c.sim.period_days)
        entrants = entrant_count(m.growth, m.n_people, years)
        if m.n_people + entrants > MAX_PEOPLE:
            raise ConfigError(
                "market.growth", m.growth,
                f"a growth at which market.n_people ({m.n_people}) plus the "
                f"{entrants} entrants over sim.steps stay within {MAX_PEOPLE} people")
    if c.network.kind == "edgelist" and not c.network.path:
        raise ConfigError("network.path", c.network.path,
                          "the path of an edge-list file when network.kind=edgelist")


# The last configs checked, resolved, with their typed configs: a config that differs from one
# of them only in values (a replicate's seed, a calibration's candidate, an uncertainty draw, a
# swept number) is typed from a copy of it (``_near``); merging a config into the schema costs
# ~50 ms.
_recent: collections.deque[tuple[dict, CRMConfig]] = collections.deque(maxlen=32)
# The schema's leaf types whose values a resolved config gives exactly as the typed config holds
# them (OmegaConf converts nothing); any other leaf that differs takes the full merge.
_EXACT = {"float": (float,), "int": (int,), "bool": (bool,), "str": (str,),
          "str | None": (str, type(None)), "int | None": (int, type(None)),
          "float | None": (float, type(None))}


def validate(cfg: DictConfig | dict, resolved: dict | None = None) -> CRMConfig:
    """Check a composed config against the schema and every declared constraint.

    Returns the typed config; raises ``ConfigError`` (key, value, what is allowed) on the first
    problem, before anything runs. A config that differs from one of the last checked only in
    values (its seed, say: ``_near``) is not merged into the schema again (~50 ms): a copy of
    that typed config gets the values, and every constraint is checked again. ``resolved``:
    ``cfg``'s resolved container, when the caller has made it
    (``OmegaConf.to_container(cfg, resolve=True)``), so it is not made twice.
    """
    if resolved is None:
        try:
            resolved = OmegaConf.to_container(
                cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg), resolve=True)
        except (OmegaConfBaseException, TypeError, ValueError):
            pass    # the full check names what does not resolve
    typed = _near(resolved) if resolved is not None else None
    if typed is None:
        typed = _validate(cfg)
    if resolved is not None:
        _recent.append((copy.deepcopy(resolved), copy.deepcopy(typed)))
    return typed


def _near(resolved: dict) -> CRMConfig | None:
    """The typed config of ``resolved`` made from a recently checked config that differs from it
    only in leaf values the typed config holds as given (``_EXACT``, or anything under a field
    of type ``dict[str, Any]``, such as a tactic's parameters), every constraint checked again;
    None when no recent config is that close (the caller merges it into the schema)."""
    for old, typed in reversed(list(_recent)):    # a snapshot: another thread may check too
        changes: list[tuple[tuple, Any]] = []
        if not _leaf_changes(old, resolved, (), changes):
            continue
        out = copy.deepcopy(typed)
        if all(_set_leaf(out, path, value) for path, value in changes):
            _check_typed(out)
            threads_wanted()
            return out
    return None


def _leaf_changes(old: Any, new: Any, path: tuple, out: list) -> bool:
    """Collect the (path, new value) of every leaf where ``new`` differs from ``old`` (two
    resolved configs); False when they differ in shape (keys, a section for a value), in a list
    or by a missing value: only the full check types those."""
    if isinstance(old, dict) and isinstance(new, dict):
        if old.keys() != new.keys():
            return False
        return all(_leaf_changes(old[k], new[k], (*path, k), out) for k in old)
    if isinstance(old, list) or isinstance(new, list):
        return old == new and type(old) is type(new)
    if isinstance(new, dict) or isinstance(old, dict):
        return False
    if type(old) is not type(new) or old != new:
        if new == "???":     # a missing value: the full check says which key needs one
            return False
        out.append((path, new))
    return True


def _set_leaf(typed: Any, path: tuple, value: Any) -> bool:
    """Set ``value`` at ``path`` in the typed config when the schema holds it as given there;
    False (nothing set) when only the full merge can tell what it becomes."""
    node = typed
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if dataclasses.is_dataclass(node):
            field = next((f for f in dataclasses.fields(node) if f.name == part), None)
            if field is None:
                return False
            if last:
                if type(value) not in _EXACT.get(str(field.type), ()):
                    return False
                setattr(node, part, value)
                return True
            if str(field.type) == "dict[str, Any]":
                return _set_in_any(getattr(node, part), path[i + 1:], value)
            node = getattr(node, part)
        else:
            return False
    return False


def _set_in_any(node: Any, path: tuple, value: Any) -> bool:
    """Under a ``dict[str, Any]`` field the typed config holds the resolved values themselves."""
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    if not isinstance(node, dict) or path[-1] not in node:
        return False
    node[path[-1]] = copy.deepcopy(value)
    return True


def reseeded(typed: CRMConfig, seed: int) -> CRMConfig:
    """A checked copy of the typed config ``typed`` with ``seed`` (a whole number): the same
    config but for the seed, without merging it into the schema again. Every constraint is
    checked on the copy; the caller makes sure no other value depends on the seed."""
    out = copy.deepcopy(typed)
    out.seed = seed
    _check_typed(out)
    return out


def _check_typed(typed: CRMConfig) -> None:
    """Every declared constraint of a typed config: its fields, their relations, the policy's."""
    _check_fields(typed, "")
    _check_relations(typed)
    check_policy_config(typed.policy)


def _validate(cfg: DictConfig | dict) -> CRMConfig:
    try:
        # A plain container, so that keys added with Hydra's `+` are checked against the schema.
        plain = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg
        merged = OmegaConf.merge(OmegaConf.structured(CRMConfig), plain)
        missing = OmegaConf.missing_keys(merged)
        if missing:
            key = sorted(missing)[0]
            raise ConfigError(key, "???", "a value (the key is required and has none)")
        typed: CRMConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        raise error_from_omegaconf(err) from None
    _check_typed(typed)
    threads_wanted()   # the environment's CRMSIM_THREADS (crmsim/parallel.py), before anything runs
    return typed


def error_from_omegaconf(err: OmegaConfBaseException) -> ConfigError:
    """A ConfigError from OmegaConf's own (key, value, type) complaint."""
    key = getattr(err, "full_key", None) or "config"
    msg = str(err).splitlines()[0]
    if isinstance(err, InterpolationResolutionError):   # `${...}` that does not resolve
        node = getattr(err, "child_node", None)
        written = node._value() if node is not None else getattr(err, "value", None)
        expected = _expected_type(key)
        return ConfigError(key, written, (expected + ", or " if expected else "")
                           + "an interpolation that resolves", f"The interpolation failed: {msg}.")
    if "not in" in msg or "Key '" in msg:
        return ConfigError(key, None, "only keys of the crmsim schema (check the spelling)", msg)
    value = getattr(err, "value", None)
    expected = _expected_type(key)
    return ConfigError(key, value, expected or "a value of the type the schema declares")


def _expected_type(key: str) -> str | None:
    """What the schema declares for ``key``, in words."""
    node: Any = CRMConfig
    for part in key.split("."):
        hints = {f.name: f for f in dataclasses.fields(node)} if dataclasses.is_dataclass(node) else {}
        if part not in hints:
            return None
        f = hints[part]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        node = default if dataclasses.is_dataclass(default) else f
    if dataclasses.is_dataclass(node):  # `market.spend=3`: a whole section replaced by a value
        return "a section with the keys " + ", ".join(g.name for g in dataclasses.fields(node))
    if not isinstance(node, dataclasses.Field):
        return None
    words = {"int": "a whole number", "float": "a number", "bool": "true or false",
             "str": "a string", "str | None": "a path or null",
             "list[str]": "a list of names in brackets, e.g. [a,b]"}
    base = words.get(str(node.type), f"a value of type {node.type}")
    constraint = node.metadata.get("constraint")
    return constraint.describe() if constraint else base
