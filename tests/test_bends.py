"""Bend angles in 2-D (SPEC §4): the worked example's 45 degrees, the 143-degree fold of §4.2,
the refraction invariant and the rank-one update of §4.3 on random networks."""

import numpy as np
import pytest
from networks import random_network, worked_example

import powercells as pc
from powercells.geometry.bends import planar_bends


def test_worked_example_45_degrees():
    tree = pc.subdivide(worked_example(), pc.Box(-10, 10, dim=2))
    bends = planar_bends(tree, 2)
    assert len(bends) == 1
    codes = {tuple(tree.levels[1].code[i]) for i in (bends.region_a[0], bends.region_b[0])}
    assert codes == {(1, 1), (0, 1)}
    np.testing.assert_allclose(bends.point[0], [0.0, 1.5], atol=1e-12)
    assert (bends.crossing_layer[0], bends.crossing_unit[0]) == (1, 0)
    assert (bends.target_layer[0], bends.target_unit[0]) == (2, 0)
    assert np.degrees(bends.bend_oriented[0]) == pytest.approx(45.0)


def test_oriented_and_unsigned_forms_differ_on_a_fold():
    # h = y + 3x - 6 relu(x): level set y = 3|x|, oriented bend 143.13 deg, unsigned 36.87 deg
    W1 = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    b1 = np.array([0.0, 0.0, 10.0])
    W2 = np.array([[-3.0, -3.0, 1.0]])
    net = pc.Network.from_weights([(W1, b1), (W2, np.array([-10.0]))], ["relu", "relu"])
    tree = pc.subdivide(net, pc.Box(-2, 2, dim=2))
    bends = planar_bends(tree, 2)
    assert len(bends) == 1
    np.testing.assert_allclose(bends.point[0], [0.0, 0.0], atol=1e-12)
    assert np.degrees(bends.bend_oriented[0]) == pytest.approx(np.degrees(np.arccos(-0.8)))
    assert np.degrees(bends.bend_unsigned[0]) == pytest.approx(np.degrees(np.arccos(0.8)))


@pytest.mark.parametrize("acts", [["relu", "relu", "relu"], ["leaky_relu:0.2", "abs", "relu"]])
def test_refraction_invariant_and_rank_one_update(acts):
    network = random_network(2, [6, 6, 5], seed=3, activations=acts)
    tree = pc.subdivide(network, pc.Box(-1, 1, dim=2))
    total = 0
    for layer in (2, 3):
        bends = planar_bends(tree, layer)
        total += len(bends)
        mesh = tree.mesh(layer - 1)
        for i in range(len(bends)):
            # the edge between the two regions: its direction d
            e = np.flatnonzero((mesh.edge_faces[:, 0] == bends.region_a[i]) &
                                (mesh.edge_faces[:, 1] == bends.region_b[i]))
            ends = mesh.vertices[mesh.edges[e]]
            d = ends[:, 1] - ends[:, 0]
            rel = bends.point[i] - ends[:, 0]
            on_edge = np.abs(d[:, 0] * rel[:, 1] - d[:, 1] * rel[:, 0]) <= 1e-9
            d = d[np.flatnonzero(on_edge)[0]]
            na, nb = bends.normal_a[i], bends.normal_b[i]
            # tangential components agree (continuity of h_k across the edge) ...
            assert abs((na - nb) @ d) <= 1e-9 * (np.linalg.norm(na) + np.linalg.norm(nb))
            # ... so the update is along the edge's normal: rank one
            if bends.crossing_layer[i] == layer - 1:
                # immediate predecessor: n' - n = (s' - s) W_kj u_j, u_j the crossing unit's
                # gradient on the regions' common parent
                j, k = bends.crossing_unit[i], bends.target_unit[i]
                Wkj = network.layers[layer - 1].switch_W[k, j]
                parent = tree.levels[layer - 1].parent[bends.region_a[i]]
                if layer - 2 >= 1:
                    A, _ = tree.affine_maps(layer - 2, [parent])
                    u = network.layers[layer - 2].switch_W[j] @ A[0]
                else:
                    u = network.layers[0].switch_W[j]
                f = network.layers[layer - 2].switch_factors
                np.testing.assert_allclose(np.linalg.norm(nb - na),
                                           abs(f[1] - f[0]) * abs(Wkj) * np.linalg.norm(u),
                                           rtol=1e-9, atol=1e-12)
            # the unsigned form folds the oriented one onto [0, pi/2]
            assert bends.bend_unsigned[i] == pytest.approx(
                min(bends.bend_oriented[i], np.pi - bends.bend_oriented[i]), abs=1e-9)
    assert total > 0


# ----------------------------------------------------------------------- any dimension
from networks import maxout_network

from powercells.geometry.bends import bends, decision_boundary_bends


def _keys(b):
    return {(int(x), int(y), int(k), int(p), int(q)) for x, y, k, p, q in
            zip(b.region_a, b.region_b, b.target_unit, b.piece_1, b.piece_2)}


def test_any_dimension_bends_equal_the_planar_ones():
    for acts in (["relu", "relu", "relu"], ["leaky_relu:0.2", "abs", "relu"]):
        tree = pc.subdivide(random_network(2, [6, 6, 5], seed=3, activations=acts),
                            pc.Box(-1, 1, dim=2))
        for layer in (2, 3):
            planar, general = planar_bends(tree, layer), bends(tree, layer)
            assert len(general) > 0 and _keys(planar) == _keys(general)
            order_p = np.lexsort((planar.target_unit, planar.region_b, planar.region_a))
            order_g = np.lexsort((general.target_unit, general.region_b, general.region_a))
            np.testing.assert_allclose(planar.bend_oriented[order_p],
                                       general.bend_oriented[order_g], atol=1e-9)
            np.testing.assert_allclose(planar.point[order_p], general.point[order_g], atol=1e-9)


def test_worked_example_45_degrees_with_the_lp_engine():
    tree = pc.subdivide(worked_example(), pc.Box(-10, 10, dim=2), engine="lp")
    b = bends(tree, 2)
    assert len(b) == 1
    assert np.degrees(b.bend_oriented[0]) == pytest.approx(45.0)
    np.testing.assert_allclose(b.point[0], [0.0, 1.5], atol=1e-9)
    assert (b.crossing_layer[0], b.crossing_unit[0]) == (1, 0)


def _check_ridges(tree, b, adj_depth, item):
    """The ridge point lies on the facet and on the target's boundary (from both sides); the
    normals' jump is along the facet normal (refraction invariant, SPEC §4.3); for an
    immediate predecessor the jump is c_kj u_j exactly (rank-one structure)."""
    from powercells.geometry.adjacency import facet_adjacency

    adj = facet_adjacency(tree, adj_depth)
    row = {(int(a), int(c)): i for i, (a, c) in enumerate(adj.pairs)}
    A, B = tree.affine_maps(adj_depth)
    net = tree.network
    for i in range(len(b)):
        j = row[(int(b.region_a[i]), int(b.region_b[i]))]
        n = adj.normal[j]
        x = b.point[i]
        assert abs(n @ x - adj.offset[j]) <= 1e-9
        dA, dB = item(b, i)
        for side, normal in ((b.region_a[i], b.normal_a[i]), (b.region_b[i], b.normal_b[i])):
            np.testing.assert_allclose(dA @ A[side], normal, atol=1e-12)
            assert abs(dA @ (A[side] @ x + B[side]) + dB) <= 1e-9
        jump = b.normal_b[i] - b.normal_a[i]
        np.testing.assert_allclose(jump - (jump @ n) * n, 0, atol=1e-9)
        codes = tree.path_codes(adj_depth)
        differ = np.flatnonzero(codes[b.region_a[i]] != codes[b.region_b[i]])
        if b.crossing_layer[i] == adj_depth and len(differ) == 1:
            # immediate predecessor: n' - n = c_kj u_j, u_j the crossing piece difference
            # pulled back to the two regions' common parent
            crossing = net.layers[adj_depth - 1]
            u = b.crossing_unit[i]
            ra = tree.levels[adj_depth].code[b.region_a[i], u]
            rb = tree.levels[adj_depth].code[b.region_b[i], u]
            parent = tree.levels[adj_depth].parent[b.region_a[i]]
            Ap = (tree.affine_maps(adj_depth - 1, [parent])[0][0] if adj_depth > 1
                  else np.eye(tree.domain.dim))
            u_j = (crossing.A[u, rb] - crossing.A[u, ra]) @ Ap
            np.testing.assert_allclose(jump, dA[u] * u_j, atol=1e-9)
        assert b.bend_unsigned[i] == pytest.approx(
            min(b.bend_oriented[i], np.pi - b.bend_oriented[i]), abs=1e-9)


@pytest.mark.parametrize("network", [
    random_network(3, [7, 6, 4], seed=11),
    random_network(3, [6, 5], seed=12, activations=["leaky_relu:0.1", "abs"]),
    maxout_network(3, [3, 3], 2, seed=13),
])
def test_refraction_and_rank_one_in_3d_including_maxout(network):
    tree = pc.subdivide(network, pc.Box(-1, 1, dim=3))
    total = 0
    for layer in range(2, tree.depth + 1):
        target = network.layers[layer - 1]
        b = bends(tree, layer)
        total += len(b)

        def item(b, i, target=target):
            k = b.target_unit[i]
            if target.is_switch:
                return target.switch_W[k], target.switch_b[k]
            p, q = b.piece_1[i], b.piece_2[i]
            return target.A[k, p] - target.A[k, q], target.B[k, p] - target.B[k, q]

        _check_ridges(tree, b, layer - 1, item)
        if not target.is_switch:
            # the two pieces tie at the top of the unit on the ridge
            A, B = tree.affine_maps(layer - 1)
            for i in range(len(b)):
                z = A[b.region_a[i]] @ b.point[i] + B[b.region_a[i]]
                vals = target.A[b.target_unit[i]] @ z + target.B[b.target_unit[i]]
                assert vals[b.piece_1[i]] == pytest.approx(vals.max(), abs=1e-9)
                assert vals[b.piece_2[i]] == pytest.approx(vals.max(), abs=1e-9)
    assert total > 0


def test_decision_boundary_bends():
    # 3-D, three classes: ridges where the class tie f_c = f_c' bends across facets
    net = random_network(3, [8, 6], seed=7, head=3)
    tree = pc.subdivide(net, pc.Box(-1, 1, dim=3))
    b = decision_boundary_bends(tree)
    assert len(b) > 0
    W, bias = net.layers[-1].A[:, 0, :], net.layers[-1].B[:, 0]

    def item(b, i):
        return W[b.piece_1[i]] - W[b.piece_2[i]], bias[b.piece_1[i]] - bias[b.piece_2[i]]

    _check_ridges(tree, b, tree.depth - 1, item)
    # 2-D: every ridge is where two decision-boundary segments of the two leaves meet
    net2 = random_network(2, [8, 6], seed=2, head=3)
    planar = pc.subdivide(net2, pc.Box(-1, 1, dim=2))
    b2 = decision_boundary_bends(planar)
    db = planar.decision_boundary()
    assert len(b2) > 0
    for i in range(len(b2)):
        for region in (b2.region_a[i], b2.region_b[i]):
            ends = db.segments[db.leaf == region].reshape(-1, 2)
            assert np.min(np.linalg.norm(ends - b2.point[i], axis=1)) <= 1e-9
    lp_tree = pc.subdivide(net2, pc.Box(-1, 1, dim=2), engine="lp")
    np.testing.assert_allclose(np.sort(decision_boundary_bends(lp_tree).bend_oriented),
                               np.sort(b2.bend_oriented), atol=1e-9)
    with pytest.raises(pc.PowercellsError, match="not a linear head"):
        decision_boundary_bends(pc.subdivide(random_network(2, [3, 2], seed=0),
                                             pc.Box(-1, 1, dim=2)))
    with pytest.raises(pc.PowercellsError, match="linear"):
        bends(tree, tree.depth)


def test_decision_boundary_pieces_match_the_planar_segments():
    from powercells.geometry.boundary import decision_boundary_pieces

    net = random_network(2, [8, 6], seed=2, head=3)
    planar = pc.subdivide(net, pc.Box(-1, 1, dim=2))
    db = planar.decision_boundary()
    pieces = decision_boundary_pieces(planar)
    seg_len = np.linalg.norm(db.segments[:, 1] - db.segments[:, 0], axis=1)
    region = planar.levels[-1].parent[db.leaf]
    expected = {(int(r), int(c), int(c2)): 0.5 * s for r, (c, c2), s in
                zip(region, db.classes, seg_len)}
    got = {(int(r), int(c), int(c2)): rad for r, (c, c2), rad in
           zip(pieces.region, pieces.classes, pieces.radius)}
    assert got.keys() == expected.keys() and len(got) > 0
    for key, value in got.items():
        assert value == pytest.approx(expected[key], rel=1e-6)
    # each piece's centre ties its two classes at the top (3-D too)
    net3 = random_network(3, [8, 6], seed=7, head=3)
    tree = pc.subdivide(net3, pc.Box(-1, 1, dim=3))
    p3 = decision_boundary_pieces(tree)
    assert len(p3) > 0
    out = net3.forward(p3.center)
    top = out.max(axis=1)
    np.testing.assert_allclose(out[np.arange(len(p3)), p3.classes[:, 0]], top, atol=1e-9)
    np.testing.assert_allclose(out[np.arange(len(p3)), p3.classes[:, 1]], top, atol=1e-9)
