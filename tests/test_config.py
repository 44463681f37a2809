"""Composing configs and stopping on bad values before anything runs."""

import os

import pytest
from omegaconf import OmegaConf

import crmsim
from crmsim import ConfigError
from crmsim.api import config_dir


def test_load_config_works_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = crmsim.load_config(["market.n_people=300"])
    assert cfg.market.n_people == 300
    assert cfg.policy.name == "transactional"
    # ... and any number of times.
    assert crmsim.load_config().market.n_people == 10_000


def test_money_that_scales_with_the_market():
    cfg = crmsim.load_config(["market.n_people=2000"])
    assert cfg.firm.crm_budget == pytest.approx(7.8 * 2000)   # per year
    assert crmsim.load_config(["firm.crm_budget=123"]).firm.crm_budget == 123


def test_every_canonical_key_exists():
    cfg = crmsim.load_config()
    for key in [
        "seed", "sim.steps", "sim.period_days", "sim.discount_rate", "sim.record_events",
        "market.n_people", "market.initial_customer_share", "market.spend.mean",
        "market.spend.top20_share", "market.needs.dims", "market.needs.concentration",
        "market.churn.alpha", "market.churn.beta", "network.kind", "network.mean_degree",
        "network.path", "wom.tell_positive", "wom.tell_negative", "wom.viral_prob",
        "adoption.innovation", "adoption.imitation", "firm.crm_budget", "firm.quality",
        "firm.margin", "policy.termination.rules", "policy.termination.method",
        "policy.holdout_share",
    ]:
        OmegaConf.select(cfg, key, throw_on_missing=True)


def test_source_claims_are_the_defaults():
    cfg = crmsim.load_config()
    assert (cfg.wom.tell_positive, cfg.wom.tell_negative) == (8, 21)
    assert cfg.market.spend.top20_share == 0.8
    # Nitzan & Libai's +80% per defecting neighbour is a hazard ratio measured from the model's
    # data (market.churn.contagion is calibrated to it): tests/test_calibration_targets.py.
    text = (config_dir() / "wom" / "amex.yaml").read_text()
    assert "seed 002" in text


@pytest.mark.parametrize("override, key", [
    ("market.n_people=0", "market.n_people"),
    ("market.n_people=abc", "market.n_people"),
    ("sim.steps=0", "sim.steps"),
    ("wom.viral_prob=1.5", "wom.viral_prob"),
    ("market.initial_customer_share=-0.1", "market.initial_customer_share"),
    ("market.spend.top20_share=0.1", "market.spend.top20_share"),
    ("market.churn.alpha=0", "market.churn.alpha"),
    ("firm.margin=2", "firm.margin"),
    ("network.mean_degree=20000", "network.mean_degree"),
    ("policy=nosuchpolicy", "policy"),
    ("network=nosuchnet", "network"),
    ("market.n_poeple=5", "market.n_poeple"),
    ("+market.typo=5", "market.typo"),
    ("policy.tactics.ads.max_lift=-1", "policy.tactics.ads.max_lift"),
    ("+policy.tactics.nosuch.enabled=true", "policy.tactics.nosuch"),
    ("sim.record_events=maybe", "sim.record_events"),
    ("network=edgelist", "network.path"),
])
def test_bad_values_name_key_value_and_what_is_allowed(override, key):
    with pytest.raises(ConfigError) as info:
        crmsim.load_config([override])
    err = info.value
    assert err.key == key
    assert f"'{key}'" in str(err) and "Allowed:" in str(err)


def test_misspelled_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match="market.n_people"):
        crmsim.load_config(["market.n_poeple=5"])


def test_configs_ship_inside_the_package():
    assert (config_dir() / "config.yaml").is_file()
    assert os.path.basename(str(config_dir())) == "configs"
