"""Region volumes (SPEC §5.4): exact for d <= 3, Monte Carlo with standard errors above."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PowercellsError

__all__ = ["Volumes", "monte_carlo_volumes", "polytope_volume", "region_volumes"]


def polytope_volume(H, h, interior_point) -> float:
    """Volume of the bounded polytope ``H x <= h`` in dimension 1, 2 or 3.

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
    PowercellsError
        If d > 3 (exact volumes above 3-D need vertex enumeration) or the point is not inside.
    """
    H = np.asarray(H, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    x = np.asarray(interior_point, dtype=np.float64)
    d = H.shape[1]
    if np.any(H @ x >= h):
        raise PowercellsError("the interior point is not strictly inside the polytope")
    if d == 1:
        a = H[:, 0]
        upper = np.min(h[a > 0] / a[a > 0])
        lower = np.max(h[a < 0] / a[a < 0])
        return float(upper - lower)
    if d > 3:
        raise PowercellsError(f"exact volumes are implemented for d <= 3, got d = {d}")
    from scipy.spatial import ConvexHull, HalfspaceIntersection

    vertices = HalfspaceIntersection(np.hstack([H, -h[:, None]]), x).intersections
    return float(ConvexHull(vertices).volume)


@dataclass
class Volumes:
    """Volumes of the nodes of one depth, in engine coordinates.

    Attributes
    ----------
    volume : ndarray, shape (n,)
    stderr : ndarray, shape (n,)
        Standard error of each estimate (zeros when exact).
    exact : bool
        True when computed exactly (d <= 3), False for Monte Carlo estimates.
    samples : int
        Points drawn (0 when exact), rejected ones included.
    unassigned : int
        Points inside the domain that fell in no node (slivers or ties on a boundary).
    """

    volume: np.ndarray
    stderr: np.ndarray
    exact: bool
    samples: int = 0
    unassigned: int = 0


def region_volumes(tree, depth: int | None = None, *, method: str = "auto",
                   samples: int = 100_000, seed=None) -> Volumes:
    """Volumes of every node at ``depth`` (default: the leaves).

    Parameters
    ----------
    method : {"auto", "exact", "monte_carlo"}
        ``"auto"``: exact for engine dimension <= 3, Monte Carlo above.
    samples : int
        Monte Carlo sample size.
    seed : int, numpy.random.Generator or None

    Raises
    ------
    PowercellsError
        For an unknown method, exact volumes above 3-D, or a non-positive sample size.
    """
    depth = tree.depth if depth is None else int(depth)
    if not 0 <= depth <= tree.depth:
        raise PowercellsError(f"depth must lie in 0..{tree.depth}, got {depth}")
    if method not in ("auto", "exact", "monte_carlo"):
        raise PowercellsError(f"unknown volume method {method!r}; choose one of auto, exact, "
                              "monte_carlo")
    k = tree.domain.dim
    if method == "monte_carlo" or (method == "auto" and k > 3):
        return monte_carlo_volumes(tree, depth, samples=samples, seed=seed)
    if k > 3:
        raise PowercellsError(f"exact volumes are implemented for d <= 3, got d = {k}; use "
                              "method='monte_carlo'")
    level = tree.levels[depth]
    if level.polygons is not None:
        vol = level.polygons.area_perimeter()[0]
    elif level.intervals is not None:
        vol = level.intervals[:, 1] - level.intervals[:, 0]
    else:
        vol = np.array([polytope_volume(*tree.halfspaces(depth, i), level.interior_point[i])
                        for i in range(len(level))]) if depth else np.array(
            [polytope_volume(*tree.domain.halfspaces(), tree.domain.chebyshev[0])])
    return Volumes(np.asarray(vol, dtype=np.float64), np.zeros(len(level)), True)


def monte_carlo_volumes(tree, depth: int | None = None, *, samples: int = 100_000,
                        seed=None) -> Volumes:
    """Monte Carlo volumes of the nodes at ``depth``: uniform points in the domain's bounding
    box, each located by its code path.

    The estimate of a node is ``vol(box) * n_i / N`` with standard error
    ``vol(box) * sqrt(p_i (1 - p_i) / N)``, ``p_i = n_i / N``; points outside the domain count
    in ``N``. The same points serve every depth, so children's estimates sum exactly to their
    parent's (up to points that fall in no node, reported as ``unassigned``).

    Raises
    ------
    PowercellsError
        If ``samples`` is not positive.
    """
    depth = tree.depth if depth is None else int(depth)
    samples = int(samples)
    if samples <= 0:
        raise PowercellsError(f"samples must be positive, got {samples}")
    rng = np.random.default_rng(seed)
    lo, hi = tree.domain.bounds()
    box = float(np.prod(hi - lo))
    counts = np.zeros(len(tree.levels[depth]), dtype=np.int64)
    unassigned = 0
    index = {row.tobytes(): i for i, row in enumerate(tree.path_codes(depth).astype(np.int16))}
    chunk = 50_000
    for start in range(0, samples, chunk):
        T = lo + (hi - lo) * rng.random((min(chunk, samples - start), len(lo)))
        T = T[tree.domain.contains(T)]
        if depth == 0:
            counts[0] += len(T)
            continue
        codes = np.hstack(tree.network.codes(T)[:depth]).astype(np.int16)
        rows, n = np.unique(codes, axis=0, return_counts=True)
        for row, c in zip(rows, n):
            hit = index.get(row.tobytes())
            if hit is None:
                unassigned += int(c)
            else:
                counts[hit] += int(c)
    p = counts / samples
    return Volumes(box * p, box * np.sqrt(p * (1 - p) / samples), False, samples, unassigned)
