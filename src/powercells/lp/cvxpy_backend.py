"""Reference LP backend through cvxpy: slow, independent of the HiGHS model handling, used by the
tests to cross-check the default backend. Never the hot path."""

from __future__ import annotations

import numpy as np

from ..errors import PowercellsError, SolverError
from .base import Extreme, LPBackend, LPStatus, PolytopeContext

__all__ = ["CvxpyBackend"]


class CvxpyContext(PolytopeContext):
    def __init__(self, A, b, cap, solver):
        super().__init__(A, b, cap)
        self._solver = solver

    def _problem(self, active, objective):
        import cvxpy as cp

        G, g = self.all_rows
        A = np.vstack([self.A, G[active]])
        b = np.concatenate([self.b, g[active]])
        x = cp.Variable(A.shape[1])
        return cp, x, A, b

    def _run(self, problem):
        import cvxpy as cp

        try:
            problem.solve(solver=self._solver)
        except cp.error.SolverError as exc:
            raise SolverError(f"cvxpy/{self._solver} failed: {exc}") from None
        if problem.status in ("infeasible", "infeasible_inaccurate"):
            return False
        if problem.status not in ("optimal", "optimal_inaccurate"):
            raise SolverError(f"cvxpy/{self._solver} returned status {problem.status}")
        return True

    def _chebyshev(self, active):
        cp, x, A, b = self._problem(active, None)
        r = cp.Variable()
        problem = cp.Problem(cp.Maximize(r), [A @ x + r <= b, r <= self.cap, r >= -self.cap])
        if not self._run(problem):
            return LPStatus.INFEASIBLE, None, None
        return LPStatus.OPTIMAL, np.asarray(x.value, dtype=np.float64), None

    def _extreme(self, c, active):
        cp, x, A, b = self._problem(active, c)
        problem = cp.Problem(cp.Minimize(c @ x), [A @ x <= b])
        if not self._run(problem):
            return Extreme(np.inf, None, None)
        xv = np.asarray(x.value, dtype=np.float64)
        return Extreme(float(c @ xv), xv, None)   # an interior-point answer: no vertex basis


class CvxpyBackend(LPBackend):
    """cvxpy with an interior-point solver (Clarabel by default).

    Centres are not vertex solutions, but radii are recomputed from them, so a positive radius is
    still a certificate; extreme values are accurate to the solver's tolerance (about 1e-8).
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
