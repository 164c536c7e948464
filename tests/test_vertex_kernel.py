"""The vertex engine's compiled splitter (numba): its pieces are exact polytopes (qhull and the
face test, as for :meth:`Polytopes.cut`), it gives the numpy path's trees and counts node for
node, with or without threads, and the polytopes it rebuilds on demand are the ones it would
have kept."""

import numpy as np
import pytest
from environment import both_paths, counted_kernel_loads, engine_defaults
from hypothesis import HealthCheck, given, settings
from networks import maxout_network, random_network
from strategies import integer_networks
from test_vertex import _assert_exact_polytope

import powercells as pc
from powercells.enumerate import EngineOptions, EngineSetup
from powercells.enumerate.tolerances import Tolerances
from powercells.enumerate.vertex.engine import VertexEngine, _run_kernel
from powercells.enumerate.vertex.polytopes import Polytopes, affine_values

numba = pytest.importorskip("numba")
from powercells.enumerate.vertex.kernel import split_cells

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_same_trees(a, b, centers=True):
    """Node for node: codes, parents, radii (and interior points, up to rounding; where a cell's
    Chebyshev centre is not unique, both points must be centres of its largest ball)."""
    assert a.per_layer == b.per_layer
    assert len(a.slivers) == len(b.slivers)
    for depth, (la, lb) in enumerate(zip(a.levels, b.levels)):
        assert np.array_equal(la.code, lb.code)
        assert np.array_equal(la.thin, lb.thin)
        assert np.array_equal(la.parent, lb.parent)
        assert np.allclose(la.inradius, lb.inradius, rtol=1e-7, atol=1e-12)
        if not centers:
            continue
        apart = np.flatnonzero(np.abs(la.interior_point - lb.interior_point).max(axis=1) > 1e-7)
        for i in apart:
            H, h = a.halfspaces(depth, int(i))
            for point in (la.interior_point[i], lb.interior_point[i]):
                assert np.min(h - H @ point) >= la.inradius[i] - 1e-7


def assert_paths_agree(network, domain):
    """Trees node for node, counts and slivers: compiled path == numpy path."""
    compiled, plain = both_paths(lambda: pc.subdivide(network, domain, engine="vertex"))
    assert_same_trees(compiled, plain)
    counted, counted_plain = both_paths(lambda: pc.count_regions(network, domain,
                                                                 engine="vertex"))
    assert counted.per_layer == counted_plain.per_layer == compiled.per_layer
    assert (counted.thin, counted.undecided) == (counted_plain.thin, counted_plain.undecided)


# ---------------------------------------------------------------------- the kernel itself
def _kernel_pieces(d, T, rng, integer, geometry=True):
    """The box [-1, 1]^d split by T hyperplanes in one call of the kernel."""
    P = Polytopes.box(-np.ones(d), np.ones(d))
    if integer:   # through vertices, along faces, several through one point
        G = rng.integers(-1, 2, size=(T, d)).astype(float)
        G[~G.any(axis=1), 0] = 1.0
        g = rng.integers(-1, 2, size=T).astype(float)
    else:
        G, g = rng.normal(size=(T, d)), 0.3 * rng.normal(size=T)
    nrm = np.linalg.norm(G, axis=1)
    G, g = G / nrm[:, None], g / nrm
    words = (2 * d + T + 63) // 64
    out = _run_kernel(split_cells, P, np.array([0, T]), G, g, 1e-12, words, geometry, 1)
    return out[:6], G, g        # the doubt flags are tested with the engines (test_exact)


@pytest.mark.parametrize("d", [1, 2, 3, 4])
@pytest.mark.parametrize("integer", [False, True])
def test_kernel_pieces_are_exact_polytopes(d, integer):
    from scipy.spatial import ConvexHull

    (cell, sides, center, radius, fragile, geom), G, g = _kernel_pieces(
        d, 7, np.random.default_rng(d + 10 * integer), integer)
    Q = Polytopes(*geom)
    assert fragile == 0
    assert len(Q) == len(cell) >= 2
    for i in range(len(Q)):
        _assert_exact_polytope(Q, i)
    # each piece lies on its recorded side of every hyperplane; the mean is inside
    side = sides.reshape(len(Q), len(g))
    assert np.array_equal(side, (center @ G.T + g > 0).astype(np.int8))
    assert np.all(radius > 0)
    assert len({tuple(s) for s in side.tolist()}) == len(Q)
    if d > 1:
        volume = sum(ConvexHull(Q.vertices(i)).volume for i in range(len(Q)))
        assert np.isclose(volume, 2.0 ** d, rtol=1e-12)


@pytest.mark.parametrize("d,integer", [(2, False), (3, False), (5, False), (2, True), (3, True),
                                       (4, True)])
def test_kernel_without_geometry_gives_the_same_pieces_in_the_same_order(d, integer):
    # the engine rebuilds polytopes on demand by rerunning the kernel: the order must match.
    # Without geometry a split whose two sides are both final, with no vertex on the hyperplane
    # and only simple new vertices, does not match its section's edges (each 2-face then
    # crosses the hyperplane in two edges); with geometry every section is matched and its
    # degrees counted: through vertices and along faces ({-1, 0, 1} hyperplanes) too, neither
    # finds a vertex short of edges
    rng_seed = 40 + d + 10 * integer
    (c1, s1, m1, r1, f1, _), _, _ = _kernel_pieces(d, 9, np.random.default_rng(rng_seed),
                                                   integer, geometry=False)
    (c2, s2, m2, r2, f2, geom), _, _ = _kernel_pieces(d, 9, np.random.default_rng(rng_seed),
                                                      integer, geometry=True)
    assert np.array_equal(c1, c2) and np.array_equal(s1, s2)
    assert np.allclose(m1, m2) and np.allclose(r1, r2)
    assert f1 == f2 == 0
    # the ball bound is the one the polytopes give
    Q = Polytopes(*geom)
    assert np.allclose(Q.inner_ball(m2), r1)
    if integer:
        for i in range(len(Q)):
            _assert_exact_polytope(Q, i)

@pytest.mark.parametrize("d,integer", [(2, False), (3, False), (4, False), (3, True),
                                       (4, True)])
def test_kernel_pieces_have_the_numpy_paths_vertices_to_the_bit(d, integer):
    # both paths interpolate a crossing edge from its + end, whichever way it is stored, so a
    # piece's vertices are the same floats on either path (only their order may differ)
    (cell, sides, center, radius, fragile, geom), G, g = _kernel_pieces(
        d, 7, np.random.default_rng(70 + d + 10 * integer), integer)
    Q = Polytopes(*geom)
    P = Polytopes.box(-np.ones(d), np.ones(d))
    code = np.zeros((1, len(g)), dtype=np.int8)
    for t in range(len(g)):
        s = affine_values(P.X, np.repeat(G[t][None], len(P.X), 0), np.full(len(P.X), g[t]))
        P, src, side = P.cut(s, np.repeat(G[t][None], len(P), 0), np.full(len(P), g[t]),
                             1e-12)
        code = code[src]
        code[:, t] = side
    numpy_pieces = {code[i].tobytes(): i for i in range(len(P))}
    kernel_codes = sides.reshape(len(Q), len(g))
    assert sorted(numpy_pieces) == sorted(c.tobytes() for c in kernel_codes)

    def sorted_vertices(polytopes, i):
        X = polytopes.vertices(i)
        return X[np.lexsort(X.T[::-1])]

    for i in range(len(Q)):
        j = numpy_pieces[kernel_codes[i].tobytes()]
        assert np.array_equal(sorted_vertices(Q, i), sorted_vertices(P, j))


# ---------------------------------------------------------------------- the engine, both paths
@pytest.mark.parametrize("d,widths,seed", [(2, [6, 5, 3], 0), (3, [8, 6], 1), (4, [7, 6], 2),
                                           (5, [6, 5], 3), (6, [6, 4], 4), (7, [6, 5], 5),
                                           (8, [5, 4], 6)])
def test_compiled_path_equals_numpy_path(d, widths, seed):
    assert_paths_agree(random_network(d, widths, seed, head=2), pc.Box(-1, 1, dim=d))


@SETTINGS
@given(integer_networks(dims=(1, 4), depth=(1, 3)))
def test_compiled_path_equals_numpy_path_on_degenerate_networks(case):
    network, d = case
    assert_paths_agree(network, pc.Box(-1, 1, dim=d))


def test_compiled_path_with_maxout_and_a_polytope_domain():
    assert_paths_agree(maxout_network(3, [4, 3], 3, seed=5), pc.Box(-1, 1, dim=3))
    simplex = pc.Polytope(np.vstack([-np.eye(3), np.ones((1, 3))]), np.r_[np.zeros(3), 1.0])
    assert_paths_agree(random_network(3, [6, 5], 7), simplex)


@pytest.mark.parametrize("d, widths, seed, threads", [
    (5, [8, 6, 4], 9, 3),
    # the root cut by 16 units: the first stage's pieces (up to 16) are shared among the
    # threads
    (4, [16, 5], 4, 2)])
def test_threads_do_not_change_the_result(d, widths, seed, threads):
    network = random_network(d, widths, seed)
    box = pc.Box(-1, 1, dim=d)
    one_thread = {"compiled": True, "threads": 1}
    many_threads = {"compiled": True, "threads": threads}
    one = pc.subdivide(network, box, engine="vertex", engine_options=one_thread)
    one_count = pc.count_regions(network, box, engine="vertex", engine_options=one_thread)
    many = pc.subdivide(network, box, engine="vertex", engine_options=many_threads)
    many_count = pc.count_regions(network, box, engine="vertex", engine_options=many_threads)
    assert_same_trees(one, many)
    for la, lb in zip(one.levels, many.levels):
        assert np.array_equal(la.interior_point, lb.interior_point)
    assert one_count.per_layer == many_count.per_layer == one.per_layer


def test_polytopes_rebuilt_on_demand_equal_the_kept_ones():
    # counting without knowing the last layer keeps no polytopes; the next layer asks for them
    network = random_network(4, [7, 5], 11)
    box = pc.Box(-1, 1, dim=4)
    tol = Tolerances().resolve(box.diameter)
    layer = network.layers[0]
    kept = VertexEngine(EngineSetup(tol, cap=4.0, exact_balls=True,
                                    options=EngineOptions(compiled=True, threads=1)))
    lazy = VertexEngine(EngineSetup(tol, cap=4.0, exact_balls=False,
                                    options=EngineOptions(compiled=True, threads=2)))
    a = kept.split(kept.root(box), layer)
    b = lazy.split(lazy.root(box), layer)
    assert np.array_equal(a.code, b.code) and np.array_equal(a.parent, b.parent)
    Pa, Pb = a.children.polytopes, b.children.polytopes
    assert np.array_equal(Pa.vstart, Pb.vstart) and np.array_equal(Pa.X, Pb.X)
    assert np.array_equal(Pa.E, Pb.E) and np.array_equal(Pa.inc, Pb.inc)
    # and splitting them by the next layer gives the same children
    a2 = kept.split(a.children, network.layers[1])
    b2 = lazy.split(b.children, network.layers[1])
    assert np.array_equal(a2.code, b2.code) and np.array_equal(a2.parent, b2.parent)


def test_path_switches():
    tol = Tolerances().resolve(2.0)
    def engine(**options):
        return VertexEngine(EngineSetup(tol, cap=4.0, options=EngineOptions.coerce(options)))

    assert engine().kernel is split_cells           # numba is installed here
    assert engine(compiled=True).kernel is split_cells
    assert engine(compiled=False).kernel is None
    with engine_defaults(compiled=False):
        assert engine().kernel is None
        # asking for it explicitly overrides the defaults
        assert engine(compiled=True).kernel is split_cells
    assert engine(threads=3).threads == 3
    with engine_defaults(threads=2):
        assert engine().threads == 2
    with pytest.raises(pc.OptionError, match="threads"):
        engine(threads=0)
    with pytest.raises(pc.OptionError, match="unknown engine option"):
        engine(jit=False)


def test_a_count_loads_the_compiled_splitter_once_the_job_proves_large(monkeypatch):
    import powercells.enumerate.kernels as kernels
    import powercells.enumerate.vertex.engine as vertex_engine

    net, box = random_network(4, [9, 8, 6], 3), pc.Box(-1, 1, dim=4)
    with engine_defaults(compiled=False):
        plain = pc.count_regions(net, box, engine="vertex", executor="serial")
    loads = counted_kernel_loads(monkeypatch, vertex_engine,
                                 "powercells.enumerate.vertex.kernel", split_cells)
    # a small job: the numpy path throughout, the splitter never loaded
    monkeypatch.setitem(kernels.KERNEL_AFTER, "vertex", 1e9)
    small = pc.count_regions(net, box, engine="vertex", executor="serial")
    assert loads == []
    # a large one (no time allowed on the numpy path): loaded after the first split, once,
    # and the counts do not show where the path changed
    monkeypatch.setitem(kernels.KERNEL_AFTER, "vertex", 0.0)
    switched = pc.count_regions(net, box, engine="vertex", executor="serial")
    assert loads == [True]
    assert plain.per_layer == small.per_layer == switched.per_layer
    assert (plain.thin, plain.undecided) == (switched.thin, switched.undecided)
    # a run that hands out interior points keeps one path throughout (compiled here)
    loads.clear()
    tree = pc.subdivide(net, box, engine="vertex", executor="serial")
    assert loads == [True] and tree.per_layer == plain.per_layer


def test_a_small_count_in_a_fresh_process_imports_neither_numba_nor_the_lp_solver(tmp_path):
    # 398 regions, ~0.04 s on the numpy path: far enough below the 0.2 s after which the
    # splitter loads that a busy machine does not load it (9 x 9 units took 0.16-0.18 s)
    import subprocess
    import sys

    script = (
        "import sys, numpy as np, powercells as pc\n"
        "rng = np.random.default_rng(0)\n"
        "pairs = [(rng.normal(size=(6, 4)), 0.2 * rng.normal(size=6)),\n"
        "         (rng.normal(size=(6, 6)), 0.2 * rng.normal(size=6))]\n"
        "net = pc.Network.from_weights(pairs, ['relu', 'relu'])\n"
        "r = pc.count_regions(net, pc.Box(-1, 1, dim=4), executor='serial')\n"
        "assert r.engine == 'vertex' and r.regions > 100, r\n"
        "print(sorted(m for m in ('numba', 'highspy', 'scipy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("geometry", [False, True])
def test_fragile_vertices_are_counted_on_sides_that_are_not_built(geometry):
    # an inconsistent polytope (what near-coincident hyperplanes leave behind): its cut has a
    # section of two simple vertices with no common edge key, so every vertex of both sides is
    # short of edges; the numpy path counts them, and so must the kernel when it builds neither
    # side (the last hyperplane of the last layer)
    d = 4
    X = np.array([[1.0, 0, 0, 0], [-1.0, 0, 0, 0], [-1.0, 1, 0, 0]])
    inc = np.array([[0b1111110], [0b0001110], [0b1110000]], dtype=np.uint64)
    E = np.array([[0, 1], [0, 2]])
    N = np.eye(6, d)
    P = Polytopes(X, inc, np.array([0, 3]), E, np.array([0, 2]), N, np.ones(6),
                  np.arange(1, 7), np.array([0, 6]))
    G, g = np.array([[1.0, 0, 0, 0]]), np.array([0.0])
    _, _, _, _, fragile, _, _ = _run_kernel(split_cells, P, np.array([0, 1]), G, g, 1e-12, 1,
                                         geometry, 1)
    plain, _, _ = P.cut(X @ G[0] + g[0], G, g, 1e-12)
    # the counts differ (the kernel checks a cell's own vertices once, the numpy path counts
    # inherited ones in every child); what matters, and drives the fallback, is "> 0"
    assert plain.fragile > 0
    assert fragile > 0


def test_side_fragile_counts_the_degrees_the_sides_would_have():
    from powercells.enumerate.vertex.kernel import _side_fragile

    # d = 3; old vertices 0 (+), 1 (-), 2 (on the hyperplane); edges 0-1 (crossing), 0-2, 1-2
    sg = np.array([1, -1, 0], dtype=np.int8)
    E = np.array([[0, 1], [0, 2], [1, 2]])
    on_idx = np.array([2])                 # the section: vertex 2, then the one new vertex
    # with the section edge 2-new: vertex 2 has 1 + 1 edges on each side, the new one 1 + 1
    fp, fm = _side_fragile(E, sg, on_idx, 1, 1, np.array([0]), np.array([1]), 3)
    assert (fp, fm) == (2, 2)                          # both below d = 3 on both sides
    fp, fm = _side_fragile(E, sg, on_idx, 1, 1, np.array([0]), np.array([1]), 2)
    assert (fp, fm) == (0, 0)                          # in 2-D they are enough
    # without the section edge the new vertex has only its half edge
    none = np.zeros(0, dtype=np.int64)
    assert _side_fragile(E, sg, on_idx, 1, 1, none, none, 2) == (2, 2)
