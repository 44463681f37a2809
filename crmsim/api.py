"""The public API: compose a config, run it, get a Result."""

from __future__ import annotations

from omegaconf import DictConfig

from .compose import (  # noqa: F401 (the public names of composing a config, re-exported)
    _composition_error,
    _hydra_context,
    check_inputs,
    config_dir,
    config_groups,
    group_options,
    load_config,
)
from .replicates import Replicates, simulate_replicates  # noqa: F401 (public: many seeds on a pool)
from .result import Result
from .running import checked, run_checked


def simulate(cfg: DictConfig, progress: bool = False) -> Result:
    """Run one simulation of ``cfg`` (from ``load_config``) and return its ``Result``."""
    return run_checked(*checked(cfg), progress)
