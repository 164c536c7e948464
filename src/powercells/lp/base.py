"""The LP backend protocol: LPs over polytopes that share a node's rows (SPEC §5.5).

A node's LPs all read "the node's rows, plus a few extra rows", so a backend loads the node's rows
once into a :class:`PolytopeContext`, registers extra rows once (:meth:`add_rows`), and then
switches them on per problem. Two kinds of LP are asked:

* :meth:`chebyshev`: ``maximise r  s.t.  A x + r <= b`` (unit-norm rows), ``-cap <= r <= cap``.
  ``r`` may be negative, so the problem is always feasible. The radius returned is *recomputed*
  from the returned centre as ``min_i (b_i - A_i x)``, so a radius above a threshold is certified
  by the centre itself, with no trust in the solver's tolerances.
* :meth:`extreme`: ``minimise c @ x``; the optimal vertex comes with the ids of ``k`` tight rows
  whose normals span the cost (the optimal basis). Those rows are a dual certificate: by weak
  duality ``c @ y >= c @ x*`` for every ``y`` satisfying them, which the engine reuses to bound
  other units over other cells without solving again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Ball",
    "Extreme",
    "LPBackend",
    "LPStatus",
    "PolytopeContext",
]


class LPStatus(enum.Enum):
    """Outcome of one LP."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Ball:
    """A Chebyshev ball: ``center`` (k,) and ``radius``; radius -inf means no feasible point.

    ``support`` (when the backend provides duals) lists the switched-on extra rows with a positive
    dual value: by weak duality, any problem containing the base rows and these rows has a
    Chebyshev radius no larger than this one.
    """

    center: np.ndarray
    radius: float
    status: LPStatus = LPStatus.OPTIMAL
    support: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Extreme:
    """The minimum of ``c @ x``: its value, a minimiser, and the ids of the ``k`` tight rows of
    the optimal basis (None when the backend gives no vertex basis). ``value`` is +inf when the
    rows have no common point."""

    value: float
    x: np.ndarray | None
    basis: np.ndarray | None


class PolytopeContext:
    """Base rows ``A x <= b`` that are always on, plus rows added once and switched on per LP."""

    def __init__(self, A: np.ndarray, b: np.ndarray, cap: float):
        self.A = A
        self.b = b
        self.cap = cap
        self.rows_A = [A]
        self.rows_b = [b]
        self.n_rows = len(b)
        self._all_A = A
        self._all_b = b

    @property
    def all_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Every registered row, base rows first: ``(G, g)`` indexed by row id."""
        if self._all_A is None:
            self._all_A = np.vstack(self.rows_A)
            self._all_b = np.concatenate(self.rows_b)
        return self._all_A, self._all_b

    def add_rows(self, G: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Register rows ``G x <= g`` (unit norm), off until named in an LP.

        Returns
        -------
        ndarray of int
            Their ids.
        """
        ids = np.arange(self.n_rows, self.n_rows + len(g))
        self.rows_A.append(G)
        self.rows_b.append(g)
        self.n_rows += len(g)
        self._all_A = None
        self._add_rows(G, g)
        return ids

    def rows_of(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """The rows ``(G, g)`` registered under these ids."""
        G, g = self.all_rows
        return G[ids], g[ids]

    def chebyshev(self, active=None) -> Ball:
        """Chebyshev ball of the base rows plus the rows ``active`` (ids from :meth:`add_rows`).

        Raises
        ------
        SolverError
            If the solver fails twice on the problem.
        """
        active = np.empty(0, dtype=np.int64) if active is None else np.asarray(active, np.int64)
        status, x, support = self._chebyshev(active)
        if status is LPStatus.INFEASIBLE:
            return Ball(np.full(self.A.shape[1], np.nan), -np.inf, status, support)
        margin = np.min(self.b - self.A @ x, initial=self.cap)
        if active.size:
            G, g = self.all_rows
            margin = min(margin, float(np.min(g[active] - G[active] @ x)))
        return Ball(x, float(margin), status, support)

    def extreme(self, c: np.ndarray, active=None) -> Extreme:
        """Minimise ``c @ x`` over the base rows plus the rows ``active``.

        Raises
        ------
        SolverError
            If the solver fails twice on the problem.
        """
        active = np.empty(0, dtype=np.int64) if active is None else np.asarray(active, np.int64)
        return self._extreme(np.asarray(c, dtype=np.float64), active)

    def warm(self, center: np.ndarray, radius: float) -> None:
        """A hint: ``center`` is a Chebyshev centre of the base rows, ``radius`` its radius
        (backends that start their LPs from a point use it; others ignore it)."""

    # backend hooks
    def _add_rows(self, G, g) -> None:
        """The rows were appended to ``rows_A``/``rows_b``."""

    def _chebyshev(self, active):  # pragma: no cover
        raise NotImplementedError

    def _extreme(self, c, active) -> Extreme:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        """Release solver resources (optional)."""


class LPBackend:
    """Factory of :class:`PolytopeContext` objects. Subclasses name themselves in ``name``."""

    name = "abstract"

    def context(self, A: np.ndarray, b: np.ndarray, *, cap: float) -> PolytopeContext:
        raise NotImplementedError  # pragma: no cover

    def chebyshev(self, A: np.ndarray, b: np.ndarray, *, cap: float) -> Ball:
        """The Chebyshev ball of ``{x : A x <= b}`` (rows of unit norm) in a one-off context."""
        ctx = self.context(A, b, cap=cap)
        try:
            return ctx.chebyshev()
        finally:
            ctx.close()
