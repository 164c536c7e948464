"""The default LP backend: HiGHS through highspy, one live model per node.

All rows a node's LPs may need are in the model; a row is switched on by setting its upper bound
and off by setting it to +inf, so the constraint matrix never changes and every solve starts warm
from the previous basis (consecutive LPs are on nested cells, see the engine).
"""

from __future__ import annotations

import numpy as np

from ..errors import SolverError
from .base import ChebyshevContext, LPBackend, LPStatus

__all__ = ["HighsBackend"]

_OPTIONS = (("output_flag", False), ("presolve", "off"), ("solver", "simplex"), ("threads", 1),
            ("primal_feasibility_tolerance", 1e-10), ("dual_feasibility_tolerance", 1e-10))


class HighsContext(ChebyshevContext):
    def __init__(self, A, b, cap):
        super().__init__(A, b, cap)
        import highspy

        self._hs = highspy
        # highspy's Highs.run() starts a thread to catch Ctrl-C; the C++ run is direct.
        self._run = highspy._core._Highs.run
        self._inf = highspy.kHighsInf
        self._optimal = highspy.HighsModelStatus.kOptimal
        self._infeasible = highspy.HighsModelStatus.kInfeasible
        self._on = np.zeros(0, dtype=bool)       # which extra rows are switched on
        self._h = self._new_model()

    def _new_model(self):
        h = self._hs.Highs()
        for option, value in _OPTIONS:
            h.setOptionValue(option, value)
        k = self.A.shape[1]
        inf = self._inf
        h.addVars(k + 1, np.r_[np.full(k, -inf), -self.cap], np.r_[np.full(k, inf), self.cap])
        h.changeColsCost(1, np.array([k], dtype=np.int32), np.array([-1.0]))
        base = len(self.b)
        for i, (G, g) in enumerate(zip(self.rows_A, self.rows_b)):
            upper = g if i == 0 else np.full(len(g), inf)
            self._append(h, G, upper)
        self._on = np.zeros(self.n_rows - base, dtype=bool)
        return h

    def _append(self, h, G, upper):
        m, k = G.shape
        if not m:
            return
        values = np.hstack([G, np.ones((m, 1))]).ravel()
        starts = np.arange(0, m * (k + 1), k + 1, dtype=np.int32)
        index = np.tile(np.arange(k + 1, dtype=np.int32), m)
        h.addRows(m, np.full(m, -self._inf), upper, values.size, starts, index, values)

    def _add_rows(self, G, g):
        self._append(self._h, G, np.full(len(g), self._inf))
        self._on = np.concatenate([self._on, np.zeros(len(g), dtype=bool)])

    def _solve(self, active):
        base = len(self.b)
        want = np.zeros(self._on.size, dtype=bool)
        want[active - base] = True
        for attempt in range(2):
            h = self._h
            change = np.flatnonzero(want != self._on)
            if change.size:
                rows = (change + base).astype(np.int32)
                upper = np.where(want[change], self._all_b_of(rows), self._inf)
                h.changeRowsBounds(rows.size, rows, np.full(rows.size, -self._inf), upper)
                self._on = want
            self._run(h)
            status = h.getModelStatus()
            if status == self._optimal:
                sol = h.getSolution()
                x = np.array(sol.col_value[:-1])
                support = None
                if active.size:
                    duals = np.asarray(sol.row_dual)[active]
                    support = active[np.abs(duals) > 1e-12]
                return LPStatus.OPTIMAL, x, support
            if status == self._infeasible:
                return LPStatus.INFEASIBLE, None, None
            # Numerical trouble from a stale basis: rebuild the model and try once more.
            self._h = self._new_model()
        raise SolverError(f"HiGHS returned {h.modelStatusToString(status)} on a Chebyshev LP with "
                          f"{base + int(want.sum())} rows")

    def _all_b_of(self, rows):
        if self._all_A is None:
            self._all_A = np.vstack(self.rows_A)
            self._all_b = np.concatenate(self.rows_b)
        return self._all_b[rows]


class HighsBackend(LPBackend):
    """HiGHS (dual simplex, no presolve, one thread, feasibility tolerances 1e-10)."""

    name = "highs"

    def context(self, A, b, *, cap):
        return HighsContext(np.ascontiguousarray(A, dtype=np.float64),
                            np.ascontiguousarray(b, dtype=np.float64), float(cap))
