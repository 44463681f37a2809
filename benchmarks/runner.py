"""``python -m benchmarks``: speed and memory of the vectorised engine against the Mesa reference.

Every measurement runs in a fresh interpreter (``benchmarks/measure.py``), one after the other,
so each has the machine and its memory to itself. The runner prints a Markdown table and the
performance targets of issue 6 with the measured numbers, and appends the rows to a CSV file
(``benchmarks/results.csv`` unless ``--out`` says otherwise), rewriting it in one atomic rename.

Timing on a shared machine is noisy. Each row has the wall time and the process's CPU time
(on one thread they agree on an idle machine; under load, wall time grows and CPU time stays
close to the idle figure), and the 1-minute load average when it was taken. The speed-up over
the Mesa reference, and that of two threads over one (``--threads 1 2``), are ratios of
measurements of the same run.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = HERE / "results.csv"

# Issue 6's targets.
TARGET_RATIO = 100.0               # x the Mesa reference at 10**5 customers
TARGET_RATE = 5e6                  # customer-steps/s at 10**6
TARGET_MILLION_SECONDS = 60.0      # 10**6 x 260 steps, graph construction included
TARGET_BYTES_PER_CUSTOMER = 1024   # peak memory above the interpreter baseline at 10**6
TARGET_GROWTH = 12.0               # time(10**6) / time(10**5) for the same steps
TARGET_LARGE_MB = 8192             # 10**7 x 52 completes within 8 GB
TARGET_POLICY = 1.5                # every policy's step time within 1.5x transactional's at 10**6
TARGET_THREADS = 1.6               # issue 18: 2 threads >= 1.6x 1 thread's speed at 10**6

COLUMNS = [
    "run", "code", "implementation", "policy", "people", "steps", "build_s", "steps_s", "total_s",
    "customer_steps_per_s", "ratio_to_mesa", "build_cpu_s", "steps_cpu_s", "total_cpu_s",
    "cpu_customer_steps_per_s", "cpu_ratio_to_mesa", "baseline_rss_mb", "peak_rss_mb",
    "peak_above_baseline_mb", "bytes_per_customer", "load_avg_1min", "python", "numpy",
    "scipy", "mesa", "cpu", "cores", "memory_gb", "threads", "repeat", "steps_main_cpu_s",
]


def machine() -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    memory_gb = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
        with open("/proc/meminfo") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("MemTotal"))
            memory_gb = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        pass
    return {
        "code": code_version(),
        "python": platform.python_version(),
        **{lib: importlib.metadata.version(lib) for lib in ("numpy", "scipy", "mesa")},
        "cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb,
    }


def code_version() -> str:
    """The commit the code was at, with "+changes" when the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty.strip() else "")


def run_one(spec: dict) -> list[dict]:
    """One measurement in a fresh interpreter; its last stdout line is a JSON list of records."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.measure", json.dumps(spec)],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark {spec} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Speed and memory of crmsim's vectorised engine (full default model) and of "
                    "the one-Agent-per-customer Mesa reference (benchmarks/mesa_reference.py).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--people", type=int, nargs="*", default=[10**5, 10**6], metavar="N",
                   help="population sizes for the vectorised engine (none: skip it)")
    p.add_argument("--steps", type=int, default=260,
                   help="weekly steps for the vectorised engine (a row is also written at "
                        "step 52 when the run is longer)")
    p.add_argument("--reference-people", type=int, nargs="*", default=[10**4, 10**5],
                   metavar="N", help="population sizes for the Mesa reference (none: skip it)")
    p.add_argument("--reference-steps", type=int, default=10,
                   help="timed steps of the Mesa reference after one warm-up step (fewer if "
                        "--reference-seconds run out)")
    p.add_argument("--reference-seconds", type=float, default=40.0,
                   help="stepping time allowed to the Mesa reference per size")
    p.add_argument("--large", action="store_true",
                   help="also run the memory check: 10**7 people x 52 steps (~2 min, ~5 GB)")
    p.add_argument("--policies", action="store_true",
                   help="also time every policy in configs/policy/ against transactional")
    p.add_argument("--policy-people", type=int, default=10**6, metavar="N",
                   help="population size for --policies")
    p.add_argument("--policy-steps", type=int, default=26,
                   help="steps for --policies")
    p.add_argument("--threads", type=int, nargs="*", default=[], metavar="T",
                   help="run the vectorised engine once per thread count (CRMSIM_THREADS), "
                        "alternating, e.g. --threads 1 2: the speed-up is measured in one run "
                        "(none: the default, every available core)")
    p.add_argument("--repeat", type=int, default=1,
                   help="measure each vectorised size this many times (with --threads the "
                        "thread counts alternate: 1 2 1 2 ...); the tables show every row and "
                        "the speed-up uses the medians")
    p.add_argument("--smoke", action="store_true",
                   help="tiny sizes that finish in seconds (checks that everything runs; the "
                        "numbers say nothing about the targets)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="CSV file the rows are appended to")
    p.add_argument("overrides", nargs="*", default=[],
                   help="Hydra overrides for both implementations, e.g. network=scale_free")
    args = p.parse_args(argv)
    if args.smoke:
        args.people, args.steps = [500], 5
        args.reference_people, args.reference_steps, args.reference_seconds = [500], 3, 10.0
        args.large = False
        args.policy_people, args.policy_steps = 500, 3
    for n in [*args.people, *args.reference_people]:
        if n < 2:
            p.error(f"population sizes must be at least 2, not {n}")
    if args.steps < 1 or args.reference_steps < 1:
        p.error("--steps and --reference-steps must be at least 1")
    if any(t < 1 for t in args.threads) or args.repeat < 1:
        p.error("--threads and --repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    info = machine()
    run_id = dt.datetime.now().isoformat(timespec="seconds")
    print(f"crmsim benchmarks {run_id}: {info['cpu']}, {info['cores']} cores, "
          f"{info['memory_gb']} GB; Python {info['python']}, numpy {info['numpy']}, "
          f"scipy {info['scipy']}, mesa {info['mesa']}", flush=True)

    rows: list[dict] = []
    for n in args.reference_people:
        print(f"  Mesa reference, {n:,} people ...", flush=True)
        rows += run_one({"implementation": "mesa_reference", "people": n,
                         "steps": args.reference_steps, "seconds": args.reference_seconds,
                         "overrides": args.overrides})
    sizes = [(n, args.steps) for n in args.people] + ([(10**7, 52)] if args.large else [])
    for n, steps in sizes:
        checkpoints = sorted({min(52, steps), steps})
        for repeat in range(1, args.repeat + 1):
            for threads in args.threads or [None]:
                print(f"  vectorised engine, {n:,} people x {steps} steps"
                      + (f", {threads} thread(s)" if threads else "") + " ...", flush=True)
                timed = run_one({"implementation": "vectorised", "people": n,
                                 "checkpoints": checkpoints, "overrides": args.overrides,
                                 "threads": threads})
                rows += [{**r, "repeat": repeat} for r in timed]

    if args.policies:
        from crmsim.api import group_options

        for name in group_options("policy"):
            print(f"  vectorised engine, policy={name}, {args.policy_people:,} people x "
                  f"{args.policy_steps} steps ...", flush=True)
            timed = run_one({"implementation": "vectorised", "people": args.policy_people,
                             "checkpoints": [args.policy_steps],
                             "overrides": [*args.overrides, f"policy={name}"]})
            rows += [{**r, "policy_comparison": True} for r in timed]

    reference = {r["people"]: r for r in rows if r["implementation"] == "mesa_reference"}
    for r in rows:
        r["run"] = run_id
        r.update(info)
        ref = reference.get(r["people"]) if r["implementation"] == "vectorised" else None
        for rate, ratio in (("customer_steps_per_s", "ratio_to_mesa"),
                            ("cpu_customer_steps_per_s", "cpu_ratio_to_mesa")):
            r[ratio] = round(r[rate] / ref[rate], 1) if ref and ref[rate] else None

    print()
    print(table(rows))
    if len(set(args.threads)) > 1:
        print()
        print(threads_table(rows))
    if not args.smoke:
        print()
        print(targets(rows))
    write_csv(rows, args.out)
    print(f"\nrows appended to {args.out}")
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table: wall-clock figures, then CPU-time figures in brackets."""
    head = ("| implementation | policy | threads | people | steps | build s | steps s | total s "
            "| customer-steps/s | x Mesa | peak MB above baseline | bytes/customer | load |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]

    def both(wall, cpu, fmt: str) -> str:
        if wall is None:
            return ""
        return f"{wall:{fmt}} ({cpu:{fmt}})" if cpu is not None else f"{wall:{fmt}}"

    for r in rows:
        lines.append(
            f"| {r['implementation']} | {r['policy']} | {r.get('threads') or ''} "
            f"| {r['people']:,} | {r['steps']} "
            f"| {both(r['build_s'], r['build_cpu_s'], '.1f')} "
            f"| {both(r['steps_s'], r['steps_cpu_s'], '.1f')} "
            f"| {both(r['total_s'], r['total_cpu_s'], '.1f')} "
            f"| {both(r['customer_steps_per_s'], r['cpu_customer_steps_per_s'], '.3g')} "
            f"| {both(r['ratio_to_mesa'], r['cpu_ratio_to_mesa'], '.0f')} "
            f"| {r['peak_above_baseline_mb']:,.0f} | {r['bytes_per_customer']:,} "
            f"| {r['load_avg_1min']:.1f} |")
    return "\n".join(lines)


def _by_threads(rows: list[dict]) -> dict[tuple[int, int], dict[int, list[dict]]]:
    """The vectorised rows of each (people, steps), grouped by thread count."""
    groups: dict[tuple[int, int], dict[int, list[dict]]] = {}
    for r in rows:
        if r["implementation"] == "vectorised" and r.get("threads") and not r.get("policy_comparison"):
            groups.setdefault((r["people"], r["steps"]), {}).setdefault(r["threads"], []).append(r)
    return groups


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def threads_speedup(rows: list[dict]) -> list[tuple[int, int, int, float, float, float]]:
    """(people, steps, threads, wall speed-up, CPU time ratio, bound) against one thread, from
    the median steps s of each thread count. The bound is what an idle machine could show at
    best: the one-thread CPU time over the larger of the main thread's CPU time (the model
    waits for its workers, never the other way round) and the CPU time over the threads."""
    out = []
    for (people, steps), by in sorted(_by_threads(rows).items()):
        if 1 not in by:
            continue
        wall1 = _median([r["steps_s"] for r in by[1]])
        cpu1 = _median([r["steps_cpu_s"] for r in by[1]])
        for threads in sorted(t for t in by if t != 1):
            wall = _median([r["steps_s"] for r in by[threads]])
            cpu = _median([r["steps_cpu_s"] for r in by[threads]])
            main = _median([r["steps_main_cpu_s"] for r in by[threads]])
            out.append((people, steps, threads, wall1 / wall, cpu / cpu1,
                        cpu1 / max(main, cpu / threads)))
    return out


def threads_table(rows: list[dict]) -> str:
    """Per size and thread count: median steps s (wall and CPU), customer-steps/s, load, and
    the speed-up over one thread (wall time, same run)."""
    head = ("| people | steps | threads | runs | steps s | CPU s | main-thread CPU s "
            "| customer-steps/s | load | speed-up vs 1 thread | CPU time vs 1 thread "
            "| idle-machine bound |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    speedups = {(p, s, t): (w, c, b) for p, s, t, w, c, b in threads_speedup(rows)}
    for (people, steps), by in sorted(_by_threads(rows).items()):
        for threads, group in sorted(by.items()):
            wall = _median([r["steps_s"] for r in group])
            cpu = _median([r["steps_cpu_s"] for r in group])
            loads = [r["load_avg_1min"] for r in group]
            main = _median([r["steps_main_cpu_s"] for r in group])
            w, c, b = speedups.get((people, steps, threads), (1.0, 1.0, 1.0))
            lines.append(
                f"| {people:,} | {steps} | {threads} | {len(group)} | {wall:.2f} | {cpu:.2f} "
                f"| {main:.2f} | {people * steps / wall:.3g} | {min(loads):.1f}-{max(loads):.1f} "
                f"| {w:.2f}x | {c:.2f}x | {b:.2f}x |")
    return "\n".join(lines)


def _find(rows: list[dict], impl: str, people: int, steps: int | None = None) -> dict | None:
    found = [r for r in rows if r["implementation"] == impl and r["people"] == people
             and (steps is None or r["steps"] == steps) and not r.get("policy_comparison")]
    return max(found, key=lambda r: (r["steps"], r.get("threads") or 0)) if found else None


def targets(rows: list[dict]) -> str:
    """Each target of issue 6 that this run measured, with the number and met / NOT met."""
    out = ["Targets (issue 6), wall clock [CPU time]:"]

    def verdict(name: str, wall: float, cpu: float | None, ok, unit: str = "") -> None:
        seen = f"{wall:,.3g}{unit}" + (f" [{cpu:,.3g}{unit}]" if cpu is not None else "")
        marks = "".join("met     " if ok(v) else "NOT met " for v in (wall, cpu) if v is not None)
        out.append(f"  {marks:17s} {name}: {seen}")

    e5, e6 = _find(rows, "vectorised", 10**5), _find(rows, "vectorised", 10**6)
    if e5 and e5["ratio_to_mesa"]:
        verdict(">= 100x the Mesa reference at 10^5", e5["ratio_to_mesa"],
                e5["cpu_ratio_to_mesa"], lambda v: v >= TARGET_RATIO, "x")
    if e6:
        verdict(">= 5e6 customer-steps/s at 10^6", e6["customer_steps_per_s"],
                e6["cpu_customer_steps_per_s"], lambda v: v >= TARGET_RATE)
        if e6["steps"] == 260:
            verdict("10^6 x 260 steps in <= 60 s incl. graph construction", e6["total_s"],
                    e6["total_cpu_s"], lambda v: v <= TARGET_MILLION_SECONDS, " s")
        verdict("<= 1 KB/customer above baseline at 10^6", e6["bytes_per_customer"], None,
                lambda v: v <= TARGET_BYTES_PER_CUSTOMER, " bytes")
    if e5 and e6 and e5["steps"] == e6["steps"]:
        verdict(f"time(10^6) / time(10^5) <= 12 ({e6['steps']} steps)",
                e6["total_s"] / e5["total_s"], e6["total_cpu_s"] / e5["total_cpu_s"],
                lambda v: v <= TARGET_GROWTH)
    e7 = _find(rows, "vectorised", 10**7, 52)
    if e7:
        verdict("10^7 x 52 steps within 8 GB (peak RSS)", e7["peak_rss_mb"], None,
                lambda v: v <= TARGET_LARGE_MB, " MB")
    policy_rows = {r["policy"]: r for r in rows if r.get("policy_comparison")}
    base = policy_rows.get("transactional")
    for name, r in sorted(policy_rows.items()):
        if base and name != "transactional":
            verdict(f"policy={name} step time <= 1.5x transactional at {r['people']:,}",
                    r["steps_s"] / base["steps_s"], r["steps_cpu_s"] / base["steps_cpu_s"],
                    lambda v: v <= TARGET_POLICY, "x")
    for people, steps, threads, wall, _, _ in threads_speedup(rows):
        if people == 10**6 and threads == 2:
            verdict(f"2 threads >= 1.6x 1 thread at 10^6 ({steps} steps, wall time)", wall, None,
                    lambda v: v >= TARGET_THREADS, "x")
    if len(out) == 1:
        out.append("  (none of the target sizes was run)")
    return "\n".join(out)


def write_csv(rows: list[dict], path: Path, columns: list[str] = COLUMNS) -> None:
    """Append ``rows`` to ``path`` by writing the old and new rows to a temporary file in the
    same directory and renaming it over ``path``: readers see the old file or the new one.
    ``columns``: the file's columns (those of this runner's rows by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old: list[dict] = []
    if path.exists():
        with path.open(newline="") as f:
            old = list(csv.DictReader(f))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(old)
            writer.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
