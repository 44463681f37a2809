"""Word of mouth: salient experiences are told to others, bad ones to more people.

Each salient encounter is a story; a teller with a positive (negative) story tells ``tell_positive``
(``tell_negative``) people: their network neighbours first (each heard with the tie layer's
rate), and, when they have fewer neighbours than that, people outside the modelled network
(acquaintances, social media), who are drawn from the whole population. Rare bad experiences go
viral: each reaches ``viral_reach`` people anywhere and costs the firm reputation (seed 002).

The expected number of messages each person hears is a sparse matrix-vector product; the count
actually heard is that expectation rounded up or down at random (one uniform per person), so it
keeps its mean and uses the same random numbers in every run with the same seed.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from ..network import Network


def told(stories: np.ndarray, tell_prob: float, u: np.ndarray) -> np.ndarray:
    """How many of each person's salient stories they tell: each with probability
    ``tell_prob`` (78% recommend after a good experience, seed 002). One uniform per person
    decides (a Binomial by its inverse distribution function); with one story, it is told when
    ``u < tell_prob``."""
    stories = np.asarray(stories)
    out = ((stories > 0) & (u < tell_prob)).astype(np.int16)
    several = np.flatnonzero(stories > 1)
    if several.size and tell_prob < 1.0:
        out[several] = _binom_ppf(1.0 - u[several], stories[several], tell_prob).astype(np.int16)
    elif several.size:
        out[several] = stories[several]
    return out


def _binom_ppf(q: np.ndarray, n: np.ndarray, p: float) -> np.ndarray:
    """``scipy.stats.binom.ppf(q, n, p)`` for 0 < q <= 1, whole n >= 0 and 0 <= p <= 1, which
    ``told`` guarantees, without ``ppf``'s checks of its arguments (~50 us a call, most of a
    small market's word of mouth): the distribution's own ``_ppf`` (the same Boost routine
    ``ppf`` calls for 0 < q < 1), and n at q = 1 as ``ppf`` returns."""
    return np.where(q < 1.0, binom._ppf(q, n, p), n)


def expected_heard(
    net: Network,
    told: np.ndarray,
    tell_count: float,
    strong_rate: float,
    weak_rate: float,
) -> np.ndarray:
    """Expected messages each person hears from the tellers in ``told`` (a mask, or a count of
    stories per person: each story is told to ``tell_count`` people)."""
    n = net.n
    if net.complete:
        # Well-mixed: every teller's messages land on random others.
        told = told.astype(np.float64)
        total = tell_count * told.sum()
        return (total - tell_count * told) / max(n - 1, 1)
    lam, _, beyond = heard_over_ties(net, told, tell_count, strong_rate, weak_rate)
    # What tellers tell beyond their ties lands on anyone in the market.
    lam += beyond.sum() / n
    return lam


def heard_over_ties(
    net: Network,
    told: np.ndarray,
    tell_count: float,
    strong_rate: float,
    weak_rate: float,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``expected_heard`` on a materialised network, in two parts: the messages each person is
    expected to hear over their ties, and what each teller tells beyond them (to fewer
    neighbours than ``tell_count``), with the tellers it belongs to (None: everyone).

    With a whole ``tell_count`` (the usual case) the work runs on the tellers alone: they are a
    few per cent of the people in a step, so the per-teller shares are computed for them and
    ``neighbour_sum_at`` scatters from their rows. Every value is the one the general formula
    gives: ``sent`` holds the same quotients, and ``beyond`` holds whole numbers, whose float64
    sum is exact in any order.
    """
    if float(tell_count).is_integer():
        tellers = np.flatnonzero(told)
        deg = net.degree[tellers].astype(np.float64)
        sent = np.divide(np.minimum(tell_count, deg), deg, out=np.zeros(tellers.size),
                         where=deg > 0)
        beyond = np.maximum(tell_count - deg, 0.0)
        if told.dtype != bool:
            stories = told[tellers]
            sent *= stories
            beyond *= stories
        lam = net.neighbour_sum_at(tellers, sent, "strong")
        lam *= strong_rate
        if net.weak is not None:
            lam += weak_rate * net.neighbour_sum_at(tellers, sent, "weak")
        return lam, tellers, beyond
    told = told.astype(np.float64)
    deg = net.degree.astype(np.float64)
    per_neighbour = np.divide(np.minimum(tell_count, deg), deg, out=np.zeros(net.n), where=deg > 0)
    sent = told * per_neighbour
    lam = strong_rate * net.neighbour_sum(sent, "strong")
    if net.weak is not None:
        lam += weak_rate * net.neighbour_sum(sent, "weak")
    return lam, None, told * np.maximum(tell_count - deg, 0.0)


def stochastic_round(lam: np.ndarray, u: np.ndarray) -> np.ndarray:
    """floor(lam) + 1 with probability frac(lam): integer counts with the same mean."""
    base = np.floor(lam)
    up = u < lam - base
    base += up
    return base.astype(np.int32)


def viral(neg_told: np.ndarray, viral_prob: float, u: np.ndarray) -> np.ndarray:
    """Whose bad stories go viral this step (their indices): each story told does with
    ``viral_prob`` (at most one incident per person and step)."""
    idx = np.flatnonzero(neg_told)
    p_any = -np.expm1(neg_told[idx] * np.log1p(-min(viral_prob, 1.0 - 1e-12)))
    return idx[u[idx] < p_any]


def sentiment_update(
    sentiment: np.ndarray,
    heard_pos: np.ndarray,
    heard_neg: np.ndarray,
    message_weight: float,
    memory: float,
) -> np.ndarray:
    """Sentiment fades toward neutral and moves with every message heard."""
    s = memory * sentiment + message_weight * (heard_pos.astype(np.float32) - heard_neg)
    return np.clip(s, -1.0, 1.0).astype(np.float32)
