"""``python -m benchmarks.sweeps``: what a sweep costs beyond its simulations.

Runs a sweep exactly as a user does (``crmsim run -m ...`` in a fresh process, report
included) and compares the CPU time of the whole process tree (the sweep's process, the process
server, every worker: this process adopts them all as a child subreaper, so none escapes the
count) with the sum of the simulation times the jobs record (``timing.simulation_cpu_s`` in
each summary.json: building the model, stepping it, its tables). Both numbers come from the
same run, so their ratio holds on a busy machine too; the wall time does not.

Cases (issue 18's targets: overhead ratio <= 1.15; the main job in <= 35 s wall on 2 idle cores):

- ``compare_policies``: ``make run``'s job, ``crmsim run -m experiment=compare_policies``
  (6 frameworks x 20 seeds, 10,000 people, 10 years of 30-day steps);
- ``small``: 200 runs of a 2,000-person market (the default model, seeds 0-199).

After the sweep, ``--check N`` runs N of its jobs again in this process with
``crmsim.simulate`` and checks their time series are identical to the last bit. The CPU time
is also split by process (the sweep's, the process server's, the workers'), from /proc
sampled every 0.1 s while the sweep runs: what each part of the overhead costs.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
TARGET_OVERHEAD = 1.15
TARGET_MAIN_JOB_S = 35.0

CASES = {
    "compare_policies": ["experiment=compare_policies"],
    "small": ["market.n_people=2000", "seed=range(0,200)"],
}


def _adopt_orphans() -> None:
    """Make this process the reaper of every descendant (Linux): a worker whose parent exits
    first is then waited for here, and its CPU time counted in RUSAGE_CHILDREN."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _children() -> dict[int, str]:
    """This process's children (pid: state and command line), from /proc."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            if int(fields[1]) == os.getpid():
                found[int(pid)] = (f"{fields[0]}: "
                                   + Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:200])
        except OSError:
            pass
    return found


def _reap(ours: set[int], timeout: float = 30.0) -> None:
    """Wait for every child but ``ours`` (this process's own helpers, such as a
    multiprocessing resource tracker started by ``--check``) to end, and reap it."""
    end = time.monotonic() + timeout
    while True:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                break
        left = {pid: what for pid, what in _children().items() if pid not in ours}
        if not left:
            return
        if time.monotonic() > end:
            raise TimeoutError("processes of the sweep still running: "
                               + "; ".join(f"{pid} ({what})" for pid, what in left.items()))
        time.sleep(0.05)


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds so far) of a live process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _watch_tree(proc: subprocess.Popen, every: float = 0.1) -> dict[str, float]:
    """Wait for ``proc`` while sampling the CPU time of it and its descendants, split into the
    sweep's process, the process server and its workers (the processes it forks), and helpers
    (a resource tracker). Each process's last tenth of a second may be missed: an
    approximation of the split; the subreaper's total is exact."""
    last: dict[int, tuple[str, float]] = {}
    while proc.poll() is None:
        stats = {int(pid): st for pid in os.listdir("/proc") if pid.isdigit()
                 and (st := _stat(int(pid))) is not None}
        roles = {proc.pid: "sweep"}
        for _ in range(3):     # the sweep's children, then theirs
            for pid, (parent, _) in stats.items():
                if parent in roles and pid not in roles:
                    try:
                        command = Path(f"/proc/{pid}/cmdline").read_text()
                    except OSError:
                        continue
                    roles[pid] = ("server" if "forkserver" in command and roles[parent] == "sweep"
                                  else "worker" if roles[parent] in ("server", "worker")
                                  else "helper")
        for pid, role in roles.items():
            if pid in stats:
                last[pid] = (role, stats[pid][1])
        time.sleep(every)
    split = dict.fromkeys(("sweep", "server", "worker", "helper"), 0.0)
    for role, cpu in last.values():
        split[role] += cpu
    return split


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure(case: str, extra: list[str], check: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="crmsim-bench-") as tmp:
        env = {**os.environ, "CRMSIM_RESULTS": tmp}
        command = [sys.executable, "-m", "crmsim.cli", "run", "-m", "-q", *CASES[case], *extra]
        load = os.getloadavg()[0]
        ours = set(_children())
        before = _cpu_children()
        start = time.perf_counter()
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(command, env=env, cwd=tmp, stdout=subprocess.DEVNULL,
                                    stderr=err, text=True)
            split = _watch_tree(proc)
            wall = time.perf_counter() - start
            _reap(ours)
            cpu = _cpu_children() - before
            if proc.returncode != 0:
                err.seek(0)
                raise SystemExit(f"the sweep failed ({proc.returncode}):\n{err.read()[-3000:]}")
        docs = [(p.parent, json.loads(p.read_text())) for p in Path(tmp).rglob("summary.json")
                if "report" not in p.parts]
        sim_cpu = sum(d["timing"]["simulation_cpu_s"] for _, d in docs)
        sim_wall = sum(d["timing"]["simulation_wall_s"] for _, d in docs)
        identical = _check(docs[:check]) if check else None
        return {"case": case, "command": " ".join(["crmsim", *command[3:]]), "jobs": len(docs),
                "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                "simulation_cpu_s": round(sim_cpu, 1), "simulation_wall_s": round(sim_wall, 1),
                "overhead_ratio": round(cpu / sim_cpu, 3), "load_avg_1min": round(load, 2),
                "sweep_process_cpu_s": round(split["sweep"], 1),
                "process_server_cpu_s": round(split["server"], 1),
                "workers_cpu_s": round(split["worker"], 1),
                "checked_identical": identical, "cores": os.cpu_count(),
                "run": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _check(docs: list[tuple[Path, dict]]) -> str:
    """Run jobs again from the configs they saved; their time series must be identical."""
    from omegaconf import OmegaConf

    import crmsim

    for job_dir, _ in docs:
        again = crmsim.simulate(OmegaConf.load(job_dir / "config.yaml")).timeseries
        pd.testing.assert_frame_equal(again, pd.read_parquet(job_dir / "timeseries.parquet"),
                                      check_exact=True)
    return f"{len(docs)} of {len(docs)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweeps", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", metavar="case",
                        help=f"which sweeps: {', '.join(CASES)} (default: both)")
    parser.add_argument("--check", type=int, default=2, metavar="N",
                        help="jobs run again in this process and compared bit for bit (default 2)")
    parser.add_argument("--out", type=Path, default=HERE / "sweeps.csv",
                        help="rows are appended here (default benchmarks/sweeps.csv)")
    parser.epilog = "Overrides for every case go after --, e.g. -- hydra.launcher.n_jobs=2"
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}: choose from {', '.join(CASES)}")
    if sys.platform != "linux":
        raise SystemExit("python -m benchmarks.sweeps counts a process tree's CPU time: Linux only")
    _adopt_orphans()
    rows = []
    for case in args.cases or list(CASES):
        row = measure(case, extra, args.check)
        rows.append(row)
        verdict = "met" if row["overhead_ratio"] <= TARGET_OVERHEAD else "not met"
        print(f"{case}: {row['jobs']} jobs, {row['wall_s']} s wall, {row['cpu_s']} s CPU for "
              f"{row['simulation_cpu_s']} s of simulation: overhead x{row['overhead_ratio']} "
              f"(target <= {TARGET_OVERHEAD}: {verdict}); load {row['load_avg_1min']}; "
              f"identical on rerun: {row['checked_identical']}", flush=True)
        beyond = (row["workers_cpu_s"] - row["simulation_cpu_s"]) / row["jobs"] * 1e3
        print(f"  CPU by process (sampled every 0.1 s): the sweep's {row['sweep_process_cpu_s']} s, "
              f"the process server's {row['process_server_cpu_s']} s, the workers' "
              f"{row['workers_cpu_s']} s ({beyond:.0f} ms a job beyond its simulation)", flush=True)
    frame = pd.DataFrame(rows)
    if args.out.exists():
        frame = pd.concat([pd.read_csv(args.out), frame], ignore_index=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(args.out)
    print(f"rows appended to {args.out}")


if __name__ == "__main__":
    main()
