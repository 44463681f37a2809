"""Fit pymc-marketing's CLV models to crmsim event logs and compare with the generating numbers.

    pip install -e ".[clv]"
    python experiments/clv_pymc_marketing.py [--n-people 10000] [--seed 0]

1. Retail (``+validation=bgnbd``): BG/NBD and Gamma-Gamma on ``crmsim.export.rfm`` of the log,
   with recency and T in years, so the fitted r, alpha, a, b, p, q, gamma are directly the
   config's ``market.purchase.*``.
2. Subscriptions (``+validation=cohort``, weekly steps): the shifted-beta-geometric model on
   ``crmsim.export.cohort_table``; its alpha is ``market.churn.alpha`` and its beta about
   (365 / 7) x ``market.churn.beta`` (the churn parameters are annual, the fit is per week).

Fits are maximum a posteriori with pymc-marketing's default priors (quick); pass ``--mcmc`` for
posterior samples. See docs/events.md for the event log and the units.
"""

from __future__ import annotations

import argparse
import warnings

import pandas as pd

import crmsim
from crmsim import export

try:
    from pymc_marketing import clv
except ImportError as err:  # pragma: no cover - the message is the point
    raise SystemExit("this example needs pymc-marketing: pip install -e \".[clv]\"") from err


def fitted(model, names) -> pd.Series:
    post = model.fit_result if hasattr(model, "fit_result") else model.idata.posterior
    return pd.Series({k: float(post[k].mean()) for k in names})


def retail(n_people: int, seed: int, method: str) -> pd.DataFrame:
    res = crmsim.simulate(crmsim.load_config(
        ["+validation=bgnbd", f"market.n_people={n_people}", f"seed={seed}"]))
    data = export.rfm(res, time_unit="D", time_scaler=365.0)
    bg = clv.BetaGeoModel(data=data[["customer_id", "frequency", "recency", "T"]])
    bg.fit(method=method)
    repeat = data[data["frequency"] > 0]
    gg = clv.GammaGammaModel(data=repeat[["customer_id", "monetary_value", "frequency"]])
    gg.fit(method=method)
    pc = res.config.market.purchase
    truth = pd.Series({k: float(pc[k]) for k in ("r", "alpha", "a", "b", "p", "q", "gamma")})
    got = pd.concat([fitted(bg, ["r", "alpha", "a", "b"]), fitted(gg, ["p", "q", "v"])])
    got = got.rename({"v": "gamma"})
    return pd.DataFrame({"generating": truth, "pymc-marketing": got[truth.index]})


def subscriptions(n_people: int, seed: int, method: str) -> pd.DataFrame:
    res = crmsim.simulate(crmsim.load_config(
        ["+validation=cohort", f"market.n_people={n_people}", f"seed={seed}", "sim.steps=104",
         "sim.period_days=7", "sim.record_events=true"]))
    data = export.cohort_table(res)
    sbg = clv.ShiftedBetaGeoModel(data=data)
    sbg.fit(method=method)
    ch = res.config.market.churn
    steps_per_year = 365.0 / res.config.sim.period_days
    truth = pd.Series({"alpha": ch.alpha, "beta": ch.beta * steps_per_year})
    return pd.DataFrame({"generating (beta per step)": truth,
                         "pymc-marketing": fitted(sbg, ["alpha", "beta"])})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-people", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mcmc", action="store_true", help="sample the posterior instead of MAP")
    args = ap.parse_args()
    method = "mcmc" if args.mcmc else "map"
    warnings.filterwarnings("ignore", category=FutureWarning)
    print("Retail: BG/NBD + Gamma-Gamma on crmsim.export.rfm (+validation=bgnbd)")
    print(retail(args.n_people, args.seed, method).round(4).to_string())
    print("\nSubscriptions: shifted-beta-geometric on crmsim.export.cohort_table "
          "(+validation=cohort, weekly)")
    print(subscriptions(args.n_people, args.seed, method).round(4).to_string())


if __name__ == "__main__":
    main()
