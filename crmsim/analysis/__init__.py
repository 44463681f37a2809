"""Analysis of many runs: paired comparisons, collecting saved runs into one table, reports.

``collect(DIR)`` reads every run below a directory into a tidy table (one row per job);
``crmsim.analysis.report.build(DIR)`` is ``crmsim report DIR``.
"""

from .collect import collect
from .compare import compare, experiment_variants
from .stats import paired_differences

__all__ = ["collect", "compare", "experiment_variants", "paired_differences"]
