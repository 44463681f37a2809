"""One model on several threads (crmsim/parallel.py) gives the numbers of one thread, bit for bit.

Threads only start for large markets (``MIN_PEOPLE``) and split work into blocks of ``BLOCK``
people; both are lowered here so that a small market goes through every threaded path: draws
made ahead by a worker, element-wise phases on many blocks, independent jobs side by side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmsim import parallel
from crmsim.errors import ConfigError
from crmsim.model import CRMModel

PEOPLE, STEPS = 2000, 12


def _run(monkeypatch, threads: int, *overrides: str) -> CRMModel:
    monkeypatch.setenv(parallel.THREADS_ENV, str(threads))
    model = CRMModel([f"market.n_people={PEOPLE}", f"sim.steps={STEPS}", "seed=11", *overrides])
    assert model.workers.threads == threads
    for _ in range(STEPS):
        model.step()
    return model


@pytest.mark.parametrize("overrides", [(), ("policy=gartner", "market.purchase.kind=noncontractual")],
                         ids=["default", "gartner-noncontractual"])
def test_two_threads_give_the_one_thread_results_bit_for_bit(monkeypatch, overrides):
    monkeypatch.setattr(parallel, "MIN_PEOPLE", 0)
    monkeypatch.setattr(parallel, "BLOCK", 97)   # ~20 uneven blocks of 2000 people
    one = _run(monkeypatch, 1, *overrides)
    two = _run(monkeypatch, 2, *overrides)
    pd.testing.assert_frame_equal(one.timeseries(), two.timeseries(), check_exact=True)
    arrays = {k for k, v in vars(one.population).items() if isinstance(v, np.ndarray)}
    assert arrays
    for name in sorted(arrays):
        a, b = getattr(one.population, name), getattr(two.population, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name
    # The next step's draws are the same too (two threads have already drawn them ahead).
    for name, ahead in one.draws.items():
        a, b = ahead.take(), two.draws[name].take()
        first = (a, b) if isinstance(a, np.ndarray) else (a.meet, b.meet)
        assert np.array_equal(*first), name


def test_blockwise_returns_what_the_whole_call_returns(monkeypatch):
    monkeypatch.setattr(parallel, "BLOCK", 10)
    x = np.linspace(-3.0, 3.0, 95)
    y = np.arange(95) % 3 == 0

    def fn(x, y, shift):
        return np.exp(x) + shift, np.where(y, -x, x)

    whole = fn(x, y, 0.5)
    blocks = parallel.Workers(2).blockwise(fn, (x, y), 0.5)
    for a, b in zip(whole, blocks, strict=True):
        assert np.array_equal(a, b)


def test_a_job_started_soon_gives_its_result_once_whoever_runs_it():
    import threading

    calls = []

    def job():
        calls.append(threading.current_thread() is threading.main_thread())
        return len(calls)

    lazy = parallel.Workers(1).soon(job)
    assert calls == []                      # one thread: run when its result is asked for
    assert lazy.result() == 1 and calls == [True]
    two = parallel.Workers(2)
    started = threading.Event()
    release = threading.Event()
    blocker = two.soon(lambda: (started.set(), release.wait(10)))
    started.wait(10)
    queued = two.soon(job)                   # the only worker is busy: nobody has started it
    assert queued.result() == 2 and calls == [True, True]   # so the calling thread ran it
    release.set()
    blocker.result()
    done = two.soon(job)
    assert done.result() == 3 and len(calls) == 3


@pytest.mark.parametrize("threads", [1, 2])
def test_a_stream_drawn_into_its_spare_blocks_is_the_stream_drawn_afresh(threads):
    """``Ahead`` hands the block the model is done with back to ``draw`` to fill again: the
    numbers are those of a generator drawing new arrays, and after the first steps no new
    memory is taken (one block in use on one thread, two on two: one taken, one drawn ahead)."""
    fresh = np.random.default_rng(5)
    ahead = parallel.Ahead(parallel.Workers(threads), np.random.default_rng(5),
                           lambda rng, spare: rng.random((2, 7), out=spare))
    seen = set()
    for step in range(6):
        block = ahead.take()
        assert np.array_equal(block, fresh.random((2, 7))), step
        seen.add(id(block))
        block = None   # the model keeps no block past its step
    assert len(seen) == threads


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_thread_count_names_the_variable(monkeypatch, value):
    monkeypatch.setenv(parallel.THREADS_ENV, value)
    with pytest.raises(ConfigError, match=parallel.THREADS_ENV):
        parallel.Workers.for_people(10)   # even where one thread would be used anyway


def test_small_markets_stay_on_one_thread(monkeypatch):
    monkeypatch.setenv(parallel.THREADS_ENV, "2")
    assert parallel.Workers.for_people(parallel.MIN_PEOPLE - 1).threads == 1
    assert parallel.Workers.for_people(parallel.MIN_PEOPLE).threads == 2


def test_worker_threads_end_with_their_model():
    import gc
    import threading
    import time

    def settled() -> int:   # threads of models made by earlier tests end after collection
        gc.collect()
        deadline = time.monotonic() + 5.0
        count = threading.active_count()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if threading.active_count() == count:
                return count
            count = threading.active_count()
        return count

    before = settled()
    for seed in range(5):
        workers = parallel.Workers(2)
        ahead = parallel.Ahead(workers, np.random.default_rng(seed), lambda rng, spare: rng.random(4))
        ahead.take()
        ahead.take()   # leaves a draw made ahead, as a finished run does
        del workers, ahead
    assert settled() == before


def test_a_bad_thread_count_stops_the_config_before_anything_runs(monkeypatch):
    import crmsim

    monkeypatch.setenv(parallel.THREADS_ENV, "0")
    with pytest.raises(ConfigError, match="whole number >= 1"):
        crmsim.load_config(["market.n_people=200"])


@pytest.mark.parametrize("threads", [1, 2])
def test_a_model_copied_mid_run_goes_on_with_the_same_numbers(monkeypatch, threads):
    """A model's streams are copied with the block in use and the one drawn ahead (``Ahead``),
    so a copy made between two steps steps on exactly as the original does."""
    import copy

    monkeypatch.setattr(parallel, "MIN_PEOPLE", 0)
    monkeypatch.setattr(parallel, "BLOCK", 97)
    monkeypatch.setenv(parallel.THREADS_ENV, str(threads))
    model = CRMModel([f"market.n_people={PEOPLE}", f"sim.steps={STEPS}", "seed=4"])
    for _ in range(STEPS // 2):
        model.step()
    twin = copy.deepcopy(model)
    for m in (model, twin):
        for _ in range(STEPS - STEPS // 2):
            m.step()
    pd.testing.assert_frame_equal(model.timeseries(), twin.timeseries(), check_exact=True)
