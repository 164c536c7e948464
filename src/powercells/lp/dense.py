"""The ``dense`` LP backend: the small dense simplex of :mod:`.dense_kernel` (numba), with HiGHS
behind it for any LP the simplex does not finish.

The lp engine's LPs have a few dozen columns and rows and come in runs on nested cells: the
optimal basis of a cell's Chebyshev problem is a dual-feasible start for every problem on a cell
inside it (same objective, more rows), so a dual simplex starts there (14 pivots on average at
d = 24, against HiGHS's 17 from its own warm basis). The engine's cells add rows at the end of
their parent's, so the context keeps each solved problem's optimal basis and inverse under its
row ids and starts a Chebyshev problem from the longest solved prefix of its rows; the first
problem of a context starts from the rows tight at the node's Chebyshev centre
(:meth:`~.base.PolytopeContext.warm`), which are the optimal basis of the node's own rows.
Extreme-point problems start at that centre and walk to a vertex (primal active-set method).

What the simplex returns is used as HiGHS's answers are: a Chebyshev radius is recomputed from
the centre (:meth:`~.base.PolytopeContext.chebyshev`), and an extreme vertex's basis is
re-inverted by the engine before it certifies anything. An iteration limit, a singular basis, an
unbounded edge, or a final vertex that violates a row (an ill-conditioned basis) hands the
problem to HiGHS (``fallbacks`` counts them).
"""

from __future__ import annotations

import numpy as np

from .base import Ball, Extreme, LPBackend, LPStatus, PolytopeContext
from .highs import HighsBackend

__all__ = ["DenseBackend"]

_NO_IDS = np.empty(0, dtype=np.int64)
_NO_INVERSE = np.empty((0, 0))
_NO_WARM = (_NO_IDS, _NO_INVERSE, 0)

#: Optimal bases remembered per context (cleared when full; one per LP solved in a node), each
#: with its inverse: ~5 KB at d = 24.
SOLVED_KEPT = 1024
#: Primal and dual feasibility tolerances (HiGHS runs with the same, :mod:`.highs`).
FEASIBILITY = 1e-10
#: Rows at the start point within this of the smallest slack count as tight (crash basis).
TIGHT = 1e-9


def _kernel():
    from . import dense_kernel

    return dense_kernel


class DenseContext(PolytopeContext):
    """Row tables for the kernel: Chebyshev rows ``[G, 1] (x, r) <= g`` behind two rows bounding
    r by ``cap`` (kernel ids = context ids + 2), and the plain rows ``G x <= g``."""

    def __init__(self, A, b, cap, backend: DenseBackend):
        super().__init__(A, b, cap)
        self._backend = backend
        self._k = A.shape[1]
        self._cheb = None                       # (M, q) for Chebyshev problems, built lazily
        self._fallback = None                   # a HiGHS context over the same rows
        self._solved: dict = {}                 # active ids' bytes -> optimal basis (or none)
        self._start = None                      # (x, r): a point and its radius on base rows
        self._x0 = np.zeros(self._k)            # where cold starts begin (the hint's centre)
        self._n_base = len(b) + 2               # the cap rows, then the base rows

    # ------------------------------------------------------------------ tables
    def warm(self, center, radius) -> None:
        self._start = (np.asarray(center, dtype=np.float64), float(radius))
        self._x0 = self._start[0]

    def _add_rows(self, G, g):
        self._cheb = None
        if self._fallback is not None:
            self._fallback.add_rows(G, g)

    def _tables(self):
        if self._cheb is None:
            G, g = self.all_rows
            k = self._k
            M = np.empty((len(g) + 2, k + 1))
            M[:2, :k] = 0.0
            M[0, k], M[1, k] = 1.0, -1.0
            M[2:, :k] = G
            M[2:, k] = 1.0
            q = np.empty(len(g) + 2)
            q[:2] = self.cap
            q[2:] = g
            self._cheb = (M, q)
        return self._cheb

    def _highs(self):
        if self._fallback is None:
            ctx = self._backend.highs.context(self.A, self.b, cap=self.cap)
            for G, g in zip(self.rows_A[1:], self.rows_b[1:]):
                ctx.add_rows(G, g)
            self._fallback = ctx
        self._backend.fallbacks += 1
        return self._fallback

    # ------------------------------------------------------------------ problems
    def chebyshev(self, active=None) -> Ball:
        active = _NO_IDS if active is None else np.asarray(active, dtype=np.int64)
        M, q = self._tables()
        key = active.tobytes()
        warm = self._warm_basis(active)
        out = self._backend.kernel.chebyshev(M, q, self._n_base, active + 2, self._x0, *warm,
                                             50 + 4 * (self._n_base + len(active)), FEASIBILITY)
        status, x, radius, basis, T, updates, support, warm_failed = out
        solved = self._solved
        if warm_failed and warm is solved.get(b""):
            solved[b""] = _NO_WARM           # the node's crash basis: not tried again
        if status != 0:
            return self._highs().chebyshev(active)
        if len(solved) >= SOLVED_KEPT:
            solved.clear()
        solved[key] = (basis, T, updates)
        return Ball(x, float(radius), LPStatus.OPTIMAL, support - 2 if active.size else None)

    def _warm_basis(self, active: np.ndarray):
        """The optimal basis (and its transposed inverse) of the longest solved prefix of
        ``active`` (the engine's cells add rows at the end of their parent's), or the rows
        tight at the node's centre."""
        solved = self._solved
        for length in range(len(active), -1, -1):
            hit = solved.get(active[:length].tobytes())
            if hit is not None:
                return hit
        hit = _NO_WARM
        if self._start is not None:
            # the rows tight at the node's Chebyshev centre: its optimal basis when there are n
            x, r = self._start
            ids = np.arange(2, self._n_base)
            M, q = self._tables()
            slack = q[ids] - M[ids, :-1] @ x
            tight = ids[slack - r <= TIGHT * max(1.0, abs(r))]
            if len(tight) == self._k + 1:
                hit = (tight, _NO_INVERSE, 0)
        solved[b""] = hit
        return hit

    def _extreme(self, c, active):
        kern = self._backend.kernel
        G, g = self.all_rows
        k = self._k
        rows = np.concatenate([np.arange(len(self.b), dtype=np.int64), active])
        x0 = self._x0
        if np.min(g[rows] - G[rows] @ x0) < -FEASIBILITY:
            return self._highs()._extreme(c, active)      # no feasible start known
        basis0 = -1 - np.arange(k, dtype=np.int64)
        status, z, basis, mu, _, _, _ = kern.solve(G, g, rows, c, x0, basis0, _NO_INVERSE, 0,
                                                   False, 50 + 4 * (len(rows) + k), FEASIBILITY,
                                                   FEASIBILITY)
        if status != kern.OPTIMAL:
            return self._highs()._extreme(c, active)
        real = basis if np.all(basis >= 0) else None
        return Extreme(float(c @ z), z.copy(), real)

    def close(self):
        if self._fallback is not None:
            self._fallback.close()
            self._fallback = None


class DenseBackend(LPBackend):
    """The dense simplex (numba), HiGHS for what it does not finish.

    Raises ImportError without numba (``pip install 'powercells[fast]'``).
    """

    name = "dense"

    def __init__(self):
        self.kernel = _kernel()
        self.highs = HighsBackend()
        self.fallbacks = 0

    def __reduce__(self):
        return (DenseBackend, ())      # the kernel and HiGHS objects stay in their process

    def context(self, A, b, *, cap):
        return DenseContext(np.ascontiguousarray(A, dtype=np.float64),
                            np.ascontiguousarray(b, dtype=np.float64), float(cap), self)
