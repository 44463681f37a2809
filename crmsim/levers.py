"""What each lever did: control groups and the incremental effects the firm can measure.

Every targeted lever keeps a **control group**, as CRM teams do: a random share
``policy.holdout_share`` of the people it would reach is withheld, never contacted and never
billed, so treated and control differ only by the lever (Ascarza 2018, "Retention futility:
targeting high-risk customers might be ineffective", Journal of Marketing Research: target on
the response to a lever, which only a control group measures, not on risk). The group is a
standing one (a "universal control group" per lever): each lever gives every person one uniform
draw, once, from its own random stream (``ControlGroup``), and whoever draws below the share is
in that lever's control group for the whole run. A person *joins the measurement* the first time
the lever's target list names them: into the treated arm if the lever then reaches them, into
the control arm if they are held out. The draw is fixed per person, so two runs with the same
seed hold out the same people (runs stay paired), and a lever's draws change nobody else's.

**Budget.** The money pays for the contacts that are made: a lever's target list is drawn up as
if its money reached ``1 / (1 - holdout_share)`` times as many people, and the people on it who
are in the control group are left out at no cost. So a lever reaches as many treated people as
it would without a control group on average (the held-out on a list of L vary at random, by
about sqrt(L x share x (1 - share)); when fewer are held out than expected the treated are cut,
in a random order, to what the money pays for, and when more, the money they would have cost
is left), and the price of measuring is targeting depth: the treated reach a little further
down the list.
When the list holds everyone eligible, the held-out are simply not reached and the lever spends
less; that money goes where unspent money always goes (``crmsim.policies.base``).

**Outcome window.** From the day a person joins a lever's measurement until the firm looks:
the run's end for the levers table (``LeverBook.table``), the review for a closed loop. The
outcomes are the firm's own records (``FirmView``): whether it counts the person a customer
(under contracts the truth; without contracts its BG/NBD P(alive) estimate, not the truth) and
what they bought (its sales records; discounted at ``sim.discount_rate`` for ``gain`` and
``net``). Effects are treated-arm mean minus control-arm mean with a 95% Welch interval
(``scipy.stats.ttest_ind``); totals are the per-person effect times the treated arm's size.
Sales are heavy-tailed (a few customers buy a large share), so the money outcomes are first
adjusted by what the firm expected of each person when they joined (CUPED: Deng, Xu, Kohavi &
Walker 2013, "Improving the sensitivity of online controlled experiments by utilizing
pre-experiment data", WSDM): ``y - theta * (x - mean x)`` with ``x`` = the firm's estimated
spend per year then times the years since, ``theta`` the pooled regression slope. ``x`` is
fixed before the lever acts and the arms are random, so the difference stays unbiased and its
interval narrows.

Levers without people to hold out have no control group: media (``ads``, spread over all
prospects) and firm-level investment (``training``); ending relationships (``termination``)
is not run as an experiment either. Their rows carry ``control_group = False`` and no effect.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from .population import ACTIVE
from .units import DAYS_PER_YEAR

LEVEL = 0.95
NONE, TREATED, HELD = 0, 1, 2

# The columns of levers.parquet, in order, with what they mean (docs: results/README.md).
COLUMNS = {
    "lever": "the lever's catalogue name (or 'termination')",
    "category": "the ledger category of its spend",
    "control_group": "whether it keeps one (False: media, firm-level, termination, holdout_share=0)",
    "spend": "money spent on it over the run (undiscounted)",
    "treated": "people it reached at least once (its treated arm)",
    "held_out": "people on its target list held out (its control arm)",
    "retention_effect": "treated - control: share the firm counts as customers at the run's end",
    "retention_low": "95% interval of retention_effect, low end",
    "retention_high": "95% interval of retention_effect, high end",
    "revenue_effect": "treated - control: sales per person from joining to the run's end",
    "revenue_low": "95% interval, low end",
    "revenue_high": "95% interval, high end",
    "margin_effect": "revenue_effect x firm.margin (gross margin per person)",
    "margin_low": "95% interval, low end",
    "margin_high": "95% interval, high end",
    "gain": "treated x discounted margin per person (treated - control): what it earned",
    "gain_low": "95% interval, low end",
    "gain_high": "95% interval, high end",
    "spend_discounted": "its spend, discounted as npv_total discounts",
    "net": "gain - spend_discounted: what it earned beyond its cost, in npv_total's terms",
    "net_low": "95% interval, low end",
    "net_high": "95% interval, high end",
}
EFFECTS = ("retention", "revenue", "margin", "gain", "net")
# The columns that are not numbers of money or effects (float64): their types in the table.
TYPES = {"lever": None, "category": None, "control_group": bool, "treated": np.int64,
         "held_out": np.int64}


def effect(treated: np.ndarray, control: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """Treated mean minus control mean and its Welch t interval (nan with fewer than two in
    either arm)."""
    if treated.size < 2 or control.size < 2:
        return float("nan"), float("nan"), float("nan")
    diff = float(treated.mean() - control.mean())
    if treated.var() == 0 and control.var() == 0:
        return diff, diff, diff
    with warnings.catch_warnings():   # near-constant outcomes: scipy warns, the interval holds
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = stats.ttest_ind(treated, control, equal_var=False).confidence_interval(level)
    return diff, float(ci.low), float(ci.high)


def cuped(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y`` less what its pre-treatment covariate ``x`` explains (module doc)."""
    if y.size < 2 or x.var() == 0:
        return y
    theta = np.cov(y, x)[0, 1] / x.var(ddof=1)
    return y - theta * (x - x.mean())


class Records:
    """The firm's sales records per person, also discounted the way ``npv_total`` discounts
    (each step's sales at that step's factor), updated from each view."""

    def __init__(self, discount_rate: float) -> None:
        self.discount_rate = discount_rate
        self.revenue: np.ndarray | None = None      # sales so far, as last seen
        self.discounted: np.ndarray | None = None   # ... discounted

    def factor(self, step: float, dt: float) -> float:
        return float((1.0 + self.discount_rate) ** (-step * dt))

    def observe(self, view) -> None:
        now = np.asarray(view.revenue, dtype=np.float64)
        if self.revenue is None:
            self.revenue, self.discounted = now.copy(), np.zeros(view.n)
            return
        # A view at step t shows the sales through step t - 1, booked at that step's factor.
        self.discounted += (now - self.revenue) * self.factor(view.step - 1, view.dt)
        self.revenue = now.copy()


class ControlGroup:
    """One lever's standing control group and who has joined its measurement (module doc)."""

    def __init__(self, lever: str, share: float, seed: np.random.SeedSequence,
                 records: Records) -> None:
        self.lever = lever
        self.share = share
        # Its own stream, keyed by the lever's name: adding a lever changes nobody else's draws.
        self._seed = np.random.SeedSequence(seed.entropy, spawn_key=(
            *seed.spawn_key, zlib.crc32(lever.encode())))
        self.records = records
        self.held: np.ndarray | None = None      # per person: in this lever's control group
        self.arm: np.ndarray | None = None       # NONE, TREATED or HELD once they joined
        # Who joined: index, sales and discounted sales then, day, estimated spend per year.
        self._joined: list[tuple[np.ndarray, ...]] = []

    def _draw(self, n: int) -> None:
        if self.held is None:
            self.held = np.random.default_rng(self._seed).random(n) < self.share
            self.arm = np.zeros(n, dtype=np.int8)

    def split(self, listed: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The target list ``listed`` as (to treat, held out)."""
        self._draw(n)
        held = self.held[listed]
        return listed[~held], listed[held]

    def join(self, treated: np.ndarray, held: np.ndarray, view) -> None:
        """Who joins the measurement now: the newly treated and the newly held out."""
        for idx, arm in ((treated, TREATED), (held, HELD)):
            new = idx[self.arm[idx] == NONE]
            if new.size:
                self.arm[new] = arm
                # Compact (20 bytes a member): float32 is ample for estimates of means.
                self._joined.append((new.astype(np.int32),
                                     self.records.revenue[new].astype(np.float32),
                                     self.records.discounted[new].astype(np.float32),
                                     np.full(new.size, view.day, dtype=np.float32),
                                     view.value_est[new].astype(np.float32)))

    def members(self) -> tuple[np.ndarray, ...]:
        """Everyone who joined: index, arm, then as when they joined: sales, discounted sales,
        day, the firm's estimated spend per year."""
        if not self._joined:
            e = np.zeros(0, dtype=np.float32)
            return e.astype(np.int32), e.astype(np.int8), e, e, e, e
        parts = [np.concatenate(col) for col in zip(*self._joined, strict=True)]
        self._joined = [tuple(parts)]
        return parts[0], self.arm[parts[0]], *parts[1:]

    def counts(self) -> tuple[int, int]:
        if self.arm is None:
            return 0, 0
        return int(np.count_nonzero(self.arm == TREATED)), int(np.count_nonzero(self.arm == HELD))

    def period_gain(self, revenue_start: np.ndarray, start_day: float, day: float,
                    margin: float) -> float:
        """Incremental gross margin booked between ``start_day`` (when the sales records were
        ``revenue_start``) and ``day``: treated minus control, per person (CUPED-adjusted),
        times the treated arm's size, shrunk toward zero by its sampling error; each member
        counts from the later of the period's start and their joining. A closed loop's
        measure."""
        idx, arm, rev0, _, day0, value0 = self.members()
        t, c = arm == TREATED, arm == HELD
        if not t.any() or not c.any():
            return 0.0
        since = self.records.revenue[idx] - np.maximum(revenue_start[idx], rev0)
        expected = value0 * (day - np.maximum(day0, start_day)) / DAYS_PER_YEAR
        since = cuped(since, expected)
        a, b = since[t], since[c]
        diff = float(a.mean() - b.mean())
        var = (a.var(ddof=1) / a.size if a.size > 1 else 0.0) + (
            b.var(ddof=1) / b.size if b.size > 1 else 0.0)
        # Shrunk toward zero by its sampling error (positive-part James-Stein): a loop moves
        # money on effects it can tell from noise, not on the luck of a small control group.
        shrink = max(0.0, 1.0 - var / diff ** 2) if diff != 0 else 0.0
        return float(diff * shrink * a.size * margin)

    def outcomes(self, status: np.ndarray, margin: float, day: float) -> dict[str, tuple]:
        """Each effect of ``EFFECTS`` but ``net`` (diff, low, high), from joining until now."""
        idx, arm, rev0, disc0, day0, value0 = self.members()
        t, c = arm == TREATED, arm == HELD
        customer = (status[idx] == ACTIVE).astype(np.float64)
        expected = value0 * np.maximum(day - day0, 0.0) / DAYS_PER_YEAR
        sales = cuped(self.records.revenue[idx] - rev0, expected)
        disc = cuped(self.records.discounted[idx] - disc0, expected) * margin * np.count_nonzero(t)
        out = {"retention": effect(customer[t], customer[c]), "revenue": effect(sales[t], sales[c])}
        out["margin"] = tuple(x * margin for x in out["revenue"])
        out["gain"] = effect(disc[t], disc[c])
        return out


class LeverBook:
    """Spend per lever and the firm's records, for the levers table and closed loops."""

    def __init__(self, discount_rate: float) -> None:
        self.records = Records(discount_rate)
        self.spend: dict[str, float] = {}
        self.spend_discounted: dict[str, float] = {}
        self.category: dict[str, str] = {}

    def observe(self, view) -> None:
        self.records.observe(view)

    def pay(self, lever: str, category: str, amount: float, view) -> None:
        """Book ``amount`` spent on ``lever`` in the step of ``view``."""
        self.category.setdefault(lever, category)
        self.spend[lever] = self.spend.get(lever, 0.0) + amount
        self.spend_discounted[lever] = (self.spend_discounted.get(lever, 0.0)
                                        + amount * self.records.factor(view.step, view.dt))

    def table(self, view, groups: dict[str, ControlGroup | None],
              order: Iterable[str]) -> pd.DataFrame:
        """One row per lever of ``order`` (``levers.parquet``; ``COLUMNS``), at ``view`` (the
        firm's records at the run's end)."""
        self.observe(view)
        rows = []
        for lever in order:
            group = groups.get(lever)
            spend_d = self.spend_discounted.get(lever, 0.0)
            row = dict.fromkeys(COLUMNS, float("nan"))
            row.update(lever=lever, category=self.category.get(lever, ""),
                       control_group=group is not None, spend=self.spend.get(lever, 0.0),
                       spend_discounted=spend_d, treated=0, held_out=0)
            if group is not None:
                row["treated"], row["held_out"] = group.counts()
                outcomes = group.outcomes(view.status, view.margin, view.day)
                for name, (d, lo, hi) in outcomes.items():
                    row.update({f"{name}_effect" if name in ("retention", "revenue", "margin")
                                else name: d, f"{name}_low": lo, f"{name}_high": hi})
                row.update(net=row["gain"] - spend_d, net_low=row["gain_low"] - spend_d,
                           net_high=row["gain_high"] - spend_d)
            rows.append(row)
        if not rows:
            return pd.DataFrame(rows, columns=list(COLUMNS)).astype(
                {k: v for k, v in TYPES.items() if v is not None})
        # Column by column, each of its type (~7x faster than pandas' rows of dicts).
        return pd.DataFrame({
            col: [row[col] for row in rows] if TYPES.get(col, np.float64) is None
            else np.array([row[col] for row in rows], dtype=TYPES.get(col, np.float64))
            for col in COLUMNS})
