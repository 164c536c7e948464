"""Input domains: boxes, polytopes, and slices through input space.

Engines see every domain as a bounded, full-dimensional polytope ``A @ t <= b`` in R^k. For a box or
polytope, ``t = x`` and k = d. A :class:`Slice` is an affine map ``x = origin + directions @ t`` of
an inner box or polytope in R^k; it is folded into the network's first layer
(:meth:`Domain.network_on`), so that engines never see the ambient dimension.
"""

from __future__ import annotations

import numpy as np

from .errors import DomainError, PointError

__all__ = [
    "Box",
    "Domain",
    "Neighbourhood",
    "Polytope",
    "Slice",
    "as_domain",
    "random_directions",
]


def _direction_matrix(directions) -> np.ndarray:
    """Directions as a float matrix with one column per direction (a vector is one column)."""
    try:
        D = np.asarray(directions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DomainError(f"directions are not numeric ({exc})") from None
    return D[:, None] if D.ndim == 1 else D


def _norm(v: np.ndarray) -> float:
    """The Euclidean norm without overflow or underflow in the squares (1e200 or 1e-200)."""
    m = float(np.max(np.abs(v))) if np.size(v) else 0.0
    if 1e-150 < m < 1e150:
        return float(np.linalg.norm(v))      # the squares are safe: the usual arithmetic
    return m * float(np.linalg.norm(v / m)) if m > 0 and np.isfinite(m) else m


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



def _linprog():
    """scipy's linprog, imported when a polytope domain first needs it (scipy.optimize costs
    a quarter of a second to import, paid by every CLI call and worker process otherwise)."""
    from scipy.optimize import linprog

    return linprog

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
        with np.errstate(over="ignore"):
            width = self._hi - self._lo
        if np.all(np.isfinite(width)):
            return _norm(width)
        return 2.0 * _norm(self._hi / 2 - self._lo / 2)     # bounds near 1e308

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
        """Normalise rows, then check that the polytope is bounded and full-dimensional.

        Rows are normalised without squaring their entries (rows of 1e-200 or 1e200 keep their
        direction), and the LPs run on ``b / 2**e`` with ``b`` about 1 (the solver's tolerances
        and its infinity, 1e20, are absolute), the results scaled back exactly."""
        top = np.max(np.abs(A), axis=1, initial=0.0)
        safe = np.where(top > 0, top, 1.0)
        norms = np.where(top > 0, top * np.linalg.norm(A / safe[:, None], axis=1), 0.0)
        zero = norms == 0
        if np.any(zero & (b < 0)):
            raise DomainError(f"{what} is empty: a row reads 0 <= {b[zero & (b < 0)][0]}")
        A, b, norms = A[~zero], b[~zero], norms[~zero]
        A = A / norms[:, None]
        b = b / norms
        if not np.all(np.isfinite(b)):
            raise DomainError(f"{what}: a row's bound divided by its norm is beyond float64")
        k = A.shape[1]
        big = float(np.max(np.abs(b), initial=0.0))
        exp = int(np.frexp(big)[1]) if big > 0 else 0
        exp = 0 if abs(exp) <= 10 else exp
        A_real, b_real = A, b
        b = np.ldexp(b, -exp)
        lo = np.empty(k)
        hi = np.empty(k)
        for i in range(k):
            for sign, out in ((1.0, lo), (-1.0, hi)):
                c = np.zeros(k)
                c[i] = sign
                res = _linprog()(c, A_ub=A, b_ub=b, bounds=[(None, None)] * k, method="highs")
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
        res = _linprog()(cost, A_ub=np.hstack([A, np.ones((len(b), 1))]), b_ub=b,
                      bounds=[(None, None)] * k + [(0, diam)], method="highs")
        if res.status != 0:
            raise DomainError(f"{what}: could not find an interior point ({res.message})")
        radius = float(res.x[-1])
        center = res.x[:-1]
        if exp:
            lo, hi = np.ldexp(lo, exp), np.ldexp(hi, exp)
            radius, center = float(np.ldexp(radius, exp)), np.ldexp(center, exp)
            diam = float(np.ldexp(diam, exp))
        A, b = A_real, b_real
        if not radius > 1e-12 * max(diam, 1e-300):
            raise DomainError(
                f"{what} is lower-dimensional or empty (largest inscribed ball radius "
                f"{radius:.3g}); "
                "a domain must have a non-empty interior"
            )
        self._A, self._b, self._lo, self._hi = A, b, lo, hi
        self._center, self._radius = center, radius
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
        with np.errstate(over="ignore"):
            self._center = (lo + hi) / 2
            self._radius = float(np.min(hi - lo) / 2)
        if not (np.all(np.isfinite(self._center)) and np.isfinite(self._radius)):
            # bounds near 1e308: halves first (lo + hi, hi - lo overflow)
            self._center = lo / 2 + hi / 2
            self._radius = float(np.min(hi / 2 - lo / 2))
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
        D = _direction_matrix(directions)
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
    def through_points(cls, points, inner: Domain | None = None) -> Slice:
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


#: Norms accepted by :class:`Neighbourhood`.
NEIGHBOURHOOD_NORMS = ("l1", "linf")


def _rng(seed) -> np.random.Generator:
    """A Generator from an int, a Generator or None (DESIGN: ``seed`` everywhere)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise DomainError(f"seed must be an int, a numpy Generator or None, got "
                          f"{type(seed).__name__}")
    if seed is not None and seed < 0:
        raise DomainError(f"seed must be a non-negative integer, got {seed}")
    return np.random.default_rng(seed)


def random_directions(dim: int, n_directions: int, *, seed=None) -> np.ndarray:
    """``n_directions`` random orthonormal directions of R^dim, uniformly distributed (Haar).

    Parameters
    ----------
    dim : int
        d, the dimension of the input space.
    n_directions : int
        P, the number of directions, ``1 <= P <= d``.
    seed : int, numpy Generator or None

    Returns
    -------
    ndarray, shape (dim, n_directions)
        Orthonormal columns.

    Raises
    ------
    DomainError
        If ``P < 1`` or ``P > d``.

    Examples
    --------
    >>> V = random_directions(64, 3, seed=0)
    >>> bool(np.allclose(V.T @ V, np.eye(3)))
    True
    """
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise DomainError(f"dim must be a positive integer, got {dim!r}")
    if not isinstance(n_directions, (int, np.integer)) or not 1 <= n_directions <= dim:
        raise DomainError(f"n_directions must be an integer in 1..{dim} (the input dimension), "
                          f"got {n_directions!r}")
    rng = _rng(seed)
    G = rng.standard_normal((dim, int(n_directions)))
    Q, R = np.linalg.qr(G)
    # fixing the signs of R's diagonal makes Q Haar-distributed, not just orthonormal
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


class _CrossPolytope(Polytope):
    """The l1 ball ``sum |t_i| <= r`` of R^P, built in closed form (2^P facets, no LP)."""

    def __init__(self, radius: float, dim: int):
        signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * dim, indexing="ij")).reshape(dim, -1).T
        self.A = signs
        self.b = np.full(len(signs), float(radius))
        self._A = signs / np.sqrt(dim)
        self._b = self.b / np.sqrt(dim)
        self._lo = np.full(dim, -float(radius))
        self._hi = np.full(dim, float(radius))
        self._center = np.zeros(dim)
        self._radius = float(radius) / np.sqrt(dim)
        for arr in (self.A, self.b, self._A, self._b, self._lo, self._hi, self._center):
            arr.setflags(write=False)

    def __repr__(self) -> str:
        return f"CrossPolytope(radius={self._hi[0]:g}, dim={self.dim})"


class Neighbourhood(Slice):
    """The l1 ball (cross-polytope) or l-infinity ball (cube) of radius r around a point, in the
    span of orthonormal directions: ``x = center + directions @ t`` with ``||t||_1 <= r`` or
    ``||t||_inf <= r``.

    A neighbourhood is a :class:`Slice`, so the input dimension d can be large: engines work in
    the P slice coordinates ``t``. The l1 ball is the convex hull of the 2P points
    ``center +- r v_p``, the neighbourhood whose vertices the local complexity of Humayun et al.
    probes (:func:`powercells.approx.local_complexity`).

    Parameters
    ----------
    center : array_like, shape (d,)
    directions : array_like, shape (d, P)
        Orthonormal columns v_1..v_P (``directions.T @ directions = I`` to 1e-8).
    radius : float
        r > 0.
    norm : {"l1", "linf"}
        ``"l1"``: the cross-polytope (2P vertices, 2^P facets); ``"linf"``: the cube
        (2^P vertices, 2P facets).

    Raises
    ------
    DomainError
        If the shapes do not match, the directions are not orthonormal, the radius is not a
        positive finite number, or the norm is unknown.

    See Also
    --------
    Neighbourhood.random : random orthonormal directions with a seed.

    Examples
    --------
    >>> nb = Neighbourhood(np.zeros(3), np.eye(3)[:, :2], 0.5)
    >>> nb.vertices()
    array([[ 0.5,  0. ,  0. ],
           [-0.5,  0. ,  0. ],
           [ 0. ,  0.5,  0. ],
           [ 0. , -0.5,  0. ]])
    """

    def __init__(self, center, directions, radius, *, norm: str = "l1"):
        center = _vector(center, "center")
        D = _direction_matrix(directions)
        if D.ndim != 2 or D.shape[0] != center.size or D.shape[1] == 0:
            raise DomainError(f"directions must have shape ({center.size}, P) with P >= 1 to "
                              f"match center, got {D.shape}")
        if not np.all(np.isfinite(D)):
            raise DomainError("directions contain NaN or infinite values")
        gram_error = float(np.max(np.abs(D.T @ D - np.eye(D.shape[1]))))
        if gram_error > 1e-8:
            raise DomainError(f"directions must be orthonormal columns (max |V^T V - I| = "
                              f"{gram_error:.3g}); use random_directions or orthonormalise them")
        try:
            radius = float(radius)
        except (TypeError, ValueError):
            raise DomainError(f"radius must be a number, got {radius!r}") from None
        if not (np.isfinite(radius) and radius > 0):
            raise DomainError(f"radius must be a positive finite number, got {radius}")
        if norm not in NEIGHBOURHOOD_NORMS:
            raise DomainError(f"unknown norm {norm!r}; choose one of "
                              f"{', '.join(NEIGHBOURHOOD_NORMS)}")
        P = D.shape[1]
        if norm == "l1" and P > 16:
            raise DomainError(f"an l1 neighbourhood with P = {P} directions has 2^{P} facets; "
                              "use at most 16 directions (or norm='linf')")
        inner = _CrossPolytope(radius, P) if norm == "l1" else Box(-radius, radius, dim=P)
        super().__init__(center, D, inner)
        self.center, self.radius, self.norm = center, radius, norm
        self.center.setflags(write=False)

    @classmethod
    def random(cls, center, n_directions: int, radius, *, norm: str = "l1",
               seed=None) -> Neighbourhood:
        """The neighbourhood in the span of ``n_directions`` random orthonormal directions
        (:func:`random_directions`).

        Raises
        ------
        DomainError
        """
        center = _vector(center, "center")
        return cls(center, random_directions(center.size, n_directions, seed=seed), radius,
                   norm=norm)

    @property
    def n_directions(self) -> int:
        """P, the number of directions (the dimension engines enumerate in)."""
        return self.directions.shape[1]

    def vertices(self) -> np.ndarray:
        """The vertices in input coordinates: ``center + r v_1, center - r v_1, ...`` (2P rows)
        for the l1 ball; the 2^P corners of the cube for ``linf``.

        Returns
        -------
        ndarray, shape (2P, d) or (2^P, d)
        """
        return self.to_input(self.slice_vertices())

    def slice_vertices(self) -> np.ndarray:
        """The vertices in slice coordinates ``t`` (see :meth:`vertices`)."""
        P, r = self.n_directions, self.radius
        if self.norm == "l1":
            T = np.zeros((2 * P, P))
            T[0::2][np.arange(P), np.arange(P)] = r
            T[1::2][np.arange(P), np.arange(P)] = -r
            return T
        return r * np.array(np.meshgrid(*[[-1.0, 1.0]] * P, indexing="ij")).reshape(P, -1).T

    def support(self, G) -> np.ndarray:
        """``max_{t in ball} g . t`` for each row g of G: ``r ||g||_inf`` (l1) or ``r ||g||_1``
        (linf), the dual norm."""
        G = np.asarray(G, dtype=np.float64)
        dual = np.abs(G).max(axis=-1) if self.norm == "l1" else np.abs(G).sum(axis=-1)
        return self.radius * dual

    def __repr__(self) -> str:
        return (f"Neighbourhood({self.norm} ball of radius {self.radius:g} in a "
                f"{self.n_directions}-plane of R^{self.input_dim})")


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
