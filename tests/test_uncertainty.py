"""How sure about the model: prior ranges, paired draws, the robust verdict, value of information.

The coverage test is the one that lists what is missing: every illustrative number of the
composed configs (by the rule written at the top of configs/uncertainty/default.yaml) without a
range, every range naming no key, every assumed value outside its own range.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from crmsim import uncertainty, validation
from crmsim.analysis import robust
from crmsim.api import load_config
from crmsim.cli import main
from crmsim.errors import ConfigError
from crmsim.sweep import prepare

TINY = ["market.n_people=300", "sim.steps=6", "sim.period_days=30"]


@pytest.fixture(scope="module")
def priors():
    return uncertainty.load_priors()


@pytest.fixture(scope="module")
def references():
    return uncertainty.reference_configs()


def test_every_illustrative_parameter_has_a_range_and_every_range_a_parameter(priors, references):
    c = uncertainty.coverage(priors, references)
    assert not c.missing, ("illustrative parameters without a range in configs/uncertainty/"
                           "default.yaml (give each a range and basis, or a not_assumed pattern "
                           "with the reason): " + ", ".join(f"{k} ({', '.join(v)})"
                                                            for k, v in c.missing.items()))
    assert not c.unknown, f"ranges naming no config key: {c.unknown}"
    assert not c.not_illustrative, f"ranges of numbers the rule calls decisions: {c.not_illustrative}"
    assert not c.outside, f"assumed values outside their own range: {c.outside}"


def test_the_rule_sees_new_parameters_and_ignores_decisions(priors):
    # A parameter a framework adds later (e.g. a capability) is illustrative until it has a range.
    cfg = {"policy": {"capabilities": {"analytics": 0.7}, "params": {"review_days": 91},
                      "tactics": {"ads": {"share": 1.0, "enabled": True, "max_lift": 0.6}}},
           "sim": {"steps": 10}, "seed": 3}
    found = uncertainty.illustrative(cfg, priors)
    assert found == {"policy.capabilities.analytics": 0.7, "policy.tactics.ads.max_lift": 0.6}
    c = uncertainty.coverage(priors, {"new": OmegaConf.create(cfg)})
    assert c.missing == {"policy.capabilities.analytics": ["new"]}


def test_every_range_has_a_basis_and_sourced_ranges_are_narrower(priors):
    for r in priors.ranges.values():
        assert r.basis and (r.sourced or r.basis.startswith("assumption: ")), r
    # Width on the log scale: a cited source narrows a range, so sourced ranges are on average
    # narrower than the half-to-double (factor 4) of a pure assumption.
    width = {k: math.log(r.high / r.low) for k, r in priors.ranges.items()}
    sourced = [width[k] for k, r in priors.ranges.items() if r.sourced]
    assumed = [width[k] for k, r in priors.ranges.items() if not r.sourced]
    assert len(sourced) >= 10 and np.mean(sourced) < np.mean(assumed)


def test_the_ends_of_every_range_are_valid_configs(priors, references):
    # Every range at its low end at once, then at its high end, in the default config and in
    # any policy that has ranged keys the default lacks (validating a config takes a while).
    default = set(uncertainty.illustrative(references["default"], priors))
    for name, cfg in references.items():
        if name != "default" and not set(uncertainty.illustrative(cfg, priors)) - default:
            continue
        for end in ("low", "high"):
            c = cfg.copy()
            for key, r in priors.ranges.items():
                current = OmegaConf.select(c, key, default=None)
                if current is not None:
                    v = getattr(r, end)
                    OmegaConf.update(c, key, round(v) if isinstance(current, int) else v, merge=False)
            validation.validate(c)   # raises ConfigError naming the key


def test_the_latin_hypercube_puts_one_draw_in_each_stratum_of_every_range(priors):
    k = 10
    x = uncertainty.sample(priors, k, seed=0)
    assert x.shape == (k, len(priors.ranges))
    for j, r in enumerate(priors.ranges.values()):
        f = np.log if r.scale == "log" else np.asarray
        u = (f(x[:, j]) - f(r.low)) / (f(r.high) - f(r.low))    # 0..1 on the range's scale
        assert sorted(np.floor(u * k).astype(int)) == list(range(k)), r.key
    assert np.array_equal(x, uncertainty.sample(priors, k, seed=0))       # deterministic
    assert not np.array_equal(x, uncertainty.sample(priors, k, seed=1))


@pytest.fixture(scope="module")
def tiny():
    """One composed config per policy (composing costs more than preparing)."""
    return {p: load_config([*TINY, f"policy={p}"]) for p in ("qci", "idic")}


def _drawn(tiny, policy="qci", **study):
    cfg = tiny[policy].copy()
    for key, value in {"draws": 5, **study}.items():
        OmegaConf.update(cfg, f"study.uncertainty.{key}", value)
    cfg = prepare(cfg, validate=False)
    return uncertainty.drawn(cfg), cfg


def test_draws_are_the_same_for_every_framework_of_a_replicate_and_differ_across_replicates(
        priors, tiny):
    qci, cfg = _drawn(tiny, "qci", draw=2)
    idic, _ = _drawn(tiny, "idic", draw=2)
    other, _ = _drawn(tiny, "qci", draw=3)
    assert qci == idic and len(qci) == len(priors.ranges)
    for key, r in priors.ranges.items():
        assert r.low - 0.5 <= qci[key] <= r.high + 0.5          # whole numbers are rounded
        assert OmegaConf.select(cfg, key) == qci[key]           # and set in the run's config
    floats = [k for k, v in qci.items() if isinstance(v, float)]
    assert all(qci[k] != other[k] for k in floats)          # another stratum of every range
    assert _drawn(tiny, draws=0)[0] == {}


def test_a_draw_sets_each_key_as_omegaconf_update_sets_it(tiny):
    """``apply_draw`` sets the values where they are (looked up once, set in their section):
    the config is the one ``OmegaConf.update(cfg, key, value, merge=False)`` makes key by key,
    whole numbers rounded, interpolations replaced by the drawn value alike."""
    for policy in ("qci", "idic"):
        for draw in (0, 4):
            cfg = tiny[policy].copy()
            OmegaConf.update(cfg, "study.uncertainty.draws", 5)
            OmegaConf.update(cfg, "study.uncertainty.draw", draw)
            expected = cfg.copy()
            applied = uncertainty.apply_draw(cfg)
            for key, value in applied.items():
                OmegaConf.update(expected, key, value, merge=False)
            assert applied and OmegaConf.to_yaml(cfg) == OmegaConf.to_yaml(expected)
            # Rounded exactly where the config held a whole number before the draw.
            before = tiny[policy]
            for key, value in applied.items():
                held = OmegaConf.select(before, key)
                assert (type(value) is int) == (isinstance(held, int) and not isinstance(held, bool)), key
            assert any(type(v) is int for v in applied.values())


def test_a_draw_outside_the_replicates_or_bad_priors_is_named(tmp_path, tiny):
    with pytest.raises(ConfigError, match="study.uncertainty.draw"):
        _drawn(tiny, draw=5)
    bad = tmp_path / "priors.yaml"
    bad.write_text("scope: [market]\nranges:\n  market.churn.alpha: {low: 2, high: 1, basis: x}\n")
    with pytest.raises(ConfigError, match="market.churn.alpha"):
        _drawn(tiny, priors=str(bad))
    assert main(["run", *TINY, "study.uncertainty.draws=2", f"study.uncertainty.priors={bad}"]) == 2


def test_rank_one_probabilities_sum_to_one_with_ties_split_and_regret_is_paired():
    y = pd.DataFrame({"a": [3.0, 1.0, 2.0, 5.0], "b": [1.0, 2.0, 2.0, 4.0], "c": [2.0, 0.0, 0.0, 5.0]})
    t = robust.rank_table(y).set_index("variant")
    assert t["p_rank1"].sum() == pytest.approx(1.0)
    # a: best in replicate 0, tied in 2 (with b) and 3 (with c): 1 + 1/2 + 1/2 of 4.
    assert t.loc["a", "p_rank1"] == pytest.approx(0.5)
    assert t.loc["b", "p_rank1"] == pytest.approx(1.5 / 4)
    # Regret: best of each replicate minus its own, averaged: b loses 2, 0, 0, 1.
    assert t.loc["b", "regret_mean"] == pytest.approx(0.75)
    assert t.loc["a", "regret_mean"] == pytest.approx(0.25)
    assert (t["p_rank1_low"] <= t["p_rank1"]).all() and (t["p_rank1"] <= t["p_rank1_high"]).all()


def test_evppi_finds_the_parameter_that_decides_and_not_the_one_that_does_not():
    # Option a pays x, option b pays 0.5: knowing x is worth E[max(x, .5)] - max(E x, .5) =
    # 0.625 - 0.5 for x uniform. On a grid of n quantiles the mean of max(u, .5) is within 1/n
    # of 0.625 and the quadratic fits a straight line exactly, so the tolerance is 1/n.
    n = 60
    rng = np.random.default_rng(0)
    u = rng.permutation((np.arange(n) + 0.5) / n)
    y = pd.DataFrame({"a": u, "b": np.full(n, 0.5)})
    x = pd.DataFrame({"drawn:decides": u, "drawn:inert": rng.permutation(u)})
    voi = robust.voi_table(x, y, "a", "b").set_index("parameter")
    assert voi.loc["decides", "evppi"] == pytest.approx(0.125, abs=1 / n)
    assert voi.loc["decides", "above_floor"] and not voi.loc["inert", "above_floor"]
    assert voi.loc["decides", "favoured_when_high"] == "a"


def test_a_small_robust_comparison_runs_end_to_end_from_the_cli(tmp_path, capsys):
    sweep = tmp_path / "robust"
    # 2 frameworks x 4 draws (the fewest for a value-of-information estimate): 8 tiny runs.
    code = main(["run", "-m", "-q", "--no-report", "launcher=serial", "experiment=compare_robust",
                 "policy=transactional,qci", "study.uncertainty.draws=4", *TINY,
                 f"hydra.sweep.dir={sweep}"])
    assert code == 0
    assert main(["report", str(sweep), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "across the plausible ranges" in out and "Before trusting this verdict, measure" in out
    md = (sweep / "report" / "report.md").read_text()
    assert "## How sure: across the plausible ranges" in md and "Under the assumed effects" in md
    assert "Before trusting this verdict, measure" in md
    runs = pd.read_parquet(sweep / "report" / "runs.parquet")
    drawn = [c for c in runs.columns if c.startswith("drawn:")]
    assert len(runs) == 8 and len(drawn) == len(uncertainty.load_priors().ranges)
    per_replicate = runs.groupby("study.uncertainty.draw")[drawn].nunique()
    assert (per_replicate == 1).all().all()                      # paired in assumptions
    assert runs.groupby("study.uncertainty.draw")["seed"].nunique().eq(1).all()   # and in luck
    assert runs["seed"].nunique() == 4
    table = pd.read_csv(sweep / "report" / "robust.csv")
    assert table["p_rank1"].sum() == pytest.approx(1.0)
    assert (table["regret_mean"] >= 0).all() and (table["regret_mean"] == 0).sum() <= 1
    summary = json.loads((sweep / "policy=qci,study.uncertainty.draw=1" / "summary.json").read_text())
    assert summary["drawn"] == runs.loc[runs["job"] == "policy=qci,study.uncertainty.draw=1",
                                        drawn].iloc[0].rename(lambda c: c[6:]).to_dict()


def test_what_a_sweep_sets_itself_is_held_not_drawn(tiny, tmp_path):
    held, cfg = _drawn(tiny, draw=1, fixed=["market.churn.alpha"])
    free, _ = _drawn(tiny, draw=1)
    assert held["market.churn.alpha"] == OmegaConf.select(tiny["qci"], "market.churn.alpha")
    assert free["market.churn.alpha"] != held["market.churn.alpha"]
    assert {k: v for k, v in held.items() if k != "market.churn.alpha"} == \
        {k: v for k, v in free.items() if k != "market.churn.alpha"}
    # A sweep over a ranged key (as strategy_map sweeps market.spend.top20_share) holds it.
    from crmsim import sweep

    p = sweep.plan([*TINY, "study.uncertainty.draws=2", "market.spend.top20_share=0.5,0.9"],
                   tmp_path)
    assert "study.uncertainty.fixed=[market.spend.top20_share]" in p.overrides
    assert len(p.jobs) == 4
