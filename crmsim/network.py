"""Who talks to whom: the social network the customers live on.

A network is stored as one or two symmetric ``scipy.sparse.csr_array`` adjacency matrices
(``strong`` ties and an optional ``weak`` layer of long-range acquaintances) with float32 weights
and int32 ``indices``/``indptr``.  int32 halves the memory of the index arrays compared with
scipy's int64 default and is plenty: a layer may hold up to 2**31 - 1 directed entries.

The ``complete`` (well-mixed) network is never materialised: it would need n*(n-1) entries, i.e.
10**12 at a million people.  Everything the simulation asks of it ("how much do all my
neighbours sum to", "what share of my neighbours ...") follows from population totals.

The generators are vectorised: edges are drawn as numpy arrays, de-duplicated by sorting one
int64 key per edge, and turned into CSR directly.  A Python loop per node or per edge (or going
through networkx) takes ~20 s and several GB at 10**6 people; this takes about a second.
"""

from __future__ import annotations

import io
import itertools
import math
import numbers
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crmsim.errors import ConfigError

__all__ = ["KINDS", "LAYERS", "Network", "build_network", "load_edgelist"]

KINDS = ("small_world", "scale_free", "random", "complete", "edgelist")
LAYERS = ("strong", "weak", "all")

_INT32_MAX = int(np.iinfo(np.int32).max)
# Tail exponent of the Pareto used for scale_free expected degrees: P(w > x) ~ x**-2, i.e. a
# degree density P(k) ~ k**-3, the Barabási-Albert exponent.
_PARETO_SHAPE = 2.0
# Rejection rounds allowed when topping up to exactly m distinct edges.  Sparse graphs need
# one or two; only graphs close to complete come near the limit.
_MAX_ROUNDS = 100
# neighbour_sum scatters from the non-zero rows when fewer than 1 in _SPARSE_SHARE entries are
# non-zero; measured on a 10**6-node small world, scattering wins below about 1 in 16.
_SPARSE_SHARE = 16
_EDGELIST_ALLOWED = (
    "an existing text file (CSV or whitespace separated, '#' comments, optional header line) "
    "with two integer node-id columns 0 .. market.n_people-1 and an optional non-negative "
    "weight column"
)

EndpointSampler = Callable[[int], tuple[np.ndarray, np.ndarray]]


# eq=False: field-wise == would compare numpy arrays and sparse matrices, which has no single
# truth value; identity comparison (and hashing) is what callers can rely on.
@dataclass(frozen=True, eq=False)
class Network:
    """An undirected network over ``n`` people, possibly with a second layer of weak ties."""

    n: int
    kind: str
    strong: sp.csr_array | None
    weak: sp.csr_array | None
    degree: np.ndarray

    @property
    def complete(self) -> bool:
        return self.kind == "complete"

    @property
    def n_edges(self) -> int:
        """Undirected edges over both layers (0 for the unmaterialised complete network)."""
        return sum(int(a.nnz) // 2 for a in self._layers("all"))

    def neighbour_sum(self, x: np.ndarray, layer: str = "strong", workers=None) -> np.ndarray:
        """``y[i] = sum_j A[i, j] * x[j]`` over ``layer`` ('strong', 'weak' or 'all').

        For the complete network this is everyone else's total, ``x.sum() - x``; it has no weak
        layer, so ``layer='weak'`` gives zeros.

        When few entries of ``x`` are non-zero (word of mouth: only this step's tellers) the
        sum is scattered from those rows alone, which touches a few per cent of the edges.
        Both routes add the same float64 products in the same order (ascending ``j``), so the
        result is bit-identical whichever is taken. With ``workers`` (``crmsim.parallel.Workers``)
        of more than one thread, the full product is computed in contiguous blocks of rows, one
        per thread: each row's sum is the same either way.
        """
        x = self._vector(x, "x", np.float64)
        layers = self._layers(layer)
        if self.complete:
            if layer == "weak":
                return np.zeros(self.n)
            return x.sum() - x
        if not layers:
            return np.zeros(self.n)
        if np.count_nonzero(x) * _SPARSE_SHARE < self.n:
            rows = np.flatnonzero(x)
            return self._scatter(layers, rows, x[rows])
        return self._add_layers(self._product(self._float64(a), x, workers) for a in layers)

    def _product(self, a: sp.csr_array, x: np.ndarray, workers) -> np.ndarray:
        """``a @ x``, by blocks of rows on ``workers``' threads when it has more than one."""
        threads = getattr(workers, "threads", 1)
        if threads < 2 or a.shape[0] < threads:
            return a @ x
        key = ("rows", id(a), threads)
        if key not in self._derived:
            # Views of ``a``'s index and value arrays; only each block's row offsets are new.
            cuts = np.linspace(0, a.shape[0], threads + 1).astype(np.int64)
            self._derived[key] = tuple(
                sp.csr_array((a.data[a.indptr[lo]:a.indptr[hi]], a.indices[a.indptr[lo]:a.indptr[hi]],
                              a.indptr[lo:hi + 1] - a.indptr[lo]), shape=(hi - lo, a.shape[1]))
                for lo, hi in zip(cuts[:-1], cuts[1:], strict=True))
        blocks = self._derived[key]
        return np.concatenate(workers.run(*(partial(operator.matmul, b, x) for b in blocks)))

    def neighbour_sum_at(self, rows: np.ndarray, values: np.ndarray,
                         layer: str = "strong") -> np.ndarray:
        """``neighbour_sum(x, layer)`` for the ``x`` that holds ``values`` at the sorted,
        distinct indices ``rows`` and 0 elsewhere, without building ``x`` when it is sparse."""
        rows = np.asarray(rows)
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), rows.shape)
        layers = self._layers(layer)
        if self.complete or rows.size * _SPARSE_SHARE >= self.n:
            x = np.zeros(self.n)
            x[rows] = values
            return self.neighbour_sum(x, layer)
        if rows.size and not (rows[0] >= 0 and rows[-1] < self.n and np.all(rows[1:] > rows[:-1])):
            raise ValueError(f"rows must be sorted, distinct node indices 0 .. {self.n - 1}")
        if not layers:
            return np.zeros(self.n)
        return self._scatter(layers, rows, values)

    def _scatter(self, layers: list[sp.csr_array], rows: np.ndarray, values: np.ndarray):
        return self._add_layers(_scatter_rows(a, rows, values, unit=self._pattern(a)[0] is a)
                                for a in layers)

    @staticmethod
    def _add_layers(parts) -> np.ndarray:
        # 0.0 + part is part exactly (the sums start at +0.0), so starting from the first
        # layer's part instead of zeros changes nothing.
        y = None
        for part in parts:
            y = part if y is None else y + part
        return y

    def neighbour_share(self, mask: np.ndarray) -> np.ndarray:
        """Share of each node's neighbours (all layers, ignoring weights) where ``mask`` holds.

        Isolated nodes get 0 rather than NaN so the result can feed straight into a probability.
        """
        mask = self._vector(mask, "mask", bool)
        if self.complete:
            return (mask.sum() - mask) / (self.n - 1)
        # Isolated nodes have no hits, so dividing them by 1 instead of 0 gives the 0 we want.
        return self._neighbour_hits(mask) / self._divisor

    def _neighbour_hits(self, mask: np.ndarray) -> np.ndarray:
        """How many neighbours of each node are in ``mask``, as exact float64 counts (a cached
        array: read it, do not change it).

        The simulation asks this every step about the active customers, a set in which only a
        few per cent of people change from one step to the next; the counts of the previous
        call are therefore kept and corrected by scattering +1/-1 from the people who changed.
        The counts are whole numbers, exact in float64, so the result is the same as a fresh
        count whichever way it is reached.
        """
        layers = self._layers("all")
        last = self._derived.get("hits")
        if last is not None:
            last_mask, hits = last
            changed = np.flatnonzero(mask != last_mask)
            if changed.size * _SPARSE_SHARE < self.n:
                if changed.size:
                    step = np.where(mask[changed], 1.0, -1.0)
                    for a in layers:
                        hits += _scatter_rows(self._pattern(a)[0], changed, step, unit=True)
                    last_mask[changed] = mask[changed]
                return hits
        # A product with the 0/1 pattern counts exactly: in float32 while row lengths stay
        # below 2**24 (checked in _pattern), about 5x faster than a running total over every
        # stored entry.
        hits = np.zeros(self.n)
        for a in layers:
            pattern, dtype = self._pattern(a)
            hits += pattern @ mask.astype(dtype)
        self._derived["hits"] = (mask.copy(), hits)
        return hits

    @cached_property
    def _divisor(self) -> np.ndarray:
        return np.maximum(self.degree, 1).astype(np.float64)

    def __getstate__(self) -> dict:
        # The cached products and counts are derived from the layers: rebuilt on first use
        # rather than pickled (they can be larger than the layers themselves).
        return {k: v for k, v in self.__dict__.items() if k not in ("_derived", "_divisor")}

    # What the products above derive from the layers, built on first use and kept: matrices
    # that share a layer's int32 index arrays and add only a value array, and the last counts.
    @cached_property
    def _derived(self) -> dict[object, tuple]:
        return {}

    def _float64(self, a: sp.csr_array) -> sp.csr_array:
        """``a`` with float64 values: scipy would otherwise convert the float32 values on every
        product with a float64 vector (an allocation of 8 bytes per stored entry each time)."""
        key = ("float64", id(a))
        if key not in self._derived:
            self._derived[key] = (_with_values(a, a.data.astype(np.float64)), np.float64)
        return self._derived[key][0]

    def _pattern(self, a: sp.csr_array) -> tuple[sp.csr_array, type]:
        """The 0/1 pattern of ``a`` and the narrowest float type that counts its rows exactly."""
        key = ("pattern", id(a))
        if key not in self._derived:
            counts_fit = a.shape[0] == 0 or int(np.diff(a.indptr).max()) < 2**24
            dtype = np.float32 if counts_fit else np.float64
            ones = a.dtype == dtype and bool(np.all(a.data == 1))
            pattern = a if ones else _with_values(a, np.ones(a.nnz, dtype=dtype))
            self._derived[key] = (pattern, dtype)
        return self._derived[key]

    def _layers(self, layer: str) -> list[sp.csr_array]:
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {', '.join(LAYERS)}, not {layer!r}")
        chosen = {"strong": [self.strong], "weak": [self.weak], "all": [self.strong, self.weak]}
        return [a for a in chosen[layer] if a is not None]

    def _vector(self, x: np.ndarray, name: str, dtype: type) -> np.ndarray:
        x = np.asarray(x, dtype=dtype)
        if x.shape != (self.n,):
            raise ValueError(f"{name} must have shape ({self.n},), not {x.shape}")
        return x


def build_network(
    kind: str,
    n: int,
    mean_degree: float,
    rng: np.random.Generator,
    *,
    rewire_prob: float = 0.1,
    path: str | Path | None = None,
    weak_degree: float = 0.0,
) -> Network:
    """Build a network of ``kind`` over ``n`` people; identical output for identically seeded rngs.

    ``small_world``  Watts-Strogatz ring lattice with k = round(mean_degree) rounded down to even
                     (at least 2); each lattice edge's far end is rewired with ``rewire_prob`` to a
                     uniform node.  Rewired edges that land on a self-loop or an existing edge are
                     dropped instead of redrawn, so the realised mean degree is slightly below k
                     (by about rewire_prob * k**2 / n).
    ``scale_free``   Chung-Lu: expected degrees w_i ~ Pareto with P(w > x) ~ x**-2 (so the degree
                     distribution has the Barabási-Albert tail P(k) ~ k**-3, minimum about
                     mean_degree / 2), capped at sqrt(sum w) so that no pair is expected to share
                     more than one edge, then m = round(n * mean_degree / 2) distinct edges with
                     both ends drawn proportional to w.
    ``random``       Erdős-Rényi G(n, m): m = round(n * mean_degree / 2) distinct uniform edges.
    ``complete``     everyone meets everyone; no edges are stored.  mean_degree, rewire_prob and
                     weak_degree are ignored.
    ``edgelist``     the edges in the file at ``path`` (see ``load_edgelist``); mean_degree and
                     rewire_prob are ignored.

    ``weak_degree > 0`` adds a ``weak`` layer of round(n * weak_degree / 2) uniform random ties,
    none of which duplicates a strong tie.
    """
    if kind not in KINDS:
        raise ConfigError("network.kind", kind, ", ".join(KINDS))
    _check_n(n)
    n = int(n)
    if kind == "complete":
        degree = np.full(n, n - 1, dtype=np.int32)
        return Network(n=n, kind=kind, strong=None, weak=None, degree=degree)

    weak_degree = _check_real("network.weak_degree", weak_degree)
    if not 0 <= weak_degree < n:
        raise ConfigError(
            "network.weak_degree", weak_degree, f"a number >= 0 and below market.n_people ({n})"
        )

    if kind == "edgelist":
        strong = load_edgelist(path, n)
        strong_keys = _upper_keys(strong)
    else:
        mean_degree = _check_mean_degree(mean_degree, n)
        if kind == "small_world":
            strong_keys = _small_world_keys(n, mean_degree, _check_rewire_prob(rewire_prob), rng)
        elif kind == "scale_free":
            strong_keys = _scale_free_keys(n, mean_degree, rng)
        else:
            strong_keys = _erdos_renyi_keys(n, _edge_count(n, mean_degree), rng)
        strong = _csr_from_keys(strong_keys, n)

    weak = None
    if weak_degree > 0:
        m_weak = _edge_count(n, weak_degree)
        free_pairs = n * (n - 1) // 2 - strong_keys.size
        if m_weak > free_pairs or 2 * m_weak > _INT32_MAX:
            raise ConfigError(
                "network.weak_degree",
                weak_degree,
                f"at most {2 * min(free_pairs, _INT32_MAX // 2) / n:.6g}",
                "The weak ties must fit between the pairs not already joined by a strong tie.",
            )
        weak_keys = _erdos_renyi_keys(n, m_weak, rng, strong_keys, "network.weak_degree")
        weak = _csr_from_keys(weak_keys, n)

    degree = np.diff(strong.indptr)
    if weak is not None:
        degree = degree + np.diff(weak.indptr)
    return Network(n=n, kind=kind, strong=strong, weak=weak, degree=degree.astype(np.int32))


def load_edgelist(path: str | Path | None, n: int) -> sp.csr_array:
    """Read an undirected edge list into a symmetric CSR matrix (float32 weights, int32 indices).

    The file has two integer node-id columns (0 .. n-1) and an optional third weight column
    (default 1.0), separated by commas and/or whitespace.  ``#`` starts a comment; the first
    non-comment line may be a header of non-numeric column names.  Self-loops are dropped,
    duplicate edges (in either direction) are merged keeping the largest weight, and every edge
    is stored in both directions.  Zero weights are kept as explicit entries: the pair still
    counts as neighbours, it just transmits nothing.
    """
    _check_n(n)
    n = int(n)
    u, v, weight = _parse_edgelist(path, n)
    keys, weight = _merge_keep_max(u, v, weight, n)
    del u, v
    if keys.size == 0:
        raise _edgelist_error(path, "It contains only self-loops, which are dropped.")
    if 2 * keys.size > _INT32_MAX:
        raise _edgelist_error(path, f"{keys.size} edges do not fit an int32 sparse matrix.")
    return _csr_from_keys(keys, n, weight)


# --- validation -------------------------------------------------------------------------------


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 2 <= n <= _INT32_MAX:
        raise ConfigError("market.n_people", n, f"an integer from 2 to {_INT32_MAX}")


def _check_real(key: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(key, value, "a finite number")
    return float(value)


def _check_mean_degree(mean_degree: float, n: int) -> float:
    mean_degree = _check_real("network.mean_degree", mean_degree)
    # A simple graph on n nodes has mean degree at most n - 1.
    if not 0 < mean_degree <= n - 1:
        raise ConfigError(
            "network.mean_degree",
            mean_degree,
            f"a number > 0 and below market.n_people ({n}), i.e. at most {n - 1}",
        )
    if n * mean_degree > _INT32_MAX:
        raise ConfigError(
            "network.mean_degree",
            mean_degree,
            f"at most {_INT32_MAX / n:.6g} for market.n_people = {n}",
            "n_people * mean_degree must fit the int32 index of a sparse matrix.",
        )
    return mean_degree


def _check_rewire_prob(rewire_prob: float) -> float:
    rewire_prob = _check_real("network.rewire_prob", rewire_prob)
    if not 0 <= rewire_prob <= 1:
        raise ConfigError("network.rewire_prob", rewire_prob, "a probability in [0, 1]")
    return rewire_prob


def _edge_count(n: int, mean_degree: float) -> int:
    return round(n * mean_degree / 2)


# --- generators -------------------------------------------------------------------------------
# Every generator returns "keys": a sorted int64 array with one entry lo * n + hi (lo < hi) per
# undirected edge.  Sorting keys is the cheapest way to drop duplicates and to build CSR rows.


def _small_world_keys(
    n: int, mean_degree: float, rewire_prob: float, rng: np.random.Generator
) -> np.ndarray:
    k = max(2, 2 * (round(mean_degree) // 2))
    half = k // 2
    source = np.repeat(np.arange(n, dtype=np.int64), half)
    target = (source + np.tile(np.arange(1, half + 1, dtype=np.int64), n)) % n
    rewired = rng.random(source.size) < rewire_prob
    target[rewired] = rng.integers(0, n, size=int(rewired.sum()))
    return _canonical_keys(source, target, n)


def _scale_free_keys(n: int, mean_degree: float, rng: np.random.Generator) -> np.ndarray:
    weight = rng.pareto(_PARETO_SHAPE, n) + 1.0
    weight *= mean_degree / weight.mean()
    # Chung-Lu needs w_i * w_j <= sum(w) for its edge probabilities to stay below one.
    np.minimum(weight, math.sqrt(weight.sum()), out=weight)
    p = weight / weight.sum()

    def sample(size: int) -> tuple[np.ndarray, np.ndarray]:
        # Multinomial counts + repeat is the same as drawing `size` iid ends with probability p,
        # but sorted, which is far cheaper than a searchsorted per draw.  Shuffling one side
        # makes the pairing random.
        source = np.repeat(np.arange(n, dtype=np.int32), rng.multinomial(size, p))
        target = np.repeat(np.arange(n, dtype=np.int32), rng.multinomial(size, p))
        rng.shuffle(target)
        return source, target

    return _distinct_edges(n, _edge_count(n, mean_degree), sample, rng)


def _erdos_renyi_keys(
    n: int,
    m: int,
    rng: np.random.Generator,
    exclude: np.ndarray | None = None,
    key: str = "network.mean_degree",
) -> np.ndarray:
    def sample(size: int) -> tuple[np.ndarray, np.ndarray]:
        # int32 halves the memory of the largest temporaries; n always fits.
        return (
            rng.integers(0, n, size=size, dtype=np.int32),
            rng.integers(0, n, size=size, dtype=np.int32),
        )

    return _distinct_edges(n, m, sample, rng, exclude, key)


def _distinct_edges(
    n: int,
    m: int,
    sample: EndpointSampler,
    rng: np.random.Generator,
    exclude: np.ndarray | None = None,
    key: str = "network.mean_degree",
) -> np.ndarray:
    """Exactly ``m`` distinct edges drawn with ``sample``, none of them in ``exclude``.

    Rejection sampling: draw a few more edges than still needed, drop self-loops, repeats and
    excluded pairs, repeat until there are enough, then discard a uniformly chosen surplus.  The
    result is a uniform draw from the edge sets the sampler can produce, so G(n, m) stays exact.
    """
    keys = np.empty(0, dtype=np.int64)
    acceptance = 1.0
    for _ in range(_MAX_ROUNDS):
        need = m - keys.size
        if need <= 0:
            break
        # Overdraw by the acceptance rate seen so far so that dense graphs finish in few rounds.
        size = min(int(need / acceptance * 1.1) + 64, 8 * m + 64)
        new = _canonical_keys(*sample(size), n)
        if exclude is not None:
            new = new[~_is_member(new, exclude)]
        new = new[~_is_member(new, keys)]
        acceptance = max(new.size, 1) / size
        keys = np.concatenate((keys, new))
        keys.sort()
    if keys.size < m:
        raise ConfigError(
            key,
            2 * m / n,
            "a mean degree the generator can realise without repeating edges",
            f"Found only {keys.size} of {m} distinct edges; use a lower mean degree or "
            "network.kind = complete.",
        )
    surplus = keys.size - m
    if surplus > 0:
        keys = np.delete(keys, rng.choice(keys.size, size=surplus, replace=False))
    return keys


# --- edge keys and CSR ------------------------------------------------------------------------


def _canonical_keys(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """Sorted unique lo * n + hi keys of the edges (u, v), self-loops dropped."""
    keys = np.minimum(u, v).astype(np.int64)
    keys *= n
    keys += np.maximum(u, v)
    keys = keys[u != v]
    # np.unique is several times slower than sort + compare on large int64 arrays (numpy 2.x).
    keys.sort()
    first = np.ones(keys.size, dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    return keys[first]


def _is_member(x: np.ndarray, sorted_ref: np.ndarray) -> np.ndarray:
    if sorted_ref.size == 0:
        return np.zeros(x.size, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_ref, x), sorted_ref.size - 1)
    return sorted_ref[at] == x


def _merge_keep_max(
    u: np.ndarray, v: np.ndarray, weight: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Canonical keys of the edges (u, v) with duplicates merged to their largest weight."""
    keep = u != v
    keys = np.minimum(u, v)[keep] * n + np.maximum(u, v)[keep]
    weight = weight[keep]
    order = np.argsort(keys)
    keys = keys[order]
    weight = weight[order]
    del order
    first = np.ones(keys.size, dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    if starts.size == 0:  # reduceat cannot take an empty index list
        return keys, weight
    return keys[starts], np.maximum.reduceat(weight, starts)


def _csr_from_keys(keys: np.ndarray, n: int, weight: np.ndarray | None = None) -> sp.csr_array:
    """Symmetric CSR matrix holding every edge of ``keys`` in both directions."""
    # One row * n + col key per stored entry; sorting them gives CSR order.  Arrays are filled
    # in place and released early because at 10**6 people each of them is 40-80 MB.
    entries = np.empty(2 * keys.size, dtype=np.int64)
    entries[: keys.size] = keys
    lo, hi = np.divmod(keys, n)
    row_length = np.bincount(lo, minlength=n) + np.bincount(hi, minlength=n)
    reverse = entries[keys.size :]
    np.multiply(hi, n, out=reverse)
    reverse += lo
    del lo, hi
    if weight is None:
        entries.sort()
        data = np.ones(entries.size, dtype=np.float32)
    else:
        order = np.argsort(entries)
        entries = entries[order]
        half = weight.astype(np.float32)
        data = np.concatenate((half, half))[order]
        del order, half
    indices = np.remainder(entries, n, out=entries).astype(np.int32)
    del entries
    indptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(row_length, out=indptr[1:])
    matrix = sp.csr_array((data, indices, indptr), shape=(n, n))
    # scipy may choose int64 on its own; int32 is the documented contract, so enforce it.
    matrix.indices = matrix.indices.astype(np.int32, copy=False)
    matrix.indptr = matrix.indptr.astype(np.int32, copy=False)
    matrix.has_sorted_indices = True
    return matrix


def _upper_keys(matrix: sp.csr_array) -> np.ndarray:
    """Sorted edge keys of a symmetric CSR matrix (its upper triangle)."""
    n = matrix.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(matrix.indptr))
    cols = matrix.indices.astype(np.int64)
    upper = rows < cols
    return rows[upper] * n + cols[upper]


def _with_values(matrix: sp.csr_array, data: np.ndarray) -> sp.csr_array:
    """A CSR matrix with ``matrix``'s structure (shared, not copied) and values ``data``."""
    out = sp.csr_array((data, matrix.indices, matrix.indptr), shape=matrix.shape, copy=False)
    out.has_sorted_indices = matrix.has_sorted_indices
    return out


def _scatter_rows(
    matrix: sp.csr_array, rows: np.ndarray, values: np.ndarray, unit: bool = False
) -> np.ndarray:
    """``matrix @ x`` for a symmetric ``matrix`` and an ``x`` that is zero outside the sorted
    ``rows``, where it holds ``values``.

    Row j's entries are column j's (symmetry), so each listed row sends ``A[j, i] * x[j]`` to
    its neighbours i; ``np.bincount`` adds them in the order of ``rows``, which is the order in
    which the CSR product adds the non-zero terms of each row (sorted column indices).
    ``unit`` says every stored value is 1, so the products are ``x[j]`` itself.
    """
    start = matrix.indptr[rows].astype(np.int64)
    length = matrix.indptr[rows + 1] - start
    # Positions of the listed rows' entries: each row's start, then consecutive offsets.
    first = np.cumsum(length) - length
    pos = np.arange(int(length.sum()), dtype=np.int64) + np.repeat(start - first, length)
    weight = np.repeat(values, length)
    if not unit:
        weight *= matrix.data[pos]
    if pos.size == 0:  # np.bincount would return integer zeros
        return np.zeros(matrix.shape[0])
    return np.bincount(matrix.indices[pos], weights=weight, minlength=matrix.shape[0])


# --- edge-list parsing ------------------------------------------------------------------------


def _edgelist_error(path: str | Path | None, detail: str) -> ConfigError:
    return ConfigError(
        "network.path", None if path is None else str(path), _EDGELIST_ALLOWED, detail
    )


def _parse_edgelist(path: str | Path | None, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated node ids and weights, one entry per data line of the file."""
    data = _read_bytes(path)
    header_end = _header_end(data)
    header_lines = data[:header_end].count(b"\n")
    # Commas become blanks so the fast C parser can split on whitespace alone.  Staying in bytes
    # keeps memory near twice the file size (a str in StringIO would take four times that).
    body = data[header_end:].replace(b",", b" ")
    del data
    try:
        table = pd.read_csv(
            io.BytesIO(body),
            sep=r"\s+",
            header=None,
            comment="#",
            index_col=False,
            encoding="utf-8",
        )
    except pd.errors.EmptyDataError:
        raise _edgelist_error(path, "The file contains no edges.") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise _edgelist_error(path, f"It could not be parsed: {exc}".strip()) from None
    if table.empty:
        raise _edgelist_error(path, "The file contains no edges.")
    if table.shape[1] not in (2, 3):
        detail = f"Found {table.shape[1]} columns; expected 2 (node ids) or 3 (plus weight)."
        raise _edgelist_error(path, detail)
    try:
        u = _node_ids(table[0], n)
        v = _node_ids(table[1], n)
        weight = _weights(table[2]) if table.shape[1] == 3 else np.ones(u.size)
    except _BadRow as bad:
        line = header_lines + _line_of_row(body, bad.row)
        raise _edgelist_error(path, f"Line {line}: {bad.problem}") from None
    return u, v, weight


def _read_bytes(path: str | Path | None) -> bytes:
    if path is None or str(path).strip() == "":
        raise _edgelist_error(path, "network.kind = edgelist needs a path.")
    file = Path(path)
    if not file.is_file():
        raise _edgelist_error(path, "No such file.")
    try:
        return file.read_bytes().removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
    except OSError as exc:
        raise _edgelist_error(path, f"Cannot read it: {exc}") from None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _header_end(data: bytes) -> int:
    """Offset just past a header line, or 0 if the first non-comment line is data.

    A header is a line made only of non-numeric tokens, so "0 abc" is rejected as bad data
    later rather than silently skipped.
    """
    offset = 0
    for line in io.BytesIO(data):
        content = line.split(b"#", 1)[0].strip()
        if content:
            tokens = re.split(r"[,\s]+", content.decode("utf-8", errors="replace"))
            return offset + len(line) if not any(map(_is_number, tokens)) else 0
        offset += len(line)
    return 0


class _BadRow(Exception):
    """A data row (0-based, comments and blank lines not counted) that cannot be used."""

    def __init__(self, row: int, problem: str) -> None:
        super().__init__(problem)
        self.row = row
        self.problem = problem


def _line_of_row(body: bytes, row: int) -> int:
    """1-based line number in ``body`` of data row ``row``, for error messages only."""
    data_lines = (
        number
        for number, line in enumerate(io.BytesIO(body), start=1)
        if line.split(b"#", 1)[0].strip()
    )
    return next(itertools.islice(data_lines, row, None))


def _shown(value: object) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def _node_ids(column: pd.Series, n: int) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy()
    checks = [
        (values < 0, "is negative"),
        (values >= n, f"is out of range: market.n_people is {n}, so ids must be 0 .. {n - 1}"),
    ]
    if values.dtype.kind == "f":  # a blank, a word (coerced to NaN) or a fraction is in there
        checks[:0] = [
            (~np.isfinite(values), "is not a number"),
            (values != np.floor(values), "is not an integer"),
        ]
    for bad, problem in checks:
        if bad.any():
            row = int(np.argmax(bad))
            if pd.isna(column.iloc[row]):
                raise _BadRow(row, "fewer than two node ids.")
            raise _BadRow(row, f"node id {_shown(column.iloc[row])} {problem}.")
    return values.astype(np.int64, copy=False)


def _weights(column: pd.Series) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise _BadRow(row, f"weight {_shown(column.iloc[row])} must be a finite number >= 0.")
    return values
