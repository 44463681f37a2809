"""crmsim: simulate customer relationships and compare CRM strategies.

    >>> import crmsim
    >>> cfg = crmsim.load_config(["market.n_people=2000", "sim.steps=52"])
    >>> result = crmsim.simulate(cfg)
    >>> result.summary["npv_profit"]
"""

from ._version import __version__
from .analysis import compare
from .api import load_config, simulate
from .errors import ConfigError
from .model import CRMModel
from .result import Result

__all__ = ["CRMModel", "ConfigError", "Result", "__version__", "compare", "load_config", "simulate"]
