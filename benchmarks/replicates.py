"""``python -m benchmarks.replicates``: many replicates of a small market on the replicate runner.

Issue 18's case: 100 replicates x 1,000 people x 52 weekly steps (``market.n_people=1000
sim.steps=52``, seeds 0-99), target <= 1 s on 2 cores. Measured in one process, in this order:

- ``sequential``: ``crmsim.simulate`` on each seed, one after the other (after one warm-up run
  of another seed);
- ``runner, 1 worker``: ``crmsim.Replicates(workers=1)``, in this process (the config checked
  once per call instead of once per seed);
- ``runner, N workers, cold``: a new ``Replicates(workers=N)`` and its first call: the pool's
  start-up (the forkserver importing crmsim, the workers) included;
- ``runner, N workers, warm``: a second call on the same pool.

A worker steps its seeds together as one array axis (``crmsim.stacked``). ``--grow [R ...]``
measures instead how a replicate's CPU time falls as R of them step together in this process.

Wall time, and CPU time of this process plus every process it started (the forkserver and the
workers, read from ``/proc`` while they are alive: Linux only). On a shared machine the other
processes' CPU time over the same interval (``others_cpu_s``: the machine's busy time from
``/proc/stat`` minus ours) says how much of the cores they took; a core's worth for the whole
interval means the workers shared one core. The rows keep the 1-minute load average too; each
case's results are checked identical to the sequential ones. Rows are
appended to ``benchmarks/replicates.csv`` (one atomic rename, earlier rows kept).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_S = 1.0          # issue 18: 100 x 1,000 people x 52 steps on 2 cores
COLUMNS = ["run", "code", "case", "workers", "replicates", "people", "steps", "wall_s", "cpu_s",
           "per_replicate_cpu_ms", "others_cpu_s", "identical", "load_avg_1min", "cores", "cpu",
           "python", "numpy"]


def _descendants_cpu() -> float:
    """CPU seconds (user + system, with their reaped children's) of every live process
    descended from this one, from /proc."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        pid = int(name)
        parent[pid] = int(fields[1])
        cpu[pid] = sum(int(f) for f in fields[11:15]) / tick   # utime stime cutime cstime
    me, total = os.getpid(), 0.0
    for pid in cpu:
        up = parent.get(pid)
        while up is not None and up not in (me, 0, 1):
            up = parent.get(up)
        if up == me and pid != me:
            total += cpu[pid]
    return total


def _tree_cpu() -> float:
    return time.process_time() + _descendants_cpu()


def _machine_busy() -> float:
    """CPU seconds every core of the machine has been busy since boot (``/proc/stat``)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")   # minus idle, iowait


class _Clock:
    """Wall time, our process tree's CPU time and the machine's busy time, from ``start``."""

    def start(self) -> None:
        self.wall, self.cpu, self.busy = time.perf_counter(), _tree_cpu(), _machine_busy()

    def read(self) -> tuple[float, float, float]:
        cpu = _tree_cpu() - self.cpu
        return time.perf_counter() - self.wall, cpu, max(0.0, _machine_busy() - self.busy - cpu)


def measure(people: int, steps: int, n: int, workers: int) -> list[dict]:
    import crmsim

    cfg = crmsim.load_config([f"market.n_people={people}", f"sim.steps={steps}"])
    seeds = list(range(n))
    rows: list[dict] = []

    clock = _Clock()

    def row(case: str, k: int, out: list, want: list | None) -> None:
        wall, cpu, others = clock.read()
        rows.append({"case": case, "workers": k, "replicates": n, "people": people,
                     "steps": steps, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                     "per_replicate_cpu_ms": round(1000 * cpu / n, 1),
                     "others_cpu_s": round(others, 2),
                     "identical": "reference" if want is None else str(out == want),
                     "load_avg_1min": round(os.getloadavg()[0], 2)})
        print(f"{case:<32} wall {wall:6.2f} s   CPU {cpu:6.2f} s   "
              f"{1000 * cpu / n:5.1f} ms CPU per replicate   identical: {rows[-1]['identical']}"
              f"   others' CPU {others:5.2f} s   load {rows[-1]['load_avg_1min']}", flush=True)

    warm = cfg.copy()
    warm.seed = n + 1
    crmsim.simulate(warm)                           # first-run costs (lazy imports) not counted
    clock.start()
    want = []
    for s in seeds:
        one = cfg.copy()
        one.seed = s
        want.append(crmsim.simulate(one).summary)
    row("sequential (crmsim.simulate)", 1, want, None)

    clock.start()
    out = crmsim.Replicates(workers=1).run(cfg, seeds)
    row("runner, 1 worker (in-process)", 1, out, want)

    clock.start()
    with crmsim.Replicates(workers=workers) as runner:
        out = runner.run(cfg, seeds)
        row(f"runner, {workers} workers, cold", workers, out, want)
        clock.start()
        out = runner.run(cfg, seeds)
        row(f"runner, {workers} workers, warm", workers, out, want)
    return rows


def grow(people: int, steps: int, counts: list[int]) -> list[dict]:
    """How a replicate's cost falls as more step together: ``Replicates(workers=1)`` (in this
    process, stacked up to ``STACK_PEOPLE`` people) on R seeds, for each R of ``counts``."""
    import crmsim

    cfg = crmsim.load_config([f"market.n_people={people}", f"sim.steps={steps}"])
    crmsim.Replicates(workers=1).run(cfg, [max(counts) + 1])   # first-run costs not counted
    rows = []
    for n in counts:
        started = time.process_time(), time.perf_counter()
        crmsim.Replicates(workers=1).run(cfg, range(n))
        cpu, wall = time.process_time() - started[0], time.perf_counter() - started[1]
        rows.append({"case": f"stacked in this process, {n} replicates", "workers": 1,
                     "replicates": n, "people": people, "steps": steps, "wall_s": round(wall, 3),
                     "cpu_s": round(cpu, 3), "per_replicate_cpu_ms": round(1000 * cpu / n, 1),
                     "load_avg_1min": round(os.getloadavg()[0], 2)})
        print(f"{n:>5} replicates stepped together: {1000 * cpu / n:6.1f} ms CPU per replicate "
              f"({cpu:.2f} s)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replicates", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=52)
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--grow", type=int, nargs="*", metavar="R",
                        help="instead: a replicate's CPU time when R of them step together in "
                             "this process, for each R (no R: 1 2 5 10 25 50 100)")
    parser.add_argument("--out", type=Path, default=HERE / "replicates.csv",
                        help="rows are appended here (default benchmarks/replicates.csv)")
    args = parser.parse_args(argv)
    if sys.platform != "linux":
        raise SystemExit("python -m benchmarks.replicates reads /proc: Linux only")
    from .runner import code_version, machine, write_csv

    info = machine()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{args.replicates} replicates x {args.people:,} people x {args.steps} steps; "
          f"{info['cores']} cores; load {os.getloadavg()[0]:.2f}", flush=True)
    if args.grow is not None:
        rows = grow(args.people, args.steps, args.grow or [1, 2, 5, 10, 25, 50, 100])
    else:
        rows = measure(args.people, args.steps, args.replicates, args.workers)
    for r in rows:
        r.update(run=stamp, code=code_version(), **{k: info[k] for k in ("cores", "cpu", "python",
                                                                         "numpy")})
    if args.grow is not None:
        write_csv(rows, args.out, COLUMNS)
        print(f"rows appended to {args.out}")
        return rows
    cold, warm = rows[-2], rows[-1]
    for r in (cold, warm):
        verdict = "met" if r["wall_s"] <= TARGET_S else "not met"
        print(f"target: {args.replicates} x {args.people:,} x {args.steps} in <= {TARGET_S:g} s: "
              f"{r['case']}: {r['wall_s']:.2f} s wall, {verdict}")
    print(f"speed-up over sequential (wall): cold x{rows[0]['wall_s'] / cold['wall_s']:.2f}, "
          f"warm x{rows[0]['wall_s'] / warm['wall_s']:.2f}")
    write_csv(rows, args.out, COLUMNS)
    print(f"rows appended to {args.out}")
    return rows


if __name__ == "__main__":
    main()
