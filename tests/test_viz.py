"""The matplotlib helpers in crmsim.viz draw what they are given, headless."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from scipy.sparse.csgraph import connected_components  # noqa: E402

import crmsim  # noqa: E402
from crmsim import viz  # noqa: E402
from crmsim.viz.plots import STATUS_COLORS, network_sample  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def runs():
    base = ["market.n_people=400", "sim.steps=12"]
    return {"base": crmsim.simulate(crmsim.load_config(base)),
            "tell 40": crmsim.simulate(crmsim.load_config(base + ["wom.tell_negative=40"]))}


@pytest.fixture(scope="module")
def model():
    m = crmsim.CRMModel(crmsim.load_config(["market.n_people=250", "network=small_world"]))
    for _ in range(8):
        m.step()
    return m


def test_timeseries_draws_each_column_of_each_run(runs):
    ax = viz.plot_timeseries(runs, ["n_active", "churned"])
    assert len(ax.lines) == 4
    by_label = {line.get_label(): line for line in ax.lines}
    line = by_label["tell 40 · churned"]
    np.testing.assert_array_equal(line.get_ydata(), runs["tell 40"].timeseries["churned"])
    np.testing.assert_array_equal(line.get_xdata(), runs["tell 40"].timeseries["step"])
    assert ax.get_legend() is not None


def test_timeseries_accepts_a_result_or_a_frame_and_uses_given_axes(runs):
    fig, ax = plt.subplots()
    out = viz.plot_timeseries(runs["base"].timeseries, "revenue", ax=ax)
    assert out is ax and len(ax.lines) == 1
    assert ax.get_ylabel() == "revenue (currency units)" and ax.get_xlabel() == "step"
    viz.plot_timeseries(runs["base"], "revenue", ax=ax)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), ax.lines[1].get_ydata())


def test_timeseries_names_an_unknown_column(runs):
    with pytest.raises(ValueError, match=r"'n_activ'.*n_active"):
        viz.plot_timeseries(runs, "n_activ")
    with pytest.raises(TypeError, match="Result"):
        viz.plot_timeseries([1, 2, 3])


def test_panels_one_visible_axes_per_column(runs):
    fig = viz.plot_panels(runs, ["n_active", "revenue", "nps"], ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_ylabel() for ax in visible] == ["customers", "revenue (currency units)", "NPS (points)"]
    assert all(len(ax.lines) == 2 for ax in visible)


def _table() -> pd.DataFrame:
    rows = [("base", 100.0, 90.0, 110.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            ("more", 130.0, 118.0, 142.0, 30.0, 25.0, 35.0, 12.0, 48.0),
            ("less", 80.0, 70.0, 90.0, -20.0, -26.0, -14.0, -35.0, -5.0)]
    cols = ["variant", "mean", "ci_low", "ci_high", "diff", "diff_low", "diff_high",
            "unpaired_low", "unpaired_high"]
    table = pd.DataFrame(rows, columns=cols)
    table.insert(1, "kpi", "npv_profit")
    other = table.copy()
    other["kpi"] = "nps_final"
    return pd.concat([table, other], ignore_index=True)


def test_compare_places_each_variant_at_its_difference():
    ax = viz.plot_compare(_table(), "npv_profit")
    points, _, (bars,) = ax.containers[0]
    np.testing.assert_array_equal(points.get_xdata(), [0.0, 30.0, -20.0])
    # the variants read top to bottom in the table's order
    height = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True)}
    assert sorted(height, key=height.get, reverse=True) == ["base (baseline)", "more", "less"]
    np.testing.assert_array_equal(points.get_ydata(), sorted(height.values(), reverse=True))
    ends = sorted((float(s[0][0]), float(s[1][0])) for s in bars.get_segments())
    assert ends == [(-26.0, -14.0), (0.0, 0.0), (25.0, 35.0)]


def test_compare_means_and_bad_input():
    ax = viz.plot_compare(_table(), "nps_final", what="mean", show_unpaired=False)
    points, _, (bars,) = ax.containers[0]
    np.testing.assert_array_equal(points.get_xdata(), [100.0, 130.0, 80.0])
    ends = sorted((float(s[0][0]), float(s[1][0])) for s in bars.get_segments())
    assert ends == [(70.0, 90.0), (90.0, 110.0), (118.0, 142.0)]
    with pytest.raises(ValueError, match=r"'revenue'.*npv_profit, nps_final|nps_final, npv_profit"):
        viz.plot_compare(_table(), "revenue")
    with pytest.raises(ValueError, match="'what'"):
        viz.plot_compare(_table(), "npv_profit", what="median")


def test_network_colours_people_by_status(model):
    ax = viz.plot_network(model, "status", max_nodes=1000)
    dots = ax.collections[-1]
    assert len(dots.get_offsets()) == model.population.n
    want = [STATUS_COLORS[s] for s in model.population.status.tolist()]
    assert [to_hex(c) for c in dots.get_facecolors()] == want


def test_network_colours_satisfaction_of_customers_only(model):
    ax = viz.plot_network(model, "satisfaction")
    shown = model.population.ever_customer
    dots = ax.collections[-1]
    np.testing.assert_allclose(dots.get_array(), model.population.satisfaction[shown])
    assert dots.norm.vmin == -1 and dots.norm.vmax == 1


def test_network_sample_is_a_connected_neighbourhood(model):
    nodes = network_sample(model.network, 60)
    assert nodes.size == 60 and np.unique(nodes).size == 60
    sub = model.network.strong[nodes][:, nodes]
    n_components, _ = connected_components(sub, directed=False)
    assert n_components == 1
    ax = viz.plot_network(model, "sentiment", max_nodes=60)
    assert len(ax.collections[-1].get_offsets()) == 60


def test_network_rejects_what_it_cannot_draw(model):
    with pytest.raises(ValueError, match="'color_by'"):
        viz.plot_network(model, "mood")
    complete = crmsim.CRMModel(crmsim.load_config(["market.n_people=50", "network=complete"]))
    with pytest.raises(ValueError, match="well-mixed"):
        viz.plot_network(complete)


# -- the dashboard's pictures -------------------------------------------------------------------

def _pixels(png: bytes) -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    return np.asarray(Image.open(BytesIO(png)).convert("RGB"))


def test_dashboard_pictures_drawn_incrementally_equal_fresh_ones():
    from crmsim.viz import render
    from crmsim.viz.page import DashboardModel

    model = DashboardModel(base=["market.n_people=150"])
    charts, network = render.Charts(model), render.Network(model, "satisfaction", 300)
    charts.png(), network.png()
    for _ in range(40):
        model.step()
        shown, net = charts.png(), network.png()
    # the static part is redrawn only when an axis grows (in round steps), not at every step
    assert charts.frames.redraws <= 40 // 3 and network.frames.redraws == 1
    np.testing.assert_array_equal(_pixels(shown), _pixels(render.Charts(model).png()))
    np.testing.assert_array_equal(_pixels(net), _pixels(render.Network(model, "satisfaction", 300).png()))


def test_dashboard_charts_read_sensibly_at_step_0_and_flows_start_at_step_1():
    from crmsim.viz import render
    from crmsim.viz.page import DashboardModel

    model = DashboardModel(base=["market.n_people=150"])
    charts = render.Charts(model)
    charts.png()
    active, revenue, wom, nps = charts.axes
    assert active.get_xlim() == (0, 10) and active.get_xlabel() == "weeks"
    assert active.get_ylim()[0] == 0 and active.get_ylim()[1] >= model.row["n_active"]
    assert nps.get_ylim() == (-100, 100) and revenue.get_ylim() == (0, 1)
    assert [t.get_visible() for t in charts.empty] == [True, True]
    assert len(revenue.lines[0].get_xdata()) == 0          # no revenue point at step 0
    for _ in range(3):
        model.step()
    charts.png()
    np.testing.assert_array_equal(revenue.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(active.lines[0].get_xdata(), [0, 1, 2, 3])
    assert revenue.lines[0].get_ydata().min() > 0                # no drop to zero
    assert revenue.get_ylim()[1] >= revenue.lines[0].get_ydata().max()
    assert [t.get_visible() for t in charts.empty] == [False, False]
    assert revenue.get_title() == "Revenue per week"
    labels = [t.get_text() for t in revenue.get_yticklabels()]
    assert all("," in t or len(t) <= 3 for t in labels if t)   # thousands separators


def test_nice_ceiling():
    from crmsim.viz.render import nice_ceiling

    assert [nice_ceiling(x) for x in (0, 7, 10, 11, 16, 240, 2001)] == [1, 7.5, 10, 15, 20, 300, 3000]
