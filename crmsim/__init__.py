"""crmsim: simulate customer relationships and compare CRM strategies.

    >>> import crmsim
    >>> cfg = crmsim.load_config(["market.n_people=2000", "sim.steps=52"])
    >>> result = crmsim.simulate(cfg)
    >>> result.summary["npv_profit"]
"""

__version__ = "0.1.0"

from .analysis import compare  # noqa: E402
from .api import load_config, simulate  # noqa: E402
from .errors import ConfigError  # noqa: E402
from .model import CRMModel  # noqa: E402
from .result import Result  # noqa: E402

__all__ = ["CRMModel", "ConfigError", "Result", "__version__", "compare", "load_config", "simulate"]
