"""Numbers as a reader wants them: one module for the terminal table, report.md, the plots and
the dashboard.

A KPI's label and unit come from ``crmsim.metrics.LABELS``. Money is written with thousands
separators (``-12,345``); a share (retention, a revenue share) in percent (``84.2%``), and the
difference of two shares in percentage points (``+1.30 pp``). Time axes are in weeks, months or
years, whichever reads best for the span, converted from steps with ``sim.period_days``.
"""

from __future__ import annotations

import math
from typing import Any

from . import metrics

# What a unit is called where a label needs it (a count needs none).
UNIT_TEXT = {"money": "currency units", "share": "%", "score": "points", "step": "steps"}
DAYS = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}
MINUS = "\N{MINUS SIGN}"


def unit(kpi: str) -> str:
    """``money``, ``share``, ``count``, ``score``, ``scale``, ``step``, ``factor``; ``number``
    for a column ``metrics.LABELS`` does not know."""
    return metrics.LABELS.get(kpi, (kpi, "number"))[1]


def label(kpi: str) -> str:
    return metrics.LABELS.get(kpi, (kpi, "number"))[0]


def axis_label(kpi: str, diff: bool = False) -> str:
    """``NPV profit (currency units)``; ``Δ retention (pp)`` for a difference of shares."""
    u = unit(kpi)
    text = UNIT_TEXT.get(u)
    if diff and u == "share":
        text = "percentage points"
    name = f"Δ {label(kpi)}" if diff else label(kpi)
    return f"{name} ({text})" if text else name


def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def number(x: float, signed: bool = False) -> str:
    """Thousands separators from 100 up, three significant digits below."""
    sign = "+" if signed else ""
    if abs(x) >= 100:
        return f"{x:{sign},.0f}"
    return f"{x:{sign},.3g}"


def value(kpi: str, x: float) -> str:
    """One KPI value: ``84.2%`` for a share, ``12,345`` for money and counts."""
    if _is_missing(x):
        return "n/a"
    if unit(kpi) == "share":
        return f"{100 * x:.1f}%"
    return number(x)


def diff(kpi: str, d: float, lo: float, hi: float) -> str:
    """``+1,234 [+1,000, +1,468]``; shares in percentage points (``+1.30 pp [...]``)."""
    if _is_missing(d):
        return "n/a"
    share = unit(kpi) == "share"
    if share:
        d, lo, hi = 100 * d, 100 * lo, 100 * hi
    scale = max(abs(d), abs(lo), abs(hi)) if not math.isnan(lo) else abs(d)
    digits = 0 if scale >= 100 else 2 if scale >= 0.1 or scale == 0 else 4

    def f(x: float) -> str:
        return f"{x:+,.{digits}f}"

    u = " pp" if share else ""
    return f"{f(d)}{u}" if math.isnan(lo) else f"{f(d)}{u} [{f(lo)}, {f(hi)}]"


def scale(kpi: str) -> float:
    """What a KPI's values (or differences) are multiplied by on a plot: 100 for shares."""
    return 100.0 if unit(kpi) == "share" else 1.0


def tick(x: float, _pos: Any = None) -> str:
    """A tick label: thousands separators, a true minus sign, no needless decimals."""
    if x == 0:
        return "0"
    text = f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.10g}" if abs(x) >= 1 else f"{x:.3g}"
    return text.replace("-", MINUS)


def format_axis(axis, nbins: int = 5) -> None:
    """Readable ticks on a matplotlib axis (``ax.xaxis`` or ``ax.yaxis``): at most ``nbins``
    round values, written by ``tick``."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]))
    axis.set_major_formatter(FuncFormatter(tick))


def time_unit(span_days: float) -> str:
    """The unit a time axis reads best in: weeks up to half a year, months up to three years,
    years beyond (days for spans under a fortnight)."""
    if span_days < 14:
        return "days"
    if span_days <= 183:
        return "weeks"
    if span_days <= 3 * 365.25:
        return "months"
    return "years"


def time_values(steps, period_days: float, unit_name: str):
    """Steps converted to ``unit_name`` (a key of ``DAYS``)."""
    return steps * (period_days / DAYS[unit_name])


def set_time_axis(ax, unit_name: str) -> None:
    """Label the x axis with the unit; months tick at multiples of 3 or 6 (quarters, halves)."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel(unit_name)
    format_axis(ax.xaxis, nbins=6)
    if unit_name == "months":
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 3, 6, 10]))


def per_step(period_days: float) -> str:
    """``per week`` for a 7-day step, ``per month`` for 28-31 days, else ``per step (N days)``."""
    names = {1: "per day", 7: "per week", 365: "per year"}
    if period_days in names:
        return names[period_days]
    if 28 <= period_days <= 31:
        return "per month"
    return f"per step ({period_days:g} days)"
