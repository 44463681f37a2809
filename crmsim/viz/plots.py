"""Matplotlib plots of runs, comparisons and the word-of-mouth network.

Every function draws on ``ax`` when given one (the dashboard passes axes of a ``Figure`` it owns,
because pyplot is not thread-safe inside a server) and otherwise on a new pyplot figure, which is
what notebooks display. Nothing here needs a display: the functions work under the Agg backend.
"""

from __future__ import annotations

import difflib
import weakref
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from scipy.sparse.csgraph import breadth_first_order

from .. import formatting as fmt
from .. import metrics
from ..population import ACTIVE, LAPSED, OUTSIDE, PROSPECT, STATUS_NAMES, TERMINATED
from ..result import Result

STATUS_COLORS = {
    PROSPECT: "#c7c7c7",
    ACTIVE: "#2ca02c",
    LAPSED: "#ff7f0e",
    TERMINATED: "#d62728",
    OUTSIDE: "#f0f0f0",
}
COLOR_BY = ("status", "satisfaction", "sentiment")
# Satisfaction and sentiment share one diverging scale: red unhappy, green happy.
DIVERGING = "RdYlGn"


def _new_ax(ax: Axes | None, figsize: tuple[float, float] = (7, 4)) -> Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _frames(data) -> dict[str, pd.DataFrame]:
    """``{label: timeseries}`` from a Result, a DataFrame, or a mapping of either."""
    if isinstance(data, Result | pd.DataFrame):
        data = {"": data}
    if not isinstance(data, Mapping) or not data:
        raise TypeError("expected a Result, a timeseries DataFrame, or a non-empty mapping "
                        f"{{label: Result or DataFrame}}; got {type(data).__name__}")
    out = {}
    for label, item in data.items():
        df = item.timeseries if isinstance(item, Result) else item
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"{label!r}: expected a Result or a DataFrame, got {type(df).__name__}")
        out[str(label)] = df
    return out


def _check_columns(columns: Sequence[str], df: pd.DataFrame) -> None:
    for col in columns:
        if col not in df.columns:
            close = difflib.get_close_matches(col, list(df.columns), n=3)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise ValueError(f"Unknown time-series column {col!r}. Allowed: the columns defined in "
                             f"crmsim.metrics.TIMESERIES, e.g. n_active, revenue, nps.{hint}")


def _period_days(data, given: float | None) -> float | None:
    """The step length in days: as given, else the Results' ``sim.period_days`` if they agree.
    ``data`` has passed ``_frames``."""
    if given is not None:
        return float(given)
    items = [data] if isinstance(data, Result | pd.DataFrame) else list(data.values())
    try:
        days = {float(r.config.sim.period_days) for r in items}
    except AttributeError:   # a bare DataFrame, or a Result without its config
        return None
    return days.pop() if len(days) == 1 else None


def plot_timeseries(data, columns: str | Sequence[str] = "n_active", ax: Axes | None = None,
                    period_days: float | None = None, **line_kw) -> Axes:
    """Plot time-series columns against time.

    ``data`` is a ``Result``, a ``Result.timeseries`` DataFrame, or a mapping ``{label: either}``
    to overlay several runs (each line is labelled with its key). The time axis is in weeks,
    months or years when the step length is known (``period_days``, or the Results' own
    ``sim.period_days``), else in steps. Returns the axes.
    """
    frames = _frames(data)
    days = _period_days(data, period_days)
    cols = [columns] if isinstance(columns, str) else list(columns)
    ax = _new_ax(ax)
    span = max(int(df["step"].max()) if "step" in df.columns and len(df) else len(df)
               for df in frames.values())
    unit = fmt.time_unit(span * days) if days else None
    for label, df in frames.items():
        _check_columns(cols, df)
        x = df["step"].to_numpy() if "step" in df.columns else np.arange(len(df))
        if unit:
            x = fmt.time_values(x, days, unit)
        for col in cols:
            name = " · ".join(p for p in (label, col if len(cols) > 1 else "") if p)
            ax.plot(x, df[col], label=name or col, **line_kw)
    if unit:
        fmt.set_time_axis(ax, unit)
    else:
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fmt.format_axis(ax.yaxis)
    if len(cols) == 1:
        ax.set_ylabel(fmt.axis_label(cols[0]))
        ax.set_title(metrics.TIMESERIES.get(cols[0], cols[0]), fontsize="medium")
    if len(frames) > 1 or len(cols) > 1:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def plot_panels(data, columns: Sequence[str], ncols: int = 2,
                panel_size: tuple[float, float] = (4.5, 2.8),
                period_days: float | None = None) -> Figure:
    """One small panel per column (each with its own scale); ``data`` as in ``plot_timeseries``."""
    cols = list(columns)
    nrows = -(-len(cols) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
                             squeeze=False, sharex=True, layout="constrained")
    for i, (ax, col) in enumerate(zip(axes.flat, cols, strict=False)):
        plot_timeseries(data, col, ax=ax, period_days=period_days)
        # With shared x axes only the lowest panel of each column needs the label.
        if i + ncols < len(cols):
            ax.set_xlabel("")
    for ax in axes.flat[len(cols):]:
        ax.set_visible(False)
    return fig


def plot_compare(table: pd.DataFrame, kpi: str, ax: Axes | None = None, what: str = "diff",
                 show_unpaired: bool = True) -> Axes:
    """Variants side by side on one KPI, from the tidy table of ``crmsim.compare``.

    ``what="diff"`` shows each variant's paired difference to the baseline with its interval
    (the baseline sits at 0); ``show_unpaired`` adds the unpaired (Welch) interval as a faint bar,
    to show how much the common random numbers narrow it. ``what="mean"`` shows each variant's
    mean with its interval across seeds.
    """
    if what not in ("diff", "mean"):
        raise ValueError(f"Invalid value for 'what': {what!r}. Allowed: 'diff' or 'mean'.")
    rows = table[table["kpi"] == kpi]
    if rows.empty:
        raise ValueError(f"KPI {kpi!r} is not in the table. Allowed: one of "
                         f"{', '.join(sorted(set(table['kpi'])))}.")
    ax = _new_ax(ax, figsize=(7, 0.6 * len(rows) + 1.5))
    # shares (retention) in percent, their differences in percentage points
    rows = rows.copy()
    numeric = [c for c in ("mean", "ci_low", "ci_high", "diff", "diff_low", "diff_high",
                           "unpaired_low", "unpaired_high") if c in rows.columns]
    rows[numeric] = rows[numeric] * fmt.scale(kpi)
    y = np.arange(len(rows))[::-1]
    names = rows["variant"].astype(str).tolist()
    if what == "diff":
        centre, lo, hi = rows["diff"], rows["diff_low"], rows["diff_high"]
        is_base = (rows["diff"] == 0) & (rows["diff_low"] == 0) & (rows["diff_high"] == 0)
        names = [f"{n} (baseline)" if b and "baseline" not in n else n
                 for n, b in zip(names, is_base, strict=True)]
        if show_unpaired and {"unpaired_low", "unpaired_high"} <= set(rows.columns):
            ax.hlines(y, rows["unpaired_low"], rows["unpaired_high"], color="tab:blue", alpha=0.2,
                      linewidth=8, label="unpaired interval")
        ax.axvline(0, color="0.4", linewidth=1)
        ax.set_xlabel(f"{fmt.axis_label(kpi, diff=True)}: difference to baseline")
    else:
        centre, lo, hi = rows["mean"], rows["ci_low"], rows["ci_high"]
        ax.set_xlabel(fmt.axis_label(kpi))
    err = np.vstack([centre - lo, hi - centre])
    ax.errorbar(centre, y, xerr=np.nan_to_num(err), fmt="o", color="tab:blue", capsize=4,
                label="paired interval" if what == "diff" else "interval across seeds")
    ax.set_yticks(y, names)
    ax.set_title(metrics.SUMMARY.get(kpi, kpi), fontsize="medium")
    fmt.format_axis(ax.xaxis, nbins=5)
    ax.legend(fontsize="small", loc="best")
    ax.grid(axis="x", alpha=0.3)
    return ax


# Layouts are expensive (spring layout is O(n^2) per iteration) and the network never changes
# during a run, so each network's layout is computed once and reused while it is alive.
_LAYOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def network_sample(network, max_nodes: int) -> np.ndarray:
    """The people drawn for a network: everyone when it is small, else a connected snowball.

    The snowball is the first ``max_nodes`` people reached breadth-first from the best-connected
    person, so the picture shows a real neighbourhood rather than a scatter of unlinked dots.
    """
    if network.strong is None:
        raise ValueError(f"the {network.kind!r} network is well-mixed and has no edges to draw; "
                         "use network=small_world, scale_free or random")
    if network.n <= max_nodes:
        return np.arange(network.n)
    start = int(np.argmax(network.degree))
    order = breadth_first_order(network.strong, start, directed=False, return_predecessors=False)
    if order.size < max_nodes:
        rest = np.setdiff1d(np.arange(network.n), order, assume_unique=False)
        order = np.concatenate([order, rest])
    return np.sort(order[:max_nodes])


def network_layout(network, max_nodes: int) -> tuple[np.ndarray, nx.Graph, np.ndarray]:
    """``(nodes, graph, positions)`` for a network, cached per network object."""
    nodes, graph, xy, _ = _layout(network, max_nodes)
    return nodes, graph, xy


def _layout(network, max_nodes: int):
    """``(nodes, graph, positions, edge segments)``, cached per network object."""
    cached = _LAYOUTS.get(network)
    if cached is not None and cached[0] == max_nodes:
        return cached[1:]
    nodes = network_sample(network, max_nodes)
    sub = network.strong[nodes][:, nodes]
    graph = nx.from_scipy_sparse_array(sub)
    pos = nx.spring_layout(graph, seed=0, iterations=50)
    xy = np.array([pos[i] for i in range(len(nodes))]).reshape(len(nodes), 2)
    edges = np.array(graph.edges(), dtype=int).reshape(-1, 2)
    segments = xy[edges]
    _LAYOUTS[network] = (max_nodes, nodes, graph, xy, segments)
    return nodes, graph, xy, segments


def plot_network(model, color_by: str = "status", max_nodes: int = 300, ax: Axes | None = None,
                 node_size: float = 25.0, vmax: float = 1.0, colorbar: bool = True,
                 legend_size: str | float = "small", edges: bool = True) -> Axes:
    """Draw the strong ties of ``model.network`` with people coloured by their state.

    ``color_by``: ``"status"`` (prospect, active, lapsed, terminated; outside the market in
    an open market), ``"satisfaction"``
    (people who were ever customers; others grey) or ``"sentiment"`` (everyone: what they have
    heard). Satisfaction and sentiment are drawn on -vmax..vmax (default the full -1..1 scale).
    At most ``max_nodes`` people are drawn (a connected neighbourhood of a larger network).
    ``node_size`` and ``legend_size`` scale the picture up for a projector; ``edges=False``
    leaves the ties out (the dashboard draws them once per run).
    """
    if color_by not in COLOR_BY:
        raise ValueError(f"Invalid value for 'color_by': {color_by!r}. Allowed: one of "
                         f"{', '.join(COLOR_BY)}.")
    if max_nodes < 1:
        raise ValueError(f"Invalid value for 'max_nodes': {max_nodes!r}. Allowed: an integer >= 1.")
    nodes, _, xy, segments = _layout(model.network, max_nodes)
    pop = model.population
    ax = _new_ax(ax, figsize=(6, 6))
    if edges:
        ax.add_collection(LineCollection(segments, colors="k", alpha=0.15, linewidths=0.6, zorder=1))
    status = pop.status[nodes]
    if color_by == "status":
        colors = [STATUS_COLORS[s] for s in status.tolist()]
        ax.scatter(xy[:, 0], xy[:, 1], c=colors, s=node_size, edgecolors="white", linewidths=0.4,
                   zorder=2)
        handles = [Line2D([], [], marker="o", linestyle="", color=STATUS_COLORS[k],
                          label=f"{STATUS_NAMES[k]} ({int(np.count_nonzero(status == k))})")
                   for k in STATUS_COLORS if k != OUTSIDE or (status == OUTSIDE).any()]
        ax.legend(handles=handles, fontsize=legend_size, loc="upper right", framealpha=0.8,
                  markerscale=1.5)
    else:
        values = getattr(pop, color_by)[nodes]
        shown = pop.ever_customer[nodes] if color_by == "satisfaction" else np.ones(len(nodes), bool)
        ax.scatter(xy[~shown, 0], xy[~shown, 1], c=STATUS_COLORS[PROSPECT], s=node_size * 0.6,
                   zorder=2, label="never a customer")
        sc = ax.scatter(xy[shown, 0], xy[shown, 1], c=values[shown], cmap=DIVERGING, vmin=-vmax,
                        vmax=vmax, s=node_size, edgecolors="0.3", linewidths=0.3, zorder=3)
        if colorbar:
            bar = ax.figure.colorbar(sc, ax=ax, shrink=0.7)
            bar.set_label(color_by, size=legend_size)
        if (~shown).any():
            ax.legend(fontsize=legend_size, loc="upper right", framealpha=0.8, markerscale=1.5)
    ax.set_title(f"{len(nodes)} of {pop.n} people, step {model.steps}: {color_by}",
                 fontsize="medium")
    ax.set_axis_off()
    return ax
