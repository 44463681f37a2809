"""Every KPI, defined once.

``TIMESERIES`` names the columns of ``Result.timeseries`` (one row per step, step 0 being the
initial state) and says what each holds. ``SUMMARY`` names the scalar KPIs of
``Result.summary``; ``summarize`` computes them from the time series and the per-person ledgers.
Timing convention: in step k, churn is decided before purchases, and margin is collected at the
end of the step: a full step's worth from customers active throughout it, half a step's worth from
those who joined or left during it (on average they were customers for half of it); step k is
discounted by (1 + i)^(k * dt) with i the annual discount rate and dt = period_days / 365.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .population import Population
from .units import step_years

TIMESERIES: dict[str, str] = {
    "step": "step number; 0 is the initial state",
    "n_prospect": "people who have never been customers",
    "n_active": "current customers",
    "n_lapsed": "former customers who left (may be won back)",
    "n_terminated": "people the firm ended the relationship with (gone for good)",
    "at_risk": "customers who could churn this step (active before churn)",
    "acquired": "prospects who became customers this step",
    "churned": "customers who left this step",
    "trapped": "customers who wanted to leave but were held by switching costs or exit fees",
    "won_back": "lapsed customers who returned this step",
    "terminated": "relationships the firm ended this step",
    "encounters": "service encounters this step",
    "rude_incidents": "encounters with a rude incident",
    "complaints": "complaints made this step",
    "recovered": "complaints handled well",
    "late_payments": "purchases paid late",
    "defaults": "purchases never paid",
    "sales": "purchases this step (including purchases never paid)",
    "exit_fees": "fees paid by customers leaving under an exit penalty",
    "revenue": "sales + exit_fees",
    "cost_goods": "cost of goods sold: sales x (1 - margin)",
    "cost_service": "cost of service encounters",
    "cost_complaints": "cost of handling complaints",
    "cost_bad_debt": "revenue never paid",
    "cost_fixed": "fixed cost",
    "cost_acquisition": "CRM spend on acquisition tactics",
    "cost_retention": "CRM spend on retention tactics",
    "cost_interaction": "CRM spend on interaction tactics",
    "cost_service_investment": "CRM spend on service tactics (training, recovery, channels)",
    "cost_offering": "CRM spend on customization and offers",
    "cost_termination": "CRM spend on ending relationships",
    "crm_spend": "all CRM spend (the cost_* categories the policy chooses)",
    "unspent": "CRM budget no enabled tactic could use this step (kept, not a cost): "
               "crm_spend + unspent is the step's budget",
    "cost_total": "every cost this step",
    "profit": "revenue - cost_total",
    "discount_factor": "1 / (1 + i)^(step * dt)",
    "profit_discounted": "profit x discount_factor",
    "satisfaction_mean": "mean satisfaction of active customers (-1..1)",
    "sentiment_mean": "mean sentiment toward the brand, everyone (-1..1)",
    "commitment_mean": "mean commitment of active customers (0..1)",
    "wom_positive": "positive messages heard this step",
    "wom_negative": "negative messages heard this step",
    "viral_incidents": "bad experiences that went viral this step",
    "nps": "net promoter score of active customers (-100..100)",
    "reputation": "the firm's reputation (-1..1)",
    "quality": "the firm's service quality (0..1)",
}

CRM_CATEGORIES = ("acquisition", "retention", "interaction", "service_investment", "offering",
                  "termination")
OPERATING_COSTS = ("cost_goods", "cost_service", "cost_complaints", "cost_bad_debt", "cost_fixed")

SUMMARY: dict[str, str] = {
    "n_people": "population size",
    "steps": "steps simulated",
    "active_final": "customers at the end",
    "acquired_total": "prospects acquired over the run",
    "churned_total": "customers who left over the run",
    "won_back_total": "lapsed customers who returned",
    "terminated_total": "relationships the firm ended",
    "revenue_total": "sum of revenue",
    "cost_total": "sum of all costs",
    "crm_spend_total": "sum of CRM spend",
    "profit_total": "revenue_total - cost_total",
    "npv_profit": "sum of discounted profit (net present value)",
    "retention_rate_annual": "exp(-churned / customer-years at risk): the life-table (actuarial) "
                             "estimate, in which a customer who leaves during a step was at risk "
                             "for half of it",
    "clv_realised_mean": "mean discounted gross margin (revenue x margin) per ever-customer",
    "top20_revenue_share": "share of revenue from the top 20% of ever-customers by revenue",
    "wom_positive_total": "positive messages heard over the run",
    "wom_negative_total": "negative messages heard over the run",
    "complaints_total": "complaints over the run",
    "satisfaction_mean_final": "mean satisfaction of active customers at the end",
    "nps_final": "net promoter score at the end",
}

# Satisfaction -1..1 maps to a 0..10 recommendation score: score = 5 * (satisfaction + 1).
PROMOTER_SAT = 0.8    # score >= 9
DETRACTOR_SAT = 0.2   # score <= 6


def nps(satisfaction: np.ndarray, active: np.ndarray) -> float:
    """Net promoter score: % promoters - % detractors among active customers."""
    n = int(np.count_nonzero(active))
    if n == 0:
        return 0.0
    # Counting over the masks avoids gathering the active customers' values (a boolean index
    # with a scattered mask is ~20x slower than these byte-wise passes at 10**6 people).
    promoters = np.count_nonzero((satisfaction >= PROMOTER_SAT) & active)
    detractors = np.count_nonzero((satisfaction <= DETRACTOR_SAT) & active)
    return 100.0 * (promoters - detractors) / n


def mean_over(x: np.ndarray, mask: np.ndarray) -> float:
    n = int(np.count_nonzero(mask))
    # np.compress gathers the same values in the same order as x[mask] (so the same mean to
    # the last bit) but ~6x faster when the mask is scattered.
    return float(np.compress(mask, x).mean(dtype=np.float64)) if n else 0.0


def discount_factor(step: int, discount_rate: float, dt: float) -> float:
    return float((1.0 + discount_rate) ** (-step * dt))


def top_share(values: np.ndarray, top: float = 0.2) -> float:
    """Share of the total held by the top ``top`` fraction (by value)."""
    total = values.sum(dtype=np.float64)
    if values.size == 0 or total <= 0:
        return 0.0
    k = max(int(round(top * values.size)), 1)
    return float(np.partition(values, values.size - k)[values.size - k:].sum() / total)


def summarize(ts: pd.DataFrame, pop: Population, period_days: float) -> dict[str, float]:
    steps = ts[ts["step"] > 0]
    last = ts.iloc[-1]
    churned = float(steps["churned"].sum())
    exposure_years = (float(steps["at_risk"].sum()) - churned / 2.0) * step_years(period_days)
    ever = pop.ever_customer
    out = {
        "n_people": pop.n,
        "steps": int(last["step"]),
        "active_final": int(last["n_active"]),
        "acquired_total": int(steps["acquired"].sum()),
        "churned_total": int(steps["churned"].sum()),
        "won_back_total": int(steps["won_back"].sum()),
        "terminated_total": int(steps["terminated"].sum()),
        "revenue_total": float(steps["revenue"].sum()),
        "cost_total": float(steps["cost_total"].sum()),
        "crm_spend_total": float(steps["crm_spend"].sum()),
        "profit_total": float(steps["profit"].sum()),
        "npv_profit": float(steps["profit_discounted"].sum()),
        "retention_rate_annual": math.exp(-churned / exposure_years) if exposure_years > 0 else 1.0,
        "clv_realised_mean": float(pop.margin_discounted[ever].mean()) if ever.any() else 0.0,
        "top20_revenue_share": top_share(pop.revenue[ever]),
        "wom_positive_total": int(steps["wom_positive"].sum()),
        "wom_negative_total": int(steps["wom_negative"].sum()),
        "complaints_total": int(steps["complaints"].sum()),
        "satisfaction_mean_final": float(last["satisfaction_mean"]),
        "nps_final": float(last["nps"]),
    }
    return out
