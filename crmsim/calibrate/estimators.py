"""Stage A: the direct estimators, each a maximum-likelihood or least-squares fit on scipy.

- ``fit_sbg``: the shifted-beta-geometric model (Fader & Hardie 2007) on a cohort table, in
  crmsim's units: annual churn theta ~ Beta(alpha, beta), survival to t years
  B(alpha, beta + t) / B(alpha, beta), so periods of any length (--period) give alpha and beta
  per year directly (with yearly periods it is Fader & Hardie's sBG exactly);
- ``bgnbd_nll`` and ``gamma_gamma_nll``: BG/NBD and Gamma-Gamma (Fader, Hardie & Lee 2005) on
  a log's RFM summary in years;
- ``spend_stats``: mean spend per customer-year and the top-20% share;
- ``fit_bass``: Bass p and q by nonlinear least squares on the first purchases per period.

Every fit returns an ``Estimate`` per parameter: the value and a 95% interval. Intervals of the
likelihood fits come from the observed information (the inverse Hessian of the negative
log-likelihood at the maximum), carried to the log scale by the delta method
(se(log theta) = se(theta) / theta), so they stay positive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats
from scipy.special import betaln, gammaln, hyp2f1

Z95 = float(stats.norm.ppf(0.975))
BGNBD = ("r", "alpha", "a", "b")
GG = ("p", "q", "gamma")


class NotIdentified(ValueError):
    """A fit whose observed information is singular: the data do not identify the parameters."""


@dataclass
class Estimate:
    """One estimated config value with its 95% interval and how it was obtained."""

    value: float
    low: float
    high: float
    method: str
    se: float = float("nan")

    def as_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "method": self.method}


@dataclass
class Fit:
    """A joint fit: estimates by config key, their covariance (natural units), the data size."""

    estimates: dict[str, Estimate]
    cov: np.ndarray
    n: int
    notes: list[str] = field(default_factory=list)


def bgnbd_nll(params, x, t_x, T):
    """Minus the BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6)."""
    r, alpha, a, b = params
    ln_a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    ln_a2 = betaln(a, b + x) - betaln(a, b)
    ln_a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        ln_a4 = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x)
    ll = ln_a1 + ln_a2 + np.where(x > 0, np.logaddexp(ln_a3, ln_a4), ln_a3)
    return -ll.sum()


def bgnbd_expected(t, r, alpha, a, b, x, t_x, T):
    """Expected repeat purchases in the next t years of a customer with record (x, t_x, T)
    (Fader, Hardie & Lee 2005, eq. 10); needs a != 1."""
    ln_ratio = (r + x) * np.log((alpha + T) / (alpha + T + t))
    f = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    num = (a + b + x - 1) / (a - 1) * (1 - np.exp(ln_ratio) * f)
    with np.errstate(divide="ignore", invalid="ignore"):
        den = 1 + np.where(x > 0, a / np.maximum(b + x - 1, 1e-300)
                           * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
    return num / den


def gamma_gamma_nll(params, x, m):
    """Minus the Gamma-Gamma log-likelihood of mean repeat spend m over x > 0 transactions."""
    p, q, gamma = params
    px = p * x
    ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma)
          + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(gamma + m * x))
    return -ll.sum()


def sbg_survival(alpha, beta, t):
    """Share of a cohort still active after t years: B(alpha, beta + t) / B(alpha, beta)."""
    return np.exp(betaln(alpha, beta + np.asarray(t, dtype=float)) - betaln(alpha, beta))


def sbg_nll(params, lost, k, censored, kc, years):
    """Minus the sBG log-likelihood of a cohort table: ``lost`` customers left in period
    ``k`` (1, 2, ...), ``censored`` were still active after ``kc`` periods; a period is
    ``years`` long."""
    alpha, beta = params
    with np.errstate(divide="ignore", invalid="ignore"):
        p = sbg_survival(alpha, beta, (k - 1) * years) - sbg_survival(alpha, beta, k * years)
        ll = (lost * np.log(np.maximum(p, 1e-300))).sum()
        ll += (censored * np.log(np.maximum(sbg_survival(alpha, beta, kc * years), 1e-300))).sum()
    return -ll


def hessian(f, x0, rel=1e-4):
    """Central-difference Hessian of f at x0."""
    k = x0.size
    h = rel * np.maximum(np.abs(x0), 1.0)
    out = np.empty((k, k))

    def at(i, j, si, sj):
        y = x0.copy()
        y[i] += si * h[i]
        y[j] += sj * h[j]
        return f(y)

    for i in range(k):
        for j in range(i, k):
            out[i, j] = out[j, i] = (at(i, j, 1, 1) - at(i, j, 1, -1) - at(i, j, -1, 1)
                                     + at(i, j, -1, -1)) / (4 * h[i] * h[j])
    return out


def fit(nll, start, *data):
    """MLE on log-parameters; estimates and their covariance from the observed information."""
    res = optimize.minimize(lambda z: nll(np.exp(z), *data), np.log(start), method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-9, "maxiter": 40000, "maxfev": 40000})
    res = optimize.minimize(lambda z: nll(np.exp(z), *data), res.x, method="BFGS")
    theta = np.exp(res.x)
    h = hessian(lambda t: nll(t, *data), theta)
    if not np.all(np.isfinite(h)) or np.any(np.linalg.eigvalsh(h) <= 0):
        raise NotIdentified(f"the likelihood is flat at {np.round(theta, 4).tolist()} (no "
                            "interval: the data do not pin these parameters down)")
    return theta, np.linalg.inv(h)


def log_interval(value: float, se: float) -> tuple[float, float]:
    """95% interval of a positive parameter on the log scale (delta method)."""
    if not np.isfinite(se) or se <= 0:
        return float("nan"), float("nan")
    s = se / value
    return float(value * np.exp(-Z95 * s)), float(value * np.exp(Z95 * s))


def estimates(keys, theta, cov, method: str) -> dict[str, Estimate]:
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    se = np.where(np.diag(cov) > 0, se, np.nan)
    out = {}
    for key, v, s in zip(keys, theta, se, strict=True):
        lo, hi = log_interval(float(v), float(s))
        out[key] = Estimate(float(v), lo, hi, method, float(s))
    return out


def fit_sbg(cohorts, years: float) -> Fit:
    """sBG maximum likelihood on ``cohorts``: a mapping cohort -> counts active at the start of
    period 0, 1, ..., K (non-increasing). ``years``: the length of a period in years."""
    lost, k, cens, kc = [], [], [], []
    n = 0
    for counts in cohorts.values():
        c = np.asarray(counts, dtype=float)
        n += int(c[0])
        lost.append(c[:-1] - c[1:])
        k.append(np.arange(1, c.size))
        cens.append(c[-1])
        kc.append(c.size - 1)
    args = (np.concatenate(lost), np.concatenate(k), np.array(cens), np.array(kc), years)
    theta, cov = fit(sbg_nll, np.array([1.0, 3.0]), *args)
    keys = ("market.churn.alpha", "market.churn.beta")
    return Fit(estimates(keys, theta, cov, "sBG maximum likelihood (Fader & Hardie 2007), "
                         "95% interval from the observed information, log scale"), cov, n)


def fit_bgnbd(x, t_x, T) -> Fit:
    theta, cov = fit(bgnbd_nll, np.array([1.0, 1.0, 1.0, 1.0]), x, t_x, T)
    keys = tuple(f"market.purchase.{k}" for k in BGNBD)
    return Fit(estimates(keys, theta, cov, "BG/NBD maximum likelihood (Fader, Hardie & Lee 2005), "
                         "95% interval from the observed information, log scale"), cov, int(x.size))


def fit_gamma_gamma(x, m) -> Fit:
    # Start near the method-of-moments guess: mean spend m_bar = p * gamma / (q - 1).
    start = np.array([1.0, 2.0, max(float(np.mean(m)), 1e-3)])
    theta, cov = fit(gamma_gamma_nll, start, x, m)
    keys = tuple(f"market.purchase.{k}" for k in GG)
    return Fit(estimates(keys, theta, cov, "Gamma-Gamma maximum likelihood (Fader, Hardie & Lee "
                         "2005), 95% interval from the observed information, log scale"),
               cov, int(x.size))


def top20_share(values: np.ndarray) -> float:
    """Share of the total held by the top 20% of ``values``."""
    v = np.sort(np.asarray(values, dtype=float))[::-1]
    k = max(int(round(0.2 * v.size)), 1)
    return float(v[:k].sum() / v.sum())


def spend_stats(per_year: np.ndarray, weights: np.ndarray, rng: np.random.Generator,
                n_boot: int = 400) -> Fit:
    """Mean spend per customer-year (the customers' spend rates, weighted by ``weights``) and
    the top-20% share of the spend rates, with percentile-bootstrap 95% intervals over
    customers."""
    def stats_of(idx):
        w, s = weights[idx], per_year[idx]
        return np.array([float((s * w).sum() / w.sum()), top20_share(s)])

    n = per_year.size
    point = stats_of(np.arange(n))
    boot = np.array([stats_of(rng.integers(0, n, n)) for _ in range(n_boot)])
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    method = f"from the log; 95% percentile bootstrap over customers ({n_boot} resamples)"
    est = {
        "market.spend.mean": Estimate(float(point[0]), float(lo[0]), float(hi[0]),
                                      "mean of the customers' spend per year " + method,
                                      float(boot[:, 0].std())),
        "market.spend.top20_share": Estimate(float(point[1]), float(lo[1]), float(hi[1]),
                                             "share of the top 20% of spend rates " + method,
                                             float(boot[:, 1].std())),
    }
    return Fit(est, np.cov(boot.T), n)


def bass_cdf(t, p, q):
    """Bass cumulative adoption F(t), p and q per year, t in years."""
    e = np.exp(-(p + q) * np.asarray(t, dtype=float))
    return (1 - e) / (1 + (q / p) * e)


def _bass_ls(t_end: np.ndarray, new: np.ndarray):
    """Bass m, p, q by nonlinear least squares on the new adopters per period, and curve_fit's
    covariance of their logs."""
    t0 = np.concatenate([[0.0], t_end[:-1]])

    def model(_, log_m, log_p, log_q):
        m, p, q = np.exp([log_m, log_p, log_q])
        return m * (bass_cdf(t_end, p, q) - bass_cdf(t0, p, q))

    total = float(new.sum())
    start = (np.log(total * 1.5), np.log(0.03), np.log(0.4))
    return optimize.curve_fit(model, t_end, new.astype(float), p0=start, maxfev=20000)


def bass_paths(m: int, p: float, q: float, dt: float, periods: int, n: int,
               rng: np.random.Generator) -> np.ndarray:
    """``n`` paths of new adopters per period of the stochastic Bass process crmsim simulates:
    each of the m - N(t) prospects adopts within the period with the Bass probability given the
    adopted share at its start (``crmsim.behavior.adoption.bass_step_probability``)."""
    from ..behavior.adoption import bass_step_probability

    out = np.zeros((n, periods), dtype=np.int64)
    adopted = np.zeros(n, dtype=np.int64)
    for k in range(periods):
        prob = bass_step_probability(adopted / m, p, q, dt)
        out[:, k] = rng.binomial(m - adopted, prob)
        adopted += out[:, k]
    return out


def fit_bass(t_end: np.ndarray, new: np.ndarray, rng: np.random.Generator | None = None,
             n_boot: int = 200) -> Fit:
    """Bass p, q (per year) and the market potential m by nonlinear least squares on the new
    adopters of each period (``new[k]`` adopted in (t_end[k-1], t_end[k]], t_end[-1] = 0), on
    periods of equal length. 95% intervals (log scale) from a parametric bootstrap: ``n_boot``
    paths of the fitted stochastic Bass process, each refitted. Least squares' own covariance
    treats the periods as independent, but in a finite market the imitation carries each
    period's chance into the next, and its intervals covered too rarely (docs/calibrate.md);
    with ``rng=None``, that covariance."""
    z, zcov = _bass_ls(t_end, new)
    theta = np.exp(z)
    how = "curve_fit's covariance"
    if rng is not None:
        m = max(int(round(theta[0])), int(new.sum()))
        paths = bass_paths(m, theta[1], theta[2], float(t_end[0]), new.size, n_boot, rng)
        boot = []
        for path in paths:
            try:
                boot.append(_bass_ls(t_end, path)[0])
            except (RuntimeError, ValueError, optimize.OptimizeWarning):
                continue                     # a path the fit does not converge on
        if len(boot) >= n_boot // 2:
            zcov = np.cov(np.array(boot).T)
            how = f"a parametric bootstrap of the stochastic Bass process ({len(boot)} paths refitted)"
    cov = zcov * np.outer(theta, theta)          # delta method: d theta = theta d log theta
    keys = ("market_potential", "adoption.innovation", "adoption.imitation")
    method = ("Bass model, nonlinear least squares on new adopters per period "
              f"(scipy.optimize.curve_fit), 95% interval from {how}, log scale")
    return Fit(estimates(keys, theta, cov, method), cov, int(new.sum()))


def correlation(cov: np.ndarray) -> np.ndarray:
    d = np.sqrt(np.diag(cov))
    return cov / np.outer(d, d)
