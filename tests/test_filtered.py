"""The certified mode's float filter (``powercells.enumerate.vertex.filtered``): its error
bounds hold against exact rational arithmetic, and the counts it certifies are the exact
engine's, including where it gives up and the exact fallback takes over."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from networks import near_coincident_network, random_network

import powercells as pc
import powercells.enumerate.tasks as tasks_module
from powercells.enumerate import planar_filtered
from powercells.enumerate.executors import ProcessExecutor
from powercells.enumerate.pullback import pull_back
from powercells.enumerate.vertex import filtered
from powercells.enumerate.vertex.polytopes import Polytopes


def exact(a):
    """Every float of an array as the binary rational it is."""
    return np.vectorize(Fraction, otypes=[object])(np.asarray(a, dtype=np.float64))


def solve(M, y):
    """``M x = y`` in rationals (Gaussian elimination; M square and regular)."""
    n = len(M)
    A = [list(M[i]) + [y[i]] for i in range(n)]
    for c in range(n):
        p = next(r for r in range(c, n) if A[r][c] != 0)
        A[c], A[p] = A[p], A[c]
        for r in range(n):
            if r != c and A[r][c] != 0:
                f = A[r][c] / A[c][c]
                A[r] = [a - f * b for a, b in zip(A[r], A[c])]
    return [A[i][n] / A[i][i] for i in range(n)]


# ---------------------------------------------------------------------- the bounds

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 3),
       widths=st.lists(st.integers(2, 6), min_size=2, max_size=4),
       kind=st.sampled_from(["relu", "leaky_relu:0.1", "abs"]))
def test_pulled_back_maps_are_within_their_bounds(seed, d, widths, kind):
    """Along a random code path, the float maps of the engines (pull_back, switch_maps) are
    within pullback_errors / child_errors of the exact maps, and the unit-normal hyperplanes
    within hyperplane_errors of the exact ones divided by the float norm."""
    net = random_network(d, widths, seed=seed, activations=[kind] * len(widths)).balanced()
    rng = np.random.default_rng(seed)
    A, B = np.eye(d)[None], np.zeros((1, d))
    EA, EB = np.zeros((1, d)), np.zeros_like(B)
    xA, xB = exact(A[0]), exact(B[0])
    for layer in net.layers:
        if not layer.is_switch:
            break
        W, b = layer.switch_W, layer.switch_b
        planes = pull_back(layer, A, B, 1e-12)
        EPA, EPB = filtered.pullback_errors(W, b, A, B, EA, EB)
        xW, xb = exact(W), exact(b)
        xPA, xPB = xW.dot(xA), xW.dot(xB) + xb
        # per row: the gradient's error summed over the inputs, and the offset's
        assert np.all(np.abs(exact(planes.grad[0]) - xPA).sum(axis=1) <= exact(EPA[0]))
        assert np.all(np.abs(exact(planes.offset[0]) - xPB) <= exact(EPB[0]))
        dn, dh = filtered.hyperplane_errors(planes.grad, planes.offset, planes.norm,
                                            planes.constant, EPA, EPB)
        G, g = planes.unit_normals()
        for u in np.flatnonzero(~planes.constant[0]):
            nrm = Fraction(float(planes.norm[0, u]))
            assert sum(abs(Fraction(float(G[0, u, j])) - xPA[u, j] / nrm)
                       for j in range(d)) <= Fraction(float(dn[0, u]))
            assert abs(Fraction(float(g[0, u])) - xPB[u] / nrm) <= Fraction(float(dh[0, u]))
        code = rng.integers(0, 2, size=(1, layer.out_dim))
        factor = layer.switch_factors
        A, B = planes.switch_maps(factor, np.zeros(1, dtype=np.int64), code)
        EA, EB = filtered.child_errors(factor, EPA, EPB, planes.grad, planes.offset,
                                       np.zeros(1, dtype=np.int64), code)
        f = exact(factor[code[0]])
        xA, xB = xPA * f[:, None], xPB * f
        assert np.all(np.abs(exact(A[0]) - xA).sum(axis=1) <= exact(EA[0]))
        assert np.all(np.abs(exact(B[0]) - xB) <= exact(EB[0]))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(2, 4), cuts=st.integers(1, 5))
def test_vertex_radii_bound_the_exact_vertices(seed, d, cuts):
    """A box cut by hyperplanes with rational coefficients rounded to floats: every simple
    vertex of every piece is within its radius of the exact vertex of its tight constraints,
    taken exactly (the box's facets, and each cut's exact hyperplane over the same float
    norm)."""
    rng = np.random.default_rng(seed)
    P = Polytopes.box(-np.ones(d), np.ones(d))
    cut_rows = []                               # (float G, float g, exact G*, exact g*)
    for _ in range(cuts):
        a = [Fraction(int(rng.integers(-9, 10)), int(rng.integers(1, 8))) for _ in range(d)]
        if not any(a):
            a[0] = Fraction(1, 3)
        c = Fraction(int(rng.integers(-5, 6)), int(rng.integers(3, 11)))
        af = np.array([float(x) for x in a])
        nrm = float(np.linalg.norm(af))
        G, g = af / nrm, float(c) / nrm
        cut_rows.append((G, g, [x / Fraction(nrm) for x in a], c / Fraction(nrm)))
        s = P.X @ G + g
        Gs = np.repeat(G[None], len(P), axis=0)
        P, _, _ = P.cut(s, Gs, np.full(len(P), g), 1e-12, both=True)
    dn = max(sum(abs(Fraction(float(G[j])) - Gx[j]) for j in range(d))
             for G, g, Gx, gx in cut_rows)
    dh = max(abs(Fraction(g) - gx) for G, g, Gx, gx in cut_rows)
    slot_err = np.tile([float(dn) * 2 + 1e-300, float(dh) * 2 + 1e-300], (len(P), 1))
    rho, simple, rows = filtered.vertex_radii(P, slot_err)
    assert simple.any()

    def exact_row(r):
        N, h = P.N[r], P.h[r]
        for G, g, Gx, gx in cut_rows:
            if np.array_equal(N, -G) and h == g:
                return [-x for x in Gx], gx
            if np.array_equal(N, G) and h == -g:
                return list(Gx), -gx
        return [Fraction(float(x)) for x in N], Fraction(float(h))     # a box facet

    for v, T in zip(np.flatnonzero(simple), rows):
        if not np.isfinite(rho[v]):
            continue
        Ns, hs = zip(*(exact_row(r) for r in T))
        star = solve([list(n) for n in Ns], list(hs))
        err = max(abs(Fraction(float(P.X[v, j])) - star[j]) for j in range(d))
        assert err <= Fraction(float(rho[v]))


# ---------------------------------------------------------------------- certified counts

SMALL = st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 0.25, -0.75])


@st.composite
def small_networks(draw):
    d = draw(st.integers(2, 3))
    widths = draw(st.lists(st.integers(2, 4), min_size=1, max_size=2))
    dims = [d] + widths
    pairs = []
    for i, w in enumerate(widths):
        W = np.array([[draw(SMALL) for _ in range(dims[i])] for _ in range(w)])
        b = np.array([draw(SMALL) for _ in range(w)])
        pairs.append((W, b))
    acts = [draw(st.sampled_from(["relu", "abs", "leaky_relu:0.5"])) for _ in widths]
    return pc.Network.from_weights(pairs, acts)


@settings(max_examples=30, deadline=None)
@given(net=small_networks(), compiled=st.booleans())
def test_certified_float_filter_equals_the_exact_engine(net, compiled):
    """Dyadic weights make concurrent, duplicate, dead and through-corner hyperplanes: the
    filter (numpy or compiled) must hand those cells to exact arithmetic, and the counts are
    the exact engine's."""
    if compiled:
        pytest.importorskip("numba")
    d = net.input_dim
    box = pc.Box(-2, 2, dim=d)
    want = pc.count_regions(net, box, certify=True, engine="exact", executor="serial")
    # in 2-D both float engines can certify: the planar one (auto) and the vertex one
    for engine in ("auto", "vertex") if d == 2 else ("auto",):
        got = pc.count_regions(net, box, certify=True, executor="serial", engine=engine,
                               engine_options={"compiled": compiled})
        assert got.engine == ("planar (certified)" if d == 2 and engine == "auto"
                              else "vertex (certified)")
        assert got.per_layer == want.per_layer and got.undecided == [0] * len(got.per_layer)


def test_generic_networks_are_certified_by_the_filter_alone():
    net = random_network(3, [8, 8, 8], seed=4)
    box = pc.Box(-1, 1, dim=3)
    got = pc.count_regions(net, box, certify=True, executor="serial")
    assert got.per_layer == pc.count_regions(net, box, engine="exact", certify=True,
                                             executor="serial").per_layer
    assert got.stats["cells_uncertified"] == 0 and got.stats["cells_replaced"] == 0


@pytest.mark.parametrize("engine", ["planar", "vertex"])
def test_cells_the_filter_cannot_prove_are_redone_exactly(monkeypatch, engine):
    """With vertex radii inflated past every margin, no float decision is proven: every split
    is redone in exact arithmetic, and the count is the same."""
    net = random_network(2, [5, 4], seed=2, activations=["relu", "abs"])
    box = pc.Box(-1, 1, dim=2)
    want = pc.count_regions(net, box, engine="exact", certify=True, executor="serial")
    monkeypatch.setattr(filtered, "_SLACK", 1e30)        # (the numpy filters' radii)
    monkeypatch.setattr(planar_filtered, "_SLACK", 1e30)
    got = pc.count_regions(net, box, certify=True, executor="serial", engine=engine,
                           engine_options={"compiled": False})
    assert got.engine == f"{engine} (certified)" and got.per_layer == want.per_layer
    assert got.stats["cells_uncertified"] >= 1 and got.stats["cells_replaced"] >= 1


@pytest.mark.parametrize("compiled", [False, True])
def test_near_coincident_units_are_certified(compiled):
    if compiled:
        pytest.importorskip("numba")
    net = near_coincident_network()
    box = pc.Box(-1, 1, dim=net.input_dim)
    got = pc.count_regions(net, box, certify=True, executor="serial",
                           engine_options={"compiled": compiled})
    want = pc.count_regions(net, box, engine="exact", certify=True, executor="serial")
    assert got.per_layer == want.per_layer and got.stats["cells_uncertified"] >= 1


@pytest.mark.parametrize("d", [2, 3])
def test_certified_tasks_travel_to_workers(monkeypatch, d):
    """Cells carry their error bounds (and, in 2-D, edge lines) into worker processes: a pool
    gives the serial count."""
    monkeypatch.setattr(tasks_module, "DEFAULT_CAP", 10)
    net = random_network(d, [9, 9], seed=7)
    box = pc.Box(-1, 1, dim=d)
    serial = pc.count_regions(net, box, certify=True, executor="serial")
    pool = pc.count_regions(net, box, certify=True,
                            executor=ProcessExecutor(2, start_after=0, min_work=0))
    assert pool.per_layer == serial.per_layer and pool.stats["tasks"] > 1


def test_a_certified_store_is_not_resumed_by_another_run(tmp_path):
    pytest.importorskip("pyarrow")
    net = random_network(3, [6, 6], seed=1)
    box = pc.Box(-1, 1, dim=3)
    store = tmp_path / "store"
    pc.count_regions(net, box, certify=True, executor="serial", store=store)
    with pytest.raises(pc.PowercellsError, match="different engine"):
        pc.count_regions(net, box, executor="serial", store=store)


@pytest.mark.parametrize("engine,dim,message", [
    ("vertex", 1, "2 to 12 dimensions"),
    ("planar", 3, "a domain of 2 dimensions"),
    ("lp", 2, "cannot certify"),
])
def test_certify_with_an_engine_that_cannot(engine, dim, message):
    net = random_network(dim, [3], seed=0)
    with pytest.raises(pc.OptionError, match=message):
        pc.count_regions(net, pc.Box(-1, 1, dim=dim), certify=True, engine=engine)


def test_maxout_networks_stay_on_the_exact_engine():
    from networks import maxout_network

    net = maxout_network(2, [3, 2], 3, seed=1)
    got = pc.count_regions(net, pc.Box(-1, 1, dim=2), certify=True)
    assert got.engine == "exact"


def test_a_tiny_net_against_the_codes_of_a_grid():
    """The certified count of a 2-unit, 2-D net against all sign patterns realised on a fine
    grid of dyadic points (every region of this net is wide)."""
    net = pc.Network.from_weights([(np.array([[1.0, 0.5], [-0.5, 1.0]]),
                                    np.array([0.25, -0.125]))], ["relu"])
    box = pc.Box(-1, 1, dim=2)
    got = pc.count_regions(net, box, certify=True, executor="serial")
    grid = np.array(list(itertools.product(np.linspace(-0.99, 0.99, 41), repeat=2)))
    codes = {tuple(c) for c in net.codes(grid)[0]}
    assert got.per_layer == [len(codes)]


def test_a_cell_the_certified_mode_cannot_settle_makes_it_raise(monkeypatch):
    """Were the exact placement of a cell's parent to fail, the cell would be undecided: the
    certified mode then reports no count rather than one that may miss regions."""
    from powercells.enumerate.thin import ThinSplitter

    net = random_network(2, [4, 3], seed=5)
    monkeypatch.setattr(filtered, "_SLACK", 1e30)           # every cell goes exact
    monkeypatch.setattr(planar_filtered, "_SLACK", 1e30)
    monkeypatch.setattr(ThinSplitter, "_placed", lambda self, point, depth: None)
    with pytest.raises(pc.PowercellsError, match=r"could not settle \d+ cell"):
        pc.count_regions(net, pc.Box(-1, 1, dim=2), certify=True, executor="serial",
                         engine_options={"compiled": False})


def test_a_polygon_domain_is_certified():
    """A triangle's edges are identified among its rows (divided by their float norms)."""
    net = random_network(2, [6, 5], seed=3)
    tri = pc.Polytope(np.array([[-1.0, -0.5], [0.3, 1.0], [0.7, -1.0]]),
                      np.array([0.6, 0.9, 0.5]))
    got = pc.count_regions(net, tri, certify=True, executor="serial")
    want = pc.count_regions(net, tri, engine="exact", certify=True, executor="serial")
    assert got.engine == "planar (certified)" and got.per_layer == want.per_layer


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_planar_vertex_radii_bound_the_exact_crossing(seed):
    """The planar filter's closed-form 2x2 bound: a float crossing of two lines with rational
    coefficients (rounded to floats, the rounding counted in the slot error) is within its
    radius of the exact crossing."""
    rng = np.random.default_rng(seed)
    exact_lines, float_lines = [], []
    for _ in range(2):
        a = [Fraction(int(rng.integers(-20, 21)), int(rng.integers(1, 9))) for _ in range(3)]
        if not (a[0] or a[1]):
            a[0] = Fraction(1, 7)
        exact_lines.append(a)
        float_lines.append([float(x) for x in a])
    (a, b, c), (p, q, r) = exact_lines
    det = a * q - b * p
    if det == 0:
        return
    star = [(-c * q + b * r) / det, (-a * r + c * p) / det]       # a x + b y + c = 0 = p x ...
    L = np.array(float_lines)
    v = np.linalg.solve(L[:, :2], -L[:, 2])
    dn = max(sum(abs(Fraction(f) - e) for f, e in zip(fl[:2], ex[:2]))
             for fl, ex in zip(float_lines, exact_lines))
    dh = max(abs(Fraction(fl[2]) - ex[2]) for fl, ex in zip(float_lines, exact_lines))
    err = np.array([[float(dn) * 2 + 1e-300, float(dh) * 2 + 1e-300]])
    rho = planar_filtered._radii2(L[:1], L[1:], v[None], err)[0]
    if np.isfinite(rho):
        assert max(abs(Fraction(float(v[j])) - star[j]) for j in range(2)) <= Fraction(rho)
