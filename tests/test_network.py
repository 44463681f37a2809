"""Tests for crmsim.network: structure of every generator, the neighbour operations, the
edge-list loader and input validation."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsim import network
from crmsim.errors import ConfigError
from crmsim.network import Network, build_network, load_edgelist

GENERATED = ("small_world", "scale_free", "random")


def build(kind: str, n: int = 2000, mean_degree: float = 10.0, seed: int = 1, **kw) -> Network:
    return build_network(kind, n, mean_degree, np.random.default_rng(seed), **kw)


def assert_simple_csr(a: sp.csr_array, n: int) -> None:
    """Symmetric, int32-indexed, float32, no self-loops, no duplicate entries."""
    assert isinstance(a, sp.csr_array)
    assert a.shape == (n, n)
    assert a.indices.dtype == np.int32 and a.indptr.dtype == np.int32
    assert a.data.dtype == np.float32
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(a.indptr))
    cols = a.indices.astype(np.int64)
    assert not np.any(rows == cols), "self-loop stored"
    # Strictly increasing row * n + col means sorted rows and no entry stored twice.
    assert np.all(np.diff(rows * n + cols) > 0), "duplicate or unsorted entries"
    assert (a != a.T).nnz == 0, "not symmetric"


def pattern(a: sp.csr_array) -> np.ndarray:
    """Dense 0/1 adjacency from the stored entries, so zero-weight edges still count."""
    return sp.csr_array((np.ones(a.nnz), a.indices, a.indptr), shape=a.shape).toarray()


def assert_network_invariants(net: Network) -> None:
    assert_simple_csr(net.strong, net.n)
    degree = np.diff(net.strong.indptr)
    if net.weak is not None:
        assert_simple_csr(net.weak, net.n)
        assert net.strong.multiply(net.weak).nnz == 0, "weak tie duplicates a strong tie"
        degree = degree + np.diff(net.weak.indptr)
    assert net.degree.dtype == np.int32
    np.testing.assert_array_equal(net.degree, degree)
    assert net.n_edges * 2 == net.degree.sum()


def same_network(a: Network, b: Network) -> bool:
    layers_equal = all(
        (x is None and y is None)
        or (
            x is not None
            and y is not None
            and np.array_equal(x.indices, y.indices)
            and np.array_equal(x.indptr, y.indptr)
            and np.array_equal(x.data, y.data)
        )
        for x, y in ((a.strong, b.strong), (a.weak, b.weak))
    )
    return layers_equal and np.array_equal(a.degree, b.degree)


# --- generators -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", GENERATED)
def test_generators_build_simple_symmetric_int32_graphs(kind: str) -> None:
    assert_network_invariants(build(kind))


@pytest.mark.parametrize("kind", ["scale_free", "random"])
@pytest.mark.parametrize(("n", "mean_degree"), [(2000, 10.0), (1001, 3.3), (500, 1.0)])
def test_random_and_scale_free_hit_the_edge_count_exactly(
    kind: str, n: int, mean_degree: float
) -> None:
    # Both draw G(n, m)-style: rejection sampling tops up until exactly m = round(n*d/2)
    # distinct edges exist, so the mean degree has no sampling error at all.  (For G(n, p) it
    # would: the edge count is Binomial(n(n-1)/2, p) with variance ~ n*d/2, so the mean degree
    # 2E/n would have sd ~ 2*sqrt(n*d/2)/n = sqrt(2*d/n).)
    net = build(kind, n, mean_degree)
    assert net.n_edges == round(n * mean_degree / 2)


@pytest.mark.parametrize(("mean_degree", "k"), [(10.0, 10), (7.0, 6), (3.4, 2), (1.0, 2)])
def test_small_world_without_rewiring_is_the_ring_lattice(mean_degree: float, k: int) -> None:
    net = build("small_world", 300, mean_degree, rewire_prob=0.0)
    np.testing.assert_array_equal(net.degree, np.full(300, k))
    dense = pattern(net.strong)
    for offset in range(1, k // 2 + 1):
        np.testing.assert_array_equal(np.diagonal(dense, offset)[: 300 - offset], 1)


def test_small_world_mean_degree_is_k_minus_dropped_collisions() -> None:
    # Each of the n*k/2 lattice edges is rewired with probability p and then dropped if its new
    # end is the source itself or an existing neighbour: probability <= (k+1)/n.  So the number
    # of dropped edges L is roughly Poisson with mean at most lam = p*k*(k+1)/2, independent of
    # n, and the mean degree is k - 2L/n.  We allow L up to lam + 6*sqrt(lam) + 1.
    n, k, p = 2000, 10, 0.1
    lam = p * k * (k + 1) / 2
    max_deficit = 2 * (lam + 6 * math.sqrt(lam) + 1) / n
    for seed in range(5):
        mean = build("small_world", n, k, seed, rewire_prob=p).degree.mean()
        assert k - max_deficit <= mean <= k


def test_random_degrees_are_roughly_poisson() -> None:
    # ER degrees are ~Poisson(d).  The sample variance of n Poisson(d) draws has variance
    # (mu4 - sigma^4)/n = (d + 2*d^2)/n; we allow 5 of those standard deviations.
    n, d = 5000, 10.0
    degree = build("random", n, d).degree
    assert abs(degree.var() - d) < 5 * math.sqrt((d + 2 * d**2) / n)


def test_small_world_is_far_more_clustered_than_random() -> None:
    # networkx only checks the result.  Watts-Strogatz with k=10, p=0.1 has clustering about
    # 3(k-2)/(4(k-1)) * (1-p)^3 ~ 0.49; an ER graph has about k/n = 0.005.
    sw = nx.average_clustering(nx.from_scipy_sparse_array(build("small_world").strong))
    er = nx.average_clustering(nx.from_scipy_sparse_array(build("random").strong))
    assert sw > 0.35
    assert sw > 20 * er


def test_scale_free_has_hubs_that_random_lacks() -> None:
    n, d = 20000, 10.0
    sf = build("scale_free", n, d).degree
    er = build("random", n, d).degree
    assert sf.max() > 5 * er.max()
    # P(k > x) ~ (k_min/x)^2 with k_min ~ d/2 puts ~1% of nodes above 5d; ER puts essentially
    # none there (P(Poisson(10) > 50) ~ 1e-17).
    assert np.mean(sf > 5 * d) > 0.003
    assert np.mean(er > 5 * d) == 0


@pytest.mark.parametrize("kind", GENERATED)
def test_generators_are_deterministic_per_seed(kind: str) -> None:
    a = build(kind, 500, 6.0, seed=7, weak_degree=2.0)
    b = build(kind, 500, 6.0, seed=7, weak_degree=2.0)
    c = build(kind, 500, 6.0, seed=8, weak_degree=2.0)
    assert same_network(a, b)
    assert not same_network(a, c)


@pytest.mark.parametrize("kind", ["random", "scale_free"])
def test_dense_requests_are_realised(kind: str) -> None:
    # mean degree n-1 means every pair: rejection sampling must still terminate.
    net = build(kind, 12, 11.0)
    assert net.n_edges == 66
    np.testing.assert_array_equal(net.degree, 11)


def test_rejection_sampling_gives_up_with_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # One round of ~140 uniform draws essentially never covers all 66 pairs of 12 nodes.
    monkeypatch.setattr(network, "_MAX_ROUNDS", 1)
    with pytest.raises(ConfigError) as info:
        build("random", 12, 11.0)
    assert info.value.key == "network.mean_degree"
    with pytest.raises(ConfigError) as info:
        build("random", 12, 1.0, weak_degree=9.9)
    assert info.value.key == "network.weak_degree"


# --- weak layer -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", GENERATED)
def test_weak_layer_is_disjoint_random_ties(kind: str) -> None:
    n, weak_degree = 1000, 4.0
    net = build(kind, n, 6.0, weak_degree=weak_degree)
    assert_network_invariants(net)
    assert net.weak.nnz // 2 == round(n * weak_degree / 2)


def test_no_weak_layer_by_default() -> None:
    assert build("random").weak is None


# --- neighbour operations ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", GENERATED)
def test_neighbour_ops_match_dense_algebra(kind: str) -> None:
    n = 80
    net = build(kind, n, 5.0, weak_degree=3.0)
    rng = np.random.default_rng(3)
    x = rng.normal(size=n)
    mask = rng.random(n) < 0.3
    strong, weak = net.strong.toarray(), net.weak.toarray()
    np.testing.assert_allclose(net.neighbour_sum(x), strong @ x)
    np.testing.assert_allclose(net.neighbour_sum(x, "weak"), weak @ x)
    np.testing.assert_allclose(net.neighbour_sum(x, "all"), (strong + weak) @ x)
    assert net.neighbour_sum(x).dtype == np.float64
    adjacency = pattern(net.strong) + pattern(net.weak)
    degree = adjacency.sum(axis=1)
    expected = np.where(degree > 0, adjacency @ mask / np.maximum(degree, 1), 0.0)
    np.testing.assert_allclose(net.neighbour_share(mask), expected)


def test_neighbour_ops_with_weights_zero_weights_and_isolated_nodes(tmp_path: Path) -> None:
    # Node 4 is isolated; the 0-weight edge still makes 2 and 3 neighbours.
    file = tmp_path / "edges.txt"
    file.write_text("0 1 2.0\n1 2 0.5\n2 3 0\n0 2 1\n")
    net = build_network("edgelist", 5, 0.0, np.random.default_rng(0), path=file)
    x = np.array([1.0, 10.0, 100.0, 1000.0, 5.0])
    expected = [2 * 10 + 1 * 100, 2 * 1 + 0.5 * 100, 1 * 1 + 0.5 * 10 + 0 * 1000, 0 * 100, 0]
    np.testing.assert_allclose(net.neighbour_sum(x), expected)
    mask = np.array([False, True, False, True, True])
    np.testing.assert_allclose(net.neighbour_share(mask), [1 / 2, 0, 2 / 3, 0, 0])
    np.testing.assert_array_equal(net.degree, [2, 2, 3, 1, 0])


def test_neighbour_ops_reject_bad_arguments() -> None:
    net = build("random", 50, 4.0)
    with pytest.raises(ValueError, match="shape"):
        net.neighbour_sum(np.zeros(49))
    with pytest.raises(ValueError, match="layer"):
        net.neighbour_sum(np.zeros(50), layer="both")
    with pytest.raises(ValueError, match="layer"):
        build("complete", 5).neighbour_sum(np.zeros(5), layer="both")
    np.testing.assert_array_equal(net.neighbour_sum(np.ones(50), "weak"), 0)


# --- complete ---------------------------------------------------------------------------------


def test_complete_materialises_nothing_and_uses_totals() -> None:
    n = 40
    net = build_network("complete", n, 0.0, np.random.default_rng(0), weak_degree=5.0)
    assert net.complete and net.strong is None and net.weak is None
    assert net.n_edges == 0
    np.testing.assert_array_equal(net.degree, n - 1)
    assert net.degree.dtype == np.int32
    rng = np.random.default_rng(1)
    x = rng.normal(size=n)
    mask = rng.random(n) < 0.4
    everyone_else = np.ones((n, n)) - np.eye(n)
    np.testing.assert_allclose(net.neighbour_sum(x), everyone_else @ x)
    np.testing.assert_allclose(net.neighbour_sum(x, "all"), everyone_else @ x)
    np.testing.assert_array_equal(net.neighbour_sum(x, "weak"), 0)
    np.testing.assert_allclose(net.neighbour_share(mask), everyone_else @ mask / (n - 1))


def test_complete_at_a_million_people_is_free() -> None:
    net = build_network("complete", 10**6, 10.0, np.random.default_rng(0))
    assert net.degree.shape == (10**6,)
    mask = np.zeros(10**6, dtype=bool)
    mask[:10] = True
    share = net.neighbour_share(mask)
    assert share[0] == pytest.approx(9 / (10**6 - 1))
    assert share[-1] == pytest.approx(10 / (10**6 - 1))


# --- property test ----------------------------------------------------------------------------


@st.composite
def network_args(draw: st.DrawFn) -> tuple[str, int, float, float, float, int]:
    kind = draw(st.sampled_from(GENERATED))
    n = draw(st.integers(2, 60))
    mean_degree = draw(st.floats(0.05, n - 1))
    rewire_prob = draw(st.floats(0, 1))
    # Leave room for the weak ties: the small-world lattice may round the degree up by one.
    room = max(0.0, n - 3 - mean_degree)
    weak_degree = draw(st.floats(0, 1)) * 0.9 * room
    return kind, n, mean_degree, rewire_prob, weak_degree, draw(st.integers(0, 2**32))


@settings(max_examples=80, deadline=None)
@given(network_args())
def test_any_valid_input_gives_a_consistent_network(
    args: tuple[str, int, float, float, float, int],
) -> None:
    kind, n, mean_degree, rewire_prob, weak_degree, seed = args
    net = build_network(
        kind,
        n,
        mean_degree,
        np.random.default_rng(seed),
        rewire_prob=rewire_prob,
        weak_degree=weak_degree,
    )
    assert_network_invariants(net)
    x = np.arange(n, dtype=np.float64)
    dense = net.strong.toarray() + (net.weak.toarray() if net.weak is not None else 0)
    np.testing.assert_allclose(net.neighbour_sum(x, "all"), dense @ x)


# --- edge lists -------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "edges.txt") -> Path:
    file = tmp_path / name
    file.write_text(text)
    return file


def edges_of(a: sp.csr_array) -> dict[tuple[int, int], float]:
    coo = sp.triu(a, k=1).tocoo()
    return {(int(i), int(j)): float(w) for i, j, w in zip(coo.row, coo.col, coo.data, strict=True)}


def test_edgelist_whitespace_without_weights(tmp_path: Path) -> None:
    file = write(tmp_path, "# a comment\n0 1\n\n  1\t2   # inline comment\n3 2\n")
    a = load_edgelist(file, 5)
    assert_simple_csr(a, 5)
    assert edges_of(a) == {(0, 1): 1.0, (1, 2): 1.0, (2, 3): 1.0}


def test_edgelist_csv_with_header_and_weights(tmp_path: Path) -> None:
    file = write(tmp_path, "# exported\nsource,target,weight\n0,1,0.5\n2, 1, 3\n", "e.csv")
    a = load_edgelist(file, 3)
    assert_simple_csr(a, 3)
    assert edges_of(a) == {(0, 1): 0.5, (1, 2): 3.0}


def test_edgelist_drops_self_loops_and_merges_duplicates_keeping_max(tmp_path: Path) -> None:
    file = write(tmp_path, "0 1 1.0\n1 0 4.0\n0 1 2.0\n2 2 9.0\n1 2 1.5\n")
    a = load_edgelist(file, 3)
    assert_simple_csr(a, 3)
    assert edges_of(a) == {(0, 1): 4.0, (1, 2): 1.5}


def test_edgelist_through_build_network_with_weak_layer(tmp_path: Path) -> None:
    file = write(tmp_path, "\n".join(f"{i} {i + 1}" for i in range(99)) + "\n")
    net = build_network("edgelist", 100, 0.0, np.random.default_rng(0), path=file, weak_degree=2.0)
    assert net.kind == "edgelist" and not net.complete
    assert_network_invariants(net)
    assert net.strong.nnz // 2 == 99 and net.weak.nnz // 2 == 100


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 1000)),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([",", " ", "\t", ", "]),
)
def test_edgelist_matches_a_plain_python_reading(
    rows: list[tuple[int, int, int]], separator: str
) -> None:
    expected: dict[tuple[int, int], float] = {}
    for u, v, w in rows:
        if u != v:
            pair = (min(u, v), max(u, v))
            expected[pair] = max(expected.get(pair, 0.0), w / 8)  # eighths are exact in float32
    text = "".join(f"{u}{separator}{v}{separator}{w / 8}\n" for u, v, w in rows)
    with tempfile.TemporaryDirectory() as folder:
        file = write(Path(folder), text)
        if not expected:
            with pytest.raises(ConfigError, match="self-loops"):
                load_edgelist(file, 10)
            return
        a = load_edgelist(file, 10)
    assert_simple_csr(a, 10)
    assert edges_of(a) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no edges"),
        ("# only a comment\n\n", "no edges"),
        ("source target\n", "no edges"),
        ("1 1\n2 2\n", "self-loops"),
        ("0 1\nx 2\n", "'x'"),
        ("0 abc\n", "'abc'"),
        ("0 1\n1.5 2\n", "Line 2: node id 1.5 is not an integer"),
        ("0 1\n-1 2\n", "node id -1 is negative"),
        ("0 1\n2 5\n", "market.n_people is 5"),
        ("0 1\n0 7\n", "node id 7 is out of range"),
        ("0 1 1\n1 2 -1\n", "weight -1"),
        ("0 1 1\n1 2 nan\n", "weight nan"),
        ("0 1 1\n1 2 inf\n", "weight inf"),
        ("0 1 1\n1 2 heavy\n", "'heavy'"),
        ("0 1 1\n1 2\n", "weight nan"),
        ("0 1 1 1\n", "4 columns"),
        ("0\n", "columns"),
        ("0 1\n2\n", "fewer than two"),
        ("0 1\n1 2 3 4\n", "parsed"),
    ],
)
def test_bad_edgelists_raise_config_error(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_edgelist(write(tmp_path, text), 5)
    assert "network.path" in str(info.value)
    assert fragment in str(info.value)
    assert "edges.txt" in str(info.value)


def test_edgelist_that_is_not_utf8_raises_config_error(tmp_path: Path) -> None:
    file = tmp_path / "edges.txt"
    file.write_bytes(b"0 1\n1 2 \xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_edgelist(file, 5)
    assert "network.path" in str(info.value)


def test_edgelist_with_byte_order_mark_and_windows_line_ends(tmp_path: Path) -> None:
    file = tmp_path / "edges.csv"
    file.write_bytes(b"\xef\xbb\xbfa,b\r\n0,1\r\n1,2\r\n")
    assert edges_of(load_edgelist(file, 3)) == {(0, 1): 1.0, (1, 2): 1.0}


def test_missing_edgelist_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_edgelist(tmp_path / "nope.csv", 5)
    assert "network.path" in str(info.value) and "nope.csv" in str(info.value)
    with pytest.raises(ConfigError) as info:
        build_network("edgelist", 5, 2.0, np.random.default_rng(0))
    assert "network.path" in str(info.value)


def test_edgelist_errors_point_at_the_file_line(tmp_path: Path) -> None:
    text = "# comment\nfrom,to\n0,1\n\n# another\n1,2\n2,9\n"
    with pytest.raises(ConfigError) as info:
        load_edgelist(write(tmp_path, text), 5)
    assert "Line 7: node id 9 is out of range: market.n_people is 5" in str(info.value)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "n", "mean_degree", "extra", "key"),
    [
        ("lattice", 100, 4.0, {}, "network.kind"),
        ("random", 1, 4.0, {}, "market.n_people"),
        ("complete", 1, 4.0, {}, "market.n_people"),
        ("random", 10.5, 4.0, {}, "market.n_people"),
        ("random", 100, 0.0, {}, "network.mean_degree"),
        ("random", 100, -2.0, {}, "network.mean_degree"),
        ("scale_free", 100, 100.0, {}, "network.mean_degree"),
        ("small_world", 100, math.nan, {}, "network.mean_degree"),
        ("small_world", 100, 4.0, {"rewire_prob": -0.1}, "network.rewire_prob"),
        ("small_world", 100, 4.0, {"rewire_prob": 1.5}, "network.rewire_prob"),
        ("random", 100, 4.0, {"weak_degree": -1.0}, "network.weak_degree"),
        ("random", 100, 4.0, {"weak_degree": 100.0}, "network.weak_degree"),
        ("random", 100, 60.0, {"weak_degree": 60.0}, "network.weak_degree"),
    ],
)
def test_invalid_parameters_name_their_key(
    kind: str, n: int, mean_degree: float, extra: dict, key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        build_network(kind, n, mean_degree, np.random.default_rng(0), **extra)
    assert info.value.key == key
    assert key in str(info.value)


def test_unknown_kind_lists_the_allowed_kinds() -> None:
    with pytest.raises(ConfigError) as info:
        build("lattice")
    for kind in ("small_world", "scale_free", "random", "complete", "edgelist"):
        assert kind in str(info.value)


def test_mean_degree_error_mentions_the_population() -> None:
    with pytest.raises(ConfigError) as info:
        build("random", 100, 150.0)
    assert "below market.n_people (100)" in str(info.value)


# --- size -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", GENERATED)
def test_large_networks_build(kind: str) -> None:
    n = 200_000
    net = build(kind, n, 10.0)
    assert net.strong.shape == (n, n)
    assert net.strong.indices.dtype == np.int32 and net.strong.indptr.dtype == np.int32
    assert net.strong.data.dtype == np.float32
    assert net.degree.shape == (n,) and net.degree.dtype == np.int32
    assert 9.9 < net.degree.mean() <= 10.0
