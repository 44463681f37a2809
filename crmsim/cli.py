"""The ``crmsim`` command.

    crmsim run [OVERRIDES...]     one simulation; writes results/runs/<date-time>/
    crmsim run -m [OVERRIDES...]  a sweep through Hydra's multirun (e.g. seed=range(0,10),
                                  experiment=compare_policies); results/<study>/<date-time>/<job>/
    crmsim run --help             the config groups, their options and the canonical keys
    crmsim report DIR             collect the runs below DIR; verdict table, report files, plots
    crmsim calibrate DATA         fit the market to a cohort table or a transaction log

Overrides are Hydra's: ``key=value`` for a value, ``group=option`` for a config group.
Bad input stops before anything runs, with one paragraph naming the key, the value and what is
allowed, and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from . import overrides as ov
from .errors import ConfigError
from .layout import SUMMARY
from .overrides import check_literal_path

EXIT_FAILED = 1          # a run or a sweep that did not finish (saving failed, jobs failed)
EXIT_BAD_INPUT = 2       # nothing was run or written
EXIT_INTERRUPTED = 130   # Ctrl-C: 128 + SIGINT, as shells report it

CANONICAL_KEYS = """\
  seed                                   one seed drives every random stream
  sim.steps, sim.period_days             how many steps, of how many days (7)
  sim.discount_rate                      annual, for discounted profit and CLV
  sim.record_events                      write a per-person event log (events.parquet)
  market.n_people                        population size
  market.initial_customer_share          share of people who are customers at step 0
  market.spend.mean, .top20_share        mean spend per customer-year; 80/20 concentration
  market.needs.dims, .concentration      needs simplex and its Dirichlet concentration
  market.churn.alpha, .beta              Beta distribution of annual base churn
  network.kind, .mean_degree, .path      the word-of-mouth network
  wom.tell_positive, wom.tell_negative   people told after a good / bad experience (8 / 21)
  wom.viral_prob                         chance a bad experience goes viral
  adoption.innovation, .imitation        Bass p and q, per year
  firm.crm_budget, .quality, .margin     CRM budget per year (equal across policies), ...
  policy=<name>, policy.tactics.<t>.enabled, policy.termination.rules/method"""


def results_root() -> Path:
    """Where runs land: ``$CRMSIM_RESULTS`` (unset or empty: ``./results``)."""
    return Path(os.environ.get("CRMSIM_RESULTS") or "results")


def _groups_help() -> str:
    from .api import config_groups, group_options

    lines = ["config groups (choose with group=option):"]
    for group in config_groups():
        lines.append(f"  {group:<12} {', '.join(group_options(group))}")
    return "\n".join(lines)


def _paragraph(text: str) -> str:
    # Paths and keys stay whole so they can be copied from the message.
    return textwrap.fill(text, width=100, subsequent_indent="  ", break_on_hyphens=False,
                         break_long_words=False)


def _fail(err: Exception) -> int:
    print(_paragraph(f"crmsim: error: {err}"), file=sys.stderr)
    return EXIT_BAD_INPUT


def _check_writable(root: Path, key: str = "CRMSIM_RESULTS") -> None:
    from .layout import unwritable

    check_literal_path(key, str(root))
    if unwritable(root) is not None:
        raise ConfigError(key, str(root), "a directory crmsim can create and write to")


def _results_root(args: argparse.Namespace) -> Path:
    root = Path(args.out) if args.out else results_root()
    _check_writable(root, "--out" if args.out else "CRMSIM_RESULTS")
    return root


def format_summary(summary: dict) -> str:
    rows = [(k, v) for k, v in summary.items()]
    width = max(len(k) for k, _ in rows)
    out = []
    for k, v in rows:
        shown = f"{v:,.4g}" if isinstance(v, float) and abs(v) < 10 else (
            f"{v:,.0f}" if isinstance(v, float) else f"{v:,}")
        out.append(f"  {k:<{width}}  {shown:>16}")
    return "\n".join(out)


def _calibrated_market(args: argparse.Namespace) -> None:
    """``--market FILE``: the calibrated keys as overrides, before the user's own."""
    if getattr(args, "market", None):
        from .calibrate import overrides_of

        args.overrides = [*overrides_of(args.market), *args.overrides]


def cmd_run(args: argparse.Namespace) -> int:
    try:
        _calibrated_market(args)
    except ConfigError as err:
        return _fail(err)
    if args.multirun or args.resume:
        return cmd_sweep(args)
    from omegaconf import OmegaConf

    from . import layout, sweep, uncertainty
    from .api import load_config, simulate

    try:
        overrides = ov.resolve_paths(args.overrides)
        sweep.check_plugins(overrides)
        cfg = load_config(overrides)
        if uncertainty.settings(cfg) is not None:   # what the command line sets is not drawn
            keep = uncertainty.held(uncertainty.settings(cfg)["priors"], [ov.key_of(o) for o in overrides])
            cfg.study.uncertainty.fixed = sorted({*cfg.study.uncertainty.fixed, *keep})
        cfg = sweep.prepare(cfg)
        choices = {g: sweep.choice(overrides, g) for g in ("experiment", "hparams_search")}
        study = sweep.study_name(cfg, choices)
        root = _results_root(args)
    except ConfigError as err:
        return _fail(err)
    result = simulate(cfg, progress=not args.quiet)
    result.meta.update(params=ov.params_of(overrides), seed=cfg.seed,
                       study=OmegaConf.to_container(cfg.study, resolve=True))
    drawn = uncertainty.drawn(cfg)
    if drawn:
        result.meta["drawn"] = drawn
    try:
        target = layout.reserve(root / study, layout.stamp())
        try:
            result.save(target)
        except BaseException:
            layout.release(target)
            raise
    except OSError as err:   # layout.SaveError: the directory and the reason
        print(_paragraph(f"crmsim: error: the run finished but {err}. Its results are lost: "
                         "run it again once the problem is fixed."), file=sys.stderr)
        return EXIT_FAILED
    s = result.summary
    print(f"crmsim: {s['n_people']:,} people, {s['steps']} steps, policy={cfg.policy.name}, "
          f"seed={cfg.seed}")
    print(format_summary(s))
    print(f"results: {target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crmsim",
        description="Simulate customer relationships and compare CRM strategies.",
        epilog="Run `crmsim run --help` for the config groups and keys.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run", help="run one simulation, or a sweep with -m, and save the results",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run one simulation of the composed config and save it under "
                    "$CRMSIM_RESULTS/runs/<date-time>/ (default ./results), or with -m a sweep "
                    "into $CRMSIM_RESULTS/<study>/<date-time>/<job>/, then its report.",
        epilog=_groups_help() + "\n\ncanonical keys (override with key=value):\n"
               + CANONICAL_KEYS + "\n\nexample:\n  crmsim run market.n_people=100000 "
               "sim.steps=52 network=scale_free",
    )
    run.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                     help="Hydra overrides: key=value or group=option")
    run.add_argument("--out", metavar="DIR", help="results root (default $CRMSIM_RESULTS or ./results)")
    run.add_argument("--market", metavar="FILE",
                     help="a market.yaml written by crmsim calibrate: its keys come first, so "
                          "overrides on the command line still win")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.add_argument("-m", "--multirun", action="store_true",
                     help="sweep: every combination of the swept values (key=a,b, key=range(0,10), "
                          "an experiment's hydra.sweeper.params), one job each, run by the "
                          "launcher (launcher=local|submitit_local|submitit_slurm|ray)")
    run.add_argument("--resume", metavar="DIR",
                     help="finish the sweep in DIR with its own overrides: jobs whose summary "
                          "says ok for the same config are skipped, failed and missing ones run "
                          "again (implies -m; only launcher=... and hydra.launcher.*=... may be "
                          "given, to change where the jobs run)")
    run.add_argument("--no-report", action="store_true",
                     help="after a sweep, skip the report (write it later with crmsim report DIR)")
    run.set_defaults(func=cmd_run)
    add_report_command(sub)
    add_viz_command(sub)
    add_calibrate_command(sub)
    return parser


def cmd_calibrate(args: argparse.Namespace) -> int:
    import time

    from . import calibrate

    t0 = time.perf_counter()
    try:
        out = calibrate.core.check_out(args.out) if args.out else None
        if args.trials < 1 or args.seeds < 1 or args.bands < 0:
            bad = ("--trials", args.trials) if args.trials < 1 else (
                ("--seeds", args.seeds) if args.seeds < 1 else ("--bands", args.bands))
            raise ConfigError(bad[0], bad[1], "a whole number >= 1 (--bands >= 0)")
        if args.workers is not None and args.workers < 1:
            raise ConfigError("--workers", args.workers, "a whole number >= 1 (1: no worker "
                              "processes), or leave it out for one per core")
        if out is None:
            root = results_root()
            _check_writable(root)
        cal = calibrate.calibrate(args.data, period=args.period, setting=args.setting,
                                  overrides=ov.resolve_paths(args.overrides), stage_b=args.stage_b,
                                  trials=args.trials, seeds=args.seeds, bands=args.bands,
                                  posterior=args.posterior, simulations=args.simulations,
                                  workers=args.workers)
    except ConfigError as err:
        return _fail(err)
    from . import layout

    try:
        if out is None:
            out = layout.reserve(root / layout.CALIBRATE_DIR, layout.stamp())
        calibrate.write(cal, out)
    except ConfigError as err:
        return _fail(err)
    except OSError as err:
        print(_paragraph(f"crmsim: error: {err}"), file=sys.stderr)
        return EXIT_FAILED
    for key, e in cal.estimates.items():
        print(f"  {key:<28} {e.value:>12.4g}   95% [{e.low:.4g}, {e.high:.4g}]")
    for note in cal.stage_a.notes:
        print(_paragraph(f"crmsim: note: {note}"))
    print(f"crmsim: calibrated in {time.perf_counter() - t0:.1f} s; results: {out}")
    print(f"crmsim: use it with: crmsim run --market {out / layout.CALIBRATED_MARKET}")
    return 0


def add_calibrate_command(sub) -> None:
    cal = sub.add_parser(
        "calibrate", help="fit the market to a cohort table or a transaction log",
        description="Fit the market to a firm's own data (docs/calibrate.md): a cohort table "
                    "(columns cohort, period, active) or a transaction log (customer_id, date, "
                    "amount, optional event), CSV or parquet. Stage A (seconds): sBG on cohorts, "
                    "BG/NBD and Gamma-Gamma on a retail log, spend and Bass from a log. Stage B "
                    "(--stage-b, minutes): simulated method of moments of the full model with "
                    "Optuna. Writes market.yaml, calibration.json and report.md into --out.",
    )
    cal.add_argument("data", metavar="DATA", help="a cohort table or a transaction log (.csv, .parquet)")
    cal.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                     help="Hydra overrides describing the rest of the firm for the simulations "
                          "(policy=..., market.n_people=...)")
    cal.add_argument("--period", default="month", help="the length of a period of the data: "
                     "year, month (365/12 days), week, day, or a number of days (default month)")
    cal.add_argument("--setting", help="contractual or noncontractual (default: contractual for "
                     "a cohort table, noncontractual for a log)")
    cal.add_argument("--out", metavar="DIR", help="a new or empty directory (default "
                     "$CRMSIM_RESULTS/calibrate/<date-time>/)")
    cal.add_argument("--stage-b", action="store_true", help="also fit by simulation (minutes)")
    cal.add_argument("--trials", type=int, default=30, help="stage B candidates (default 30)")
    cal.add_argument("--seeds", type=int, default=2, help="stage B seeds per candidate, the same "
                     "for every candidate (default 2)")
    cal.add_argument("--bands", type=int, default=0, help="seeds of the calibrated market "
                     "simulated for the report's observed-vs-simulated band (default 0: none)")
    cal.add_argument("--posterior", metavar="sbi", help="with --stage-b: a posterior by "
                     "simulation-based inference (neural posterior estimation with the sbi "
                     'package) instead of the Optuna search; needs pip install "crmsim[calibrate-sbi]"')
    cal.add_argument("--simulations", type=int, default=100, help="with --posterior sbi: draws "
                     "of the prior simulated, each on --seeds seeds (default 100)")
    cal.add_argument("--workers", type=int, metavar="N", help="worker processes that run stage "
                     "B's and the bands' simulations side by side (default: one per core; 1: "
                     "all in this process); the results do not depend on it")
    cal.set_defaults(func=cmd_calibrate)


def cmd_viz(args: argparse.Namespace) -> int:
    from .viz.server import serve

    try:
        return serve(args.overrides, host=args.host, port=args.port, open_browser=args.browser)
    except ConfigError as err:
        return _fail(err)


def add_viz_command(sub) -> None:
    viz = sub.add_parser(
        "viz", help="serve the interactive dashboard on localhost",
        description="Serve the dashboard of the composed config (a Solara page): controls for "
                    "the key parameters and the policy, the word-of-mouth network, live charts; "
                    "step, play and reset. The market has 300 people unless market.n_people is "
                    "given. Stop with Ctrl-C.",
    )
    viz.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                     help="Hydra overrides: key=value or group=option")
    viz.add_argument("--host", default="localhost", help="interface to listen on (default localhost)")
    viz.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    viz.add_argument("--no-browser", dest="browser", action="store_false",
                     help="do not open a browser window")
    viz.set_defaults(func=cmd_viz)


def cmd_sweep(args: argparse.Namespace) -> int:
    from . import sweep

    try:
        root = _results_root(args)
        plan = sweep.plan(args.overrides, root, resume=Path(args.resume) if args.resume else None)
    except ConfigError as err:
        return _fail(err)
    if "launcher" in plan.swept:
        print(f"crmsim: warning: launcher is swept, but Hydra picks one launcher per command: every "
              f"job runs with {plan.launcher}", file=sys.stderr)
    if not args.quiet:
        what = f"{plan.expected} jobs" if plan.expected is not None else "jobs"
        print(f"crmsim: sweep of {what} ({plan.sweeper} sweeper, {plan.launcher}) into {plan.sweep_dir}")
        if plan.jobs is not None and plan.to_run < len(plan.jobs):
            print(f"crmsim: resuming: {len(plan.jobs) - plan.to_run} jobs already done, "
                  f"{plan.to_run} to run")
    try:
        code = sweep.launch(plan, quiet=args.quiet)
    except KeyboardInterrupt:
        print(f"crmsim: interrupted; finished jobs are saved, the rest run with: crmsim run -m "
              f"--resume {plan.sweep_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as err:     # the sweep's own directory or plan could not be written
        print(_paragraph(f"crmsim: error: {err}"), file=sys.stderr)
        return EXIT_FAILED
    out = sweep.outcome(plan)
    print(f"crmsim: {len(out.ok)} jobs ok, {len(out.failed)} failed, {len(out.missing)} missing "
          f"in {plan.sweep_dir}")
    _print_best(plan.sweep_dir)
    if out.ok and not args.no_report:
        _report_after_sweep(plan.sweep_dir)
    for name, error in out.failed:
        print(f"  failed   {name}: {error} (see {plan.sweep_dir / name / SUMMARY})", file=sys.stderr)
    for name in out.missing:
        print(f"  missing  {name}: no {SUMMARY}; rerun with --resume {plan.sweep_dir}", file=sys.stderr)
    if out.failed or out.missing or code:
        print(f"crmsim: {len(out.failed) + len(out.missing)} of the sweep's jobs did not finish; "
              f"rerun them with: crmsim run -m --resume {plan.sweep_dir}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _print_best(sweep_dir: Path) -> None:
    """An optimiser's best trial (Hydra's Optuna sweeper writes optimization_results.yaml)."""
    path = sweep_dir / "optimization_results.yaml"
    if path.exists():
        from omegaconf import OmegaConf

        best = OmegaConf.load(path)
        if "best_value" in best:
            params = " ".join(f"{k}={v}" for k, v in best.best_params.items())
            print(f"crmsim: best trial: {best.best_value:,.6g} with {params}")


def _report_after_sweep(sweep_dir: Path) -> None:
    from .analysis import report

    try:
        rep = report.build(sweep_dir)
    except (report.ReportError, ValueError, OSError) as err:   # the runs are saved regardless
        print(_paragraph(f"crmsim: no report: {err}"), file=sys.stderr)
        return
    print(rep.terminal)
    print(f"report: {rep.path / 'report.md'}")
    _warn_problems(rep.collection)


def cmd_report(args: argparse.Namespace) -> int:
    from .analysis import report

    root = Path(args.dir)
    if not root.is_dir():
        return _fail(ConfigError("DIR", args.dir, "a directory holding runs (e.g. results/ or a sweep's "
                                 "directory)"))
    try:
        rep = report.build(root, out=args.out, baseline=args.baseline, plots=not args.no_plots)
    except ConfigError as err:
        return _fail(err)
    except report.ReportError as err:
        return _fail(ConfigError("--baseline" if args.baseline else "DIR", args.baseline or args.dir,
                                 "runs that can be compared", str(err)))
    except OSError as err:     # layout.SaveError: the report could not be written
        print(_paragraph(f"crmsim: error: {err}"), file=sys.stderr)
        return EXIT_FAILED
    print(rep.terminal)
    print(f"report: {rep.path / 'report.md'}")
    _warn_problems(rep.collection)
    return 0


def _warn_problems(collection) -> None:
    if collection.problems:
        print(f"crmsim: warning: {len(collection.problems)} files below {collection.root} could "
              f"not be read (listed above and in the report): "
              + "; ".join(f"{f}: {why}" for f, why in collection.problems[:10])
              + (f"; ... {len(collection.problems) - 10} more" if len(collection.problems) > 10
                 else ""), file=sys.stderr)


def add_report_command(sub) -> None:
    rep = sub.add_parser(
        "report", help="collect the runs below DIR and compare them with a baseline",
        description="Collect every run below DIR (failed and unfinished runs included, flagged), "
                    "compare the variants with the baseline seed by seed (paired differences, "
                    "95%% intervals), print the verdict table and write DIR/report/: runs.parquet, "
                    "report.csv, report.md and PNG plots.",
    )
    rep.add_argument("dir", metavar="DIR", help="a sweep's directory, or any directory of runs")
    rep.add_argument("--baseline", metavar="VARIANT",
                     help="the variant to compare with, e.g. transactional or policy=transactional "
                          "(default: the study's study.baseline, else policy=transactional, else "
                          "the first variant)")
    rep.add_argument("--out", metavar="DIR",
                     help="where to write the report (default DIR/report): a new directory, or "
                          "a report crmsim wrote, which is replaced; anything else is refused")
    rep.add_argument("--no-plots", action="store_true", help="tables only")
    rep.set_defaults(func=cmd_report)


def _version() -> str:
    from ._version import __version__

    return f"crmsim {__version__}"


# Commands whose overrides may stand anywhere among the options: argparse alone takes the
# positionals of one run of words only (`DATA a=1 --out DIR b=2` would leave b=2 unrecognised).
MIXED_OVERRIDES = ("calibrate",)


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parse_args``, with the overrides of ``MIXED_OVERRIDES`` commands gathered wherever
    they stand (in their order); anything else unrecognised is refused as before."""
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "command", None) in MIXED_OVERRIDES \
            and not any(e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error("unrecognized arguments: " + " ".join(extra))
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return args.func(args)
    except KeyboardInterrupt:
        # Whatever was being written is in a hidden .incomplete directory, removed or listed.
        print("crmsim: interrupted; runs that finished are saved, nothing half-written is left "
              "where a report would read it", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
