"""Checks before a run that the schema cannot make: the machine's memory, the user's files.

Called by ``crmsim.load_config`` and ``crmsim.simulate`` (and so by every CLI command and sweep
job), after the schema check, before anything is allocated or written.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .config import CRMConfig
from .errors import ConfigError

# Memory of a built model per person, measured by `make bench` (benchmarks/README.md: 530-650
# bytes per customer above the interpreter at 10^5-10^7 people, mean degree 10). The lower end
# is used: a run is refused only when it cannot fit, not when it might not. Each further
# neighbour (network.mean_degree above 10) adds an int32 index, a float32 and a float64 weight.
BYTES_PER_PERSON = 530
BYTES_PER_EXTRA_NEIGHBOUR = 16
BENCH_DEGREE = 10
# What a run builds at its end: the customer table (sim.record_customers; 34 columns, 148
# bytes per person measured at 10^5) and the event log (sim.record_events; at most one row per
# person and step, ~32 bytes a row).
BYTES_PER_CUSTOMER_ROW = 148
BYTES_PER_EVENT = 32


def memory_needed(c: CRMConfig) -> int:
    """Bytes a run of ``c`` needs at its peak, estimated from the benchmarks."""
    n = int(c.market.n_people)
    # The complete network is never materialised; an edge list's size is known once it is read.
    degree = c.network.mean_degree if c.network.kind not in ("complete", "edgelist") else 0.0
    per_person = BYTES_PER_PERSON + BYTES_PER_EXTRA_NEIGHBOUR * max(0.0, degree - BENCH_DEGREE)
    if c.sim.record_customers:
        per_person += BYTES_PER_CUSTOMER_ROW
    if c.sim.record_events:
        per_person += BYTES_PER_EVENT * int(c.sim.steps)
    return int(n * per_person)


def memory_available() -> int | None:
    """Bytes the machine can give a new process now (Linux: MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(x: float) -> str:
    return f"{x / 1e9:,.1f} GB" if x >= 1e8 else f"{x / 1e6:,.0f} MB"


def check_memory(c: CRMConfig) -> None:
    """Refuse a run that cannot fit in the machine's available memory, naming the key."""
    need = memory_needed(c)
    have = memory_available()
    if have is None or need <= have:
        return
    key = "sim.record_events" if c.sim.record_events and need - have < int(
        c.market.n_people) * BYTES_PER_EVENT * int(c.sim.steps) else "market.n_people"
    value = c.sim.record_events if key == "sim.record_events" else c.market.n_people
    per = need / int(c.market.n_people)
    raise ConfigError(
        key, value,
        f"a run that fits in the memory this machine has available now, {_gb(have)}",
        f"This run needs about {_gb(need)} ({per:,.0f} bytes per person, measured by the "
        f"benchmarks); at most about {max(have // per, 0):,.0f} people fit.")


def check_edgelist_file(path: str | os.PathLike | None) -> None:
    """What the edge-list reader cannot say well: a path that is not a regular file (a named
    pipe, a device, a directory) and a compressed file."""
    if path is None or path == "":
        return
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except OSError:
        return            # a missing file: the reader says so
    if stat.S_ISDIR(mode):
        return            # the reader's message names directories
    if not stat.S_ISREG(mode):
        kind = "a named pipe" if stat.S_ISFIFO(mode) else "a device or socket"
        raise ConfigError("network.path", str(path), "a regular text file of edges",
                          f"It exists but is {kind}; crmsim reads the file twice (a check, "
                          "then the run), so save the edges to a file first.")
    try:
        with open(p, "rb") as f:
            magic = f.read(4)
    except OSError:
        return
    compressed = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zX": "xz", b"PK\x03\x04": "zip",
                  b"(\xb5/\xfd": "zstd"}
    for head, name in compressed.items():
        if magic.startswith(head):
            hint = f" (gunzip {p.name})" if name == "gzip" else ""
            raise ConfigError("network.path", str(path), "an uncompressed text file of edges",
                              f"It is {name}-compressed; decompress it first{hint}.")
