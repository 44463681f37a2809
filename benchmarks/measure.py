"""One measurement in a fresh process: build a model, step it, report time and memory.

``python -m benchmarks`` runs each measurement through this module in its own interpreter
(``python -m benchmarks.measure '<json spec>'``), so that the peak memory of one size does not
hide in the next and every run starts from the same baseline. The JSON record it prints on
its last line is what the runner tabulates.

Memory is the resident set size (RSS): ``baseline`` is the RSS once the libraries are imported
and the config is composed, just before the model is built; ``peak`` is the process's peak RSS
(``getrusage``), read at each checkpoint. Their difference is what the model costs.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; the peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE / 2**20
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def measure_engine(people: int, checkpoints: list[int], overrides: list[str]) -> list[dict]:
    """The vectorised engine on the full default model; one record per checkpoint (step count)."""
    import crmsim

    steps = max(checkpoints)
    cfg = crmsim.load_config([f"market.n_people={people}", f"sim.steps={steps}", *overrides])
    baseline = rss_mb()
    clock = Clock()
    model = crmsim.CRMModel(cfg)
    built = clock.lap()
    main0 = time.thread_time()   # this thread alone: with workers, the step's critical path
    records = []
    for t in range(1, steps + 1):
        model.step()
        if t in checkpoints:
            records.append(_record("vectorised", people, t, built, clock.since(built), baseline))
            records[-1]["steps_main_cpu_s"] = round(time.thread_time() - main0, 3)
    for r in records:
        r["policy"] = cfg.policy.name
        r["threads"] = model.workers.threads
    return records


def measure_reference(people: int, steps: int, seconds: float, overrides: list[str]) -> list[dict]:
    """The one-Agent-per-customer Mesa reference: ``steps`` steps, or fewer if ``seconds`` of
    stepping run out (it runs ~10**5 customer-steps per second)."""
    import crmsim

    from .mesa_reference import ReferenceModel

    cfg = crmsim.load_config([f"market.n_people={people}", f"sim.steps={steps}",
                              "firm.crm_budget=0", *overrides])
    baseline = rss_mb()
    clock = Clock()
    model = ReferenceModel(cfg)
    # The first step fills Mesa's per-cell neighbourhood caches; it is counted with the build
    # so that the rate is the steady one, as it is for the engine over hundreds of steps.
    model.step()
    built = clock.lap()
    done = 0
    while done < steps:
        model.step()
        done += 1
        if clock.since(built)[0] > seconds:
            break
    record = _record("mesa_reference", people, done, built, clock.since(built), baseline)
    record["policy"] = "none (no CRM budget)"
    return [record]


class Clock:
    """Wall time and this process's CPU time (user + system) since it was made.

    On one thread (``CRMSIM_THREADS=1``, or a market below ``crmsim.parallel.MIN_PEOPLE``)
    the wall time on an otherwise idle machine equals the CPU time; when other jobs share the
    cores, wall time grows with the load while CPU time stays closer to the idle figure. With
    two threads the CPU time is the sum over both.
    """

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu

    def since(self, before: tuple[float, float]) -> tuple[float, float]:
        now = self.lap()
        return now[0] - before[0], now[1] - before[1]


def _record(impl: str, people: int, steps: int, built: tuple[float, float],
            stepped: tuple[float, float], baseline: float) -> dict:
    peak = peak_rss_mb()
    above = max(peak - baseline, 0.0)
    (built, built_cpu), (stepped, stepped_cpu) = built, stepped
    return {
        "implementation": impl, "people": people, "steps": steps,
        "build_s": round(built, 3), "steps_s": round(stepped, 3),
        "total_s": round(built + stepped, 3),
        "customer_steps_per_s": round(people * steps / stepped) if stepped > 0 else None,
        "build_cpu_s": round(built_cpu, 3), "steps_cpu_s": round(stepped_cpu, 3),
        "total_cpu_s": round(built_cpu + stepped_cpu, 3),
        "cpu_customer_steps_per_s": (round(people * steps / stepped_cpu)
                                     if stepped_cpu > 0 else None),
        "baseline_rss_mb": round(baseline, 1), "peak_rss_mb": round(peak, 1),
        "peak_above_baseline_mb": round(above, 1),
        "bytes_per_customer": round(above * 2**20 / people),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> None:
    spec = json.loads((sys.argv[1:] if argv is None else argv)[0])
    if spec.get("threads"):
        # Read when the model is built (crmsim/parallel.py); unset: every available core.
        os.environ["CRMSIM_THREADS"] = str(spec["threads"])
    if spec["implementation"] == "vectorised":
        records = measure_engine(spec["people"], spec["checkpoints"], spec.get("overrides", []))
    else:
        records = measure_reference(spec["people"], spec["steps"], spec["seconds"],
                                    spec.get("overrides", []))
    print(json.dumps(records))


if __name__ == "__main__":
    main()
