"""The vertex engine: its polytope cutting against qhull and an exact face test, its
code sets against the lp engine and the brute-force enumerator (random, degenerate, maxout,
max-pool networks, polytope domains and slices), and the Euler relation of the skeleton."""

import itertools

import numpy as np
import pytest
from environment import VERTEX_PATHS, engine_defaults
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
from powercells.enumerate.vertex.polytopes import Polytopes
from powercells.errors import PowercellsError
from powercells.testing import (
    assert_partitions_equal,
    brute_force_regions,
    leaf_code_set,
)


@pytest.fixture(scope="module", params=VERTEX_PATHS, ids=lambda p: f"compiled={p}",
                autouse=True)
def vertex_path(request):
    """Every test here runs on the numpy path and (numba installed) the compiled one."""
    with engine_defaults(compiled=request.param):
        yield request.param


SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
ACTIVATIONS = ["relu", "leaky_relu:0.1", "abs"]


# ---------------------------------------------------------------------- polytopes
def _chebyshev(N, h):
    from scipy.optimize import linprog

    d = N.shape[1]
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.hstack([N, np.ones((len(N), 1))]), b_ub=h,
                  bounds=[(None, None)] * d + [(0, None)], method="highs")
    return res.x[:d], res.x[d]


def _assert_exact_polytope(P, i):
    """Vertices equal qhull's from the constraints; edges equal the pairs whose common tight
    constraints have rank d - 1 (the definition of an edge); incidences are the tight sets."""
    from scipy.spatial import HalfspaceIntersection

    d = P.dim
    N, h = P.N[P.cstart[i]:P.cstart[i + 1]], P.h[P.cstart[i]:P.cstart[i + 1]]
    V = P.vertices(i)
    center, radius = _chebyshev(N, h)
    assert radius > 1e-9
    if d == 1:   # qhull needs d > 1: the interval between the tightest bounds
        hull = np.array([[np.max(h[N[:, 0] < 0] / N[N[:, 0] < 0, 0])],
                         [np.min(h[N[:, 0] > 0] / N[N[:, 0] > 0, 0])]])
    else:
        hull = HalfspaceIntersection(np.hstack([N, -h[:, None]]), center).intersections
    ours = np.unique(np.round(V, 7) + 0.0, axis=0)
    assert len(ours) == len(V), "duplicate vertices"
    assert np.array_equal(ours, np.unique(np.round(hull, 7) + 0.0, axis=0))
    tight = np.abs(V @ N.T - h) < 1e-9                              # (vertices, constraints)
    slots = P.slot[P.cstart[i]:P.cstart[i + 1]]
    bits = np.unpackbits(P.inc[P.vstart[i]:P.vstart[i + 1]].view(np.uint8), axis=1,
                         bitorder="little").astype(bool)
    assert np.array_equal(bits[:, slots], tight)
    def rank(rows):
        return np.linalg.matrix_rank(N[rows], tol=1e-9) if rows.any() else 0

    expected = {(a, b) for a, b in itertools.combinations(range(len(V)), 2)
                if rank(tight[a] & tight[b]) == d - 1}
    assert {tuple(sorted(e)) for e in P.edges(i).tolist()} == expected


def _random_cuts(d, rounds, rng, integer):
    P = Polytopes.box(-np.ones(d), np.ones(d))
    for _ in range(rounds):
        if integer:   # hyperplanes through vertices, along faces, several through one point
            g = rng.integers(-1, 2, size=(len(P), d)).astype(float)
            g[~g.any(axis=1), 0] = 1.0
            g0 = rng.integers(-1, 2, size=len(P)).astype(float)
        else:
            g, g0 = rng.normal(size=(len(P), d)), 0.3 * rng.normal(size=len(P))
        nrm = np.linalg.norm(g, axis=1)
        g, g0 = g / nrm[:, None], g0 / nrm
        owner = P.vertex_owner
        s = np.einsum("vd,vd->v", P.X, g[owner]) + g0[owner]
        P, _src, _side = P.cut(s, g, g0, 1e-12)
        P = P.prune()
    return P


@pytest.mark.parametrize("d", [1, 2, 3, 4])
@pytest.mark.parametrize("integer", [False, True])
def test_cut_polytopes_are_exact(d, integer):
    P = _random_cuts(d, 6, np.random.default_rng(d + 10 * integer), integer)
    assert len(P) >= (2 if d == 1 and integer else 5)    # x = 0 is the only integer cut in 1-D
    for i in range(len(P)):
        _assert_exact_polytope(P, i)


def test_cut_pieces_tile_the_box():
    from scipy.spatial import ConvexHull

    P = _random_cuts(3, 5, np.random.default_rng(3), integer=True)
    volumes = [ConvexHull(P.vertices(i)).volume for i in range(len(P))]
    assert np.isclose(sum(volumes), 8.0, rtol=1e-12)


def test_clip_keeps_one_side_and_drops_what_misses():
    P = Polytopes.box(-np.ones(2), np.ones(2))
    g, g0 = np.array([[1.0, 0.0]]), np.array([5.0])      # x >= -5: the whole box
    kept, _src, side = P.cut(P.X @ g[0] + g0[0], g, g0, 1e-12, both=False)
    assert len(kept) == 1 and side.tolist() == [1]
    kept, _, _ = P.cut(P.X @ -g[0] - g0[0], -g, -g0, 1e-12, both=False)   # x <= -5: nothing
    assert len(kept) == 0


# ---------------------------------------------------------------------- engine cross-checks
@pytest.mark.parametrize("d,widths,seed", [(2, [6, 6, 4], 0), (3, [8, 6], 1), (4, [6, 5], 2),
                                           (5, [5, 4], 3), (6, [5, 3], 4)])
def test_vertex_equals_lp_engine_and_brute_force(d, widths, seed):
    network = random_network(d, widths, seed, head=2)
    box = pc.Box(-1, 1, dim=d)
    vertex = pc.subdivide(network, box, engine="vertex")
    lp = pc.subdivide(network, box, engine="lp")
    assert vertex.per_layer == lp.per_layer
    assert_partitions_equal(vertex, lp)
    assert_partitions_equal(vertex, brute_force_regions(network, box))
    assert pc.count_regions(network, box, engine="vertex").per_layer == lp.per_layer
    # the tree's balls are exact Chebyshev balls: same radii as the lp engine's
    for a, b in zip(vertex.levels[1:], lp.levels[1:]):
        ka, kb = [np.lexsort(lv.code.T[::-1]) for lv in (a, b)]
        assert np.allclose(a.inradius[ka], b.inradius[kb], rtol=1e-7, atol=1e-12)


@st.composite
def small_networks(draw):
    d = draw(st.integers(1, 5))
    depth = draw(st.integers(1, 2 if d > 3 else 3))
    widths = [draw(st.integers(1, 6 if d <= 3 else 4)) for _ in range(depth)]
    acts = [draw(st.sampled_from(ACTIVATIONS)) for _ in range(depth)]
    seed = draw(st.integers(0, 2 ** 16))
    return random_network(d, widths, seed, activations=acts,
                          head=draw(st.sampled_from([None, 1, 3]))), d


@SETTINGS
@given(small_networks())
def test_random_networks_equal_brute_force(case):
    network, d = case
    box = pc.Box(-1, 1, dim=d)
    assert_partitions_equal(pc.subdivide(network, box, engine="vertex"),
                            brute_force_regions(network, box))


@SETTINGS
@given(integer_networks(dims=(1, 4)))
def test_degenerate_integer_networks_equal_lp_and_brute_force(case):
    network, d = case
    box = pc.Box(-1, 1, dim=d)
    vertex = pc.subdivide(network, box, engine="vertex")
    assert_partitions_equal(vertex, brute_force_regions(network, box))
    assert_partitions_equal(vertex, pc.subdivide(network, box, engine="lp"))
    counted = pc.count_regions(network, box, engine="vertex")
    assert counted.per_layer == vertex.per_layer
    assert sum(counted.undecided) == len(vertex.slivers)
    assert counted.thin == [int(level.thin.sum()) for level in vertex.levels[1:]]


@pytest.mark.parametrize("d,widths,pieces,seed", [(1, [3, 2], 3, 0), (2, [2, 2], 3, 1),
                                                   (3, [2, 2], 2, 3), (4, [2], 3, 4)])
def test_maxout_equals_brute_force(d, widths, pieces, seed):
    network = maxout_network(d, widths, pieces, seed)
    box = pc.Box(-1, 1, dim=d)
    vertex = pc.subdivide(network, box, engine="vertex")
    assert_partitions_equal(vertex, brute_force_regions(network, box))
    assert_partitions_equal(vertex, pc.subdivide(network, box, engine="lp"))


@pytest.mark.parametrize("groups,second,seed", [([[0, 1], [2, 3]], None, 0),
                                                ([[0, 1, 2], [3]], 3, 1),
                                                ([[0, 1], [1, 2], [2, 3, 4]], 2, 2)])
def test_maxpool_equals_lp_engine(groups, second, seed):
    network = maxpool_network(3, 5, groups, seed, second=second)
    box = pc.Box(-1, 1, dim=3)
    assert_partitions_equal(pc.subdivide(network, box, engine="vertex"),
                            pc.subdivide(network, box, engine="lp"))


def test_maxout_with_duplicate_pieces():
    # unit 0 repeats a piece; unit 1 has two pieces that differ by a constant only
    A = np.array([[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
                  [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 0.0, 1.0]]])
    B = np.array([[0.0, 0.0, 0.1], [0.0, 0.5, 0.0]])
    network = pc.Network([pc.Layer.maso(A, B)])
    box = pc.Box(-1, 1, dim=3)
    vertex = pc.subdivide(network, box, engine="vertex")
    assert_partitions_equal(vertex, brute_force_regions(network, box))
    assert_partitions_equal(vertex, pc.subdivide(network, box, engine="lp"))


def test_polytope_domain_and_slices():
    network = random_network(3, [6, 5], 7)
    simplex = pc.Polytope(np.array([[-1.0, 0, 0], [0, -1, 0], [0, 0, -1], [1, 1, 1]]),
                          np.array([0.0, 0, 0, 1]))
    assert_partitions_equal(pc.subdivide(network, simplex, engine="vertex"),
                            pc.subdivide(network, simplex, engine="lp"))
    wide = random_network(12, [8, 6], 8)
    rng = np.random.default_rng(0)
    origin, directions = rng.normal(size=12), rng.normal(size=(12, 3))
    plane = pc.Slice(origin, directions, pc.Box(-1, 1, dim=3))     # a 3-D slice of a 12-D net
    vertex = pc.subdivide(wide, plane, engine="vertex")
    assert vertex.per_layer == pc.subdivide(wide, plane, engine="lp").per_layer
    assert_partitions_equal(vertex, brute_force_regions(wide, plane))


def test_codes_match_the_forward_pass_at_interior_points():
    network = random_network(4, [8, 6], 5)
    tree = pc.subdivide(network, pc.Box(-1, 1, dim=4), engine="vertex")
    leaves = tree.levels[-1]
    assert np.all(leaves.inradius > tree.tolerances.region)
    full = np.hstack([np.asarray(c, dtype=np.int16)
                      for c in network.codes(leaves.interior_point)])
    assert {tuple(r) for r in full.tolist()} == leaf_code_set(tree)


# ---------------------------------------------------------------------- the skeleton
@pytest.mark.parametrize("d,widths,seed", [(2, [5, 4], 0), (2, [6, 6], 1), (3, [5, 4], 2),
                                           (3, [6, 3], 3)])
def test_euler_relation_of_the_skeleton(d, widths, seed):
    """sum_k (-1)^k f_k = 1 for the subdivision of a box (a ball), with faces merged across
    the leaves that share them."""
    from powercells.enumerate import EngineOptions, EngineSetup
    from powercells.enumerate.tolerances import Tolerances
    from powercells.enumerate.vertex import VertexEngine

    network = random_network(d, widths, seed)
    box = pc.Box(-1, 1, dim=d)
    engine = VertexEngine(EngineSetup(Tolerances().resolve(box.diameter), cap=10.0,
                                      options=EngineOptions.coerce(None)))
    cells = engine.root(box)
    for layer in network.layers:
        cells = engine.split(cells, layer).children
    P = cells.polytopes
    keys = np.round(P.X, 9) + 0.0
    _, vid = np.unique(keys, axis=0, return_inverse=True)
    vid = vid.ravel()
    n_vertices = vid.max() + 1
    eowner = np.repeat(np.arange(len(P)), P.n_edges)
    ends = np.sort(vid[P.E + P.vstart[eowner][:, None]], axis=1)
    n_edges = len({tuple(e) for e in ends.tolist()})
    chi = n_vertices - n_edges
    if d == 2:
        chi += len(P)
    else:
        faces = set()
        bits = np.unpackbits(P.inc.view(np.uint8), axis=1, bitorder="little").astype(bool)
        for i in range(len(P)):
            rows = np.arange(P.vstart[i], P.vstart[i + 1])
            for slot in P.slot[P.cstart[i]:P.cstart[i + 1]]:
                on = rows[bits[rows, slot]]
                faces.add(frozenset(vid[on].tolist()))
        chi += len(faces) - len(P)
    assert chi == 1


def test_refuses_high_dimensions():
    network = random_network(20, [3], 0)
    with pytest.raises(PowercellsError, match="vertex engine"):
        pc.count_regions(network, pc.Box(-1, 1, dim=20), engine="vertex")


def test_near_coincident_hyperplanes_fall_back_to_the_lp_engine():
    # {-1, 0, 1} weights plus 3e-12 noise, about the empty tolerance: near-duplicate vertices get
    # inconsistent incidences (vertices with fewer than d edges). Explicitly asked for, the vertex
    # engine says so with a PrecisionWarning; engine="auto" redoes the enumeration with the lp
    # engine, which sets aside every side it cannot resolve and settles it exactly: its count is
    # the certified one. The float brute force (tolerance 1e-9) merges the near-duplicates and
    # finds fewer.
    from powercells.errors import PrecisionWarning

    network = near_coincident_network()
    box = pc.Box(-1, 1, dim=4)
    with pytest.warns(PrecisionWarning, match="near-coincident hyperplanes"):
        pc.count_regions(network, box, engine="vertex")
    auto = pc.count_regions(network, box)
    assert auto.engine == "lp" and any(auto.thin)
    exact = pc.count_regions(network, box, certify=True)
    assert auto.per_layer == exact.per_layer
    brute = brute_force_regions(network, box)
    assert all(b <= a for b, a in zip(brute.per_layer, auto.per_layer))
    tree = pc.subdivide(network, box)
    assert tree.engine == "lp" and tree.per_layer == exact.per_layer
    # every leaf, thin or not, is a region: its interior point certifies its code path
    from powercells.network.certified import certified_codes

    codes, status = certified_codes(network, tree.levels[-1].interior_point)
    assert np.all(status > 0)
    np.testing.assert_array_equal(np.hstack(codes), tree.path_codes(tree.depth))
