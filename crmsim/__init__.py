"""crmsim: simulate customer relationships and compare CRM strategies.

    >>> import crmsim
    >>> cfg = crmsim.load_config(["market.n_people=2000", "sim.steps=52"])
    >>> result = crmsim.simulate(cfg)
    >>> result.summary["npv_profit"]
"""

# Mesa first: at import it names its loggers by walking the call stack and searching
# sys.modules (mesa.mesa_logging), which costs ~1 s of CPU once numpy, pandas and scipy are
# loaded and ~0.1 s before; every process of a sweep imports crmsim.
import mesa  # noqa: F401, I001

from ._version import __version__
from .analysis import compare
from .api import load_config, simulate
from .errors import ConfigError
from .model import CRMModel
from .replicates import Replicates, simulate_replicates
from .result import Result

__all__ = ["CRMModel", "ConfigError", "Replicates", "Result", "__version__", "compare", "load_config",
           "simulate", "simulate_replicates"]
