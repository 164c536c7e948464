"""The default LP backend: HiGHS through highspy, one live model per base polytope.

Extra rows are added, solved warm from the previous basis, and deleted again, so that the many
small LPs of one node reuse one factorised model instead of being rebuilt (SPEC §8: rows are
passed exactly as the engine built them).
"""

from __future__ import annotations

import numpy as np

from ..errors import SolverError
from .base import ChebyshevContext, LPBackend, LPStatus

__all__ = ["HighsBackend"]


def _row_arrays(A: np.ndarray):
    m, k = A.shape
    G = np.hstack([A, np.ones((m, 1))])
    starts = np.arange(0, m * (k + 1), k + 1, dtype=np.int32)
    index = np.tile(np.arange(k + 1, dtype=np.int32), m)
    return starts, index, G.ravel()


class HighsContext(ChebyshevContext):
    def __init__(self, A, b, cap):
        super().__init__(A, b, cap)
        import highspy

        self._highspy = highspy
        # The base class's run() starts a thread to catch Ctrl-C; the C++ run is direct.
        self._run = highspy._core._Highs.run
        self._inf = highspy.kHighsInf
        self._h = self._new_model()

    def _new_model(self):
        hs = self._highspy
        h = hs.Highs()
        for option, value in (("output_flag", False), ("presolve", "off"), ("solver", "simplex"),
                              ("threads", 1), ("primal_feasibility_tolerance", 1e-10),
                              ("dual_feasibility_tolerance", 1e-10)):
            h.setOptionValue(option, value)
        m, k = self.A.shape
        inf = self._inf
        h.addVars(k + 1, np.r_[np.full(k, -inf), -self.cap], np.r_[np.full(k, inf), self.cap])
        h.changeColsCost(1, np.array([k], dtype=np.int32), np.array([-1.0]))
        if m:
            starts, index, values = _row_arrays(self.A)
            h.addRows(m, np.full(m, -inf), self.b, values.size, starts, index, values)
        return h

    def _solve(self, extra_A, extra_b):
        m = self.A.shape[0]
        n_extra = len(extra_b)
        for attempt in range(2):
            h = self._h
            if n_extra:
                starts, index, values = _row_arrays(extra_A)
                h.addRows(n_extra, np.full(n_extra, -self._inf), extra_b, values.size, starts,
                          index, values)
            self._run(h)
            status = h.getModelStatus()
            x = np.array(h.getSolution().col_value[:-1])
            if n_extra:
                h.deleteRows(n_extra, np.arange(m, m + n_extra, dtype=np.int32))
            hs = self._highspy
            if status == hs.HighsModelStatus.kOptimal:
                return LPStatus.OPTIMAL, x
            if status == hs.HighsModelStatus.kInfeasible:
                return LPStatus.INFEASIBLE, x
            # Numerical trouble from a stale basis: rebuild the model and try once more.
            self._h = self._new_model()
        raise SolverError(f"HiGHS returned {h.modelStatusToString(status)} on a Chebyshev LP with "
                          f"{m + n_extra} rows")


class HighsBackend(LPBackend):
    """HiGHS (dual simplex, no presolve, one thread, feasibility tolerances 1e-10)."""

    name = "highs"

    def context(self, A, b, *, cap):
        return HighsContext(np.ascontiguousarray(A, dtype=np.float64),
                            np.ascontiguousarray(b, dtype=np.float64), float(cap))
