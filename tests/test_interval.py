"""The interval engine (1-D domains and segments between two input points): identical code sets
with the lp engine and the brute-force enumerator, intervals that tile the domain."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from networks import maxout_network, maxpool_network, random_network
from strategies import integer_networks

import powercells as pc
from powercells.testing import (
    assert_partitions_equal,
    brute_force_regions,
    leaf_code_set,
)

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
LINE = pc.Box(-2, 2, dim=1)


def both(network, domain):
    fast = pc.subdivide(network, domain, engine="interval")
    lp = pc.subdivide(network, domain, engine="lp")
    assert fast.engine == "interval"
    assert fast.per_layer == lp.per_layer
    assert leaf_code_set(fast) == leaf_code_set(lp)
    return fast


def assert_tiles(tree):
    lo0, hi0 = tree.intervals(0)
    for depth in range(1, tree.depth + 1):
        lo, hi = tree.intervals(depth)
        order = np.argsort(lo)
        lo, hi = lo[order], hi[order]
        assert lo[0] == lo0[0] and hi[-1] == hi0[0]
        np.testing.assert_allclose(lo[1:], hi[:-1], atol=1e-12)       # contiguous, no overlap
        level = tree.levels[depth]
        np.testing.assert_allclose(level.interior_point[order, 0], (lo + hi) / 2)
        np.testing.assert_allclose(level.inradius[order], (hi - lo) / 2)


@st.composite
def line_networks(draw):
    depth = draw(st.integers(1, 3))
    widths = [draw(st.integers(1, 6)) for _ in range(depth)]
    acts = [draw(st.sampled_from(["relu", "leaky_relu:0.1", "abs"])) for _ in range(depth)]
    head = draw(st.sampled_from([None, 1, 2]))
    return random_network(1, widths, draw(st.integers(0, 2 ** 16)), activations=acts, head=head)


@SETTINGS
@given(line_networks())
def test_interval_equals_lp_and_brute_force(network):
    tree = both(network, LINE)
    assert_partitions_equal(tree, brute_force_regions(network, LINE))
    assert_tiles(tree)


@SETTINGS
@given(integer_networks(dims=(1, 1), depth=(1, 3)))
def test_degenerate_integer_networks(case):
    network, _ = case
    box = pc.Box(-1, 1, dim=1)
    tree = both(network, box)
    assert_partitions_equal(tree, brute_force_regions(network, box))
    assert len(tree.slivers) == 0


@pytest.mark.parametrize("pieces,widths,seed", [(2, [3], 0), (3, [3, 2], 1), (4, [2, 3], 2)])
def test_maxout(pieces, widths, seed):
    network = maxout_network(1, widths, pieces, seed=seed)
    tree = both(network, LINE)
    assert_partitions_equal(tree, brute_force_regions(network, LINE))
    assert_tiles(tree)


def test_relu_maxpool():
    network = maxpool_network(1, 5, [[0, 1], [2, 3, 4], [1]], seed=4, second=3)
    tree = both(network, LINE)
    assert_partitions_equal(tree, brute_force_regions(network, LINE))


def test_segment_between_two_points_of_a_16_input_network():
    rng = np.random.default_rng(5)
    network = random_network(16, [12, 12], seed=5, bias=0.1)
    segment = pc.Slice.through_points(rng.normal(size=(2, 16)))
    tree = both(network, segment)
    assert tree.n_regions > 5
    X = tree.input_points()
    assert {tuple(int(v) for v in row) for row in np.hstack(network.codes(X))} == \
        leaf_code_set(tree)
    assert_tiles(tree)


def test_breakpoints_are_exact_roots():
    # one layer, breakpoints t_k = -b_k / w_k (SPEC §6.1.3), duplicated and outside ones
    W = np.array([[1.0], [-2.0], [0.5], [3.0], [2.0], [-1.0]])
    t = np.array([-0.7, -0.2, 0.1, 0.4, 0.4, 2.5])
    network = pc.Network.from_weights([(W, -W[:, 0] * t)], ["relu"])
    tree = pc.subdivide(network, pc.Box(-1, 1, dim=1))
    lo, hi = tree.intervals()
    # 3 * 0.4 rounds up and 2 * 0.4 does not: the two roots "0.4" are 3.7e-17 apart in exact
    # arithmetic, and the interval between them is a (thin) region
    np.testing.assert_allclose(np.sort(lo)[1:], [-0.7, -0.2, 0.1, 0.4, 0.4], atol=1e-15)
    assert tree.per_layer == [6] and tree.levels[1].thin.sum() == 1
    assert pc.count_regions(network, pc.Box(-1, 1, dim=1), certify=True).per_layer == [6]
    # dyadic roots are exact: a true duplicate makes no region
    t[3] = t[4] = 0.375
    network = pc.Network.from_weights([(W, -W[:, 0] * t)], ["relu"])
    assert pc.subdivide(network, pc.Box(-1, 1, dim=1)).per_layer == [5]


def test_interval_errors():
    with pytest.raises(pc.PowercellsError, match="1-D domain"):
        pc.subdivide(random_network(2, [3]), pc.Box(-1, 1, dim=2), engine="interval")
    with pytest.raises(pc.GeometryError, match="1-D domains"):
        pc.subdivide(random_network(2, [3]), pc.Box(-1, 1, dim=2)).intervals()
