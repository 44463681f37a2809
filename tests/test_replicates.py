"""``crmsim.replicates``: one config on many seeds on a pool of worker processes, each result
that of ``crmsim.simulate`` with that seed to the last bit, in seed order; calibration's
moments the same on the pool as one after the other."""

from __future__ import annotations

import contextlib
import functools
import operator
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

import crmsim
from crmsim.calibrate import simulate as calsim
from crmsim.errors import ConfigError
from crmsim.replicates import Replicates, simulate_replicates

SMALL = ["market.n_people=300", "sim.steps=10"]
SEEDS = [5, 0, 3, 9, 1, 7, 2]          # not sorted: the results keep this order


def worker(result) -> tuple[int, str | None]:
    """A reduce: the process that ran the replicate and its threads per model."""
    return os.getpid(), os.environ.get("CRMSIM_THREADS")


def fails_on_seed_3(result):
    if result.config.seed == 3:
        raise RuntimeError("seed 3 refused")
    return result.summary


def sequential(cfg, seeds, reduce=operator.attrgetter("summary")):
    out = []
    for s in seeds:
        one = cfg.copy()
        one.seed = s
        out.append(reduce(crmsim.simulate(one)))
    return out


@pytest.fixture(scope="module")
def runner():
    with Replicates(workers=2) as r:
        yield r


@pytest.fixture(scope="module")
def cfg():
    return crmsim.load_config(SMALL)


def test_each_replicate_is_simulate_with_its_seed_in_seed_order(runner, cfg):
    assert runner.run(cfg, SEEDS) == sequential(cfg, SEEDS)
    # a reduce runs in the workers; whole tables come back identical too
    tables = runner.run(cfg, SEEDS[:3], reduce=operator.attrgetter("timeseries"))
    for got, want in zip(tables, sequential(cfg, SEEDS[:3], operator.attrgetter("timeseries")),
                         strict=True):
        pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_the_pool_is_started_once_and_reused_and_its_workers_share_the_cores(runner, cfg):
    first = runner.run(cfg, range(6), reduce=worker)
    pool = runner._pool
    second = runner.run(cfg, range(6), reduce=worker)
    assert runner._pool is pool
    pids = {pid for pid, _ in first + second}     # a new pool would bring new processes
    assert os.getpid() not in pids and len(pids) <= 2
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    expected = os.environ.get("CRMSIM_THREADS") or str(max(1, cores // 2))
    assert {threads for _, threads in first + second} == {expected}


def test_one_worker_or_one_seed_runs_in_this_process(cfg):
    one = Replicates(workers=1)
    assert one.run(cfg, SEEDS[:3]) == sequential(cfg, SEEDS[:3])
    assert {pid for pid, _ in one.run(cfg, [4, 8], reduce=worker)} == {os.getpid()}
    assert one._pool is None
    two = Replicates(workers=2)
    assert two.run(cfg, [4], reduce=worker)[0][0] == os.getpid() and two._pool is None
    assert simulate_replicates(cfg, [4], workers=2) == sequential(cfg, [4])


@pytest.mark.parametrize("kwargs, key", [
    ({"seeds": []}, "seeds"),
    ({"seeds": 3}, "seeds"),
    ({"seeds": "012"}, "seeds"),
    ({"seeds": [0, 1.5]}, "seeds"),
    ({"seeds": [0, True]}, "seeds"),
    ({"seeds": [0, -1]}, "seeds[1]"),
    ({"reduce": lambda r: r.summary}, "reduce"),
    ({"reduce": "summary"}, "reduce"),
])
def test_bad_arguments_are_named_before_any_work_starts(cfg, kwargs, key):
    runner = Replicates(workers=2)
    args = {"seeds": [0, 1], **kwargs}
    with pytest.raises(ConfigError) as err:
        runner.run(cfg, **args)
    assert err.value.key == key and "Allowed:" in str(err.value)
    assert runner._pool is None


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_a_bad_number_of_workers_is_named(workers):
    with pytest.raises(ConfigError) as err:
        Replicates(workers=workers)
    assert err.value.key == "workers" and ">= 1" in str(err.value)


def test_a_config_simulate_refuses_or_whose_values_follow_the_seed_is_refused(cfg):
    runner = Replicates(workers=2)
    bad = cfg.copy()
    bad.network.mean_degree = 1000          # more than n_people - 1
    with pytest.raises(ConfigError) as err:
        runner.run(bad, [0, 1])
    assert err.value.key == "network.mean_degree"
    with pytest.raises(ConfigError) as err:
        runner.run(["market.n_people=300"], [0, 1])
    assert err.value.key == "cfg"
    follows = cfg.copy()
    follows.study.uncertainty.draw = "${seed}"   # reseeding would keep draw at the first seed
    with pytest.raises(ConfigError) as err:
        runner.run(follows, [0, 1])
    assert err.value.key == "cfg" and "${seed}" in str(err.value)
    assert runner._pool is None


def test_a_failing_replicate_is_raised_and_the_next_call_starts_a_new_pool(cfg):
    with Replicates(workers=2) as runner:
        with pytest.raises(RuntimeError, match="seed 3 refused"):
            runner.run(cfg, [0, 1, 2, 3], reduce=fails_on_seed_3)
        assert runner._pool is None
        assert runner.run(cfg, [0, 1]) == sequential(cfg, [0, 1])
    assert runner._pool is None


SLEEPER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import crmsim

    def sleeper(result):           # a replicate that never ends; says which worker runs it
        Path(sys.argv[1], str(os.getpid())).touch()
        time.sleep(600)

    if __name__ == "__main__":
        cfg = crmsim.load_config(["market.n_people=300", "sim.steps=1"])
        crmsim.simulate_replicates(cfg, range(4), reduce=sleeper, workers=2)
""")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("how", ["SIGKILL", "Ctrl-C"])
def test_the_workers_stop_with_the_process_that_owns_them(tmp_path, how):
    # Killed (no clean-up of its own can run): the workers watch it and exit. Ctrl-C (to the
    # whole process group, as a terminal sends it): the workers ignore it, the owner stops them.
    script = tmp_path / "owner.py"
    script.write_text(SLEEPER)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], start_new_session=True,
                            stderr=subprocess.PIPE)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            workers = [int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()]
        assert len(workers) == 2 and proc.pid not in workers
        if how == "SIGKILL":
            os.kill(proc.pid, signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        if how == "Ctrl-C":
            assert b"KeyboardInterrupt" in err
        deadline = time.monotonic() + 20
        while any(map(_running, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_running, workers))
    finally:
        for pid in [proc.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# ---- calibration: each candidate's seeds on the pool, the numbers unchanged -----------------

@pytest.fixture(scope="module")
def target():
    cohorts = {"2024-01": [1000, 880, 800, 745], "2024-02": [900, 790, 720]}
    return calsim.cohort_target(cohorts, 365 / 12)


def test_calibration_moments_on_the_pool_are_the_sequential_ones(runner, target):
    base = calsim.base_config(target, [], n_start=150)
    values = {"market.churn.alpha": 0.7, "market.churn.beta": 2.2}
    seeds = [0, 1, 2, 3]
    want = []
    for s in seeds:            # the moments as calibration computed them one seed at a time
        one = base.copy()
        for k, v in values.items():
            OmegaConf.update(one, k, float(v))
        one.seed = s
        want.append(calsim.moments_of(crmsim.simulate(one), target))
    got = calsim.simulate_moments(target, values, base, seeds, runner)
    assert got.shape == (len(seeds), target.periods)
    np.testing.assert_array_equal(got, np.array(want))
    np.testing.assert_array_equal(calsim.simulate_moments(target, values, base, seeds), got)


def test_smm_finds_the_same_candidates_and_distances_with_any_number_of_workers(runner, target):
    start = {"market.churn.alpha": 0.8, "market.churn.beta": 2.5}
    fit = functools.partial(calsim.smm, target, start, [], 3, [0, 1], n_start=150)
    pooled, alone = fit(runner=runner), fit(runner=Replicates(workers=1))
    assert pooled.history == alone.history and pooled.best == alone.best


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_counts_every_replicate_once(cfg, workers):
    finished = []
    with Replicates(workers=workers) as runner:
        assert runner.run(cfg, SEEDS, progress=finished.append) == sequential(cfg, SEEDS)
    assert sum(finished) == len(SEEDS) and all(k >= 1 for k in finished)
    with pytest.raises(ConfigError, match="progress"):
        Replicates(workers=1).run(cfg, [0], progress="bar")


def test_several_configs_share_the_pool_and_come_back_per_call(runner, cfg):
    other = crmsim.load_config([*SMALL, "policy=idic"])
    got = runner.run_many([(cfg, SEEDS[:3]), (other, [4], worker), (other, [2, 6])])
    assert got[0] == sequential(cfg, SEEDS[:3])
    assert got[2] == sequential(other, [2, 6])
    assert got[1][0][0] != os.getpid()      # a config of one seed runs on the pool too
    with pytest.raises(ConfigError, match="calls"):
        runner.run_many([])
    with pytest.raises(ConfigError, match="calls"):
        runner.run_many([(cfg,)])
    with pytest.raises(ConfigError, match="seeds"):
        runner.run_many([(cfg, [0]), (other, [-1])])
