"""Region volumes (SPEC §5.4): exact by default for d <= 3, Monte Carlo with standard errors
above.

Exact volumes intersect each region's halfspaces and take the convex hull of the vertices
(qhull). That works in any dimension, but a region of a deep network in ``d`` dimensions can
have a number of vertices growing like ``m^(d/2)`` in its ``m`` facets, and so does qhull's
time, so ``method="auto"`` switches to Monte Carlo above 3-D; ``method="exact"`` still computes
exact volumes there when asked.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..errors import GeometryError

__all__ = ["Volumes", "monte_carlo_volumes", "polytope_volume", "region_volumes"]


def polytope_volume(H, h, interior_point) -> float:
    """Volume of the bounded polytope ``H x <= h`` (any dimension; qhull above 1-D).

    Parameters
    ----------
    H : array_like, shape (m, d)
    h : array_like, shape (m,)
    interior_point : array_like, shape (d,)
        A point strictly inside (e.g. the Chebyshev centre).

    Returns
    -------
    float
        Length, area or volume.

    Raises
    ------
    GeometryError
        If the point is not strictly inside, or qhull fails (a degenerate polytope).
    """
    H = np.asarray(H, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    x = np.asarray(interior_point, dtype=np.float64)
    d = H.shape[1]
    if np.any(H @ x >= h):
        raise GeometryError("the interior point is not strictly inside the polytope")
    if d == 1:
        a = H[:, 0]
        upper = np.min(h[a > 0] / a[a > 0])
        lower = np.max(h[a < 0] / a[a < 0])
        return float(upper - lower)
    from scipy.spatial import ConvexHull, HalfspaceIntersection, QhullError

    try:
        vertices = HalfspaceIntersection(np.hstack([H, -h[:, None]]), x).intersections
        return float(ConvexHull(vertices).volume)
    except QhullError as exc:
        raise GeometryError(f"qhull could not compute the volume of a {d}-D polytope: "
                            f"{str(exc).splitlines()[0]}") from exc


@dataclass
class Volumes:
    """Volumes of the nodes of one depth, in engine coordinates.

    Attributes
    ----------
    volume : ndarray, shape (n,)
    stderr : ndarray, shape (n,)
        Standard error of each estimate (zeros when exact). For a node no sample hit
        (``unresolved``) it holds the rule-of-three 95% upper bound ``3 vol(box) / N`` of its
        volume instead: its estimate 0 is not an exact zero.
    exact : bool
        True when computed exactly, False for Monte Carlo estimates.
    n_samples : int
        Points drawn (0 when exact), rejected ones included.
    unassigned : int
        Points inside the domain that fell in no node (slivers or ties on a boundary).
    hits : ndarray of int64, shape (n,) or None
        Monte Carlo: the points that fell in each node (None when exact).
    """

    volume: np.ndarray
    stderr: np.ndarray
    exact: bool
    n_samples: int = 0
    unassigned: int = 0
    hits: np.ndarray | None = None

    @property
    def unresolved(self) -> np.ndarray:
        """Boolean mask of the nodes no Monte Carlo sample hit (all False when exact)."""
        if self.hits is None:
            return np.zeros(len(self.volume), dtype=bool)
        return self.hits == 0


def region_volumes(tree, layer: int | None = None, *, method: str = "auto",
                   n_samples: int = 100_000, seed=None) -> Volumes:
    """Volumes of every node at ``layer`` (default: the leaves).

    Parameters
    ----------
    method : {"auto", "exact", "monte_carlo"}
        ``"auto"``: exact for engine dimension <= 3, Monte Carlo above (see the module
        docstring); ``"exact"`` in any dimension (qhull, slow for large regions above 3-D).
    samples : int
        Monte Carlo sample size.
    seed : int, numpy.random.Generator or None

    Raises
    ------
    GeometryError
        For an unknown method, a depth outside the tree, a bad sample size or seed (see
        :func:`monte_carlo_volumes`), or a polytope qhull cannot handle.
    """
    layer = tree.check_layer(layer)
    if method not in ("auto", "exact", "monte_carlo"):
        raise GeometryError(f"unknown volume method {method!r}; choose one of auto, exact, "
                            "monte_carlo")
    k = tree.domain.dim
    if method == "monte_carlo" or (method == "auto" and k > 3):
        return monte_carlo_volumes(tree, layer, n_samples=n_samples, seed=seed)
    level = tree.levels[layer]
    if level.polygons is not None:
        vol = level.polygons.area_perimeter()[0]
    elif level.intervals is not None:
        vol = level.intervals[:, 1] - level.intervals[:, 0]
    else:
        vol = np.array([polytope_volume(*tree.halfspaces(layer, i), level.interior_point[i])
                        for i in range(len(level))]) if layer else np.array(
            [polytope_volume(*tree.domain.halfspaces(), tree.domain.chebyshev[0])])
    return Volumes(np.asarray(vol, dtype=np.float64), np.zeros(len(level)), True)


def monte_carlo_volumes(tree, layer: int | None = None, *, n_samples: int = 100_000,
                        seed=None) -> Volumes:
    """Monte Carlo volumes of the nodes at ``layer``: uniform points in the domain's bounding
    box, each located by its code path.

    The estimate of a node is ``vol(box) * n_i / N`` with standard error
    ``vol(box) * sqrt(p_i (1 - p_i) / N)``, ``p_i = n_i / N``; points outside the domain count
    in ``N``. A node no point hit (``n_i = 0``, ``Volumes.unresolved``) gets the rule-of-three
    95% upper bound ``3 vol(box) / N`` as its standard error instead of 0. Calls with the same
    explicit integer ``seed`` and ``n_samples`` draw the same points at every depth, so children's
    estimates then sum exactly to their parent's (up to points that fall in no node, reported as
    ``unassigned``); with ``seed=None`` (or a shared Generator) each call draws new points.

    Raises
    ------
    GeometryError
        If ``n_samples`` is not a positive integer, or ``seed`` is not None, a non-negative
        integer, a ``numpy.random.Generator`` or a ``SeedSequence``.
    """
    layer = tree.check_layer(layer)
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral):
        raise GeometryError(f"n_samples must be a positive integer, got {n_samples!r}")
    n_samples = int(n_samples)
    if n_samples <= 0:
        raise GeometryError(f"n_samples must be positive, got {n_samples}")
    if not (seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence))
            or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
                and seed >= 0)):
        raise GeometryError(f"seed must be None, a non-negative integer, a numpy Generator or "
                            f"a SeedSequence, got {seed!r}")
    rng = np.random.default_rng(seed)
    lo, hi = tree.domain.bounds()
    box = float(np.prod(hi - lo))
    counts = np.zeros(len(tree.levels[layer]), dtype=np.int64)
    unassigned = 0
    index = {row.tobytes(): i for i, row in enumerate(tree.path_codes(layer).astype(np.int16))}
    chunk = 50_000
    for start in range(0, n_samples, chunk):
        T = lo + (hi - lo) * rng.random((min(chunk, n_samples - start), len(lo)))
        T = T[tree.domain.contains(T)]
        if layer == 0:
            counts[0] += len(T)
            continue
        codes = np.hstack(tree.network.codes(T)[:layer]).astype(np.int16)
        rows, n = np.unique(codes, axis=0, return_counts=True)
        for row, c in zip(rows, n):
            hit = index.get(row.tobytes())
            if hit is None:
                unassigned += int(c)
            else:
                counts[hit] += int(c)
    p = counts / n_samples
    stderr = np.where(counts > 0, box * np.sqrt(p * (1 - p) / n_samples), 3.0 * box / n_samples)
    return Volumes(box * p, stderr, False, n_samples, unassigned, counts)
