"""Non-contractual purchasing: BG/NBD occasions with Gamma-Gamma amounts, and P(alive).

``market.purchase.kind=noncontractual`` (Fader, Hardie & Lee 2005, "Counting your customers the
easy way"; Fader, Hardie & Lee 2005, "RFM and CLV"):

- each person has a purchase rate lambda ~ Gamma(shape r, rate alpha), in purchases per year
  (alpha in years), a dropout probability p ~ Beta(a, b) and a spend rate nu ~ Gamma(q, gamma);
- becoming a customer (adoption, win-back, or being one at step 0) is a purchase;
- while alive, purchase occasions form a Poisson process of rate lambda; after each of these
  repeat purchases the customer becomes inactive for good with probability p;
- each transaction's amount is Gamma(shape p, rate nu).

Within a step of dt years an alive customer has K ~ Poisson(lambda dt) occasions and would
drop out at the G-th repeat purchase, G ~ Geometric(p) on 1, 2, ...; they make min(K, G)
purchases and drop out if G <= K. That is the continuous-time process exactly, whatever the step
length; the purchases' times within the step are the first min(K, G) of K sorted uniforms.

Outside the limit case the modifiers move the three parts (all of them are off under
``+validation=bgnbd``, where the process is exactly BG/NBD with Gamma-Gamma spend):

- rate: lambda x exp(purchase.satisfaction_effect * satisfaction + purchase.sentiment_effect *
  sentiment - purchase.price_effect * price_sensitivity * (felt price - 1)); a promotion's
  discount makes the felt price lower (more visits), a deal-seeker without one feels it dearer;
- dropout: p' = 1 - (1 - p)^m with m the churn hazard multiplier of the contractual setting
  (``behavior/churn.py``: satisfaction buffered by commitment, commitment, sentiment,
  switching cost, price and contagion from recently lapsed neighbours, all ``market.churn.*``);
- amount: z x price x max(1 + spend.satisfaction_effect * satisfaction, 0) x (1 + penetration),
  the contractual spend formula applied to each transaction (cross- and up-selling raise it).

The firm never sees a dropout. It estimates each person's probability of being alive from
their purchase record with the BG/NBD formula at the market's generating parameters r, alpha,
a, b (as if it had fitted BG/NBD on a long history; ``p_alive``).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

MAX_INVERSION_STEPS = 64   # beyond this many purchases in one step, scipy's Poisson ppf takes over


def traits(r: float, alpha: float, a: float, b: float, q: float, gamma: float, n: int,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-person purchase rate (per year), dropout probability per purchase, spend rate nu."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    drop = rng.beta(a, b, n)
    nu = rng.gamma(q, 1.0 / gamma, n)
    return lam, drop, nu


def poisson_counts(mean: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Poisson(mean) counts by inversion of the uniforms ``u`` (one uniform per person, so the
    same person gets the same draw under every policy: runs stay paired)."""
    k = np.zeros(mean.shape, dtype=np.int64)
    pmf = np.exp(-mean)
    cdf = pmf.copy()
    todo = np.flatnonzero(u > cdf)
    for j in range(1, MAX_INVERSION_STEPS + 1):
        if todo.size == 0:
            return k
        k[todo] = j
        pmf[todo] *= mean[todo] / j
        cdf[todo] += pmf[todo]
        todo = todo[u[todo] > cdf[todo]]
    if todo.size:
        k[todo] = stats.poisson.ppf(u[todo], mean[todo]).astype(np.int64)
    return k


def purchases_until_dropout(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """G ~ Geometric(p) on 1, 2, ... by inversion: the repeat purchase after which one drops out."""
    p = np.clip(p, 1e-300, 1.0)
    with np.errstate(divide="ignore"):
        g = np.ceil(np.log1p(-u) / np.log1p(-p))
    return np.maximum(np.nan_to_num(g, nan=1.0, posinf=np.iinfo(np.int64).max / 2), 1.0)


def dropout_probability(p: np.ndarray, multiplier: np.ndarray | float) -> np.ndarray:
    """p' = 1 - (1 - p)^m: the per-purchase dropout moved by the churn hazard multiplier m."""
    if np.ndim(multiplier) == 0 and multiplier == 1.0:
        return p
    return -np.expm1(multiplier * np.log1p(-np.minimum(p, 1.0 - 1e-12)))


def rate_multiplier(satisfaction, sentiment, felt_price, price_sensitivity,
                    satisfaction_effect: float, sentiment_effect: float, price_effect: float):
    return np.exp(satisfaction_effect * satisfaction + sentiment_effect * sentiment
                  - price_effect * price_sensitivity * (felt_price - 1.0))


def p_alive(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, r: float, alpha: float, a: float,
            b: float) -> np.ndarray:
    """BG/NBD probability of being alive after x repeat purchases, the last at t_x, observed
    for T (years since the first purchase): 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))
    (Fader, Hardie & Lee 2005, eq. 11)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        log_ratio = (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        odds = np.where(x > 0, a / (b + x - 1.0) * np.exp(log_ratio), 0.0)
    return 1.0 / (1.0 + odds)


def expected_rate(x: np.ndarray, T: np.ndarray, r: float, alpha: float) -> np.ndarray:
    """Posterior mean purchase rate of an alive customer, (r + x) / (alpha + T), per year."""
    return (r + x) / (alpha + T)


def expected_amount(x: np.ndarray, mean_amount: np.ndarray, p: float, q: float,
                    gamma: float) -> np.ndarray:
    """Gamma-Gamma conditional expected transaction amount given x repeat transactions with
    mean amount m: (gamma + x m) p / (p x + q - 1); the population mean p gamma / (q - 1)
    when x = 0 (needs q > 1)."""
    return (gamma + x * mean_amount) * p / np.maximum(p * x + q - 1.0, 1e-9)
