"""``crmsim report DIR``: which variant wins, by how much, and how sure we are.

Every run below DIR is collected (``collect``); the runs that finished are grouped into
variants (the swept values that are not replicates) and compared with the baseline seed by
seed (``paired_differences``: common random numbers make the comparison paired). The report
is written atomically into ``DIR/report/`` (or ``--out``), which it may replace only when a
report wrote it (``crmsim.layout.is_report``):

    runs.parquet     one row per job: parameters, KPIs, status (failed and unfinished included)
    report.csv       every KPI of every variant: mean, 95% interval, paired difference to the
                     baseline with its 95% interval and p-value
    report.md        the verdict table, how to read it, the plots, the runs that did not finish
    *.png            KPIs over time per variant (seed bands), paired differences, a heatmap when
                     the sweep has two axes, parameter ranking for a sensitivity design
"""

from __future__ import annotations

import gc
import math
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import layout, metrics
from .._version import __version__
from ..errors import ConfigError
from ..formatting import diff as fmt_diff
from ..formatting import value as fmt_value
from ..layout import REPORT_DIR
from .collect import Collection, collect, collect_levers, read_columns
from .stats import paired_differences

# The verdict: what a strategist asks first. The decision KPI is the study's objective
# (npv_total by default: the run's profit and the customer base it leaves behind).
VERDICT_KPIS = {k: metrics.LABELS[k][0] for k in (
    "npv_total", "npv_profit", "retention_rate_annual", "revenue_total")}
# When it pays back: npv_total as if the run had ended at each horizon it reaches.
HORIZON_KPIS = {f"npv_total_{h}y": f"{h} year{'s' if h > 1 else ''}" for h in metrics.HORIZONS}
LEVEL = 0.95
MAX_SHOWN = 12      # variants in the terminal table and the plots (all are in report.csv)


class ReportError(ValueError):
    """Runs that cannot be compared as asked (e.g. an unknown baseline)."""


def verdict_word(diff: float, lo: float, hi: float, is_baseline: bool) -> str:
    if is_baseline:
        return "baseline"
    if math.isnan(lo) or math.isnan(hi):
        return "n/a (one seed)" if not math.isnan(diff) else "n/a (no common seeds)"
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "no clear difference"


def _label(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _same(label: str, wanted: str) -> bool:
    """A value as labelled equals one as written (``1`` and ``1.0`` are the same number)."""
    if label == wanted:
        return True
    try:
        return float(label) == float(wanted)
    except ValueError:
        return False


def _join(row: pd.Series, keys: list[str]) -> str:
    if len(keys) == 1:
        return _label(row[keys[0]])
    return ",".join(f"{k}={_label(row[k])}" for k in keys)


@dataclass
class Comparison:
    """Finished runs grouped into variants, and their paired differences to the baseline.

    The keys that vary across the runs (other than replicates) are split in two: the keys the
    baseline names are compared (``compare_keys``; a variant is a combination of their values),
    and comparisons are made within each combination of the other keys (a stratum), so
    ``baseline: policy=transactional`` in a policy x market sweep compares every policy with
    transactional in each market.
    """

    runs: pd.DataFrame                  # ok runs with columns variant, stratum, replicate
    table: pd.DataFrame                 # paired_differences rows (+ stratum)
    baseline: str
    compare_keys: list[str]
    variant_keys: list[str]
    strata_keys: list[str]
    replicates: list[str]
    objective: str
    notes: list[str] = field(default_factory=list)

    @property
    def baseline_text(self) -> str:
        """The baseline as a reader needs it: with its key when one key is compared."""
        if len(self.compare_keys) == 1:
            return f"{self.compare_keys[0]}={self.baseline}"
        return self.baseline


def _split_spec(spec: str) -> list[tuple[str, str]]:
    """``a=1,b=[x,y]`` -> [(a, 1), (b, [x,y])]: split at commas that start a new key=."""
    parts = re.split(r",(?=[\w.+~@/-]+=)", spec)
    return [(k.strip().lstrip("+~"), v.strip()) for k, _, v in (p.partition("=") for p in parts)]


def _listing(values: dict[str, list[str]]) -> str:
    return "; ".join(k + ": " + ", ".join(v) for k, v in values.items())


def _resolve_baseline(spec: str | None, ok: pd.DataFrame, keys: list[str]) -> dict[str, str]:
    """The baseline as {key: value label}; its keys are the ones compared."""
    if not keys:
        return {}
    values = {k: list(dict.fromkeys(ok[k].map(_label))) for k in keys}
    if spec is None:
        if "policy" in keys and "transactional" in values["policy"]:
            return {"policy": "transactional"}
        first = ok.iloc[0]
        return {k: _label(first[k]) for k in keys}
    spec = str(spec)
    if "=" not in spec:
        hits = [k for k in keys if any(_same(v, spec) for v in values[k])]
        if len(hits) != 1:
            why = ("matches several keys: " + ", ".join(hits) if hits
                   else "is none of the variants: " + _listing(values))
            raise ReportError(f"baseline {spec!r} {why}; write it as key=value")
        pairs = [(hits[0], spec)]
    else:
        pairs = _split_spec(spec)
    out = {}
    for key, wanted in pairs:
        if key not in keys:
            raise ReportError(f"baseline {spec!r}: {key} is not a key the runs differ in "
                              f"({', '.join(keys)})")
        match = next((v for v in values[key] if _same(v, wanted)), None)
        if match is None:
            raise ReportError(f"baseline {spec!r}: no run has {key}={wanted} "
                              f"({_listing({key: values[key]})})")
        out[key] = match
    return out


def compare(c: Collection, baseline: str | None = None, kpis: list[str] | None = None) -> Comparison:
    """Group the finished runs of ``c`` into variants and compare each with the baseline."""
    ok = c.runs[c.runs["status"] == "ok"].copy()
    if ok.empty:
        raise ReportError("no finished runs to compare")
    replicates = [r for r in c.replicates if r in ok.columns] or ["seed"]
    candidates = [p for p in c.params if p not in replicates]
    keys = [p for p in candidates if p in c.swept or ok[p].map(_label).nunique() > 1]
    ok["replicate"] = ok[replicates].apply(lambda r: "|".join(_label(v) for v in r), axis=1)
    if baseline is not None and not keys:
        raise ReportError(f"baseline {baseline!r}: the finished runs do not differ in any "
                          "parameter, so there is no variant to compare with")
    base = _resolve_baseline(baseline or c.baseline, ok, keys)
    compare_keys = list(base)
    strata_keys = [k for k in keys if k not in base]
    ok["variant"] = ok.apply(lambda r: _join(r, compare_keys), axis=1) if compare_keys else "all runs"
    ok["stratum"] = ok.apply(lambda r: _join(r, strata_keys), axis=1) if strata_keys else ""
    if len(strata_keys) == 1:
        ok["stratum"] = strata_keys[0] + "=" + ok["stratum"]
    base_label = (_join(pd.Series(base), compare_keys) if compare_keys else "all runs")
    notes = []
    before = len(ok)
    ok = ok.sort_values("saved_at", na_position="first").drop_duplicates(
        ["stratum", "variant", "replicate"], keep="last").sort_index()
    if len(ok) < before:
        notes.append(f"{before - len(ok)} duplicate runs (same variant and seed) were left out; "
                     "the latest of each was kept")
    kpis = kpis or [k for k in c.kpis if ok[k].notna().any()]
    parts = []
    for stratum, sub in ok.groupby("stratum", sort=False):
        if base_label not in set(sub["variant"]):
            notes.append(f"{stratum}: no run of the baseline {base_label}; not compared")
            continue
        t = paired_differences(sub, kpis, base_label, variant="variant", seed="replicate", level=LEVEL)
        t.insert(0, "stratum", stratum)
        parts.append(t)
    if not parts:
        raise ReportError(f"no runs of the baseline {base_label!r} to compare with")
    table = pd.concat(parts, ignore_index=True)
    objective = c.objective if c.objective in kpis else kpis[0]
    # Baseline first, then by the objective's paired difference, best first.
    order = table[table["kpi"] == objective].set_index(["stratum", "variant"])["diff"]
    rank = {key: (0 if key[1] == base_label else 1, -v if not math.isnan(v) else math.inf)
            for key, v in order.items()}
    table["_rank"] = [rank.get(key, (2, 0)) for key in zip(table["stratum"], table["variant"], strict=True)]
    table = table.sort_values(["stratum", "_rank"], kind="stable").drop(columns="_rank")
    return Comparison(runs=ok, table=table.reset_index(drop=True), baseline=base_label,
                      compare_keys=compare_keys, variant_keys=keys, strata_keys=strata_keys,
                      replicates=replicates, objective=objective, notes=notes)


def verdict(cmp: Comparison) -> pd.DataFrame:
    """One row per variant: n, the verdict KPIs' means and paired differences, and the word."""
    rows = []
    t = cmp.table
    kpis = [k for k in VERDICT_KPIS if k in set(t["kpi"])]
    if cmp.objective not in kpis:
        kpis = [cmp.objective, *kpis]
    for (stratum, variant), g in t.groupby(["stratum", "variant"], sort=False):
        by = g.set_index("kpi")
        row = {"stratum": stratum, "variant": variant, "n": int(by["n"].iloc[0])}
        for k in kpis:
            r = by.loc[k]
            row[k] = r["mean"]
            row[f"{k}_diff"], row[f"{k}_low"], row[f"{k}_high"] = r["diff"], r["diff_low"], r["diff_high"]
        o = by.loc[cmp.objective]
        row["verdict"] = verdict_word(o["diff"], o["diff_low"], o["diff_high"], variant == cmp.baseline)
        rows.append(row)
    return pd.DataFrame(rows)


def _verdict_cells(cmp: Comparison, v: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    kpis = [k for k in VERDICT_KPIS if k in v.columns]
    if cmp.objective not in kpis:
        kpis = [cmp.objective, *kpis]
    name = cmp.compare_keys[0] if len(cmp.compare_keys) == 1 else "variant"
    head = (["stratum"] if cmp.strata_keys else []) + [name, "seeds"]
    for k in kpis:
        label = VERDICT_KPIS.get(k, k)
        head += [label, f"Δ {label} [95% CI]"]
    head.append(f"verdict ({VERDICT_KPIS.get(cmp.objective, cmp.objective)})")
    body = []
    for _, r in v.iterrows():
        cells = ([r["stratum"]] if cmp.strata_keys else []) + [str(r["variant"]), str(r["n"])]
        for k in kpis:
            base = r["variant"] == cmp.baseline
            cells += [fmt_value(k, r[k]),
                      "—" if base else fmt_diff(k, r[f"{k}_diff"], r[f"{k}_low"], r[f"{k}_high"])]
        cells.append(r["verdict"])
        body.append(cells)
    return head, body


def horizon_cells(cmp: Comparison) -> tuple[list[str], list[list[str]]] | None:
    """Δ npv_total with its interval at each horizon (1, 3, 5, 10 years) the runs reach; None
    when they reach none."""
    t = cmp.table
    present = [k for k in HORIZON_KPIS if k in set(t["kpi"])]
    if not present:
        return None
    name = cmp.compare_keys[0] if len(cmp.compare_keys) == 1 else "variant"
    head = (["stratum"] if cmp.strata_keys else []) + [name] + [HORIZON_KPIS[k] for k in present]
    body = []
    for (stratum, variant), g in t.groupby(["stratum", "variant"], sort=False):
        by = g.set_index("kpi")
        cells = ([stratum] if cmp.strata_keys else []) + [str(variant)]
        for k in present:
            r = by.loc[k]
            cells.append("—" if variant == cmp.baseline
                         else fmt_diff(k, r["diff"], r["diff_low"], r["diff_high"]))
        body.append(cells)
    return head, body


def text_table(head: list[str], body: list[list[str]]) -> str:
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(head)]
    right = [i for i in range(len(head)) if body and all(_numeric(row[i]) for row in body)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), rule, *(line(r) for r in body)])


def _numeric(cell: str) -> bool:
    """Right-align a column whose cells all read as numbers (or stand in for one)."""
    return cell in ("—", "n/a") or cell[:1] in "+-0123456789"


def md_table(head: list[str], body: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in [head, *body]]
    return "\n".join(["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(r) + " |" for r in esc[1:])])


@dataclass
class Report:
    path: Path
    collection: Collection
    comparison: Comparison | None
    terminal: str                      # what `crmsim report` prints
    files: list[str]


def _counts(c: Collection) -> str:
    counts = c.runs["status"].value_counts()
    parts = [f"{counts.get(s, 0)} {s}" for s in layout.STATUSES if counts.get(s, 0)]
    return f"{len(c.runs)} runs: " + ", ".join(parts)


def _not_finished(c: Collection) -> pd.DataFrame:
    return c.runs[c.runs["status"] != "ok"][["run", "status", "error"]]


def _how_to_read(cmp: Comparison) -> str:
    obj = VERDICT_KPIS.get(cmp.objective, cmp.objective)
    where = (f"Within each stratum ({', '.join(cmp.strata_keys)}), each row is a variant; the first "
             if cmp.strata_keys else "Each row is a variant; the first ")
    return (
        f"{where}is the baseline, **{cmp.baseline_text}**. The numbers are means "
        f"over seeds. Every variant ran with the same seeds as the baseline, so it faced the same "
        f"people, network and luck (common random numbers); Δ is the mean of the seed-by-seed "
        f"differences to the baseline, and the 95% interval is a paired t interval over those "
        f"differences. *better* / *worse*: the whole interval of Δ {obj} lies above / below zero; "
        f"*no clear difference*: it includes zero: more seeds (a longer sweep) would narrow it. "
        f"Retention is annual; Δ retention is in percentage points (pp). Money is in the model's "
        f"currency units over the whole run, NPV discounted at sim.discount_rate."
    )


def check_out(target: Path, root: Path) -> None:
    """Where a report may go: a new directory, or one an earlier report wrote (it is replaced).
    Anything else (a file, the runs, any other directory, a place that cannot be written) is
    bad input, and nothing is touched."""
    layout_text = "a new directory, or a report directory written by crmsim report (replaced)"
    if target.is_symlink() or (target.exists() and not layout.is_report(target)):
        what = ("a file" if target.is_file() else "the directory of the runs" if target == root
                else "a directory holding the runs" if target in root.parents
                else "a directory that is not a report")
        raise ConfigError("--out", str(target), layout_text,
                          f"It is {what}; crmsim report never replaces anything but its own "
                          "report.")
    probe = layout.unwritable(target.parent)
    if probe is not None:
        raise ConfigError("--out", str(target), layout_text,
                          f"{probe} is not a directory crmsim can write to.")


def build(root: str | os.PathLike, out: str | os.PathLike | None = None,
          baseline: str | None = None, plots: bool = True) -> Report:
    """Collect the runs below ``root``, compare them, and write the report atomically.

    ``out`` defaults to ``root/report``. An earlier report there (``crmsim.layout.is_report``)
    is replaced in one rename; anything else at ``out`` raises ``ConfigError`` and is left
    alone. The runs themselves are only read.
    """
    with _new_objects_only():
        return _build(root, out, baseline, plots)


@contextmanager
def _new_objects_only():
    """While a report is made, the cyclic garbage collector leaves alone the objects that were
    there before it (the imports' ~200,000 modules, functions and classes, never garbage): its
    full collections walked them all, ~0.14 s of CPU in a report of 120 runs. Objects made
    meanwhile are collected as usual; a process that froze objects itself is left as it is."""
    if gc.get_freeze_count() or not gc.isenabled():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _build(root: str | os.PathLike, out: str | os.PathLike | None, baseline: str | None,
           plots: bool) -> Report:
    plot_mod = None
    if plots:   # matplotlib only for the plots (~0.3 s of CPU to import)
        from . import plots as plot_mod

    root = Path(root).absolute()
    target = (Path(out) if out else root / REPORT_DIR).absolute()
    check_out(target, root)
    c = collect(root)
    if c.runs.empty:
        raise ReportError(f"no runs below {root} (a run is a directory with a {layout.SUMMARY})")
    tuned = _tuned_record(c)
    if baseline is not None and tuned is None and (c.design or any(s != "basic" for s in c.sweepers)):
        raise ReportError(f"baseline {baseline!r}: these runs are "
                          + ("a sensitivity design" if c.design else "an optimiser's trials")
                          + ", ranked rather than compared with a baseline")
    c.series = _check_timeseries(c, [col for col, *_ in plot_mod.SERIES] if plot_mod else [])
    holder: dict = {}

    def write(tmp: Path) -> None:
        holder["out"] = _write(c, tmp, baseline, plots, plot_mod)
        layout.write_report_mark(tmp, root, __version__)

    layout.write_dir(target, write, replace=layout.is_report)
    files, terminal, cmp = holder["out"]
    return Report(path=target, collection=c, comparison=cmp, terminal=terminal, files=files)


def _check_timeseries(c: Collection, columns: list[str]) -> dict[str, dict]:
    """Every finished run's time series must be readable (the plots use them): one that is not
    is named with the problems, never skipped without a word.

    Returns what the plots draw, read in the same pass: step and the ``columns`` of each run's
    series that has them all, as {column: values} (of a damaged file, what can still be read)."""
    series = {}
    wanted = ["step", *columns]
    for run in c.runs.loc[c.runs["status"] == layout.OK, "run"]:
        path = c.root / run / layout.TIMESERIES
        try:
            frame = read_columns(path, wanted)
        except Exception as err:   # pyarrow raises its own types for damaged files
            why = "missing" if not path.exists() else f"unreadable ({type(err).__name__}: {err})"
            c.problems.append((str(Path(run) / layout.TIMESERIES), why.splitlines()[0]))
            if not columns:
                continue
            try:
                frame = pd.read_parquet(path, columns=wanted)
            except Exception:  # nothing of it to draw; it is named above
                continue
        if columns and list(frame.columns) == wanted:
            series[run] = {col: frame[col].array for col in wanted}
    return series


def _write_design(c: Collection, tmp: Path, plots: bool, plot_mod, md: list, lines: list,
                  files: list) -> None:
    """A sensitivity design: the parameters ranked by their effect on the objective."""
    from . import sensitivity

    ok = c.runs[c.runs["status"] == "ok"]
    if "study.point" not in ok.columns:
        raise ReportError("a sensitivity design without study.point in the runs' parameters")
    ranking = sensitivity.analyze(c.design, ok, c.objective, point="study.point")
    ranking.to_csv(tmp / "report.csv", index=False)
    head = list(ranking.columns)
    body = [[_cell(v) for v in row] for row in ranking.itertuples(index=False)]
    title = f"Parameters ranked by their effect on {c.objective} ({c.design.get('method')}; {len(ok)} runs)"
    md += ["", f"## {title}", "", md_table(head, body), "",
           "mu_star: mean absolute change of the KPI when the parameter moves across its range, with "
           "its 95% interval (Morris); sigma: how much that change depends on the other parameters "
           "(non-linearity, interactions). ST / S1: share of the KPI's variance due to the parameter "
           "with / without its interactions (Sobol)."]
    lines += ["", title, text_table(head, body)]
    if plots:
        files += plot_mod.sensitivity(ranking, tmp / "sensitivity.png", c.objective)
        md += ["", "![ranking](sensitivity.png)"]


def _write_search(c: Collection, tmp: Path, plots: bool, plot_mod, md: list, lines: list,
                  files: list) -> None:
    """An optimiser's trials, best first (its own record is optimization_results.yaml)."""
    ok = c.runs[c.runs["status"] == "ok"].copy()
    if ok.empty:
        raise ReportError("no finished trials")
    ok["trial"] = pd.to_numeric(ok["job"], errors="coerce")
    keys = [k for k in c.swept if k in ok.columns]
    kpis = [k for k in dict.fromkeys([c.objective, *VERDICT_KPIS]) if k in ok.columns]
    table = ok[["sweep", "trial", *kpis, *keys]].sort_values(c.objective, ascending=False)
    table.to_csv(tmp / "report.csv", index=False)
    head = ["trial", *(VERDICT_KPIS.get(k, k) for k in kpis), *keys]
    body = [[_cell(r["trial"] if not math.isnan(r["trial"]) else r["sweep"]),
             *(fmt_value(k, r[k]) for k in kpis), *(_cell(r[k]) for k in keys)]
            for _, r in table.iterrows()]
    title = f"{len(table)} trials ranked by {c.objective}"
    md += ["", f"## {title}", "", md_table(head, body), "",
           "Each trial is one run. Trials share their seed, so they differ only in the parameters; "
           "before adopting the best, compare it with the defaults on many seeds (a sweep and "
           "`crmsim report`) to see how sure the gain is."]
    lines += ["", title, text_table(head, body[:MAX_SHOWN])]
    if len(body) > MAX_SHOWN:
        lines.append(f"... {len(body) - MAX_SHOWN} more trials in report.md")
    if plots:
        files += plot_mod.search(ok.sort_values("trial"), tmp / "search.png", c.objective)
        md += ["", "![objective by trial](search.png)"]


def _write_comparison(c: Collection, tmp: Path, baseline: str | None, plots: bool, plot_mod,
                      md: list, lines: list, files: list) -> Comparison:
    """Variants against the baseline: the verdict, report.csv and the plots."""
    cmp = compare(c, baseline)
    table = cmp.table.copy()
    if not cmp.strata_keys:
        table = table.drop(columns="stratum")
    table.to_csv(tmp / "report.csv", index=False)
    v = verdict(cmp)
    head, body = _verdict_cells(cmp, v)
    pairing = " and ".join(cmp.replicates)
    title = (f"Verdict: {len(v)} variants; Δ = paired difference to {cmp.baseline_text} "
             f"(same {pairing}), with its 95% interval")
    md += ["", "## Verdict", "", md_table(head, body), "", "### How to read this", "", _how_to_read(cmp)]
    lines += ["", title, text_table(head, body[:MAX_SHOWN])]
    if len(body) > MAX_SHOWN:
        lines.append(f"... {len(body) - MAX_SHOWN} more variants in report.md")
    horizons = horizon_cells(cmp)
    if horizons is not None:
        h_head, h_body = horizons
        h_title = (f"When it pays back: Δ NPV total (profit so far + customer equity) to "
                   f"{cmp.baseline_text}, had the run ended after ...")
        md += ["", "## When it pays back", "", h_title, "", md_table(h_head, h_body)]
        lines += ["", h_title, text_table(h_head, h_body[:MAX_SHOWN])]
    if plots:
        made = plot_mod.timeseries(c.root, cmp, c.series, tmp / "timeseries.png", MAX_SHOWN)
        shown = {k: label for k, label in VERDICT_KPIS.items() if k in set(cmp.table["kpi"])}
        made += plot_mod.differences(cmp, tmp / "differences.png", shown, MAX_SHOWN)
        if len(cmp.variant_keys) == 2 or len(cmp.strata_keys) == 2:
            made += plot_mod.heatmap(cmp, tmp / "heatmap.png")
        files += made
        captions = {"timeseries.png": "KPIs over time: mean per variant, band = middle 80% of seeds",
                    "differences.png": "Paired differences to the baseline with 95% intervals",
                    "heatmap.png": (f"Mean {cmp.objective} over the two axes of the sweep"
                                    if len(cmp.variant_keys) == 2 else
                                    f"Paired difference of {cmp.objective} to {cmp.baseline_text} "
                                    "over the two other axes")}
        md += ["", "## Plots", ""] + [f"![{captions[f]}]({f})\n\n*{captions[f]}.*\n" for f in made]
    decomposition = lever_decomposition(c, cmp)
    if decomposition is not None:
        d_lines, d_note = decomposition
        md += ["", "## What carries each difference", "", *[f"- {x}" for x in d_lines], "", d_note]
        lines += ["", f"By lever (control-group estimates, {VERDICT_KPIS.get(cmp.objective, cmp.objective)}; "
                  "see report.md):", *[f"  {x}" for x in d_lines[:MAX_SHOWN]]]
    md += ["", "## All KPIs", "", "report.csv: every KPI of every variant (mean, 95% interval, "
           "paired difference to the baseline with its 95% interval, p-value); runs.parquet: "
           "one row per run with its parameters and KPIs."]
    for note in cmp.notes:
        md += ["", f"Note: {note}."]
        lines.append(f"note: {note}")
    return cmp


def _tuned_record(c: Collection) -> dict | None:
    """The record of a tuned comparison (``experiment=compare_tuned``) in the report's own
    directory, None when there is none; a damaged one is a ``ReportError``."""
    from .. import tune

    try:
        return tune.read_record(c.root)
    except ValueError as err:
        raise ReportError(str(err)) from None


def _write_tuned(c: Collection, record: dict, tmp: Path, baseline: str | None, plots: bool,
                 plot_mod, md: list, lines: list, files: list) -> Comparison:
    """A tuned comparison: the verdict on the held-out seeds only (hand-set and tuned values
    as two strata, each compared with the baseline), then what each framework ended with."""
    from .. import tune

    held = tune.heldout_runs(c.runs, record)
    sub = Collection(root=c.root, runs=held, params=["policy", "tuning"], kpis=c.kpis,
                     swept=["policy", "tuning"], replicates=["seed"],
                     baseline=f"policy={record['baseline']}",
                     objective=record.get("objective") or c.objective, series=c.series)
    sampler = record.get("sampler") or {}
    how = str(sampler.get("_target_", "?")).rsplit(".", 1)[-1] + f" with seed {sampler.get('seed')}"
    seeds = (f"Tuned with {record['n_trials']} Optuna trials per framework (the same sampler for "
             f"each: {how}) on the training seeds {record['train_seeds']}; judged on the "
             f"held-out seeds {record['test_seeds']} only")
    md += ["", "## Tuned comparison", "", seeds + ". The runs of the training seeds are below "
           "train/ and are not part of the verdict."]
    lines += ["", seeds]
    cmp = _write_comparison(sub, tmp, baseline, plots, plot_mod, md, lines, files)
    objective = record.get("objective") or c.objective
    head = ["framework", "parameter", "hand-set", "tuned"]
    body = []
    rows = tune.ended_with(record)
    for name, entry in record["policies"].items():
        train = entry.get("train") or {}
        if entry.get("trials"):
            body.append([name, f"{objective} on the training seeds (mean; {entry['trials']} trials)",
                         *("n/a" if train.get(k) is None else fmt_value(objective, train[k])
                           for k in ("hand_set", "tuned"))])
        elif not entry.get("hand_set"):
            body.append([name, "(nothing to tune)", "", ""])
        body += [[name, r["key"], _cell(r["hand_set"]),
                  "no trial completed" if r["tuned"] is None else _cell(r["tuned"])]
                 for r in rows if r["policy"] == name]
    title = "What each framework ended with: its hand-set and its tuned values"
    md += ["", f"## {title}", "", md_table(head, body)]
    lines += ["", title, text_table(head, body)]
    return cmp


DECOMPOSITION_NOTE = (
    "Each lever's share of a variant's difference to the baseline is its *net* gain from the "
    "control groups (levers.parquet): the discounted gross margin its treated arm earned beyond "
    "its control arm, from each person's first targeting to the run's end, less the lever's "
    "discounted spend; the variant's levers count with +, the baseline's with -, averaged over "
    "the paired seeds. *The rest* is the difference minus those: levers without a control group "
    "(media such as ads, firm-level training, termination), what the money spent on the levers "
    "would have earned elsewhere, word of mouth and imitation that spill over from the treated "
    "to others (a control group cannot see them), the customer equity left at the end beyond "
    "the margin already earned (npv_total counts it; the levers' gains do not), costs other "
    "than the goods (serving the customers a lever keeps), and the estimates' own error. The "
    "parts are estimates with intervals of their own (levers.parquet), not an exact accounting.")


def lever_decomposition(c: Collection, cmp: Comparison) -> tuple[list[str], str] | None:
    """``variant − baseline: lever +X, ..., the rest +W`` for each variant, from the runs'
    levers.parquet (``DECOMPOSITION_NOTE`` says what it means); None when no run has one."""
    levers, problems = collect_levers(c.root, cmp.runs["run"], ["lever", "control_group", "net"])
    if "net" not in levers.columns or levers.empty:
        # No run recorded its levers (runs saved before they were): nothing to decompose, and
        # only the damaged files are named, not every missing one.
        c.problems.extend((f, why) for f, why in problems if why != "missing")
        return None
    c.problems.extend(problems)
    # A table without its control_group column cannot say which levers were measured: named,
    # and its run left out of the decomposition.
    unknown = (levers["control_group"].isna() if "control_group" in levers.columns
               else pd.Series(True, index=levers.index))
    c.problems.extend((str(Path(run) / layout.LEVERS), "lacks the column control_group")
                      for run in levers.loc[unknown, "run"].unique())
    levers = levers[~unknown]
    if levers.empty:
        return None
    kpi = cmp.objective
    net = levers[levers["control_group"].astype(bool)].pivot_table(
        index="run", columns="lever", values="net", aggfunc="sum")
    runs = cmp.runs.set_index("run")[["stratum", "variant", "replicate"]]
    lines = []
    for (stratum, variant), g in cmp.table.groupby(["stratum", "variant"], sort=False):
        if variant == cmp.baseline:
            continue
        diff = g.set_index("kpi").loc[kpi, "diff"]
        mine = runs[(runs["stratum"] == stratum) & (runs["variant"] == variant)]
        base = runs[(runs["stratum"] == stratum) & (runs["variant"] == cmp.baseline)]
        pairs = mine.reset_index().merge(base.reset_index(), on="replicate", suffixes=("", "_base"))
        have = set(levers["run"])     # a run without a controlled lever has no row in ``net``
        pairs = pairs[pairs["run"].isin(have) & pairs["run_base"].isin(have)]
        if pairs.empty or math.isnan(diff):
            continue
        parts = (net.reindex(pairs["run"]).fillna(0.0).to_numpy()
                 - net.reindex(pairs["run_base"]).fillna(0.0).to_numpy()).mean(axis=0)
        shown = sorted(((lev, x) for lev, x in zip(net.columns, parts, strict=True) if x != 0),
                       key=lambda p: -abs(p[1]))
        rest = diff - sum(x for _, x in shown)
        name = f"{stratum}: " if cmp.strata_keys else ""
        lines.append(f"{name}{variant} − {cmp.baseline}: {fmt_diff(kpi, diff, math.nan, math.nan)} = "
                     + ", ".join(f"{lev} {fmt_diff(kpi, x, math.nan, math.nan)}" for lev, x in shown)
                     + (", " if shown else "") + f"the rest {fmt_diff(kpi, rest, math.nan, math.nan)}"
                     + f" ({len(pairs)} seeds)")
    return (lines, DECOMPOSITION_NOTE) if lines else None


# ---------------------------------------------------------------------------------------------
# How sure about the model: runs with parameters drawn from their prior ranges
# (study.uncertainty.draws; crmsim/uncertainty.py, crmsim/analysis/robust.py).

def _split_drawn(c: Collection) -> tuple[Collection | None, Collection | None]:
    """(runs under the assumed values, runs with drawn values); None for a part with no
    finished run. Runs that did not finish stay with the first part (they are listed there)."""
    from dataclasses import replace

    if not c.drawn:
        return c, None
    has = c.runs[c.drawn].notna().any(axis=1)
    if not (has & (c.runs["status"] == layout.OK)).any():
        return c, None
    assumed = c.runs[~has]
    drawn = replace(c, runs=c.runs[has])
    if not (assumed["status"] == layout.OK).any():
        return None, drawn
    return replace(c, runs=assumed), drawn


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.0f}%"


def _write_robust(c: Collection, assumed: Comparison | None, tmp: Path, baseline: str | None,
                  md: list, lines: list, files: list) -> None:
    """P(rank 1), expected regret, rank spread and what to measure next, per stratum."""
    from . import robust

    cmp = compare(c, baseline)
    n_params = len(c.drawn)
    label = VERDICT_KPIS.get(cmp.objective, cmp.objective)
    name = cmp.compare_keys[0] if len(cmp.compare_keys) == 1 else "variant"
    tables, vois = [], []
    md += ["", "## How sure: across the plausible ranges", ""]
    lines += [""]
    for stratum, sub in cmp.runs.groupby("stratum", sort=False):
        try:
            r = robust.analyze(sub, cmp.objective, c.drawn)
        except robust.DrawMismatch as err:
            raise ReportError(str(err)) from None
        where = f"{stratum}: " if stratum else ""
        t = r.table.copy()
        t.insert(0, "stratum", stratum)
        tables.append(t)
        v = r.voi.copy()
        v.insert(0, "stratum", stratum)
        vois.append(v)
        head = ([name, "P(rank 1) [95% CI]", f"expected regret ({label})",
                 "regret, 90th percentile", "rank: median [90% range]", f"mean {label}"])
        body = [[str(row.variant), f"{_pct(row.p_rank1)} [{_pct(row.p_rank1_low)}, {_pct(row.p_rank1_high)}]",
                 fmt_value(cmp.objective, row.regret_mean), fmt_value(cmp.objective, row.regret_p90),
                 f"{row.rank_median:g} [{row.rank_low:g}, {row.rank_high:g}]",
                 fmt_value(cmp.objective, row.mean)] for row in r.table.itertuples()]
        top = r.table.iloc[0]
        under = _assumed_sentence(assumed, stratum, cmp.objective)
        across = (f"**Across the plausible ranges** ({r.replicates} replicates, each with its own "
                  f"seed and its own draw of all {n_params} assumed numbers from their ranges): "
                  f"**{top['variant']}** ranks first in {_pct(top['p_rank1'])} of them "
                  f"[{_pct(top['p_rank1_low'])}, {_pct(top['p_rank1_high'])}]; the highest mean "
                  f"{label} is {r.best}'s, whose expected regret (what it loses on average against "
                  f"the best framework of each replicate) is {fmt_value(cmp.objective, r.evpi)}.")
        if r.dropped:
            across += f" {r.dropped} replicates without a run of every framework were left out."
        measure = _measure_sentence(r)
        md += ([f"### {stratum}", ""] if stratum else []) + [
            under, "", across, "", md_table(head, body), "", f"**{measure}**", ""]
        if len(r.voi):
            vh = ["parameter", f"EVPPI ({label})", "above noise floor",
                  f"Spearman ρ with {r.best} − {r.runner_up}", "favours, when high"]
            vb = [[row.parameter, fmt_value(cmp.objective, row.evppi), "yes" if row.above_floor else "no",
                   "n/a" if math.isnan(row.rho) else f"{row.rho:+.2f}", row.favoured_when_high or "—"]
                  for row in r.voi.head(10).itertuples()]
            md += [f"What to measure next: the ten parameters whose exact value would be worth "
                   f"most to the choice (EVPPI: expected value of partial perfect information, by "
                   f"regression on each parameter, Strong & Oakley 2014). The noise floor, "
                   f"{fmt_value(cmp.objective, r.voi['floor'].iloc[0])}, is the largest EVPPI that "
                   f"{len(r.voi)} parameters with no effect reach in 95% of shuffles of "
                   f"{r.replicates} replicates: with so many parameters, some look large by chance.",
                   "", md_table(vh, vb), ""]
        lines += [f"{where}under the assumed effects: " + _plain(under.split(":", 1)[1]),
                  f"{where}across the plausible ranges ({r.replicates} replicates, {n_params} "
                  "assumed numbers drawn):", text_table(head, body[:MAX_SHOWN]), f"{where}{measure}"]
    md += ["The replicates differ in luck (the seed) as well as in the assumptions; a framework "
           "that is best in most replicates is a choice that holds across the plausible ranges, "
           "one that is best only under the assumed values is a bet on them. robust.csv and "
           "voi.csv hold these tables; the ranges and their sources are in "
           "configs/uncertainty/default.yaml."]
    ranks, voi = layout.REPORT_ROBUST
    pd.concat(tables, ignore_index=True).to_csv(tmp / ranks, index=False)
    pd.concat(vois, ignore_index=True).to_csv(tmp / voi, index=False)
    files += [ranks, voi]


def _plain(text: str) -> str:
    return text.replace("**", "").strip()


def _assumed_sentence(assumed: Comparison | None, stratum: str, objective: str) -> str:
    label = VERDICT_KPIS.get(objective, objective)
    if assumed is None:
        return ("**Under the assumed effects**: these runs hold no run with the assumed values; "
                "sweep them too (e.g. crmsim run -m experiment=compare_policies) and report both "
                "sweeps' parent directory together to see both verdicts side by side.")
    rows = verdict(assumed)
    rows = rows[rows["stratum"] == stratum]
    if rows.empty:
        return "**Under the assumed effects**: no run of this stratum with the assumed values."
    best = rows.sort_values(objective, ascending=False).iloc[0]
    n = int(best["n"])
    word = best["verdict"]
    diff = fmt_diff(objective, best[f"{objective}_diff"], best[f"{objective}_low"],
                    best[f"{objective}_high"])
    link = "from" if word == "no clear difference" else "than"
    vs = ("" if best["variant"] == assumed.baseline else
          f" ({word} {link} {assumed.baseline_text}: Δ {diff})")
    return (f"**Under the assumed effects** (every assumed number at its value in the YAML, "
            f"{n} seeds): the highest mean {label} is **{best['variant']}**'s, "
            f"{fmt_value(objective, best[objective])}{vs}. That interval covers the seeds' luck "
            "only, not the assumptions.")


def _measure_sentence(r) -> str:
    from . import robust

    shown = r.measure()
    if shown:
        text = "Before trusting this verdict, measure " + ", ".join(shown)
        nearest = [p for p in r.voi["parameter"] if p not in shown][:robust.SHOWN - len(shown)]
        if nearest:
            text += (f"; next, though not clear of the noise of {r.replicates} replicates: "
                     + ", ".join(nearest))
        return text + "."
    if r.voi.empty:
        return ("Before trusting this verdict, measure: too few replicates to tell which "
                f"assumption matters (at least {robust.MIN_REPLICATES} with every framework; "
                "study.uncertainty.draws).")
    largest = ", ".join(r.voi["parameter"].head(3))
    return (f"Before trusting this verdict, measure: no parameter stands out from the noise of "
            f"{r.replicates} replicates yet (more draws, study.uncertainty.draws, would tell); "
            f"the largest values of information are those of {largest}.")


def _cell(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int | np.integer):
        return str(v)
    if isinstance(v, float | np.floating):
        return "n/a" if math.isnan(v) else f"{v:,.4g}"
    return str(v)


def _write(c: Collection, tmp: Path, baseline: str | None, plots: bool, plot_mod):
    files = ["runs.parquet", "report.csv", "report.md"]
    c.runs.to_parquet(tmp / "runs.parquet", index=False)
    md = [f"# crmsim report: {c.root}", "", _counts(c) + "."]
    lines = [f"{c.root}: {_counts(c)}"]
    cmp = None
    tuned = _tuned_record(c)
    if c.design:
        _write_design(c, tmp, plots, plot_mod, md, lines, files)
    elif tuned is not None:
        cmp = _write_tuned(c, tuned, tmp, baseline, plots, plot_mod, md, lines, files)
    elif any(s != "basic" for s in c.sweepers):
        _write_search(c, tmp, plots, plot_mod, md, lines, files)
    else:
        assumed, drawn = _split_drawn(c)
        if drawn is not None:
            md += ["", "Some runs draw every assumed number from its prior range "
                   "(study.uncertainty.draws). " + (
                       "The verdict below uses the runs with the assumed values; the others are "
                       "in *How sure: across the plausible ranges*." if assumed is not None else
                       "The verdict below averages over those draws; *How sure: across the "
                       "plausible ranges* ranks the frameworks draw by draw.")]
        cmp = _write_comparison(assumed or drawn, tmp, baseline, plots, plot_mod, md, lines, files)
        if drawn is not None:
            _write_robust(drawn, assumed and cmp, tmp, baseline, md, lines, files)
    bad = _not_finished(c)
    if len(bad):
        cells = [[str(x) for x in r] for r in bad.itertuples(index=False)]
        md += ["", "## Runs that did not finish", "", md_table(list(bad.columns), cells)]
        lines += ["", f"not finished ({len(bad)}; see report.md):"]
        lines += [f"  {r.status:<10} {r.run}: {r.error}" for r in bad.head(10).itertuples()]
        if len(bad) > 10:
            lines.append(f"  ... {len(bad) - 10} more")
    if c.problems:
        md += ["", "## Files that could not be read", "",
               md_table(["file", "problem"], [[f, why] for f, why in c.problems])]
        lines += ["", f"files that could not be read ({len(c.problems)}):"]
        lines += [f"  {f}: {why}" for f, why in c.problems]
    (tmp / "report.md").write_text("\n".join(md) + "\n")
    return files, "\n".join(lines), cmp
