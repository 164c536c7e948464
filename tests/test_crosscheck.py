"""Engine against the brute-force enumerator on random networks (hypothesis), and the two LP
backends against each other. Exact code sets must agree."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from networks import (
    maxout_network,
    maxpool_network,
    near_coincident_network,
    random_network,
)
from strategies import integer_networks

import powercells as pc
from powercells.testing import (
    assert_partitions_equal,
    brute_force_regions,
    leaf_code_set,
    near_copies_weights,
)

ACTIVATIONS = ["relu", "leaky_relu:0.1", "leaky_relu:0.5", "abs"]
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def small_networks(draw):
    d = draw(st.integers(1, 5))
    depth = draw(st.integers(1, 2 if d > 3 else 3))
    widths = [draw(st.integers(1, 6 if d <= 2 else 4)) for _ in range(depth)]
    acts = [draw(st.sampled_from(ACTIVATIONS)) for _ in range(depth)]
    seed = draw(st.integers(0, 2 ** 16))
    head = draw(st.sampled_from([None, 1, 2]))
    return random_network(d, widths, seed, activations=acts, head=head), d


@SETTINGS
@given(small_networks())
def test_lp_engine_equals_brute_force(case):
    network, d = case
    box = pc.Box(-1, 1, dim=d)
    tree = pc.subdivide(network, box, engine="lp")
    assert_partitions_equal(tree, brute_force_regions(network, box))


@SETTINGS
@given(integer_networks())
def test_degenerate_integer_networks_equal_brute_force(case):
    network, d = case
    box = pc.Box(-1, 1, dim=d)
    assert_partitions_equal(pc.subdivide(network, box, engine="lp"),
                            brute_force_regions(network, box))


@pytest.mark.parametrize("d,widths,pieces,seed", [(1, [3, 2], 3, 0), (2, [2, 2], 3, 1),
                                                   (2, [3], 4, 2), (3, [2, 2], 2, 3),
                                                   (4, [2], 3, 4)])
def test_maxout_equals_brute_force(d, widths, pieces, seed):
    network = maxout_network(d, widths, pieces, seed)
    box = pc.Box(-1, 1, dim=d)
    assert_partitions_equal(pc.subdivide(network, box, engine="lp"),
                            brute_force_regions(network, box))


@pytest.mark.parametrize("groups,second,seed", [([[0, 1], [2, 3]], None, 0),
                                                ([[0, 1, 2], [3]], 3, 1),
                                                ([[0, 1], [1, 2], [2, 3, 4]], 2, 2)])
def test_relu_maxpool_equals_brute_force(groups, second, seed):
    width = 1 + max(max(g) for g in groups)
    network = maxpool_network(2, width, groups, seed, second=second)
    box = pc.Box(-1, 1, dim=2)
    assert_partitions_equal(pc.subdivide(network, box, engine="lp"),
                            brute_force_regions(network, box))


def test_maxout_with_duplicate_pieces():
    # unit 0 repeats a piece; unit 1 has two pieces that differ by a constant only
    A = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]],
                  [[1.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]])
    B = np.array([[0.0, 0.0, 0.1], [0.0, 0.5, 0.0]])
    network = pc.Network([pc.Layer.maso(A, B)])
    box = pc.Box(-1, 1, dim=2)
    tree = pc.subdivide(network, box, engine="lp")
    assert_partitions_equal(tree, brute_force_regions(network, box))
    codes = tree.levels[1].code
    assert 1 not in codes[:, 0].tolist()   # a tie goes to the smaller index
    assert 0 not in codes[:, 1].tolist()   # piece 1 beats piece 0 by 0.5 everywhere


@pytest.mark.parametrize("seed", range(4))
def test_highs_and_cvxpy_backends_agree(seed):
    pytest.importorskip("cvxpy")
    network = random_network(3, [4, 3], seed, activations=["relu", "abs"])
    box = pc.Box(-1, 1, dim=3)
    a = pc.subdivide(network, box, lp="highs")
    b = pc.subdivide(network, box, lp="cvxpy")
    assert leaf_code_set(a) == leaf_code_set(b)
    assert a.per_layer == b.per_layer
    # same regions, same inradii (centres may differ where the Chebyshev centre is not unique)
    for level_a, level_b in zip(a.levels[1:], b.levels[1:]):
        np.testing.assert_allclose(level_a.inradius, level_b.inradius, rtol=1e-6, atol=1e-7)


def _near_parallel_network(seed, d=6, noise=1e-9):
    """A first layer with 3-5 copies of one unit, each moved by ``noise`` (nearly parallel
    hyperplanes through a few offsets), 2-4 random units, then 4 random units."""
    r = np.random.default_rng(seed)
    w = r.normal(size=d)
    w /= np.linalg.norm(w)
    n_par, n_rand = int(r.integers(3, 6)), int(r.integers(2, 5))
    W = np.vstack([w + noise * r.normal(size=(n_par, d)), r.normal(size=(n_rand, d))])
    b = np.r_[r.choice([-0.4, -0.2, 0.0, 0.2, 0.4], n_par) + noise * r.normal(size=n_par),
              r.normal(size=n_rand) * 0.3]
    W2, b2 = r.normal(size=(4, len(b))), r.normal(size=4) * 0.3
    return pc.Network.from_weights([(W, b), (W2, b2)], ["relu", "relu"]), d


@pytest.mark.parametrize("make", [
    lambda: (random_network(6, [8, 8], 0, bias=0.25), 6),
    lambda: (random_network(10, [6, 6], 1, activations=["relu", "abs"], bias=0.25), 10),
    lambda: (random_network(14, [5, 4], 2, activations=["leaky_relu:0.1", "relu"]), 14),
    lambda: (maxout_network(5, [4, 3], 3, seed=3), 5),
    lambda: (near_coincident_network(), 4),
    lambda: (*_near_parallel_network(5), True),
    lambda: (*_near_parallel_network(9), True),
], ids=["d6", "d10-abs", "d14-leaky", "maxout-d5", "near-coincident-d4", "near-parallel-5",
        "near-parallel-9"])
def test_dense_and_highs_backends_agree(make):
    """The compiled dense simplex (warm-started dual simplex, HiGHS behind it) and HiGHS give
    the lp engine the same tree, at dimensions where its LPs take many pivots."""
    pytest.importorskip("numba")
    network, d, *exact = make()
    box = pc.Box(-1, 1, dim=d)
    a = pc.subdivide(network, box, engine="lp", lp="highs")
    b = pc.subdivide(network, box, engine="lp", lp="dense")
    assert leaf_code_set(a) == leaf_code_set(b)
    assert a.per_layer == b.per_layer
    for level_a, level_b in zip(a.levels[1:], b.levels[1:]):
        # rows 1e-9 apart: both solvers' radii are good to ~1e-8 there
        np.testing.assert_allclose(level_a.inradius, level_b.inradius, rtol=1e-6, atol=1e-8)
    if exact:       # and both count what exact arithmetic counts
        assert pc.count_regions(network, box, certify=True).per_layer == b.per_layer


def _near_copies_network(seed, noise, dims=(2, 4), deep=False):
    """:func:`powercells.testing.near_copies_weights` over a dimension drawn in ``dims``."""
    r = np.random.default_rng(seed)
    d = int(r.integers(dims[0], dims[1] + 1))
    return pc.Network.from_weights(near_copies_weights(r, d, noise, deep=deep)), d


@pytest.mark.parametrize("lp", ["highs", "dense"])
@pytest.mark.parametrize("seed,noise", [(0, 1e-8), (1, 1e-8), (4, 1e-8), (9, 1e-8),
                                        (13, 1e-8)])
def test_lp_engine_keeps_regions_its_solver_calls_empty(lp, seed, noise):
    """Near-copies of units: both LP solvers have called non-empty cells "clearly empty"
    (radius <= -tau, a point 4e-4 outside the cell as HiGHS's centre): 91 of 93 regions
    (seed 0, HiGHS) and 89 of 93 (seed 9, the dense simplex) were counted, no sliver or
    undecided cell reported. An "empty" verdict now stands only with a weak-duality proof;
    the others are settled exactly, so the count is the certified one."""
    if lp == "dense":
        pytest.importorskip("numba")
    network, d = _near_copies_network(seed, noise)
    box = pc.Box(-1, 1, dim=d)
    got = pc.count_regions(network, box, engine="lp", lp=lp, executor="serial")
    assert got.per_layer == pc.count_regions(network, box, certify=True).per_layer
    assert not any(got.undecided)


@pytest.mark.parametrize("seed,noise", [(0, 1e-10), (12, 1e-9)])
def test_vertex_engine_survives_a_solver_failing_on_a_thin_piece(seed, noise):
    """HiGHS returned "Unbounded" / "Unknown" on the Chebyshev LP of a thin piece between
    nearly parallel hyperplanes, and the count raised SolverError; the piece now keeps its
    certified ball (a sliver, settled exactly)."""
    network, d = _near_copies_network(seed, noise)
    box = pc.Box(-1, 1, dim=d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pc.PrecisionWarning)
        got = pc.count_regions(network, box, engine="vertex", executor="serial")
    assert got.per_layer == pc.count_regions(network, box, certify=True).per_layer


@pytest.mark.slow
def test_lp_engine_survives_highs_failing_on_nearly_parallel_rows():
    """HiGHS returned "Unknown" twice on a Chebyshev LP of a 6-D cell between near-copies of
    units, and the count raised SolverError; the side is now set aside (a sliver, settled
    exactly) and the count is the certified one."""
    network, d = _near_copies_network(4, 1e-7, dims=(5, 6), deep=True)
    box = pc.Box(-1, 1, dim=d)
    got = pc.count_regions(network, box, engine="lp", lp="highs", executor="serial")
    assert got.stats["lps_failed"] > 0
    assert got.per_layer == pc.count_regions(network, box, certify=True).per_layer
