"""Exact volumes of low-dimensional regions (SPEC §5.4)."""

from __future__ import annotations

import numpy as np

from ..errors import PowercellsError

__all__ = ["polytope_volume"]


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
