"""Make the worked example's data in docs/examples/ (docs/calibrate.md) from crmsim itself, so
the market behind them is known:

- ``cohorts.csv``: monthly cohorts of a subscription firm: the default market (every modifier
  on) with ``market.churn.alpha=0.8``, ``market.churn.beta=2.5`` (an illustration), 3,000
  people, a third of them customers at the start, 3 years in steps of a month (365/12 days);
- ``transactions.parquet``: a retailer's log, ``customer_id, date, amount``, dates to the day:
  the default non-contractual market (every modifier on) with ``market.purchase.alpha=0.5``,
  ``market.purchase.b=19`` (illustrations), 1,500 people, 40% customers at the start, 18 months.

    .venv/bin/python experiments/calibrate_examples.py
"""

from __future__ import annotations

from pathlib import Path

import crmsim
from crmsim.calibrate.data import cohort_table_of

OUT = Path(__file__).resolve().parents[1] / "docs" / "examples"
COHORT_RUN = ["market.n_people=3000", "market.initial_customer_share=0.33",
              "market.churn.alpha=0.8", "market.churn.beta=2.5", "sim.period_days=30.416666666666668",
              "sim.steps=36", "sim.record_events=true", "seed=11"]
LOG_RUN = ["market.purchase.kind=noncontractual", "market.n_people=1500",
           "market.initial_customer_share=0.4", "market.purchase.alpha=0.5", "market.purchase.b=19",
           "sim.steps=78", "sim.record_events=true", "seed=12"]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    run = crmsim.simulate(crmsim.load_config(COHORT_RUN))
    cohort_table_of(run).to_csv(OUT / "cohorts.csv", index=False)
    run = crmsim.simulate(crmsim.load_config(LOG_RUN))
    ev = run.events
    buys = ev.loc[ev["event"] == "purchase", ["customer_id", "date", "amount"]]
    buys = buys.assign(date=buys["date"].dt.floor("D").dt.date, amount=buys["amount"].round(2))
    buys.to_parquet(OUT / "transactions.parquet", index=False)
    for f in sorted(OUT.iterdir()):
        print(f, f.stat().st_size)


if __name__ == "__main__":
    main()
