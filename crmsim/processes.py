"""How crmsim starts a pool of worker processes: one place for the sweep launcher
(``hydra_plugins/crmsim_local/launcher.py``) and the replicate runner (``crmsim.replicates``).

- ``workers``: how many processes (joblib's convention: -1 = one per core).
- ``context``: on Linux a forkserver that has imported crmsim once, so a worker starts in
  milliseconds (``spawn`` elsewhere). Python has one forkserver per process and its preloaded
  modules are fixed when it starts, so every pool's modules are listed in ``PRELOAD``.
- ``warm_up``: start the forkserver early, its imports beside the caller's own work.
- ``start``: the pool. Each worker sets itself up once (``_init``): the environment it is
  given, Ctrl-C left to the process that owns the pool, the threads per model
  (``crmsim.parallel``: the cores shared among the workers, so models of >= ``MIN_PEOPLE``
  people do not run more threads than there are cores; ``CRMSIM_THREADS`` when it is set), the
  owner's own set-up, then ``gc.freeze()``.
- ``stop``: shut a pool down, at once (``terminate``) after an error or Ctrl-C.
- ``watch_parent``: a worker exits as soon as the process that owns it is gone (killed,
  crashed): every worker of these pools, and a sweep's workers under any local launcher.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .errors import ConfigError
from .parallel import THREADS_ENV, available_cores

# Imported once by the forkserver, before it forks any worker: crmsim and each pool's worker
# functions (a missing module is skipped by the forkserver).
PRELOAD = ("crmsim.sweep", "crmsim.replicates", "hydra_plugins.crmsim_local.launcher")


def workers(n_jobs: int, key: str = "hydra.launcher.n_jobs") -> int:
    """Worker processes for ``n_jobs`` (joblib's convention: -1 = one per core, -2 = all but
    one ...); ``key`` names the setting in the error."""
    cores = os.cpu_count() or 1
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs == 0:
        raise ConfigError(key, n_jobs, "a whole number of worker processes other than 0, "
                          "e.g. 2, or -1 for one per core (-2: all but one)")
    return n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)


def context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(PRELOAD))
        return ctx
    return multiprocessing.get_context("spawn")


def warm_up() -> None:
    """Start the forkserver now (Linux; nothing elsewhere), so its import of crmsim runs beside
    what the caller does before its pool starts (a sweep's composing and checking), not after.
    Call it once the environment the workers' helper processes inherit is set
    (``crmsim.sweep.launch`` sets ``PYTHONWARNINGS`` first)."""
    if context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def threads_per_worker(n: int) -> str:
    """``CRMSIM_THREADS`` for the workers of a pool of ``n``: the caller's setting when it has
    one, else the available cores shared among the workers (1 when there are as many workers
    as cores)."""
    given = os.environ.get(THREADS_ENV, "").strip()
    return given or str(max(1, available_cores() // max(n, 1)))


def start(n: int, setup: Callable[..., None] | None = None, setup_args: tuple = (),
          env: Mapping[str, str] | None = None) -> ProcessPoolExecutor:
    """A pool of ``n`` worker processes; each runs ``setup(*setup_args)`` once (a module-level
    function, importable in the worker) after crmsim's own set-up, with ``env`` added to its
    environment."""
    env = {PARENT_ENV: owner(), **(env or {})}
    initargs = (env, threads_per_worker(n), setup, setup_args)
    return ProcessPoolExecutor(max_workers=n, mp_context=context(), initializer=_init,
                               initargs=initargs)


def _init(env: dict[str, str], threads: str, setup: Callable[..., None] | None,
          setup_args: tuple) -> None:
    os.environ.update(env)
    os.environ[THREADS_ENV] = threads
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the pool's owner's to handle
    watch_parent()
    if setup is not None:
        setup(*setup_args)
    # What the imports made lives as long as the worker: the garbage collector leaves it alone,
    # so its full collections during a job walk the job's objects, not ~150,000 of the
    # libraries' (~7 ms a job of 2,000 people).
    gc.freeze()


def stop(pool: ProcessPoolExecutor, terminate: bool = False) -> None:
    """Shut ``pool`` down: wait for its running jobs, or (``terminate``) cancel the queued
    ones and end its processes at once."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=not terminate, cancel_futures=True)
    if terminate:
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()


# ---------------------------------------------------------------------------------------------
# Workers stop with their owner: the process that started them (a pool's owner, a local sweep's
# process) is named in the environment; a worker watches it and exits when it is gone.

PARENT_ENV = "CRMSIM_SWEEP_PARENT"     # "<host>:<pid>" of the process that owns the workers
WATCH_SECONDS = 0.5
_watching = False


def owner() -> str:
    """``PARENT_ENV``'s value naming this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux), to tell it from a later one with its pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return None if fields[0] in ("Z", "X") else fields[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: str | None) -> bool:
    if Path("/proc/self/stat").exists():
        return started is not None and _start_time(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def watch_parent() -> None:
    """In a worker: exit as soon as its owner (``PARENT_ENV``: a pool's owner, a local sweep's
    process) is gone, and leave Ctrl-C to it (a terminal sends it to every process of the
    sweep; the owner stops the workers itself). Does nothing in the owner's own process, on
    another machine, or when ``PARENT_ENV`` is not set."""
    global _watching
    host, _, pid_text = os.environ.get(PARENT_ENV, "").rpartition(":")
    if _watching or not pid_text.isdigit() or host != socket.gethostname():
        return
    parent = int(pid_text)
    if parent == os.getpid():
        return
    _watching = True
    direct = os.getppid() == parent
    started = _start_time(parent)
    with contextlib.suppress(ValueError):     # only the main thread may set a handler
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(WATCH_SECONDS)
            # A child is handed to another parent the moment its parent dies.
            if (os.getppid() != parent) if direct else not _alive(parent, started):
                os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watch, name="crmsim-watch-parent", daemon=True).start()
