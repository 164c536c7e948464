"""Bend angles where a layer's boundary crosses an earlier boundary, in 2-D (SPEC §4).

For a target unit ``k`` of layer ``l`` and two depth-``(l-1)`` regions sharing an edge of the
mesh (the edge lies on unit ``j`` of an earlier layer), unit ``k``'s boundary has a piece in each
region with normals ``n = grad h_k`` on either side (the same continuous ``h_k``, so consistently
oriented). Where ``h_k`` vanishes on the shared edge the two pieces meet at a ridge and bend by

    bend_oriented = arccos(<n, n'> / (|n| |n'|))  in [0, pi]      (0: no fold)
    bend_unsigned = arccos(|<n, n'>| / (|n| |n'|)) in [0, pi/2]   (the paper's form)

A target unit that is constant on one side (``n = 0``) has no piece there and no ridge. A ridge
through a mesh vertex (where several edges meet) is not reported: the edges meeting there are
not a single facet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Bends", "planar_bends"]


@dataclass
class Bends:
    """One row per ridge: the two regions (indices in ``tree.levels[layer - 1]``), the unit the
    shared edge lies on (crossing), the unit whose boundary bends (target), the ridge point and
    both angles (radians)."""

    region_a: np.ndarray
    region_b: np.ndarray
    crossing_layer: np.ndarray
    crossing_unit: np.ndarray
    target_layer: np.ndarray
    target_unit: np.ndarray
    point: np.ndarray
    normal_a: np.ndarray
    normal_b: np.ndarray
    bend_oriented: np.ndarray
    bend_unsigned: np.ndarray

    def __len__(self) -> int:
        return len(self.region_a)


def planar_bends(tree, layer: int, eps: float | None = None) -> Bends:
    """The bends of layer ``layer``'s switch units across the edges between depth
    ``layer - 1`` regions of a 2-D tree (``layer >= 2``; ReLU-type target layers)."""
    if not 2 <= layer <= tree.depth:
        raise ValueError(f"bends need a layer between 2 and {tree.depth}, got {layer}")
    target = tree.network.layers[layer - 1]
    if not target.is_switch:
        raise ValueError(f"{target.name}: bends are computed for ReLU-type layers")
    eps = tree.tolerances.empty if eps is None else eps
    depth = layer - 1
    mesh = tree.mesh(depth)
    inner = np.flatnonzero(mesh.edge_faces[:, 1] >= 0)
    fa, fb = mesh.edge_faces[inner, 0], mesh.edge_faces[inner, 1]
    A, B = tree.affine_maps(depth)                       # (n, D, 2), (n, D)
    W, b = target.switch_W, target.switch_b
    Na = np.einsum("kd,edj->ekj", W, A[fa])               # normals on either side: (E, K, 2)
    Nb = np.einsum("kd,edj->ekj", W, A[fb])
    ca = B[fa] @ W.T + b
    p, q = mesh.vertices[mesh.edges[inner, 0]], mesh.vertices[mesh.edges[inner, 1]]
    # h_k at both ends of the edge (continuous across it: either side's map will do)
    hp = np.einsum("ekj,ej->ek", Na, p) + ca
    hq = np.einsum("ekj,ej->ek", Na, q) + ca
    norm_a = np.linalg.norm(Na, axis=2)
    norm_b = np.linalg.norm(Nb, axis=2)
    live = (norm_a > 0) & (norm_b > 0)
    scale = np.where(live, norm_a, 1.0)
    sp, sq = hp / scale, hq / scale                       # signed distances to unit k's line
    ridge = live & (((sp > eps) & (sq < -eps)) | ((sp < -eps) & (sq > eps)))
    e, k = np.nonzero(ridge)
    t = sp[e, k] / (sp[e, k] - sq[e, k])
    point = p[e] + t[:, None] * (q[e] - p[e])
    na, nb = Na[e, k], Nb[e, k]
    cos = np.einsum("ij,ij->i", na, nb) / (norm_a[e, k] * norm_b[e, k])
    cos = np.clip(cos, -1.0, 1.0)
    return Bends(region_a=fa[e], region_b=fb[e],
                 crossing_layer=mesh.edge_layer[inner][e], crossing_unit=mesh.edge_unit[inner][e],
                 target_layer=np.full(len(e), layer), target_unit=k, point=point,
                 normal_a=na, normal_b=nb, bend_oriented=np.arccos(cos),
                 bend_unsigned=np.arccos(np.abs(cos)))
