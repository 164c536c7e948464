"""Invariants every enumerated complex must satisfy (SPEC §6.2)."""

import numpy as np
import pytest
from networks import maxout_network, random_network

import powercells as pc
from powercells.geometry import polytope_volume

CASES = [
    (random_network(2, [6, 5], 0), 2),
    (random_network(2, [5, 4, 3], 1, activations=["relu", "leaky_relu:0.2", "abs"], head=2), 2),
    (random_network(3, [6, 4], 2), 3),
    (random_network(3, [4, 4], 3, activations=["abs", "relu"], head=1), 3),
    (maxout_network(2, [3, 2], 3, seed=4), 2),
    (random_network(5, [6, 5], 5), 5),
]


# every case on the lp engine, the 2-D ones on the planar engine too
PARAMS = [(i, e) for i, (_, d) in enumerate(CASES)
          for e in (("lp", "planar") if d == 2 else ("lp",))]


@pytest.fixture(scope="module", params=PARAMS, ids=[f"case{i}-{e}" for i, e in PARAMS])
def case(request):
    i, engine = request.param
    network, d = CASES[i]
    box = pc.Box(-1, 1, dim=d)
    return network, box, pc.subdivide(network, box, engine=engine)


def test_leaf_codes_match_the_forward_pass_at_interior_points(case):
    network, box, tree = case
    for depth in range(1, tree.depth + 1):
        level = tree.levels[depth]
        for i in range(len(level)):
            path = tree.code_path(depth, i)
            codes = network.codes(level.interior_point[i][None, :])
            for l in range(depth):
                np.testing.assert_array_equal(codes[l][0], path[l])


def test_affine_map_matches_the_network_at_interior_points(case):
    network, box, tree = case
    level = tree.levels[-1]
    for i in range(len(level)):
        A, B = tree.affine_map(tree.depth, i)
        x = level.interior_point[i]
        np.testing.assert_allclose(A @ x + B, network.forward(x)[0], rtol=1e-9, atol=1e-9)


def test_leaves_are_distinct_regions(case):
    network, box, tree = case
    codes = tree.leaf_codes()
    assert len({row.tobytes() for row in codes}) == len(codes)
    assert np.all(tree.levels[-1].inradius > tree.tolerances.region)
    # the interior point is the centre of a ball of that radius inside the region
    for i in range(tree.n_regions):
        H, h = tree.halfspaces(tree.depth, i)
        x, r = tree.levels[-1].interior_point[i], tree.levels[-1].inradius[i]
        assert np.min(h - H @ x) >= r - 1e-9


def test_sampled_codes_are_a_subset(case):
    network, box, tree = case
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(20000, box.dim))
    sampled = {row.tobytes() for row in np.hstack(network.codes(X)).astype(np.int16)}
    enumerated = {row.tobytes() for row in tree.leaf_codes()}
    assert sampled <= enumerated


def test_locate_returns_the_leaf_of_each_point(case):
    network, box, tree = case
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(200, box.dim))
    leaves = tree.locate(X)
    codes = tree.leaf_codes()
    full = np.hstack(network.codes(X)).astype(np.int16)
    for x, leaf, code in zip(X, leaves, full):
        assert leaf >= 0
        np.testing.assert_array_equal(codes[leaf], code)
    assert tree.locate(np.full(box.dim, 3.0))[0] == -1


@pytest.mark.parametrize("idx", [0, 1, 2, 3, 4])
def test_volumes_tile_the_domain(idx):
    network, d = CASES[idx]
    box = pc.Box(-1, 1, dim=d)
    tree = pc.subdivide(network, box)
    total = 2.0 ** d
    for depth in range(1, tree.depth + 1):
        level = tree.levels[depth]
        vols = np.array([polytope_volume(*tree.halfspaces(depth, i), level.interior_point[i])
                         for i in range(len(level))])
        assert vols.sum() == pytest.approx(total, rel=1e-9)
        if depth > 1:
            parents = tree.levels[depth - 1]
            pvols = np.array([polytope_volume(*tree.halfspaces(depth - 1, i),
                                              parents.interior_point[i])
                              for i in range(len(parents))])
            np.testing.assert_allclose(np.bincount(level.parent, vols, len(parents)), pvols,
                                       rtol=1e-8, atol=1e-12)


def test_permuting_hidden_units_leaves_the_partition_unchanged():
    network = random_network(2, [5, 4], 7)
    (W1, W2) = (network.layers[0].weight, network.layers[1].weight)
    (b1, b2) = (network.layers[0].bias, network.layers[1].bias)
    perm = np.array([3, 0, 4, 1, 2])
    permuted = pc.Network.from_weights([(W1[perm], b1[perm]), (W2[:, perm], b2)], ["relu", "relu"])
    box = pc.Box(-1, 1, dim=2)
    a, b = pc.subdivide(network, box), pc.subdivide(permuted, box)
    assert a.per_layer == b.per_layer
    codes_a = {tuple(r) for r in a.leaf_codes()[:, list(perm) + [5, 6, 7, 8]].tolist()}
    assert codes_a == {tuple(r) for r in b.leaf_codes().tolist()}


def test_positive_rescaling_leaves_the_partition_unchanged():
    network = random_network(2, [5, 4], 8)
    W1, b1 = network.layers[0].weight, network.layers[0].bias
    W2, b2 = network.layers[1].weight, network.layers[1].bias
    c = np.array([0.5, 2.0, 3.0, 0.25, 1.5])
    rescaled = pc.Network.from_weights([(c[:, None] * W1, c * b1), (W2 / c, b2)], ["relu", "relu"])
    box = pc.Box(-1, 1, dim=2)
    a, b = pc.subdivide(network, box), pc.subdivide(rescaled, box)
    assert pc.testing.leaf_code_set(a) == pc.testing.leaf_code_set(b)
    x = np.array([[0.3, -0.2]])
    np.testing.assert_allclose(network.forward(x), rescaled.forward(x), rtol=1e-12)
