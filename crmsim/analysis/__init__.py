"""Analysis of many runs: paired comparisons now; sweep collection, fits and plots build on it."""

from .compare import compare
from .stats import paired_differences

__all__ = ["compare", "paired_differences"]
