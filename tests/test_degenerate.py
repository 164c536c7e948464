"""Degenerate networks (SPEC §3.4), each with its hand-derived exact count, each
also checked against the brute-force enumerator."""

import numpy as np
import pytest
from environment import VERTEX_PATHS, engine_defaults

import powercells as pc
from powercells.testing import assert_partitions_equal, brute_force_regions

BOX2 = pc.Box(-1, 1, dim=2)


def net(*layers):
    """layers: (W, b, activation) triples."""
    return pc.Network.from_weights([(np.array(W, float), np.array(b, float)) for W, b, _ in layers],
                                   [a for _, _, a in layers])


def check(network, domain, expected, lp="highs"):
    """The lp engine on the given backend, the vertex engine (both paths) and, on 1-D and 2-D
    domains, the interval and planar engines: all give the hand-derived counts and the
    brute-force enumerator's code sets."""
    tree = pc.subdivide(network, domain, engine="lp", lp=lp)
    assert tree.per_layer == expected
    assert len(tree.slivers) == 0
    brute = brute_force_regions(network, domain)
    assert_partitions_equal(tree, brute)
    if domain.dim in (1, 2):
        planar = pc.subdivide(network, domain, engine={1: "interval", 2: "planar"}[domain.dim])
        assert planar.per_layer == expected
        assert len(planar.slivers) == 0
        assert_partitions_equal(planar, brute)
        if domain.dim == 2:
            assert np.isclose(planar.areas().sum(), planar.areas(0).sum(), rtol=1e-12)
    for path in VERTEX_PATHS:          # numpy, and compiled when numba is installed
        with engine_defaults(compiled=path):
            vertex = pc.subdivide(network, domain, engine="vertex")
            assert vertex.per_layer == expected
            assert len(vertex.slivers) == 0
            assert_partitions_equal(vertex, brute)
            counted = pc.count_regions(network, domain, engine="vertex")
            assert counted.per_layer == expected and counted.undecided == [0] * len(expected)
    return tree


def test_duplicate_scaled_and_negated_neurons(lp):
    # x1 = 0 four times (identical, scaled by 2, negated), x2 = 0 once: 4 regions
    n = net(([[1, 0], [0, 1], [1, 0], [2, 0], [-1, 0]], [0, 0, 0, 0, 0], "relu"))
    tree = check(n, BOX2, [4], lp)
    for code, x in zip(tree.levels[1].code, tree.levels[1].interior_point):
        on = int(x[0] > 0)
        assert code.tolist() == [on, int(x[1] > 0), on, on, 1 - on]


def test_exactly_cancelling_scaled_duplicates():
    # 0.25 x and 0.75 x pooled by 3 and -1: the layer-2 pre-activation is exactly 0
    n = net(([[0.25, 0], [0.75, 0]], [0, 0], "relu"), ([[3.0, -1.0]], [0.0], "relu"))
    tree = check(n, BOX2, [2, 2])
    assert set(tree.levels[2].code[:, 0].tolist()) == {0}      # inactive everywhere (SPEC §1.3)


def test_nearly_cancelling_scaled_duplicates_follow_exact_arithmetic():
    # 3 * fl(0.1) - fl(0.3) = 2.8e-17 exactly, not 0: the zero rule takes the pre-activation as
    # identically 0 (inactive), but its float gradient is not 0, so the engine checks it in
    # exact arithmetic, where the unit is (barely) active on x1 > 0, as the forward pass says
    # and the certified mode counts; zero=0 follows float arithmetic to the same codes.
    n = net(([[0.1, 0], [0.3, 0]], [0, 0], "relu"), ([[3.0, -1.0]], [0.0], "relu"))
    tree = pc.subdivide(n, BOX2)
    assert tree.per_layer == [2, 2]
    assert set(tree.levels[2].code[:, 0].tolist()) == {0, 1}
    assert tree.stats["cells_replaced"] == 1
    certified = pc.subdivide(n, BOX2, certify=True)
    assert certified.path_codes(2).tolist() == tree.path_codes(2).tolist()
    exact = pc.subdivide(n, BOX2, tolerances=pc.Tolerances(zero=0.0))
    assert exact.per_layer == [2, 2]
    assert_partitions_equal(exact, brute_force_regions(n, BOX2, zero=0.0))


@pytest.mark.parametrize("n_lines", [2, 3, 4, 7])
def test_concurrent_lines(n_lines, lp):
    angles = np.pi * np.arange(n_lines) / n_lines + 0.1
    W = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    check(net((W, np.zeros(n_lines), "relu")), BOX2, [2 * n_lines], lp)


def test_concurrent_planes_in_3d():
    box = pc.Box(-1, 1, dim=3)
    # three planes through the x3 axis: 6 regions
    W = [[1, 0, 0], [0, 1, 0], [1, 1, 0]]
    check(net((W, [0, 0, 0], "relu")), box, [6])
    # four generic planes through one point: a central arrangement, 2 (1 + 3 + 3) = 14 regions
    W = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]
    check(net((W, [0, 0, 0, 0], "relu")), box, [14])


def test_hyperplanes_through_domain_vertices_and_along_edges(lp):
    # touches the box only at the corner (1, 1)
    check(net(([[1, 1]], [-2], "relu")), BOX2, [1], lp)
    # the diagonal through two corners
    check(net(([[1, 1]], [0], "relu")), BOX2, [2], lp)
    # along the edges x1 = 1 and x1 = -1, plus x2 = 0
    check(net(([[1, 0], [1, 0], [0, 1]], [-1, 1, 0], "relu")), BOX2, [2], lp)


@pytest.mark.parametrize("bias,code", [(0.3, 1), (-0.3, 0), (0.0, 0)])
def test_zero_weight_rows(bias, code):
    tree = check(net(([[0, 0], [1, 0]], [bias, 0], "relu")), BOX2, [2])
    assert set(tree.levels[1].code[:, 0].tolist()) == {code}


def test_dead_unit_in_layer_two():
    n = net(([[1, 0], [0, 1]], [0, 0], "relu"), ([[1, 1], [1, -1]], [-100, 0], "relu"))
    tree = check(n, BOX2, [4, 5])
    assert set(tree.levels[2].code[:, 0].tolist()) == {0}


def test_pre_activation_identically_zero_on_a_cell(lp):
    # layer 2 reads relu(x1): identically 0 on x1 < 0 (inactive there), positive on x1 > 0
    n = net(([[1, 0], [0, 1]], [0, 0], "relu"), ([[1, 0]], [0], "relu"))
    tree = check(n, BOX2, [4, 4], lp)
    for code, x in zip(tree.levels[2].code, tree.levels[2].interior_point):
        assert code[0] == int(x[0] > 0)
    # two duplicate units pooled with opposite signs: identically 0 everywhere
    n = net(([[1, 0], [1, 0]], [0, 0], "relu"), ([[1, -1]], [0], "relu"))
    check(n, BOX2, [2, 2], lp)


def test_cells_touching_only_at_a_point_or_a_line(lp):
    # 1-D: relu(-|x|) touches 0 only at x = 0
    n = net(([[1], [-1]], [0, 0], "relu"), ([[-1, -1]], [0], "relu"))
    check(n, pc.Box(-1, 1, dim=1), [2, 2], lp)
    # 2-D: relu(-|x1|) is 0 only on the line x1 = 0
    n = net(([[1, 0], [-1, 0]], [0, 0], "relu"), ([[-1, -1]], [0], "relu"))
    check(n, BOX2, [2, 2], lp)
    # 2-D: relu(-|x1| - |x2|) is 0 only at the origin, where four cells meet
    n = net(([[1, 0], [-1, 0], [0, 1], [0, -1]], [0, 0, 0, 0], "relu"),
            ([[-1, -1, -1, -1]], [0], "relu"))
    check(n, BOX2, [4, 4], lp)


def test_layer_two_boundary_along_a_layer_one_boundary():
    # relu(x1) - relu(-x1) = x1: layer 2's hyperplane is layer 1's, so it cuts nothing new
    n = net(([[1, 0], [-1, 0], [0, 1]], [0, 0, 0], "relu"), ([[1, -1, 0]], [0], "relu"))
    check(n, BOX2, [4, 4])


def test_duplicate_neurons_in_a_deep_layer():
    rng = np.random.default_rng(5)
    W1, b1 = rng.normal(size=(4, 2)), rng.normal(size=4) * 0.3
    W2, b2 = rng.normal(size=(3, 4)), rng.normal(size=3) * 0.3
    plain = pc.subdivide(net((W1, b1, "relu"), (W2, b2, "relu")), BOX2)
    W2d = np.vstack([W2, W2[:1], 0.5 * W2[1:2]])
    b2d = np.concatenate([b2, b2[:1], 0.5 * b2[1:2]])
    check(net((W1, b1, "relu"), (W2d, b2d, "relu")), BOX2, plain.per_layer)


def test_integer_weights_many_coincidences():
    # weights in {-1, 0, 1}: repeated, concurrent and axis-aligned hyperplanes everywhere
    W1 = [[1, 0], [0, 1], [1, 1], [1, -1], [-1, 0], [1, 1]]
    W2 = [[1, 1, 0, 0, 0, -1], [0, 1, -1, 1, 0, 0], [1, -1, 1, 0, 1, 0]]
    n = net((W1, [0, 0, 0, 0, 1, -1], "relu"), (W2, [0, -1, 1], "relu"))
    tree = pc.subdivide(n, BOX2)
    assert_partitions_equal(tree, brute_force_regions(n, BOX2))


def test_slivers_are_cells_with_an_interior_in_every_engine():
    """On a 3-D network with duplicate units the lp engine listed "slivers"
    of inradius 0 and -1e-15, which cannot exist; a sliver's inradius lies in (empty, region]."""
    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, 3))
    b = rng.normal(size=4) * 0.3
    net = pc.Network.from_weights([(np.vstack([W, W]), np.concatenate([b, b])),
                                   (rng.normal(size=(6, 8)), rng.normal(size=6) * 0.3),
                                   (np.ones((1, 6)), [0.0])])
    box = pc.Box(-1, 1, dim=3)
    trees = {e: pc.subdivide(net, box, engine=e) for e in ("lp", "vertex")}
    assert trees["lp"].per_layer == trees["vertex"].per_layer
    for tree in trees.values():
        radius = np.asarray(tree.slivers.inradius, dtype=float)
        assert np.all(radius > tree.tolerances.empty) and np.all(radius <= tree.tolerances.region)


@pytest.mark.parametrize("engine", ["planar", "vertex", "lp"])
def test_thin_wedges_are_thin_regions(engine):
    """Two lines crossing at an angle of 1e-10 leave two wedges of inradius ~5e-11, below the
    region tolerance: float64 cannot tell them from empty cells, exact arithmetic can. They
    are regions (counted, marked thin), and layer 2 splits them in exact arithmetic: in each
    wedge one of relu(h1), relu(h2) is positive, so the sum never switches off."""
    a = 1e-10
    net = pc.Network.from_weights([(np.array([[0.0, 1.0], [np.sin(a), np.cos(a)]]), np.zeros(2)),
                                   (np.ones((1, 2)), [0.0])])
    box = pc.Box(-1, 1, dim=2)
    counted = pc.count_regions(net, box, engine=engine)
    # the lp engine's Chebyshev LP cannot resolve them (HiGHS works to ~1e-9): a side within
    # tau of empty is set aside as doubtful and settled exactly
    assert counted.per_layer == [4, 4] and counted.thin == [2, 2]
    assert counted.undecided == [0, 0]
    tree = pc.subdivide(net, box, engine=engine)
    assert tree.per_layer == [4, 4] and len(tree.slivers) == 0
    for depth in (1, 2):
        level = tree.levels[depth]
        assert level.thin.sum() == 2
        # a thin region's interior point lies in its cell: the forward pass gives its code
        pts = level.interior_point[level.thin]
        assert np.all(level.inradius[level.thin] > 0)
        assert np.all(level.inradius[level.thin] <= tree.tolerances.region)
        np.testing.assert_array_equal(net.codes(pts)[depth - 1], level.code[level.thin])


def test_thin_regions_travel_to_leaves_stores_and_exports(tmp_path):
    """The thin flag of the thin-wedge network reaches every output: streamed leaves, a store's
    parts and the export's node table."""
    pytest.importorskip("pyarrow")
    a = 1e-10
    net = pc.Network.from_weights([(np.array([[0.0, 1.0], [np.sin(a), np.cos(a)]]), np.zeros(2)),
                                   (np.ones((1, 2)), [0.0])])
    box = pc.Box(-1, 1, dim=2)
    pc.write_leaves(net, box, tmp_path / "leaves", engine="planar")
    chunks = list(pc.read_leaves(tmp_path / "leaves"))
    assert sum(int(np.count_nonzero(c.thin)) for c in chunks) == 2
    counted = pc.count_regions(net, box, engine="vertex", store=tmp_path / "store")
    table = pc.read_store(tmp_path / "store")
    assert counted.thin == [2, 2] and int(np.count_nonzero(table.to_table()["thin"])) == 2
    from powercells.io.export import node_table

    nodes = node_table(pc.subdivide(net, box, engine="planar"))
    thin = np.asarray(nodes.column("thin"))
    depth = np.asarray(nodes.column("depth"))
    assert thin[depth == 1].sum() == 2 and thin[depth == 2].sum() == 2 and not thin[0]
