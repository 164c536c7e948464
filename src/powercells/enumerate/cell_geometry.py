"""Cell geometry rebuilt from a tree's codes: the polygons of a 2-D tree, the intervals of a 1-D
tree, whichever engine built it.

The planar and interval engines keep their cells' geometry as they split; the other engines keep
none. A node is its parent's cell cut by its layer's coded rows (the pull-back of
:mod:`.pullback`), so a level's cells are rebuilt from the previous level's, one row at a time,
all nodes at once.
"""

from __future__ import annotations

import numpy as np

from ..errors import GeometryError
from ..geometry.polygons import Polygons, polygon_from_halfspaces
from .pullback import coded_rows, pull_back

__all__ = ["rebuilt_intervals", "rebuilt_polygons"]


def _level_rows(tree, layer: int):
    """The rows ``G t <= g`` layer ``layer`` adds to each node of that depth (constant units
    give no row: ``G = 0``, ``g = 1``)."""
    level = tree.levels[layer]
    A, B = tree.affine_maps(layer - 1, index=level.parent)
    G, g, _, constant = coded_rows(pull_back(tree.network.layers[layer - 1], A, B,
                                             tree.tolerances.zero), level.code)
    G = np.where(constant[..., None], 0.0, G)
    return G, np.where(constant, 1.0, g)


def rebuilt_polygons(tree, layer: int) -> Polygons:
    """The polygons of level ``layer`` of a 2-D tree, from the domain and the codes.

    Raises
    ------
    GeometryError
        If a node's polygon comes out empty (the codes and the tolerances disagree).
    """
    eps = tree.tolerances.empty
    if layer == 0:
        H, h = tree.domain.halfspaces()
        lo, hi = tree.domain.bounds()
        pad = 1e-9 * max(1.0, float(np.max(hi - lo)))
        return polygon_from_halfspaces(H, h, lo - pad, hi + pad, eps)
    level = tree.levels[layer]
    P = tree.polygons(layer - 1).take(level.parent)
    G, g = _level_rows(tree, layer)
    n = len(level)
    for j in range(G.shape[1]):
        owner = P.owner
        s = g[owner, j] - np.einsum("vk,vk->v", G[owner, j], P.xy)
        P, src = P.clip(s, eps)
        if len(src) != n:
            raise GeometryError(f"level {layer}: {n - len(src)} cells came out empty when their "
                                "polygons were rebuilt from the codes")
        P = P.take(np.argsort(src, kind="stable"))
    return P


def rebuilt_intervals(tree, layer: int) -> np.ndarray:
    """The intervals ``(n, 2)`` of level ``layer`` of a 1-D tree, from the domain and the codes.

    Raises
    ------
    GeometryError
        If a node's interval comes out empty.
    """
    if layer == 0:
        lo, hi = tree.domain.bounds()
        return np.array([[float(lo[0]), float(hi[0])]])
    level = tree.levels[layer]
    parent = tree.intervals_array(layer - 1)[level.parent]
    G, g = _level_rows(tree, layer)
    G, lo, hi = G[..., 0], parent[:, 0].copy(), parent[:, 1].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = g / G
    upper = np.where(G > 0, bound, np.inf).min(axis=1, initial=np.inf)
    lower = np.where(G < 0, bound, -np.inf).max(axis=1, initial=-np.inf)
    lo, hi = np.maximum(lo, lower), np.minimum(hi, upper)
    if np.any(hi - lo <= 2 * tree.tolerances.empty):
        raise GeometryError(f"level {layer}: cells came out empty when their intervals were "
                            "rebuilt from the codes")
    return np.stack([lo, hi], axis=1)
