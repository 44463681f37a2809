"""crmsim.compare: paired comparisons across seeds."""

import pandas as pd
import pytest

import crmsim


@pytest.fixture(scope="module")
def table():
    base = ["market.n_people=2000", "sim.steps=52"]
    return crmsim.compare({"transactional": [*base, "policy=transactional"],
                           "idic": [*base, "policy=idic"]}, seeds=range(6))


def test_table_shape(table):
    assert set(table["variant"]) == {"transactional", "idic"}
    # 52 weekly steps reach the 1-year horizon, not the later ones.
    later = {"npv_total_3y", "npv_total_5y", "npv_total_10y"}
    assert set(crmsim.metrics.SUMMARY) - later == set(table["kpi"])
    runs = table.attrs["runs"]
    assert len(runs) == 12 and set(runs["seed"]) == set(range(6))
    base = table[(table["variant"] == "transactional")]
    assert (base["diff"] == 0).all()


def test_paired_difference_matches_the_runs(table):
    runs = table.attrs["runs"].set_index(["variant", "seed"])
    d = (runs.loc["idic", "npv_profit"] - runs.loc["transactional", "npv_profit"]).mean()
    row = table[(table["variant"] == "idic") & (table["kpi"] == "npv_profit")].iloc[0]
    assert row["diff"] == pytest.approx(d)
    assert row["diff_low"] < row["diff"] < row["diff_high"]


def test_pairing_narrows_the_interval(table):
    """Common random numbers: the same people and luck cancel out of the paired difference."""
    for kpi in ("npv_profit", "revenue_total", "active_final"):
        row = table[(table["variant"] == "idic") & (table["kpi"] == kpi)].iloc[0]
        paired = row["diff_high"] - row["diff_low"]
        unpaired = row["unpaired_high"] - row["unpaired_low"]
        assert paired < unpaired, kpi


def test_bad_baseline_is_an_error():
    with pytest.raises(ValueError, match="baseline"):
        crmsim.compare({"a": ["market.n_people=100"]}, seeds=[0], baseline="b")


def _comparisons() -> list[str]:
    """The experiments in configs/experiment/ that compare variants on seeds (not sensitivity
    designs, nor draws from the prior ranges: only a sweep applies those, nor a tuned
    comparison, whose own sweeper picks its runs: tests/test_tune.py)."""
    from omegaconf import OmegaConf

    from crmsim.api import config_dir, group_options

    def plain(name: str) -> bool:
        doc = OmegaConf.load(config_dir() / "experiment" / f"{name}.yaml")
        defaults = OmegaConf.to_container(doc).get("defaults") or []
        return not (OmegaConf.select(doc, "study.design")
                    or OmegaConf.select(doc, "study.uncertainty.draws")
                    or any("override /hydra/sweeper" in d for d in defaults if isinstance(d, dict)))

    return [name for name in group_options("experiment") if plain(name)]


def test_experiments_are_discovered():
    from crmsim.api import group_options

    assert "compare_policies" in _comparisons()
    assert set(group_options("experiment")) - set(_comparisons()) == {
        "sensitivity", "compare_robust", "compare_tuned"}


@pytest.mark.parametrize("name", _comparisons())
def test_every_experiment_unfolds_into_paired_variants(name):
    from crmsim.analysis import experiment_variants

    variants, seeds = experiment_variants(name)
    assert len(variants) >= 3 and len(seeds) >= 4
    for overrides in variants.values():
        assert overrides[0] == f"experiment={name}"
    # ... and each variant is a valid config on its own.
    first = next(iter(variants.values()))
    cfg = crmsim.load_config([*first, "seed=0"])
    assert cfg.study.name == name


def test_an_experiment_runs_through_compare():
    from crmsim.analysis import experiment_variants

    small = ["market.n_people=300", "sim.steps=5"]
    variants, _ = experiment_variants("wom_asymmetry", small)
    table = crmsim.compare(variants, seeds=range(2), baseline="wom.tell_negative=8",
                           kpis=["wom_negative_total"])
    means = table.set_index("variant")["mean"]
    assert means["wom.tell_negative=30"] > means["wom.tell_negative=8"]


def active_share(result) -> dict[str, float]:
    """A measure of one's own (module-level: it runs in the worker processes)."""
    return {"active_share": float(result.timeseries["n_active"].iloc[-1]) / 300}


def test_runs_on_a_pool_are_the_runs_one_after_the_other():
    variants = {"transactional": ["market.n_people=300", "sim.steps=10"],
                "idic": ["market.n_people=300", "sim.steps=10", "policy=idic"]}
    one = crmsim.compare(variants, seeds=[3, 1, 4], measures=active_share)
    two = crmsim.compare(variants, seeds=[3, 1, 4], measures=active_share, n_jobs=2)
    pd.testing.assert_frame_equal(one.attrs["runs"], two.attrs["runs"], check_exact=True)
    assert list(one.attrs["runs"]["seed"]) == [3, 1, 4, 3, 1, 4]
    assert "active_share" in set(one["kpi"])
