"""Speed and memory benchmarks of crmsim, and the one-Agent-per-customer Mesa reference.

Run them with ``python -m benchmarks`` (or ``make bench``) from the repository root; see
``benchmarks/README.md``.
"""
