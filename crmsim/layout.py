"""The on-disk layout of runs, sweeps and reports, defined once, and how it is written.

    <root>/<study>/<date-time>/                   one run (``crmsim run``)
    <root>/<study>/<date-time>/sweep.json         a sweep's plan (``crmsim run -m``) ...
    <root>/<study>/<date-time>/<job>/             ... and one directory per job
    <root>/<study>/<date-time>/tuned.json         a tuned comparison's record (crmsim.tune)
    <dir>/report/                                 a report (``crmsim report DIR``)
    <root>/calibrate/<date-time>/ or --out DIR    a calibration (``crmsim calibrate``):
                                                  market.yaml, calibration.json, report.md

A run directory holds ``summary.json`` (written last: its status ``ok`` or ``failed``, the
KPIs, the parameters), ``config.yaml``, ``timeseries.parquet``, ``levers.parquet`` (one row per
lever: spend, treated and held-out people, incremental effects; ``crmsim.levers.COLUMNS``) and,
when recorded, ``customers.parquet`` and ``events.parquet``. Every directory is written into a hidden sibling
``.<name>.XXXXXXXX.incomplete`` and renamed into place in one step, so a reader sees a whole
directory or none; a hidden ``.incomplete`` directory is what a process killed while saving
leaves behind. A report directory carries ``REPORT_MARK``, so a later report knows it may
replace it, and nothing else is ever replaced.

This module depends on nothing else in crmsim: every other module may use it.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Files of a run directory.
SUMMARY = "summary.json"
CONFIG = "config.yaml"
TIMESERIES = "timeseries.parquet"
CUSTOMERS = "customers.parquet"
EVENTS = "events.parquet"
LEVERS = "levers.parquet"
# A sweep's plan, in its directory.
MANIFEST = "sweep.json"
# A tuned comparison's record (experiment=compare_tuned), in its sweep's directory: its jobs are
# train/<policy>/trial=<n>/seed=<s>/ and test/<policy>/<hand_set|tuned>/seed=<s>/ (crmsim.tune).
TUNED = "tuned.json"

# A calibration's directory (crmsim calibrate) and its files.
CALIBRATE_DIR = "calibrate"
CALIBRATED_MARKET = "market.yaml"
CALIBRATION = "calibration.json"
CALIBRATION_REPORT = "report.md"
# A report: the default directory name below the runs, and the mark that makes it one.
REPORT_DIR = "report"
REPORT_MARK = ".crmsim-report"
REPORT_FILES = ("runs.parquet", "report.csv", "report.md")
REPORT_ROBUST = ("robust.csv", "voi.csv")   # written when runs draw from the prior ranges

# What a run can be: written by the run (ok, failed), or found by a reader (the rest).
OK = "ok"
FAILED = "failed"
INCOMPLETE = "incomplete"       # a hidden .incomplete directory: killed while saving
MISSING = "missing"             # planned by a sweep, never saved
UNREADABLE = "unreadable"       # a summary.json that cannot be read as a run's summary
STATUSES = (OK, FAILED, INCOMPLETE, MISSING, UNREADABLE)

INCOMPLETE_SUFFIX = ".incomplete"


def is_incomplete(name: str) -> bool:
    """A hidden directory a writer left when it was killed before renaming it into place."""
    return name.startswith(".") and name.endswith(INCOMPLETE_SUFFIX)


def incomplete_pattern(name: str) -> re.Pattern[str]:
    """The hidden ``.incomplete`` siblings that attempts at writing ``name`` leave behind
    (``seed=1`` never matches ``seed=1.5``'s)."""
    return re.compile(re.escape(f".{name}.") + r"[a-z0-9_]{8}" + re.escape(INCOMPLETE_SUFFIX))


class SaveError(OSError):
    """A directory that could not be written: the directory and the reason, in one line."""

    def __init__(self, target: Path, err: BaseException) -> None:
        reason = os.strerror(err.errno) if isinstance(err, OSError) and err.errno else str(err)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            reason += " (free some space and run again)"
        elif isinstance(err, OSError) and err.errno == errno.EFBIG:
            reason += " (a file-size limit, see ulimit -f)"
        super().__init__(f"could not save {target}: {reason}; nothing was written there")
        self.errno = getattr(err, "errno", None)
        self.target = target


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def write_dir(target: str | os.PathLike, write: Callable[[Path], None],
              replace: Callable[[Path], bool] | bool = False) -> Path:
    """Create directory ``target`` with ``write(tmp)`` so it appears complete or not at all.

    Everything is written into a hidden ``.<name>.XXXXXXXX.incomplete`` sibling and renamed
    into place in one step. An empty ``target`` (reserved by ``reserve`` or made by a launcher
    before the job runs) is taken over. Anything else at ``target`` is replaced only when
    ``replace`` says so (True, or a function of the path that recognises what it may replace),
    and then the old one is moved aside first and deleted only once the new one is in place;
    otherwise ``FileExistsError``. A failure to write raises ``SaveError`` (the directory and
    the reason) and leaves nothing behind.
    """
    target = Path(target)

    def replaceable() -> bool:
        return replace(target) if callable(replace) else bool(replace)

    if (target.exists() or target.is_symlink()) and not _empty_dir(target) and not replaceable():
        raise FileExistsError(f"{target} already exists; crmsim never overwrites it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=INCOMPLETE_SUFFIX,
                                    dir=target.parent))
    except OSError as err:
        raise SaveError(target, err) from err
    old = None
    try:
        write(tmp)
        if _empty_dir(target):
            os.rename(tmp, target)          # POSIX: a directory replaces an empty one atomically
        elif target.exists() or target.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".replaced",
                                        dir=target.parent))
            os.rename(target, old / "previous")
            os.rename(tmp, target)
        else:
            os.rename(tmp, target)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not target.exists():
            os.rename(old / "previous", target)      # put back what was there
            shutil.rmtree(old, ignore_errors=True)
        raise SaveError(target, err) from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not target.exists():
            os.rename(old / "previous", target)
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def unwritable(path: Path) -> Path | None:
    """Where creating ``path`` would fail: its nearest existing ancestor when that is not a
    directory crmsim can create files in, else None. Nothing is left behind (``os.access``
    says yes to root even on read-only mounts and /proc, so a temporary file is tried)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        if not probe.is_dir():
            return probe
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError:
        return probe
    return None


def stamp() -> str:
    """The name of a new run or sweep directory: the local date and time, to the microsecond."""
    return dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")


def reserve(parent: Path, name: str) -> Path:
    """A new empty directory ``parent/name`` (``name-2``, ``name-3``, ... when taken), created
    at once so that two processes never pick the same one; ``write_dir`` fills it."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SaveError(parent / name, err) from err
    for i in range(1, 10_000):
        path = parent / (name if i == 1 else f"{name}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as err:
            raise SaveError(path, err) from err
    raise SaveError(parent / name, FileExistsError(errno.EEXIST, "every name is taken"))


def release(path: Path) -> None:
    """Remove a reserved directory that stayed empty (the run did not get saved)."""
    try:
        path.rmdir()
    except OSError:
        pass


def finite(doc: Any) -> tuple[Any, list[str]]:
    """``doc`` with every NaN and infinity replaced by None (JSON has no such numbers), and the
    dotted keys where that happened."""
    where: list[str] = []

    def walk(x: Any, key: str) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            where.append(f"{key}={x}")
            return None
        if isinstance(x, dict):
            return {k: walk(v, f"{key}.{k}" if key else str(k)) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [walk(v, f"{key}[{i}]") for i, v in enumerate(x)]
        return x

    return walk(doc, ""), where


def dump_json(path: Path, doc: dict) -> None:
    """Write ``doc`` as strict JSON (no NaN or Infinity: they are written as null)."""
    clean, _ = finite(doc)
    path.write_text(json.dumps(clean, indent=2, default=str, allow_nan=False) + "\n")


def write_parquet(table: Any, path: Path) -> None:
    """Write the DataFrame ``table`` as pandas' own Parquet file (with its schema, so it reads
    back with the same dtypes), dictionary-encoding only the text columns: the numeric columns
    (per-person floats, nearly all distinct) write ~3x faster and smaller without it."""
    import pyarrow.parquet as pq

    arrow = to_arrow(table)
    text = [f.name for f in arrow.schema if _is_text(f.type)]
    pq.write_table(arrow, path, use_dictionary=text or False)


_SCHEMAS: dict[tuple, Any] = {}   # (column, dtype) pairs -> the Arrow schema pandas gives them
_SCHEMAS_KEPT = 64


def to_arrow(table: Any) -> Any:
    """``pyarrow.Table.from_pandas(table, preserve_index=False)``, ~5x faster for a table whose
    columns are numbers, booleans or pandas strings (every table a run writes): their schema,
    pandas' metadata included, follows from the names and dtypes alone, so it is made once per
    kind of table and the columns are converted one by one. Any other table (text in object
    columns, categories, dates, an index) takes pandas' own route."""
    import pandas as pd
    import pyarrow as pa

    if not isinstance(table.index, pd.RangeIndex) or not all(
            _is_number(dtype) or isinstance(dtype, pd.StringDtype) for dtype in table.dtypes):
        return pa.Table.from_pandas(table, preserve_index=False)
    key = tuple(zip(table.columns, table.dtypes, strict=True))
    schema = _SCHEMAS.get(key)
    if schema is None:
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        if len(_SCHEMAS) < _SCHEMAS_KEPT:
            _SCHEMAS[key] = arrow.schema
        return arrow
    return pa.Table.from_arrays(
        [pa.array(column.to_numpy() if _is_number(column.dtype) else column.array,
                  type=field.type, from_pandas=True)
         for (_, column), field in zip(table.items(), schema, strict=True)], schema=schema)


def _is_number(dtype: Any) -> bool:
    """A numpy number or boolean (not pandas' nullable ones, whose NA has no numpy value)."""
    import numpy as np

    return isinstance(dtype, np.dtype) and dtype.kind in "biuf"


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind)


def replace_file(path: Path, text: str) -> None:
    """Write a file in one rename (a reader sees the old contents or the new, never half)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_json(path: Path) -> tuple[Any, str | None]:
    """(contents, None), or (None, why it cannot be read) for a missing or damaged file."""
    try:
        return json.loads(path.read_text()), None
    except FileNotFoundError:
        return None, "missing"
    except (OSError, UnicodeDecodeError) as err:
        return None, f"unreadable ({err.strerror if isinstance(err, OSError) else err})"
    except ValueError as err:
        return None, f"not JSON ({err})"


def read_summary(directory: str | os.PathLike) -> dict | None:
    """The ``summary.json`` of a run directory, or None when there is none or it is not a
    summary (unreadable, not JSON, not an object with a status)."""
    doc, _ = read_json(Path(directory) / SUMMARY)
    return doc if isinstance(doc, dict) and isinstance(doc.get("status"), str) else None


def summary_problem(directory: Path) -> str | None:
    """Why ``directory/summary.json`` is not a run's summary, or None when it is one."""
    doc, why = read_json(directory / SUMMARY)
    if why:
        return f"{SUMMARY} {why}"
    if not isinstance(doc, dict):
        return f"{SUMMARY} holds {type(doc).__name__ if doc is not None else 'null'}, not a summary"
    if not isinstance(doc.get("status"), str):
        return f"{SUMMARY} has no status"
    return None


RUN_FILES = (SUMMARY, CONFIG, TIMESERIES, CUSTOMERS, EVENTS, LEVERS)


def is_run(path: Path) -> bool:
    """A directory holding only a run's files (finished, failed, or what is left of one): a
    sweep may replace it when it reruns the job; anything else in it makes it the user's."""
    if not path.is_dir() or path.is_symlink():
        return False
    return all(p.name in RUN_FILES or p.name.startswith(".") for p in path.iterdir())


# ---------------------------------------------------------------------------------------------
# Reports: what a report may replace.

def write_report_mark(directory: Path, source: Path, version: str) -> None:
    dump_json(directory / REPORT_MARK, {"crmsim_report": version, "runs": str(source)})


def is_report(path: Path) -> bool:
    """A directory a report wrote, holding nothing else: its files are a report's (tables,
    report.md, PNG plots) and it carries ``REPORT_MARK`` (or, from before the mark, its
    report.md was written by crmsim). A file added by hand makes it the user's."""
    if not path.is_dir() or path.is_symlink():
        return False
    names = {p.name for p in path.iterdir()}
    ours = all((path / n).is_file() and not (path / n).is_symlink()
               and (n in REPORT_FILES or n in REPORT_ROBUST or n == REPORT_MARK
                    or n.endswith(".png")) for n in names)
    if not ours or not set(REPORT_FILES) <= names:
        return False
    if REPORT_MARK in names:
        return True
    try:
        with open(path / "report.md") as f:
            return f.readline().startswith("# crmsim report")
    except (OSError, UnicodeDecodeError):
        return False
