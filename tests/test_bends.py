"""Bend angles in 2-D (SPEC §4): the worked example's 45 degrees, the 143-degree fold of §4.2,
the refraction invariant and the rank-one update of §4.3 on random networks."""

import numpy as np
import pytest
from networks import random_network, worked_example

import powercells as pc
from powercells.geometry.bending import planar_bends


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

from powercells.geometry.adjacency import facet_adjacency
from powercells.geometry.bending import bends, decision_boundary_bends


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


# ----------------------------------------------------------------------- review fixes
def _code_keys(b, tree, depth):
    codes = tree.path_codes(depth)
    return {(tuple(codes[x]), tuple(codes[y]), int(k), int(p), int(q)): i for i, (x, y, k, p, q)
            in enumerate(zip(b.region_a, b.region_b, b.target_unit, b.piece_1, b.piece_2))}


@pytest.mark.parametrize("acts", [["relu", "relu", "relu"], ["leaky_relu:0.2", "abs", "relu"]])
def test_lp_tree_bends_equal_the_planar_ones_keyed_by_codes(acts):
    """The any-d path on an LP-engine tree (LP adjacency, LP ridges) against the mesh-based
    planar_bends on a planar tree of the same network: the same ridges, angles and points."""
    network = random_network(2, [6, 6, 5], seed=3, activations=acts)
    box = pc.Box(-1, 1, dim=2)
    planar = pc.subdivide(network, box)
    lp_tree = pc.subdivide(network, box, engine="lp")
    for layer in (2, 3):
        p = planar_bends(planar, layer)
        g = bends(lp_tree, layer)
        kp, kg = _code_keys(p, planar, layer - 1), _code_keys(g, lp_tree, layer - 1)
        assert len(kg) > 0 and kp.keys() == kg.keys()
        assert len(g.undecided) == 0 and len(g.coincident) == 0
        for key, i in kp.items():
            j = kg[key]
            assert g.bend_oriented[j] == pytest.approx(p.bend_oriented[i], abs=1e-9)
            np.testing.assert_allclose(g.point[j], p.point[i], atol=1e-9)


def _ridge_radius(H, h, n, c, grad, const, diam):
    """Independent ridge check (scipy linprog): the largest s such that a point t of the flat
    ``n t = c, grad t + const = 0`` keeps distance s, within the flat, from every row of
    ``H t <= h`` not parallel to it (rows parallel to the facet must hold)."""
    from scipy.optimize import linprog

    k = len(n)
    basis, _ = np.linalg.qr(np.stack([n, grad], axis=1))
    proj = np.linalg.norm(H - (H @ basis) @ basis.T, axis=1)
    par = proj <= 1e-9
    res = linprog(np.r_[np.zeros(k), -1.0],
                  A_ub=np.hstack([H, np.where(par, 0.0, proj)[:, None]]),
                  b_ub=h + np.where(par, 1e-12, 0.0),
                  A_eq=np.array([np.r_[n, 0.0], np.r_[grad, 0.0]]), b_eq=[c, -const],
                  bounds=[(None, None)] * k + [(None, diam)], method="highs")
    return -res.fun if res.status == 0 else -np.inf


@pytest.mark.parametrize("network", [random_network(3, [6, 5], seed=11),
                                     random_network(3, [5, 4], seed=12,
                                                    activations=["leaky_relu:0.1", "abs"])])
def test_ridges_are_complete_against_a_brute_force_in_3d(network):
    """For every adjacent pair and every target unit, an independent ridge LP (linprog, no
    'present' screen, no certification by the facet ball): the ridges found are exactly those
    with a radius clearly above the region tolerance."""
    tree = pc.subdivide(network, pc.Box(-1, 1, dim=3))
    adj = facet_adjacency(tree, 1)
    b = bends(tree, 2, adjacency=adj)
    target = network.layers[1]
    A, B = tree.affine_maps(1)
    tau = tree.tolerances.region
    found = {(int(x), int(y), int(k)) for x, y, k in zip(b.region_a, b.region_b, b.target_unit)}
    brute = {}
    for i, (x, y) in enumerate(adj.pairs):
        H = np.vstack([tree.halfspaces(1, x)[0], tree.halfspaces(1, y)[0]])
        h = np.concatenate([tree.halfspaces(1, x)[1], tree.halfspaces(1, y)[1]])
        norms = np.linalg.norm(H, axis=1)
        H, h = H / norms[:, None], h / norms
        for k in range(target.out_dim):
            grad = target.switch_W[k] @ A[x]
            const = target.switch_W[k] @ B[x] + target.switch_b[k]
            r = _ridge_radius(H, h, adj.normal[i], adj.offset[i], grad / np.linalg.norm(grad),
                              const / np.linalg.norm(grad), tree.domain.diameter)
            brute[(int(x), int(y), k)] = r
    assert len(found) > 5
    assert {key for key, r in brute.items() if r > 1e3 * tau} <= found
    assert all(brute[key] > tau / 10 for key in found)


def _coincident_network(dim):
    """Layer 1: relu(x), relu(-x) (the facet x = 0 between the two depth-1 regions) and
    relu(x_i + 2) for the other coordinates (always active). Layer 2: h0 = relu(x) - relu(-x)
    = x (the facet's own hyperplane, the same gradient on both sides: bend 0) and
    h1 = relu(x) + relu(-x) = |x| (a fold onto the facet: bend pi), plus a generic unit."""
    rest = dim - 1
    W1 = np.zeros((2 + rest, dim))
    W1[0, 0], W1[1, 0] = 1.0, -1.0
    W1[2:, 1:] = np.eye(rest)
    b1 = np.r_[0.0, 0.0, np.full(rest, 2.0)]
    W2 = np.zeros((3, 2 + rest))
    W2[0, :2] = [1.0, -1.0]
    W2[1, :2] = [1.0, 1.0]
    W2[2] = np.r_[0.7, -0.4, np.linspace(1.0, 0.5, rest)]
    b2 = np.array([0.0, 0.0, -2.0 * np.linspace(1.0, 0.5, rest).sum() + 0.1])
    return pc.Network.from_weights([(W1, b1), (W2, b2)], ["relu", "relu"])


@pytest.mark.parametrize("dim, engine", [(2, "auto"), (2, "lp"), (3, "auto")])
def test_targets_containing_the_facet_are_reported_with_bend_0_or_pi(dim, engine):
    tree = pc.subdivide(_coincident_network(dim), pc.Box(-1, 1, dim=dim), engine=engine)
    b = bends(tree, 2)
    adj = facet_adjacency(tree, 1)
    assert len(adj) == 1
    pair = (int(adj.region_a[0]), int(adj.region_b[0]))
    got = {int(row[2]): float(angle) for row, angle in zip(b.coincident, b.coincident_bend)
           if (int(row[0]), int(row[1])) == pair}
    assert got == {0: 0.0, 1: pytest.approx(np.pi)}
    # not among the ridges, nothing undecided; the generic unit bends normally
    assert not ({0, 1} & set(b.target_unit.tolist()))
    assert len(b.undecided) == 0
    assert set(b.target_unit.tolist()) == {2}


def test_one_logit_head_identically_zero_is_tied_not_dropped():
    """f = 0.1 u + 0.2 u - 0.3 u for three copies u of relu(x + 2): zero up to rounding
    (0.1 + 0.2 - 0.3 = 5.6e-17). Every hidden region must be reported as tied, none as a piece."""
    from powercells.geometry.boundary import decision_boundary_pieces

    W1 = np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]])
    b1 = np.array([2.0, 2.0, 2.0, 0.0])
    head = (np.array([[0.1, 0.2, -0.3, 0.0]]), np.array([0.0]))
    net = pc.Network.from_weights([(W1, b1), head], ["relu", "identity"])
    tree = pc.subdivide(net, pc.Box(-1, 1, dim=2), engine="lp")
    pieces = decision_boundary_pieces(tree)
    assert len(pieces) == 0 and len(pieces.undecided) == 0
    n = len(tree.levels[tree.depth - 1])
    assert n == 2
    assert sorted(pieces.tied[:, 0].tolist()) == list(range(n))
    assert np.all(pieces.tied[:, 1:] == [0, 1])


def test_bad_arguments_raise_geometry_errors():
    from powercells.errors import GeometryError

    tree = pc.subdivide(random_network(2, [3, 2], seed=0), pc.Box(-1, 1, dim=2))
    with pytest.raises(GeometryError, match="between 2 and 2"):
        bends(tree, 3)
    with pytest.raises(GeometryError, match="between 2 and 2"):
        planar_bends(tree, 1)
    with pytest.raises(GeometryError, match="not a linear head"):
        decision_boundary_bends(tree)
    with pytest.raises(GeometryError, match="need depth 1"):
        bends(tree, 2, adjacency=facet_adjacency(tree, 2))
