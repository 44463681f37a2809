"""Coverage of the 95% intervals of ``crmsim calibrate``'s stage A, measured on known truth.

Each repeat simulates a limit case with a new seed, writes the file a firm would have and
calibrates it; a parameter is covered when its generating value lies inside the reported 95%
interval. Sizes are those of tests/test_calibrate.py. Prints the share covered per parameter.

    .venv/bin/python experiments/calibrate_coverage.py [REPEATS [FIRST_SEED] [CASE ...]]
        (default 40 of each of sbg, bgnbd, spend, bass, bgnbd-direct from seed 1000; a few
        seconds a repeat on an idle core)

bgnbd-direct draws BG/NBD data straight from the model (no crmsim simulation), to tell the
estimator's coverage from that of crmsim's simulated logs.
"""

from __future__ import annotations

import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

import crmsim
from crmsim.calibrate import calibrate
from crmsim.calibrate.data import cohort_table_of

MONTH = 365 / 12


def monthly(preset: str, months: int, *overrides: str):
    return crmsim.simulate(crmsim.load_config([
        f"+validation={preset}", f"sim.period_days={MONTH!r}", f"sim.steps={months}",
        "sim.record_events=true", *overrides]))


def purchases(run, path: Path) -> Path:
    ev = run.events
    ev.loc[ev["event"] == "purchase", ["customer_id", "date", "amount"]].to_parquet(path, index=False)
    return path


def bgnbd_direct(seed: int, _dir: Path, n: int = 3000, years: float = 104 * 7 / 365):
    """BG/NBD drawn straight from the model with numpy (no crmsim simulation), the sizes of the
    bgnbd case: what the estimator and its intervals do when the data are exactly BG/NBD."""
    from crmsim.calibrate import estimators as est

    rng = np.random.default_rng(seed)
    truth = BGNBD_DIRECT
    lam = rng.gamma(truth["market.purchase.r"], 1 / truth["market.purchase.alpha"], n)
    p = rng.beta(truth["market.purchase.a"], truth["market.purchase.b"], n)
    t, x, t_x = np.zeros(n), np.zeros(n), np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        t[alive] += rng.exponential(1 / lam[alive])
        alive &= t <= years
        x[alive] += 1
        t_x[alive] = t[alive]
        alive &= rng.random(n) >= p
    return types.SimpleNamespace(estimates=est.fit_bgnbd(x, t_x, np.full(n, years)).estimates)


BGNBD_DIRECT = {"market.purchase.r": 2.0, "market.purchase.alpha": 0.4, "market.purchase.a": 1.0,
                "market.purchase.b": 9.0}

CASES = {
    "sbg": ({"market.churn.alpha": 0.9, "market.churn.beta": 2.0},
            lambda s, d: (cohort_table_of(monthly("cohort", 36, "market.n_people=4000",
                                                  "market.churn.alpha=0.9", "market.churn.beta=2.0",
                                                  f"seed={s}")).to_csv(d / "c.csv", index=False),
                          calibrate(d / "c.csv", period="month"))[1]),
    "bgnbd": ({"market.purchase.r": 2.0, "market.purchase.alpha": 0.4, "market.purchase.a": 1.0,
               "market.purchase.b": 9.0, "market.purchase.p": 5.0, "market.purchase.q": 4.0,
               "market.purchase.gamma": 60.0},
              lambda s, d: calibrate(purchases(crmsim.simulate(crmsim.load_config([
                  "+validation=bgnbd", "market.n_people=3000", f"seed={s}", "market.purchase.r=2",
                  "market.purchase.alpha=0.4", "market.purchase.a=1", "market.purchase.b=9",
                  "market.purchase.p=5", "market.purchase.q=4", "market.purchase.gamma=60"])),
                  d / "l.parquet"))),
    "spend": ({"market.spend.mean": 600.0, "market.spend.top20_share": 0.6},
              lambda s, d: calibrate(purchases(monthly(
                  "cohort", 24, "market.n_people=2000", "market.spend.mean=600",
                  "market.spend.top20_share=0.6", "market.churn.alpha=1", "market.churn.beta=6",
                  "market.spend.satisfaction_effect=0",
                  f"seed={s}"), d / "s.parquet"), setting="contractual", period="month")),
    "bass": ({"adoption.innovation": 0.08, "adoption.imitation": 0.9},
             lambda s, d: calibrate(purchases(monthly(
                 "bass", 72, "market.n_people=3000", "adoption.innovation=0.08",
                 "adoption.imitation=0.9", f"seed={s}"), d / "b.parquet"),
                 setting="contractual", period="month")),
    "bgnbd-direct": (BGNBD_DIRECT, bgnbd_direct),
}


def main(repeats: int, only: list[str], first: int = 1000) -> None:
    for name, (truth, run) in CASES.items():
        if only and name not in only:
            continue
        hits = {k: 0 for k in truth}
        t0 = time.perf_counter()
        for seed in range(first, first + repeats):
            with tempfile.TemporaryDirectory() as d:
                cal = run(seed, Path(d))
            for k, v in truth.items():
                e = cal.estimates[k]
                hits[k] += int(e.low <= v <= e.high)
        took = time.perf_counter() - t0
        print(f"{name} ({repeats} repeats, {took:.0f} s):")
        for k, h in hits.items():
            share = h / repeats
            se = np.sqrt(share * (1 - share) / repeats)
            print(f"  {k:28s} covered {h}/{repeats} = {share:.0%} (+/- {se:.0%})")
        sys.stdout.flush()


if __name__ == "__main__":
    rest = sys.argv[2:]
    first = int(rest.pop(0)) if rest and rest[0].isdigit() else 1000
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40, rest, first)
