"""The non-contractual (retail) purchase setting, and its limit case ``+validation=bgnbd``.

Under ``+validation=bgnbd`` the event log is exactly a BG/NBD process with Gamma-Gamma spend
(Fader, Hardie & Lee 2005). The recovery test fits both models by maximum likelihood
(``crmsim.calibrate.estimators``, the estimators of ``crmsim calibrate``) to
``crmsim.export.rfm`` of a fixed-seed run and checks the generating parameters against the
estimates with the standard errors of the observed information (the inverse Hessian of the
negative log-likelihood at the maximum):

- jointly: the Wald statistic (theta_hat - theta)' Cov^-1 (theta_hat - theta) is chi-square with
  k degrees of freedom under a correct model; the test fails above its 99.9% quantile;
- each parameter: |theta_hat - theta| < 3.29 standard errors (two-sided 0.1%).

With 7 parameters the chance that a correct simulator fails is about 0.1% + 7 x 0.1%, and
the same checks reject a truth moved by a few standard errors (``test_the_recovery_check_has_power``).
Run this file as a script to print the recovered parameters next to the generating ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import crmsim
from crmsim import export
from crmsim.api import group_options
from crmsim.behavior import purchase
from crmsim.calibrate.estimators import BGNBD, GG, bgnbd_nll, fit, gamma_gamma_nll
from crmsim.policies import POLICIES
from crmsim.population import ACTIVE, LAPSED, PROSPECT

YEAR_S = 365 * 86400            # rfm in seconds / YEAR_S = years, the unit of r/alpha
N = 20000
Z_EACH = stats.norm.ppf(1 - 0.001 / 2)      # 3.29


def fit_run(result) -> dict:
    """BG/NBD and Gamma-Gamma fitted to a run's event log, parameters in the config's units."""
    d = export.rfm(result, time_unit="s", time_scaler=YEAR_S)
    x, t_x, T = (d[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    pc = result.config.market.purchase
    theta_b, cov_b = fit(bgnbd_nll, np.array([1.0, 1.0, 1.0, 1.0]), x, t_x, T)
    rep = d[d["frequency"] > 0]
    theta_g, cov_g = fit(gamma_gamma_nll, np.array([1.0, 2.0, 10.0]),
                         rep["frequency"].to_numpy(float), rep["monetary_value"].to_numpy(float))
    return {
        "bgnbd": (np.array([pc[k] for k in BGNBD], dtype=float), theta_b, cov_b),
        "gamma_gamma": (np.array([pc[k] for k in GG], dtype=float), theta_g, cov_g),
    }


def recovered(truth, est, cov) -> tuple[bool, float, np.ndarray]:
    """Wald statistic below its chi-square 99.9% quantile and every |z| below 3.29."""
    diff = est - truth
    wald = float(diff @ np.linalg.solve(cov, diff))
    z = diff / np.sqrt(np.diag(cov))
    return bool(wald < stats.chi2.ppf(0.999, truth.size) and np.all(np.abs(z) < Z_EACH)), wald, z


@pytest.fixture(scope="module")
def bgnbd_run():
    return crmsim.simulate(crmsim.load_config(["+validation=bgnbd", f"market.n_people={N}", "seed=3"]))


@pytest.fixture(scope="module")
def fitted(bgnbd_run):
    return fit_run(bgnbd_run)


@pytest.mark.parametrize("model", ["bgnbd", "gamma_gamma"])
def test_bgnbd_and_gamma_gamma_recover_the_generating_parameters(fitted, model):
    truth, est, cov = fitted[model]
    se = np.sqrt(np.diag(cov))
    # The standard errors must be small enough for the check to mean something.
    assert np.all(se / truth < 0.15), se / truth
    ok, wald, z = recovered(truth, est, cov)
    assert ok, f"{model}: truth {truth}, estimate {est}, se {se}, z {z}, Wald {wald:.1f}"


@pytest.mark.parametrize("model", ["bgnbd", "gamma_gamma"])
def test_the_recovery_check_has_power(fitted, model):
    # A truth 5 standard errors away in any one parameter is rejected.
    truth, est, cov = fitted[model]
    se = np.sqrt(np.diag(cov))
    for i in range(truth.size):
        moved = est.copy()
        moved[i] += 5 * se[i]
        assert not recovered(moved, est, cov)[0]


def test_the_firms_p_alive_counts_the_living(bgnbd_run):
    # Sum of P(alive) over customers = expected number alive; its sd is sqrt(sum p(1-p)) if the
    # customers were independent given their records; 4 sd.
    c = bgnbd_run.customers
    pc = bgnbd_run.config.market.purchase
    T = bgnbd_run.config.sim.steps * bgnbd_run.config.sim.period_days / 365
    pa = purchase.p_alive(c["repeat_purchases"], c["last_purchase"] - c["first_purchase"],
                          T - c["first_purchase"], pc.r, pc.alpha, pc.a, pc.b)
    alive = int((c["status"] == "active").sum())
    assert abs(pa.sum() - alive) < 4 * np.sqrt((pa * (1 - pa)).sum())
    # ... and it tells the living from the dead far better than chance
    assert pa[c["status"] == "active"].mean() > pa[c["status"] == "lapsed"].mean() + 0.3


def test_log_is_consistent_with_the_run(bgnbd_run):
    ev, s = bgnbd_run.events, bgnbd_run.summary
    buys = ev[ev["event"] == "purchase"]
    # Step 0 holds the purchases that made the initial customers customers, before the run.
    assert buys.loc[buys["step"] > 0, "amount"].sum() == pytest.approx(s["revenue_total"])
    assert (buys["step"] == 0).sum() == N
    assert (ev["event"] == "churn").sum() == s["churned_total"]
    assert ev["date"].is_monotonic_increasing
    assert (buys["amount"] > 0).all()
    # Repeat purchases fall inside their step; a step's other events at its end.
    start = export.DATE_ORIGIN + pd.to_timedelta((ev["step"] - 1).clip(lower=0) * 7, unit="D")
    end = export.DATE_ORIGIN + pd.to_timedelta(ev["step"] * 7, unit="D")
    assert ((ev["date"] >= start) & (ev["date"] <= end)).all()
    assert (ev.loc[ev["event"] != "purchase", "date"] == end[ev["event"] != "purchase"]).all()
    # Nobody buys after dropping out (win-back is off here).
    out = ev[ev["event"] == "churn"].set_index("customer_id")["date"]
    last_buy = buys.groupby("customer_id")["date"].max()
    assert (last_buy.reindex(out.index) <= out).all()


def test_step_length_does_not_change_the_process():
    # The same BG/NBD in weekly and 30-day steps: mean repeat purchases per customer over two
    # years agree within 4 standard errors of the difference.
    def repeats(period_days, steps):
        r = crmsim.simulate(crmsim.load_config([
            "+validation=bgnbd", "market.n_people=8000", f"sim.period_days={period_days}",
            f"sim.steps={steps}", "sim.record_events=false", "seed=5"]))
        return r.customers["repeat_purchases"].to_numpy(float)

    a, b = repeats(7, 104), repeats(28, 26)
    se = np.sqrt(a.var() / a.size + b.var() / b.size)
    assert abs(a.mean() - b.mean()) < 4 * se


def test_the_firm_does_not_see_dropouts():
    cfg = crmsim.load_config(["market.purchase.kind=noncontractual", "market.n_people=3000",
                              "sim.steps=40"])
    model = crmsim.CRMModel(cfg)
    for _ in range(40):
        model.step()
    pop = model.population
    # What the firm would see at the start of the next step.
    view = model.firm.observe(pop, model.network.degree, model.steps + 1,
                              model.cfg.sim.period_days, np.random.default_rng(0), 0.3, 0.0,
                              model.cfg.market.purchase)
    dead = pop.status == LAPSED
    assert dead.any()
    # The firm still counts some of the dead as customers and some of the living as lapsed.
    assert np.count_nonzero(dead & (view.status == ACTIVE)) > 0
    assert np.count_nonzero((pop.status == ACTIVE) & (view.status == LAPSED)) > 0
    assert np.all((view.status == PROSPECT) == np.isnan(pop.first_purchase))
    assert np.all((view.p_alive >= 0) & (view.p_alive <= 1))


def test_contractual_runs_carry_no_purchase_record():
    r = crmsim.simulate(crmsim.load_config(["market.n_people=500", "sim.steps=3"]))
    assert "purchase_rate" not in r.customers.columns


DIGEST = """
import hashlib, sys, crmsim
r = crmsim.simulate(crmsim.load_config(sys.argv[1:]))
h = hashlib.sha256()
for df in (r.timeseries, r.customers, r.events.assign(event=r.events["event"].astype(str))):
    h.update(df.to_csv(float_format="%.17g").encode())
print(h.hexdigest())
"""


def test_same_seed_same_bits_in_another_interpreter():
    import os
    import subprocess
    import sys

    args = ["market.purchase.kind=noncontractual", "market.n_people=800", "sim.steps=15",
            "sim.record_events=true", "seed=8", "network=scale_free"]
    env = {**os.environ, "PYTHONHASHSEED": "4243"}
    runs = [subprocess.run([sys.executable, "-c", DIGEST, *args], capture_output=True, text=True,
                           check=True, env=env).stdout for _ in range(2)]
    here = subprocess.run([sys.executable, "-c", DIGEST, *args], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONHASHSEED": "7"}).stdout
    assert runs[0] == runs[1] == here and len(here.strip()) == 64
    other = subprocess.run([sys.executable, "-c", DIGEST, *args[:4], "seed=9", args[5]],
                           capture_output=True, text=True, check=True).stdout
    assert other != here


def test_recording_events_does_not_change_a_run():
    base = ["market.purchase.kind=noncontractual", "market.n_people=1500", "sim.steps=20", "seed=4"]
    on = crmsim.simulate(crmsim.load_config([*base, "sim.record_events=true"]))
    off = crmsim.simulate(crmsim.load_config([*base, "sim.record_events=false"]))
    pd.testing.assert_frame_equal(on.timeseries, off.timeseries, check_exact=True)
    assert on.summary == off.summary


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_policy_runs_without_contracts(policy):
    r = crmsim.simulate(crmsim.load_config([
        "market.purchase.kind=noncontractual", f"policy={policy}", "market.n_people=1500",
        "sim.steps=30", "seed=2"]))
    ts = r.timeseries
    assert np.isfinite(ts.select_dtypes("number").to_numpy()).all()
    assert ts["sales"].iloc[1:].gt(0).all()
    assert r.summary["crm_spend_total"] > 0


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_runs_without_contracts(experiment):
    # The experiment's own settings (its sweep aside) on a small retail market.
    r = crmsim.simulate(crmsim.load_config([
        f"experiment={experiment}", "market.purchase.kind=noncontractual", "market.n_people=600",
        "sim.steps=12"]))
    assert r.config.market.purchase.kind == "noncontractual"
    assert r.timeseries["sales"].iloc[1:].sum() > 0


def test_the_dashboard_builds_and_steps_without_contracts():
    import matplotlib

    matplotlib.use("Agg")
    from crmsim.viz.page import DashboardModel, dashboard
    from crmsim.viz.plots import plot_network

    base = ["market.n_people=200", "market.purchase.kind=noncontractual"]
    model = DashboardModel(base=base, seed=4)
    for _ in range(5):
        model.step()
    assert model.cfg.market.purchase.kind == "noncontractual"
    assert model.timeseries()["revenue"].iloc[1:].sum() > 0
    plot_network(model, max_nodes=100)
    assert type(dashboard(base)).__name__ == "Element"


def test_an_unknown_purchase_kind_is_a_config_error():
    with pytest.raises(crmsim.ConfigError, match="market.purchase.kind"):
        crmsim.load_config(["market.purchase.kind=retail"])


if __name__ == "__main__":
    run = crmsim.simulate(crmsim.load_config(["+validation=bgnbd", f"market.n_people={N}", "seed=3"]))
    for model, names in (("bgnbd", BGNBD), ("gamma_gamma", GG)):
        truth, est, cov = fit_run(run)[model]
        ok, wald, z = recovered(truth, est, cov)
        print(f"{model}: Wald {wald:.2f} (chi2_{truth.size} 99.9% = "
              f"{stats.chi2.ppf(0.999, truth.size):.1f}), recovered: {ok}")
        for name, t, e, s, zz in zip(names, truth, est, np.sqrt(np.diag(cov)), z, strict=True):
            print(f"  {name:6s} generating {t:8.4f}  estimate {e:8.4f}  se {s:.4f}  z {zz:+.2f}")
