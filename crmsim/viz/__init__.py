"""Plots and the interactive dashboard.

The plot helpers (matplotlib, headless-safe) are imported eagerly; the dashboard imports Mesa's
Solara visualisation, which is heavier, only when first used.
"""

from __future__ import annotations

import importlib

from .plots import plot_compare, plot_network, plot_panels, plot_timeseries

__all__ = ["DashboardModel", "dashboard", "plot_compare", "plot_network", "plot_panels",
           "plot_timeseries"]


def __getattr__(name: str):
    if name in ("DashboardModel", "dashboard"):
        page = importlib.import_module(".page", __name__)
        return getattr(page, name)
    raise AttributeError(f"module 'crmsim.viz' has no attribute {name!r}")
