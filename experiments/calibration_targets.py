"""Published regularities the default market should reproduce, measured from the model.

    python experiments/calibration_targets.py             # measure; rewrite the table in the doc
    python experiments/calibration_targets.py --dry-run   # measure and print only
    python experiments/calibration_targets.py --seeds 4   # fewer replications (quicker)

Each measure runs the model (``crmsim.CRMModel``) and watches it step by step, as a researcher
with the firm's full data would: who was active, how satisfied, how many of their network
neighbours had just left, who left in the step. The measures take the market as Hydra
overrides, so ``tests/test_calibration_targets.py`` measures the same things on small markets
and checks each lies in its band; this script measures them on the default market (10,000
people, weekly steps) and writes the model's values into ``docs/calibration_targets.md``
(between the ``<!-- table -->`` marks; the rest of the doc is prose kept by hand). Re-run it
after any change to a mechanism or a default.

Every measure returns a value with its standard error (from the counts, or from the spread
across seeds where the counts are not independent), so a band can be checked against it.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import optimize

import crmsim
from crmsim.model import CRMModel
from crmsim.policies.base import Policy
from crmsim.population import ACTIVE, LAPSED
from crmsim.tactics import Tactic
from crmsim.units import DAYS_PER_YEAR

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "calibration_targets.md"
BEGIN, END = "<!-- table -->", "<!-- /table -->"


@dataclass(frozen=True)
class Measured:
    value: float
    se: float                 # standard error of ``value``
    detail: str = ""          # what else the measure saw (counts, the parts of a ratio)


# -- running the model --------------------------------------------------------------------
def build(overrides: Sequence[str], seed: int, policy: Policy | None = None) -> CRMModel:
    cfg = crmsim.load_config([*overrides, f"seed={seed}"])
    return CRMModel(cfg, policy)


def steps_in(model: CRMModel, years: float) -> int:
    return max(1, round(years * DAYS_PER_YEAR / model.cfg.sim.period_days))


class RandomisedArm(Policy):
    """A field experiment's treatment: one tactic, at its catalogue's default effect sizes,
    for a fixed random share of the customers at the start (the treated), at no budget limit;
    nobody else is touched. ``once``: a single contact at the first step (a campaign), else the
    tactic runs every step for whoever of the treated it can reach (coverage, contracts)."""

    def __init__(self, tactic: str, treated_share: float, seed: int, once: bool = False,
                 **params: float) -> None:
        cfg = crmsim.load_config([f"policy.tactics.{tactic}.enabled=true"])
        spec = {k: v for k, v in dict(cfg.policy.tactics[tactic]).items()
                if k not in ("enabled", "share")}
        spec.update(params)
        self.tactic = Tactic.registry[tactic](**spec)
        super().__init__({tactic: self.tactic}, {}, {}, None)
        self.treated_share, self.once = treated_share, once
        self.rng = np.random.default_rng([seed, 7919])   # the arm's own draws
        self.treated: np.ndarray | None = None

    def decide(self, view, budget, step):
        from crmsim.actions import Actions

        actions = Actions(view.n)
        if self.treated is None:
            self.treated = (view.status == ACTIVE) & (self.rng.random(view.n) < self.treated_share)
        elif self.once:
            return actions
        idx = np.flatnonzero(self.tactic.candidates(view) & self.treated)
        # Tactics that price each person compute their unit cost in select (all are reached).
        self.tactic.select(view, 1e300, None)
        self.tactic.apply(actions, idx, view)
        self.tactic._remember(idx, view)
        return actions


# -- 1.-3. tenure by satisfaction, negative word of mouth, annual retention ----------------
def default_market(overrides: Sequence[str], seeds: Sequence[int], years: float = 3.0,
                   cut: float = 0.0) -> dict[str, Measured]:
    """What the market does without any campaign, from one run per seed:

    ``tenure_satisfied``, ``tenure_dissatisfied`` (seed 002): expected tenure in years. A
    customer-step counts as satisfied when the customer's satisfaction at the start of the step
    is above ``cut`` (their experience has beaten the competitor and their expectation on
    balance), dissatisfied when below ``-cut``. The group's expected tenure is the mean lifetime
    at its churn hazard: customer-years at risk in the group / its customers who left (the
    life-table estimate, as ``retention_rate_annual``); s.e. T / sqrt(leavers) (a Poisson count).

    ``negative_wom_share`` (East, Hammond & Wright 2007): negative messages heard / all
    messages heard about the brand (told after encounters, by the trapped and terminated, by
    destructive customers, viral); s.e. from the spread across seeds (messages are clustered).

    ``annual_retention``: ``retention_rate_annual`` of the runs pooled (exp(-leavers /
    customer-years)); s.e. by the delta method from the Poisson count of leavers."""
    exposure, left = np.zeros(2), np.zeros(2)
    shares, churned, years_at_risk = [], 0.0, 0.0
    for seed in seeds:
        model = build(overrides, seed)
        for _ in range(steps_in(model, years)):
            pop = model.population
            active = pop.status == ACTIVE
            groups = (active & (pop.satisfaction > cut), active & (pop.satisfaction < -cut))
            model.step()
            gone = pop.status == LAPSED
            for k, g in enumerate(groups):
                n_left = np.count_nonzero(g & gone)
                exposure[k] += (np.count_nonzero(g) - n_left / 2.0) * model.dt
                left[k] += n_left
        ts = model.timeseries()
        neg, pos = ts["wom_negative"].sum(), ts["wom_positive"].sum()
        shares.append(neg / max(neg + pos, 1.0))
        # As metrics.summarize's retention_rate_annual, pooled over the seeds.
        steps = ts[ts["step"] > 0]
        churned += float(steps["churned"].sum())
        years_at_risk += (float(steps["at_risk"].sum())
                          - float(steps["churned"].sum()) / 2.0) * model.dt
    out = {}
    for k, name in enumerate(("tenure_satisfied", "tenure_dissatisfied")):
        t = exposure[k] / max(left[k], 1.0)
        out[name] = Measured(t, t / math.sqrt(max(left[k], 1.0)),
                             f"{left[k]:.0f} left in {exposure[k]:,.0f} customer-years")
    out["negative_wom_share"] = _across(shares, "share per seed")
    r = math.exp(-churned / years_at_risk)
    out["annual_retention"] = Measured(r, r * math.sqrt(churned) / years_at_risk,
                                       f"{churned:.0f} left in {years_at_risk:,.0f} "
                                       "customer-years")
    return out


def _across(values: Sequence[float], what: str) -> Measured:
    v = np.asarray(values, dtype=float)
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")
    return Measured(float(v.mean()), se, f"{what}: " + ", ".join(f"{x:.3f}" for x in v))


# -- 4. churn contagion (Nitzan & Libai 2011) -----------------------------------------------
def contagion_hazard_ratio(overrides: Sequence[str], seeds: Sequence[int], years: float = 3.0,
                           window_days: float = 30.0) -> Measured:
    """Hazard ratio per recently lapsed network neighbour, as a researcher would estimate it.

    Data: every active customer-step, with the number of the customer's network neighbours
    (both tie layers) who lapsed within the last ``window_days``, and whether the customer left
    in the step. Model: a Poisson regression of leaving on that count (log link, one constant),
    the discrete-time analogue of the proportional-hazards model of Nitzan & Libai (2011); the
    hazard ratio is exp(slope), its standard error from the Fisher information (delta method).
    No other covariate is adjusted for: in the model a customer's own traits do not depend on
    their neighbours', so nothing confounds the count but shared word of mouth."""
    tally: dict[int, list[float]] = {}
    for seed in seeds:
        model = build(overrides, seed)
        net, days = model.network, model.cfg.sim.period_days
        for _ in range(steps_in(model, years)):
            pop = model.population
            active = pop.status == ACTIVE
            recent = (pop.lapsed_at >= 0) & ((model.steps - pop.lapsed_at) * days <= window_days)
            count = net.neighbour_sum(recent, "strong")
            if net.weak is not None:
                count = count + net.neighbour_sum(recent, "weak")
            count = np.rint(count).astype(np.int64)
            was = np.flatnonzero(active)
            model.step()
            gone = pop.status[was] == LAPSED
            k = count[was]
            n_at = np.bincount(k)
            n_left = np.bincount(k, weights=gone, minlength=n_at.size)
            for j in np.flatnonzero(n_at):
                t = tally.setdefault(int(j), [0.0, 0.0])
                t[0] += n_at[j]
                t[1] += n_left[j]
    k = np.array(sorted(tally), dtype=float)
    n = np.array([tally[int(j)][0] for j in k])
    y = np.array([tally[int(j)][1] for j in k])

    def nll(theta):
        mu = n * np.exp(theta[0] + theta[1] * k)
        return float((mu - y * (theta[0] + theta[1] * k)).sum())

    start = np.array([math.log(max(y.sum(), 1.0) / n.sum()), 0.0])
    fit = optimize.minimize(nll, start, method="Nelder-Mead",
                            options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
    mu = n * np.exp(fit.x[0] + fit.x[1] * k)
    info = np.array([[mu.sum(), (mu * k).sum()], [(mu * k).sum(), (mu * k * k).sum()]])
    se_b = float(math.sqrt(np.linalg.inv(info)[1, 1]))
    hr = math.exp(fit.x[1])
    exposed = int(n[k > 0].sum())
    return Measured(hr, hr * se_b, f"{int(y.sum())} left, {int(y[k > 0].sum())} of them among "
                                   f"{exposed:,} customer-steps with a recently lapsed neighbour")


def trial(overrides: Sequence[str], seed: int, arm: RandomisedArm, years: float,
          after_step: Callable[[CRMModel], object] | None = None):
    """Run ``arm`` for ``years``: the model, who were customers at the start, and which of
    them stopped being customers at some step (a break in the relationship)."""
    model = build(overrides, seed, policy=arm)
    start = model.population.status == ACTIVE
    left = np.zeros(model.population.n, dtype=bool)
    for _ in range(steps_in(model, years)):
        model.step()
        if after_step is not None:
            after_step(model)
        left |= start & (model.population.status != ACTIVE)
    return model, start, left


# -- 5., 6. loyalty programme and switching cost: retention treated vs untreated -------------
def retention_effect(overrides: Sequence[str], seeds: Sequence[int], tactic: str,
                     years: float = 1.0, treated_share: float = 0.5) -> tuple[Measured, Measured]:
    """A randomised field test: ``tactic`` for a random half of the customers at the start,
    at its default effect sizes, for ``years``; the rest untreated. Returns the difference in
    the share still customers without a break (treated - untreated, in share points) and the
    correlation between treatment and staying (phi, the r of the meta-analyses), with
    standard errors from the binomial counts."""
    stay, size = np.zeros(2), np.zeros(2)
    for seed in seeds:
        arm = RandomisedArm(tactic, treated_share, seed)
        _, start, left = trial(overrides, seed, arm, years)
        for k, group in enumerate((arm.treated, start & ~arm.treated)):
            stay[k] += np.count_nonzero(group & ~left)
            size[k] += np.count_nonzero(group)
    p = stay / size
    diff = p[0] - p[1]
    se = math.sqrt(p[0] * (1 - p[0]) / size[0] + p[1] * (1 - p[1]) / size[1])
    q = size[0] / size.sum()
    pbar = stay.sum() / size.sum()
    scale = math.sqrt(q * (1 - q) / (pbar * (1 - pbar)))
    detail = (f"kept {p[0]:.3f} treated (n={size[0]:.0f}) vs {p[1]:.3f} untreated "
              f"(n={size[1]:.0f}) after {years:g} year(s)")
    return Measured(diff, se, detail), Measured(diff * scale, se * scale, detail)


# -- 7. a retention contact that backfires (Ascarza, Iyengar & Schleicher 2016) -------------
def contact_backfire(overrides: Sequence[str], seeds: Sequence[int], months: float = 3.0,
                     **params: float) -> tuple[Measured, Measured]:
    """One cross-sell contact (an up-sell offer, as the plan recommendation with a credit in
    the field experiment) for a random half of the customers at the first step; churn over the
    next ``months`` among the contacted and among the others. Returns the churn ratio
    contacted / not contacted (the experiment's 10.0% / 6.4%) and the ratio among the contacted
    whom the offer annoyed; log-ratio standard errors from the binomial counts."""
    counts = np.zeros((3, 2))   # rows: contacted, annoyed, control; columns: left, size
    for seed in seeds:
        arm = RandomisedArm("cross_sell", 0.5, seed, once=True, **params)
        seen: list[np.ndarray] = []   # who was annoyed by the contact (after the first step)
        _, start, left = trial(overrides, seed, arm, months / 12.0,
                               lambda m, seen=seen: seen or seen.append(m.population.annoyance > 0))
        annoyed = seen[0]
        for k, group in enumerate((arm.treated, arm.treated & annoyed, start & ~arm.treated)):
            counts[k] += (np.count_nonzero(group & left), np.count_nonzero(group))
    return _ratio(counts[0], counts[2]), _ratio(counts[1], counts[2])


def _ratio(a: np.ndarray, b: np.ndarray) -> Measured:
    pa, pb = a[0] / max(a[1], 1.0), b[0] / max(b[1], 1.0)
    r = pa / pb if pb > 0 else float("nan")
    se_log = math.sqrt(max(1 - pa, 0) / max(a[0], 1.0) + max(1 - pb, 0) / max(b[0], 1.0))
    return Measured(r, r * se_log, f"{pa:.3f} of {a[1]:.0f} vs {pb:.3f} of {b[1]:.0f} left")


# -- 8. social multiplier of a campaign (Ascarza, Ebbes, Netzer & Danielson 2017) -----------
def social_multiplier(overrides: Sequence[str], seeds: Sequence[int], years: float = 1.0,
                      tactic: str = "value_add", treated_share: float = 0.2) -> Measured:
    """A campaign (``tactic`` at its default sizes) for a random ``treated_share`` of the
    customers; over ``years``, the drop in leaving among the untargeted customers with a
    targeted network neighbour, as a share of the drop among the targeted, both against the
    untargeted customers with no targeted neighbour. Ascarza et al. report the multiplier
    1 + that share (1.28); we return the share (0.28), with its standard error by the delta
    method from the binomial counts."""
    counts = np.zeros((3, 2))   # rows: targeted, their untargeted neighbours, the rest
    for seed in seeds:
        arm = RandomisedArm(tactic, treated_share, seed)
        model, start, left = trial(overrides, seed, arm, years)
        near = model.network.neighbour_sum(arm.treated, "all") > 0
        rest = start & ~arm.treated
        for k, group in enumerate((arm.treated, rest & near, rest & ~near)):
            counts[k] += (np.count_nonzero(group & left), np.count_nonzero(group))
    p = counts[:, 0] / np.maximum(counts[:, 1], 1.0)
    var = p * (1 - p) / np.maximum(counts[:, 1], 1.0)
    direct, spill = p[2] - p[0], p[2] - p[1]
    share = spill / direct if direct != 0 else float("nan")
    # d(share) = d(spill)/direct - spill d(direct)/direct^2, with p[2] in both
    g = np.array([spill / direct**2, -1.0 / direct, 1.0 / direct - spill / direct**2])
    se = float(math.sqrt((g**2 * var).sum())) if direct != 0 else float("nan")
    return Measured(share, se, f"left: targeted {p[0]:.3f} (n={counts[0, 1]:.0f}), their "
                               f"neighbours {p[1]:.3f} (n={counts[1, 1]:.0f}), others {p[2]:.3f} "
                               f"(n={counts[2, 1]:.0f})")


# -- the table -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    key: str
    regularity: str
    source: str
    target: str
    band: tuple[float, float]
    fmt: str
    test: str
    measure: Callable[[Sequence[str], Sequence[int]], Measured]
    note: str = ""


_MARKET: dict[tuple, dict[str, Measured]] = {}


def _market(name: str) -> Callable[[Sequence[str], Sequence[int]], Measured]:
    """One of ``default_market``'s measures (the runs made once per market and seeds)."""
    def measure(o: Sequence[str], s: Sequence[int]) -> Measured:
        key = (tuple(o), tuple(s))
        if key not in _MARKET:
            _MARKET[key] = default_market(o, s)
        return _MARKET[key][name]
    return measure


TARGETS: tuple[Target, ...] = (
    Target("tenure_satisfied", "Expected tenure of satisfied customers (satisfaction > 0), years",
           "seed 002 (good experience: ~6 years with the firm)", "about 6; band 4.5-8",
           (4.5, 8.0), "{:.1f}", "test_tenure_by_satisfaction", _market("tenure_satisfied")),
    Target("tenure_dissatisfied",
           "Expected tenure of dissatisfied customers (satisfaction < 0), years",
           "seed 002 (bad experience: gone within a year)", "at most 1; band 0-1.25",
           (0.0, 1.25), "{:.2f}", "test_tenure_by_satisfaction",
           _market("tenure_dissatisfied")),
    Target("negative_wom_share", "Share of negative messages among all heard about the brand",
           "East, Hammond & Wright 2007, IJRM 24(2): PWOM:NWOM about 3:1 in 15 studies",
           "0.25; band 0.18-0.33 (ratios 2:1 to 4.5:1)", (0.18, 0.33), "{:.3f}",
           "test_negative_wom_share_and_retention", _market("negative_wom_share")),
    Target("annual_retention", "Annual retention of the customer base",
           "European mobile churn 21-38% a year (Ascarza, Iyengar & Schleicher, HBR Oct 2015)",
           "0.62-0.79", (0.62, 0.79), "{:.3f}", "test_negative_wom_share_and_retention",
           _market("annual_retention")),
    Target("contagion_hr", "Churn hazard ratio per neighbour who left in the last 30 days",
           "Nitzan & Libai 2011, J. Marketing 75(6): +80% (1.8), one million cellular customers",
           "1.8; band 1.5-2.1", (1.5, 2.1), "{:.2f}", "test_contagion_hazard_ratio",
           contagion_hazard_ratio),
    Target("loyalty_r", "Loyalty programme: correlation of membership with staying a year (phi)",
           "loyalty-programme meta-analyses: positive, r < .30 (Belli et al. 2022, JAMS 50)",
           "0 < r < 0.30", (0.0, 0.30), "{:.3f}", "test_loyalty_and_switching_cost_effects",
           lambda o, s: retention_effect(o, s, "loyalty")[1]),
    Target("switching_cost_r",
           "Switching cost (a one-year contract): correlation with staying two years (phi)",
           "Pick & Eisend 2014, JAMS 42(2): switching costs have only a weak effect on switching",
           "0 < r < 0.30", (0.0, 0.30), "{:.3f}", "test_loyalty_and_switching_cost_effects",
           lambda o, s: retention_effect(o, s, "switching_cost", years=2.0)[1]),
    Target("backfire_annoyed",
           "Churn in 3 months after an up-sell contact, annoyed / not contacted",
           "Ascarza, Iyengar & Schleicher 2016, JMR 53(1): 10.0% vs 6.4% (65,000 customers)",
           "1.56; band 1.25-1.9", (1.25, 1.9), "{:.2f}", "test_contact_backfires",
           # every contacted customer who does not take the offer annoyed (annoy_share=1), at
           # the catalogue's annoy_hazard: the effect on the annoyed, not how many are
           lambda o, s: contact_backfire(o, s, annoy_share=1.0)[1]),
    Target("backfire_contacted",
           "Churn in 3 months after an up-sell contact, all contacted / not contacted",
           "Ascarza, Iyengar & Schleicher 2016 (as above)", "1.56 (not reached)",
           (1.25, 1.9), "{:.3f}", "(reported, not tested)",
           lambda o, s: contact_backfire(o, s)[0]),
    Target("social_multiplier",
           "Campaign effect on untargeted neighbours, share of the effect on the targeted",
           "Ascarza, Ebbes, Netzer & Danielson 2017, JMR 54(3): multiplier 1.28 (~6,000 customers)",
           "0.28; band 0.05-0.6", (0.05, 0.6), "{:.2f}", "test_social_multiplier",
           social_multiplier),
)


def measure_all(overrides: Sequence[str], seeds: Sequence[int]) -> dict[str, Measured]:
    out = {}
    for t in TARGETS:
        out[t.key] = t.measure(overrides, seeds)
        print(f"{t.key}: {t.fmt.format(out[t.key].value)} ± {out[t.key].se:.3g}  "
              f"({out[t.key].detail})", flush=True)
    return out


def table(values: dict[str, Measured], seeds: Sequence[int]) -> str:
    lines = ["| regularity | source | target (band) | model (± s.e.) | in band | checked by |",
             "|---|---|---|---|---|---|"]
    for t in TARGETS:
        m = values[t.key]
        inside = "yes" if t.band[0] <= m.value <= t.band[1] else "**no**"
        test = t.test if t.test.startswith("(") else f"`tests/test_calibration_targets.py::{t.test}`"
        lines.append(f"| {t.regularity} | {t.source} | {t.target} | "
                     f"{t.fmt.format(m.value)} ± {m.se:.2g} | {inside} | {test} |")
    lines.append("")
    lines.append(f"Measured by `python experiments/calibration_targets.py` on the default market "
                 f"(10,000 people, weekly steps, transactional policy), seeds "
                 f"{seeds[0]}-{seeds[-1]}; s.e. is the standard error of the estimate.")
    return "\n".join(lines)


def write_table(text: str, path: Path = DOC) -> None:
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{path}: the marks {BEGIN} and {END} are missing; nothing written")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8, help="replications per measure (default 8)")
    ap.add_argument("--dry-run", action="store_true", help="print the table, write nothing")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides of the default market")
    args = ap.parse_args(argv)
    seeds = list(range(args.seeds))
    values = measure_all(args.overrides, seeds)
    text = table(values, seeds)
    print(text)
    if not args.dry_run and not args.overrides:
        write_table(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
