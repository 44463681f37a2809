"""The on-disk layout, defined once (crmsim.layout); import direction: tests/test_structure.py."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

import crmsim
from crmsim import layout

PACKAGE = Path(crmsim.__file__).parent


NAMES = {layout.SUMMARY, layout.MANIFEST, layout.TIMESERIES, layout.CUSTOMERS, layout.EVENTS,
         layout.CONFIG, layout.REPORT_MARK, layout.INCOMPLETE_SUFFIX}


@pytest.mark.parametrize("module", ["result", "sweep", "cli", "analysis/collect.py",
                                    "analysis/report.py"])
def test_file_names_of_the_layout_are_written_only_in_layout(module):
    path = PACKAGE / (module if module.endswith(".py") else f"{module}.py")
    tree = ast.parse(path.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    literals = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
                and isinstance(n.value, str) and id(n) not in docstrings]
    assert [s for s in literals if s in NAMES] == []


def test_non_finite_kpis_are_written_as_null_and_named(tmp_path):
    result = crmsim.simulate(crmsim.load_config(["market.n_people=200", "sim.steps=2"]))
    result.summary.update(npv_profit=math.inf, clv_realised_mean=math.nan)
    target = result.save(tmp_path / "run")

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    doc = json.loads((target / layout.SUMMARY).read_text(), parse_constant=refuse)
    assert doc["kpis"]["npv_profit"] is None and doc["kpis"]["clv_realised_mean"] is None
    assert doc["not_finite"] == ["kpis.npv_profit=inf", "kpis.clv_realised_mean=nan"]
    assert doc["kpis"]["revenue_total"] == result.summary["revenue_total"]


def test_a_failed_replace_puts_the_previous_directory_back(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "old.txt").write_text("previous")

    def write(tmp: Path) -> None:
        (tmp / "new.txt").write_text("new")

    with pytest.raises(FileExistsError):              # not replaceable: refused, untouched
        layout.write_dir(target, write)
    real = layout.os.rename
    calls = []

    def rename(src, dst):                             # fail the rename that brings the new one in
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    layout.os.rename = rename
    try:
        with pytest.raises(layout.SaveError, match="could not save .*run: No space left"):
            layout.write_dir(target, write, replace=True)
    finally:
        layout.os.rename = real
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (target / "old.txt").read_text() == "previous"


def test_reserve_never_hands_out_a_name_twice(tmp_path):
    first = layout.reserve(tmp_path, "2026-01-01_00-00-00_000000")
    second = layout.reserve(tmp_path, "2026-01-01_00-00-00_000000")
    assert first != second and first.is_dir() and second.is_dir()
    assert second.name == "2026-01-01_00-00-00_000000-2"


def test_is_report_only_for_a_report_and_nothing_else(tmp_path):
    report = tmp_path / "r"
    report.mkdir()
    for name in layout.REPORT_FILES:
        (report / name).write_text("# crmsim report: x\n" if name == "report.md" else "")
    assert layout.is_report(report)                    # from before the mark: by its files
    (report / "report.md").write_text("# my notes\n")
    assert not layout.is_report(report)
    layout.write_report_mark(report, tmp_path, "0")
    assert layout.is_report(report)
    (report / "summary.json").write_text("{}")          # a run is never a report
    assert not layout.is_report(report)
    assert not layout.is_report(tmp_path / "missing")
    assert not layout.is_report(tmp_path)


def test_tables_become_arrow_as_pandas_makes_them(tmp_path):
    """``layout.to_arrow`` (a schema kept per kind of table, columns converted one by one)
    gives exactly ``pyarrow.Table.from_pandas``: values, nulls, types and pandas' metadata, on
    the first table of a kind and the next; tables it cannot convert so take pandas' route."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    result = crmsim.simulate(crmsim.load_config(["market.n_people=300", "sim.steps=6",
                                                 "sim.record_events=true"]))
    tables = [result.timeseries, result.customers, result.levers, result.events,
              pd.DataFrame({"x": [1.0, np.nan], "n": pd.array([1, None], dtype="Int64"),
                            "s": pd.array(["a", None], dtype="string"),
                            "o": pd.Series(["a", None], dtype=object)}),
              pd.DataFrame({"x": [0.5, np.nan], "b": [True, False]}, index=[3, 4])]
    for i, table in enumerate(tables):
        for _ in range(2):
            made = layout.to_arrow(table)
            expected = pa.Table.from_pandas(table, preserve_index=False)
            assert made.equals(expected) and made.schema.equals(expected.schema, check_metadata=True)
        if i < 4:   # a run's tables read back as they were
            layout.write_parquet(table, tmp_path / f"{i}.parquet")
            pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"{i}.parquet"), table)
