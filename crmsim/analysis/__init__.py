"""Analysis of many runs: paired comparisons now; sweep collection, fits and plots build on it."""

from .stats import paired_differences

__all__ = ["paired_differences"]
