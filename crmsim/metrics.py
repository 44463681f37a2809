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
from typing import NamedTuple

import numpy as np
import pandas as pd

from .population import Population
from .units import step_years


class KPI(NamedTuple):
    """A KPI's label and unit (for tables and plots, ``crmsim.formatting``) and its meaning."""

    label: str
    unit: str
    meaning: str


HORIZONS = (1, 3, 5, 10)   # years at which verdicts show npv_total (when the run reaches them)

TIMESERIES_KPIS: dict[str, KPI] = {
    'step': KPI('step', 'step',
        'step number; 0 is the initial state'),
    'n_prospect': KPI('prospects', 'count',
        'people in the market who have never been customers'),
    'n_active': KPI('customers', 'count',
        'current customers'),
    'n_lapsed': KPI('lapsed customers', 'count',
        'former customers who left (may be won back)'),
    'n_terminated': KPI('terminated', 'count',
        'people the firm ended the relationship with (gone for good)'),
    'n_outside': KPI('outside the market', 'count',
        'people not yet in an open market (market.growth): they enter as prospects'),
    'entered': KPI('entered', 'count',
        'people who entered the market this step as prospects (the fall in n_outside)'),
    'at_risk': KPI('customers at risk', 'count',
        'customers who could churn this step (active before churn)'),
    'acquired': KPI('acquired', 'count',
        'prospects who became customers this step'),
    'churned': KPI('churned', 'count',
        'customers who left this step'),
    'trapped': KPI('trapped', 'count',
        'customers who wanted to leave but were held by switching costs or exit fees'),
    'won_back': KPI('won back', 'count',
        'lapsed customers who returned this step'),
    'terminated': KPI('terminated', 'count',
        'relationships the firm ended this step'),
    'encounters': KPI('service encounters', 'count',
        'service encounters this step'),
    'rude_incidents': KPI('rude incidents', 'count',
        'encounters with a rude incident'),
    'complaints': KPI('complaints', 'count',
        'complaints made this step'),
    'recovered': KPI('complaints recovered', 'count',
        'complaints handled well'),
    'late_payments': KPI('late payments', 'count',
        'purchases paid late'),
    'defaults': KPI('defaults', 'count',
        'purchases never paid'),
    'sales': KPI('sales', 'money',
        'purchases this step (including purchases never paid)'),
    'exit_fees': KPI('exit fees', 'money',
        'fees paid by customers leaving under an exit penalty'),
    'revenue': KPI('revenue', 'money',
        'sales + exit_fees'),
    'cost_goods': KPI('cost of goods', 'money',
        'cost of goods sold: sales x (1 - margin)'),
    'cost_service': KPI('service cost', 'money',
        'cost of service encounters'),
    'cost_complaints': KPI('complaint handling cost', 'money',
        'cost of handling complaints'),
    'cost_bad_debt': KPI('bad debt', 'money',
        'revenue never paid'),
    'cost_fixed': KPI('fixed cost', 'money',
        'fixed cost'),
    'cost_acquisition': KPI('acquisition spend', 'money',
        'CRM spend on acquisition tactics'),
    'cost_retention': KPI('retention spend', 'money',
        'CRM spend on retention tactics'),
    'cost_interaction': KPI('interaction spend', 'money',
        'CRM spend on interaction tactics'),
    'cost_service_investment': KPI('service investment', 'money',
        'CRM spend on service tactics (training, recovery, channels)'),
    'cost_offering': KPI('offering spend', 'money',
        'CRM spend on customization and offers'),
    'cost_termination': KPI('termination spend', 'money',
        'CRM spend on ending relationships'),
    'cost_capability': KPI('capability investment', 'money',
        'CRM spend building the firm\'s capabilities (people, processes, technology and data, '
        'leadership and culture)'),
    'crm_spend': KPI('CRM spend', 'money',
        'all CRM spend (the cost_* categories the policy chooses)'),
    'unspent': KPI('unspent CRM budget', 'money',
        'CRM budget no enabled tactic could use this step (kept, not a cost): crm_spend + '
        'unspent is the step\'s budget'),
    'cost_total': KPI('cost', 'money',
        'every cost this step'),
    'profit': KPI('profit', 'money',
        'revenue - cost_total'),
    'discount_factor': KPI('discount factor', 'factor',
        '1 / (1 + i)^(step * dt)'),
    'profit_discounted': KPI('discounted profit', 'money',
        'profit x discount_factor'),
    'customer_equity': KPI('customer equity', 'money',
        'expected discounted future contribution of the customers active at the end of the '
        'step, valued at that time (customer_equity below)'),
    'cost_late_payments': KPI('late-payment cost', 'money',
        'collection effort and cost of capital of late payments'),
    'satisfaction_mean': KPI('satisfaction', 'scale',
        'mean satisfaction of active customers (-1..1)'),
    'sentiment_mean': KPI('sentiment', 'scale',
        'mean sentiment toward the brand, everyone (-1..1)'),
    'commitment_mean': KPI('commitment', 'scale',
        'mean commitment of active customers (0..1)'),
    'wom_positive': KPI('positive word of mouth', 'count',
        'positive messages heard this step'),
    'wom_negative': KPI('negative word of mouth', 'count',
        'negative messages heard this step'),
    'viral_incidents': KPI('viral incidents', 'count',
        'bad experiences that went viral this step'),
    'nps': KPI('NPS', 'score',
        'net promoter score of active customers (-100..100)'),
    'reputation': KPI('reputation', 'scale',
        "the firm's reputation (-1..1)"),
    'quality': KPI('service quality', 'scale',
        "the firm's service quality (0..1)"),
    'capability_people': KPI('people capability', 'scale',
        "the firm's CRM staff capability at the end of the step (0..1)"),
    'capability_processes': KPI('process capability', 'scale',
        "the firm's process capability (0..1)"),
    'capability_technology_data': KPI('technology and data capability', 'scale',
        "the firm's technology and data capability (0..1)"),
    'capability_leadership_culture': KPI('leadership and culture capability', 'scale',
        "the firm's leadership and culture capability (0..1)"),
}

CRM_CATEGORIES = ("acquisition", "retention", "interaction", "service_investment", "offering",
                  "termination", "capability")
OPERATING_COSTS = ("cost_goods", "cost_service", "cost_complaints", "cost_bad_debt",
                   "cost_late_payments", "cost_fixed")

SUMMARY_KPIS: dict[str, KPI] = {
    'n_people': KPI('people', 'count',
        'people in the market at the end (market.n_people plus the entrants)'),
    'steps': KPI('steps', 'step',
        'steps simulated'),
    'active_final': KPI('customers at the end', 'count',
        'customers at the end'),
    'acquired_total': KPI('acquired', 'count',
        'prospects acquired over the run'),
    'churned_total': KPI('churned', 'count',
        'customers who left over the run'),
    'won_back_total': KPI('won back', 'count',
        'lapsed customers who returned'),
    'terminated_total': KPI('terminated', 'count',
        'relationships the firm ended'),
    'revenue_total': KPI('revenue', 'money',
        'sum of revenue'),
    'cost_total': KPI('cost', 'money',
        'sum of all costs'),
    'crm_spend_total': KPI('CRM spend', 'money',
        'sum of CRM spend'),
    'profit_total': KPI('profit', 'money',
        'revenue_total - cost_total'),
    'npv_profit': KPI('NPV profit', 'money',
        'sum of discounted profit (net present value)'),
    'customer_equity_final': KPI('customer equity left', 'money',
        'customer equity of the base left at the end, discounted to time 0'),
    'npv_total': KPI('NPV total', 'money',
        "npv_profit + customer_equity_final: the run's profit and the customer base it leaves "
        "behind"),
    'retention_rate_annual': KPI('retention', 'share',
        'exp(-churned / customer-years at risk): the life-table (actuarial) estimate, in '
        'which a customer who leaves during a step was at risk for half of it'),
    'clv_realised_mean': KPI('CLV per customer', 'money',
        'mean discounted gross margin (revenue x margin) per ever-customer'),
    'top20_revenue_share': KPI('top-20% revenue share', 'share',
        'share of revenue from the top 20% of ever-customers by revenue'),
    'wom_positive_total': KPI('positive word of mouth', 'count',
        'positive messages heard over the run'),
    'wom_negative_total': KPI('negative word of mouth', 'count',
        'negative messages heard over the run'),
    'complaints_total': KPI('complaints', 'count',
        'complaints over the run'),
    'satisfaction_mean_final': KPI('satisfaction at the end', 'scale',
        'mean satisfaction of active customers at the end'),
    'nps_final': KPI('NPS at the end', 'score',
        'net promoter score at the end'),
    # Measures the experiments' write-ups compare (experiments/writeups.py).
    'churn_year1': KPI('churn in year 1', 'share',
        'annual churn rate in the first year (or the whole run if shorter): 1 - exp(-churned / '
        'customer-years at risk), as retention_rate_annual'),
    'trapped_total': KPI('trapped', 'count',
        'customers who wanted to leave but were held by switching costs or exit fees, over the run'),
    'reputation_final': KPI('reputation at the end', 'scale',
        "the firm's reputation at the end (-1..1)"),
    'profit_per_customer': KPI('profit per customer', 'money',
        'profit_total per ever-customer'),
    'npv_per_customer': KPI('NPV profit per customer', 'money',
        'npv_profit per ever-customer'),
    'spend_per_customer_year': KPI('spend per customer-year', 'money',
        'sales per customer-year (customers at the end of each step x the step in years)'),
    **{f"npv_total_{h}y": KPI(f"NPV total at {h} year{'s' if h > 1 else ''}", "money",
                             f"npv_total as if the run ended after {h} year{'s' if h > 1 else ''} "
                             "(only in runs that reach it)") for h in HORIZONS},
}

# Views of the definitions above, by name.
HORIZON_KEYS = tuple(f"npv_total_{h}y" for h in HORIZONS)
TIMESERIES: dict[str, str] = {k: v.meaning for k, v in TIMESERIES_KPIS.items()}
SUMMARY: dict[str, str] = {k: v.meaning for k, v in SUMMARY_KPIS.items()}
LABELS: dict[str, tuple[str, str]] = {k: (v.label, v.unit)
                                      for k, v in {**TIMESERIES_KPIS, **SUMMARY_KPIS}.items()}

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
    return net_promoter(promoters, detractors, n)


def net_promoter(promoters: int, detractors: int, customers: int) -> float:
    """NPS from the counts: % promoters - % detractors (0 without customers)."""
    return 100.0 * (promoters - detractors) / customers if customers else 0.0


def mean_over(x: np.ndarray, mask: np.ndarray) -> float:
    n = int(np.count_nonzero(mask))
    # np.compress gathers the same values in the same order as x[mask] (so the same mean to
    # the last bit) but ~6x faster when the mask is scattered.
    return float(np.compress(mask, x).mean(dtype=np.float64)) if n else 0.0


def discount_factor(step: int, discount_rate: float, dt: float) -> float:
    return float((1.0 + discount_rate) ** (-step * dt))


EQUITY_YEARS = 100.0   # customer equity projects at most this far (finite even with i = 0)


def customer_equity(contribution: np.ndarray, hazard: np.ndarray, discount_rate: float,
                    dt: float) -> np.ndarray:
    """Expected discounted future contribution of each customer (Gupta, Lehmann & Stuart 2004),
    valued at the end of the current step, if their hazard and contribution stay as they are.

    ``contribution`` is per year, ``hazard`` the annual hazard rate of leaving. Under the
    model's timing (the module docstring) a customer who survives j more steps contributes a
    step's worth in each, and half a step's worth in the step in which they leave; with
    r = exp(-hazard dt) and v = (1 + i)^(-dt) the sum over future steps j = 1, 2, ... is

        contribution * dt * (1 + r) / 2 * v / (1 - r v),

    which tends to contribution / (hazard + ln(1 + i)) as dt -> 0, and for a constant annual
    retention rate is the margin multiple of Gupta & Lehmann (2003) under this timing. The sum
    stops after ``EQUITY_YEARS`` (it matters only when neither churn nor discounting bites)."""
    r = np.exp(-np.asarray(hazard, dtype=np.float64) * dt)
    v = (1.0 + discount_rate) ** (-dt)
    x = r * v
    steps = math.ceil(EQUITY_YEARS / dt)
    with np.errstate(divide="ignore", invalid="ignore"):
        series = np.where(x < 1.0, -np.expm1(steps * np.log(x)) / (1.0 - x), float(steps))
    return contribution * dt * (1.0 + r) / 2.0 * v * series


def top_share(values: np.ndarray, top: float = 0.2) -> float:
    """Share of the total held by the top ``top`` fraction (by value)."""
    total = values.sum(dtype=np.float64)
    if values.size == 0 or total <= 0:
        return 0.0
    k = max(int(round(top * values.size)), 1)
    # At most 1: when the top k hold everything, their sum, added in another order than the
    # total, can exceed it in the last bit.
    return min(float(np.partition(values, values.size - k)[values.size - k:].sum() / total), 1.0)


def npv_total_at_horizons(ts: pd.DataFrame, period_days: float) -> dict[str, float]:
    """``npv_total`` as if the run had ended at each of ``HORIZONS`` years: discounted profit
    up to the step nearest the horizon plus the customer equity then, discounted to time 0.
    A horizon the run does not reach (within half a step) is left out."""
    dt = step_years(period_days)
    last = int(ts["step"].iloc[-1])
    cumulative = ts["profit_discounted"].where(ts["step"] > 0, 0.0).cumsum().to_numpy()
    out: dict[str, float] = {}
    for h in HORIZONS:
        k = int(round(h / dt))
        if 1 <= k <= last:
            out[f"npv_total_{h}y"] = float(
                cumulative[k] + ts["customer_equity"].iloc[k] * ts["discount_factor"].iloc[k])
    return out


def summarize(ts: pd.DataFrame, pop: Population, period_days: float) -> dict[str, float]:
    # The steps' columns as numpy arrays, each taken when first read: the same sums as pandas'
    # (pairwise, NaN as 0) without filtering the frame, ~2x faster.
    later = ts["step"].to_numpy() > 0
    steps = _Taken(lambda name: ts[name].to_numpy()[later])
    total = _Taken(lambda name: np.nansum(steps[name]))

    def last(name: str):
        return ts[name].to_numpy()[-1]

    churned = float(total["churned"])
    equity_final = float(last("customer_equity") * last("discount_factor"))
    exposure_years = (float(total["at_risk"]) - churned / 2.0) * step_years(period_days)
    ever = pop.ever_customer
    out = {
        "n_people": pop.n,
        "steps": int(last("step")),
        "active_final": int(last("n_active")),
        "acquired_total": int(total["acquired"]),
        "churned_total": int(total["churned"]),
        "won_back_total": int(total["won_back"]),
        "terminated_total": int(total["terminated"]),
        "revenue_total": float(total["revenue"]),
        "cost_total": float(total["cost_total"]),
        "crm_spend_total": float(total["crm_spend"]),
        "profit_total": float(total["profit"]),
        "npv_profit": float(total["profit_discounted"]),
        "customer_equity_final": equity_final,
        "npv_total": float(total["profit_discounted"]) + equity_final,
        **npv_total_at_horizons(ts, period_days),
        "retention_rate_annual": math.exp(-churned / exposure_years) if exposure_years > 0 else 1.0,
        "clv_realised_mean": float(pop.margin_discounted[ever].mean()) if ever.any() else 0.0,
        "top20_revenue_share": top_share(pop.revenue[ever]),
        "wom_positive_total": int(total["wom_positive"]),
        "wom_negative_total": int(total["wom_negative"]),
        "complaints_total": int(total["complaints"]),
        "satisfaction_mean_final": float(last("satisfaction_mean")),
        "nps_final": float(last("nps")),
        **_writeup_measures(steps, total, pop, period_days),
    }
    return out


class _Taken(dict):
    """A column's values (or sum), made by ``make(name)`` when first read."""

    def __init__(self, make) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, name: str):
        value = self[name] = self._make(name)
        return value


def _annual_churn(churned: float, at_risk: float, dt: float) -> float:
    """Annual churn from customers who left and customer-steps at risk (a leaver was at risk for
    half of its step), as ``retention_rate_annual``; 0 without exposure."""
    exposure = (at_risk - churned / 2.0) * dt
    return float(-math.expm1(-churned / exposure)) if exposure > 0 else 0.0


def _writeup_measures(steps: _Taken, total: _Taken, pop: Population,
                      period_days: float) -> dict[str, float]:
    dt = step_years(period_days)
    first = steps["step"] * dt <= 1.0 + dt / 2
    customers = max(int(np.count_nonzero(pop.ever_customer)), 1)
    customer_years = float(total["n_active"]) * dt
    return {
        "churn_year1": _annual_churn(float(np.nansum(steps["churned"][first])),
                                     float(np.nansum(steps["at_risk"][first])), dt),
        "trapped_total": int(total["trapped"]),
        "reputation_final": float(steps["reputation"][-1]) if steps["step"].size else 0.0,
        "profit_per_customer": float(total["profit"]) / customers,
        "npv_per_customer": float(total["profit_discounted"]) / customers,
        "spend_per_customer_year": (float(total["sales"]) / customer_years
                                    if customer_years > 0 else 0.0),
    }
