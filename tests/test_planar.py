"""The planar engine: identical code sets with the lp engine and the brute-force enumerator on
2-D networks (random, degenerate, maxout, max-pool, plane slices), polygons that tile the domain,
and its errors. The SPEC §6.1 oracles and the degenerate cases run on it through the ``engine``
fixture and ``test_degenerate.check``."""

import importlib.util

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from networks import maxout_network, maxpool_network, random_network
from strategies import integer_networks

import powercells as pc
from powercells.geometry.polygons import Polygons
from powercells.testing import (
    assert_partitions_equal,
    brute_force_regions,
    leaf_code_set,
)

ACTIVATIONS = ["relu", "leaky_relu:0.1", "abs"]
SETTINGS = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
BOX2 = pc.Box(-1, 1, dim=2)


def both(network, domain):
    planar = pc.subdivide(network, domain, engine="planar")
    lp = pc.subdivide(network, domain, engine="lp")
    assert planar.engine == "planar" and lp.engine == "lp"
    assert planar.per_layer == lp.per_layer
    assert leaf_code_set(planar) == leaf_code_set(lp)
    return planar, lp


def assert_tiles(tree):
    """Every level's polygons tile the domain; children's areas sum to their parent's; every
    polygon is convex, counter-clockwise and contains its interior point and ball."""
    total = tree.areas(0).sum()
    for depth in range(1, tree.depth + 1):
        areas = tree.areas(depth)
        assert np.all(areas > 0)
        assert areas.sum() == pytest.approx(total, rel=1e-12)
        parent = tree.levels[depth].parent
        sums = np.bincount(parent, areas, minlength=len(tree.levels[depth - 1]))
        np.testing.assert_allclose(sums, tree.areas(depth - 1), rtol=1e-9, atol=1e-15)
        polys = tree.polygons(depth)
        N, h = polys.edges()
        owner = polys.owner
        level = tree.levels[depth]
        slack = h - np.einsum("ij,ij->i", N, level.interior_point[owner])
        assert np.all(slack >= level.inradius[owner] * (1 - 1e-9) - 1e-15)
        # convex and counter-clockwise: every turn is to the left (or straight)
        nxt = polys.next_vertex()
        d1 = polys.xy[nxt] - polys.xy
        d2 = d1[nxt]
        assert np.all(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0] >= -1e-12)


@st.composite
def planar_networks(draw):
    depth = draw(st.integers(1, 3))
    widths = [draw(st.integers(1, 5)) for _ in range(depth)]
    acts = [draw(st.sampled_from(ACTIVATIONS)) for _ in range(depth)]
    seed = draw(st.integers(0, 2 ** 16))
    head = draw(st.sampled_from([None, 1, 3]))
    return random_network(2, widths, seed, activations=acts, head=head)


@SETTINGS
@given(planar_networks())
def test_planar_equals_lp_and_brute_force(network):
    planar, _ = both(network, BOX2)
    assert_partitions_equal(planar, brute_force_regions(network, BOX2))
    assert_tiles(planar)


@SETTINGS
@given(integer_networks(dims=(2, 2), depth=(1, 3)))
def test_degenerate_integer_networks(case):
    network, _ = case
    planar, _ = both(network, BOX2)
    assert_partitions_equal(planar, brute_force_regions(network, BOX2))
    assert len(planar.slivers) == 0
    assert_tiles(planar)


@pytest.mark.parametrize("pieces,widths,seed", [(2, [3], 0), (3, [3, 2], 1), (4, [2, 2], 2)])
def test_maxout(pieces, widths, seed):
    network = maxout_network(2, widths, pieces, seed=seed)
    planar, _ = both(network, BOX2)
    assert_partitions_equal(planar, brute_force_regions(network, BOX2))
    assert_tiles(planar)


@pytest.mark.parametrize("groups,second", [([[0, 1], [2, 3]], None), ([[0, 1, 2], [1, 3], [4]], 3),
                                           ([[0], [0, 1]], 2)])
def test_relu_maxpool(groups, second):
    network = maxpool_network(2, 5, groups, seed=7, second=second)
    planar, _ = both(network, BOX2)
    assert_partitions_equal(planar, brute_force_regions(network, BOX2))
    assert_tiles(planar)


def test_maxout_with_duplicate_and_tied_pieces():
    # unit 0: pieces x, x (a duplicate: the second never wins), -x; unit 1: pieces y, y + 1
    # (the second dominates everywhere)
    A = np.zeros((2, 3, 2))
    B = np.zeros((2, 3))
    A[0, 0] = A[0, 1] = [1, 0]
    A[0, 2] = [-1, 0]
    A[1, 0] = A[1, 1] = A[1, 2] = [0, 1]
    B[1, 1] = 1.0
    network = pc.Network([pc.Layer.maso(A, B)])
    planar, _ = both(network, BOX2)
    assert planar.per_layer == [2]
    assert sorted(planar.levels[1].code.tolist()) == [[0, 1], [2, 1]]
    assert_partitions_equal(planar, brute_force_regions(network, BOX2))


def test_polytope_domain_and_deep_network():
    # a triangle with one vertex far out
    A = np.array([[-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]])
    b = np.array([1.0, 1.0, 2.0])
    domain = pc.Polytope(A, b)
    network = random_network(2, [8, 8, 8], seed=3)
    planar, _ = both(network, domain)
    assert planar.areas(0).sum() == pytest.approx(8.0)   # vertices (-1,-1), (3,-1), (-1,3)
    assert_tiles(planar)


def test_plane_through_three_points_of_a_64_input_network():
    rng = np.random.default_rng(11)
    network = random_network(64, [20, 20], seed=11, bias=0.1)
    points = rng.normal(size=(3, 64))
    plane = pc.Slice.through_points(points, inner=pc.Box(-0.5, 1.5, dim=2))
    planar, _ = both(network, plane)
    assert planar.n_regions > 20
    assert_tiles(planar)
    # the leaves' interior points, mapped back to the 64-D input, give their codes
    X = planar.input_points()
    codes = np.hstack(network.codes(X))
    assert {tuple(int(v) for v in row) for row in codes} == leaf_code_set(planar)


def test_count_regions_and_budgets():
    network = random_network(2, [12, 12], seed=5)
    full = pc.count_regions(network, BOX2)
    assert full.engine == "planar"
    assert full.per_layer == pc.subdivide(network, BOX2, engine="lp").per_layer
    part = pc.count_regions(network, BOX2, max_regions=10)
    assert part.partial and part.regions <= full.regions


def test_auto_picks_planar_for_2d_vertex_in_3d_to_8d_or_10d_and_lp_otherwise(monkeypatch):
    net2 = random_network(2, [3], seed=0)
    assert pc.subdivide(net2, BOX2).engine == "planar"
    assert pc.subdivide(net2, BOX2, lp="highs").engine == "lp"     # an LP backend asks for lp
    net3 = random_network(3, [3], seed=0)
    assert pc.subdivide(net3, pc.Box(-1, 1, dim=3)).engine == "vertex"
    assert pc.subdivide(net3, pc.Box(-1, 1, dim=3), lp="highs").engine == "lp"
    assert pc.subdivide(random_network(8, [3], seed=0), pc.Box(-1, 1, dim=8)).engine == "vertex"
    net9 = random_network(9, [3], seed=0)
    net11 = random_network(11, [3], seed=0)
    # 9-D and 10-D go to the vertex engine only with its compiled splitter
    box9 = pc.Box(-1, 1, dim=9)
    assert pc.subdivide(net9, box9, engine_options={"compiled": False}).engine == "lp"
    if importlib.util.find_spec("numba"):
        assert pc.subdivide(net9, box9, engine_options={"compiled": True}).engine == "vertex"
    assert pc.subdivide(net11, pc.Box(-1, 1, dim=11)).engine == "lp"


def test_planar_errors():
    net3 = random_network(3, [3], seed=0)
    with pytest.raises(pc.PowercellsError, match="2-D domain"):
        pc.subdivide(net3, pc.Box(-1, 1, dim=3), engine="planar")
    with pytest.raises(pc.PowercellsError, match="solves no LP"):
        pc.subdivide(random_network(2, [3], seed=0), BOX2, engine="planar", lp="highs")
    with pytest.raises(pc.GeometryError, match="2-D domains"):
        pc.subdivide(net3, pc.Box(-1, 1, dim=3), engine="lp").polygons()


@pytest.mark.parametrize("engine", ["lp", "vertex"])
def test_every_2d_tree_has_polygons(engine):
    """Trees of engines that keep no polygons rebuild them from the codes: the same polygons
    as the planar engine's, level by level (as sets of vertices, to rounding)."""
    network = random_network(2, [6, 5, 4], seed=3)
    planar = pc.subdivide(network, BOX2, engine="planar")
    other = pc.subdivide(network, BOX2, engine=engine)
    assert other.per_layer == planar.per_layer
    for depth in range(planar.depth + 1):
        a, b = planar.polygons(depth), other.polygons(depth)
        assert len(a) == len(b)
        assert np.allclose(np.sort(a.area_perimeter()[0]), np.sort(b.area_perimeter()[0]),
                           rtol=1e-9, atol=1e-12)
        # node by node (the trees share their order): same vertices up to rounding
        for i in range(len(a)):
            va, vb = np.round(a.vertices(i), 9), np.round(b.vertices(i), 9)
            assert {tuple(v) for v in va} == {tuple(v) for v in vb}
    assert np.isclose(other.areas().sum(), 4.0, rtol=1e-12)


def test_every_1d_tree_has_intervals():
    network = random_network(1, [5, 4], seed=2)
    segment = pc.Box(-2, 2, dim=1)
    interval = pc.subdivide(network, segment, engine="interval")
    lp = pc.subdivide(network, segment, engine="lp")
    assert lp.per_layer == interval.per_layer
    for depth in range(interval.depth + 1):
        for a, b in zip(interval.intervals(depth), lp.intervals(depth)):
            assert np.allclose(a, b, atol=1e-12)


def test_thin_slab_is_a_thin_region():
    # two parallel lines 2e-6 apart: a slab of inradius 1e-6; with tau = 1e-5 it is thin,
    # settled exactly, counted, and its polygon comes from its exact rows
    network = pc.Network.from_weights([(np.array([[1.0, 0.0], [1.0, 0.0]]),
                                        np.array([0.0, -2e-6]))], ["relu"])
    fine = pc.subdivide(network, BOX2, engine="planar")
    assert fine.per_layer == [3] and len(fine.slivers) == 0
    coarse = pc.subdivide(network, BOX2, engine="planar", tol=1e-5)
    assert coarse.per_layer == [3] and len(coarse.slivers) == 0
    level = coarse.levels[1]
    assert level.thin.tolist() == [False, True, False]      # codes (0,0), (1,0), (1,1)
    i = int(np.flatnonzero(level.thin)[0])
    xy = level.polygons.vertices(i)
    np.testing.assert_allclose(np.sort(np.unique(xy[:, 0])), [0.0, 2e-6], atol=1e-18)
    np.testing.assert_allclose(np.sort(np.unique(xy[:, 1])), [-1.0, 1.0])
    # the thin region's polygon has the area the slab has
    assert level.polygons.take([i]).area_perimeter()[0][0] == pytest.approx(4e-6, rel=1e-9)
    counted = pc.count_regions(network, BOX2, engine="planar", tol=1e-5)
    assert counted.per_layer == [3] and counted.thin == [1] and counted.undecided == [0]


def test_polygon_split_and_chebyshev():
    square = Polygons.single([[0, 0], [2, 0], [2, 2], [0, 2]])
    # a line through two opposite corners: two triangles sharing the diagonal
    s = square.xy[:, 1] - square.xy[:, 0]
    pieces, src, side = square.split(s, 1e-12)
    assert src.tolist() == [0, 0] and side.tolist() == [0, 1]
    np.testing.assert_allclose(pieces.area_perimeter()[0], [2.0, 2.0])
    # a line touching a corner only: no cut, the square is on the negative side
    s = 2.0 - square.xy[:, 0] - square.xy[:, 1] - 2.0
    pieces, src, side = square.split(s, 1e-12)
    assert len(pieces) == 1 and side.tolist() == [0]
    center, radius = square.chebyshev(1e-12)
    np.testing.assert_allclose(center, [[1.0, 1.0]])
    np.testing.assert_allclose(radius, [1.0])
    # a thin triangle: radius = 2 * area / perimeter
    tri = Polygons.single([[0, 0], [10, 0], [0, 0.1]])
    area, perim = tri.area_perimeter()
    assert tri.chebyshev(1e-12)[1][0] == pytest.approx(2 * area[0] / perim[0])


MESH_CASES = [
    random_network(2, [6, 5, 4], seed=1),
    random_network(2, [5, 4], seed=2, activations=["abs", "leaky_relu:0.3"], head=2),
    maxout_network(2, [3, 2], 3, seed=3),
    # concurrent lines through the origin and a duplicate: vertices of high degree
    pc.Network.from_weights([(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0],
                                        [2.0, 0.0]]), np.zeros(5))], ["relu"]),
    # layer 2 cuts only some layer-1 cells: T-junctions everywhere
    pc.Network.from_weights([(np.eye(2), np.array([0.0, -0.5])),
                             (np.array([[1.0, -1.0], [0.5, 1.0]]), np.array([0.25, -0.1]))],
                            ["relu", "relu"]),
]


@pytest.mark.parametrize("network", MESH_CASES)
def test_mesh_euler_and_edge_units(network):
    tree = pc.subdivide(network, BOX2, engine="planar")
    assert len(tree.slivers) == 0
    for depth in range(tree.depth + 1):
        mesh = tree.mesh(depth)
        # a tiling of the square (T-junctions split): V - E + F = 1, one boundary loop
        assert mesh.euler_characteristic == 1
        assert mesh.boundary_loops == 1
        assert mesh.n_faces == len(tree.levels[depth])
        if depth == 0:
            continue
        inner = np.flatnonzero(mesh.edge_faces[:, 1] >= 0)
        assert np.all(mesh.edge_layer[inner] >= 1)
        # the unit named on an interior edge vanishes (as the difference of its two pieces)
        # at both ends of the edge, evaluated with either face's affine map
        for e in inner:
            layer, unit = mesh.edge_layer[e], mesh.edge_unit[e]
            face = mesh.edge_faces[e, 0]
            path = tree.code_path(depth, face)
            A, B = network.affine_map_of_codes(path[:layer - 1])
            lay = network.layers[layer - 1]
            codes_b = tree.code_path(depth, mesh.edge_faces[e, 1])
            r, q = int(path[layer - 1][unit]), int(codes_b[layer - 1][unit])
            for v in mesh.vertices[mesh.edges[e]]:
                z = A @ v + B
                gap = (lay.A[unit, r] - lay.A[unit, q]) @ z + lay.B[unit, r] - lay.B[unit, q]
                scale = np.abs(lay.A[unit, r] - lay.A[unit, q]) @ np.abs(z) + 1.0
                assert abs(gap) <= 1e-9 * scale
        # every pair of adjacent faces shares an edge; the adjacency is symmetric and simple
        adj = mesh.adjacency()
        assert np.all(adj[:, 0] < adj[:, 1])


def test_mesh_closes_over_a_thin_triangle():
    # x = 0, y = 0, x + y = 3e-6 bound a tiny triangle (inradius 8.8e-7): with tau = 1e-5 it is
    # thin, settled exactly with its polygon, so the mesh has no hole: V - E + F = 1
    network = pc.Network.from_weights([(np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]),
                                        np.array([0.0, 0.0, 3e-6]))], ["relu"])
    tree = pc.subdivide(network, BOX2, engine="planar", tol=1e-5)
    assert tree.per_layer == [7] and len(tree.slivers) == 0 and tree.levels[1].thin.sum() == 1
    mesh = tree.mesh(tol=1e-9)
    assert mesh.euler_characteristic == 1 and mesh.boundary_loops == 1
    full = pc.subdivide(network, BOX2, engine="planar")
    assert full.per_layer == [7] and full.mesh().euler_characteristic == 1


def test_decision_boundary_worked_example():
    # f = relu(x) - relu(y): the diagonal in the first quadrant, the half-axes bounding the
    # third quadrant (where f is identically 0: a tied leaf)
    network = pc.Network.from_weights([(np.eye(2), np.zeros(2)),
                                       (np.array([[1.0, -1.0]]), np.zeros(1))],
                                      ["relu", "identity"])
    tree = pc.subdivide(network, BOX2, engine="planar")
    db = tree.decision_boundary()
    codes = {tuple(tree.levels[1].code[i]): i for i in range(4)}
    got = {}
    for seg, leaf in zip(db.segments, db.leaf):
        ends = sorted(tuple(np.round(p, 12) + 0.0) for p in seg)
        got[tree.ancestors(2, int(leaf))[0]] = ends
    assert got == {codes[(1, 1)]: [(0.0, 0.0), (1.0, 1.0)],
                   codes[(1, 0)]: [(0.0, -1.0), (0.0, 0.0)],
                   codes[(0, 1)]: [(-1.0, 0.0), (0.0, 0.0)]}
    assert [tree.ancestors(2, int(i))[0] for i in db.tied_leaves] == [codes[(0, 0)]]
    assert np.all(db.classes == [0, 1])


def test_decision_boundary_of_a_head_that_cancels_to_rounding():
    # f = 0.1 relu(x) + 0.2 relu(x) - 0.3 relu(x) + 0 y: mathematically 0 where x > 0, but
    # float rounding leaves a gradient of ~5.6e-17 there; relative to the terms that made it,
    # that is an exact zero (SPEC 3.4): a tied leaf, not a zero set through it
    W1 = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    head = np.array([[0.1, 0.2, -0.3, 0.0]])
    assert (head[0, :3].sum()) != 0.0
    network = pc.Network.from_weights([(W1, np.zeros(4)), (head, np.zeros(1))],
                                      ["relu", "identity"])
    tree = pc.subdivide(network, BOX2, engine="planar")
    db = tree.decision_boundary()
    assert len(db) == 0                              # f is 0 everywhere: no crossing anywhere
    assert sorted(db.tied_leaves.tolist()) == list(range(tree.n_regions))


@pytest.mark.parametrize("seed,head", [(0, 3), (2, 1), (3, 3), (5, 4)])
def test_decision_boundary_segments_are_ties_and_complete(seed, head):
    network = random_network(2, [8, 8], seed, head=head)
    box = pc.Box(-3, 3, dim=2)
    tree = pc.subdivide(network, box, engine="planar")
    db = tree.decision_boundary()
    assert len(db) > 0
    X = db.segments.reshape(-1, 2)
    F = network.forward(X)
    rows = np.arange(len(X))
    cls = np.repeat(db.classes, 2, axis=0)
    if head == 1:
        assert np.abs(F[:, 0]).max() < 1e-12
    else:
        # both classes tie, and nothing beats them, at both ends of every segment
        assert np.abs(F[rows, cls[:, 0]] - F[rows, cls[:, 1]]).max() < 1e-12
        assert (F.max(axis=1) - F[rows, cls[:, 0]]).max() < 1e-12
    # completeness: a leaf whose (slightly shrunk) vertices see two classes has a segment
    polys = tree.polygons()
    owner = polys.owner
    centre = tree.levels[-1].interior_point[owner]
    inner = centre + 0.999 * (polys.xy - centre)
    out = network.forward(inner)
    label = (out[:, 0] > 0).astype(int) if head == 1 else out.argmax(axis=1)
    lo = np.full(len(polys), 99)
    hi = np.full(len(polys), -1)
    np.minimum.at(lo, owner, label)
    np.maximum.at(hi, owner, label)
    mixed = set(np.flatnonzero(lo != hi).tolist())
    assert mixed <= set(db.leaf.tolist())


@pytest.mark.parametrize("scale", [1e-4, 1e4])
def test_tolerances_follow_the_domain_scale(scale):
    # the same partition drawn at another scale: identical counts, codes, Euler, areas
    base = random_network(2, [6, 5], seed=1, head=2)
    pairs = [(base.layers[0].switch_W / scale, base.layers[0].switch_b),
             (base.layers[1].switch_W, base.layers[1].switch_b),
             (base.layers[2].A[:, 0, :], base.layers[2].B[:, 0])]
    network = pc.Network.from_weights(pairs, ["relu", "relu", "identity"])
    box = pc.Box(-scale, scale, dim=2)
    planar, _ = both(network, box)
    reference = pc.subdivide(base, BOX2, engine="planar")
    assert leaf_code_set(planar) == leaf_code_set(reference)
    assert planar.mesh().euler_characteristic == 1
    assert planar.areas().sum() == pytest.approx(4 * scale ** 2, rel=1e-12)
