"""Replicates: one config run on many seeds, on a pool of worker processes::

    from crmsim import Replicates, load_config

    if __name__ == "__main__":      # in a script: the workers import it
        cfg = load_config(["market.n_people=1000", "sim.steps=52"])
        with Replicates(workers=2) as runner:        # the pool starts once ...
            a = runner.run(cfg, range(100))           # ... 100 summaries, in seed order
            b = runner.run(other_cfg, range(100))     # ... and serves every later call

Each replicate is exactly ``crmsim.simulate`` of the config with that seed (the same typed
config, so the same numbers to the last bit; ``tests/test_replicates.py`` checks it). What
``simulate`` does per run and does not depend on the seed is done once per call, in the calling
process: the config is checked (``ConfigError`` before any work starts), resolved and pickled
once (the bytes go with each of the call's few chunks of seeds), and each worker decodes them
once per config (``run_many``: several configs, their replicates sharing the pool); a worker
gives each seed a copy of the checked config with that seed
(``validation.reseeded``, every constraint checked again, no merge into the schema).
``reduce`` (a module-level function of a ``Result``) runs in the worker, so only what it
returns comes back: by default the run's summary (``summary``).

A worker steps its seeds together, as one array axis (``crmsim.stacked``: ~3x less CPU per
replicate for a 1,000-person market), up to ``STACK_PEOPLE`` people at a time, and gets one
chunk of seeds per call for that; what cannot be stacked (``stacked.stackable``: the
non-contractual market, the event log, the complete network) runs seed by seed.

The pool is crmsim's (``crmsim.processes``, shared with the sweep launcher): a forkserver that
has imported crmsim (~1.5 s, once per process), workers that leave Ctrl-C to this process, exit
when it is gone, and share the cores (a model of >= ``crmsim.parallel.MIN_PEOPLE`` people gets
``cores // workers`` threads: one on 2 cores with 2 workers). ``workers=1``, or a single
replicate in all, runs in this process without a pool.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
import os
import pickle
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any

from omegaconf import DictConfig, OmegaConf, read_write
from omegaconf.errors import OmegaConfBaseException

from . import checks, processes, validation
from .config import CRMConfig, seedless
from .errors import ConfigError
from .result import Result
from .running import checked, run_checked, run_stacked
from .stacked import stackable

CHUNKS_PER_WORKER = 4   # seeds run one by one go out in this many chunks per worker: even shares
STACK_PEOPLE = 1 << 16   # replicates step together up to this many people (crmsim.stacked)


def summary(result: Result) -> dict:
    """The default ``reduce``: the run's summary (``Result.summary``, ~1 KB pickled), what a
    verdict over replicates compares. A whole ``Result`` of 1,000 people over a year of weekly
    steps pickles to ~200 KB (much more with events): a ``reduce`` of your own computes what it
    needs from the tables in the worker."""
    return result.summary


class Replicates:
    """Runs configs on many seeds with a pool of ``workers`` processes (None: one per core),
    started at the first call that needs it and reused by every later one until ``close()``
    (or the end of a ``with`` block). An error or Ctrl-C during a call ends the pool's
    processes at once and is raised; the next call starts a new pool."""

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and (not isinstance(workers, numbers.Integral)
                                    or isinstance(workers, bool) or workers < 1):
            raise ConfigError("workers", workers, "a whole number >= 1 (1: in this process, no "
                              "pool), or None for one per core")
        self.workers = processes.workers(-1) if workers is None else int(workers)
        self._pool: ProcessPoolExecutor | None = None
        self._stop: weakref.finalize | None = None
        self._calls = itertools.count()

    def run(self, cfg: DictConfig, seeds: Iterable[int],
            reduce: Callable[[Result], Any] = summary,
            progress: Callable[[int], object] | None = None) -> list:
        """``reduce(crmsim.simulate(cfg with seed s))`` for each ``s`` of ``seeds``, in their
        order (``cfg``'s own seed is not used). ``reduce``: a module-level function (or a
        ``functools.partial`` of one), as it is sent to the workers. ``progress``, if given,
        is called in this process with how many replicates have just finished (a progress
        bar's ``update``): after each one, or each chunk of seeds a worker sends back."""
        return self.run_many([(cfg, seeds, reduce)], progress)[0]

    def run_many(self, calls: Iterable[tuple], progress: Callable[[int], object] | None = None
                 ) -> list[list]:
        """``run`` for several configs at once: ``calls`` holds ``(cfg, seeds)`` or
        ``(cfg, seeds, reduce)``; one list of results per call, in their order. Every config
        is checked before any replicate runs, and the replicates of all of them share the pool
        (a worker done with one config's goes on with the next's, and a config of one seed
        runs beside the others): ``crmsim.compare`` runs its variants so."""
        calls = _check_calls(calls)
        if progress is not None and not callable(progress):
            raise ConfigError("progress", progress, "None or a function of the number of "
                              "replicates just finished, e.g. a tqdm bar's update")
        jobs = [(_job(cfg, reduce), seeds) for cfg, seeds, reduce in calls]
        done = progress or (lambda _: None)
        if self.workers == 1 or sum(len(seeds) for _, seeds in jobs) == 1:
            results = []
            for job, seeds in jobs:
                results.append([])
                for group in _groups(job, seeds):
                    results[-1].extend(_replicates(job, group))
                    done(len(group))
            return results
        pool = self._start()
        futures: list[list[Future]] = []
        try:
            for job, seeds in jobs:
                data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
                token = (os.getpid(), id(self), next(self._calls))
                # Seeds that step together go out in one chunk per worker: the more of them
                # a chunk stacks, the less each costs.
                chunks = self.workers * (1 if stackable(job[0]) else CHUNKS_PER_WORKER)
                size = math.ceil(len(seeds) / chunks)
                futures.append([pool.submit(_run_chunk, token, data, seeds[lo:lo + size])
                                for lo in range(0, len(seeds), size)])
            for f in as_completed([f for chunks in futures for f in chunks]):
                done(len(f.result()))
            return [[out for f in chunks for out in f.result()] for chunks in futures]
        except BaseException:     # a replicate failed, a worker died, or Ctrl-C
            self.close(terminate=True)
            raise

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = processes.start(self.workers)
            self._stop = weakref.finalize(self, processes.stop, self._pool, True)
        return self._pool

    def close(self, terminate: bool = False) -> None:
        """Stop the pool (``terminate``: without waiting for running replicates)."""
        pool, self._pool = self._pool, None
        if self._stop is not None:
            self._stop.detach()
            self._stop = None
        if pool is not None:
            processes.stop(pool, terminate)

    def __enter__(self) -> Replicates:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(terminate=kind is not None)


def simulate_replicates(cfg: DictConfig, seeds: Iterable[int],
                        reduce: Callable[[Result], Any] = summary,
                        workers: int | None = None) -> list:
    """One call of ``Replicates(workers).run(cfg, seeds, reduce)``, its pool stopped after it:
    to run several configs, keep a ``Replicates`` open instead."""
    with Replicates(workers) as runner:
        return runner.run(cfg, seeds, reduce)


# ---------------------------------------------------------------------------------------------
# The arguments, checked before anything runs

_SEED = next(f for f in dataclasses.fields(CRMConfig) if f.name == "seed").metadata["constraint"]


def check_seeds(seeds: Iterable[int]) -> list[int]:
    """``seeds`` as a list of ints, or ``ConfigError``: one or more whole numbers the schema
    allows as ``seed``."""
    allowed = f"one or more seeds, each {_SEED.describe()}, e.g. range(100)"
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Iterable):
        raise ConfigError("seeds", seeds, allowed)
    seeds = list(seeds)
    if not seeds or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                            for s in seeds):
        raise ConfigError("seeds", seeds, allowed)
    out = [int(s) for s in seeds]
    for i, s in enumerate(out):
        _SEED.check(f"seeds[{i}]", s)
    return out


def _check_calls(calls: Iterable[tuple]) -> list[tuple[DictConfig, list[int], Callable]]:
    """``run_many``'s calls as (cfg, seeds, reduce) with checked seeds and reduce, or
    ``ConfigError``."""
    allowed = "one or more (cfg, seeds) or (cfg, seeds, reduce) tuples"
    if isinstance(calls, str | bytes) or not isinstance(calls, Iterable):
        raise ConfigError("calls", calls, allowed)
    calls = list(calls)
    if not calls or not all(isinstance(c, tuple) and len(c) in (2, 3) for c in calls):
        raise ConfigError("calls", calls, allowed)
    out = []
    for cfg, seeds, *reduce in calls:
        reduce = reduce[0] if reduce else summary
        check_reduce(reduce)
        out.append((cfg, check_seeds(seeds), reduce))
    return out


def check_reduce(reduce: Callable[[Result], Any]) -> None:
    allowed = ("a module-level function of a Result (it runs in the worker processes), or a "
               "functools.partial of one, e.g. crmsim.replicates.summary")
    if not callable(reduce):
        raise ConfigError("reduce", reduce, allowed)
    try:
        pickle.dumps(reduce, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise ConfigError("reduce", reduce, allowed, f"It cannot be pickled: {err}") from None


def _job(cfg: DictConfig, reduce: Callable[[Result], Any]) -> tuple:
    """What every replicate of ``cfg`` shares: the checked typed config, its resolved
    container and ``reduce``; ``ConfigError`` for a config ``simulate`` refuses or whose other
    values depend on its seed (``reseeded`` could not make its replicates)."""
    typed, resolved = checked(cfg)
    checks.check_memory(typed)
    if resolved is None:
        resolved = OmegaConf.to_container(OmegaConf.structured(typed), resolve=True,
                                          enum_to_str=True)
    elif _depends_on_seed(cfg, resolved):
        raise ConfigError("cfg", "a config whose values depend on its seed", "a config in which "
                          "only the seed differs between replicates (no ${seed} interpolation); "
                          "run crmsim.simulate on each seed instead")
    return typed, resolved, reduce


def _depends_on_seed(cfg: DictConfig, resolved: dict) -> bool:
    other = cfg.copy()
    with read_write(other):
        other.seed = int(resolved["seed"]) + 1
    try:
        again = OmegaConf.to_container(other, resolve=True, enum_to_str=True)
    except OmegaConfBaseException:
        return True
    return seedless(again) != (seedless(resolved)[0], int(resolved["seed"]) + 1)


# ---------------------------------------------------------------------------------------------
# The work, in a worker (or in the calling process)

_decoded: dict[tuple, Any] = {}    # this worker's latest jobs, by token (run_many sends several)
DECODED = 8   # jobs a worker keeps decoded (a chunk of one dropped brings its bytes again)


def _run_chunk(token: tuple, data: bytes, seeds: list[int]) -> list:
    if token not in _decoded:
        while len(_decoded) >= DECODED:
            del _decoded[next(iter(_decoded))]   # the oldest
        _decoded[token] = pickle.loads(data)
    job = _decoded[token]
    return [out for group in _groups(job, seeds) for out in _replicates(job, group)]


def _groups(job: tuple, seeds: list[int]) -> list[list[int]]:
    """The seeds in groups that step together (``crmsim.stacked``): as many as make up to
    ``STACK_PEOPLE`` people, each seed alone when the config cannot be stacked."""
    typed = job[0]
    size = max(STACK_PEOPLE // typed.market.n_people, 1) if stackable(typed) else 1
    return [seeds[lo:lo + size] for lo in range(0, len(seeds), size)]


def _replicates(job: tuple, seeds: list[int]) -> list:
    """``reduce`` of each seed's run: stepped together when there are several."""
    typed, resolved, reduce = job
    configs = [validation.reseeded(typed, s) for s in seeds]
    data = pickle.dumps(resolved, protocol=pickle.HIGHEST_PROTOCOL)   # a copy each: ~5x a deepcopy's speed
    containers = [{**pickle.loads(data), "seed": s} for s in seeds]
    if len(seeds) == 1:
        return [reduce(run_checked(configs[0], containers[0]))]
    return [reduce(result) for result in run_stacked(configs, containers)]
