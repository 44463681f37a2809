"""Memory over a long run: does anything but the time series grow with the number of steps?

    python -m benchmarks.long_run_memory                  # 10^5 people x 1040 steps (20 years)
    python -m benchmarks.long_run_memory --people 20000 --steps 300 --every 50
    python -m benchmarks.long_run_memory --trace          # also tracemalloc: where growth lives

Prints one row every ``--every`` steps: elapsed seconds, resident set size (RSS, from
/proc/self/statm, Linux), its growth since the first sample, and the size of what is *meant* to
grow (the DataCollector's model rows, and the event log when ``sim.record_events=true``).
``--trace`` adds tracemalloc's traced total, which counts numpy buffers too but not allocator
caching, so it separates a real leak from RSS noise; it slows the run down. Extra arguments are
Hydra overrides (``policy=idic``). The last line is a JSON record of the whole run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc

import crmsim

from .measure import peak_rss_mb, rss_mb


def rows_mb(model: crmsim.CRMModel) -> float:
    """What the DataCollector holds: one Python float per column per step (plus list slots)."""
    columns = model.datacollector.model_vars
    cells = sum(len(v) for v in columns.values())
    return cells * (sys.getsizeof(1.0) + 8) / 2**20


def events_mb(model: crmsim.CRMModel) -> float:
    return sum(int(df.memory_usage(deep=True).sum()) for df in model.events) / 2**20


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=1040)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--trace", action="store_true", help="also report tracemalloc totals")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)

    cfg = crmsim.load_config([f"market.n_people={args.people}", f"sim.steps={args.steps}",
                              *args.overrides])
    if args.trace:
        tracemalloc.start()
    start = time.perf_counter()
    before = rss_mb()
    model = crmsim.CRMModel(cfg)
    built = time.perf_counter() - start
    samples = []
    print(f"{args.people:,} people x {args.steps} steps, policy={cfg.policy.name}, "
          f"network={cfg.network.kind}; RSS before the model {before:.1f} MB, "
          f"model built in {built:.1f} s")
    header = f"{'step':>6} {'seconds':>8} {'RSS MB':>8} {'growth':>8} {'rows MB':>8} {'events MB':>9}"
    print(header + (f" {'traced MB':>9}" if args.trace else ""))
    for t in range(args.steps + 1):
        if t:
            model.step()
        if t % args.every == 0 or t == args.steps:
            sample = {"step": t, "seconds": round(time.perf_counter() - start, 2),
                      "rss_mb": round(rss_mb(), 1), "rows_mb": round(rows_mb(model), 3),
                      "events_mb": round(events_mb(model), 3)}
            if args.trace:
                sample["traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
            sample["growth_mb"] = round(sample["rss_mb"] - (samples or [sample])[0]["rss_mb"], 1)
            samples.append(sample)
            line = (f"{t:>6} {sample['seconds']:>8.1f} {sample['rss_mb']:>8.1f} "
                    f"{sample['growth_mb']:>8.1f} {sample['rows_mb']:>8.2f} {sample['events_mb']:>9.2f}")
            print(line + (f" {sample['traced_mb']:>9.1f}" if args.trace else ""), flush=True)
    elapsed = time.perf_counter() - start
    record = {
        "people": args.people, "steps": args.steps, "overrides": args.overrides,
        "seconds": round(elapsed, 1),
        "customer_steps_per_second": round(args.people * args.steps / (elapsed - built)),
        "rss_before_model_mb": round(before, 1), "samples": samples,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
