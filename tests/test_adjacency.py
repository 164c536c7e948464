"""Facet adjacency in any dimension (SPEC §6.2 item 6): the LP method against the planar mesh,
witness points stepping into both regions, completeness along random segments, duplicate and
scaled-duplicate neurons, continuity and the rank-one jump across every facet, and degenerate
integer networks against an all-pairs search."""

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from networks import maxout_network, maxpool_network, random_network
from strategies import integer_networks

import powercells as pc
from powercells.geometry.adjacency import facet_adjacency


def _pair_codes(adj, tree, depth):
    codes = tree.path_codes(depth)
    return {tuple(sorted((tuple(codes[i]), tuple(codes[j])))) for i, j in adj.pairs}


PLANAR_NETS = [
    random_network(2, [6, 5], seed=1),
    random_network(2, [5, 4, 3], seed=3, activations=["relu", "leaky_relu:0.2", "abs"]),
    maxout_network(2, [3, 2], 3, seed=2),
    maxpool_network(2, 6, [[0, 1], [2, 3, 4], [5]], seed=4, second=3),
]


@pytest.mark.parametrize("network", PLANAR_NETS)
def test_lp_adjacency_equals_the_planar_mesh(network):
    box = pc.Box(-1, 1, dim=2)
    planar = pc.subdivide(network, box)
    lp = pc.subdivide(network, box, engine="lp")
    for depth in range(1, planar.depth + 1):
        by_mesh = facet_adjacency(planar, depth)
        by_lp = facet_adjacency(lp, depth, method="lp")
        assert len(by_mesh) > 0
        assert _pair_codes(by_mesh, planar, depth) == _pair_codes(by_lp, lp, depth)
        assert len(by_lp.undecided) == 0
        # the same facets: the relative inradius is half the shared edge's length
        i_m = {tuple(sorted((tuple(planar.path_codes(depth)[a]), tuple(planar.path_codes(depth)[b])))): r
               for a, b, r in zip(by_mesh.region_a, by_mesh.region_b, by_mesh.radius)}
        for a, b, r in zip(by_lp.region_a, by_lp.region_b, by_lp.radius):
            key = tuple(sorted((tuple(lp.path_codes(depth)[a]), tuple(lp.path_codes(depth)[b]))))
            assert r == pytest.approx(i_m[key], rel=1e-6, abs=1e-9)


def _check_witnesses(tree, adj, depth):
    """Each witness lies on the facet's hyperplane and steps into region_a on one side and
    region_b on the other; the codes differ exactly in the reported units."""
    net = tree.network
    codes = tree.path_codes(depth)
    for i, (a, b) in enumerate(adj.pairs):
        c, n = adj.center[i], adj.normal[i]
        assert abs(n @ c - adj.offset[i]) <= 1e-9
        step = 1e-7 * min(adj.radius[i], 1.0)
        for point, region in ((c - step * n, a), (c + step * n, b)):
            got = np.hstack(net.codes(point[None])[:depth])[0]
            np.testing.assert_array_equal(got, codes[region])
        units = adj.units_of(i)
        differ = np.flatnonzero(codes[a] != codes[b])
        assert len(units) == len(differ) >= 1


@pytest.mark.parametrize("network", [random_network(3, [7, 5], seed=5),
                                     random_network(3, [5, 4], seed=6,
                                                    activations=["abs", "leaky_relu:0.3"]),
                                     maxout_network(3, [3, 2], 2, seed=7)])
def test_witnesses_and_completeness_along_segments_in_3d(network):
    box = pc.Box(-1, 1, dim=3)
    tree = pc.subdivide(network, box)
    adj = facet_adjacency(tree)
    assert len(adj) > 0 and len(adj.undecided) == 0
    _check_witnesses(tree, adj, tree.depth)
    pairs = set(map(tuple, adj.pairs.tolist()))
    index = {tuple(c): i for i, c in enumerate(tree.leaf_codes())}
    rng = np.random.default_rng(0)
    crossings = 0
    for _ in range(6):
        # a random chord of the box: the interval engine gives the exact leaf sequence on it
        p, q = rng.uniform(-1, 1, (2, 3))
        d = q - p
        ends = np.concatenate([(-1 - p) / d, (1 - p) / d])
        t0, t1 = np.max(np.minimum(ends[:3], ends[3:])), np.min(np.maximum(ends[:3], ends[3:]))
        seg = pc.subdivide(network, pc.Slice.through_points(np.stack([p, q]),
                                                            inner=pc.Box(t0, t1, dim=1)))
        seq = [index[tuple(c)] for c in seg.leaf_codes()]
        for u, v in itertools.pairwise(seq):
            assert (min(u, v), max(u, v)) in pairs
            crossings += 1
    assert crossings > 10


def test_duplicate_and_scaled_neurons_share_a_facet():
    # units 0, 1, 2 have one hyperplane (1, 2 a scaled and a negated copy of 0): every facet
    # on it lies on all three units
    W = np.array([[1.0, 0.5, -0.2], [2.0, 1.0, -0.4], [-1.0, -0.5, 0.2], [0.3, -1.0, 0.5]])
    b = np.array([0.1, 0.2, -0.1, 0.0])
    net = pc.Network.from_weights([(W, b), (np.array([[1.0, -1.0, 0.5, 1.0]]), [0.1])],
                                  ["relu", "relu"])
    tree = pc.subdivide(net, pc.Box(-1, 1, dim=3))
    for depth in (1, 2):
        adj = facet_adjacency(tree, depth)
        _check_witnesses(tree, adj, depth)
        on_plane = [i for i in range(len(adj)) if (1, 0) in adj.units_of(i)]
        assert on_plane
        for i in on_plane:
            assert {(1, 0), (1, 1), (1, 2)} <= set(adj.units_of(i))


@pytest.mark.parametrize("network", [random_network(3, [6, 5], seed=8, head=2),
                                     maxout_network(3, [3, 2], 3, seed=9)])
def test_continuity_and_rank_one_jump_across_facets(network):
    """SPEC §6.2.6: the two affine maps agree on the common facet and differ by a rank-one
    matrix whose row space is the facet normal."""
    tree = pc.subdivide(network, pc.Box(-1, 1, dim=3))
    adj = facet_adjacency(tree)
    A, B = tree.affine_maps()
    rng = np.random.default_rng(1)
    for i, (a, b) in enumerate(adj.pairs):
        n = adj.normal[i]
        # points of the facet's hyperplane near the witness
        t = rng.normal(size=(4, 3))
        t -= np.outer(t @ n, n)
        pts = adj.center[i] + 0.5 * adj.radius[i] * t / np.linalg.norm(t, axis=1)[:, None]
        np.testing.assert_allclose(pts @ A[a].T + B[a], pts @ A[b].T + B[b], atol=1e-9)
        jump = A[b] - A[a]
        np.testing.assert_allclose(jump - np.outer(jump @ n, n), 0, atol=1e-9)


def test_one_dimensional_domains_neighbour_consecutive_intervals():
    net = random_network(1, [5, 4], seed=2)
    tree = pc.subdivide(net, pc.Box(-2, 2, dim=1))
    adj = facet_adjacency(tree)
    lo, hi = tree.intervals()
    order = np.argsort(lo)
    expected = {tuple(sorted(p)) for p in itertools.pairwise(order)}
    assert set(map(tuple, adj.pairs.tolist())) == expected
    np.testing.assert_allclose(hi[adj.region_a] * (hi[adj.region_a] <= lo[adj.region_b])
                               + hi[adj.region_b] * (hi[adj.region_b] <= lo[adj.region_a]),
                               adj.center[:, 0])


def _all_pairs(tree, depth):
    """Brute force: every pair of nodes, every hyperplane of the first one's rows."""
    from powercells.geometry.adjacency import _LPAdjacency

    lp = _LPAdjacency(tree, None)
    n = len(tree.levels[depth])
    found = set()
    for a, b in itertools.combinations(range(n), 2):
        Ga, ga = lp.rows(depth, a)
        Gb, gb = lp.rows(depth, b)
        G, g = np.vstack([Ga, Gb]), np.concatenate([ga, gb])
        for row, off in zip(Ga, ga):
            if lp.facet(G, g, row, off)[1] > tree.tolerances.region:
                found.add((a, b))
                break
    return found


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(integer_networks(dims=(2, 3), depth=(1, 2), width=(1, 4)))
def test_degenerate_integer_networks_against_all_pairs(case):
    network, d = case
    tree = pc.subdivide(network, pc.Box(-1, 1, dim=d), engine="lp")
    if tree.n_regions > 40:
        return
    for depth in range(1, tree.depth + 1):
        adj = facet_adjacency(tree, depth, method="lp")
        assert set(map(tuple, adj.pairs.tolist())) == _all_pairs(tree, depth)
        if d == 2:
            planar = pc.subdivide(network, pc.Box(-1, 1, dim=2))
            assert _pair_codes(facet_adjacency(planar, depth), planar, depth) == \
                _pair_codes(adj, tree, depth)


def test_bad_arguments():
    tree = pc.subdivide(random_network(3, [3], seed=0), pc.Box(-1, 1, dim=3))
    with pytest.raises(pc.PowercellsError, match="between 1 and 1"):
        facet_adjacency(tree, 2)
    with pytest.raises(pc.PowercellsError, match="unknown adjacency method"):
        facet_adjacency(tree, method="voronoi")
    with pytest.raises(pc.PowercellsError, match="planar engine"):
        facet_adjacency(tree, method="mesh")
    partial = pc.subdivide(random_network(3, [8, 8], seed=0), pc.Box(-1, 1, dim=3), max_regions=3)
    with pytest.raises(pc.PowercellsError, match="partial"):
        facet_adjacency(partial)
