"""The interactive dashboard: Mesa's SolaraViz around a ``CRMModel``.

SolaraViz rebuilds the model on Reset by calling its class with the values of the controls, so
``DashboardModel`` is a ``CRMModel`` whose constructor takes those values as keywords and
composes the config from them (through ``crmsim.load_config``, so the controls go through the
same validation as the command line). The same page serves from ``crmsim viz`` and displays
inside Jupyter (``crmsim.viz.dashboard(cfg)``).
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Sequence

# Solara reads its settings when first imported: a classroom tool should not report usage
# to a third party. Users who want telemetry can set the variable themselves.
os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")

import solara  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from ..api import group_options, load_config  # noqa: E402
from ..model import CRMModel  # noqa: E402
from ..validation import validate  # noqa: E402
from .plots import COLOR_BY, plot_network  # noqa: E402

with warnings.catch_warnings():
    # Importing Mesa's SolaraViz trips Solara's hook checker on Mesa's own ComponentsView (an
    # early return before a hook); it works, and the warning would only puzzle a teacher.
    warnings.filterwarnings("ignore", message=".*found despite early return", category=UserWarning)
    from mesa.visualization import SolaraViz, make_plot_component
    from mesa.visualization.utils import update_counter

# The network view stays legible up to a few hundred people; the dashboard starts with a market
# that small unless the user asks for another size.
DASHBOARD_N_PEOPLE = 300
MAX_NODES = 300
# `crmsim viz` hands its overrides to the server's page through this variable (JSON list).
OVERRIDES_ENV = "CRMSIM_VIZ_OVERRIDES"

# control name -> config key it sets
CONTROL_KEYS = {
    "n_people": "market.n_people",
    "quality": "firm.quality",
    "tell_positive": "wom.tell_positive",
    "tell_negative": "wom.tell_negative",
    "viral_prob": "wom.viral_prob",
    "seed": "seed",
}


def with_small_market(overrides: Sequence[str]) -> list[str]:
    """``overrides`` plus a dashboard-sized market, unless they set the market size."""
    overrides = list(overrides)
    if any(o.lstrip("+").startswith("market.n_people=") for o in overrides):
        return overrides
    return [f"market.n_people={DASHBOARD_N_PEOPLE}", *overrides]


def available_policies() -> list[str]:
    """Policies with both a config file and an implementation."""
    from ..policies import POLICIES

    return [p for p in group_options("policy") if p in POLICIES]


def dashboard_config(base: DictConfig | Sequence[str] = (), *, n_people: int | None = None,
                     policy: str | None = None, quality: float | None = None,
                     tell_positive: int | None = None, tell_negative: int | None = None,
                     viral_prob: float | None = None, crm_budget_per_person: float | None = None,
                     seed: int | None = None) -> DictConfig:
    """``base`` (a composed config or Hydra overrides) with the dashboard's controls applied.

    ``None`` keeps the base value. A new ``policy`` brings that policy's own config file;
    ``crm_budget_per_person`` sets the CRM budget per year to that amount per person in the
    market. Raises ``ConfigError`` for values the schema does not allow.
    """
    if isinstance(base, DictConfig):
        cfg = copy.deepcopy(base)
    else:
        cfg = load_config(list(base))
    if policy is not None and policy != cfg.policy.name:
        cfg.policy = load_config([f"policy={policy}"]).policy
    values = dict(n_people=n_people, quality=quality, tell_positive=tell_positive,
                  tell_negative=tell_negative, viral_prob=viral_prob, seed=seed)
    for name, value in values.items():
        if value is not None:
            OmegaConf.update(cfg, CONTROL_KEYS[name], value)
    if crm_budget_per_person is not None:
        OmegaConf.update(cfg, "firm.crm_budget",
                         float(crm_budget_per_person) * int(cfg.market.n_people))
    validate(cfg)
    return cfg


class DashboardModel(CRMModel):
    """A ``CRMModel`` built from the dashboard's controls (see ``dashboard_config``)."""

    def __init__(self, base: DictConfig | Sequence[str] = (), n_people: int | None = None,
                 policy: str | None = None, quality: float | None = None,
                 tell_positive: int | None = None, tell_negative: int | None = None,
                 viral_prob: float | None = None, crm_budget_per_person: float | None = None,
                 seed: int | None = None) -> None:
        self.config = dashboard_config(
            base, n_people=n_people, policy=policy, quality=quality, tell_positive=tell_positive,
            tell_negative=tell_negative, viral_prob=viral_prob,
            crm_budget_per_person=crm_budget_per_person, seed=seed)
        super().__init__(self.config)


def model_params(base: DictConfig | Sequence[str] = ()) -> dict:
    """SolaraViz controls, starting at the values of the base config."""
    cfg = base if isinstance(base, DictConfig) else load_config(list(base))
    n = int(cfg.market.n_people)
    budget = float(cfg.firm.crm_budget) / n

    def slider(kind: str, label: str, value, lo, hi, step) -> dict:
        return {"type": kind, "label": label, "value": value, "min": min(lo, value),
                "max": max(hi, value), "step": step}

    policies = available_policies()
    return {
        "base": base,
        "policy": {"type": "Select", "label": "CRM policy", "value": str(cfg.policy.name),
                   "values": policies if cfg.policy.name in policies
                   else [str(cfg.policy.name), *policies]},
        "n_people": slider("SliderInt", "People in the market", n, 50, 2000, 50),
        "quality": slider("SliderFloat", "Service quality", float(cfg.firm.quality), 0.0, 1.0, 0.05),
        "crm_budget_per_person": slider("SliderFloat", "CRM budget per person per year", budget,
                                        0.0, 50.0, 1.0),
        "tell_positive": slider("SliderInt", "People a happy customer tells",
                                int(cfg.wom.tell_positive), 0, 40, 1),
        "tell_negative": slider("SliderInt", "People an unhappy customer tells",
                                int(cfg.wom.tell_negative), 0, 60, 1),
        "viral_prob": slider("SliderFloat", "Chance a bad experience goes viral",
                             float(cfg.wom.viral_prob), 0.0, 0.02, 0.0002),
        "seed": slider("SliderInt", "Seed", int(cfg.seed), 0, 100, 1),
    }


@solara.component
def KPIs(model: CRMModel):
    """Where the firm stands now; the CSS classes name each figure for browser tests."""
    update_counter.get()
    row, cols, c = model.row, model.datacollector.model_vars, model.cfg
    n = c.market.n_people
    with solara.Card("Now", classes=["crmsim-kpis"]):
        with solara.Column(gap="2px"):
            solara.Text(f"Step {model.steps} (day {c.sim.period_days * model.steps:g})",
                        classes=["crmsim-step"], style={"font-weight": "bold"})
            solara.Text(f"Active customers: {int(row['n_active']):,} of {model.in_market:,} "
                        "people in the market",
                        classes=["crmsim-active"])
            solara.Text(f"Revenue so far: {sum(cols['revenue']):,.0f}", classes=["crmsim-revenue"])
            solara.Text(f"Word of mouth this step: +{int(row['wom_positive']):,} / "
                        f"-{int(row['wom_negative']):,}", classes=["crmsim-wom"])
            solara.Text(f"NPS: {row['nps']:.1f}", classes=["crmsim-nps"])
            solara.Text(f"Settings: policy {c.policy.name}, quality {c.firm.quality:g}, "
                        f"CRM budget {c.firm.crm_budget / n:.3g} per person, tells "
                        f"+{c.wom.tell_positive:g} / -{c.wom.tell_negative:g}, viral "
                        f"{c.wom.viral_prob:g}, seed {c.seed}",
                        classes=["crmsim-settings"], style={"font-size": "85%", "opacity": "0.8"})


def make_network_view(max_nodes: int = MAX_NODES):
    @solara.component
    def NetworkView(model: CRMModel):
        update_counter.get()
        color_by, set_color_by = solara.use_state("status")
        with solara.Column():
            solara.ToggleButtonsSingle(value=color_by, values=list(COLOR_BY), on_value=set_color_by,
                                       classes=["crmsim-color-by"])
            if model.network.strong is None:
                solara.Info("The well-mixed network has no ties to draw.")
                return
            fig = Figure(figsize=(6.4, 4.8), layout="constrained")
            plot_network(model, color_by, max_nodes=max_nodes, ax=fig.subplots(), node_size=18)
            solara.FigureMatplotlib(fig, format="png", dependencies=[model, model.steps, color_by])

    return NetworkView


def _titled(title: str):
    def post(ax):
        ax.set_title(title, fontsize="medium")
        ax.grid(alpha=0.3)

    return post


def components(max_nodes: int = MAX_NODES) -> list:
    return [
        (KPIs, 0),
        (make_network_view(max_nodes), 0),
        make_plot_component({"n_active": "tab:green"}, post_process=_titled("Active customers")),
        make_plot_component({"revenue": "tab:blue"}, post_process=_titled("Revenue per step")),
        make_plot_component({"wom_positive": "tab:green", "wom_negative": "tab:red"},
                            post_process=_titled("Word of mouth heard")),
        make_plot_component({"nps": "tab:purple"}, post_process=_titled("Net promoter score")),
    ]


def dashboard(cfg: DictConfig | Sequence[str] | None = None, max_nodes: int = MAX_NODES):
    """The dashboard as a Solara element: display it in Jupyter (last line of a cell).

    ``cfg`` is a composed config, used as it is, or a list of Hydra overrides, which get a
    dashboard-sized market unless they set ``market.n_people`` (as with ``crmsim viz``).
    """
    base = cfg if isinstance(cfg, DictConfig) else with_small_market(cfg or ())
    return SolaraViz(DashboardModel(base=base), components=components(max_nodes),
                     model_params=model_params(base), name="crmsim")


def overrides_from_env() -> list[str]:
    raw = os.environ.get(OVERRIDES_ENV)
    return with_small_market(json.loads(raw) if raw else [])


@solara.component
def Page():
    """The server's page: every browser session gets its own model."""
    base = solara.use_memo(overrides_from_env, [])
    model = solara.use_memo(lambda: DashboardModel(base=base), [])
    params = solara.use_memo(lambda: model_params(base), [])
    parts = solara.use_memo(components, [])
    SolaraViz(model, components=parts, model_params=params, name="crmsim")
