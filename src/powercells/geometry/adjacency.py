"""Facet adjacency between the regions of one depth, in any dimension (SPEC §6.2 item 6).

Two regions of depth ``l`` are *adjacent* when their closures share a ``(d-1)``-dimensional
facet: the common part of their boundaries, a convex polytope in one hyperplane, has a relative
inradius (the radius of the largest ``(d-1)``-ball inside it, within its hyperplane) above the
region tolerance tau. Each adjacent pair is reported with the hyperplane, a witness point (the
centre of that ball), its radius, and every unit whose code differs between the two regions:
the facet lies on each of their boundaries (several units when neurons are duplicated or
scaled duplicates of each other). Pairs whose common boundary has a relative inradius between
the empty and the region tolerances are reported apart as *undecided*, never dropped.

How it is computed (``method="lp"``, any dimension), level by level from the root:

* **Siblings** (same parent, separated by a layer-``l`` facet). Inside the parent, the codes on
  the two sides of a facet differ exactly in units whose pulled-back boundary contains it, so
  those units' hyperplanes coincide. Units are grouped per parent into classes of coincident
  hyperplanes; siblings whose codes differ within one class only are candidates.
* **Inherited** (children of two adjacent parents). A common facet of the children lies in the
  parents' facet ``F``; the layer-``l`` piece values are continuous across ``F``, so the two
  children's codes agree on every unit except those whose pieces tie identically on ``F``.
  Children of the two parents are candidates when their codes agree on the other units.
* Every candidate is decided by one LP: the Chebyshev ball of the union of both regions' rows
  inside the facet's hyperplane (SPEC §5.3, §5.5), its radius recomputed from the centre.

``method="mesh"`` reads the same pairs off the planar mesh of a 2-D tree (shared edges, split at
T-junctions): the common facet of a pair is the union of its shared mesh edges, a segment whose
half-length is its relative inradius, classified with the same tolerances as the LP method
(facet above the region tolerance, undecided in ``(empty, region]``). The mesh merges vertices
closer than half the region tolerance, so a shared edge shorter than that disappears from it;
wherever merged vertex copies lie farther apart than the empty tolerance, every pair of faces
around the merged vertex that the mesh does not pair is decided by the facet LP instead, so such
a pair is reported (as undecided) rather than lost.

Tolerances all come from ``tree.tolerances``: ``region`` and ``empty`` classify facets;
``zero`` (relative to the terms that produced it) says when a pulled-back row or gradient
vanishes; a row counts as parallel to a hyperplane when it tilts by at most ``region`` across
the domain's diameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..enumerate.pullback import coded_rows, item_index, pull_back
from ..errors import GeometryError, PowercellsError

__all__ = ["ADJACENCY_METHODS", "Adjacency", "facet_adjacency"]

#: Methods accepted by ``facet_adjacency(method=...)``.
ADJACENCY_METHODS = ("auto", "lp", "mesh")


@dataclass
class Adjacency:
    """Adjacent pairs of regions of one depth (see the module docstring).

    Attributes
    ----------
    layer : int
        The regions are ``tree.levels[layer]``.
    region_a, region_b : ndarray of int64, shape (P,)
        Indices in ``tree.levels[layer]``, ``region_a < region_b``.
    normal : ndarray, shape (P, k)
        Unit normal of the facet's hyperplane, pointing from ``region_a`` into ``region_b``.
    offset : ndarray, shape (P,)
        The hyperplane is ``normal @ t == offset`` (engine coordinates).
    center : ndarray, shape (P, k)
        A point of the facet: the centre of the largest ``(d-1)``-ball inside it.
    radius : ndarray, shape (P,)
        That ball's radius, the facet's relative inradius (``inf`` for the points that are the
        facets of a 1-D domain).
    unit_pair, layer, unit : ndarray of int64, shape (U,)
        One row per (pair, unit whose code differs across the facet): the pair's row, the
        1-based layer and the unit.
    undecided : ndarray of int64, shape (Q, 2)
        Pairs whose common boundary has a relative inradius in ``(empty, region]``: too thin to
        call a facet under the region tolerance, too wide to call empty. Reported, not counted.
    """

    depth: int
    region_a: np.ndarray
    region_b: np.ndarray
    normal: np.ndarray
    offset: np.ndarray
    center: np.ndarray
    radius: np.ndarray
    unit_pair: np.ndarray
    layer: np.ndarray
    unit: np.ndarray
    undecided: np.ndarray

    def __len__(self) -> int:
        return len(self.region_a)

    @property
    def pairs(self) -> np.ndarray:
        """``(P, 2)``: ``[region_a, region_b]`` per row."""
        return np.stack([self.region_a, self.region_b], axis=1)

    def units_of(self, i: int) -> list[tuple[int, int]]:
        """``[(layer, unit), ...]`` whose boundary carries the facet of pair ``i``."""
        rows = np.flatnonzero(self.unit_pair == i)
        return [(int(self.layer[r]), int(self.unit[r])) for r in rows]

    def table(self) -> dict:
        """Columns ``region_a, region_b, layer, unit``: one row per (pair, unit), as arrays of
        indices in ``tree.levels[layer]``."""
        return {"region_a": self.region_a[self.unit_pair], "region_b": self.region_b[self.unit_pair],
                "layer": self.layer.copy(), "unit": self.unit.copy()}


def facet_adjacency(tree, layer: int | None = None, *, method: str = "auto", lp=None) -> Adjacency:
    """The facet adjacency of the regions at ``layer`` (default: the leaves).

    Parameters
    ----------
    tree : SubdivisionTree
    layer : int, optional
        ``1 .. tree.depth``; default ``tree.depth``.
    method : {"auto", "lp", "mesh"}
        ``"mesh"``: from the planar mesh (2-D trees of the planar engine); ``"lp"``: one LP per
        candidate pair, any dimension; ``"auto"``: the mesh when the tree keeps polygons.
    lp : str or LPBackend, optional
        LP backend of the ``"lp"`` method and of the mesh's collapsed-edge checks (default
        HiGHS).

    Returns
    -------
    Adjacency

    Raises
    ------
    GeometryError
        For an unknown method, a depth outside the tree, a mesh requested of a tree without
        polygons, or a partial tree (a budget stopped its enumeration: regions are missing).
    """
    layer = tree.depth if layer is None else int(layer)
    if not 1 <= layer <= tree.depth:
        raise GeometryError(f"adjacency needs a layer between 1 and {tree.depth}, got {layer}")
    if method not in ADJACENCY_METHODS:
        raise GeometryError(f"unknown adjacency method {method!r}; choose one of "
                              f"{', '.join(ADJACENCY_METHODS)}")
    if tree.partial:
        raise GeometryError("the tree is partial (a budget stopped the enumeration): "
                            "adjacency needs every region")
    has_polygons = tree.levels[layer].polygons is not None
    if method == "mesh" or (method == "auto" and has_polygons):
        if not has_polygons:
            raise GeometryError(f"method 'mesh' needs a 2-D tree of the planar engine; this one "
                                f"was built by {tree.engine!r}")
        return _mesh_adjacency(tree, layer, lp)
    return _LPAdjacency(tree, lp).run(layer)


# ------------------------------------------------------------------------------- shared helpers
def _differing_units(tree, depth, a, b):
    """``(pair row, layer, unit)`` for every unit whose code differs between a[i] and b[i]."""
    codes = tree.path_codes(depth)
    differ = codes[a] != codes[b]
    row, col = np.nonzero(differ)
    bounds = np.cumsum([0] + list(tree.network.widths[:depth]))
    lay = np.searchsorted(bounds, col, side="right") - 1
    return row.astype(np.int64), (lay + 1).astype(np.int64), (col - bounds[lay]).astype(np.int64)


def _finish(tree, depth, a, b, normal, offset, center, radius, undecided) -> Adjacency:
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    swap = a > b
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    normal = np.where(swap[:, None], -normal, normal)
    offset = np.where(swap, -offset, offset)
    order = np.lexsort((b, a))
    a, b, normal, offset = a[order], b[order], normal[order], offset[order]
    center, radius = center[order], radius[order]
    row, lay, unit = _differing_units(tree, depth, a, b)
    und = np.asarray(undecided, dtype=np.int64).reshape(-1, 2)
    und = np.unique(np.sort(und, axis=1), axis=0) if len(und) else und
    return Adjacency(depth, a, b, normal, offset, center, radius, row, lay, unit, und)


# ------------------------------------------------------------------------------- planar mesh
def _mesh_adjacency(tree, depth, lp=None) -> Adjacency:
    tol = tree.tolerances
    merge = 0.5 * tol.region
    mesh = tree.mesh(depth, tol=merge)
    inner = np.flatnonzero(mesh.edge_faces[:, 1] >= 0)
    k = 2
    pairs = np.sort(mesh.edge_faces[inner], axis=1)
    if len(inner):
        pairs, pair_of_edge = np.unique(pairs, axis=0, return_inverse=True)
        pair_of_edge = pair_of_edge.reshape(-1)
        p = mesh.vertices[mesh.edges[inner, 0]]
        q = mesh.vertices[mesh.edges[inner, 1]]
        # the direction of each pair's facet: its longest shared edge (collinear pieces), one
        # index per pair (the last of each group in (pair, length) order)
        length = np.hypot(*(q - p).T)
        order = np.lexsort((length, pair_of_edge))
        group = pair_of_edge[order]
        last = np.r_[group[1:] != group[:-1], True]
        longest = np.empty(len(pairs), dtype=np.int64)
        longest[group[last]] = order[last]
        d = (q - p)[longest] / length[longest][:, None]
        # extent of the union of the pair's edges along that direction
        base = p[longest]
        tp = np.einsum("ij,ij->i", p - base[pair_of_edge], d[pair_of_edge])
        tq = np.einsum("ij,ij->i", q - base[pair_of_edge], d[pair_of_edge])
        lo = np.full(len(pairs), np.inf)
        hi = np.full(len(pairs), -np.inf)
        np.minimum.at(lo, pair_of_edge, np.minimum(tp, tq))
        np.maximum.at(hi, pair_of_edge, np.maximum(tp, tq))
        center = base + 0.5 * (lo + hi)[:, None] * d
        radius = 0.5 * (hi - lo)
        normal = np.stack([d[:, 1], -d[:, 0]], axis=1)
        offset = np.einsum("ij,ij->i", normal, center)
        # orient from a into b: a's interior point is on the negative side
        ip = tree.levels[depth].interior_point
        flip = np.einsum("ij,ij->i", normal, ip[pairs[:, 0]]) > offset
        normal = np.where(flip[:, None], -normal, normal)
        offset = np.where(flip, -offset, offset)
    else:
        pairs = np.empty((0, 2), np.int64)
        normal, offset = np.empty((0, k)), np.empty(0)
        center, radius = np.empty((0, k)), np.empty(0)
    # the same rule as the LP method: a facet above the region tolerance, undecided above empty
    facet = radius > tol.region
    undecided = [pairs[(radius > tol.empty) & ~facet]]
    a, b = [pairs[facet, 0]], [pairs[facet, 1]]
    normals, offsets, centers, radii = [normal[facet]], [offset[facet]], [center[facet]], \
        [radius[facet]]
    # shared edges shorter than the merging distance vanish from the mesh: decide the pairs
    # around every merged vertex whose copies lie farther apart than the empty tolerance
    extra = _merged_candidates(tree, depth, mesh, merge, pairs)
    if len(extra):
        solver = _LPAdjacency(tree, lp)
        planes = [solver._plane_between(depth, u, v) for u, v in extra]
        en = np.array([pl[0] for pl in planes]).reshape(-1, k)
        eo = np.array([pl[1] for pl in planes])
        ok = np.all(np.isfinite(en), axis=1) & np.isfinite(eo)
        extra, en, eo = extra[ok], en[ok], eo[ok]
        keep, cen, rad, und = solver.decide(depth, extra[:, 0], extra[:, 1], en, eo)
        a.append(extra[keep, 0])
        b.append(extra[keep, 1])
        normals.append(en[keep])
        offsets.append(eo[keep])
        centers.append(cen)
        radii.append(rad)
        undecided.append(np.asarray(und, dtype=np.int64).reshape(-1, 2))
    return _finish(tree, depth, np.concatenate(a), np.concatenate(b), np.concatenate(normals),
                   np.concatenate(offsets), np.concatenate(centers), np.concatenate(radii),
                   np.concatenate(undecided))


def _merged_candidates(tree, depth, mesh, merge, known) -> np.ndarray:
    """Pairs of faces around a merged mesh vertex whose original copies spread farther than the
    empty tolerance (a shared edge up to twice that long may have collapsed into the vertex),
    minus the pairs the mesh already has: ``(m, 2)``, smaller index first."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    polys = tree.polygons(depth)
    xy = polys.xy
    close = cKDTree(xy).query_pairs(merge, output_type="ndarray")
    if len(close) == 0:
        return np.empty((0, 2), np.int64)
    n = len(xy)
    graph = coo_matrix((np.ones(len(close)), (close[:, 0], close[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    first = np.full(label.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, label, np.arange(n))
    spread = np.zeros(len(first))
    np.maximum.at(spread, label, np.linalg.norm(xy - xy[first[label]], axis=1))
    wide = np.flatnonzero(spread > tree.tolerances.empty)
    if len(wide) == 0:
        return np.empty((0, 2), np.int64)
    known = {(int(u), int(v)) for u, v in known}
    vkd = cKDTree(mesh.vertices)
    out = set()
    for c in wide:
        faces = set(polys.owner[label == c].tolist())
        for v in vkd.query_ball_point(xy[first[c]], merge):
            on = (mesh.edges[:, 0] == v) | (mesh.edges[:, 1] == v)
            faces.update(int(f) for f in mesh.edge_faces[on].reshape(-1) if f >= 0)
        faces = sorted(faces)
        for i, u in enumerate(faces):
            for v in faces[i + 1:]:
                if (u, v) not in known:
                    out.add((u, v))
    return np.array(sorted(out), dtype=np.int64).reshape(-1, 2)


# ------------------------------------------------------------------------------- LP method
def _complement(n: np.ndarray) -> np.ndarray:
    """An orthonormal basis ``(k, k-1)`` of the hyperplane orthogonal to the unit vector n."""
    q, _ = np.linalg.qr(n[:, None], mode="complete")
    return q[:, 1:]


class _LPAdjacency:
    def __init__(self, tree, lp):
        from ..lp import get_backend

        self.tree = tree
        self.net = tree.network
        self.tol = tree.tolerances
        self.backend = get_backend(lp)
        self.H0, self.h0 = tree.domain.halfspaces()
        self.diam = tree.domain.diameter
        self.k = tree.domain.dim
        self._maps = {}
        self._rows = {}

    # -------------------------------------------------------------- per-level data
    def maps(self, depth):
        if depth not in self._maps:
            self._maps[depth] = self.tree.affine_maps(depth)
        return self._maps[depth]

    def level_rows(self, depth):
        """The rows layer ``layer`` adds to every node of that depth."""
        if depth not in self._rows:
            level = self.tree.levels[depth]
            A, B = self.maps(depth - 1)
            planes = pull_back(self.net.layers[depth - 1], A[level.parent], B[level.parent],
                               self.tol.zero)
            G, g, _, constant = coded_rows(planes, level.code)
            self._rows[depth] = G, g, constant
        return self._rows[depth]

    def rows(self, depth, index):
        """The normalised H-representation of node ``index`` at ``layer``."""
        Gs, gs = [self.H0], [self.h0]
        constant = [np.zeros(len(self.h0), dtype=bool)]
        i = index
        for d in range(depth, 0, -1):
            G, g, const = self.level_rows(d)
            Gs.append(G[i])
            gs.append(g[i])
            constant.append(const[i])
            i = self.tree.levels[d].parent[i]
        G = np.vstack(Gs)
        g = np.concatenate(gs)
        norms = np.linalg.norm(G, axis=1)
        # a constant unit (its gradient cancels relative to its terms) is no constraint
        keep = ~np.concatenate(constant) & (norms > 0)
        return G[keep] / norms[keep, None], g[keep] / norms[keep]

    def parallel(self, sin):
        """Whether a hyperplane at angle ``arcsin(sin)`` to another tilts away from it by at
        most the region tolerance across the domain."""
        return sin * self.diam <= self.tol.region

    # -------------------------------------------------------------- the facet LP
    def facet(self, G, g, n, c):
        """Largest ball of ``{G t <= g}`` inside the hyperplane ``n t = c``: ``(center,
        radius)``; radius ``-inf`` when the closures do not meet on it."""
        x0 = c * n
        rhs = g - G @ x0
        if self.k == 1:
            ok = np.all(rhs >= -self.tol.region)
            return x0, (np.inf if ok else -np.inf)
        N = _complement(n)
        P = G @ N
        norms = np.linalg.norm(P, axis=1)
        flat = self.parallel(norms)
        # rows parallel to the hyperplane: the facet's own rows (and coincident duplicates)
        if np.any(rhs[flat] < -self.tol.region):
            return x0, -np.inf
        P, rhs, norms = P[~flat], rhs[~flat], norms[~flat]
        ball = self.backend.chebyshev(P / norms[:, None], rhs / norms, cap=self.diam)
        if not np.isfinite(ball.radius):
            return x0, -np.inf
        return x0 + N @ ball.center, float(ball.radius)

    def decide(self, depth, a, b, normal, offset):
        """Run the facet LP for candidate pairs; split them into facets and undecided pairs."""
        keep, centers, radii, undecided = [], [], [], []
        for i in range(len(a)):
            Ga, ga = self.rows(depth, a[i])
            Gb, gb = self.rows(depth, b[i])
            center, radius = self.facet(np.vstack([Ga, Gb]), np.concatenate([ga, gb]),
                                        normal[i], offset[i])
            if radius > self.tol.region:
                keep.append(i)
                centers.append(center)
                radii.append(radius)
            elif radius > self.tol.empty:
                undecided.append((a[i], b[i]))
        keep = np.array(keep, dtype=np.int64)
        return (keep, np.array(centers).reshape(-1, self.k), np.array(radii),
                undecided)

    # -------------------------------------------------------------- candidates
    def unit_classes(self, depth):
        """Per parent (depth-1 node), the label of each layer-``layer`` unit's class of
        coincident hyperplanes: the smallest unit of the class. ``(n_parents, K)``."""
        layer = self.net.layers[depth - 1]
        A, B = self.maps(depth - 1)
        n, K = len(A), layer.out_dim
        label = np.broadcast_to(np.arange(K), (n, K)).copy()
        if K == 1:
            return label
        step = max(1, 2_000_000 // max(1, (K * layer.max_pieces ** 2) ** 2))
        from scipy.sparse.csgraph import connected_components

        center = self.tree.domain.chebyshev[0]
        for lo in range(0, n, step):
            planes = pull_back(layer, A[lo:lo + step], B[lo:lo + step], self.tol.zero)
            G, g, unit, norm = planes.grad, planes.offset, planes.unit, planes.norm
            live = ~planes.constant & (norm > 0)
            safe = np.where(live, norm, 1.0)
            Gn, gn = G / safe[..., None], (g + G @ center) / safe    # offsets at the centre
            cos = np.einsum("nik,njk->nij", Gn, Gn)
            sign = np.where(cos < 0, -1.0, 1.0)
            # coincident within the region tolerance across the domain: the normals agree up to
            # sign (sin of the angle ~ |Gn_i - s Gn_j|) and the offsets at the centre agree
            # (screened on cos first; 1 - |cos| ~ sin^2 / 2 loses the small angles to rounding)
            screen = 1 - np.abs(cos) <= (self.tol.region / self.diam) ** 2 + 1e-9
            pi, ii, jj = np.nonzero(screen)
            sin = np.linalg.norm(Gn[pi, ii] - sign[pi, ii, jj, None] * Gn[pi, jj], axis=1)
            same = np.zeros_like(screen)
            same[pi, ii, jj] = self.parallel(sin) & (
                np.abs(gn[pi, ii] - sign[pi, ii, jj] * gn[pi, jj]) <= self.tol.region)
            same &= live[:, :, None] & live[:, None, :]
            same &= unit[None, :, None] != unit[None, None, :]
            for p in np.flatnonzero(same.any(axis=(1, 2))):
                i, j = np.nonzero(same[p])
                adj = np.zeros((K, K), dtype=bool)
                adj[unit[i], unit[j]] = True
                _, comp = connected_components(adj, directed=False)
                first = np.full(K, K)
                np.minimum.at(first, comp, np.arange(K))
                label[lo + p] = first[comp]
        return label

    def sibling_candidates(self, depth):
        level = self.tree.levels[depth]
        label = self.unit_classes(depth)
        K = label.shape[1]
        code = level.code.astype(np.int64)
        parent = level.parent
        out = []
        for j in range(K):
            rep = label[parent, j] == j
            if not rep.any():
                continue
            idx = np.flatnonzero(rep)
            mask = label[parent[idx]] == j
            masked = np.where(mask, -1, code[idx])
            keys = np.hstack([parent[idx, None], masked])
            out.append(idx[_pairs_within(keys)])
        if not out:
            return np.empty((0, 2), dtype=np.int64)
        pairs = np.concatenate(out)
        return np.unique(np.sort(pairs, axis=1), axis=0) if len(pairs) else pairs

    def sibling_planes(self, depth, a, b):
        """The hyperplane between siblings a and b (the first unit whose code differs),
        oriented from a into b."""
        layer = self.net.layers[depth - 1]
        level = self.tree.levels[depth]
        A, B = self.maps(depth - 1)
        p = level.parent[a]
        ca, cb = level.code[a].astype(np.intp), level.code[b].astype(np.intp)
        j = np.argmax(ca != cb, axis=1)
        ra, rb = ca[np.arange(len(a)), j], cb[np.arange(len(a)), j]
        # a lies where piece rb <= piece ra: the item of the pair, turned to point into b
        item = item_index(layer)[j, np.minimum(ra, rb), np.maximum(ra, rb)]
        planes = pull_back(layer, A[p], B[p], self.tol.zero, select=item[:, None])
        sign = np.where(rb > ra, 1.0, -1.0)
        grad = sign[:, None] * planes.grad[:, 0]
        norm = planes.norm[:, 0]
        return grad / norm[:, None], -sign * planes.offset[:, 0] / norm

    def inherited_candidates(self, depth, pa, pb, normal, offset):
        """Children pairs of adjacent parents that agree on every unit not tied on the facet."""
        level = self.tree.levels[depth]
        layer = self.net.layers[depth - 1]
        A, B = self.maps(depth - 1)
        starts = np.searchsorted(level.parent, np.arange(len(self.tree.levels[depth - 1]) + 1))
        K = layer.out_dim
        # units with a piece pair that vanishes identically on the facet's hyperplane
        tied = np.zeros((len(pa), K), dtype=bool)
        tol = self.tol
        for side in (pa, pb):
            planes = pull_back(layer, A[side], B[side], tol.zero)
            G, g, unit = planes.grad, planes.offset, planes.unit
            along = np.einsum("nmk,nk->nm", G, normal)
            perp = np.linalg.norm(G - along[..., None] * normal[:, None, :], axis=2)
            value = along * offset[:, None] + g                 # at the facet's foot point
            scale = np.linalg.norm(G, axis=2)
            safe = np.where(scale > 0, scale, 1.0)
            # the piece difference vanishes on the facet's hyperplane (within the region
            # tolerance across the domain), or is identically zero (gradient and constant
            # cancel relative to their terms)
            vanish = (self.parallel(perp / safe) & (np.abs(value) / safe <= tol.region)) | \
                planes.tie
            rows, cols = np.nonzero(vanish)
            tied[rows, unit[cols]] = True
        n_a = starts[pa + 1] - starts[pa]
        n_b = starts[pb + 1] - starts[pb]
        edge = np.concatenate([np.repeat(np.arange(len(pa)), n_a), np.repeat(np.arange(len(pa)), n_b)])
        child = np.concatenate([_ranges(starts[pa], n_a), _ranges(starts[pb], n_b)])
        side = np.concatenate([np.zeros(n_a.sum(), np.int64), np.ones(n_b.sum(), np.int64)])
        masked = np.where(tied[edge], -1, level.code[child].astype(np.int64))
        keys = np.hstack([edge[:, None], masked])
        pairs = _pairs_within(keys)
        cross = side[pairs[:, 0]] != side[pairs[:, 1]]
        pairs = pairs[cross]
        first_is_a = side[pairs[:, 0]] == 0
        ca = np.where(first_is_a, child[pairs[:, 0]], child[pairs[:, 1]])
        cb = np.where(first_is_a, child[pairs[:, 1]], child[pairs[:, 0]])
        e = edge[pairs[:, 0]]
        # both parents uncut: the children's facet is the parents' facet, no LP needed
        copy = (n_a[e] == 1) & (n_b[e] == 1)
        return ca, cb, e, copy

    # -------------------------------------------------------------- the walk
    def run(self, depth) -> Adjacency:
        return self.run_all(depth)[-1]

    def run_all(self, depth) -> list:
        """The adjacency of every depth ``1 .. depth`` (one walk from the root)."""
        tree = self.tree
        levels = []
        k = self.k
        a = np.empty(0, np.int64)
        b = np.empty(0, np.int64)
        normal, offset = np.empty((0, k)), np.empty(0)
        center, radius = np.empty((0, k)), np.empty(0)
        undecided = np.empty((0, 2), np.int64)
        for d in range(1, depth + 1):
            layer = self.net.layers[d - 1]
            level = tree.levels[d]
            if layer.kind == "identity" or layer.max_pieces == 1:
                # one child per node: the pairs carry over unchanged
                child = np.empty(len(tree.levels[d - 1]), np.int64)
                child[level.parent] = np.arange(len(level))
                a, b = child[a], child[b]
                undecided = child[undecided]
                levels.append(_finish(tree, d, a, b, normal, offset, center, radius, undecided))
                continue
            # inherited pairs (from adjacent and undecided parent pairs)
            pa = np.concatenate([a, undecided[:, 0]])
            pb = np.concatenate([b, undecided[:, 1]])
            pn = np.concatenate([normal, np.zeros((len(undecided), k))])
            po = np.concatenate([offset, np.zeros(len(undecided))])
            known = np.arange(len(a))
            if len(undecided):
                # an undecided parent pair has no stored hyperplane: take the first unit that
                # differs, as for siblings of their common ancestor (rare, so done one by one)
                for i, (u, v) in enumerate(undecided):
                    pn[len(a) + i], po[len(a) + i] = self._plane_between(d - 1, u, v)
            ca, cb, e, copy = self.inherited_candidates(d, pa, pb, pn, po)
            copied = copy & (e < len(known))
            new_a, new_b = [ca[copied]], [cb[copied]]
            new_n, new_o = [pn[e[copied]]], [po[e[copied]]]
            new_c, new_r = [center[e[copied]]], [radius[e[copied]]]
            rest = ~copied
            keep, cen, rad, und = self.decide(d, ca[rest], cb[rest], pn[e[rest]], po[e[rest]])
            new_a.append(ca[rest][keep])
            new_b.append(cb[rest][keep])
            new_n.append(pn[e[rest]][keep])
            new_o.append(po[e[rest]][keep])
            new_c.append(cen)
            new_r.append(rad)
            und_all = list(und)
            # siblings
            sib = self.sibling_candidates(d)
            if len(sib):
                sn, so = self.sibling_planes(d, sib[:, 0], sib[:, 1])
                keep, cen, rad, und = self.decide(d, sib[:, 0], sib[:, 1], sn, so)
                new_a.append(sib[keep, 0])
                new_b.append(sib[keep, 1])
                new_n.append(sn[keep])
                new_o.append(so[keep])
                new_c.append(cen)
                new_r.append(rad)
                und_all += list(und)
            a, b = np.concatenate(new_a), np.concatenate(new_b)
            normal, offset = np.concatenate(new_n), np.concatenate(new_o)
            center, radius = np.concatenate(new_c), np.concatenate(new_r)
            undecided = np.array(und_all, dtype=np.int64).reshape(-1, 2)
            levels.append(_finish(tree, d, a, b, normal, offset, center, radius, undecided))
        return levels

    def _plane_between(self, depth, u, v):
        """The hyperplane of the first unit whose code differs between nodes u and v."""
        path_u = self.tree.code_path(depth, int(u))
        path_v = self.tree.code_path(depth, int(v))
        for d, (cu, cv) in enumerate(zip(path_u, path_v), start=1):
            if np.any(cu != cv):
                anc_u = self.tree.ancestors(depth, int(u))[d - 1]
                layer = self.net.layers[d - 1]
                A, B = self.maps(d - 1)
                p = self.tree.levels[d].parent[anc_u]
                j = int(np.argmax(cu != cv))
                dA = layer.A[j, int(cv[j])] - layer.A[j, int(cu[j])]
                dB = layer.B[j, int(cv[j])] - layer.B[j, int(cu[j])]
                grad, const = dA @ A[p], dA @ B[p] + dB
                norm = np.linalg.norm(grad)
                if not norm > 0:
                    return np.full(len(grad), np.nan), np.nan
                return grad / norm, -const / norm
        raise PowercellsError("two nodes with the same code path")  # pragma: no cover


def _ranges(starts, counts):
    """Concatenated ``arange(s, s + c)`` for every (s, c)."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64)
    offsets = np.repeat(starts - np.cumsum(np.r_[0, counts[:-1]]), counts)
    return offsets + np.arange(total)


def _pairs_within(keys: np.ndarray) -> np.ndarray:
    """Every pair ``(i, j)``, ``i < j``, of rows of ``keys`` that are equal."""
    if len(keys) < 2:
        return np.empty((0, 2), dtype=np.int64)
    _, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.reshape(-1)
    order = np.argsort(group, kind="stable")
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, len(g)])
    out = []
    for size in np.unique(sizes[sizes >= 2]):
        first = starts[sizes == size]
        i, j = np.triu_indices(int(size), 1)
        out.append(np.stack([order[first[:, None] + i[None, :]].reshape(-1),
                             order[first[:, None] + j[None, :]].reshape(-1)], axis=1))
    return np.concatenate(out) if out else np.empty((0, 2), dtype=np.int64)


def facet_volumes(tree, adjacency: Adjacency) -> np.ndarray:
    """The ``(d-1)``-volume of every facet of ``adjacency`` (a length in 2-D, an area in 3-D),
    in engine coordinates: the two regions' H-representations restricted to the facet's
    hyperplane, whose vertices (qhull, from the facet's inner ball centre) span it.

    Parameters
    ----------
    tree : SubdivisionTree
    adjacency : Adjacency
        Of ``tree`` (any depth, any dimension >= 2).

    Returns
    -------
    ndarray, shape (P,)
    """
    from scipy.spatial import ConvexHull, HalfspaceIntersection

    k = tree.domain.dim
    depth = adjacency.depth
    out = np.empty(len(adjacency))
    cache: dict = {}

    def rows(i):
        if i not in cache:
            cache[i] = tree.halfspaces(depth, int(i))
        return cache[i]

    for p in range(len(adjacency)):
        n = adjacency.normal[p]
        # an orthonormal basis of the hyperplane: the last k-1 columns of a QR of n
        Q = np.linalg.qr(np.column_stack([n, np.eye(k)]))[0][:, 1:k]
        x0 = adjacency.center[p]
        Ha, ha = rows(adjacency.region_a[p])
        Hb, hb = rows(adjacency.region_b[p])
        H = np.vstack([Ha, Hb])
        h = np.concatenate([ha, hb])
        G, g = H @ Q, h - H @ x0
        # rows along the hyperplane (the facet's own, from both sides) restrict nothing in it
        live = np.linalg.norm(G, axis=1) > 1e-12 * np.linalg.norm(H, axis=1)
        G, g = G[live], g[live]
        if k == 2:
            t = g / G[:, 0]
            out[p] = np.min(t[G[:, 0] > 0]) - np.max(t[G[:, 0] < 0])
            continue
        vertices = HalfspaceIntersection(np.hstack([G, -g[:, None]]), np.zeros(k - 1))
        out[p] = ConvexHull(vertices.intersections).volume
    return out
