"""Long runs keep memory flat: after warm-up only the time series (one row per step) grows.

A CI-sized version of ``python -m benchmarks.long_run_memory`` (10^5 people x 1040 steps, run by
hand): 4000 people for 200 steps under every policy, measured with tracemalloc, which counts
numpy buffers but not the allocator's cached pages, so the number is stable enough to assert.
A leak of one float32 array per step would add 4000 x 4 B x 160 steps = 2.6 MB here; the
tolerance is 1 MB over the rows the DataCollector is meant to keep and the control-group records
of the policy's levers (each person at most once per lever; caches built lazily once, such as
the network's float64 weights, take about 0.3 MB at this size).
"""

from __future__ import annotations

import sys
import tracemalloc

import pytest

import crmsim
from crmsim.policies import POLICIES

N, STEPS, WARM_UP = 4000, 200, 40
SLACK = 2**20


def row_bytes(model: crmsim.CRMModel) -> int:
    """Upper bound of what the DataCollector holds: a float object and a list slot per cell."""
    cells = sum(len(v) for v in model.datacollector.model_vars.values())
    return cells * (sys.getsizeof(1.0) + 8)


def traced_growth(overrides: list[str], steps: int = STEPS, warm_up: int = WARM_UP
                  ) -> tuple[int, int]:
    """(traced bytes gained between the end of warm-up and the last step, row bytes gained)."""
    cfg = crmsim.load_config([f"market.n_people={N}", f"sim.steps={steps}", *overrides])
    tracemalloc.start()
    try:
        model = crmsim.CRMModel(cfg)
        for _ in range(warm_up):
            model.step()
        start, rows_start = tracemalloc.get_traced_memory()[0], row_bytes(model)
        for _ in range(steps - warm_up):
            model.step()
        end, rows_end = tracemalloc.get_traced_memory()[0], row_bytes(model)
    finally:
        tracemalloc.stop()
    return end - start, rows_end - rows_start


# Each targeted lever's control-group record (crmsim/levers.py) holds each person once, when
# they first join its measurement (20 bytes), plus its per-person arm and control-group marks
# (2 bytes), allocated at its first use: bounded by the market, not by the run's length.
LEVER_RECORD = 22 * N


def lever_records(policy: str) -> int:
    """Upper bound of what the control-group records of ``policy``'s levers can hold."""
    model = crmsim.CRMModel([f"policy={policy}", f"market.n_people={N}", "sim.steps=1"])
    return LEVER_RECORD * sum(1 for t in model.policy.shares
                              if model.policy.tactics[t].control_group)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_memory_is_flat_apart_from_the_time_series(policy):
    growth, rows = traced_growth([f"policy={policy}"])
    bound = rows + lever_records(policy) + SLACK
    assert growth <= bound, (f"grew {growth / 2**20:.2f} MB, rows {rows / 2**20:.2f} MB, "
                             f"lever records at most {lever_records(policy) / 2**20:.2f} MB")


def test_the_measurement_sees_the_event_log_grow():
    # The event log is meant to grow (one row per purchase): the tolerance above must be small
    # enough to flag it, or a flat result would mean nothing.
    growth, rows = traced_growth(["sim.record_events=true"], steps=80, warm_up=10)
    assert growth > rows + SLACK
