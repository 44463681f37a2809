"""The ``crmsim`` command.

    crmsim run [OVERRIDES...]     one simulation; writes results/runs/<date-time>/
    crmsim run --help             the config groups, their options and the canonical keys

Overrides are Hydra's: ``key=value`` for a value, ``group=option`` for a config group.
Bad input stops before anything runs, with one paragraph naming the key, the value and what is
allowed, and exit code 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import textwrap
from pathlib import Path

from .errors import ConfigError

EXIT_BAD_INPUT = 2

CANONICAL_KEYS = """\
  seed                                   one seed drives every random stream
  sim.steps, sim.period_days             how many steps, of how many days (7)
  sim.discount_rate                      annual, for discounted profit and CLV
  sim.record_events                      write a per-person event log (events.parquet)
  market.n_people                        population size
  market.initial_customer_share          share of people who are customers at step 0
  market.spend.mean, .top20_share        mean spend per step; 80/20 concentration
  market.needs.dims, .concentration      needs simplex and its Dirichlet concentration
  market.churn.alpha, .beta              Beta distribution of annual base churn
  network.kind, .mean_degree, .path      the word-of-mouth network
  wom.tell_positive, wom.tell_negative   people told after a good / bad experience (8 / 21)
  wom.viral_prob                         chance a bad experience goes viral
  adoption.innovation, .imitation        Bass p and q, per year
  firm.crm_budget, .quality, .margin     CRM budget per step (equal across policies), ...
  policy=<name>, policy.tactics.<t>.enabled, policy.termination.rules/method"""


def results_root() -> Path:
    """Where runs land: ``$CRMSIM_RESULTS`` or ``./results``."""
    return Path(os.environ.get("CRMSIM_RESULTS", "results"))


def _groups_help() -> str:
    from .api import config_groups, group_options

    lines = ["config groups (choose with group=option):"]
    for group in config_groups():
        lines.append(f"  {group:<12} {', '.join(group_options(group))}")
    return "\n".join(lines)


def _fail(err: Exception) -> int:
    text = textwrap.fill(f"crmsim: error: {err}", width=100, subsequent_indent="  ")
    print(text, file=sys.stderr)
    return EXIT_BAD_INPUT


def _new_run_dir(root: Path) -> Path:
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    return root / "runs" / stamp


def _check_writable(root: Path) -> None:
    probe = root
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise ConfigError("CRMSIM_RESULTS", str(root),
                          "a directory crmsim can create and write to")


def format_summary(summary: dict) -> str:
    rows = [(k, v) for k, v in summary.items()]
    width = max(len(k) for k, _ in rows)
    out = []
    for k, v in rows:
        shown = f"{v:,.4g}" if isinstance(v, float) and abs(v) < 10 else (
            f"{v:,.0f}" if isinstance(v, float) else f"{v:,}")
        out.append(f"  {k:<{width}}  {shown:>16}")
    return "\n".join(out)


def cmd_run(args: argparse.Namespace) -> int:
    from .api import load_config, simulate

    try:
        cfg = load_config(args.overrides)
        root = Path(args.out) if args.out else results_root()
        _check_writable(root)
    except ConfigError as err:
        return _fail(err)
    result = simulate(cfg, progress=not args.quiet)
    target = result.save(_new_run_dir(root))
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
        "run", help="run one simulation and save its results",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run one simulation of the composed config and save it under "
                    "$CRMSIM_RESULTS/runs/<date-time>/ (default ./results).",
        epilog=_groups_help() + "\n\ncanonical keys (override with key=value):\n"
               + CANONICAL_KEYS + "\n\nexample:\n  crmsim run market.n_people=100000 "
               "sim.steps=52 network=scale_free",
    )
    run.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                     help="Hydra overrides: key=value or group=option")
    run.add_argument("--out", metavar="DIR", help="results root (default $CRMSIM_RESULTS or ./results)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)
    return parser


def _version() -> str:
    from . import __version__

    return f"crmsim {__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
