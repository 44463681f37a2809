"""crmsim report on hand-made run directories: what is collected, flagged, compared and written."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crmsim import ConfigError
from crmsim.analysis import report
from crmsim.analysis.collect import collect
from crmsim.cli import main


def fake_run(path, params, kpis, status="ok", study=None, steps=5):
    """A run directory as a job writes it: summary.json and timeseries.parquet."""
    path.mkdir(parents=True)
    doc = {"status": status, "config_hash": "x", "params": params, "seed": params.get("seed"),
           "study": study or {"baseline": None, "replicates": ["seed"], "objective": "npv_profit"},
           "saved_at": "2026-01-01T00:00:00", "kpis": kpis if status == "ok" else {}}
    if status != "ok":
        doc["error"] = "ValueError: broke"
    (path / "summary.json").write_text(json.dumps(doc))
    step = np.arange(steps + 1)
    pd.DataFrame({"step": step, "n_active": 100 + step, "revenue": kpis.get("revenue_total", 0) / steps,
                  "profit_discounted": kpis.get("npv_profit", 0) / steps}).to_parquet(
        path / "timeseries.parquet")


def kpis_for(rng, shift):
    return {"npv_profit": 1000 + shift + rng.normal(0, 10), "retention_rate_annual": 0.8 + shift / 1e4,
            "revenue_total": 5000 + 2 * shift + rng.normal(0, 20), "n_people": 300}


def make_sweep(root, policies=("transactional", "idic"), seeds=range(5), shift=None, study=None):
    rng = np.random.default_rng(1)
    shift = shift or {"transactional": 0.0, "idic": 50.0}
    jobs = []
    for p in policies:
        for s in seeds:
            name = f"policy={p},seed={s}"
            jobs.append({"dir": name, "overrides": [f"policy={p}", f"seed={s}"]})
            fake_run(root / name, {"policy": p, "seed": s}, kpis_for(rng, shift[p]), study=study)
    (root / "sweep.json").write_text(json.dumps({"swept": ["policy", "seed"], "replicates": ["seed"],
                                                 "sweeper": "basic", "jobs": jobs}))
    return jobs


def test_failed_incomplete_and_missing_runs_are_flagged_and_never_compared(tmp_path):
    jobs = make_sweep(tmp_path)
    (tmp_path / "sweep.json").write_text(json.dumps({
        "swept": ["policy", "seed"], "replicates": ["seed"], "sweeper": "basic",
        "jobs": [*jobs, {"dir": "policy=idic,seed=9", "overrides": ["policy=idic", "seed=9"]}]}))
    fake_run(tmp_path / "policy=idic,seed=7", {"policy": "idic", "seed": 7}, {}, status="failed")
    # An interrupted save: a hidden directory whose contents must never be read as a run.
    fake_run(tmp_path / ".policy=idic,seed=8.ab12.incomplete", {"policy": "idic", "seed": 8},
             {"npv_profit": 1e12, "retention_rate_annual": 1.0, "revenue_total": 1e12, "n_people": 300})
    c = collect(tmp_path)
    status = c.runs.set_index("job")["status"]
    assert status["policy=idic,seed=7"] == "failed"
    assert status[".policy=idic,seed=8.ab12.incomplete"] == "incomplete"
    assert status["policy=idic,seed=9"] == "missing"
    assert (status == "ok").sum() == 10
    assert c.runs["npv_profit"].max() < 1e6
    rep = report.build(tmp_path)
    assert "1 failed" in rep.terminal and "1 incomplete" in rep.terminal and "1 missing" in rep.terminal
    idic = rep.comparison.table.query("variant == 'idic' and kpi == 'npv_profit'").iloc[0]
    assert idic["n"] == 5
    md = (rep.path / "report.md").read_text()
    assert "Runs that did not finish" in md and "ValueError: broke" in md


def test_verdict_numbers_are_paired_differences_with_t_intervals(tmp_path):
    make_sweep(tmp_path)
    rep = report.build(tmp_path, plots=False)
    runs = rep.collection.runs
    for kpi in ("npv_profit", "revenue_total"):
        a = runs[runs.policy == "transactional"].sort_values("seed")[kpi].to_numpy()
        b = runs[runs.policy == "idic"].sort_values("seed")[kpi].to_numpy()
        d = b - a
        half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
        row = rep.comparison.table.query(f"variant == 'idic' and kpi == '{kpi}'").iloc[0]
        assert (row["diff"], row["diff_low"], row["diff_high"]) == pytest.approx(
            (d.mean(), d.mean() - half, d.mean() + half), rel=1e-12)
    v = report.verdict(rep.comparison).set_index("variant")
    # idic is 50 better by construction, with noise sd ~14 per difference: the interval is above 0.
    assert v.loc["idic", "verdict"] == "better" and v.loc["transactional", "verdict"] == "baseline"
    table = pd.read_csv(rep.path / "report.csv")
    assert set(table["variant"]) == {"transactional", "idic"}


def test_baseline_in_a_two_axis_sweep_compares_within_each_market_and_draws_heatmaps(tmp_path):
    rng = np.random.default_rng(2)
    for share in (0.5, 0.8):
        for conc in (0.2, 1.0):
            for p, gain in (("transactional", 0), ("idic", 30), ("qci", -30)):
                for s in range(3):
                    params = {"market.spend.top20_share": share, "market.needs.concentration": conc,
                              "policy": p, "seed": s}
                    fake_run(tmp_path / f"{share}-{conc}-{p}-{s}", params, kpis_for(rng, gain * share))
    rep = report.build(tmp_path, baseline="policy=transactional")
    cmp = rep.comparison
    assert cmp.compare_keys == ["policy"]
    assert cmp.strata_keys == ["market.spend.top20_share", "market.needs.concentration"]
    assert cmp.table["stratum"].nunique() == 4
    assert (rep.path / "heatmap.png").stat().st_size > 0
    two_axes = tmp_path / "two"
    for share in (0.5, 0.8):
        for conc in (0.2, 1.0):
            for s in range(2):
                fake_run(two_axes / f"{share}-{conc}-{s}", {"market.spend.top20_share": share,
                                                          "market.needs.concentration": conc, "seed": s},
                         kpis_for(rng, 0))
    rep2 = report.build(two_axes, baseline="market.spend.top20_share=0.5,market.needs.concentration=0.2")
    assert rep2.comparison.strata_keys == [] and (rep2.path / "heatmap.png").exists()


def test_a_baseline_no_run_has_is_bad_input(tmp_path, capsys):
    make_sweep(tmp_path)
    with pytest.raises(report.ReportError, match="gartner"):
        report.build(tmp_path, baseline="policy=gartner")
    assert main(["report", str(tmp_path), "--baseline", "gartner"]) == 2
    assert "gartner" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report")]


def test_a_new_report_replaces_the_old_one_whole(tmp_path):
    make_sweep(tmp_path)
    first = report.build(tmp_path, plots=False)
    # A plot an earlier report made (with other runs, or with plots on): not in the new one.
    (first.path / "heatmap.png").write_bytes(b"from the first report")
    second = report.build(tmp_path, plots=False)
    assert second.path == first.path and not (second.path / "heatmap.png").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # A file that is not a report's (the user's notes) makes the directory the user's: refused.
    (second.path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="--out"):
        report.build(tmp_path, plots=False)
    assert (second.path / "notes.txt").read_text() == "mine"


def test_the_verdict_says_when_a_strategy_pays_back(tmp_path):
    """npv_total at the horizons a run reaches (1 and 3 years here) get their own paired
    differences; horizons past the run's end (null in summary.json) are left out."""
    rng = np.random.default_rng(3)
    jobs = []
    for p, late_gain in (("transactional", 0.0), ("idic", 80.0)):
        for s in range(5):
            name = f"policy={p},seed={s}"
            jobs.append({"dir": name, "overrides": [f"policy={p}", f"seed={s}"]})
            kpis = {**kpis_for(rng, 0.0), "npv_total": 2000 + late_gain + rng.normal(0, 10),
                    # idic costs money in the first year and pays back by the third
                    "npv_total_1y": 500 - late_gain / 2 + rng.normal(0, 10),
                    "npv_total_3y": 2000 + late_gain + rng.normal(0, 10),
                    "npv_total_5y": None, "npv_total_10y": None}
            fake_run(tmp_path / name, {"policy": p, "seed": s}, kpis,
                     study={"baseline": "transactional", "replicates": ["seed"],
                            "objective": "npv_total"})
    (tmp_path / "sweep.json").write_text(json.dumps({"swept": ["policy", "seed"], "replicates": ["seed"],
                                                     "sweeper": "basic", "jobs": jobs}))
    rep = report.build(tmp_path, plots=False)
    head, body = report.horizon_cells(rep.comparison)
    assert head == ["policy", "1 year", "3 years"]
    idic = dict(zip(head, next(row for row in body if row[0] == "idic"), strict=True))
    assert idic["1 year"].startswith("-") and idic["3 years"].startswith("+")
    assert "When it pays back" in rep.terminal
    assert "## When it pays back" in (rep.path / "report.md").read_text()
    v = report.verdict(rep.comparison).set_index("variant")
    assert rep.comparison.objective == "npv_total" and v.loc["idic", "verdict"] == "better"


def write_levers(root, seeds=range(5)):
    """levers.parquet for the runs of ``make_sweep``: a lever without a control group in every
    run, and idic's customization with its control group, net 30 + seed."""
    from crmsim.levers import COLUMNS

    for p, s in [(p, s) for p in ("transactional", "idic") for s in seeds]:
        rows = [{"lever": "ads", "control_group": False, "net": math.nan}]
        if p == "idic":
            rows.append({"lever": "customization", "control_group": True, "net": 30.0 + s})
        frame = pd.DataFrame([{**dict.fromkeys(COLUMNS, 0.0), "category": "", **r} for r in rows])
        frame.to_parquet(root / f"policy={p},seed={s}" / "levers.parquet")


def test_the_verdict_is_decomposed_by_lever_from_the_runs_levers_tables(tmp_path):
    """Each variant's difference is split into its levers' net gains (the variant's minus the
    baseline's, paired by seed) and the rest; levers without a control group go to the rest."""
    make_sweep(tmp_path)
    write_levers(tmp_path)
    rep = report.build(tmp_path, plots=False)
    d = report.verdict(rep.comparison).set_index("variant").loc["idic", "npv_profit_diff"]
    lines, _ = report.lever_decomposition(rep.collection, rep.comparison)
    assert lines == [f"idic − transactional: {d:+,.2f} = customization +32.00, "
                     f"the rest {d - 32:+,.2f} (5 seeds)"]
    assert lines[0] in rep.terminal
    assert "## What carries each difference" in (rep.path / "report.md").read_text()


def test_lever_tables_without_control_group_are_named_and_left_out_of_the_decomposition(tmp_path):
    """A levers table without its control_group column cannot say which levers were measured:
    the report names it and decomposes the others; with none left, it has no decomposition."""
    make_sweep(tmp_path)
    write_levers(tmp_path)
    stripped = [f"policy={p},seed=4" for p in ("transactional", "idic")]
    for run in stripped:
        path = tmp_path / run / "levers.parquet"
        pd.read_parquet(path).drop(columns="control_group").to_parquet(path)
    rep = report.build(tmp_path, plots=False)
    assert sorted(rep.collection.problems) == [
        (f"{run}/levers.parquet", "lacks the column control_group") for run in sorted(stripped)]
    lines, _ = report.lever_decomposition(report.collect(tmp_path), rep.comparison)
    d = report.verdict(rep.comparison).set_index("variant").loc["idic", "npv_profit_diff"]
    # seeds 0-3 are left: customization's mean net 30 + 1.5
    assert lines == [f"idic − transactional: {d:+,.2f} = customization +31.50, "
                     f"the rest {d - 31.5:+,.2f} (4 seeds)"]

    for s in range(5):
        for p in ("transactional", "idic"):
            path = tmp_path / f"policy={p},seed={s}" / "levers.parquet"
            pd.read_parquet(path).drop(columns="control_group", errors="ignore").to_parquet(path)
    rep = report.build(tmp_path, plots=False)
    assert len(rep.collection.problems) == 10
    assert report.lever_decomposition(report.collect(tmp_path), rep.comparison) is None
    assert "What carries each difference" not in rep.terminal


def test_unreadable_lever_tables_are_named_even_when_none_can_be_read(tmp_path):
    make_sweep(tmp_path)
    write_levers(tmp_path, seeds=[0])
    for p in ("transactional", "idic"):
        (tmp_path / f"policy={p},seed=0" / "levers.parquet").write_bytes(b"not parquet")
    rep = report.build(tmp_path, plots=False)
    assert sorted(f for f, why in rep.collection.problems if why.startswith("unreadable")) == [
        f"policy={p},seed=0/levers.parquet" for p in ("idic", "transactional")]
    # the runs saved without a levers table are not listed as missing when none has one
    assert all(why.startswith("unreadable") for _, why in rep.collection.problems)


def test_lever_tables_of_other_types_are_collected_as_pandas_reads_them(tmp_path):
    """The levers tables are joined before they go to pandas; a table whose lever column is
    categorical, or that lacks a column, comes out as pandas' own concatenation has it."""
    from crmsim.analysis.collect import collect_levers

    make_sweep(tmp_path)
    write_levers(tmp_path)
    odd = tmp_path / "policy=idic,seed=2" / "levers.parquet"
    frame = pd.read_parquet(odd)
    frame.astype({"lever": "category"}).to_parquet(odd)
    lacking = tmp_path / "policy=transactional,seed=3" / "levers.parquet"
    pd.read_parquet(lacking).drop(columns="net").to_parquet(lacking)
    columns = ["lever", "control_group", "net"]
    runs = collect(tmp_path).runs["run"]
    got, problems = collect_levers(tmp_path, runs, columns)
    want = pd.concat([pd.read_parquet(tmp_path / r / "levers.parquet").reindex(columns=columns)
                      .assign(run=r) for r in runs], ignore_index=True)
    pd.testing.assert_frame_equal(got, want[["run", *columns]], check_exact=True)
    assert problems == []
    rep = report.build(tmp_path, plots=False)
    assert "customization +32.00" in rep.terminal


def test_a_time_series_pandas_cannot_read_is_named_and_left_out_of_the_plot(tmp_path):
    """The check reads each time series once with pyarrow, for the plots too; a file whose
    pandas schema is damaged (pyarrow alone reads it) is named, as pandas would name it."""
    import pyarrow.parquet as pq

    make_sweep(tmp_path)
    path = tmp_path / "policy=idic,seed=1" / "timeseries.parquet"
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({b"pandas": b"{not json"}), path)
    rep = report.build(tmp_path)
    assert [(f, why.split(":")[0]) for f, why in rep.collection.problems] == [
        ("policy=idic,seed=1/timeseries.parquet", "unreadable (JSONDecodeError")]
    assert sorted(rep.collection.series) == sorted(
        f"policy={p},seed={s}" for p in ("transactional", "idic") for s in range(5) if (p, s) != ("idic", 1))
    assert "timeseries.png" in rep.files


@pytest.mark.parametrize("days", ["30.0", "14", "${sim.steps}", "'7'", "true", "3e1", "[1]",
                                  "30.0\n  period_days: 14", "30.0\nsim: {steps: 2}", "(broken"])
def test_the_plots_read_the_step_length_as_omegaconf_reads_the_saved_config(tmp_path, days):
    """libyaml reads a saved config's step length; anything but a plain number, and a file
    OmegaConf refuses (a key twice), reads as OmegaConf reads it."""
    from omegaconf import OmegaConf

    from crmsim.analysis import plots

    (tmp_path / "run").mkdir()
    config = tmp_path / "run" / "config.yaml"
    config.write_text("sim:\n  steps: 52\n  period_days: " + days + "\n")
    try:
        want = float(OmegaConf.load(config).sim.period_days)
    except Exception:
        want = plots.WEEK
    assert plots._period_days(tmp_path, "run") == want
