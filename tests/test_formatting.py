"""One formatting module for the terminal table, report.md and the plots; labels and units of
every KPI in metrics.py; plots a strategist can paste (readable ticks, pp, time in weeks or
months)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from crmsim import formatting as fmt
from crmsim import metrics
from crmsim.analysis import plots, report

matplotlib.use("Agg")

UNITS = {"money", "share", "count", "score", "scale", "step", "factor"}


def test_every_kpi_has_a_label_and_a_known_unit():
    kpis = set(metrics.TIMESERIES) | set(metrics.SUMMARY)
    assert set(metrics.LABELS) == kpis
    assert {u for _, u in metrics.LABELS.values()} <= UNITS
    assert all(label.strip() for label, _ in metrics.LABELS.values())


def test_values_and_differences():
    assert fmt.value("npv_profit", -1234567.8) == "-1,234,568"
    assert fmt.value("retention_rate_annual", 0.8417) == "84.2%"
    assert fmt.value("nps_final", 12.345) == "12.3"
    assert fmt.value("npv_profit", math.nan) == "n/a"
    assert fmt.diff("npv_profit", 85933.2, 4084.1, 167782.0) == "+85,933 [+4,084, +167,782]"
    assert fmt.diff("retention_rate_annual", 0.0348, 0.0236, 0.0459) == "+3.48 pp [+2.36, +4.59]"
    assert fmt.diff("revenue_total", 5.0, math.nan, math.nan) == "+5.00"
    # the terminal table and report.md write numbers through this module
    assert report.fmt_value is fmt.value and report.fmt_diff is fmt.diff


def test_axis_labels_and_ticks():
    assert fmt.axis_label("npv_profit") == "NPV profit (currency units)"
    assert fmt.axis_label("retention_rate_annual", diff=True) == "Δ retention (percentage points)"
    assert fmt.axis_label("retention_rate_annual") == "retention (%)"
    assert fmt.axis_label("n_active") == "customers"
    assert fmt.tick(-200000.0) == "\N{MINUS SIGN}200,000" and fmt.tick(2.5) == "2.5"
    assert fmt.tick(0.0) == "0" and fmt.tick(0.05) == "0.05"


@pytest.mark.parametrize("days, unit", [(10, "days"), (12 * 7, "weeks"), (52 * 7, "months"),
                                        (104 * 7, "months"), (260 * 7, "years")])
def test_time_unit_reads_best_for_the_span(days, unit):
    assert fmt.time_unit(days) == unit


def test_time_values_convert_steps():
    steps = np.arange(5)
    np.testing.assert_array_equal(fmt.time_values(steps, 7, "weeks"), steps)
    np.testing.assert_allclose(fmt.time_values(np.array([12]), 365.25 / 12, "months"), [12])
    assert fmt.per_step(7) == "per week" and fmt.per_step(30) == "per month"
    assert fmt.per_step(14) == "per step (14 days)"


def _overlapping(fig, ax) -> list[tuple[str, str]]:
    """Pairs of visible tick labels on the x axis whose boxes intersect once drawn."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.get_xticklabels()
             if t.get_visible() and t.get_text()]
    lo, hi = ax.get_xlim()
    shown = [(t, b) for (t, b), x in zip(boxes, ax.get_xticks(), strict=False) if lo <= x <= hi]
    return [(a, b) for i, (a, ba) in enumerate(shown) for b, bb in shown[i + 1:] if ba.overlaps(bb)]


KPIS = {"npv_profit": "NPV profit", "retention_rate_annual": "retention", "revenue_total": "revenue"}
# long variant names (two swept keys) squeeze the first panel, as in a real two-axis sweep
VARIANTS = (("policy=transactional,firm.quality=0.6", 0.0), ("policy=qci,firm.quality=0.6", 1.0),
            ("policy=gartner,firm.quality=0.6", -0.4), ("policy=idic,firm.quality=0.6", -2.2))


def _comparison(scale_npv: float) -> SimpleNamespace:
    rows = []
    for variant, k in VARIANTS:
        rows += [("", variant, "npv_profit", k * scale_npv, (k - 1.5) * scale_npv, (k + 1.5) * scale_npv),
                 ("", variant, "retention_rate_annual", k * 0.012, k * 0.012 - 0.01, k * 0.012 + 0.01),
                 ("", variant, "revenue_total", 3 * k * scale_npv, (3 * k - 4) * scale_npv,
                  (3 * k + 4) * scale_npv)]
    table = pd.DataFrame(rows, columns=["stratum", "variant", "kpi", "diff", "diff_low", "diff_high"])
    return SimpleNamespace(table=table, baseline=VARIANTS[0][0], baseline_text=VARIANTS[0][0])


@pytest.mark.parametrize("scale_npv", [80_000.0, 150_000.0, 3_000_000.0])
def test_differences_plot_reads_on_a_slide(tmp_path, scale_npv):
    cmp = _comparison(scale_npv)
    made = plots.differences(cmp, tmp_path / "d.png", KPIS, 12)
    assert made == ["d.png"] and (tmp_path / "d.png").stat().st_size > 5_000
    # rebuild the figure to inspect it: the same function draws on a figure we keep
    figs = []
    orig = plots._subplots

    def keep(*a, **k):
        fig, axes = orig(*a, **k)
        figs.append((fig, axes))
        return fig, axes

    plots._subplots = keep
    try:
        plots.differences(cmp, tmp_path / "d2.png", KPIS, 12)
    finally:
        plots._subplots = orig
    fig, axes = figs[0]
    npv, ret, revenue = axes[0]
    assert [_overlapping(fig, ax) for ax in axes[0]] == [[], [], []]
    # money ticks with thousands separators
    assert all("," in t.get_text() or len(t.get_text().lstrip("\N{MINUS SIGN}")) <= 3
               for ax in (npv, revenue) for t in ax.get_xticklabels() if t.get_text())
    # retention differences in percentage points: qci's +0.012 is drawn at +1.2
    points = [c[0].get_xdata()[0] for c in ret.containers]
    assert points[0] == pytest.approx(1.2)
    assert ret.get_xlabel() == "Δ retention (percentage points)"
    assert npv.get_xlabel() == "Δ NPV profit (currency units)"
