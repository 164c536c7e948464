"""The planar mesh of a 2-D subdivision: shared vertices, edges split at T-junctions, the unit
each edge lies on, and leaf adjacency (SPEC §6.2 items 2 and 6).

Leaves are stored as independent polygons, so a vertex shared by several leaves appears once per
leaf, and a vertex of one leaf may lie in the middle of a neighbour's edge (a T-junction: the
neighbour was not cut where this leaf was). The mesh merges vertices closer than a tolerance
(SPEC §8: ``1e-7 x`` the domain's diameter by default), splits every edge at the vertices lying
on it, and pairs the two sides of every interior edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .polygons import Polygons

__all__ = ["PlanarMesh", "planar_mesh"]


@dataclass
class PlanarMesh:
    """Vertices, edges and faces of a tiling of a convex polygon by convex polygons.

    Attributes
    ----------
    vertices : ndarray, shape (V, 2)
    edges : ndarray of int64, shape (E, 2)
        Vertex ids, smaller first.
    edge_faces : ndarray of int64, shape (E, 2)
        The one or two faces (leaves) on the edge; -1 where the edge is on the domain boundary.
    edge_layer, edge_unit : ndarray of int64, shape (E,)
        For an interior edge, the (1-based) layer and the unit whose boundary it lies on: the
        first unit, in code order, whose code differs between its two faces. -1 on the boundary.
    n_faces : int
    """

    vertices: np.ndarray
    edges: np.ndarray
    edge_faces: np.ndarray
    edge_layer: np.ndarray
    edge_unit: np.ndarray
    n_faces: int

    @property
    def euler_characteristic(self) -> int:
        """``V - E + F`` (bounded faces only): 1 for a tiling of a convex polygon, ``1 - h`` when
        the faces leave ``h`` holes (slivers set aside by the engine leave holes)."""
        return len(self.vertices) - len(self.edges) + self.n_faces

    @property
    def boundary_loops(self) -> int:
        """Connected components of the boundary (edges with one face): 1 plus the holes."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        e = self.edges[self.edge_faces[:, 1] < 0]
        if len(e) == 0:
            return 0
        used, inv = np.unique(e, return_inverse=True)
        inv = inv.reshape(-1, 2)
        g = coo_matrix((np.ones(len(inv)), (inv[:, 0], inv[:, 1])), shape=(len(used),) * 2)
        return int(connected_components(g, directed=False)[0])

    def adjacency(self) -> np.ndarray:
        """Pairs ``(a, b)``, ``a < b``, of faces sharing at least one edge, each pair once."""
        inner = self.edge_faces[self.edge_faces[:, 1] >= 0]
        pairs = np.sort(inner, axis=1)
        return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)


def planar_mesh(polys: Polygons, codes: np.ndarray | None = None, widths=None, *,
                tol: float = 1e-9) -> PlanarMesh:
    """Build the mesh of a tiling given as polygons (see the module docstring).

    Parameters
    ----------
    polys : Polygons
        The faces, counter-clockwise.
    codes : ndarray, shape (F, sum of widths), optional
        Full code paths of the faces, to name the unit of every interior edge.
    widths : list of int, optional
        Layer widths, to turn a code column into (layer, unit).
    tol : float
        Vertices closer than this are one vertex; a vertex within this of an edge splits it.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    xy = polys.xy
    n_faces = len(polys)
    # 1. merge coincident vertices
    kd = cKDTree(xy)
    pairs = kd.query_pairs(tol, output_type="ndarray")
    n = len(xy)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    n_ids, label = connected_components(graph, directed=False)
    first = np.full(n_ids, n, dtype=np.int64)
    np.minimum.at(first, label, np.arange(n))
    vertices = xy[first]
    # 2. half-edges of every face, then split at T-junctions
    nxt = polys.next_vertex()
    a, b = label, label[nxt]
    face = polys.owner
    keep = a != b
    a, b, face = a[keep], b[keep], face[keep]
    a, b, face = _split_t_junctions(vertices, a, b, face, tol)
    # 3. pair the half-edges into edges
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = lo * n_ids + hi
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    starts = np.flatnonzero(np.r_[True, key_sorted[1:] != key_sorted[:-1]])
    counts = np.diff(np.r_[starts, len(key_sorted)])
    if np.any(counts > 2):
        raise ValueError("an edge is shared by more than two faces: the polygons overlap")
    edges = np.stack([lo[order][starts], hi[order][starts]], axis=1)
    edge_faces = np.full((len(starts), 2), -1, dtype=np.int64)
    edge_faces[:, 0] = face[order][starts]
    two = counts == 2
    edge_faces[two, 1] = face[order][starts[two] + 1]
    # drop vertices no edge uses (cannot happen for a tiling; keeps V honest if it did)
    used = np.unique(edges)
    remap = np.full(n_ids, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    edges = remap[edges]
    vertices = vertices[used]
    layer = np.full(len(edges), -1, dtype=np.int64)
    unit = np.full(len(edges), -1, dtype=np.int64)
    if codes is not None and two.any():
        ca, cb = codes[edge_faces[two, 0]], codes[edge_faces[two, 1]]
        differ = ca != cb
        col = np.argmax(differ, axis=1)
        has = differ.any(axis=1)
        bounds = np.cumsum([0] + list(widths if widths is not None else [codes.shape[1]]))
        lay = np.searchsorted(bounds, col, side="right") - 1
        idx = np.flatnonzero(two)
        layer[idx[has]] = lay[has] + 1
        unit[idx[has]] = (col - bounds[lay])[has]
    return PlanarMesh(vertices, edges, edge_faces, layer, unit, n_faces)


def _split_t_junctions(vertices, a, b, face, tol):
    """Split every half-edge (a -> b) at the vertices lying strictly inside it."""
    from scipy.spatial import cKDTree

    kd = cKDTree(vertices)
    pa, pb = vertices[a], vertices[b]
    mid = (pa + pb) / 2
    half = np.hypot(*(pb - pa).T) / 2
    hits = kd.query_ball_point(mid, half + tol)
    lens = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
    if lens.sum() == 0:
        return a, b, face
    edge = np.repeat(np.arange(len(a)), lens)
    cand = np.fromiter((v for h in hits for v in h), dtype=np.int64, count=int(lens.sum()))
    inner = (cand != a[edge]) & (cand != b[edge])
    edge, cand = edge[inner], cand[inner]
    d = pb[edge] - pa[edge]
    length2 = np.einsum("ij,ij->i", d, d)
    rel = vertices[cand] - pa[edge]
    t = np.einsum("ij,ij->i", rel, d) / length2
    off = np.abs(rel[:, 0] * d[:, 1] - rel[:, 1] * d[:, 0]) / np.sqrt(length2)
    on = (off <= tol) & (t > 0) & (t < 1)
    edge, cand, t = edge[on], cand[on], t[on]
    if edge.size == 0:
        return a, b, face
    # chain every split edge through its inner vertices in order of t
    order = np.lexsort((t, edge))
    edge, cand = edge[order], cand[order]
    split = np.zeros(len(a), dtype=bool)
    split[edge] = True
    new_a, new_b, new_f = [a[~split]], [b[~split]], [face[~split]]
    # for each split edge: a, c1, c2, ..., b
    first = np.flatnonzero(np.r_[True, edge[1:] != edge[:-1]])
    last = np.r_[first[1:], len(edge)] - 1
    e_first = edge[first]
    new_a.append(a[e_first])
    new_b.append(cand[first])
    new_f.append(face[e_first])
    chain = np.ones(len(edge), dtype=bool)
    chain[last] = False
    idx = np.flatnonzero(chain)
    new_a.append(cand[idx])
    new_b.append(cand[idx + 1])
    new_f.append(face[edge[idx]])
    e_last = edge[last]
    new_a.append(cand[last])
    new_b.append(b[e_last])
    new_f.append(face[e_last])
    return np.concatenate(new_a), np.concatenate(new_b), np.concatenate(new_f)
