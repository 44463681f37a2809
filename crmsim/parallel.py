"""Both cores for one large model: independent array jobs on a small pool of threads.

numpy releases the GIL inside its loops over large arrays (ufuncs, ``np.random.Generator``'s
fills), so threads run them side by side. A model uses its ``Workers`` in three ways, and only
in ways that cannot change a single number:

- ``blockwise``: an element-wise function (each output element depends only on the same
  element of the inputs) evaluated on blocks of people, the blocks shared out among the
  threads. Every element goes through the same operations in the same order as on the whole
  arrays, so the result is identical to the last bit (``tests/test_parallel.py`` checks a
  whole run against a one-thread run).
- ``soon``: a job whose inputs no phase before its use changes (the contagion exposure, from
  the last step's lapses), started on a worker while the calling thread goes on.
- ``ahead``: a random stream's draws for the next step, made by a worker while the model works
  through the current one (``Ahead``). Each stream is drawn by one thread at a time, block
  after block in the order the model takes them, so every stream yields the same numbers as
  when the model draws them itself.

How many threads: the environment variable ``CRMSIM_THREADS`` (a whole number >= 1; 1 turns
threading off), by default the cores this process may use. Models of fewer than
``MIN_PEOPLE`` people always run on one thread: their arrays are too short for a thread to pay
for its hand-over (and a sweep already keeps the cores busy with whole runs).
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial

import numpy as np

from .errors import ConfigError

THREADS_ENV = "CRMSIM_THREADS"
MIN_PEOPLE = 1 << 16   # smaller models run on one thread
BLOCK = 1 << 16        # people per block of element-wise work (~0.5 MB per float64 array)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_wanted() -> int:
    """The threads ``CRMSIM_THREADS`` asks for (the available cores when it is unset)."""
    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return available_cores()
    try:
        threads = int(text)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ConfigError(f"{THREADS_ENV} (environment variable)", text,
                          "a whole number >= 1 (1: one thread; unset: every available core)")
    return threads


NOW, LATER = 0, 1   # job priorities: what the model waits for, then draws for the next step


class _Pool:
    """Worker threads taking jobs by priority (``NOW`` before ``LATER``), then in order.

    A step's element-wise blocks are needed at once, the next step's draws only later, so a
    worker helps with the blocks first and draws while the model works on its own. The threads
    end when the pool is garbage-collected."""

    def __init__(self, threads: int) -> None:
        self._jobs: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        for _ in range(threads):
            threading.Thread(target=_serve, args=(self._jobs,), name="crmsim-worker",
                             daemon=True).start()
        weakref.finalize(self, _stop, self._jobs, threads)

    def submit(self, job: Callable[[], object], priority: int) -> Future:
        future: Future = Future()
        self._jobs.put((priority, next(self._order), future, job))
        return future


def _serve(jobs: queue.PriorityQueue) -> None:
    while True:
        _, _, future, job = jobs.get()
        if future is None:
            return
        if future.set_running_or_notify_cancel():   # False: cancelled, the caller ran it
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to whoever waits for the result
                future.set_exception(exc)
        del future, job   # an idle worker must not keep a model alive


def _stop(jobs: queue.PriorityQueue, threads: int) -> None:
    for i in range(threads):
        jobs.put((LATER + 1, i, None, None))


class Workers:
    """A model's threads: the calling thread plus ``threads - 1`` workers (none for one)."""

    def __init__(self, threads: int) -> None:
        self.threads = max(int(threads), 1)
        self._pool = _Pool(self.threads - 1) if self.threads > 1 else None

    @classmethod
    def for_people(cls, n: int) -> Workers:
        wanted = threads_wanted()   # checked whatever the size: a bad value is always an error
        return cls(wanted if n >= MIN_PEOPLE else 1)

    def run(self, *jobs: Callable[[], object]) -> list:
        """Run independent jobs (callables without arguments); their results in order. The
        calling thread runs the first and any that no worker has started by then."""
        if self._pool is None or len(jobs) < 2:
            return [job() for job in jobs]
        others = [self.soon(job) for job in jobs[1:]]
        return [jobs[0](), *(job.result() for job in others)]

    def blockwise(self, fn: Callable, per_element: tuple, *whole):
        """``fn(*per_element, *whole)`` for an element-wise ``fn``: the arrays in
        ``per_element`` (all of one length; numbers there are passed as they are) are cut into
        blocks of ``BLOCK`` elements, shared among the threads, and ``whole`` is passed to every
        block unchanged. ``fn`` returns an array or a tuple of arrays; so does this."""
        if self._pool is None:
            return fn(*per_element, *whole)
        n = max((np.shape(a)[0] for a in per_element if np.ndim(a)), default=0)
        if n <= BLOCK:
            return fn(*per_element, *whole)
        starts = range(0, n, BLOCK)
        parts: list = [None] * len(starts)
        todo = iter(enumerate(starts))   # next() on it is atomic: each block is taken once

        def work() -> None:
            for i, lo in todo:
                cut = slice(lo, lo + BLOCK)
                parts[i] = fn(*(a[cut] if np.ndim(a) else a for a in per_element), *whole)

        self.run(*[work] * self.threads)
        if isinstance(parts[0], tuple):
            return tuple(np.concatenate(p) for p in zip(*parts, strict=True))
        return np.concatenate(parts)

    def soon(self, job: Callable[[], object]) -> Soon:
        """Start ``job`` (which must not use these workers) on a worker now, beside the calling
        thread's next work; ``result()`` waits for it, or runs it in the calling thread if no
        worker has started it by then (with one thread: when the result is asked for)."""
        return Soon(job, self._pool.submit(job, NOW) if self._pool is not None else None)

    def later(self, job: Callable[[], object]) -> Future | None:
        """Start ``job`` on a worker when it has nothing more urgent to do (None with one
        thread: nothing is started)."""
        return self._pool.submit(job, LATER) if self._pool is not None else None

    def __getstate__(self) -> dict:
        return {"threads": self.threads}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["threads"])


class Soon:
    """A job started by ``Workers.soon``."""

    def __init__(self, job: Callable[[], object], future: Future | None) -> None:
        self._job, self._future = job, future

    def result(self):
        if self._future is None or self._future.cancel():
            return self._job()
        return self._future.result()


class Ahead:
    """One random stream's draws, one step's worth at a time, the next made ahead by a worker.

    ``draw(rng, spare)`` makes one step's draws from the stream; ``take()`` returns the next
    step's and, with more than one thread, starts drawing the one after. Every draw from the
    stream must go through ``take`` (a draw made beside it would fall between two steps' blocks).

    ``spare`` is a block this stream handed out before and the model is done with (None at
    first): ``draw`` may fill it again (numpy's ``out=``) instead of new memory, which the
    kernel would otherwise zero page by page every step. A block is therefore valid until the
    model takes the stream's next one; nothing may keep it longer.
    """

    def __init__(self, workers: Workers, rng: np.random.Generator,
                 draw: Callable[[np.random.Generator, object], object]) -> None:
        self._workers, self._rng, self._draw = workers, rng, draw
        self._next: Future | None = None
        self._taken = None   # the block the model has now

    def _make(self, spare):
        return self._draw(self._rng, spare)

    def take(self):
        done, self._taken = self._taken, None   # the model is done with the last block
        if self._next is not None:
            block = self._next.result()
        else:
            block, done = self._make(done), None
        self._next = self._workers.later(partial(self._make, done))
        self._taken = block
        return block

    def settle(self) -> None:
        """Wait until the block drawn ahead is made, so the generator stands after it."""
        if self._next is not None:
            self._next.result()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self._next is not None:   # a block drawn ahead travels as it is
            state["_next"] = _Done(self._next.result())
        return state


class _Done:
    """A finished ``Future``'s stand-in (picklable)."""

    def __init__(self, value: object) -> None:
        self.value = value

    def result(self):
        return self.value
