"""The sweep's machinery at the engine's speed: each job's config composed once per choice of
config groups, checked once per config, written with libyaml, and the same as before.

Every shortcut is checked against what it replaces: Hydra's own composition of each job,
OmegaConf's own YAML text, a full validation.
"""

import dataclasses
import json
import pickle

import pandas as pd
import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf

from crmsim import api, compose, validation
from crmsim import config as config_mod
from crmsim.cli import main
from crmsim.compose import JobComposer
from crmsim.errors import ConfigError
from crmsim.result import config_hash, yaml_text

JOBS = [
    ["policy=idic", "seed=3", "market.n_people=300"],
    ["policy=idic", "seed=4", "market.n_people=300"],          # shares idic's composition
    ["policy=qci", "seed=4", "market.n_people=300"],
    ["policy=qci", "seed=5", "market.n_people=300", "+study.note=x"],   # an added key
    ["policy=qci", "seed=5", "market.n_people=400", "network=scale_free"],
]


def test_each_job_is_composed_exactly_as_hydra_composes_it():
    config_mod.register_schema()
    compose.forget_compositions()
    with api._hydra_context():
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration(
            config_name="config", run_mode=RunMode.MULTIRUN,
            overrides=["experiment=compare_policies", "hydra.sweep.dir=/tmp/crmsim-compose-test",
                       "hydra.sweep.subdir=${hydra.job.override_dirname}"])
        composer = JobComposer(loader, master)
        for job in JOBS:
            hydra = loader.load_sweep_config(master, job)
            # In this process, and in a worker from the spec it is sent.
            for fast in (composer(job), pickle.loads(pickle.dumps(composer.spec(job))).config()):
                assert OmegaConf.to_container(fast, resolve=False) == \
                    OmegaConf.to_container(hydra, resolve=False), job
                assert OmegaConf.get_type(fast, "hydra") is OmegaConf.get_type(hydra, "hydra")
                assert OmegaConf.is_struct(fast) == OmegaConf.is_struct(hydra)
                assert fast.hydra.sweep.dir == hydra.hydra.sweep.dir   # resolved alike
            # The launcher names a job after the sweep config's job name.
            assert master.hydra.job.name == hydra.hydra.job.name
        # A value that cannot be set is Hydra's error when the job is checked.
        with pytest.raises(ConfigCompositionException, match="nokey"):
            composer.spec(["policy=idic", "seed=9", "nokey=1"])
        # Jobs that pick the same options were composed once, with their values set after.
        assert len(composer._bases) == 3


@pytest.mark.parametrize("overrides", [[], ["policy=gartner", "market.purchase.kind=noncontractual"],
                                       ["study.name='1e5'"], ["study.name='yes'"],
                                       ["study.name='x:y: é \"q\" '"]])
def test_config_text_and_hash_are_omegaconfs_own(overrides):
    cfg = api.load_config(overrides)
    plain = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert yaml_text(plain) == OmegaConf.to_yaml(cfg, resolve=True)
    without_study = {k: v for k, v in plain.items() if k != "study"}
    assert yaml_text(without_study, sort_keys=True) == \
        OmegaConf.to_yaml(OmegaConf.create(without_study), sort_keys=True)
    assert config_hash(cfg) == config_hash(plain)


@pytest.mark.parametrize("sort_keys", [False, True])
def test_the_text_of_a_config_differing_only_by_seed_is_a_fresh_dump(sort_keys):
    base = OmegaConf.to_container(api.load_config(["market.n_people=500"]), resolve=True,
                                  enum_to_str=True)
    for seed in (0, 7, 0, 12345678901, 3):   # the first dump, then texts made from it
        plain = {**base, "seed": seed}
        fresh = OmegaConf.to_yaml(OmegaConf.create(plain), sort_keys=sort_keys)
        assert yaml_text(plain, sort_keys=sort_keys) == fresh
        assert f"\nseed: {seed}\n" in "\n" + fresh
    # A nested key named seed, and a seed that is not a whole number, are left alone.
    plain = {**base, "seed": 5, "study": {**base["study"], "seed": 5}}
    assert yaml_text(plain, sort_keys=sort_keys) == OmegaConf.to_yaml(OmegaConf.create(plain),
                                                                      sort_keys=sort_keys)
    plain = {**base, "seed": "5"}
    assert yaml_text(plain, sort_keys=sort_keys) == OmegaConf.to_yaml(OmegaConf.create(plain),
                                                                      sort_keys=sort_keys)


def test_a_config_differing_only_by_seed_is_checked_again_and_typed_the_same():
    cfg = api.load_config(["policy=value_chain", "market.n_people=500"])
    first = validation.validate(cfg)
    cfg.seed = 17
    again = validation.validate(cfg)            # from the cache of checked configs
    assert again.seed == 17 and first.seed == 0
    assert dataclasses.replace(again, seed=0) == first
    assert again.policy is not first.policy     # a copy: a run cannot change another's config
    cfg.seed = -1                               # the seed's own constraint still applies
    with pytest.raises(ConfigError, match="seed"):
        validation.validate(cfg)
    # A changed value is a different config: checked in full.
    cfg.seed = 2
    cfg.market.n_people = 0
    with pytest.raises(ConfigError, match="market.n_people"):
        validation.validate(cfg)


@pytest.mark.parametrize("changes", [
    {"market.churn.alpha": 0.9, "firm.quality": 0.55},          # numbers of the schema
    {"market.n_people": 600, "sim.record_events": True},         # a whole number, a flag
    {"network.kind": "scale_free"},                              # a word
    {"policy.tactics.ads.share": 0.35, "policy.tactics.email.enabled": False},   # a tactic's
    {"study.uncertainty.draw": 3},                               # and the seed that follows it
])
def test_a_config_differing_only_in_values_is_typed_as_the_full_check_types_it(changes):
    """A config that differs from one checked before only in values is typed from a copy of
    that one (``validation._near``): the same typed config as merging it into the schema."""
    cfg = api.load_config(["policy=value_chain", "market.n_people=500",
                           "seed=${study.uncertainty.draw}"])
    validation.validate(cfg)
    for key, value in changes.items():
        OmegaConf.update(cfg, key, value)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    near = validation._near(resolved)
    assert near is not None and near == validation._validate(cfg)
    assert validation.validate(cfg) == near


def test_a_near_config_is_checked_in_full_or_not_typed_from_a_copy():
    cfg = api.load_config(["policy=idic", "market.n_people=500"])
    validation.validate(cfg)
    # A value out of its range: the same error as the full check's.
    cfg.market.churn.alpha = -1.0
    with pytest.raises(ConfigError, match="market.churn.alpha"):
        validation._near(OmegaConf.to_container(cfg, resolve=True))
    cfg.market.churn.alpha = 1.0
    # What only the merge can type (a number for a whole number, a missing value, a new key)
    # is not typed from a copy.
    for section, key, value in [("market", "n_people", 600.0), ("network", "kind", "???"),
                                ("network", "extra", 1)]:
        changed = OmegaConf.to_container(cfg, resolve=True)
        changed[section][key] = value
        assert validation._near(changed) is None, key


def test_every_job_of_a_parallel_sweep_records_its_simulation_time(tmp_path, monkeypatch):
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    composed = []
    load = ConfigLoaderImpl.load_configuration

    def counted(self, config_name, overrides, *args, **kwargs):
        composed.append(list(overrides))
        return load(self, config_name, overrides, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    code = main(["run", "-m", "-q", "--no-report", "market.n_people=300", "sim.steps=4",
                 "policy=transactional,qci", "seed=0,1", "hydra.launcher.n_jobs=2"])
    assert code == 0
    # Each policy's config was composed once: the plan's check and the launcher share it.
    for option in ("policy=transactional", "policy=qci"):
        assert sum(option in lines for lines in composed) == 1, option
    (sweep,) = (tmp_path / "results" / "runs").iterdir()
    docs = [json.loads(p.read_text()) for p in sweep.glob("*/summary.json")]
    assert len(docs) == 4 and {d["status"] for d in docs} == {"ok"}
    manifest = json.loads((sweep / "sweep.json").read_text())
    assert manifest["launcher"] == "PoolLauncher"
    for doc in docs:
        timing = doc["timing"]
        assert 0 < timing["simulation_cpu_s"] and 0 < timing["simulation_wall_s"]
        # The hash a job files under is the hash of the config it saved.
        saved = OmegaConf.load(sweep / doc["job"]["dir"] / "config.yaml")
        assert doc["config_hash"] == config_hash(saved)
        # Each job's numbers are those of the same config run on its own, to the last bit.
        alone = api.simulate(api.load_config(
            [f"{k}={v}" for k, v in doc["params"].items()]))
        pd.testing.assert_frame_equal(
            pd.read_parquet(sweep / doc["job"]["dir"] / "timeseries.parquet"), alone.timeseries,
            check_exact=True)
        assert doc["kpis"] == json.loads(json.dumps(alone.summary))
