"""The default LP backend: HiGHS through highspy, live models per node.

All rows a node's LPs may need are in the models; a row is switched on by setting its upper bound
and off by setting it to +inf, so the constraint matrix never changes and every solve starts warm
from the previous basis. Chebyshev problems (columns x and r) and extreme-point problems (columns
x) live in two models, each created on first use.
"""

from __future__ import annotations

import numpy as np

from ..errors import SolverError
from .base import Extreme, LPBackend, LPStatus, PolytopeContext

__all__ = ["HighsBackend"]

_OPTIONS = (("output_flag", False), ("presolve", "off"), ("solver", "simplex"), ("threads", 1),
            ("primal_feasibility_tolerance", 1e-10), ("dual_feasibility_tolerance", 1e-10))


class _Model:
    """One HiGHS model over the context's rows, with or without the radius column."""

    def __init__(self, ctx: "HighsContext", with_radius: bool):
        hs = ctx._hs
        self.ctx = ctx
        self.with_radius = with_radius
        h = hs.Highs()
        for option, value in _OPTIONS:
            h.setOptionValue(option, value)
        k = ctx.A.shape[1]
        inf = hs.kHighsInf
        if with_radius:
            h.addVars(k + 1, np.r_[np.full(k, -inf), -ctx.cap], np.r_[np.full(k, inf), ctx.cap])
            h.changeColsCost(1, np.array([k], dtype=np.int32), np.array([-1.0]))
        else:
            h.addVars(k, np.full(k, -inf), np.full(k, inf))
        self.h = h
        self.k = k
        self.n_rows = 0
        self.on = np.zeros(0, dtype=bool)
        for i, (G, g) in enumerate(zip(ctx.rows_A, ctx.rows_b)):
            self.append(G, g if i == 0 else np.full(len(g), inf))

    def append(self, G, upper):
        m = len(upper)
        if not m:
            return
        k = self.k
        if self.with_radius:
            values = np.hstack([G, np.ones((m, 1))]).ravel()
            width = k + 1
        else:
            values = np.ascontiguousarray(G).ravel()
            width = k
        starts = np.arange(0, m * width, width, dtype=np.int32)
        index = np.tile(np.arange(width, dtype=np.int32), m)
        inf = self.ctx._hs.kHighsInf
        self.h.addRows(m, np.full(m, -inf), np.asarray(upper, dtype=np.float64), values.size,
                       starts, index, values)
        if self.n_rows:
            self.on = np.concatenate([self.on, np.zeros(m, dtype=bool)])
        self.n_rows += m

    def switch(self, active):
        """Turn on exactly the extra rows ``active`` (ids), base rows always on."""
        base = len(self.ctx.b)
        want = np.zeros(self.n_rows - base, dtype=bool)
        want[active - base] = True
        change = np.flatnonzero(want != self.on)
        if change.size:
            rows = (change + base).astype(np.int32)
            inf = self.ctx._hs.kHighsInf
            upper = np.where(want[change], self.ctx.all_rows[1][rows], inf)
            self.h.changeRowsBounds(rows.size, rows, np.full(rows.size, -inf), upper)
            self.on = want


class HighsContext(PolytopeContext):
    def __init__(self, A, b, cap):
        super().__init__(A, b, cap)
        import highspy

        self._hs = highspy
        # highspy's Highs.run() starts a thread to catch Ctrl-C; the C++ run is direct.
        self._run = highspy._core._Highs.run
        self._optimal = highspy.HighsModelStatus.kOptimal
        self._infeasible = highspy.HighsModelStatus.kInfeasible
        self._nonbasic_upper = highspy.HighsBasisStatus.kUpper
        self._models: dict[bool, _Model] = {}

    def _model(self, with_radius: bool) -> _Model:
        model = self._models.get(with_radius)
        if model is None:
            model = self._models[with_radius] = _Model(self, with_radius)
        return model

    def _add_rows(self, G, g):
        for model in self._models.values():
            model.append(G, np.full(len(g), self._hs.kHighsInf))

    def _solve(self, with_radius, active, cost=None):
        for attempt in range(2):
            model = self._model(with_radius)
            model.switch(active)
            if cost is not None:
                model.h.changeColsCost(model.k, np.arange(model.k, dtype=np.int32), cost)
            self._run(model.h)
            status = model.h.getModelStatus()
            if status in (self._optimal, self._infeasible):
                return model, status
            # Numerical trouble from a stale basis: rebuild the model and try once more.
            del self._models[with_radius]
        raise SolverError(f"HiGHS returned {model.h.modelStatusToString(status)} on an LP with "
                          f"{len(self.b) + len(active)} rows")

    def _chebyshev(self, active):
        model, status = self._solve(True, active)
        if status == self._infeasible:
            return LPStatus.INFEASIBLE, None, None
        sol = model.h.getSolution()
        x = np.array(sol.col_value[:-1])
        support = None
        if active.size:
            duals = np.asarray(sol.row_dual)[active]
            support = active[np.abs(duals) > 1e-12]
        return LPStatus.OPTIMAL, x, support

    def _extreme(self, c, active):
        model, status = self._solve(False, active, cost=c)
        if status == self._infeasible:
            return Extreme(np.inf, None, None)
        x = np.array(model.h.getSolution().col_value)
        rows = np.flatnonzero(np.asarray(model.h.getBasis().row_status, dtype=object)
                              == self._nonbasic_upper)
        basis = rows if rows.size == model.k else None
        return Extreme(float(c @ x), x, basis)


class HighsBackend(LPBackend):
    """HiGHS (dual simplex, no presolve, one thread, feasibility tolerances 1e-10)."""

    name = "highs"

    def context(self, A, b, *, cap):
        return HighsContext(np.ascontiguousarray(A, dtype=np.float64),
                            np.ascontiguousarray(b, dtype=np.float64), float(cap))
