"""The dashboard's step time: ``python -m benchmarks.dashboard [--people 300] [--steps 20]``.

Renders the dashboard page in this process (Solara's test renderer, no browser) and presses its
Step button: one press is the model's step, the new network and charts pictures, and Solara's
re-render of the page. Target: under 0.3 s at 300 people on both Mesa lines (Python 3.11 with
mesa 3.3, Python 3.12 with mesa 3.5). The browser adds the transfer of two images; the browser
test (tests/test_dashboard.py, run with -s) prints that time too.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from importlib.metadata import version

TARGET_S = 0.3


def measure(people: int, steps: int, warmup: int = 3) -> list[float]:
    import ipyvuetify as v
    import solara

    from crmsim.viz.page import Dashboard, DashboardModel

    base = [f"market.n_people={people}"]
    model = DashboardModel(base=base)

    @solara.component
    def App():
        with solara.AppLayout():
            Dashboard(model, base=base)

    _, rc = solara.render(App(), handle_error=False)
    step = next(b for b in rc.find(v.Btn).widgets if b.children == ["Step"])
    for _ in range(warmup):
        step.click()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step.click()
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dashboard", description=__doc__)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    times = measure(args.people, args.steps)
    median = statistics.median(times)
    print(f"dashboard step, {args.people} people, Python {platform.python_version()}, "
          f"mesa {version('mesa')}: median {median:.3f} s, max {max(times):.3f} s over "
          f"{len(times)} steps (target < {TARGET_S} s: {'met' if median < TARGET_S else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
