"""``calibrate``: read the data, stage A, optionally stage B, then write ``--out DIR``:

    market.yaml        the calibrated keys as a config (``crmsim run --market DIR/market.yaml``)
    calibration.json   every estimated key: {"value", "low", "high", "method"}
    report.md          fit, holdout, identifiability, provenance, with PNG plots beside it

The directory is written atomically (``crmsim.layout.write_dir``); an existing non-empty
directory is refused before anything is read or run.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from .. import layout
from ..compose import load_config
from ..errors import ConfigError
from ..replicates import Replicates
from . import data as data_mod
from . import estimators as est
from . import report, stage_a

SETTINGS = ("contractual", "noncontractual")
POSTERIORS = ("sbi",)
@dataclass
class Calibration:
    data: data_mod.Data
    stage_a: stage_a.StageA
    estimates: dict[str, est.Estimate]
    stage_b: object = None
    bands: dict | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)

    def values(self) -> dict[str, float]:
        return {k: e.value for k, e in self.estimates.items()}


def check_out(out: str | Path) -> Path:
    path = Path(out)
    if path.exists() and not (path.is_dir() and not any(path.iterdir())):
        raise ConfigError("--out", str(path), "a new or empty directory (crmsim never writes "
                          "into or over a directory that holds something)")
    if layout.unwritable(path) is not None:
        raise ConfigError("--out", str(path), "a directory crmsim can create and write to")
    return path


def check_args(period: str, setting: str | None, overrides: list[str], stage_b: bool = False,
               posterior: str | None = None, simulations: int = 100) -> None:
    data_mod.period_days_of(period)
    if setting is not None and setting not in SETTINGS:
        raise ConfigError("--setting", setting, "one of " + ", ".join(SETTINGS))
    if posterior is not None:
        from . import posterior as post

        if posterior not in POSTERIORS:
            raise ConfigError("--posterior", posterior, "one of " + ", ".join(POSTERIORS))
        if not stage_b:
            raise ConfigError("--posterior", posterior, "given with --stage-b (the posterior is "
                              "stage B's: crmsim calibrate DATA --stage-b --posterior sbi)")
        if isinstance(simulations, bool) or not isinstance(simulations, int) \
                or simulations < post.MIN_SIMULATIONS:
            raise ConfigError("--simulations", simulations,
                              f"a whole number >= {post.MIN_SIMULATIONS}")
        post.require()
    if overrides:
        load_config(overrides)   # a bad override stops here, before anything is read


def calibrate(path: str | Path, *, period: str = "month", setting: str | None = None,
              overrides: list[str] | tuple = (), stage_b: bool = False, trials: int = 30,
              seeds: int = 2, bands: int = 0, n_start: int = 1000, seed: int = 0,
              posterior: str | None = None, simulations: int = 100,
              workers: int | None = None) -> Calibration:
    """Calibrate to the file at ``path`` (see ``crmsim.calibrate.data``); nothing is written.

    ``setting`` defaults to contractual for a cohort table and non-contractual for a log.
    ``stage_b``: also fit by simulation (``trials`` candidates on ``seeds`` seeds each);
    with ``posterior="sbi"``, by neural posterior estimation instead (``simulations`` draws of
    the prior on ``seeds`` seeds each; needs the calibrate-sbi extra). Stage B's and the
    bands' simulations run on ``workers`` processes (None: one per core; 1: in this process;
    the numbers do not depend on it).
    ``bands``: seeds of the calibrated market simulated for the report's observed-vs-simulated
    plot (0: none). ``overrides``: the rest of the firm's setup (policy, market size ...), used
    by every simulation.
    """
    overrides = list(overrides)
    check_args(period, setting, overrides, stage_b, posterior, simulations)
    runner = Replicates(workers)     # its pool starts when a candidate first needs it
    data = data_mod.read(path)
    if setting is None:
        setting = "contractual" if data.kind == "cohorts" else "noncontractual"
    if data.kind == "cohorts" and setting == "noncontractual":
        raise ConfigError("--setting", setting, "contractual for a cohort table (a retailer "
                          "never sees who leaves, so a non-contractual cohort table does not exist)")
    t0 = time.perf_counter()
    days = data_mod.period_days_of(period)
    label = period if period in data_mod.PERIOD_DAYS else f"{days:g}-day period"
    a = stage_a.run(data, setting, label, days, seed)
    cal = Calibration(data, a, a.estimates(), overrides=overrides)
    cal.seconds["stage A"] = time.perf_counter() - t0
    target = _target(cal)
    with runner:
        if stage_b:
            _stage_b(cal, target, trials, seeds, n_start, seed, posterior, simulations, runner)
        if bands and target is not None:
            from .simulate import base_config, simulate_moments

            t1 = time.perf_counter()
            ov = _with(overrides, cal.values())
            base = base_config(target, ov, n_start)
            sim = simulate_moments(target, {}, base, list(range(100, 100 + bands)), runner)
            cal.bands = {"target": target, "sim": sim}
            cal.seconds["bands"] = time.perf_counter() - t1
    return cal


def _with(overrides: list[str], values: dict) -> list[str]:
    keep = [o for o in overrides if o.partition("=")[0] not in values]
    return [*keep, *(f"{k}={v:.10g}" for k, v in values.items())]


def _target(cal: Calibration):
    from . import simulate as sim

    a = cal.stage_a
    if a.cohorts:
        return sim.cohort_target(a.cohorts, a.period_days)
    if a.setting == "noncontractual":
        return sim.data_log_target(cal.data.log, cal.data.end, a.period_days)
    return None


def _stage_b(cal: Calibration, target, trials: int, seeds: int, n_start: int, seed: int,
             posterior: str | None, simulations: int, runner: Replicates) -> None:
    from . import simulate as sim

    keys = sim.STAGE_B_KEYS[cal.stage_a.setting]
    if target is None or not all(k in cal.estimates for k in keys):
        cal.stage_a.notes.append("Stage B not run: stage A estimated none of "
                                 + ", ".join(keys) + " to start from.")
        return
    fixed = {k: v for k, v in cal.values().items() if k not in keys}
    ov = _with(cal.overrides, fixed)
    if posterior == "sbi":
        from . import posterior as post

        fitted = post.npe(target, cal.values(), ov, simulations, list(range(seeds)),
                          n_start=n_start, seed=seed, runner=runner)
        q = [fitted.quantiles(p) for p in (0.5, 0.025, 0.975)]
        cal.estimates.update({k: est.Estimate(q[0][k], q[1][k], q[2][k], fitted.method) for k in keys})
        cal.stage_b = fitted
        cal.seconds["stage B"] = fitted.seconds
        return
    fitted = sim.smm(target, cal.values(), ov, trials, list(range(seeds)), n_start=n_start,
                     seed=seed, runner=runner)
    for k in keys:
        cal.estimates[k] = est.Estimate(fitted.best[k], fitted.low[k], fitted.high[k], fitted.method)
    cal.stage_b = fitted
    cal.seconds["stage B"] = fitted.seconds


def market_doc(cal: Calibration) -> dict:
    doc: dict = {}
    for key, e in cal.estimates.items():
        node = doc
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = float(e.value)
    purchase = any(k.startswith("market.purchase") for k in cal.estimates)
    if cal.stage_a.setting == "noncontractual" and purchase:
        doc.setdefault("market", {}).setdefault("purchase", {})["kind"] = "noncontractual"
    return doc


def market_yaml(cal: Calibration) -> str:
    from .._version import __version__

    lines = [f"# Calibrated by crmsim {__version__} calibrate on {cal.data.path.name} "
             f"(sha256 {cal.data.sha256[:16]}...), {dt.date.today().isoformat()}.",
             "# Only the keys the data pin down; every other key keeps its documented default.",
             "# Use: crmsim run --market market.yaml [overrides]   (see docs/calibrate.md)",
             "# Intervals and methods: calibration.json."]
    body = OmegaConf.to_yaml(OmegaConf.create(market_doc(cal)))
    return "\n".join(lines) + "\n" + body


def overrides_of(path: str | Path) -> list[str]:
    """The overrides ``key=value`` of a calibrated ``market.yaml`` (for ``load_config``)."""
    path = Path(path)
    try:
        doc = OmegaConf.to_container(OmegaConf.load(path))
    except FileNotFoundError:
        raise ConfigError("--market", str(path), "a market.yaml written by crmsim calibrate") from None
    except Exception as err:
        raise ConfigError("--market", str(path), "a YAML file written by crmsim calibrate",
                          str(err).splitlines()[0]) from None
    if not isinstance(doc, dict) or not doc or set(doc) - {"market", "adoption"}:
        raise ConfigError("--market", str(path), "a YAML file with top-level keys market and "
                          "(optionally) adoption, as crmsim calibrate writes it")
    out = []

    def walk(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                out.append(f"{prefix}{k}={v}")

    walk(doc, "")
    return out


def write(cal: Calibration, out: str | Path) -> Path:
    out = check_out(out)

    def fill(tmp: Path) -> None:
        (tmp / layout.CALIBRATED_MARKET).write_text(market_yaml(cal))
        layout.dump_json(tmp / layout.CALIBRATION, {k: e.as_dict() for k, e in cal.estimates.items()})
        report.write(cal, tmp)

    return layout.write_dir(out, fill)
