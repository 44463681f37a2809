"""The dashboard's pictures, fast enough to redraw at every step.

Most of a matplotlib picture does not change from one step to the next: the axes, their ticks
and labels, the network's ties. A ``Frames`` object draws that static part once, keeps the
pixels, and for each step draws only what changed (the lines, the people's colours, a legend)
over a copy of them: Matplotlib's blitting, done off screen. The static part is redrawn only when
an axis has to grow, and axes grow in round steps, so that is rare.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from .. import formatting as fmt
from .plots import COLOR_BY, DIVERGING, _layout, plot_network

# Pictures are drawn at about the size they are shown (charts ~1000 px wide, network ~750).
DPI = 100
# (columns, title, colours, flow?) of the four charts. A flow (what happened during a step)
# starts at step 1; a stock (how things stand) starts at step 0, the initial state.
CHARTS = (
    (("n_active",), "Active customers", ("tab:green",), False),
    (("revenue",), "Revenue per step", ("tab:blue",), True),
    (("wom_positive", "wom_negative"), "Word of mouth heard per step", ("tab:green", "tab:red"), True),
    (("nps",), "Net promoter score", ("tab:purple",), False),
)
MIN_SPAN = 10   # steps the time axis shows at least, so step 0 reads as the start of a run


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 5, 7.5 (times a power of ten) at least ``x``."""
    if x <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(x))
    return next(m * power for m in (1, 1.5, 2, 3, 5, 7.5, 10) if m * power >= x * (1 - 1e-12))


class Frames:
    """A figure whose static part is drawn once; each frame draws the changing artists on it."""

    def __init__(self, fig: Figure) -> None:
        self.fig = fig
        self.canvas = FigureCanvasAgg(fig)
        self.background = None
        self.key = None
        self.redraws = 0      # how often the static part was drawn (for tests and profiling)

    def png(self, key, changing: Sequence) -> bytes:
        """The picture as PNG bytes; ``key`` names the static part (a new key redraws it)."""
        if key != self.key or self.background is None:
            shown = [artist.get_visible() for artist in changing]
            for artist in changing:
                artist.set_visible(False)
            self.canvas.draw()
            self.background = self.canvas.copy_from_bbox(self.fig.bbox)
            self.key = key
            self.redraws += 1
            for artist, visible in zip(changing, shown, strict=True):
                artist.set_visible(visible)
        else:
            self.canvas.restore_region(self.background)
        renderer = self.canvas.get_renderer()
        for artist in changing:
            if artist.get_visible():
                artist.draw(renderer)
        w, h = self.canvas.get_width_height()
        image = Image.frombuffer("RGBA", (w, h), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buf = io.BytesIO()
        # light compression: the page is served on this machine
        image.convert("RGB").save(buf, format="png", compress_level=1)
        return buf.getvalue()


class Charts:
    """The dashboard's four charts of one model, in one picture."""

    def __init__(self, model) -> None:
        self.model = model
        self.days = float(model.cfg.sim.period_days)
        self.per = fmt.per_step(self.days)
        fig = Figure(figsize=(10, 5.0), dpi=DPI)
        fig.subplots_adjust(left=0.08, right=0.98, top=0.93, bottom=0.1, hspace=0.55, wspace=0.22)
        self.axes = list(fig.subplots(2, 2).flat)
        self.lines: list[list] = []
        self.empty = []
        for ax, (cols, title, colors, flow) in zip(self.axes, CHARTS, strict=True):
            lines = []
            for col, color in zip(cols, colors, strict=True):
                label = ("negative" if col.endswith("negative") else "positive") if len(cols) > 1 else None
                lines.append(ax.plot([], [], color=color, lw=2.4, label=label)[0])
            self.lines.append(lines)
            ax.set_title(title.replace("per step", self.per), fontsize=14)
            if len(cols) > 1:
                ax.legend(loc="upper left", fontsize=12, ncols=2, frameon=True, framealpha=0.8)
            ax.tick_params(labelsize=12)
            ax.grid(alpha=0.3)
            ax.set_autoscale_on(False)
            if flow:
                self.empty.append(ax.text(0.5, 0.5, "from the first step on", transform=ax.transAxes,
                                          ha="center", va="center", color="0.45", fontsize=13))
        self.frames = Frames(fig)

    def _limits(self, data: dict[str, np.ndarray], steps: int):
        span = nice_ceiling(max(steps, MIN_SPAN))
        unit = fmt.time_unit(span * self.days)
        tops = []
        for cols, _, _, flow in CHARTS:
            if cols == ("nps",):
                tops.append(None)
                continue
            values = np.concatenate([data[c][1 if flow else 0:] for c in cols])
            tops.append(nice_ceiling(1.1 * float(values.max(initial=0.0))))
        return span, unit, tuple(tops)

    def png(self) -> bytes:
        model = self.model
        data = {c: np.asarray(v, dtype=float) for c, v in model.datacollector.model_vars.items()}
        steps = len(data["step"]) - 1
        key = self._limits(data, steps)
        span, unit, tops = key
        if key != self.frames.key:
            for ax, top in zip(self.axes, tops, strict=True):
                ax.set_xlim(0, fmt.time_values(span, self.days, unit))
                ax.set_ylim(*((-100, 100) if top is None else (0, top)))
                fmt.set_time_axis(ax, unit)
                ax.xaxis.label.set_size(12)
                fmt.format_axis(ax.yaxis, nbins=4)
        x = fmt.time_values(np.arange(steps + 1), self.days, unit)
        for lines, (cols, _, _, flow) in zip(self.lines, CHARTS, strict=True):
            first = 1 if flow else 0
            for line, col in zip(lines, cols, strict=True):
                line.set_data(x[first:], data[col][first:])
        for text in self.empty:
            text.set_visible(steps == 0)
        changing = [line for lines in self.lines for line in lines] + self.empty
        return self.frames.png(key, changing)


class Network:
    """The word-of-mouth network of one model, coloured by ``color_by``, for a projector."""

    def __init__(self, model, color_by: str, max_nodes: int) -> None:
        if color_by not in COLOR_BY:
            raise ValueError(f"Invalid value for 'color_by': {color_by!r}. Allowed: one of "
                             f"{', '.join(COLOR_BY)}.")
        self.model, self.color_by, self.max_nodes = model, color_by, max_nodes
        fig = Figure(figsize=(7.5, 5.4), dpi=DPI)
        fig.subplots_adjust(left=0.01, right=0.99 if color_by == "status" else 0.84, top=0.93,
                            bottom=0.01)
        # the title changes every step: a text of the figure, drawn over the static part
        self.caption = fig.text(0.5, 0.965, "", ha="center", va="center", fontsize=14)
        self.ax = ax = fig.subplots()
        _, _, xy, segments = _layout(model.network, max_nodes)
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(segments, colors="k", alpha=0.15, linewidths=0.7))
        pad = 0.05 * (xy.max(axis=0) - xy.min(axis=0))
        self.xlim = (xy[:, 0].min() - pad[0], xy[:, 0].max() + pad[0])
        self.ylim = (xy[:, 1].min() - pad[1], xy[:, 1].max() + pad[1])
        ax.set_axis_off()
        if color_by != "status":
            from matplotlib.cm import ScalarMappable
            from matplotlib.colors import Normalize

            cax = fig.add_axes((0.86, 0.2, 0.025, 0.6))
            bar = fig.colorbar(ScalarMappable(Normalize(-1, 1), DIVERGING), cax=cax)
            bar.set_label(color_by, size=13)
            cax.tick_params(labelsize=12)
        self.frames = Frames(fig)

    def png(self) -> bytes:
        ax = self.ax
        for artist in [*ax.collections[1:], *([ax.get_legend()] if ax.get_legend() else [])]:
            artist.remove()
        plot_network(self.model, self.color_by, max_nodes=self.max_nodes, ax=ax, node_size=70,
                     colorbar=False, legend_size=13, edges=False)
        ax.set_xlim(*self.xlim)
        ax.set_ylim(*self.ylim)
        self.caption.set_text(ax.get_title())
        ax.set_title("")
        changing = [*ax.collections[1:], self.caption,
                    *([ax.get_legend()] if ax.get_legend() else [])]
        return self.frames.png("network", changing)
