"""The default LP backend: HiGHS through highspy, one live model per node.

All rows a node's LPs may need are in the models; a row is switched on by setting its upper bound
and off by setting it to +inf, so the constraint matrix never changes and every solve starts warm
from the previous basis. Chebyshev problems (columns x and r) and extreme-point problems share the
model: for the latter the radius column is fixed at 0.
"""

from __future__ import annotations

import numpy as np

from ..errors import SolverError
from .base import Extreme, LPBackend, LPStatus, PolytopeContext

__all__ = ["HighsBackend"]

# Primal simplex measured ~8% faster than dual on the engine's mix of tiny warm LPs.
_OPTIONS = (("output_flag", False), ("presolve", "off"), ("solver", "simplex"), ("threads", 1),
            ("simplex_strategy", 4), ("primal_feasibility_tolerance", 1e-10),
            ("dual_feasibility_tolerance", 1e-10))


class _Model:
    """The node's HiGHS model: columns x (free) and r, every registered row as ``G x + r <= g``.

    Chebyshev problems maximise r in [-cap, cap]; extreme-point problems fix r = 0 and minimise
    c @ x over the same rows, so one model (one factorisation, one basis) serves both.
    """

    def __init__(self, ctx: HighsContext, h):
        hs = ctx._hs
        self.ctx = ctx
        k = ctx.A.shape[1]
        self.inf = inf = hs.kHighsInf
        h.addVars(k + 1, np.r_[np.full(k, -inf), -ctx.cap], np.r_[np.full(k, inf), ctx.cap])
        self.h = h
        self.k = k
        self.all_cols = np.arange(k + 1, dtype=np.int32)
        self.mode = None
        self.on: set = set()             # extra rows switched on
        for i, (G, g) in enumerate(zip(ctx.rows_A, ctx.rows_b)):
            self.append(G, g if i == 0 else np.full(len(g), inf))

    def append(self, G, upper):
        m = len(upper)
        if not m:
            return
        width = self.k + 1
        values = np.hstack([G, np.ones((m, 1))]).ravel()
        starts = np.arange(0, m * width, width, dtype=np.int32)
        index = np.tile(np.arange(width, dtype=np.int32), m)
        self.h.addRows(m, np.full(m, -self.inf), np.asarray(upper, dtype=np.float64), values.size,
                       starts, index, values)

    def chebyshev_mode(self):
        if self.mode != "chebyshev":
            cost = np.zeros(self.k + 1)
            cost[-1] = -1.0
            self.h.changeColsCost(self.k + 1, self.all_cols, cost)
            self.h.changeColBounds(self.k, -self.ctx.cap, self.ctx.cap)
            self.mode = "chebyshev"

    def extreme_mode(self, c):
        if self.mode != "extreme":
            self.h.changeColBounds(self.k, 0.0, 0.0)
            self.mode = "extreme"
        self.h.changeColsCost(self.k + 1, self.all_cols, np.append(c, 0.0))

    def switch(self, active: frozenset):
        """Turn on exactly the extra rows ``active`` (ids), base rows always on."""
        if active == self.on:
            return
        turn_on = active - self.on
        turn_off = self.on - active
        rows = np.fromiter(turn_on | turn_off, dtype=np.int32, count=len(turn_on) + len(turn_off))
        g = self.ctx.all_rows[1]
        upper = np.array([g[r] if r in turn_on else self.inf for r in rows.tolist()])
        self.h.changeRowsBounds(rows.size, rows, np.full(rows.size, -self.inf), upper)
        self.on = active


class HighsContext(PolytopeContext):
    def __init__(self, A, b, cap, backend: HighsBackend):
        super().__init__(A, b, cap)
        import highspy

        self._hs = highspy
        self._backend = backend
        # highspy's Highs.run() starts a thread to catch Ctrl-C; the C++ run is direct.
        self._run = highspy._core._Highs.run
        self._optimal = highspy.HighsModelStatus.kOptimal
        self._infeasible = highspy.HighsModelStatus.kInfeasible
        self._nonbasic_upper = highspy.HighsBasisStatus.kUpper
        self._m: _Model | None = None

    def _model(self) -> _Model:
        if self._m is None:
            self._m = _Model(self, self._backend._take())
        return self._m

    def _add_rows(self, G, g):
        if self._m is not None:
            self._m.append(G, np.full(len(g), self._hs.kHighsInf))

    def _solve(self, active, cost=None):
        on = frozenset(active.tolist())
        for attempt in range(2):
            model = self._model()
            model.switch(on)
            if cost is None:
                model.chebyshev_mode()
            else:
                model.extreme_mode(cost)
            self._run(model.h)
            status = model.h.getModelStatus()
            if status == self._optimal or status == self._infeasible:
                return model, status
            # Numerical trouble from a stale basis: rebuild the model and try once more.
            self._m = None
        raise SolverError(f"HiGHS returned {model.h.modelStatusToString(status)} on an LP with "
                          f"{len(self.b) + len(active)} rows")

    def _chebyshev(self, active):
        model, status = self._solve(active)
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
        model, status = self._solve(active, cost=c)
        if status == self._infeasible:
            return Extreme(np.inf, None, None)
        x = np.array(model.h.getSolution().col_value[:-1])
        upper = self._nonbasic_upper
        rows = [i for i, st in enumerate(model.h.getBasis().row_status) if st == upper]
        basis = np.array(rows) if len(rows) == model.k else None
        return Extreme(float(c @ x), x, basis)

    def close(self):
        if self._m is not None:
            self._backend._give_back(self._m.h)
            self._m = None


class HighsBackend(LPBackend):
    """HiGHS (dual simplex, no presolve, one thread, feasibility tolerances 1e-10).

    Highs objects are reused from context to context (cleared, options kept): creating one and
    setting its options costs more than a small solve.
    """

    name = "highs"

    def __init__(self):
        self._free: list = []

    def __reduce__(self):
        return (HighsBackend, ())   # a process pool's workers make their own Highs objects

    def context(self, A, b, *, cap):
        return HighsContext(np.ascontiguousarray(A, dtype=np.float64),
                            np.ascontiguousarray(b, dtype=np.float64), float(cap), self)

    def _take(self):
        free = self._free
        if free:
            h = free.pop()
            h.clearModel()
            return h
        import highspy

        h = highspy.Highs()
        for option, value in _OPTIONS:
            h.setOptionValue(option, value)
        return h

    def _give_back(self, h) -> None:
        self._free.append(h)
