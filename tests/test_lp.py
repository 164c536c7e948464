"""The LP backend contract, run on every backend: Chebyshev balls of known polytopes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powercells.lp import LPStatus, get_backend


def unit_rows(A, b):
    A = np.asarray(A, float)
    b = np.asarray(b, float)
    n = np.linalg.norm(A, axis=1)
    return A / n[:, None], b / n


def test_square_and_extra_rows(lp):
    ctx = get_backend(lp).context(*unit_rows([[1, 0], [-1, 0], [0, 1], [0, -1]], [1, 1, 1, 1]),
                                  cap=10.0)
    ball = ctx.chebyshev()
    assert ball.status is LPStatus.OPTIMAL
    assert ball.radius == pytest.approx(1.0, abs=1e-7)
    half = ctx.add_rows(*unit_rows([[1, 0]], [0]))       # x <= 0: a 1 x 2 rectangle
    thin = ctx.add_rows(*unit_rows([[-1, 0]], [-0.999]))  # with x >= 0.999: empty
    assert ctx.chebyshev(half).radius == pytest.approx(0.5, abs=1e-7)
    assert ctx.chebyshev(np.concatenate([half, thin])).radius < 0
    assert ctx.chebyshev().radius == pytest.approx(1.0, abs=1e-7)   # rows switch off again
    assert ctx.chebyshev(thin).radius == pytest.approx(0.0005, abs=1e-7)


def test_flat_polytope_has_radius_zero(lp):
    ctx = get_backend(lp).context(*unit_rows([[1, 0], [-1, 0], [0, 1], [0, -1]], [0, 0, 1, 1]),
                                  cap=10.0)
    assert abs(ctx.chebyshev().radius) < 1e-7


def test_radius_is_recomputed_from_the_centre(lp):
    rng = np.random.default_rng(0)
    A, b = unit_rows(rng.normal(size=(12, 3)), np.abs(rng.normal(size=12)) + 0.2)
    ball = get_backend(lp).context(A, b, cap=100.0).chebyshev()
    assert ball.radius == pytest.approx(np.min(b - A @ ball.center), abs=1e-15)
    from scipy.optimize import linprog
    ref = linprog(np.r_[np.zeros(3), -1.0], A_ub=np.hstack([A, np.ones((12, 1))]), b_ub=b,
                  bounds=[(None, None)] * 3 + [(None, 100)], method="highs")
    assert ball.radius == pytest.approx(ref.x[-1], abs=1e-7)


def test_extreme_point_and_its_basis_certificate(lp):
    A, b = unit_rows([[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1]], [1, 1, 1, 1, 1.5])
    ctx = get_backend(lp).context(A, b, cap=10.0)
    ext = ctx.extreme(np.array([-1.0, -1.0]))      # maximise x1 + x2 over the clipped square
    assert ext.value == pytest.approx(-1.5 * 1.0, abs=1e-7)
    if ext.basis is not None:
        assert len(ext.basis) == 2
        # the cost lies in the cone of the tight rows: a dual certificate of the minimum
        lam = np.linalg.solve(A[ext.basis].T, np.array([1.0, 1.0]))
        assert np.all(lam >= -1e-12)
    half = ctx.add_rows(*unit_rows([[1, 0]], [0.0]))
    assert ctx.extreme(np.array([-1.0, 0.0]), half).value == pytest.approx(0.0, abs=1e-7)
    empty = ctx.add_rows(*unit_rows([[-1, 0]], [-0.5]))   # x >= 0.5 with x <= 0
    assert ctx.extreme(np.array([1.0, 0.0]), np.concatenate([half, empty])).value == np.inf


# ---------------------------------------------------------------------- the dense simplex
def _reference_radius(A, b, cap):
    from scipy.optimize import linprog

    k = A.shape[1]
    ref = linprog(np.r_[np.zeros(k), -1.0], A_ub=np.hstack([A, np.ones((len(b), 1))]), b_ub=b,
                  bounds=[(None, None)] * k + [(-cap, cap)], method="highs")
    return ref.x[-1]


def _random_polytope(rng, k, m):
    """A bounded polytope: the box [-1, 1]^k and m random rows through points near 0."""
    A = np.vstack([np.eye(k), -np.eye(k), rng.normal(size=(m, k))])
    b = np.r_[np.ones(2 * k), rng.normal(size=m) * 0.5 + 0.2]
    return unit_rows(A, b)


@pytest.mark.parametrize("seed", range(12))
def test_dense_chebyshev_balls_on_nested_row_sets_match_scipy(seed):
    """A walk down nested row sets, as the engine makes them (each LP warm-started from the
    longest solved prefix), and back up: every radius equals the reference LP's."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 9))
    A, b = _random_polytope(rng, k, 3)
    ctx = get_backend("dense").context(A, b, cap=100.0)
    ref0 = _reference_radius(A, b, 100.0)
    ctx.warm(np.zeros(k) if ref0 < 0 else ctx.chebyshev().center, max(ref0, 0.0))
    G, g = _random_polytope(rng, k, 10)
    G, g = G[2 * k:], g[2 * k:]
    ids = ctx.add_rows(G, g)
    flipped = ctx.add_rows(-G, -g)
    for trial in range(6):
        # a random path: each step takes a row or its opposite, as a cell picks a side
        path = [int(ids[t]) if rng.random() < 0.5 else int(flipped[t])
                for t in rng.permutation(len(ids))[:int(rng.integers(1, len(ids) + 1))]]
        for depth in list(range(1, len(path) + 1)) + list(range(len(path), 0, -2)):
            active = np.array(path[:depth])
            ball = ctx.chebyshev(active)
            G_on, g_on = ctx.rows_of(active)
            rows_A, rows_b = np.vstack([A, G_on]), np.r_[b, g_on]
            assert ball.radius == pytest.approx(_reference_radius(rows_A, rows_b, 100.0),
                                                abs=1e-8)
            if ball.support is not None and ball.radius < 0:
                # the support rows with the base rows alone allow no larger radius
                G_s, g_s = ctx.rows_of(ball.support)
                bound = _reference_radius(np.vstack([A, G_s]), np.r_[b, g_s], 100.0)
                assert bound <= ball.radius + 1e-8
    cost = rng.normal(size=k)
    ext = ctx.extreme(cost)
    from scipy.optimize import linprog

    ref = linprog(cost, A_ub=A, b_ub=b, bounds=[(None, None)] * k, method="highs")
    if ref.status == 0:
        assert ext.value == pytest.approx(ref.fun, abs=1e-8)
        if ext.basis is not None:       # k tight rows whose cone holds -cost
            assert np.allclose(A[ext.basis] @ ext.x, b[ext.basis], atol=1e-9)
            assert np.all(np.linalg.solve(A[ext.basis].T, -cost) >= -1e-9)
    else:
        assert ext.value == np.inf
    assert ctx._backend.fallbacks == (0 if ref.status == 0 else 1)


def test_dense_chebyshev_support_certifies_emptiness():
    """An empty cell's support rows alone (with the base rows) have the same negative radius:
    the weak-duality certificate the engine reuses for every cell inside."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(5)
    A, b = _random_polytope(rng, 3, 0)
    ctx = get_backend("dense").context(A, b, cap=10.0)
    ctx.warm(np.zeros(3), 1.0)
    rows = ctx.add_rows(*unit_rows([[1, 0, 0], [-1, 0, 0], [0, 1, 1]], [-0.3, -0.1, 0.2]))
    ball = ctx.chebyshev(rows)             # x <= -0.3 and x >= 0.1: empty
    assert ball.radius < -0.1
    assert set(ball.support.tolist()) <= set(rows[:2].tolist())
    assert ctx.chebyshev(ball.support).radius <= ball.radius + 1e-12


def test_dense_degenerate_apex_and_duplicate_rows():
    """Many rows through one vertex (a pyramid's apex), duplicated rows and a flat polytope."""
    pytest.importorskip("numba")
    angles = np.linspace(0, 2 * np.pi, 9)[:-1]
    sides = np.column_stack([np.cos(angles), np.sin(angles), np.ones(8)])   # apex at (0, 0, 1)
    A = np.vstack([sides, sides, [[0, 0, -1]]])
    b = np.r_[np.ones(16), 0.0]
    A, b = unit_rows(A, b)
    ctx = get_backend("dense").context(A, b, cap=10.0)
    assert ctx.chebyshev().radius == pytest.approx(_reference_radius(A, b, 10.0), abs=1e-9)
    ext = ctx.extreme(np.array([0.0, 0.0, -1.0]))                    # the apex
    assert ext.value == pytest.approx(-1.0, abs=1e-12)
    top = ctx.add_rows(*unit_rows([[0, 0, 1]], [0.0]))               # z <= 0: flat
    assert abs(ctx.chebyshev(top).radius) < 1e-12
    assert ctx._backend.fallbacks == 0


def test_dense_hands_unfinished_problems_to_highs(monkeypatch):
    """When the simplex stops without an optimum, HiGHS answers (and is counted)."""
    pytest.importorskip("numba")
    from powercells.lp import dense_kernel

    backend = get_backend("dense")
    real = dense_kernel.chebyshev

    def stuck(M, q, n_base, active, x0, basis, T, updates, max_iter, tol):
        out = real(M, q, n_base, active, x0, basis, T, updates, 0, tol)   # no pivot allowed
        return (dense_kernel.ITERATION_LIMIT,) + tuple(out[1:])

    monkeypatch.setattr(backend, "kernel", type("K", (), {"chebyshev": staticmethod(stuck)}))
    A, b = unit_rows([[1, 0], [-1, 0], [0, 1], [0, -1]], [1, 1, 1, 1])
    ctx = backend.context(A, b, cap=10.0)
    half = ctx.add_rows(*unit_rows([[1, 0]], [0]))
    assert ctx.chebyshev(half).radius == pytest.approx(0.5, abs=1e-9)
    assert backend.fallbacks == 1


def test_dense_backend_pickles():
    pytest.importorskip("numba")
    import pickle

    backend = pickle.loads(pickle.dumps(get_backend("dense")))
    A, b = unit_rows([[1, 0], [-1, 0], [0, 1], [0, -1]], [2, 0, 1, 1])
    assert backend.context(A, b, cap=10.0).chebyshev().radius == pytest.approx(1.0, abs=1e-9)


def test_lp_engine_loads_the_compiled_simplex_as_the_other_engines_load_their_kernels(
        monkeypatch):
    """A plain count starts on HiGHS and takes the compiled simplex once the job proves large;
    a tree takes it from the start; ``compiled=False`` keeps HiGHS; the counts never change."""
    pytest.importorskip("numba")
    from environment import counted_kernel_loads, engine_defaults
    from networks import random_network

    import powercells as pc
    import powercells.enumerate.kernels as kernels
    import powercells.enumerate.lp_engine as lp_engine

    net, box = random_network(5, [6, 5], 3), pc.Box(-1, 1, dim=5)
    reference = pc.count_regions(net, box, engine="lp", lp="highs", executor="serial")
    backend = get_backend("dense")
    contexts = []
    real_context = backend.context
    backend.context = lambda A, b, *, cap: contexts.append(1) or real_context(A, b, cap=cap)
    loads = counted_kernel_loads(monkeypatch, lp_engine, "powercells.lp.dense_kernel", backend)
    monkeypatch.setitem(kernels.KERNEL_AFTER, "lp", 1e9)
    small = pc.count_regions(net, box, engine="lp", executor="serial")
    assert loads == [] and contexts == []
    monkeypatch.setitem(kernels.KERNEL_AFTER, "lp", 0.0)
    switched = pc.count_regions(net, box, engine="lp", executor="serial")
    assert loads == [True] and contexts           # loaded after the first split, then used
    assert reference.per_layer == small.per_layer == switched.per_layer
    loads.clear()
    tree = pc.subdivide(net, box, engine="lp", executor="serial")
    assert loads == [True] and tree.per_layer == reference.per_layer
    loads.clear()
    with engine_defaults(compiled=False):
        pc.subdivide(net, box, engine="lp", executor="serial")
    assert loads == []


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5), st.lists(st.lists(st.integers(-2, 2), min_size=5, max_size=5),
                                    min_size=1, max_size=12),
       st.lists(st.integers(-2, 2), min_size=12, max_size=12), st.randoms(use_true_random=False))
def test_dense_on_degenerate_integer_rows_matches_scipy(k, rows, offsets, rnd):
    """Rows with small integer entries (duplicates, opposite pairs, many rows through one
    vertex, zero rows dropped) over a box, switched on along random nested paths: every radius
    and every minimum equals the reference LP's."""
    pytest.importorskip("numba")
    from scipy.optimize import linprog

    G = np.array([r[:k] for r in rows], float)
    g = np.array(offsets[:len(rows)], float) / 2
    keep = np.linalg.norm(G, axis=1) > 0
    if not keep.any():
        return
    G, g = unit_rows(G[keep], g[keep])
    A, b = unit_rows(np.vstack([np.eye(k), -np.eye(k)]), np.ones(2 * k))
    ctx = get_backend("dense").context(A, b, cap=10.0)
    ctx.warm(np.zeros(k), 1.0)
    ids = ctx.add_rows(G, g)
    order = list(ids)
    rnd.shuffle(order)
    for depth in range(1, len(order) + 1):
        active = np.array(order[:depth])
        rows_A = np.vstack([A, G[active - len(b)]])
        rows_b = np.r_[b, g[active - len(b)]]
        ball = ctx.chebyshev(active)
        assert ball.radius == pytest.approx(_reference_radius(rows_A, rows_b, 10.0), abs=1e-9)
    cost = np.array([rnd.choice([-1.0, 0.0, 1.0]) for _ in range(k)])
    ext = ctx.extreme(cost)
    ref = linprog(cost, A_ub=A, b_ub=b, bounds=[(None, None)] * k, method="highs")
    assert ext.value == pytest.approx(ref.fun, abs=1e-9)
    assert ctx._backend.fallbacks == 0          # the simplex itself answered every problem


def test_dense_on_nearly_parallel_rows_matches_scipy():
    """Four rows whose normals agree to ~1e-9 (near-duplicate units): a pivot on such a row
    makes a nearly singular basis whose vertex slides far along the singular direction. The
    simplex must not report that vertex's radius (-4.5 here, the true one 0.228): it refuses
    such pivots and checks its vertex, handing the problem to HiGHS when the check fails."""
    pytest.importorskip("numba")
    G = np.array([
        [0.6361332722552364, 0.4297844641939155, 0.24165975451718744, -0.4568566663067562,
         0.36598146125177045, 0.09777470933315388],
        [0.6361332727837752, 0.42978446378939333, 0.241659756321536, -0.45685666646661277,
         0.36598145933798293, 0.09777470962952053],
        [0.5032752073943874, -0.13425572229014288, -0.700878642248098, 0.01751020334496594,
         0.17199250955189416, -0.45559912744847375],
        [0.6361332729688042, 0.4297844648074325, 0.2416597546245086, -0.4568566662073772,
         0.3659814599983778, 0.0977747068844747],
        [0.6361332735784795, 0.4297844657946062, 0.2416597525756433, -0.45685666550045345,
         0.3659814602033252, 0.09777470617854235]])
    g = np.array([-0.22641311933057523, 0.2295621661695524, -0.42347324733160885,
                  -0.2264131195067327, 0.22956216859866005])
    k = 6
    A, b = np.vstack([np.eye(k), -np.eye(k)]), np.ones(2 * k)
    cap = 4 * np.sqrt(k)
    ctx = get_backend("dense").context(A, b, cap=cap)
    ctx.warm(np.zeros(k), 1.0)
    ids, flipped = ctx.add_rows(G, g), ctx.add_rows(-G, -g)
    path = [ids[4], ids[2], flipped[3], flipped[0], ids[1]]
    for depth in range(1, len(path) + 1):
        active = np.array(path[:depth])
        G_on, g_on = ctx.rows_of(active)
        expected = _reference_radius(np.vstack([A, G_on]), np.r_[b, g_on], cap)
        assert ctx.chebyshev(active).radius == pytest.approx(expected, abs=1e-8)


def test_dense_crash_basis_from_the_node_centre():
    """The first problem of a context starts from the rows tight at the node's Chebyshev
    centre (a simplex: exactly k + 1 of them), then adds the extra rows by dual pivots."""
    pytest.importorskip("numba")
    k = 3
    A, b = unit_rows(np.vstack([-np.eye(k), np.ones((1, k))]), np.r_[np.zeros(k), 1.0])
    ctx = get_backend("dense").context(A, b, cap=10.0)
    ref = _reference_radius(A, b, 10.0)
    center = np.full(k, ref)                       # the simplex's incentre
    assert np.sum(np.isclose(b - A @ center, ref)) == k + 1
    ctx.warm(center, ref)
    cut = ctx.add_rows(*unit_rows([[1.0, -1.0, 0.0]], [0.0]))
    ball = ctx.chebyshev(cut)
    G_on, g_on = ctx.rows_of(cut)
    assert ball.radius == pytest.approx(_reference_radius(np.vstack([A, G_on]),
                                                          np.r_[b, g_on], 10.0), abs=1e-12)
    assert ctx._solved[b""][0].tolist() == [2, 3, 4, 5]      # the crash basis, kernel ids
    assert ctx._backend.fallbacks == 0


def test_lp_engine_counts_what_highs_answered_for_the_simplex():
    """Every Chebyshev problem of a run handed to HiGHS (the simplex made to stop at once): the
    tree is HiGHS's own, and the run's stats say how many problems went there."""
    pytest.importorskip("numba")
    from networks import random_network

    import powercells as pc
    from powercells.lp import dense_kernel

    backend = get_backend("dense")
    real = dense_kernel.chebyshev

    def stuck(M, q, n_base, active, x0, basis, T, updates, max_iter, tol):
        out = real(M, q, n_base, active, x0, basis, T, updates, 0, tol)
        return (dense_kernel.ITERATION_LIMIT,) + tuple(out[1:])

    backend.kernel = type("K", (), {"chebyshev": staticmethod(stuck),
                                    "solve": staticmethod(dense_kernel.solve),
                                    "OPTIMAL": dense_kernel.OPTIMAL,
                                    "empty_proof": staticmethod(dense_kernel.empty_proof),
                                    "PROVEN": dense_kernel.PROVEN,
                                    "ASK_NNLS": dense_kernel.ASK_NNLS})
    net, box = random_network(5, [6, 5], 3), pc.Box(-1, 1, dim=5)
    handed = pc.count_regions(net, box, engine="lp", lp=backend, executor="serial")
    reference = pc.count_regions(net, box, engine="lp", lp="highs", executor="serial")
    assert handed.per_layer == reference.per_layer
    assert handed.stats["lp_fallbacks"] == handed.stats["lps_chebyshev"] > 0
    again = pc.count_regions(net, box, engine="lp", lp=backend, executor="serial")
    assert again.stats["lp_fallbacks"] == handed.stats["lp_fallbacks"]   # this run's only
    plain = pc.count_regions(net, box, engine="lp", lp="dense", executor="serial")
    assert plain.stats["lp_fallbacks"] == 0 and plain.per_layer == reference.per_layer


# ------------------------------------------------------------------ proofs of LP verdicts
from powercells.lp.bounds import dual_lower_bound, proof_of_emptiness  # noqa: E402
from powercells.lp.exact import Witness, strict_point  # noqa: E402

_SQUARE = unit_rows([[1, 0], [-1, 0], [0, 1], [0, -1]], [1, 1, 1, 1])


def test_proof_of_emptiness_proves_a_gap_and_refuses_a_wrong_centre():
    """x <= 0.2 and x >= 0.3 in the square: empty, and the proof is those two rows. The same
    rows with a point that is not the solver's optimum (where one row alone is the least
    slack) prove nothing; nor do the rows of a non-empty cell, whatever the point."""
    G = np.vstack([_SQUARE[0], [[1, 0], [-1, 0]]])
    g = np.r_[_SQUARE[1], 0.2, -0.3]
    centre = np.array([0.25, 0.0])                      # the Chebyshev LP's optimum, r = -0.05
    assert set(proof_of_emptiness(G, g, centre, reach=1.0, within=1e-12)) == {4, 5}
    assert proof_of_emptiness(G, g, np.array([5.0, 0.0]), reach=1.0, within=1e-12) is None
    assert proof_of_emptiness(G, g, np.array([np.nan, 0.0]), reach=1.0, within=1e-12) is None
    open_cell = np.r_[_SQUARE[1], 0.3, -0.2]            # 0.2 < x < 0.3: not empty
    for x in ([0.25, 0.0], [0.25, 0.9], [5.0, 5.0]):
        assert proof_of_emptiness(G, open_cell, np.array(x), reach=1.0, within=1.0) is None


def test_proof_of_emptiness_needs_strict_emptiness():
    """x <= 0.2 and x >= 0.2 meet in a segment: the open cell is empty, but the multipliers'
    bound is 0, not below it, so nothing is proven (a cell touching at a face is settled
    exactly, not by a float proof)."""
    G = np.vstack([_SQUARE[0], [[1, 0], [-1, 0]]])
    g = np.r_[_SQUARE[1], 0.2, -0.2]
    assert proof_of_emptiness(G, g, np.array([0.2, 0.0]), reach=1.0, within=1e-12) is None


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.sampled_from([1e-10, 1e-8, 1e-6]),
       st.integers(2, 5))
def test_proof_of_emptiness_never_proves_a_non_empty_cell(seed, noise, k):
    """Cells cut by near-copies of a few rows (where solvers' verdicts go wrong): whenever
    HiGHS's centre gives a proof, exact arithmetic agrees that the open cell is empty."""
    r = np.random.default_rng(seed)
    base = r.normal(size=(3, k))
    rows = np.vstack([base[i] + noise * r.normal(size=k) for i in r.integers(0, 3, size=6)])
    offs = r.normal(scale=0.2, size=6)
    signs = r.choice([-1.0, 1.0], size=6)
    G, g = unit_rows(rows * signs[:, None], offs * signs)
    A, b = unit_rows(np.vstack([np.eye(k), -np.eye(k)]), np.ones(2 * k))
    ctx = get_backend("highs").context(A, b, cap=4.0)
    ball = ctx.chebyshev(ctx.add_rows(G, g))
    H, h = np.vstack([A, G]), np.r_[b, g]
    if proof_of_emptiness(H, h, ball.center, reach=1.0, within=1e-9) is not None:
        assert not isinstance(strict_point(H, h), Witness)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(2, 5))
def test_dual_lower_bound_holds_over_the_polytope(seed, k):
    """Multipliers from any basis (even a wrong one, with negative entries clamped) give a
    bound no larger than the true minimum of c @ x over the polytope (scipy's LP)."""
    from scipy.optimize import linprog

    r = np.random.default_rng(seed)
    A, b = unit_rows(np.vstack([np.eye(k), -np.eye(k), r.normal(size=(4, k))]),
                     np.r_[np.ones(2 * k), r.uniform(0.1, 1.0, size=4)])
    c = r.normal(size=k)
    best = linprog(c, A_ub=A, b_ub=b, bounds=[(None, None)] * k, method="highs").fun
    bases = np.array([r.choice(len(b), size=k, replace=False) for _ in range(8)])
    GB, gB = A[bases], b[bases]
    lam = np.array([np.linalg.lstsq(G.T, -c, rcond=None)[0] for G in GB])
    bound = dual_lower_bound(c, lam, GB, gB, reach=1.0)
    assert np.all(bound <= best + 1e-12)
    # the optimal basis gives the minimum itself
    x = linprog(c, A_ub=A, b_ub=b, bounds=[(None, None)] * k, method="highs").x
    tight = np.argsort(b - A @ x)[:k]
    lam_opt = np.linalg.solve(A[tight].T, -c)
    if np.all(lam_opt >= 0):
        opt = dual_lower_bound(c, lam_opt[None], A[tight][None], b[tight][None], reach=1.0)
        assert opt[0] == pytest.approx(best, abs=1e-9)
