"""Input domains: boxes, polytopes, and slices through input space.

Engines see every domain as a bounded, full-dimensional polytope ``A @ t <= b`` in R^k. For a box or
polytope, ``t = x`` and k = d. A :class:`Slice` is an affine map ``x = origin + directions @ t`` of
an inner box or polytope in R^k; it is folded into the network's first layer
(:meth:`Domain.network_on`), so that engines never see the ambient dimension.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from .errors import DomainError, PointError

__all__ = ["Domain", "Box", "Polytope", "Slice", "as_domain"]


def _vector(v, name: str) -> np.ndarray:
    try:
        v = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DomainError(f"{name} is not numeric ({exc})") from None
    if v.ndim == 0:
        v = v.reshape(1)
    if v.ndim != 1:
        raise DomainError(f"{name} must be a vector, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise DomainError(f"{name} contains NaN or infinite values: {v}")
    return v


class Domain:
    """A bounded, full-dimensional polytope in R^k, the space engines work in.

    Subclasses set ``_A``, ``_b`` (unit-norm rows), ``_lo``, ``_hi`` (bounding box),
    ``_center`` and ``_radius`` (Chebyshev ball).
    """

    _A: np.ndarray
    _b: np.ndarray
    _lo: np.ndarray
    _hi: np.ndarray
    _center: np.ndarray
    _radius: float

    @property
    def dim(self) -> int:
        """k, the dimension engines enumerate in."""
        return self._A.shape[1]

    @property
    def input_dim(self) -> int:
        """d, the dimension of the network input this domain lives in."""
        return self.dim

    def halfspaces(self) -> tuple[np.ndarray, np.ndarray]:
        """``(A, b)`` with unit-norm rows, meaning ``A @ t <= b``."""
        return self._A, self._b

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The bounding box ``(lo, hi)`` in engine coordinates."""
        return self._lo, self._hi

    @property
    def diameter(self) -> float:
        """Length of the bounding box's diagonal: the scale of the default tolerances."""
        return float(np.linalg.norm(self._hi - self._lo))

    @property
    def chebyshev(self) -> tuple[np.ndarray, float]:
        """Centre and radius of the largest ball inside the domain."""
        return self._center, self._radius

    def contains(self, T, *, tol: float = 0.0) -> np.ndarray:
        """Whether each row of T (engine coordinates) satisfies ``A t <= b + tol``."""
        T = np.atleast_2d(np.asarray(T, dtype=np.float64))
        return np.all(T @ self._A.T <= self._b + tol, axis=1)

    def to_input(self, T) -> np.ndarray:
        """Map engine coordinates to network-input coordinates (the identity but for slices)."""
        return np.asarray(T, dtype=np.float64)

    def from_input(self, X) -> np.ndarray:
        """Map network-input points to engine coordinates (slices: least squares)."""
        return np.asarray(X, dtype=np.float64)

    def network_on(self, network):
        """The network as a function of engine coordinates (folds slices into layer 1).

        Raises
        ------
        DomainError
            If the domain's input dimension differs from the network's.
        """
        if self.input_dim != network.input_dim:
            raise DomainError(
                f"the domain lives in R^{self.input_dim} but the network takes "
                f"{network.input_dim} inputs"
            )
        return network

    def _finish(self, A: np.ndarray, b: np.ndarray, what: str) -> None:
        """Normalise rows, then check that the polytope is bounded and full-dimensional."""
        norms = np.linalg.norm(A, axis=1)
        zero = norms == 0
        if np.any(zero & (b < 0)):
            raise DomainError(f"{what} is empty: a row reads 0 <= {b[zero & (b < 0)][0]}")
        A, b, norms = A[~zero], b[~zero], norms[~zero]
        A = A / norms[:, None]
        b = b / norms
        k = A.shape[1]
        lo = np.empty(k)
        hi = np.empty(k)
        for i in range(k):
            for sign, out in ((1.0, lo), (-1.0, hi)):
                c = np.zeros(k)
                c[i] = sign
                res = linprog(c, A_ub=A, b_ub=b, bounds=[(None, None)] * k, method="highs")
                if res.status == 2:
                    raise DomainError(f"{what} is empty: its inequalities have no solution")
                if res.status == 3:
                    raise DomainError(f"{what} is unbounded along coordinate {i}; engines need a "
                                      "bounded domain (add a box)")
                if res.status != 0:
                    raise DomainError(f"{what}: could not bound coordinate {i} ({res.message})")
                out[i] = sign * res.fun
        diam = float(np.linalg.norm(hi - lo))
        cost = np.zeros(k + 1)
        cost[-1] = -1.0
        res = linprog(cost, A_ub=np.hstack([A, np.ones((len(b), 1))]), b_ub=b,
                      bounds=[(None, None)] * k + [(0, diam)], method="highs")
        if res.status != 0:
            raise DomainError(f"{what}: could not find an interior point ({res.message})")
        radius = float(res.x[-1])
        if not radius > 1e-12 * max(diam, 1e-300):
            raise DomainError(
                f"{what} is lower-dimensional or empty (largest inscribed ball radius "
                f"{radius:.3g}); "
                "a domain must have a non-empty interior"
            )
        self._A, self._b, self._lo, self._hi = A, b, lo, hi
        self._center, self._radius = res.x[:-1], radius
        for arr in (self._A, self._b, self._lo, self._hi, self._center):
            arr.setflags(write=False)


class Box(Domain):
    """The box ``lo <= x <= hi``.

    Parameters
    ----------
    lo, hi : array_like, shape (d,) or scalars
        Scalars are broadcast to ``dim`` coordinates.
    dim : int, optional
        Required when both bounds are scalars.

    Raises
    ------
    DomainError
        If ``lo > hi`` or ``lo == hi`` in a coordinate, the shapes differ, or a bound is not finite.

    Examples
    --------
    >>> Box(-1, 1, dim=3).bounds()[1]
    array([1., 1., 1.])
    """

    def __init__(self, lo, hi, *, dim: int | None = None):
        lo = _vector(lo, "lo")
        hi = _vector(hi, "hi")
        if dim is not None:
            if dim < 1:
                raise DomainError(f"dim must be at least 1, got {dim}")
            if lo.size == 1:
                lo = np.full(dim, lo[0])
            if hi.size == 1:
                hi = np.full(dim, hi[0])
        if lo.size == 1 and hi.size > 1:
            lo = np.full(hi.size, lo[0])
        if hi.size == 1 and lo.size > 1:
            hi = np.full(lo.size, hi[0])
        if lo.shape != hi.shape or (dim is not None and lo.size != dim):
            raise DomainError(f"lo and hi must have the same length (dim={dim}), got {lo.size} and "
                              f"{hi.size}")
        bad = np.flatnonzero(lo >= hi)
        if bad.size:
            i = int(bad[0])
            kind = "lo > hi" if lo[i] > hi[i] else "lo == hi (the box is flat)"
            raise DomainError(f"box coordinate {i}: {kind} ({lo[i]} vs {hi[i]})")
        k = lo.size
        self.lo, self.hi = lo, hi
        self._A = np.vstack([-np.eye(k), np.eye(k)])
        self._b = np.concatenate([-lo, hi])
        self._lo, self._hi = lo.copy(), hi.copy()
        self._center = (lo + hi) / 2
        self._radius = float(np.min(hi - lo) / 2)
        for arr in (self.lo, self.hi, self._A, self._b, self._lo, self._hi, self._center):
            arr.setflags(write=False)

    def __repr__(self) -> str:
        if np.all(self.lo == self.lo[0]) and np.all(self.hi == self.hi[0]):
            return f"Box({self.lo[0]:g}, {self.hi[0]:g}, dim={self.dim})"
        return f"Box(lo={self.lo.tolist()}, hi={self.hi.tolist()})"


class Polytope(Domain):
    """The polytope ``A @ x <= b``; it must be bounded and have a non-empty interior.

    Parameters
    ----------
    A : array_like, shape (m, d)
    b : array_like, shape (m,)

    Raises
    ------
    DomainError
        If the shapes do not match, an entry is not finite, or the polytope is empty, unbounded or
        lower-dimensional.
    """

    def __init__(self, A, b):
        try:
            A = np.asarray(A, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DomainError(f"A is not numeric ({exc})") from None
        b = _vector(b, "b")
        if A.ndim != 2 or A.shape[0] != b.size or A.shape[1] == 0:
            raise DomainError(f"A must have shape (m, d) with m = len(b) = {b.size}, got {A.shape}")
        if not np.all(np.isfinite(A)):
            raise DomainError("A contains NaN or infinite values")
        self.A, self.b = A, b
        self._finish(A, b, "the polytope")

    def __repr__(self) -> str:
        return f"Polytope({self.A.shape[0]} inequalities in R^{self.dim})"


class Slice(Domain):
    """A line or plane through input space: ``x = origin + directions @ t`` for t in ``inner``.

    Parameters
    ----------
    origin : array_like, shape (d,)
    directions : array_like, shape (d, k)
        Linearly independent columns.
    inner : Box or Polytope in R^k

    Raises
    ------
    DomainError
        If the shapes do not match or the directions are linearly dependent.

    See Also
    --------
    Slice.through_points : the slice through two or three input points.
    """

    def __init__(self, origin, directions, inner: Domain):
        origin = _vector(origin, "origin")
        try:
            D = np.asarray(directions, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DomainError(f"directions are not numeric ({exc})") from None
        if D.ndim == 1:
            D = D[:, None]
        if D.ndim != 2 or D.shape[0] != origin.size:
            raise DomainError(
                f"directions must have shape ({origin.size}, k) to match origin, got {D.shape}"
            )
        if not np.all(np.isfinite(D)):
            raise DomainError("directions contain NaN or infinite values")
        if not isinstance(inner, Domain) or isinstance(inner, Slice):
            raise DomainError("inner must be a Box or Polytope in slice coordinates")
        if inner.dim != D.shape[1]:
            raise DomainError(f"inner domain has dimension {inner.dim} but there are "
                              f"{D.shape[1]} directions")
        sv = np.linalg.svd(D, compute_uv=False)
        if sv[-1] <= 1e-12 * sv[0] or sv[0] == 0:
            raise DomainError("slice directions are linearly dependent (the points are collinear "
                              "or repeated)")
        self.origin, self.directions, self.inner = origin, D, inner
        self._A, self._b = inner._A, inner._b
        self._lo, self._hi = inner._lo, inner._hi
        self._center, self._radius = inner._center, inner._radius

    @classmethod
    def through_points(cls, points, inner: Domain | None = None) -> "Slice":
        """The slice through two (a line) or three (a plane) input points.

        ``t = 0`` is the first point and the unit vectors ``e_i`` map to the others.

        Parameters
        ----------
        points : array_like, shape (2, d) or (3, d)
        inner : Box or Polytope, optional
            Extent in slice coordinates; default the box ``[0, 1]^k``.
        """
        P = np.asarray(points, dtype=np.float64)
        if P.ndim != 2 or P.shape[0] not in (2, 3):
            raise DomainError(f"give two or three points of shape (d,), got array of shape "
                              f"{P.shape}")
        D = (P[1:] - P[0]).T
        if inner is None:
            inner = Box(0.0, 1.0, dim=D.shape[1])
        return cls(P[0], D, inner)

    @property
    def input_dim(self) -> int:
        return self.origin.size

    def to_input(self, T) -> np.ndarray:
        T = np.asarray(T, dtype=np.float64)
        return self.origin + T @ self.directions.T

    def from_input(self, X) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[1] != self.input_dim:
            raise PointError(f"points must have {self.input_dim} coordinates, got {X.shape[1]}")
        T, *_ = np.linalg.lstsq(self.directions, (X - self.origin).T, rcond=None)
        return T.T

    def network_on(self, network):
        super().network_on(network)
        return network.with_input_map(self.directions, self.origin)

    def __repr__(self) -> str:
        return f"Slice(R^{self.dim} in R^{self.input_dim}, inner={self.inner!r})"


def as_domain(domain, dim: int | None = None) -> Domain:
    """Coerce a Domain, an ``(lo, hi)`` pair or an ``(A, b)`` pair to a Domain.

    Raises
    ------
    DomainError
    """
    if isinstance(domain, Domain):
        return domain
    if isinstance(domain, tuple) and len(domain) == 2:
        first = np.asarray(domain[0], dtype=np.float64)
        if first.ndim == 2:
            return Polytope(*domain)
        return Box(domain[0], domain[1], dim=dim)
    raise DomainError(f"cannot make a domain from {type(domain).__name__}; give a Box, Polytope, "
                      "Slice, (lo, hi) or (A, b)")
