"""Local complexity (Humayun et al., ICML 2024, "Deep Networks Always Grok") and its exact
counterpart.

**The estimate.** At a point x, take P random orthonormal directions v_p and the 2P vertices
``x +- r v_p`` of the cross-polytope (l1 ball) of radius r around x in their span. Per layer,
count the neurons whose pre-activation sign is not the same at all 2P vertices (an exact 0 counts
as a change); sum over layers; average over a batch of points.

**The exact quantity it estimates.** Per layer, the number of neurons whose zero set meets the
(closed) neighbourhood, and the number of linear regions inside it, from the exact subdivision
of the neighbourhood (:class:`powercells.Neighbourhood`, a slice through input space).

Why they differ: a first-layer pre-activation is affine, so its range over the neighbourhood is
the hull of its values at the vertices and the estimate is exact. A deeper pre-activation is
only piecewise affine: its zero set can enter the neighbourhood and leave it between the
vertices, where no vertex sees a sign change. Conversely a sign change between two vertices
means, by continuity on the convex neighbourhood, a zero in between. So per layer

    LC (first layer) == exact neurons,      LC (deeper layers) <= exact neurons,

up to the exact side's zero tolerance: the exact count treats a minimum within
``tree.tolerances.zero`` (relative to the terms that produced it) as 0, so a neuron whose zero
set passes that close to the neighbourhood counts as touching it, while LC compares the vertex
values with 0 exactly. With such near-zeros LC can be below the exact count on the first layer
too; it is never above it.

Maxout and max-pool units generalise the sign to the code (the winning piece): a unit counts
when its code is not the same at all vertices or two of its pieces tie at a vertex, and exactly
when its boundary (a tie between its top pieces) meets the neighbourhood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..domain import NEIGHBOURHOOD_NORMS, Neighbourhood, random_directions
from ..errors import DomainError, PointError
from ._common import (
    ApproximationError,
    check_network,
    positive_float,
    positive_int,
    rng_from,
)

__all__ = [
    "MAX_LINF_DIRECTIONS",
    "ExactLocalComplexity",
    "LocalComplexity",
    "LocalComplexityComparison",
    "compare_local_complexity",
    "exact_local_complexity",
    "local_complexity",
    "neurons_meeting",
]


#: The most directions of ``norm="linf"`` local complexity (2^P cube corners are evaluated).
MAX_LINF_DIRECTIONS = 16


@dataclass
class LocalComplexity:
    """Local complexity estimates at a batch of points.

    Attributes
    ----------
    per_point : ndarray of int, shape (n, L)
        Per point and layer, the neurons whose sign (code) is not the same at every vertex.
    points : ndarray, shape (n, d)
    directions : ndarray, shape (n, d, P)
        The orthonormal directions used at each point.
    radius : float
    norm : str
        ``"l1"``: the 2P vertices ``x +- r v_p`` (the authors' definition); ``"linf"``: the 2^P
        corners of the cube.
    """

    per_point: np.ndarray
    points: np.ndarray
    directions: np.ndarray
    radius: float
    norm: str = "l1"

    @property
    def per_layer(self) -> np.ndarray:
        """LC per layer, averaged over the points, shape (L,)."""
        return self.per_point.mean(axis=0)

    @property
    def total(self) -> float:
        """LC summed over layers and averaged over the points."""
        return float(self.per_point.sum(axis=1).mean())


@dataclass
class ExactLocalComplexity:
    """The exact counterparts of local complexity at a batch of points.

    Attributes
    ----------
    neurons : ndarray of int, shape (n, L)
        Per point and layer, the neurons whose zero set (for maxout / max-pool units: the set
        where two top pieces tie) meets the closed neighbourhood.
    crossing : ndarray of int, shape (n, L)
        Of those, the neurons that cut it: they take two codes on full-dimensional parts. The
        difference are neurons that only touch it (tangent, through a vertex, or identically
        zero on a region).
    regions : ndarray of int, shape (n,)
        Linear regions of the network inside each neighbourhood (leaves of its subdivision).
    per_layer_regions : ndarray of int, shape (n, L)
        Regions after each layer.
    slivers : ndarray of int, shape (n,)
        Cells with inradius below the region tolerance set aside by the engine (never counted;
        a neuron that crosses only such a cell is not in ``crossing``).
    """

    neurons: np.ndarray
    crossing: np.ndarray
    regions: np.ndarray
    per_layer_regions: np.ndarray
    slivers: np.ndarray

    @property
    def per_layer(self) -> np.ndarray:
        """Exact neurons per layer averaged over the points, shape (L,)."""
        return self.neurons.mean(axis=0)


@dataclass
class LocalComplexityComparison:
    """LC and its exact counterparts at the same points, directions and radius."""

    estimate: LocalComplexity
    exact: ExactLocalComplexity

    def as_dict(self) -> dict:
        """The JSON object printed by ``powercells local-complexity --json``: means over the
        points, always floats.

        * ``"lc"``: LC per layer;
        * ``"exact_neurons"``: neurons whose zero set meets the neighbourhood, per layer;
        * ``"exact_regions"``: regions inside it;
        * ``"exact_crossing"``: of the exact neurons, those that cut it, per layer;
        * ``"exact_slivers"``: cells thinner than the region tolerance set aside by the engine
          (not counted in ``exact_regions``; a neuron that crosses only such a cell is not in
          ``exact_crossing``);
        * ``"points"``: the number of points averaged over.
        """
        def floats(values):
            return [float(v) for v in np.asarray(values, dtype=np.float64)]

        return {"lc": floats(self.estimate.per_layer),
                "exact_neurons": floats(self.exact.per_layer),
                "exact_regions": float(self.exact.regions.mean()),
                "exact_crossing": floats(self.exact.crossing.mean(axis=0)),
                "exact_slivers": float(self.exact.slivers.mean()),
                "points": len(self.exact.regions)}


# ----------------------------------------------------------------------------- inputs
def _points(network, points) -> np.ndarray:
    try:
        X = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PointError(f"points are not numeric ({exc})") from None
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != network.input_dim or len(X) == 0:
        raise PointError(f"points must have shape (n, {network.input_dim}) with n >= 1 for this "
                         f"network, got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise PointError("points contain NaN or infinite values")
    return X


def _directions(n_points, d, n_directions, directions, seed) -> np.ndarray:
    """Directions of shape (n, d, P): given (shared or per point) or fresh random ones per
    point, as the authors draw them."""
    if directions is None:
        if n_directions is None:
            raise ApproximationError("give n_directions (P, the number of random directions) or "
                                     "directions")
        P = positive_int(n_directions, "n_directions")
        if P > d:
            raise ApproximationError(f"n_directions = {P} exceeds the input dimension {d}")
        rng = rng_from(seed)
        return np.stack([random_directions(d, P, seed=rng) for _ in range(n_points)])
    if n_directions is not None:
        raise ApproximationError("give either n_directions or directions, not both")
    try:
        V = np.asarray(directions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DomainError(f"directions are not numeric ({exc})") from None
    if V.ndim == 2:
        V = np.broadcast_to(V, (n_points,) + V.shape)
    if V.ndim != 3 or V.shape[:2] != (n_points, d) or V.shape[2] == 0:
        raise DomainError(f"directions must have shape ({d}, P) or ({n_points}, {d}, P) with "
                          f"P >= 1, got {np.shape(directions)}")
    if not np.all(np.isfinite(V)):
        raise DomainError("directions contain NaN or infinite values")
    for i in range(n_points):   # orthonormality is checked once per point, with a clear message
        err = float(np.max(np.abs(V[i].T @ V[i] - np.eye(V.shape[2]))))
        if err > 1e-8:
            raise DomainError(f"directions of point {i} are not orthonormal "
                              f"(max |V^T V - I| = {err:.3g})")
    return V


def _norm(norm: str) -> str:
    if norm not in NEIGHBOURHOOD_NORMS:
        raise DomainError(f"unknown norm {norm!r}; choose one of {', '.join(NEIGHBOURHOOD_NORMS)}")
    return norm


# ----------------------------------------------------------------------------- the estimate
def _changed_units(layer, Z: np.ndarray) -> np.ndarray:
    """Per neighbourhood, the units of ``layer`` whose sign / code differs between its vertices
    or ties at one of them. Z has shape (n, m, D): m vertices per neighbourhood."""
    n, m, D = Z.shape
    flat = Z.reshape(n * m, D)
    if layer.kind == "identity":
        return np.zeros((n, layer.out_dim), dtype=bool)
    if layer.is_switch:
        h = (flat @ layer.switch_W.T + layer.switch_b).reshape(n, m, -1)
        all_pos = np.all(h > 0, axis=1)
        all_neg = np.all(h < 0, axis=1)
        return ~(all_pos | all_neg)
    vals = np.einsum("krd,nd->nkr", layer.A, flat) + layer.B
    padded = np.arange(layer.max_pieces)[None, None, :] >= layer.n_pieces[None, :, None]
    vals = np.where(padded, -np.inf, vals)
    top = vals.max(axis=2, keepdims=True)
    tie = (vals == top).sum(axis=2) >= 2
    code = np.argmax(vals, axis=2).reshape(n, m, -1)
    return (code.min(axis=1) != code.max(axis=1)) | tie.reshape(n, m, -1).any(axis=1)


def local_complexity(network, points, *, radius, n_directions=None, directions=None,
                     seed=None, norm: str = "l1") -> LocalComplexity:
    """The local complexity estimate of Humayun et al. at each point.

    Parameters
    ----------
    network : Network
    points : array_like, shape (n, d) or (d,)
    radius : float
        r, the distance of the vertices from the point.
    n_directions : int, optional
        P: draw P random orthonormal directions per point (with ``seed``).
    directions : array_like, shape (d, P) or (n, d, P), optional
        Orthonormal directions to use instead (shared or per point).
    seed : int, numpy Generator or None
    norm : {"l1", "linf"}
        ``"l1"`` probes the 2P vertices ``x +- r v_p`` (the authors' definition); ``"linf"`` the
        2^P corners of the cube of half-width r.

    Returns
    -------
    LocalComplexity

    Raises
    ------
    PointError
        If the points have the wrong shape or are not finite.
    DomainError
        If the directions are not finite, not orthonormal, have the wrong shape or P = 0, or the
        norm is unknown.
    ApproximationError
        For a non-positive radius or number of directions, more directions than the input
        dimension, or more than :data:`MAX_LINF_DIRECTIONS` directions with ``norm="linf"``.

    Examples
    --------
    >>> import numpy as np, powercells as pc
    >>> net = pc.Network.from_weights([(np.eye(2), [0.0, 0.3])], ["relu"])
    >>> local_complexity(net, [0.0, 0.0], radius=0.5, directions=np.eye(2)).per_point
    array([[2]])
    """
    network = check_network(network)
    X = _points(network, points)
    r = positive_float(radius, "radius")
    norm = _norm(norm)
    V = _directions(len(X), network.input_dim, n_directions, directions, seed)
    P = V.shape[2]
    if norm == "l1":
        T = np.zeros((2 * P, P))
        T[0::2][np.arange(P), np.arange(P)] = r
        T[1::2][np.arange(P), np.arange(P)] = -r
    else:
        if P > MAX_LINF_DIRECTIONS:
            raise ApproximationError(
                f"norm='linf' probes the 2^P corners of the cube; P = {P} directions exceeds the "
                f"limit of {MAX_LINF_DIRECTIONS} (2^{MAX_LINF_DIRECTIONS} corners); use fewer "
                "directions or norm='l1' (2P vertices)")
        T = r * np.array(np.meshgrid(*[[-1.0, 1.0]] * P, indexing="ij")).reshape(P, -1).T
    # points in batches of about 2^16 vertices, whatever P
    step = max(1, (1 << 16) // len(T))
    per_point = np.concatenate([_vertex_changes(network, X[lo:lo + step], V[lo:lo + step], T)
                                for lo in range(0, len(X), step)])
    return LocalComplexity(per_point, X, np.array(V), r, norm)


def _vertex_changes(network, X, V, T) -> np.ndarray:
    """Per point and layer, the units whose sign (code) differs between the vertices
    ``x + V t`` (t the rows of T) or ties at one of them; shape (n, L)."""
    Z = X[:, None, :] + np.einsum("ndp,mp->nmd", V, T)        # (n, vertices, d)
    counts = []
    # only signs and ties matter: the balanced network has the same ones, in float64's range
    for layer in network.balanced().layers:
        counts.append(_changed_units(layer, Z).sum(axis=1))
        n, m, D = Z.shape
        Z = layer.codes_and_outputs(Z.reshape(n * m, D))[1].reshape(n, m, -1)
    return np.stack(counts, axis=1)


# ----------------------------------------------------------------------------- exact
def _comparison_rows(layer, units, codes):
    """For units with a constant code on the neighbourhood, the comparisons ``chosen piece -
    other piece`` (as rows on the layer input) whose zero means the unit's boundary: one per
    ReLU-type unit (its pre-activation, signed), ``n_pieces - 1`` per maxout unit."""
    rows, consts, owner = [], [], []
    if layer.kind == "identity" or len(units) == 0:
        return np.empty((0, layer.in_dim)), np.empty(0), np.empty(0, dtype=np.int64)
    if layer.is_switch:
        sign = np.where(codes == 1, 1.0, -1.0)     # active: h > 0; inactive: -h >= 0
        return (sign[:, None] * layer.switch_W[units], sign * layer.switch_b[units],
                np.asarray(units, dtype=np.int64))
    for unit, r in zip(units, codes):
        for s in range(int(layer.n_pieces[unit])):
            if s != r:
                rows.append(layer.A[unit, r] - layer.A[unit, s])
                consts.append(layer.B[unit, r] - layer.B[unit, s])
                owner.append(unit)
    if not rows:
        return np.empty((0, layer.in_dim)), np.empty(0), np.empty(0, dtype=np.int64)
    return np.array(rows), np.array(consts), np.array(owner, dtype=np.int64)


def _min_over_cells(tree, depth, cells, G, C):
    """Exact ``min_{t in closure(cell)} g . t + c`` for pairs (cell, row): polygon vertices or
    interval ends when the engine keeps them, an LP otherwise."""
    level = tree.levels[depth]
    out = np.empty(len(cells))
    if level.intervals is not None:
        ends = level.intervals[cells]                          # (m, 2)
        return np.minimum(G[:, 0] * ends[:, 0], G[:, 0] * ends[:, 1]) + C
    if level.polygons is not None:
        polys = level.polygons
        for i, (cell, g, c) in enumerate(zip(cells, G, C)):
            out[i] = float(np.min(polys.vertices(int(cell)) @ g)) + c
        return out
    from scipy.optimize import linprog

    cache = {}
    for i, (cell, g, c) in enumerate(zip(cells, G, C)):
        cell = int(cell)
        if cell not in cache:
            cache[cell] = tree.halfspaces(depth, cell) if depth else tree.domain.halfspaces()
        H, h = cache[cell]
        res = linprog(g, A_ub=H, b_ub=h, bounds=[(None, None)] * len(g), method="highs")
        if res.status != 0:
            from ..errors import SolverError

            raise SolverError(f"the LP minimising a unit over region {cell} of depth {depth} "
                              f"failed ({res.message})")
        out[i] = float(res.fun) + c
    return out


def neurons_meeting(tree) -> tuple[np.ndarray, np.ndarray]:
    """Per layer, the neurons whose zero set meets a neighbourhood, from its subdivision tree.

    A neuron *crosses* when two depth-l regions give it different codes. A neuron with one code
    everywhere *touches* when its comparison rows (the pre-activation, signed so that it is
    >= 0 on the neighbourhood) reach 0 on the closure of a depth-(l-1) region: first a bound
    from the neighbourhood's support function, then the exact minimum (vertices in 1-D and 2-D,
    an LP otherwise). A value within ``tree.tolerances.zero`` of the terms that produced it is 0.

    Parameters
    ----------
    tree : SubdivisionTree
        The subdivision of a :class:`~powercells.Neighbourhood`.

    Returns
    -------
    meeting, crossing : ndarray of int, shape (L,)
    """
    domain = tree.domain
    if not isinstance(domain, Neighbourhood):
        raise ApproximationError("neurons_meeting needs the subdivision of a Neighbourhood")
    zero = tree.tolerances.zero
    L = tree.depth
    meeting = np.zeros(L, dtype=np.int64)
    crossing = np.zeros(L, dtype=np.int64)
    k = domain.dim
    for depth in range(1, L + 1):
        layer = tree.network.layers[depth - 1]
        codes = tree.levels[depth].code
        if len(codes) == 0:
            continue
        crosses = codes.min(axis=0) != codes.max(axis=0)
        crossing[depth - 1] = int(crosses.sum())
        steady = np.flatnonzero(~crosses)
        rows, consts, owner = _comparison_rows(layer, steady, codes[0, steady].astype(np.intp))
        touching = set()
        if len(rows):
            if depth == 1:
                A_w = np.eye(k)[None]
                B_w = np.zeros((1, k))
            else:
                A_w, B_w = tree.affine_maps(depth - 1)
            G = np.einsum("mD,wDk->wmk", rows, A_w)            # (cells, rows, k)
            C = B_w @ rows.T + consts                          # (cells, rows)
            scale = np.abs(B_w) @ np.abs(rows).T + np.abs(consts) \
                + domain.support(np.einsum("mD,wDk->wmk", np.abs(rows), np.abs(A_w)))
            tol = zero * scale
            lower = C - domain.support(G)                      # min over the whole ball
            cells, which = np.nonzero(lower <= tol)
            if depth == 1:
                hit = np.ones(len(cells), dtype=bool)          # the cell is the ball: exact
            else:
                hit = _min_over_cells(tree, depth - 1, cells, G[cells, which],
                                      C[cells, which]) <= tol[cells, which]
            touching = set(owner[which[hit]].tolist())
        meeting[depth - 1] = crossing[depth - 1] + len(touching)
    return meeting, crossing


def exact_local_complexity(network, points, *, radius, n_directions=None, directions=None,
                           seed=None, norm: str = "l1", engine: str = "auto", tol=None,
                           tolerances=None) -> ExactLocalComplexity:
    """The exact quantities local complexity estimates: per layer the neurons whose zero set
    meets the neighbourhood, and the regions inside it.

    Parameters as for :func:`local_complexity`; ``engine``, ``tol`` and ``tolerances`` as for
    :func:`powercells.subdivide` (the neighbourhood is a P-dimensional slice: P = 1 and 2 go to
    the LP-free engines).

    Returns
    -------
    ExactLocalComplexity

    Raises
    ------
    PointError, DomainError, ApproximationError
        As :func:`local_complexity`.
    """
    network = check_network(network)
    X = _points(network, points)
    r = positive_float(radius, "radius")
    norm = _norm(norm)
    V = _directions(len(X), network.input_dim, n_directions, directions, seed)
    return _exact(network, X, V, r, norm, engine=engine, tol=tol, tolerances=tolerances)


def _exact(network, X, V, r, norm, **options) -> ExactLocalComplexity:
    from ..enumerate import subdivide

    L = network.depth
    neurons = np.zeros((len(X), L), dtype=np.int64)
    crossing = np.zeros((len(X), L), dtype=np.int64)
    regions = np.zeros(len(X), dtype=np.int64)
    per_layer = np.zeros((len(X), L), dtype=np.int64)
    slivers = np.zeros(len(X), dtype=np.int64)
    # neurons_meeting reads hyperplanes only (where units vanish): the balanced network has the
    # same ones and keeps its pulled-back maps in float64's range
    balanced = network.balanced()
    for i, (x, dirs) in enumerate(zip(X, V)):
        tree = subdivide(balanced, Neighbourhood(x, dirs, r, norm=norm), **options)
        neurons[i], crossing[i] = neurons_meeting(tree)
        regions[i] = tree.n_regions
        per_layer[i] = tree.per_layer
        slivers[i] = len(tree.slivers)
    return ExactLocalComplexity(neurons, crossing, regions, per_layer, slivers)


def compare_local_complexity(network, points, *, radius, n_directions=None, directions=None,
                             seed=None, norm: str = "l1", engine: str = "auto", tol=None,
                             tolerances=None) -> LocalComplexityComparison:
    """Local complexity and its exact counterparts at the same points, directions and radius.

    Parameters and errors as for :func:`local_complexity` and :func:`exact_local_complexity`.

    Returns
    -------
    LocalComplexityComparison
        ``.as_dict()`` gives ``{"lc": [...], "exact_neurons": [...], "exact_regions": N, ...}``
        (means over the points; see :meth:`LocalComplexityComparison.as_dict`).

    Examples
    --------
    >>> import numpy as np, powercells as pc
    >>> net = pc.Network.from_weights([(np.eye(2), [0.0, 0.3])], ["relu"])
    >>> out = compare_local_complexity(net, [0.0, 0.0], radius=0.5, directions=np.eye(2)).as_dict()
    >>> out["lc"], out["exact_neurons"], out["exact_regions"], out["exact_slivers"]
    ([2.0], [2.0], 4.0, 0.0)
    """
    estimate = local_complexity(network, points, radius=radius, n_directions=n_directions,
                                directions=directions, seed=seed, norm=norm)
    exact = _exact(network, estimate.points, estimate.directions, estimate.radius, norm,
                   engine=engine, tol=tol, tolerances=tolerances)
    return LocalComplexityComparison(estimate, exact)
