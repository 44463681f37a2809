"""The event log in the shapes the CLV libraries read (pymc-marketing, lifetimes).

``rfm`` summarises purchases per customer for the non-contractual models (BG/NBD, Pareto/NBD,
Gamma-Gamma) exactly as ``pymc_marketing.clv.utils.rfm_summary`` and lifetimes'
``summary_data_from_transaction_data`` do; ``cohort_table`` gives each customer's first
spell for the contractual shifted-beta-geometric model (pymc-marketing's ``ShiftedBetaGeoModel``).
Both take a ``Result`` (run with ``sim.record_events=true``) or its ``events`` table. The event
log itself is described in ``docs/events.md``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from .model import DATE_ORIGIN

REPEAT_FIELDS = ("customer_id", "frequency", "recency", "T")


class EventLogWarning(UserWarning):
    """A model of one purchase setting fitted to a log of the other."""


def _events(source: Any) -> tuple[pd.DataFrame, str | None, pd.Timestamp | None]:
    """The events, the purchase kind and the end of the observation, as far as ``source`` says."""
    if isinstance(source, pd.DataFrame):
        return source, None, None
    events = getattr(source, "events", None)
    if events is None:
        raise ValueError("crmsim.export needs an event log: a Result of a run with "
                         "sim.record_events=true, or its events table (got "
                         f"{type(source).__name__} without events)")
    cfg = source.config
    end = DATE_ORIGIN + pd.Timedelta(days=cfg.sim.steps * cfg.sim.period_days)
    # Runs saved before the purchase settings existed were contractual.
    return events, OmegaConf.select(cfg, "market.purchase.kind", default="contractual"), end


def _check(events: pd.DataFrame) -> None:
    missing = {"customer_id", "step", "date", "event", "amount"} - set(events.columns)
    if missing:
        raise ValueError("not a crmsim event log: the columns " + ", ".join(sorted(missing))
                         + " are missing (see docs/events.md)")


def _read(source: Any, wrong: str, message: str) -> tuple[pd.DataFrame, pd.Timestamp | None]:
    """The events and the run's end; warns with ``message`` if the log is of setting ``wrong``."""
    events, kind, end = _events(source)
    _check(events)
    if (kind or purchase_kind(events)) == wrong:
        warnings.warn(message, EventLogWarning, stacklevel=3)
    return events, end


def purchase_kind(events: pd.DataFrame) -> str:
    """``contractual`` or ``noncontractual``, read from the log alone: in the contractual
    setting every purchase of a step is at the step's end, one date per step."""
    buys = events[events["event"] == "purchase"]
    if buys.empty or buys.groupby("step", observed=True)["date"].nunique().max() <= 1:
        return "contractual"
    return "noncontractual"


def last_step_end(events: pd.DataFrame) -> pd.Timestamp:
    """The end of the last step in the log: step-end events are at ``origin + step * period``,
    so the step length is the largest ``(date - origin) / step``."""
    later = events[events["step"] > 0]
    if later.empty:
        return pd.Timestamp(events["date"].max())
    period = ((later["date"] - DATE_ORIGIN) / later["step"]).max()
    return DATE_ORIGIN + period * int(events["step"].max())


def rfm(source: Any, *, time_unit: str = "D", time_scaler: float = 1.0,
        observation_end: Any = None, origin: Any = None) -> pd.DataFrame:
    """Per-customer ``customer_id, frequency, recency, T, monetary_value`` from the purchases.

    The conventions of pymc-marketing's ``rfm_summary`` and lifetimes'
    ``summary_data_from_transaction_data``: purchase times are floored to ``time_unit``
    periods ("D", "h", "s" or "W": units both pandas and numpy know; purchases in one period
    count once, their amounts summed);
    ``frequency`` is the number of periods with a purchase after the first, ``recency`` the time
    from the first to the last, ``T`` from the first to ``observation_end``, both in
    ``time_unit`` divided by ``time_scaler`` (e.g. "D" and 365 for years, the unit of the
    purchase parameters); ``monetary_value`` is the mean amount of the repeat periods (0
    without any). Purchases after ``observation_end`` are left out. ``observation_end``
    defaults to the end of the run (of the last step in the log, for a bare events table).
    For lifetimes, ``.set_index("customer_id")``.

    ``origin`` moves the dates so that step 0 is at ``origin`` instead of 2026-01-01 (what
    ``observation_end`` then refers to). Warns (``EventLogWarning``) when the log comes from
    the contractual setting, where these non-contractual models do not apply.
    """
    events, end = _read(
        source, "contractual",
        "this event log comes from the contractual setting (market.purchase.kind=contractual): "
        "every customer buys once a step until the firm sees them leave, so BG/NBD, Pareto/NBD "
        "and Gamma-Gamma do not describe it; use cohort_table with a shifted-beta-geometric "
        "model, or run with market.purchase.kind=noncontractual")
    end = pd.Timestamp(observation_end) if observation_end is not None else (
        end if end is not None else last_step_end(events))
    buys = events.loc[events["event"] == "purchase", ["customer_id", "date", "amount"]]
    if origin is not None:
        shift = pd.Timestamp(origin) - DATE_ORIGIN
        buys = buys.assign(date=buys["date"] + shift)
        if observation_end is None:
            end = end + shift
    unit = np.timedelta64(1, time_unit)
    end = end.to_period(time_unit).to_timestamp()
    period = buys["date"].dt.to_period(time_unit).dt.to_timestamp()
    buys = buys.assign(date=period)[period <= end]
    per = buys.groupby(["customer_id", "date"], sort=True)["amount"].sum().reset_index()
    first = per.groupby("customer_id")["date"].transform("min")
    per["repeat"] = per["date"] > first
    g = per.groupby("customer_id")
    out = pd.DataFrame({
        "frequency": g["repeat"].sum().astype(np.int64),
        "recency": (g["date"].max() - g["date"].min()) / unit / time_scaler,
        "T": (end - g["date"].min()) / unit / time_scaler,
    })
    spend = per[per["repeat"]].groupby("customer_id")["amount"].mean()
    out["monetary_value"] = spend.reindex(out.index, fill_value=0.0)
    return out.reset_index()


def cohort_table(source: Any, *, min_T: int = 2, include_terminated: bool = True) -> pd.DataFrame:
    """Per-customer ``customer_id, recency, T, cohort`` of each first spell, in steps, for the
    shifted-beta-geometric model (pymc-marketing's ``ShiftedBetaGeoModel``).

    ``cohort`` is the date of the acquisition (step 0 for the customers at the start); ``T``
    the steps observed since, the same for a whole cohort; ``recency`` the steps until the
    customer left (the step of the churn event minus the acquisition step; with
    ``include_terminated`` also a termination by the firm), or ``T`` for those still there.
    Cohorts observed for fewer than ``min_T`` steps are left out (pymc-marketing needs T >= 2).
    Win-backs start no new spell. The churn parameters are annual (``market.churn.alpha``,
    ``beta``): a fit on steps of d days gives about alpha and (365 / d) x beta (docs/events.md).
    """
    events, _ = _read(
        source, "noncontractual",
        "this event log comes from the non-contractual setting: its churn events are the true "
        "dropouts, which the firm never sees; a contractual model fitted to them uses what no "
        "retailer has (use rfm with BG/NBD or Pareto/NBD instead)")
    last = int(events["step"].max())
    joined = events[events["event"] == "acquisition"].groupby("customer_id")[["step", "date"]].min()
    ends = ("churn", "termination") if include_terminated else ("churn",)
    left = events[events["event"].isin(ends)][["customer_id", "step"]]
    left = left.merge(joined["step"].rename("start"), left_on="customer_id", right_index=True)
    left = left[left["step"] > left["start"]].groupby("customer_id")["step"].min()
    out = pd.DataFrame({"T": last - joined["step"], "cohort": joined["date"].dt.strftime("%Y-%m-%d")})
    stop = left.reindex(out.index)
    out["recency"] = np.where(stop.notna(), stop - joined["step"], out["T"]).astype(np.int64)
    out = out[out["T"] >= min_T]
    out["T"] = out["T"].astype(np.int64)
    return out.reset_index()[["customer_id", "recency", "T", "cohort"]]
