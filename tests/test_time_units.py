"""A week or a month, the same firm: the step length is only a resolution.

Every policy runs the same market for the same 1050 days (150 weekly, 75 fortnightly or 35
thirty-day steps) on the same seeds. Annual retention, revenue per year and NPV must agree
between step lengths within their sampling error, and CRM spend per year must be the budget
whatever the step.

How the tolerance is derived: runs with the same seed share the population and the network
(the same random streams build them), so each seed gives a paired difference d_s = KPI(7 days)
- KPI(other step). Under "the step length does not matter" the mean of the S paired differences
is zero, and mean(d) / (sd(d) / sqrt(S)) follows Student's t with S - 1 degrees of freedom. We
allow the two-sided quantile at a family-wise error of 1% over every comparison the test makes
(Bonferroni: policies x KPIs x step lengths). With 12 seeds of 1500 people the per-seed
paired differences have a standard deviation of about 1.1 percentage points of retention and 4%
of revenue, so a step dependence of about 1.7 points of retention or 6% of revenue is flagged.
``test_the_check_detects_a_step_dependence`` shows it: a 10% revenue error on the 30-day side
only (the size of what buying a whole step in the step a customer joins or leaves did to monthly
runs) fails the same check. The market's spend is less concentrated than the default
(top20_share 0.5) because a few very large customers would dominate the revenue noise; that
does not touch how time is handled.
"""

import numpy as np
import pytest
from scipy import stats

import crmsim
from crmsim.policies import POLICIES

DAYS = 1050
STEP_LENGTHS = (14, 30)          # compared with 7
SEEDS = range(12)
MARKET = ["market.n_people=1500", "market.spend.top20_share=0.5"]
KPIS = ("retention_rate_annual", "revenue_per_year", "npv_profit")
FAMILY = len(POLICIES) * len(KPIS) * len(STEP_LENGTHS)
T_LIMIT = stats.t.ppf(1 - 0.01 / FAMILY / 2, len(SEEDS) - 1)


def run(policy: str, period_days: int, seed: int, extra=()) -> dict[str, float]:
    cfg = crmsim.load_config([*MARKET, f"policy={policy}", f"sim.period_days={period_days}",
                              f"sim.steps={DAYS // period_days}", f"seed={seed}",
                              "sim.record_customers=false", *extra])
    s = crmsim.simulate(cfg).summary
    years = DAYS / 365
    return {**s, "revenue_per_year": s["revenue_total"] / years,
            "crm_spend_per_year": s["crm_spend_total"] / years,
            "budget_per_year": float(cfg.firm.crm_budget)}


def paired_t(weekly: list[dict], other: list[dict], kpi: str) -> float:
    d = np.array([a[kpi] - b[kpi] for a, b in zip(weekly, other, strict=True)])
    se = d.std(ddof=1) / np.sqrt(d.size)
    return float(d.mean() / se) if se > 0 else (0.0 if d.mean() == 0 else np.inf)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_step_length_does_not_change_the_answer(policy):
    weekly = [run(policy, 7, s) for s in SEEDS]
    for days in STEP_LENGTHS:
        other = [run(policy, days, s) for s in SEEDS]
        for kpi in KPIS:
            t = paired_t(weekly, other, kpi)
            assert abs(t) <= T_LIMIT, (policy, days, kpi, t, T_LIMIT)
        for r in [*weekly, *other]:
            # Every policy spends exactly its annual budget, whatever the step.
            assert r["crm_spend_per_year"] == pytest.approx(r["budget_per_year"], rel=1e-9)


def test_the_check_detects_a_step_dependence():
    weekly = [run("transactional", 7, s) for s in SEEDS]
    lower = 0.9 * crmsim.load_config(MARKET).market.spend.mean
    broken = [run("transactional", 30, s, [f"market.spend.mean={lower}"]) for s in SEEDS]
    ts = [abs(paired_t(weekly, broken, kpi)) for kpi in KPIS]
    assert max(ts) > T_LIMIT, (ts, T_LIMIT)
