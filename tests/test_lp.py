"""The LP backend contract, run on every backend: Chebyshev balls of known polytopes."""

import numpy as np
import pytest

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
