"""The interactive dashboard: a Solara page around a ``CRMModel``, made for a classroom.

The page shows the model's own controls only (step, play, reset, and the settings, each with its
value and unit), where the firm stands now, the word-of-mouth network and four charts, large
enough to read from the back of a room. Reset rebuilds the model by calling ``DashboardModel``
with the values of the controls as keywords, as Mesa's SolaraViz does (so ``DashboardModel`` and
``model_params`` also work with SolaraViz); the config is composed through
``crmsim.load_config``, so the controls go through the same validation as the command line.
The same page serves from ``crmsim viz`` and displays inside Jupyter
(``crmsim.viz.dashboard(cfg)``).

Each step redraws the charts and the network as PNG images (``render``: the static parts of
each picture are drawn once and reused), which keeps a step well under 0.3 s at 300 people.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Sequence

# Solara reads its settings when first imported: a classroom tool should not report usage
# to a third party. Users who want telemetry can set the variable themselves.
os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")

import solara  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from .. import formatting as fmt  # noqa: E402
from ..api import group_options, load_config  # noqa: E402
from ..construction import UNSET, apply_params  # noqa: E402
from ..model import CRMModel  # noqa: E402
from ..validation import validate  # noqa: E402
from . import render  # noqa: E402
from .plots import COLOR_BY  # noqa: E402

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
    """A ``CRMModel`` built from the dashboard's controls (see ``dashboard_config``).

    The seed is ``rng`` or the config key ``seed`` (a keyword like any other config key), not a
    named parameter: ``mesa.batch_run`` on Mesa 3.5 overwrites a parameter named ``seed`` with
    its own ``rng`` value, which would turn a seed sweep into ``seed=None``.
    """

    def __init__(self, base: DictConfig | Sequence[str] = (), n_people: int | None = None,
                 policy: str | None = None, quality: float | None = None,
                 tell_positive: int | None = None, tell_negative: int | None = None,
                 viral_prob: float | None = None, crm_budget_per_person: float | None = None,
                 *, rng: int | None = UNSET, **params) -> None:
        config = dashboard_config(
            base, n_people=n_people, policy=policy, quality=quality, tell_positive=tell_positive,
            tell_negative=tell_negative, viral_prob=viral_prob,
            crm_budget_per_person=crm_budget_per_person)
        super().__init__(config, rng=rng, **params)
        # The composed config the run uses (with the seed it drew, if it drew one).
        self.config = apply_params(config, {**params, "seed": self.cfg.seed})


def model_params(base: DictConfig | Sequence[str] = ()) -> dict:
    """The controls (in SolaraViz's format), starting at the values of the base config.

    Each control has a ``unit`` too: how the page writes its value next to its label.
    """
    cfg = base if isinstance(base, DictConfig) else load_config(list(base))
    n = int(cfg.market.n_people)
    budget = float(cfg.firm.crm_budget) / n

    def slider(kind: str, label: str, value, lo, hi, step, unit: str) -> dict:
        return {"type": kind, "label": label, "value": value, "min": min(lo, value),
                "max": max(hi, value), "step": step, "unit": unit}

    policies = available_policies()
    return {
        "base": base,
        "policy": {"type": "Select", "label": "CRM policy", "value": str(cfg.policy.name),
                   "values": policies if cfg.policy.name in policies
                   else [str(cfg.policy.name), *policies]},
        "n_people": slider("SliderInt", "People in the market", n, 50, 2000, 50, "people"),
        "quality": slider("SliderFloat", "Service quality", float(cfg.firm.quality), 0.0, 1.0, 0.05,
                          "on a 0-1 scale"),
        "crm_budget_per_person": slider("SliderFloat", "CRM budget", budget, 0.0, 50.0, 1.0,
                                        "per person per year"),
        "tell_positive": slider("SliderInt", "A happy customer tells", int(cfg.wom.tell_positive),
                                0, 40, 1, "people"),
        "tell_negative": slider("SliderInt", "An unhappy customer tells",
                                int(cfg.wom.tell_negative), 0, 60, 1, "people"),
        "viral_prob": slider("SliderFloat", "A bad experience goes viral",
                             float(cfg.wom.viral_prob), 0.0, 0.02, 0.0002, "%"),
        "seed": slider("SliderInt", "Seed", int(cfg.seed), 0, 100, 1, ""),
    }


def control_text(spec: dict, value) -> str:
    """``People in the market: 300 people``; chances in percent, money to the cent."""
    unit = spec.get("unit", "")
    if unit == "%":
        shown = f"{100 * value:.2g}%"
    elif spec["type"] == "SliderFloat":
        shown = f"{value:.2f}" if unit.startswith("per person") else f"{value:g}"
        shown = f"{shown} {unit}" if unit else shown
    else:
        shown = f"{value:,} {unit}".rstrip()
    return f"{spec['label']}: {shown}"


# -- the page ---------------------------------------------------------------------------------

@solara.component
def KPIs(model: CRMModel, step: int):
    """Where the firm stands now; the CSS classes name each figure for browser tests."""
    row, cols, c = model.row, model.datacollector.model_vars, model.cfg
    n = c.market.n_people
    with solara.Card("Now", classes=["crmsim-kpis"]):
        with solara.Column(gap="4px", style={"font-size": "18px"}):
            solara.Text(f"Step {step} (day {c.sim.period_days * step:g})",
                        classes=["crmsim-step"], style={"font-weight": "bold"})
            solara.Text(f"Active customers: {int(row['n_active']):,} of {model.in_market:,} "
                        "people in the market",
                        classes=["crmsim-active"])
            solara.Text(f"Revenue so far: {fmt.number(sum(cols['revenue']))} currency units",
                        classes=["crmsim-revenue"])
            solara.Text(f"Word of mouth this step: +{int(row['wom_positive']):,} / "
                        f"-{int(row['wom_negative']):,}", classes=["crmsim-wom"])
            solara.Text(f"NPS: {row['nps']:.1f}", classes=["crmsim-nps"])
            solara.Text(f"Running: policy {c.policy.name}, quality {c.firm.quality:g}, CRM budget "
                        f"{c.firm.crm_budget / n:.2f} per person, tells +{c.wom.tell_positive:g} / "
                        f"-{c.wom.tell_negative:g}, viral {100 * c.wom.viral_prob:.2g}%, seed {c.seed}",
                        classes=["crmsim-settings"], style={"font-size": "80%", "opacity": "0.8"})


@solara.component
def NetworkView(model: CRMModel, step: int, max_nodes: int = MAX_NODES):
    color_by, set_color_by = solara.use_state("status")
    with solara.Card("Who is a customer, and how they feel", classes=["crmsim-network"]):
        solara.ToggleButtonsSingle(value=color_by, values=list(COLOR_BY), on_value=set_color_by,
                                   classes=["crmsim-color-by"])
        if model.network.strong is None:
            solara.Info("The well-mixed network has no ties to draw.")
            return
        view = solara.use_memo(lambda: render.Network(model, color_by, max_nodes),  # noqa: SH101
                               [model, color_by])
        image = solara.use_memo(view.png, [view, step])  # noqa: SH101
        solara.Image(image, width="100%", classes=["crmsim-network-image"])


@solara.component
def Charts(model: CRMModel, step: int):
    charts = solara.use_memo(lambda: render.Charts(model), [model])
    image = solara.use_memo(charts.png, [charts, step])
    with solara.Card("Over time", classes=["crmsim-charts"]):
        solara.Image(image, width="100%", classes=["crmsim-charts-image"])


@solara.component
def Controls(params: dict, values: solara.Reactive, on_reset, on_step, playing: solara.Reactive,
             finished: bool):
    with solara.Card("Run"):
        with solara.Row():
            solara.Button("Step", on_click=on_step, disabled=playing.value or finished,
                          color="primary")
            solara.Button("Pause" if playing.value else "Play",
                          on_click=lambda: playing.set(not playing.value), disabled=finished)
            solara.Button("Reset", on_click=on_reset)
        if finished:
            solara.Text("The run has reached sim.steps; Reset to start again.")
    with solara.Card("Settings (take effect on Reset)", classes=["crmsim-controls"]):
        for name, spec in params.items():
            if not isinstance(spec, dict):
                continue
            value = values.value.get(name, spec["value"])

            def set_value(v, name=name):
                values.set({**values.value, name: v})

            if spec["type"] == "Select":
                solara.Select(spec["label"], values=spec["values"], value=value, on_value=set_value)
                continue
            slider = solara.SliderInt if spec["type"] == "SliderInt" else solara.SliderFloat
            solara.Text(control_text(spec, value), classes=["crmsim-control-value"],
                        style={"font-size": "15px", "margin-top": "6px"})
            slider("", value=value, min=spec["min"], max=spec["max"], step=spec["step"],
                   on_value=set_value, thumb_label=False)


@solara.component
def Dashboard(model: CRMModel, base: DictConfig | Sequence[str] = (), max_nodes: int = MAX_NODES,
              params: dict | None = None, play_seconds: float = 0.3):
    """The whole page for one model; Reset replaces the model with one built from the controls."""
    controls = solara.use_memo(lambda: params or model_params(base), [])
    current = solara.use_reactive(model)
    step, set_step = solara.use_state(current.value.steps)
    values = solara.use_reactive({k: v["value"] for k, v in controls.items() if isinstance(v, dict)})
    playing = solara.use_reactive(False)
    error = solara.use_reactive("")
    m = current.value
    finished = not m.running

    def step_once():
        if current.value.running:
            current.value.step()
        set_step(current.value.steps)
        if not current.value.running:
            playing.set(False)

    def rebuild():
        playing.set(False)
        try:
            current.set(DashboardModel(base=controls["base"], **values.value))
            error.set("")
        except ValueError as err:   # ConfigError: say what is wrong, keep the old model
            error.set(str(err))
        set_step(current.value.steps)

    def play():
        # a thread of its own, so that Pause is heard between steps
        while playing.value and current.value.running:
            step_once()
            time.sleep(play_seconds)

    solara.lab.use_task(play, dependencies=[playing.value], prefer_threaded=True)

    # The same functions at every render, so the controls are not redrawn at every step.
    do_step = solara.use_memo(lambda: step_once, [])
    reset = solara.use_memo(lambda: rebuild, [])

    solara.Title("crmsim dashboard")
    with solara.AppBar():
        solara.AppBarTitle("crmsim: customer relationships, step by step")
    with solara.Sidebar():
        Controls(controls, values, reset, do_step, playing, finished)
        if error.value:
            solara.Error(error.value)
    with solara.Columns([1, 2]):
        KPIs(m, step)
        NetworkView(m, step, max_nodes)
    Charts(m, step)


def dashboard(cfg: DictConfig | Sequence[str] | None = None, max_nodes: int = MAX_NODES):
    """The dashboard as a Solara element: display it in Jupyter (last line of a cell).

    ``cfg`` is a composed config, used as it is, or a list of Hydra overrides, which get a
    dashboard-sized market unless they set ``market.n_people`` (as with ``crmsim viz``).
    """
    base = cfg if isinstance(cfg, DictConfig) else with_small_market(cfg or ())
    return Dashboard(DashboardModel(base=base), base=base, max_nodes=max_nodes)


def overrides_from_env() -> list[str]:
    raw = os.environ.get(OVERRIDES_ENV)
    return with_small_market(json.loads(raw) if raw else [])


@solara.component
def Page():
    """The server's page: every browser session gets its own model."""
    base = solara.use_memo(overrides_from_env, [])
    model = solara.use_memo(lambda: DashboardModel(base=base), [])
    Dashboard(model, base=base)
