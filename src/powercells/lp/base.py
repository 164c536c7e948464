"""The LP backend protocol: Chebyshev balls of polytopes that share a base (SPEC §5.5).

Every LP the engines solve is the Chebyshev problem of a node's polytope with a few extra rows::

    maximise r   s.t.   A x + r <= b   (unit-norm rows),   -cap <= r <= cap

``r`` may be negative, so the problem is always feasible and a negative radius measures how far
the rows are from having a common interior point. A backend keeps the base rows loaded in a
:class:`ChebyshevContext` and solves many problems ``base + extra rows`` warm.

Whatever the solver returns, the radius reported is *recomputed* from the returned centre as
``min_i (b_i - A_i x)``: a radius above a threshold is then certified by the centre itself, with
no trust in the solver's tolerances.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from ..errors import PowercellsError

__all__ = ["LPStatus", "Ball", "ChebyshevContext", "LPBackend", "get_backend", "BACKENDS"]


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


class ChebyshevContext:
    """Base rows ``A x <= b`` that are always on, plus rows added once and switched on per solve.

    A node's LPs differ only in which of a few extra rows apply, so a backend keeps one model per
    node, with every extra row in it, and solves each problem warm from the previous basis.
    """

    def __init__(self, A: np.ndarray, b: np.ndarray, cap: float):
        self.A = A
        self.b = b
        self.cap = cap
        self.rows_A = [A]
        self.rows_b = [b]
        self.n_rows = len(b)
        self._all_A = A
        self._all_b = b

    def add_rows(self, G: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Register rows ``G x <= g`` (unit norm), off until named in :meth:`solve`.

        Returns
        -------
        ndarray of int
            Their ids, to pass to :meth:`solve`.
        """
        ids = np.arange(self.n_rows, self.n_rows + len(g))
        self.rows_A.append(G)
        self.rows_b.append(g)
        self.n_rows += len(g)
        self._all_A = None
        self._add_rows(G, g)
        return ids

    def solve(self, active: np.ndarray | None = None) -> Ball:
        """Chebyshev ball of the base rows plus the rows ``active`` (ids from :meth:`add_rows`).

        Returns
        -------
        Ball
            The radius is recomputed from the centre over all rows that apply.

        Raises
        ------
        SolverError
            If the solver fails twice on the problem.
        """
        active = np.empty(0, dtype=np.int64) if active is None else np.asarray(active, np.int64)
        status, x, support = self._solve(active)
        if status is LPStatus.INFEASIBLE:
            return Ball(np.full(self.A.shape[1], np.nan), -np.inf, status, support)
        if self._all_A is None:
            self._all_A = np.vstack(self.rows_A)
            self._all_b = np.concatenate(self.rows_b)
        margin = np.min(self.b - self.A @ x, initial=self.cap)
        if active.size:
            margin = min(margin, float(np.min(self._all_b[active] - self._all_A[active] @ x)))
        return Ball(x, float(margin), status, support)

    def rows_of(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """The rows ``(G, g)`` registered under these ids."""
        if self._all_A is None:
            self._all_A = np.vstack(self.rows_A)
            self._all_b = np.concatenate(self.rows_b)
        return self._all_A[ids], self._all_b[ids]

    def _add_rows(self, G, g) -> None:
        """Backend hook: the rows were appended to ``rows_A``/``rows_b``."""

    def _solve(self, active) -> tuple[LPStatus, np.ndarray, np.ndarray | None]:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        """Release solver resources (optional)."""


class LPBackend:
    """Factory of :class:`ChebyshevContext` objects. Subclasses name themselves in ``name``."""

    name = "abstract"

    def context(self, A: np.ndarray, b: np.ndarray, *, cap: float) -> ChebyshevContext:
        raise NotImplementedError  # pragma: no cover


BACKENDS = ("highs", "cvxpy")


def get_backend(lp=None) -> LPBackend:
    """The LP backend for ``lp``: None or ``"highs"`` (default), ``"cvxpy"``, or a backend object.

    Raises
    ------
    PowercellsError
        For an unknown name; the message lists the valid ones.
    """
    if lp is None or lp == "highs":
        from .highs import HighsBackend

        return HighsBackend()
    if lp == "cvxpy":
        from .cvxpy_backend import CvxpyBackend

        return CvxpyBackend()
    if isinstance(lp, LPBackend):
        return lp
    raise PowercellsError(f"unknown LP backend {lp!r}; choose one of {', '.join(BACKENDS)}")
