"""Collect every run below a directory into one tidy table: one row per job.

A run is a directory with a ``summary.json`` (``crmsim run`` and every job of ``crmsim run
-m`` write one). Nothing is left out silently: failed runs keep their error, hidden
``.<name>.*.incomplete`` directories (a run interrupted while saving) are listed as
``incomplete`` and never read, jobs a sweep planned (its ``sweep.json``) but that left no
summary are listed as ``missing``, and a ``summary.json`` or ``sweep.json`` that cannot be read
is named in ``Collection.problems`` (the run is listed as ``unreadable``). The layout is
``crmsim.layout``'s.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from omegaconf import OmegaConf

from .. import layout
from ..config import DEFAULT_OBJECTIVE
from ..layout import MANIFEST, REPORT_DIR
from ..overrides import params_of

# Columns of the tidy table that are not parameters or KPIs.
BASE_COLUMNS = ("run", "sweep", "job", "status", "error", "seed", "config_hash", "saved_at")
DRAWN = "drawn:"   # column prefix of a parameter drawn from its prior range (crmsim.uncertainty)


@dataclass
class Collection:
    """The runs below a directory, and what the sweeps that made them said about themselves."""

    root: Path
    runs: pd.DataFrame                      # one row per job; see ``collect``
    params: list[str]                       # parameter columns, in the order they first appear
    kpis: list[str]                         # KPI columns
    swept: list[str] = field(default_factory=list)
    replicates: list[str] = field(default_factory=lambda: ["seed"])
    baseline: str | None = None
    objective: str = DEFAULT_OBJECTIVE
    design: dict[str, Any] = field(default_factory=dict)
    sweepers: list[str] = field(default_factory=list)
    # Files that could not be read, as (path relative to root, why): never silently dropped.
    problems: list[tuple[str, str]] = field(default_factory=list)
    # Parameters drawn from the prior ranges (study.uncertainty.draws), as columns DRAWN + key.
    drawn: list[str] = field(default_factory=list)
    # The plotted columns of finished runs' time series, by run ({column: values}, step
    # included): read once by the report's check of every time series, for its plots.
    series: dict[str, dict[str, Any]] = field(default_factory=dict)


def _seed_from_config(run: Path) -> Any:
    """Runs saved before summaries carried the seed: read it from their config."""
    try:
        return OmegaConf.load(run / layout.CONFIG).get("seed")
    except Exception:  # a missing or unreadable config: the seed is unknown, not an error
        return None


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path != root else "."


def _first_line(text: Any) -> str | None:
    return str(text).strip().splitlines()[0] if text else None


def _column(key: str, taken: set[str]) -> str:
    return f"param:{key}" if key in taken else key


def _walk(root: Path):
    """(run directories, incomplete directories, sweep directories) below ``root``."""
    runs, incomplete, sweeps = [], [], []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        incomplete += [here / n for n in dirnames if layout.is_incomplete(n)]
        if MANIFEST in filenames:
            sweeps.append(here)
        if layout.SUMMARY in filenames:
            runs.append(here)
            dirnames[:] = []          # a run holds no runs
            continue
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".") and n != REPORT_DIR
                             and not layout.is_report(here / n))
    return runs, incomplete, sweeps


def collect(root: str | os.PathLike) -> Collection:
    """Every run below ``root`` as a ``Collection``.

    ``runs`` columns: ``run`` (path relative to root), ``sweep`` (the sweep directory, relative),
    ``job``, ``status`` (ok, failed, incomplete, missing, unreadable), ``error``, ``seed``, ``config_hash``,
    ``saved_at``, then one column per parameter (the overrides that define a job; a name that
    clashes with another column becomes ``param:<name>``) and one per KPI.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    run_dirs, incomplete, sweep_dirs = _walk(root)
    manifests = {}
    problems: list[tuple[str, str]] = []
    for d in sweep_dirs:
        doc, why = layout.read_json(d / MANIFEST)
        if why is None and not (isinstance(doc, dict) and isinstance(doc.get("jobs", []), list | None)):
            why = "not a sweep's plan"
        if why:
            problems.append((_rel(d / MANIFEST, root), f"{why}: the jobs of this sweep that "
                             "did not finish cannot be listed as missing"))
        else:
            manifests[d] = doc

    def sweep_of(path: Path) -> Path:
        for parent in [path, *path.parents]:
            if parent in manifests:
                return parent
            if parent == root:
                break
        return path.parent

    records: list[dict[str, Any]] = []
    params: dict[str, None] = {}
    kpis: dict[str, None] = {}
    drawn: dict[str, None] = {}
    studies: list[dict[str, Any]] = []
    seen: set[Path] = set()
    for run in sorted(run_dirs):
        why = layout.summary_problem(run)
        if why:
            problems.append((_rel(run / layout.SUMMARY, root), why))
            doc = {"status": layout.UNREADABLE, "error": why}
        else:
            doc = layout.read_summary(run) or {}
        seen.add(run)
        p = doc.get("params") if isinstance(doc.get("params"), dict) else {}
        k = doc.get("kpis") if isinstance(doc.get("kpis"), dict) else {}
        d = doc.get("drawn") if isinstance(doc.get("drawn"), dict) else {}
        params.update(dict.fromkeys(p))
        kpis.update(dict.fromkeys(key for key, v in k.items() if isinstance(v, int | float)))
        drawn.update(dict.fromkeys(d))
        if doc.get("study"):
            studies.append(doc["study"])
        seed = doc.get("seed", None)
        records.append({
            "run": run, "status": str(doc.get("status", "failed")),
            "error": _first_line(doc.get("error")),
            "seed": seed if seed is not None or why else _seed_from_config(run),
            "config_hash": doc.get("config_hash"), "saved_at": doc.get("saved_at"),
            "_params": p, "_kpis": k, "_drawn": d,
        })
    for d in incomplete:
        records.append({"run": d, "status": layout.INCOMPLETE,
                        "error": "interrupted while saving; never read", "_params": {}, "_kpis": {}})
    for sweep, manifest in manifests.items():
        for job in manifest.get("jobs") or []:
            try:
                path = sweep / job["dir"]
                p = params_of(job.get("overrides", []))
            except Exception as err:   # a damaged plan: say so, list what can be listed
                problems.append((_rel(sweep / MANIFEST, root), f"a job it cannot read ({err})"))
                continue
            if path not in seen:
                params.update(dict.fromkeys(p))
                records.append({"run": path, "status": layout.MISSING,
                                "error": f"no {layout.SUMMARY}: the job did not finish (rerun the "
                                         "sweep with --resume)",
                                "seed": p.get("seed"), "_params": p, "_kpis": {}})

    taken = set(BASE_COLUMNS) | set(kpis) | {"variant", "stratum", "replicate"}
    # A swept seed is the seed column itself.
    names = {key: "seed" if key == "seed" else _column(key, taken) for key in params}
    rows = []
    for r in records:
        run = r["run"]
        row = {"run": str(run.relative_to(root)) if run != root else ".",
               "sweep": str(sweep_of(run).relative_to(root)) if sweep_of(run) != root else ".",
               "job": run.name, "status": r["status"], "error": r.get("error"),
               "seed": r.get("seed"), "config_hash": r.get("config_hash"), "saved_at": r.get("saved_at")}
        row.update({names[key]: value for key, value in r["_params"].items()})
        row.update({key: r["_kpis"].get(key) for key in kpis})
        row.update({DRAWN + key: r.get("_drawn", {}).get(key) for key in drawn})
        rows.append(row)
    param_columns = [n for n in names.values() if n != "seed"]
    drawn_columns = [DRAWN + key for key in drawn]
    frame = pd.DataFrame(rows, columns=[*BASE_COLUMNS, *param_columns, *kpis, *drawn_columns])
    frame = _tidy_types(frame, param_columns, [*kpis, *drawn_columns])

    swept: dict[str, None] = {}
    replicates: dict[str, None] = {}
    sweepers: dict[str, None] = {}
    for m in manifests.values():
        swept.update(dict.fromkeys(m.get("swept") or []))
        replicates.update(dict.fromkeys(m.get("replicates") or []))
        sweepers.update(dict.fromkeys([m.get("sweeper", "basic")]))
    for s in studies:
        replicates.update(dict.fromkeys(s.get("replicates") or []))
    study = studies[-1] if studies else {}
    baselines = [s.get("baseline") for s in studies if s.get("baseline")]
    return Collection(
        root=root, runs=frame, params=param_columns, kpis=list(kpis),
        swept=[names.get(s, s) for s in swept], replicates=list(replicates) or ["seed"],
        baseline=max(set(baselines), key=baselines.count) if baselines else None,
        objective=study.get("objective") or DEFAULT_OBJECTIVE, design=study.get("design") or {},
        sweepers=list(sweepers), problems=problems, drawn=drawn_columns,
    )


def _tidy_types(frame: pd.DataFrame, params: list[str], kpis: list[str]) -> pd.DataFrame:
    """Numbers where every value is a number, text otherwise (parquet wants one type a column)."""
    for col in params + ["seed"]:
        values = frame[col].dropna()
        if len(values) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            frame[col] = pd.to_numeric(frame[col])
            if all(float(v).is_integer() for v in values) and frame[col].notna().all():
                frame[col] = frame[col].astype("int64")
        else:
            frame[col] = frame[col].map(lambda v: None if v is None or (isinstance(v, float) and v != v)
                                        else (json.dumps(v) if isinstance(v, list | dict) else str(v)))
    for col in kpis:
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    for col in ("error", "config_hash", "saved_at"):
        frame[col] = frame[col].astype("object")
    return frame


def read_table(path: Path) -> pa.Table:
    """A parquet file with every column decoded and its pandas schema read: a damaged file
    raises what ``pd.read_parquet(path)`` raises, even in a column no one asked for, for a third
    of its CPU (it converts every column to pandas). A file only pandas reads (a directory of
    parts) is read by pandas."""
    try:
        table = pq.ParquetFile(path).read(use_threads=False)
    except Exception:   # pyarrow raises its own types for damaged files: pandas' error, or data
        return pa.Table.from_pandas(pd.read_parquet(path), preserve_index=False)
    table.schema.pandas_metadata  # noqa: B018 (parsed: a damaged one raises, as pandas' would)
    return table


def read_columns(path: Path, columns: list[str]) -> pd.DataFrame:
    """The ``columns`` a parquet file has, in that order, checked as ``read_table`` checks."""
    table = read_table(path)
    return table.select([c for c in columns if c in table.column_names]).to_pandas()


def collect_levers(root: Path, runs: pd.Series, columns: list[str],
                   ) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The ``columns`` of the ``levers.parquet`` of each run in ``runs`` (paths relative to
    ``root``) as one table with a ``run`` column, and the runs whose file is missing or
    unreadable (runs saved before levers were recorded have none: they are named, not guessed).
    Every file is read whole (``read_table``), so a damaged one is always named."""
    tables, problems = [], []
    for run in runs:
        path = Path(root) / run / layout.LEVERS
        try:
            table = read_table(path)
        except Exception as err:   # pyarrow raises its own types for damaged files
            why = "missing" if not path.exists() else f"unreadable ({type(err).__name__})"
            problems.append((str(Path(run) / layout.LEVERS), why))
            continue
        tables.append((run, table.select([c for c in columns if c in table.column_names])))
    if not tables:
        return pd.DataFrame(columns=["run"]), problems
    try:   # one conversion to pandas for all runs (a column some files lack is empty in their rows)
        frame = pa.concat_tables([t for _, t in tables], promote_options="permissive").to_pandas()
    except pa.ArrowException:   # types pyarrow does not merge (a categorical lever): pandas does
        frame = pd.concat([t.to_pandas() for _, t in tables], ignore_index=True)
    frame.insert(0, "run", np.repeat(np.array([run for run, _ in tables], dtype=object),
                                     [t.num_rows for _, t in tables]))
    return frame, problems
