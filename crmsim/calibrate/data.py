"""Reading a firm's data: a cohort table or a transaction log, checked, with one-paragraph
errors (``ConfigError`` naming the file, the column or value and what is allowed).

- cohort table: columns ``cohort, period, active``: the customers of each acquisition cohort
  still active at the start of each period, period 0 = the cohort's size;
- transaction log: columns ``customer_id, date, amount`` and optionally ``event`` (then only
  ``purchase`` rows count), the schema of crmsim's own ``events.parquet`` (docs/events.md).

CSV (``.csv``) or parquet (``.parquet``, ``.pq``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError

COHORT_COLUMNS = ("cohort", "period", "active")
LOG_COLUMNS = ("customer_id", "date", "amount")
PERIOD_DAYS = {"year": 365.0, "month": 365.0 / 12, "week": 7.0, "day": 1.0}
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
YEAR_DAYS = 365.0


@dataclass
class Data:
    """What was read: ``kind`` is ``cohorts`` or ``log``."""

    path: Path
    kind: str
    sha256: str
    cohorts: dict | None = None          # cohort -> counts at period 0..K
    log: pd.DataFrame | None = None      # customer_id, date, amount (purchases only)
    end: pd.Timestamp | None = None      # end of the observation (logs)
    crmsim_log: bool = False             # an events table written by crmsim (has ``step``)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_table(path: Path) -> pd.DataFrame:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError("DATA", str(path), "a cohort table or transaction log as CSV (.csv) or "
                          "parquet (.parquet, .pq)", f"The format {path.suffix or '(no suffix)'!r} "
                          "is not one crmsim reads.")
    if not path.is_file():
        raise ConfigError("DATA", str(path), "an existing, readable file")
    try:
        df = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        df = pd.DataFrame()
    except Exception as err:   # pyarrow, the csv parser and the OS each have their own errors
        raise ConfigError("DATA", str(path), f"a readable {fmt} file",
                          f"Reading it failed: {str(err).splitlines()[0] if str(err) else err}") from None
    if df.empty:
        raise ConfigError("DATA", str(path), "a file with a header and at least one row",
                          "The file holds no rows.")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def read(path: str | Path) -> Data:
    """Read and check ``path``; a cohort table or a transaction log, told apart by its columns."""
    path = Path(path)
    df = _read_table(path)
    cols = set(df.columns)
    if set(COHORT_COLUMNS) <= cols:
        data = Data(path, "cohorts", sha256(path), cohorts=_cohorts(df, path))
    elif set(LOG_COLUMNS) <= cols:
        log, end, own = _log(df, path)
        data = Data(path, "log", sha256(path), log=log, end=end, crmsim_log=own)
    else:
        near = COHORT_COLUMNS if len(cols & set(COHORT_COLUMNS)) > len(cols & set(LOG_COLUMNS)) \
            else LOG_COLUMNS
        missing = [c for c in near if c not in cols]
        raise ConfigError(f"DATA columns ({path})", sorted(cols),
                          "a cohort table with columns cohort, period, active or a transaction "
                          "log with columns customer_id, date, amount (optional event)",
                          f"Missing: {', '.join(missing)}.")
    return data


def _integers(df: pd.DataFrame, col: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna() | (values < 0) | (values != np.floor(values))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ConfigError(f"{col} ({path}, row {i + 2})", df[col].iloc[i],
                          "a whole number >= 0")
    return values.to_numpy().astype(np.int64)


def _cohorts(df: pd.DataFrame, path: Path) -> dict:
    if df["cohort"].isna().any():
        i = int(np.flatnonzero(df["cohort"].isna().to_numpy())[0])
        raise ConfigError(f"cohort ({path}, row {i + 2})", None, "a cohort label on every row")
    period = _integers(df, "period", path)
    active = _integers(df, "active", path)
    table = pd.DataFrame({"cohort": df["cohort"].astype(str), "period": period, "active": active})
    out = {}
    for cohort, g in table.groupby("cohort", sort=True):
        g = g.sort_values("period")
        p = g["period"].to_numpy()
        if p[0] != 0 or np.any(np.diff(p) != 1):
            raise ConfigError(f"period (cohort {cohort!r} in {path})", p.tolist(),
                              "periods 0, 1, 2, ... without gaps or repeats (period 0 = the "
                              "cohort's size)")
        a = g["active"].to_numpy()
        if a[0] == 0:
            raise ConfigError(f"active (cohort {cohort!r}, period 0, in {path})", 0,
                              "a cohort size > 0 at period 0")
        up = np.flatnonzero(np.diff(a) > 0)
        if up.size:
            k = int(up[0]) + 1
            raise ConfigError(f"active (cohort {cohort!r}, period {int(p[k])}, in {path})",
                              int(a[k]), f"at most the {int(a[k - 1])} active at period "
                              f"{int(p[k - 1])}: a cohort only shrinks (customers who return "
                              "count as still active, not as new)")
        if a.size >= 2:
            out[cohort] = a
    if not out:
        raise ConfigError(f"period ({path})", "only period 0", "cohorts observed for at least "
                          "one period after acquisition (periods 0 and 1)")
    return out


def _log(df: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, pd.Timestamp, bool]:
    own = "step" in df.columns and "event" in df.columns
    if "event" in df.columns:
        df = df[df["event"].astype(str) == "purchase"]
        if df.empty:
            raise ConfigError(f"event ({path})", "no 'purchase' rows",
                              "a log with purchase events (rows with other events are ignored)")
    if df["customer_id"].isna().any():
        i = int(np.flatnonzero(df["customer_id"].isna().to_numpy())[0])
        raise ConfigError(f"customer_id ({path}, row {df.index[i] + 2})", None,
                          "a customer id on every row")
    dates = pd.to_datetime(df["date"], errors="coerce", format="mixed") \
        if not pd.api.types.is_datetime64_any_dtype(df["date"]) else df["date"]
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise ConfigError(f"date ({path}, row {df.index[i] + 2})", df["date"].iloc[i],
                          "a date such as 2024-03-31 or 2024-03-31 14:05:00")
    amount = pd.to_numeric(df["amount"], errors="coerce")
    bad = amount.isna() | (amount < 0) | ~np.isfinite(amount)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ConfigError(f"amount ({path}, row {df.index[i] + 2})", df["amount"].iloc[i],
                          "a finite amount >= 0 (refunds are not purchases: net them out first)")
    log = pd.DataFrame({"customer_id": df["customer_id"].to_numpy(),
                        "date": pd.DatetimeIndex(dates).tz_localize(None) if getattr(
                            dates.dt, "tz", None) is not None else dates.to_numpy(),
                        "amount": amount.to_numpy(float)}).sort_values("date", kind="stable")
    if own:
        from ..export import last_step_end

        end = last_step_end(pd.DataFrame({"step": df["step"].to_numpy(),
                                          "date": dates.to_numpy()}))
    else:
        end = pd.Timestamp(log["date"].max())
    return log.reset_index(drop=True), end, own


def period_index(dates: pd.Series, start: pd.Timestamp, days: float) -> np.ndarray:
    """The period of each date from ``start`` (0, 1, ...). A date exactly on a period's start
    belongs to it, also when the division's rounding lands just below (crmsim's own steps of
    365/12 days would otherwise fall into the period before, leaving one empty)."""
    return np.floor(((dates - start) / pd.Timedelta(days=1)).to_numpy(float) / days + 1e-9).astype(np.int64)


def cohorts_from_log(log: pd.DataFrame, days: float) -> dict:
    """A subscription log as a cohort table: a customer's cohort is the period of their first
    payment; they are active at the start of every period up to that of their last payment;
    those paying in the log's last period are still active (censored)."""
    start = log["date"].min()
    k = pd.Series(period_index(log["date"], start, days), index=log.index)
    g = k.groupby(log["customer_id"])
    first, last = g.min().to_numpy(), g.max().to_numpy()
    end = int(k.max())
    out = {}
    for c in np.unique(first):
        if c >= end:
            continue
        lasts = last[first == c]
        counts = np.array([(lasts >= c + j).sum() for j in range(end - c + 1)])
        out[f"period {int(c)}"] = counts
    return out


def first_purchases(log: pd.DataFrame, days: float) -> tuple[np.ndarray, np.ndarray]:
    """New customers per period from the log's start, and each period's end in years."""
    first = log.groupby("customer_id")["date"].min()
    start = log["date"].min()
    k = period_index(first, start, days)
    counts = np.bincount(k)
    t_end = np.arange(1, counts.size + 1) * days / YEAR_DAYS
    return t_end, counts


def cohort_table_of(source, steps_per_period: int = 1) -> pd.DataFrame:
    """A crmsim run's (or its events table's) first spells as a cohort table ``cohort, period,
    active``, periods of ``steps_per_period`` steps: what ``crmsim calibrate`` reads, built on
    ``crmsim.export.cohort_table``. A customer who left in the last observed step cannot be told
    from one still there, so each cohort stops one step before the end: it is active at the
    start of period k iff its spell lasted more than k periods."""
    from ..export import cohort_table

    per = cohort_table(source, min_T=2)
    rows = []
    for cohort, g in per.groupby("cohort", sort=True):
        T = int(g["T"].iloc[0])
        rec = g["recency"].to_numpy()
        for k in range((T - 1) // steps_per_period + 1):
            rows.append((cohort, k, int((rec > k * steps_per_period).sum())))
    return pd.DataFrame(rows, columns=list(COHORT_COLUMNS))


def period_days_of(period: str) -> float:
    """Days of a ``--period``: year, month (365/12 days), week, day, or a number of days."""
    if period in PERIOD_DAYS:
        return PERIOD_DAYS[period]
    try:
        days = float(period)
    except (TypeError, ValueError):
        days = float("nan")
    if not (np.isfinite(days) and 0 < days <= 3650):
        raise ConfigError("--period", period, "year, month, week, day, or a number of days "
                          "between 0 and 3650 (e.g. 28 for four-week periods)")
    return days
