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
    """A Chebyshev ball: ``center`` (k,) and ``radius``; radius -inf means no feasible point."""

    center: np.ndarray
    radius: float
    status: LPStatus = LPStatus.OPTIMAL


class ChebyshevContext:
    """Base rows ``A x <= b`` loaded once; :meth:`solve` adds rows for one problem."""

    def __init__(self, A: np.ndarray, b: np.ndarray, cap: float):
        self.A = A
        self.b = b
        self.cap = cap
        self.n_solved = 0

    def solve(self, extra_A: np.ndarray | None = None, extra_b: np.ndarray | None = None) -> Ball:
        """Chebyshev ball of ``base + extra`` rows (all rows of unit norm).

        Returns
        -------
        Ball
            The radius is recomputed from the centre over all rows.

        Raises
        ------
        SolverError
            If the solver fails twice on the problem.
        """
        if extra_A is None or len(extra_A) == 0:
            extra_A = np.empty((0, self.A.shape[1]))
            extra_b = np.empty(0)
        self.n_solved += 1
        status, x = self._solve(extra_A, extra_b)
        if status is LPStatus.INFEASIBLE:
            return Ball(np.full(self.A.shape[1], np.nan), -np.inf, status)
        margin = np.min(self.b - self.A @ x, initial=self.cap)
        if len(extra_b):
            margin = min(margin, float(np.min(extra_b - extra_A @ x)))
        return Ball(x, float(margin), status)

    def _solve(self, extra_A, extra_b) -> tuple[LPStatus, np.ndarray]:  # pragma: no cover
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
