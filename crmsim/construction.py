"""How a ``CRMModel``'s arguments become one validated config: crmsim's way and Mesa's way.

crmsim's way is a composed config (``crmsim.load_config``), a typed ``CRMConfig`` or a list of
Hydra overrides. Mesa's way (``mesa.batch_run``, SolaraViz, ``Model(rng=...)``) is keyword
parameters and ``rng``; here a keyword parameter is a config key, dotted or not, exactly as on
the command line::

    CRMModel(**{"policy": "qci", "market.n_people": 500}, rng=3)
    # the same model as CRMModel(["policy=qci", "market.n_people=500", "seed=3"])

The seed follows Mesa's conventions: ``rng`` (or the config key ``seed``, Mesa's older name) is
the seed; ``rng=None``, what ``mesa.batch_run`` passes for a replication without a seed, draws a
fresh one from the operating system, as every ``mesa.Model`` does. A model built from keywords
alone without either draws one too; a config (or list of overrides) carries its own seed. A drawn
seed is kept in ``model.cfg.seed``, so the run can be replayed.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from .compose import load_config
from .config import CRMConfig
from .errors import ConfigError
from .policies import Policy
from .validation import validate

# "argument not given", as opposed to None, which Mesa passes to mean "no seed: draw one".
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "<not given>"})()

# Config groups whose option a keyword can choose, e.g. policy="qci" (as `policy=qci`).
GROUPS = ("sim", "market", "network", "wom", "adoption", "firm", "policy")
SEED_ALLOWED = "an integer >= 0, a numpy Generator, or None (draw a fresh seed)"


def fresh_seed() -> int:
    """A seed from the operating system's entropy, as ``mesa.Model(rng=None)`` draws one."""
    return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))


def _as_seed(key: str, value: Any) -> int:
    if isinstance(value, np.random.Generator):
        return int(value.integers(2**63))
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise ConfigError(key, value, SEED_ALLOWED)


def _seed(cfg_given: bool, rng: Any, seed: Any) -> int | None:
    """The seed the run uses, or None to keep the config's."""
    given = {k: v for k, v in (("rng", rng), ("seed", seed)) if v is not UNSET and v is not None}
    if len(given) == 2 and _as_seed("rng", rng) != _as_seed("seed", seed):
        raise ConfigError("rng", rng, "one seed: rng and seed name the same thing, pass one of them",
                          f"(seed={seed!r} was given as well)")
    if given:
        key, value = next(iter(given.items()))
        return _as_seed(key, value)
    if rng is None or seed is None or not cfg_given:
        return fresh_seed()
    return None


def _override(key: str, value: Any) -> str:
    """``key=value`` as Hydra's override grammar reads it."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, Sequence):
        text = "[" + ",".join(_override("x", v)[2:] for v in value) + "]"
    else:
        text = repr(value.item() if isinstance(value, np.generic) else value)
    return f"{key}={text}"


def apply_params(cfg: DictConfig, params: Mapping[str, Any]) -> DictConfig:
    """``params`` applied to a copy of a composed config (a group option brings its file)."""
    cfg = copy.deepcopy(cfg)
    for key, value in params.items():
        if key in GROUPS and isinstance(value, str):
            if value != cfg[key].get("name", None):
                cfg[key] = load_config([f"{key}={value}"])[key]
        else:
            OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


def model_config(cfg: Any, policy: Any, rng: Any, params: dict[str, Any]) -> tuple[CRMConfig, Any]:
    """``(typed config, policy object or None)`` from ``CRMModel``'s arguments.

    ``cfg``: None (the defaults), a composed ``DictConfig``, a typed ``CRMConfig`` or a list of
    Hydra overrides. ``policy``: a ``Policy`` object, or a policy's config name (a keyword like
    any other). ``params``: config keys and values. Raises ``ConfigError`` for bad input.
    """
    params = dict(params)
    if policy is not None and not isinstance(policy, Policy):
        params["policy"] = policy
        policy = None
    seed = _seed(cfg is not None, rng, params.pop("seed", UNSET))
    if seed is not None:
        params["seed"] = seed
    if isinstance(cfg, CRMConfig) and not params:
        return cfg, policy
    if cfg is None or (isinstance(cfg, Sequence) and not isinstance(cfg, str)):
        overrides = [*(cfg or ()), *(_override(k, v) for k, v in params.items())]
        return validate(load_config(overrides)), policy
    if isinstance(cfg, CRMConfig):
        cfg = OmegaConf.structured(cfg)
    if not isinstance(cfg, DictConfig):
        raise ConfigError("cfg", cfg, "a config from crmsim.load_config, a CRMConfig, a list of "
                          "overrides such as ['policy=qci'], or None (the defaults)")
    return validate(apply_params(cfg, params) if params else cfg), policy
