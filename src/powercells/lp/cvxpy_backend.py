"""Reference LP backend through cvxpy: slow, independent of the HiGHS model handling, used by the
tests to cross-check the default backend. Never the hot path."""

from __future__ import annotations

import numpy as np

from ..errors import PowercellsError, SolverError
from .base import ChebyshevContext, LPBackend, LPStatus

__all__ = ["CvxpyBackend"]


class CvxpyContext(ChebyshevContext):
    def __init__(self, A, b, cap, solver):
        super().__init__(A, b, cap)
        self._solver = solver

    def _solve(self, active):
        import cvxpy as cp

        all_A = np.vstack(self.rows_A)
        all_b = np.concatenate(self.rows_b)
        A = np.vstack([self.A, all_A[active]])
        b = np.concatenate([self.b, all_b[active]])
        x = cp.Variable(A.shape[1])
        r = cp.Variable()
        problem = cp.Problem(cp.Maximize(r), [A @ x + r <= b, r <= self.cap, r >= -self.cap])
        try:
            problem.solve(solver=self._solver)
        except cp.error.SolverError as exc:
            raise SolverError(f"cvxpy/{self._solver} failed: {exc}") from None
        if problem.status in ("infeasible", "infeasible_inaccurate"):
            return LPStatus.INFEASIBLE, np.full(A.shape[1], np.nan), None
        if problem.status not in ("optimal", "optimal_inaccurate"):
            raise SolverError(f"cvxpy/{self._solver} returned status {problem.status}")
        return LPStatus.OPTIMAL, np.asarray(x.value, dtype=np.float64), None


class CvxpyBackend(LPBackend):
    """cvxpy with an interior-point solver (Clarabel by default).

    The centre it returns is not a vertex solution, but the radius is recomputed from it, so a
    positive radius is still a certificate.
    """

    name = "cvxpy"

    def __init__(self, solver: str = "CLARABEL"):
        try:
            import cvxpy  # noqa: F401
        except ImportError:
            raise PowercellsError("the cvxpy backend needs cvxpy: pip install cvxpy") from None
        self.solver = solver

    def context(self, A, b, *, cap):
        return CvxpyContext(np.asarray(A, dtype=np.float64), np.asarray(b, dtype=np.float64),
                            float(cap), self.solver)
