"""Stage A: what the data say directly, in seconds (the estimators of ``estimators``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from ..export import rfm
from . import estimators as est
from .data import YEAR_DAYS, Data, cohorts_from_log, first_purchases

YEAR_S = 365 * 86400    # rfm in seconds / YEAR_S = years, the unit of market.purchase.*
# Bass is fitted only to a log whose first period brings no more new customers than the
# largest later period (a log that starts with a stock of existing customers has its whole
# stock in the first period), and that spans at least this many periods with new customers.
BASS_MIN_PERIODS = 6
# A pair of estimates this correlated is reported as weakly identified apart.
STRONG_CORRELATION = 0.8
# The keys a calibration can set in each setting; the others always keep their defaults.
CALIBRATED_KEYS = {
    "contractual": ("market.churn.alpha", "market.churn.beta", "market.spend.mean",
                    "market.spend.top20_share", "adoption.innovation", "adoption.imitation"),
    "noncontractual": tuple(f"market.purchase.{k}" for k in est.BGNBD + est.GG)
    + ("adoption.innovation", "adoption.imitation"),
}


@dataclass
class StageA:
    setting: str
    period: str
    period_days: float
    fits: dict[str, est.Fit] = field(default_factory=dict)
    cohorts: dict | None = None
    holdout: dict | None = None
    notes: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    bass_series: tuple | None = None

    def estimates(self) -> dict[str, est.Estimate]:
        out = {}
        for f in self.fits.values():
            out.update({k: v for k, v in f.estimates.items() if "." in k})
        return out


def run(data: Data, setting: str, period: str, period_days: float, seed: int = 0) -> StageA:
    a = StageA(setting, period, period_days)
    years = period_days / YEAR_DAYS
    if data.kind == "cohorts":
        a.cohorts = data.cohorts
    elif setting == "contractual":
        a.cohorts = cohorts_from_log(data.log, period_days)
        a.notes.append(f"Cohorts read from the log: a customer's cohort is the {period} of their "
                       f"first payment, and they count as active up to the {period} of their last "
                       "payment; those paying in the last period are still active.")
    if a.cohorts and not _lost_any(a.cohorts):
        a.notes.append("sBG not fitted: nobody in the cohorts left, so the data say nothing "
                       "about churn; market.churn.* stay at their defaults.")
    elif a.cohorts and _try(a, "sbg", "sBG", lambda: est.fit_sbg(a.cohorts, years)):
        a.sizes["customers in the cohorts"] = a.fits["sbg"].n
        a.sizes["cohorts"] = len(a.cohorts)
        a.sizes[f"periods ({period}s), longest cohort"] = max(len(c) for c in a.cohorts.values()) - 1
        a.holdout = sbg_holdout(a.cohorts, years) if data.kind == "cohorts" \
            else subscription_holdout(data.log, period_days)
    if data.kind == "log":
        log = data.log
        a.sizes["transactions"] = len(log)
        a.sizes["customers"] = int(log["customer_id"].nunique())
        if setting == "noncontractual":
            _purchase(a, data)
        else:
            _spend(a, data, seed)
        _bass(a, data, period_days, seed)
    return a


def _lost_any(cohorts: dict) -> bool:
    return any(c[-1] < c[0] for c in cohorts.values())


def _try(a: StageA, name: str, what: str, do) -> bool:
    """``a.fits[name] = do()``, or a note saying why ``what`` was not fitted."""
    try:
        a.fits[name] = do()
        return True
    except est.NotIdentified as err:
        a.notes.append(f"{what} not fitted: {err}.")
        return False


def sbg_holdout(cohorts: dict, years: float) -> dict | None:
    """Fit on the first half of the periods, predict the pooled survival of the later ones."""
    longest = max(len(c) for c in cohorts.values()) - 1
    cut = longest // 2
    if cut < 2:
        return None
    early = {k: c[:cut + 1] for k, c in cohorts.items()}
    try:
        f = est.fit_sbg(early, years)
    except est.NotIdentified:
        return None
    alpha, beta = (f.estimates[k].value for k in ("market.churn.alpha", "market.churn.beta"))
    rows = []
    for k in range(cut + 1, longest + 1):
        obs = pooled_survival(cohorts, k)
        pred = float(est.sbg_survival(alpha, beta, k * years))
        rows.append((k, obs, pred))
    err = np.array([p - o for _, o, p in rows])
    return {"kind": "sbg", "fit_periods": cut, "rows": rows, "mean_abs_error": float(np.mean(np.abs(err))),
            "max_abs_error": float(np.max(np.abs(err))), "alpha": alpha, "beta": beta}


def subscription_holdout(log: pd.DataFrame, period_days: float) -> dict | None:
    """A subscription log cut in time: sBG fitted on the cohorts of the log's first half (as
    the firm saw them then: those paying in its last period still active), predicting how many
    of those customers still pay in each later period of the log, with a 95% band (binomial
    sampling of the customers plus the fit's uncertainty, by the delta method on the log
    scale)."""
    from .data import period_index

    k = period_index(log["date"], log["date"].min(), period_days)
    end = int(k.max())
    cut = (end + 1) // 2                     # the first period left out of the fit
    if cut < 3:
        return None
    early = cohorts_from_log(log[k < cut], period_days)
    if not early or not _lost_any(early):
        return None
    last = int(k[k < cut].max())             # the early log's last period
    years = period_days / YEAR_DAYS
    try:
        f = est.fit_sbg(early, years)
    except est.NotIdentified:
        return None
    theta = np.array([f.estimates[x].value for x in ("market.churn.alpha", "market.churn.beta")])
    full = cohorts_from_log(log, period_days)
    # cohort c (its first period) had n customers paying in the early log's last period
    start = {int(c.split()[-1]): int(n[-1]) for c, n in early.items()}
    periods = np.arange(last + 1, end + 1)

    def predict(th):
        out = np.zeros(periods.size)
        for c, n in start.items():
            s0 = est.sbg_survival(th[0], th[1], (last - c) * years)
            out += n * est.sbg_survival(th[0], th[1], (periods - c) * years) / s0
        return out

    pred = predict(theta)
    obs = np.zeros(periods.size)
    for c in start:
        obs += full[f"period {c}"][periods - c]
    # the fit's uncertainty: gradient in log alpha, log beta (central differences) and the
    # covariance carried to the log scale
    z_cov = f.cov / np.outer(theta, theta)
    h = 1e-4
    grad = np.array([(predict(theta * np.exp(h * e)) - predict(theta * np.exp(-h * e))) / (2 * h)
                     for e in np.eye(2)])
    var_fit = np.einsum("ip,ij,jp->p", grad, z_cov, grad)
    # binomial: each of the n still paying stays with (about) the same conditional survival
    var_bin = pred * (1 - pred / max(sum(start.values()), 1))
    sd = np.sqrt(var_fit + var_bin)
    rows = [(int(t), float(o), float(p), float(s)) for t, o, p, s in zip(periods, obs, pred, sd, strict=True)]
    rel = np.abs(pred - obs) / np.maximum(obs, 1)
    return {"kind": "subscription", "fit_periods": last + 1, "rows": rows,
            "customers": int(sum(start.values())),
            "alpha": float(theta[0]), "beta": float(theta[1]),
            "mean_rel_error": float(rel.mean()), "max_rel_error": float(rel.max()),
            "inside": float(np.mean(np.abs(pred - obs) <= est.Z95 * sd))}


def pooled_survival(cohorts: dict, k: int) -> float:
    """Share of customers active after k periods, pooled over cohorts (the product of the
    pooled period-to-period retention of the cohorts observed that long)."""
    s = 1.0
    for j in range(1, k + 1):
        num = sum(c[j] for c in cohorts.values() if len(c) > j)
        den = sum(c[j - 1] for c in cohorts.values() if len(c) > j)
        if den == 0:
            return float("nan")
        s *= num / den
    return s


def survival_curve(cohorts: dict) -> np.ndarray:
    longest = max(len(c) for c in cohorts.values()) - 1
    return np.array([pooled_survival(cohorts, k) for k in range(longest + 1)])


def _rfm(log: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    ev = log.assign(step=0, event="purchase")
    return rfm(ev, time_unit="s", time_scaler=YEAR_S, observation_end=end)


def bgnbd_holdout(log: pd.DataFrame, end: pd.Timestamp) -> dict | None:
    """BG/NBD fitted on the first half of the log, predicting each customer's repeat purchases
    in the second half (Fader, Hardie & Lee 2005, eq. 10), by their first-half count."""
    start = log["date"].min()
    cut = start + (end - start) / 2
    early = log[log["date"] <= cut]
    if early["customer_id"].nunique() < 50:
        return None
    d = _rfm(early, cut)
    x, t_x, T = (d[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    try:
        f = est.fit_bgnbd(x, t_x, T)
    except est.NotIdentified:
        return None
    r, alpha, a, b = (f.estimates[f"market.purchase.{k}"].value for k in est.BGNBD)
    if abs(a - 1) < 1e-3:
        return None
    t = (end - cut) / pd.Timedelta(days=YEAR_DAYS)
    pred = est.bgnbd_expected(t, r, alpha, a, b, x, t_x, T)
    late = log[(log["date"] > cut) & log["customer_id"].isin(d["customer_id"])]
    actual = late.groupby("customer_id").size().reindex(d["customer_id"], fill_value=0).to_numpy()
    group = np.minimum(x.astype(int), 7)
    rows = [(int(g), float(pred[group == g].mean()), float(actual[group == g].mean()),
             int((group == g).sum())) for g in np.unique(group)]
    return {"kind": "bgnbd", "cut": cut, "years": t, "rows": rows,
            "predicted": float(pred.sum()), "actual": int(actual.sum()),
            # sd of the observed total if customers are independent: sqrt(sum E[Y^2]) estimated
            "actual_sd": float(np.sqrt((actual.astype(float) ** 2).sum())),
            "error": float(pred.sum() / max(actual.sum(), 1) - 1)}


def _purchase(a: StageA, data: Data) -> None:
    d = _rfm(data.log, data.end)
    a.holdout = bgnbd_holdout(data.log, data.end)
    x, t_x, T = (d[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    _try(a, "bgnbd", "BG/NBD", lambda: est.fit_bgnbd(x, t_x, T))
    rep = d[d["frequency"] > 0]
    a.sizes["customers with repeat purchases"] = len(rep)
    if len(rep) < 10:
        a.notes.append("Gamma-Gamma not fitted: fewer than 10 customers bought more than once.")
        return
    _try(a, "gamma_gamma", "Gamma-Gamma", lambda: est.fit_gamma_gamma(
        rep["frequency"].to_numpy(float), rep["monetary_value"].to_numpy(float)))


def _spend(a: StageA, data: Data, seed: int) -> None:
    """Spend per customer-year of a subscription log: each customer's typical payment (the
    median of all but their first and last, which may cover part of a period) times their
    payments per year (365 days over the median interval between payments)."""
    log = data.log.sort_values(["customer_id", "date"], kind="stable")
    days = (log["date"] - log["date"].min()) / pd.Timedelta(days=1)
    g = log.assign(days=days).groupby("customer_id")
    n = g.size()
    keep = n.index[n >= 3]
    if keep.size < 10:
        a.notes.append("Spend not estimated: fewer than 10 customers paid at least three times.")
        return
    inner = log[log["customer_id"].isin(keep)].assign(days=days)
    pos = inner.groupby("customer_id").cumcount()
    last = inner.groupby("customer_id")["days"].transform("size") - 1
    typical = inner[(pos > 0) & (pos < last)].groupby("customer_id")["amount"].median()
    gap = inner.groupby("customer_id")["days"].diff().groupby(inner["customer_id"]).median()
    rate = (typical / (gap.reindex(typical.index) / YEAR_DAYS)).to_numpy(float)
    ok = np.isfinite(rate) & (rate >= 0)
    a.fits["spend"] = est.spend_stats(rate[ok], np.ones(int(ok.sum())), np.random.default_rng(seed))
    a.notes.append("Spend per customer-year: each customer's median payment (first and last left "
                   "out: they may cover part of a period) times their payments per year; "
                   "customers who paid fewer than three times are left out.")


def _bass(a: StageA, data: Data, period_days: float, seed: int = 0) -> None:
    t_end, new = first_purchases(data.log, period_days)
    a.bass_series = (t_end, new)
    later = new[1:]
    if later.size == 0 or new[0] > later.max():
        a.notes.append("Bass p and q not fitted: the log does not cover the launch (its first "
                       f"{a.period} holds {int(new[0])} first purchases, more than any later "
                       f"{a.period}: customers who bought before the log began). They stay at "
                       "their defaults.")
        return
    if np.count_nonzero(new) < BASS_MIN_PERIODS:
        a.notes.append(f"Bass p and q not fitted: fewer than {BASS_MIN_PERIODS} {a.period}s "
                       "with new customers.")
        return
    try:
        a.fits["bass"] = est.fit_bass(t_end, new, np.random.default_rng(seed))
    except (RuntimeError, ValueError, optimize.OptimizeWarning) as err:
        a.notes.append(f"Bass p and q not fitted: the least-squares fit did not converge ({err}).")
        return
    a.notes.append(f"Bass market potential m = {a.fits['bass'].estimates['market_potential'].value:,.0f} "
                   "people (the prospects at launch; compare with market.n_people).")
