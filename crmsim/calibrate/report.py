"""``report.md`` of a calibration, with its PNG plots."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from .. import layout
from . import estimators as est
from . import stage_a
from .posterior import Posterior

FIT_PLOT = "fit.png"
HOLDOUT_PLOT = "holdout.png"
BASS_PLOT = "bass.png"
POSTERIOR_PLOT = "posterior.png"


def _save(fig, ax, path: Path) -> None:
    import matplotlib.pyplot as plt

    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fmt(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.4g}"


def write(cal, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from .._version import __version__

    a = cal.stage_a
    L = [f"# Calibration to {cal.data.path.name}", "",
         f"A {'cohort table' if cal.data.kind == 'cohorts' else 'transaction log'}, "
         f"{a.setting} setting, periods of one {a.period} ({a.period_days:.4g} days). "
         "Values in crmsim's units (rates per year, amounts per transaction or per "
         "customer-year). Use the calibrated market with `crmsim run --market market.yaml`.", "",
         "## Estimates", "", "| key | value | 95% low | 95% high | method |", "|---|---|---|---|---|"]
    for k, e in cal.estimates.items():
        L.append(f"| `{k}` | {_fmt(e.value)} | {_fmt(e.low)} | {_fmt(e.high)} | {e.method} |")
    if cal.stage_b is not None:
        sa = a.estimates()
        L += ["", "Stage A's values of the keys stage B refitted (the observed behaviour read as if "
              "no modifier acted): " + ", ".join(f"`{k}` = {_fmt(sa[k].value)} "
                                                   f"[{_fmt(sa[k].low)}, {_fmt(sa[k].high)}]"
                                                   for k in cal.stage_b.keys) + "."]
    L += ["", "## Observed and simulated", ""]
    L += _fit_section(cal, out)
    L += ["", "## Holdout check", ""]
    L += _holdout_section(a, out)
    if "bass" in a.fits or a.bass_series is not None:
        L += _bass_section(a, out)
    if isinstance(cal.stage_b, Posterior):
        L += _posterior_section(cal, out)
    L += ["", "## Identifiability", ""]
    left = [k for k in stage_a.CALIBRATED_KEYS[a.setting] if k not in cal.estimates]
    L.append("Left at their documented defaults (configs/market/default.yaml, "
             "configs/adoption/bass.yaml), because these data do not identify them: "
             + (", ".join(f"`{k}`" for k in left) if left else "none of the calibrated keys")
             + "; and every other key (the behavioural modifiers, word of mouth, the firm) is "
               "always left at its default: calibrate cannot tell them apart from these data.")
    pairs = []
    for name, f in a.fits.items():
        keys = list(f.estimates)
        if f.cov.shape[0] != len(keys):
            continue
        c = est.correlation(f.cov)
        for i in range(len(keys)):
            for j in range(i + 1, len(keys)):
                if abs(c[i, j]) >= stage_a.STRONG_CORRELATION:
                    pairs.append(f"`{keys[i]}` and `{keys[j]}` ({name}: correlation {c[i, j]:+.2f})")
    L += ["", "Strongly correlated estimates (|correlation| >= "
          f"{stage_a.STRONG_CORRELATION}: the data pin down a combination better than each alone): "
          + ("; ".join(pairs) if pairs else "none") + "."]
    if cal.stage_b is not None and not isinstance(cal.stage_b, Posterior):
        b = cal.stage_b
        L += ["", f"Stage B refitted {', '.join(f'`{k}`' for k in b.keys)} by simulation of the "
              f"full model (its modifiers on) with the other keys fixed at their stage A values "
              f"or defaults: {b.trials} candidates, best distance {b.distance:.1f} over "
              f"{b.moments} moments (about chi-square at a well-fitting model), "
              f"{b.seconds:.0f} s."]
    if a.notes:
        L += ["", "## Notes", ""] + [f"- {n}" for n in a.notes]
    L += ["", "## Provenance", "",
          f"- data: `{cal.data.path}`, sha256 `{cal.data.sha256}`",
          *(f"- {k}: {v:,}" for k, v in a.sizes.items()),
          f"- crmsim {__version__}, {dt.datetime.now().isoformat(timespec='seconds')}",
          "- overrides of the simulations: " + (" ".join(f"`{o}`" for o in cal.overrides) or "none"),
          "- run time: " + ", ".join(f"{k} {v:.1f} s" for k, v in cal.seconds.items())]
    (out / layout.CALIBRATION_REPORT).write_text("\n".join(L) + "\n")


def _fit_section(cal, out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    a = cal.stage_a
    fig, ax = plt.subplots(figsize=(6.4, 4))
    lines = []
    if a.cohorts:
        curve = stage_a.survival_curve(a.cohorts)
        k = np.arange(curve.size)
        ax.plot(k, curve, "o", ms=3, color="k", label="observed (pooled cohorts)")
        if "sbg" in a.fits:
            al, be = (a.fits["sbg"].estimates[x].value for x in ("market.churn.alpha", "market.churn.beta"))
            ax.plot(k, est.sbg_survival(al, be, k * a.period_days / 365), label="sBG fit (stage A)")
        if cal.bands:
            sim = np.cumprod(cal.bands["sim"], axis=1)     # retention per period -> survival
            ax.fill_between(k[1:], sim.min(axis=0), sim.max(axis=0), alpha=0.3, color="C1",
                            label=f"simulated, calibrated market ({sim.shape[0]} seeds, min-max)")
        ax.set_xlabel(f"{a.period}s since acquisition")
        ax.set_ylabel("share still active")
        lines.append("Pooled cohort survival, the stage A fit and, when simulated, the calibrated "
                     "market of the full model (all its modifiers on) over several seeds.")
    elif cal.bands:
        t = cal.bands["target"]
        sim = cal.bands["sim"]
        x = np.arange(t.observed.size)
        ax.plot(x, t.observed, "o", color="k", label="observed")
        ax.fill_between(x, sim.min(axis=0), sim.max(axis=0), alpha=0.3, color="C1",
                        label=f"simulated ({sim.shape[0]} seeds, min-max)")
        ax.set_xlabel("moment: shares by repeat purchases (0, 1, 2, 3-4, ...), then by recency")
        lines.append("The customers of the log's first period: shares by number of repeat "
                     "purchases, then by recency, observed and simulated in the calibrated market.")
    else:
        plt.close(fig)
        return ["Not plotted: no moments to compare for these data."]
    _save(fig, ax, out / FIT_PLOT)
    if cal.bands:
        t, sim = cal.bands["target"], cal.bands["sim"]
        lo, hi = sim.min(axis=0) - 2 * t.se, sim.max(axis=0) + 2 * t.se
        inside = np.mean((t.observed >= lo) & (t.observed <= hi))
        what = "period-to-period retentions" if t.setting == "contractual" else "moments"
        lines.append(f"Observed {what} within the simulated band (min-max over seeds, widened by "
                     f"2 standard errors of the data): {inside:.0%}.")
    else:
        lines.append("No simulated band (run with --bands N to simulate the calibrated market).")
    return [*lines, "", f"![fit]({FIT_PLOT})"]


def _holdout_section(a, out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    h = a.holdout
    if not h:
        return ["Not done: a holdout needs cohorts observed for at least 4 periods, or a retail "
                "log with at least 50 customers in its first half."]
    if h["kind"] == "bgnbd":
        return _bgnbd_holdout(h, out)
    if h["kind"] == "subscription":
        return _subscription_holdout(a, h, out)
    rows = h["rows"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot([r[0] for r in rows], [r[1] for r in rows], "o", ms=3, color="k", label="observed")
    ax.plot([r[0] for r in rows], [r[2] for r in rows], label=f"predicted from periods 1-{h['fit_periods']}")
    ax.set_xlabel(f"{a.period}s since acquisition")
    ax.set_ylabel("share still active")
    _save(fig, ax, out / HOLDOUT_PLOT)
    return [f"sBG fitted on periods 1-{h['fit_periods']} only (alpha {h['alpha']:.3g}, beta "
            f"{h['beta']:.3g}) predicts the pooled survival of periods {rows[0][0]}-{rows[-1][0]} "
            f"with mean absolute error {h['mean_abs_error']:.4f} (largest {h['max_abs_error']:.4f}).",
            "", f"![holdout]({HOLDOUT_PLOT})"]


def _subscription_holdout(a, h: dict, out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    t, obs, pred, sd = (np.array(c) for c in zip(*h["rows"], strict=True))
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(t, obs, "o", ms=3, color="k", label="observed")
    ax.plot(t, pred, label=f"sBG fitted on {a.period}s 0-{h['fit_periods'] - 1}")
    ax.fill_between(t, pred - est.Z95 * sd, pred + est.Z95 * sd, alpha=0.3, label="95% band")
    ax.set_xlabel(f"{a.period}s since the log's start")
    ax.set_ylabel(f"customers of {a.period}s 0-{h['fit_periods'] - 1} still paying")
    _save(fig, ax, out / HOLDOUT_PLOT)
    return [f"sBG fitted on the log's first {h['fit_periods']} {a.period}s only (the cohorts as "
            f"they stood then; alpha {h['alpha']:.3g}, beta {h['beta']:.3g}) predicts how many of "
            f"its {h['customers']:,} customers still paying at its end pay in each later {a.period} "
            f"({t[0]:.0f}-{t[-1]:.0f}): mean absolute error {h['mean_rel_error']:.1%} of the "
            f"observed (largest {h['max_rel_error']:.1%}); {h['inside']:.0%} of the {a.period}s within "
            "the 95% band (the customers' binomial sampling plus the fit's uncertainty).", "",
            f"![holdout]({HOLDOUT_PLOT})"]


def _bgnbd_holdout(h: dict, out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    rows = h["rows"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    g = [r[0] for r in rows]
    ax.plot(g, [r[2] for r in rows], "o", color="k", label="observed")
    ax.plot(g, [r[1] for r in rows], label="BG/NBD fitted on the first half")
    ax.set_xlabel("repeat purchases in the first half (7 = 7 or more)")
    ax.set_ylabel("mean purchases in the second half")
    _save(fig, ax, out / HOLDOUT_PLOT)
    table = ["| first-half repeat purchases | customers | predicted | observed |", "|---|---|---|---|"]
    table += [f"| {r[0]}{'+' if r[0] == 7 else ''} | {r[3]:,} | {r[1]:.2f} | {r[2]:.2f} |" for r in rows]
    return [f"BG/NBD fitted on the log up to {h['cut']:%Y-%m-%d} predicts {h['predicted']:,.0f} "
            f"purchases by those customers in the remaining {h['years']:.2f} years; they made "
            f"{h['actual']:,} (error {h['error']:+.1%}).", "", *table, "",
            f"![holdout]({HOLDOUT_PLOT})"]


def _bass_section(a, out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    t, new = a.bass_series
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(t, np.cumsum(new), "o", ms=3, color="k", label="observed first purchases")
    if "bass" in a.fits:
        e = a.fits["bass"].estimates
        ax.plot(t, e["market_potential"].value * est.bass_cdf(
            t, e["adoption.innovation"].value, e["adoption.imitation"].value), label="Bass fit")
    ax.set_xlabel("years since the log's start")
    ax.set_ylabel("customers (cumulative)")
    _save(fig, ax, out / BASS_PLOT)
    return ["", "## Acquisition", "", f"![bass]({BASS_PLOT})"]


def _posterior_section(cal, out: Path) -> list[str]:
    """Stage B's posterior by simulation-based inference: marginals and correlation."""
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    p = cal.stage_b
    sa = cal.stage_a.estimates()
    fig, axes = plt.subplots(1, len(p.keys), figsize=(3.4 * len(p.keys), 3.2))
    for i, (k, ax) in enumerate(zip(p.keys, np.atleast_1d(axes), strict=True)):
        bins = np.geomspace(p.prior_low[k], p.prior_high[k], 41)
        ax.hist(p.samples[:, i], bins=bins, density=True, color="C0", alpha=0.6,
                label="posterior (median, 95%)")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        for q, style in ((0.025, ":"), (0.5, "-"), (0.975, ":")):
            ax.axvline(np.quantile(p.samples[:, i], q), color="C0", ls=style)
        ax.axvline(sa[k].value, color="k", ls="--", label="stage A")
        ax.set_xlim(p.prior_low[k], p.prior_high[k])
        ax.set_xlabel(k)
        ax.legend(fontsize=7)
    axes_first = np.atleast_1d(axes)[0]
    axes_first.set_ylabel("density (the x range is the prior's)")
    fig.tight_layout()
    fig.savefig(out / POSTERIOR_PLOT, dpi=100)
    plt.close(fig)
    c = p.correlation()
    pairs = [f"`{p.keys[i]}` and `{p.keys[j]}` {c[i, j]:+.2f}"
             for i in range(len(p.keys)) for j in range(i + 1, len(p.keys))]
    L = ["", "## Stage B posterior (simulation-based inference)", "",
         f"Neural posterior estimation (sbi) of {', '.join(f'`{k}`' for k in p.keys)}: "
         f"{p.simulations} draws of the prior (log-uniform over the plotted range, "
         f"{np.sqrt(p.prior_high[p.keys[0]] / p.prior_low[p.keys[0]]):.3g}x either side of stage A's "
         f"value), each simulated on seeds {p.seeds} ({p.n_people:,} people), "
         "moments plus Gaussian noise of the data's and the simulation's sampling variance; "
         f"{p.seconds:.0f} s ({p.seconds_simulating:.0f} s simulating). The value is the "
         "posterior median, the interval its 2.5 and 97.5% quantiles (method `sbi-npe`).", "",
         f"Posterior correlation: {'; '.join(pairs)}. The closest of the simulations is at "
         f"distance {p.closest:.1f} over {p.n_moments} moments (about chi-square at a "
         "well-fitting model: much more means the model cannot reproduce the data, and the "
         "posterior extrapolates)."]
    edge = p.at_edge()
    if edge:
        L += ["", "The interval of " + ", ".join(f"`{k}`" for k in edge) + " reaches the edge of "
              "the prior: the prior, not the data, bounds it there."]
    return [*L, "", f"![posterior]({POSTERIOR_PLOT})"]
