"""The report's plots (matplotlib, written as PNG; no display needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml

# Figures are built without pyplot, so writing a report never switches the backend of a
# notebook or dashboard that imported crmsim (and needs no display on a cluster node).
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from .. import formatting as fmt
from .. import layout

# KPIs over time: (column of timeseries.parquet, title, cumulative?, first step). Flows start at
# step 1: step 0 is the initial state, before anything was sold.
SERIES = (("n_active", "customers", False, 0), ("revenue", "revenue per step", False, 1),
          ("profit_discounted", "NPV of profit so far", True, 0))
WEEK = 7.0   # the step of a run whose config cannot be read (sim/weekly.yaml)
BAND = (0.1, 0.9)   # the middle 80% of seeds


def _subplots(*args, figsize=None, layout=None, constrained_layout=False, **kwargs):
    """``pyplot.subplots`` for a figure that belongs to no pyplot state."""
    fig = Figure(figsize=figsize, layout="constrained" if constrained_layout else layout)
    return fig, fig.subplots(*args, **kwargs)


def _shown(cmp, limit: int) -> list[tuple[str, str]]:
    """(stratum, variant) pairs to draw: the baseline and the best, at most ``limit``."""
    order = list(dict.fromkeys(zip(cmp.table["stratum"], cmp.table["variant"], strict=True)))
    return order[:limit]


def _name(stratum: str, variant: str) -> str:
    return f"{stratum}: {variant}" if stratum else variant


class _ConfigLoader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):
    """libyaml's safe loader, refusing a key given twice as ``OmegaConf.load`` does."""

    def construct_mapping(self, node, deep=False):
        keys = [k.value for k, _ in node.value if k.tag == yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG]
        if len(keys) != len(set(keys)):
            raise yaml.constructor.ConstructorError(None, None, "duplicate key", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _period_days(root: Path, run: str) -> float:
    """The run's step length in days, from the config it saved."""
    path = root / run / layout.CONFIG
    try:
        # A saved config is resolved, so its number reads the same with OmegaConf's YAML loader
        # and with libyaml (a fifteenth of the CPU); OmegaConf reads anything else.
        with open(path, encoding="utf-8") as f:
            days = yaml.load(f, Loader=_ConfigLoader)["sim"]["period_days"]
        if isinstance(days, int | float) and not isinstance(days, bool):
            return float(days)
    except Exception:  # OmegaConf says below what it makes of the file
        pass
    try:
        return float(OmegaConf.load(path).sim.period_days)
    except Exception:  # an unreadable config: the default weekly step
        return WEEK


def _side_by_side(runs: list[dict], col: str) -> pd.DataFrame:
    """Column ``col`` of each run's series, one column a run, rows aligned by step."""
    return pd.concat([pd.Series(r[col], index=pd.Index(r["step"], name="step"), name=col)
                      for r in runs], axis=1)


def timeseries(root: Path, cmp, series: dict[str, dict], path: Path, limit: int) -> list[str]:
    """``series``: each run's step and ``SERIES`` columns, {column: values} (a run without
    them is left out)."""
    runs = cmp.runs
    cols = [c for c, *_ in SERIES]
    n = len(_shown(cmp, limit))
    fig, axes = _subplots(1, len(SERIES), figsize=(5 * len(SERIES), 4 + 0.25 * math.ceil(n / 3)),
                             layout="constrained")
    curves = []   # (label, step length in days, {column: runs side by side})
    for stratum, variant in _shown(cmp, limit):
        group = runs[(runs["stratum"] == stratum) & (runs["variant"] == variant)]
        frames = [series[run] for run in group["run"] if run in series]
        if frames:
            days = _period_days(root, group["run"].iloc[0])
            curves.append((_name(stratum, variant), days,
                           {col: _side_by_side(frames, col) for col in cols}))
    if not curves:
        return []
    # One time unit for every variant (they may differ in their step length).
    unit = fmt.time_unit(max(days * wide.index.max() for _, days, d in curves for wide in d.values()))
    same_step = len({days for _, days, _ in curves}) == 1
    for name, days, data in curves:
        for ax, (col, title, cumulative, first) in zip(axes, SERIES, strict=True):
            wide = data[col].cumsum() if cumulative else data[col]
            wide = wide[wide.index >= first]
            x = fmt.time_values(wide.index.to_numpy(), days, unit)
            line = ax.plot(x, wide.mean(axis=1), label=name, lw=1.6)[0]
            if wide.shape[1] > 1:
                ax.fill_between(x, wide.quantile(BAND[0], axis=1), wide.quantile(BAND[1], axis=1),
                                color=line.get_color(), alpha=0.15, lw=0)
            ax.set_title(title.replace("per step", fmt.per_step(days)) if same_step else title)
            ax.set_ylabel(fmt.axis_label(col))
            fmt.set_time_axis(ax, unit)
            fmt.format_axis(ax.yaxis)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize="small")
    fig.suptitle("Mean over seeds; band: middle 80% of seeds")
    fig.savefig(path, dpi=110)
    return [path.name]


def differences(cmp, path: Path, kpis: dict[str, str], limit: int) -> list[str]:
    """``kpis``: column -> label (shares are drawn in percentage points)."""
    t = cmp.table[(cmp.table["variant"] != cmp.baseline) & cmp.table["kpi"].isin(kpis)]
    shown = [p for p in _shown(cmp, limit + 1) if p[1] != cmp.baseline][:limit]
    if t.empty or not shown:
        return []
    fig, axes = _subplots(1, len(kpis), figsize=(4.5 * len(kpis), 0.5 * len(shown) + 1.8),
                             constrained_layout=True, squeeze=False)
    labels = [_name(s, v) for s, v in shown]
    y = np.arange(len(shown))[::-1]
    for ax, kpi in zip(axes[0], kpis, strict=True):
        rows = t[t["kpi"] == kpi].set_index(["stratum", "variant"])
        k = fmt.scale(kpi)

        def col(name: str, rows=rows, k=k) -> np.ndarray:
            return k * np.array([rows.loc[p, name] if p in rows.index else math.nan for p in shown],
                                dtype=float)

        d, lo, hi = col("diff"), col("diff_low"), col("diff_high")
        for yi, di, a, b in zip(y, d, lo, hi, strict=True):
            color = "tab:green" if a > 0 else "tab:red" if b < 0 else "tab:gray"
            err = [[np.nan_to_num(di - a)], [np.nan_to_num(b - di)]]
            ax.errorbar([di], [yi], xerr=err, fmt="o", color=color, capsize=3)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, labels if ax is axes[0][0] else [""] * len(y))
        ax.set_title(f"Δ {kpis[kpi]}")
        ax.set_xlabel(fmt.axis_label(kpi, diff=True))
        fmt.format_axis(ax.xaxis, nbins=4)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Paired difference to {cmp.baseline_text} (95% interval)")
    fig.savefig(path, dpi=110)
    return [path.name]


def _grid(ax, grid: pd.DataFrame, title: str, fig, label: str, diverging: bool) -> None:
    values = grid.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if diverging:
        span = float(np.abs(finite).max()) if finite.size else 1.0
        im = ax.imshow(values, cmap="RdBu", vmin=-span, vmax=span, aspect="auto")
    else:
        im = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [str(x) for x in grid.columns], rotation=30, ha="right")
    ax.set_yticks(range(grid.shape[0]), [str(x) for x in grid.index])
    ax.set_xlabel(grid.columns.name)
    ax.set_ylabel(grid.index.name)
    ax.set_title(title)
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = values[i, j]
            if np.isfinite(v):
                dark = (abs(v) > 0.6 * max(abs(lo), abs(hi))) if diverging else v < (lo + hi) / 2
                ax.text(j, i, fmt.number(v), ha="center", va="center",
                        fontsize="small", color="white" if dark else "black")
    bar = fig.colorbar(im, ax=ax, label=label, shrink=0.8)
    fmt.format_axis(bar.ax.yaxis)


def heatmap(cmp, path: Path) -> list[str]:
    """Two axes: the mean objective over them; or, when the baseline is compared within a
    two-axis grid of strata, the paired difference of each variant over that grid."""
    runs, obj = cmp.runs, cmp.objective
    if len(cmp.variant_keys) == 2:
        a, b = cmp.variant_keys
        grid = runs.groupby([a, b])[obj].mean().unstack(b)
        if min(grid.shape) < 2:
            return []
        fig, ax = _subplots(figsize=(1.2 * grid.shape[1] + 3, 0.7 * grid.shape[0] + 2),
                               constrained_layout=True)
        _grid(ax, grid, f"mean {fmt.label(obj)}", fig, f"mean {fmt.axis_label(obj)}", diverging=False)
    elif len(cmp.strata_keys) == 2:
        a, b = cmp.strata_keys
        where = runs.drop_duplicates("stratum").set_index("stratum")[[a, b]]
        t = cmp.table[(cmp.table["kpi"] == obj) & (cmp.table["variant"] != cmp.baseline)]
        variants = list(dict.fromkeys(t["variant"]))
        if not variants:
            return []
        cols = min(3, len(variants))
        rows = math.ceil(len(variants) / cols)
        fig, axes = _subplots(rows, cols, figsize=(5 * cols, 4 * rows), constrained_layout=True,
                                 squeeze=False)
        for ax, variant in zip(axes.flat, variants, strict=False):
            d = t[t["variant"] == variant].join(where, on="stratum")
            grid = d.pivot_table(index=a, columns=b, values="diff")
            _grid(ax, grid, f"{variant} - {cmp.baseline}", fig, f"paired {fmt.axis_label(obj, diff=True)}",
                  diverging=True)
        for ax in list(axes.flat)[len(variants):]:
            ax.axis("off")
    else:
        return []
    fig.savefig(path, dpi=110)
    return [path.name]


def sensitivity(ranking: pd.DataFrame, path: Path, kpi: str) -> list[str]:
    score, conf = ("mu_star", "mu_star_conf") if "mu_star" in ranking else ("ST", "ST_conf")
    fig, ax = _subplots(figsize=(7, 0.45 * len(ranking) + 1.5), constrained_layout=True)
    y = np.arange(len(ranking))[::-1]
    ax.barh(y, ranking[score], xerr=ranking[conf], color="tab:blue", capsize=3)
    ax.set_yticks(y, ranking["parameter"])
    ax.set_xlabel(f"{score} ({fmt.axis_label(kpi)})")
    fmt.format_axis(ax.xaxis)
    ax.set_title(f"What moves {fmt.label(kpi)} most")
    fig.savefig(path, dpi=110)
    return [path.name]


def search(trials: pd.DataFrame, path: Path, kpi: str) -> list[str]:
    """An optimiser's history: each trial's objective and the best so far."""
    fig, ax = _subplots(figsize=(7, 4), layout="constrained")
    x = np.arange(len(trials)) if trials["trial"].isna().any() else trials["trial"].to_numpy()
    y = trials[kpi].to_numpy(dtype=float)
    ax.scatter(x, y, s=18, label="trial")
    ax.plot(x, np.fmax.accumulate(y), color="tab:green", drawstyle="steps-post", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(fmt.axis_label(kpi))
    fmt.format_axis(ax.yaxis)
    ax.legend()
    fig.savefig(path, dpi=110)
    return [path.name]
