"""Batches of convex polygons, vectorised over the batch (the planar engine's geometry).

A batch stores the vertices of every polygon in one ``(n_vertices, 2)`` array, polygon ``i``
owning rows ``start[i]:start[i+1]`` in counter-clockwise order (a CSR layout). Every operation is
a handful of numpy calls over the whole batch, whatever the number of polygons.

Splitting by a line is exact convex clipping: vertices are classified by their signed value with
a tolerance (``|s| <= eps`` is *on* the line and belongs to both sides), the crossing point of an
edge whose ends are strictly on opposite sides is computed once and shared by both pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

__all__ = ["Polygons", "polygon_from_halfspaces"]


@dataclass
class Polygons:
    """Convex polygons in CSR layout.

    Attributes
    ----------
    xy : ndarray, shape (n_vertices, 2)
    start : ndarray of int64, shape (n + 1,)
        Polygon ``i`` has vertices ``xy[start[i]:start[i + 1]]``, counter-clockwise.
    """

    xy: np.ndarray
    start: np.ndarray

    def __len__(self) -> int:
        return len(self.start) - 1

    @classmethod
    def single(cls, xy) -> Polygons:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return cls(xy, np.array([0, len(xy)], dtype=np.int64))

    @classmethod
    def concat(cls, parts: list[Polygons]) -> Polygons:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls(np.empty((0, 2)), np.zeros(1, dtype=np.int64))
        offsets = np.cumsum([0] + [len(p.xy) for p in parts[:-1]])
        start = np.concatenate([parts[0].start[:1]] +
                               [p.start[1:] + o for p, o in zip(parts, offsets)])
        return cls(np.concatenate([p.xy for p in parts]), start)

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.start)

    @property
    def owner(self) -> np.ndarray:
        """The polygon of every vertex."""
        return np.repeat(np.arange(len(self)), self.counts)

    def next_vertex(self) -> np.ndarray:
        """Index of the cyclic successor of every vertex."""
        nxt = np.arange(1, len(self.xy) + 1)
        last = self.start[1:] - 1
        nxt[last] = self.start[:-1]
        return nxt

    def take(self, idx) -> Polygons:
        """The polygons ``idx`` (an index array), in that order."""
        idx = np.asarray(idx, dtype=np.int64)
        counts = self.counts[idx]
        start = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(counts, out=start[1:])
        # vertex gather: for every output vertex, its source row
        src = np.repeat(self.start[idx] - start[:-1], counts) + np.arange(start[-1])
        return Polygons(self.xy[src], start)

    def select(self, mask: np.ndarray, owner: np.ndarray | None = None) -> Polygons:
        """The polygons where ``mask`` is True, in order (cheaper than :meth:`take`); ``owner``
        may pass :attr:`owner` when the caller has it already."""
        owner = self.owner if owner is None else owner
        return Polygons(self.xy[mask[owner]], _starts(self.counts[mask]))

    def vertices(self, i: int) -> np.ndarray:
        return self.xy[self.start[i]:self.start[i + 1]]

    # ------------------------------------------------------------------ measures
    def vertex_mean(self) -> np.ndarray:
        """The mean of every polygon's vertices (an interior point of a non-degenerate one)."""
        owner = self.owner
        n = len(self)
        counts = np.maximum(self.counts, 1)
        return np.stack([np.bincount(owner, self.xy[:, 0], minlength=n) / counts,
                         np.bincount(owner, self.xy[:, 1], minlength=n) / counts], axis=1)

    def area_perimeter(self) -> tuple[np.ndarray, np.ndarray]:
        """Areas (shoelace) and perimeters of every polygon."""
        n = len(self)
        if n == 0:
            return np.empty(0), np.empty(0)
        nxt = self.next_vertex()
        x, y = self.xy[:, 0], self.xy[:, 1]
        owner = self.owner
        # shoelace about each polygon's first vertex: no cancellation far from the origin
        ox = np.repeat(self.xy[self.start[:-1], 0], self.counts)
        oy = np.repeat(self.xy[self.start[:-1], 1], self.counts)
        cross = (x - ox) * (y[nxt] - oy) - (x[nxt] - ox) * (y - oy)
        area = 0.5 * np.bincount(owner, cross, minlength=n)
        edge = np.hypot(x[nxt] - x, y[nxt] - y)
        return area, np.bincount(owner, edge, minlength=n)

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit outward normals ``N`` (n_vertices, 2) and offsets ``h`` of every edge (edge ``g``
        goes from vertex ``g`` to its successor), so that the polygon is ``N x <= h``. Edges of
        zero length get a zero normal and offset 0 (they constrain nothing)."""
        nxt = self.next_vertex()
        d = self.xy[nxt] - self.xy
        length = np.hypot(d[:, 0], d[:, 1])
        ok = length > 0
        N = np.zeros_like(d)
        # counter-clockwise boundary: the outward normal is the edge direction turned clockwise
        N[ok, 0] = d[ok, 1] / length[ok]
        N[ok, 1] = -d[ok, 0] / length[ok]
        h = np.einsum("ij,ij->i", N, self.xy)
        return N, h

    # ------------------------------------------------------------------ clipping
    def split(self, s: np.ndarray, eps: float):
        """Cut every polygon by the zero line of a per-vertex signed value ``s``.

        Parameters
        ----------
        s : ndarray, shape (n_vertices,)
            The value of an affine function at every vertex (its own function per polygon).
        eps : float
            Vertices with ``|s| <= eps`` lie on the line and belong to both sides.

        Returns
        -------
        pieces : Polygons
            The polygons that are not cut (no vertex strictly on one side), then the negative
            pieces of the cut ones, then their positive pieces.
        src : ndarray of int64
            The polygon each piece comes from.
        side : ndarray of int8
            1 for the side ``s >= 0``, 0 for the side ``s <= 0``. An uncut polygon is on side 1
            iff some vertex has ``s > eps`` (so a polygon touching the line from below is on 0).
        """
        n = len(self)
        sigma = np.where(s > eps, 1, np.where(s < -eps, -1, 0)).astype(np.int8)
        owner = self.owner
        has_pos = np.bincount(owner, sigma > 0, minlength=n) > 0
        has_neg = np.bincount(owner, sigma < 0, minlength=n) > 0
        cut = has_pos & has_neg
        whole = np.flatnonzero(~cut)
        if not cut.any():
            return self, np.arange(n, dtype=np.int64), has_pos.astype(np.int8)
        cut_idx = np.flatnonzero(cut)
        sub = self.select(cut, owner)
        vmask = cut[owner]
        ss, sg = s[vmask], sigma[vmask]
        nxt = sub.next_vertex()
        crossing = (sg * sg[nxt]) == -1
        t = np.zeros(len(ss))
        t[crossing] = ss[crossing] / (ss[crossing] - ss[nxt][crossing])
        point = sub.xy + t[:, None] * (sub.xy[nxt] - sub.xy)
        m = len(sub.xy)
        cand = np.empty((2 * m, 2))
        cand[0::2] = sub.xy
        cand[1::2] = point
        sub_owner = sub.owner
        pieces_xy, pieces_count = [], []
        for keep_vertex in (sg <= 0, sg >= 0):
            keep = np.empty(2 * m, dtype=bool)
            keep[0::2] = keep_vertex
            keep[1::2] = crossing
            pieces_xy.append(cand[keep])
            pieces_count.append(np.bincount(sub_owner, keep_vertex, minlength=len(sub)) +
                                np.bincount(sub_owner, crossing, minlength=len(sub)))
        neg = Polygons(pieces_xy[0], _starts(pieces_count[0]))
        pos = Polygons(pieces_xy[1], _starts(pieces_count[1]))
        # uncut polygons first, then the negative and the positive pieces of the cut ones
        out = Polygons.concat([self.select(~cut, owner), neg, pos])
        n_cut = len(cut_idx)
        src = np.concatenate([whole, cut_idx, cut_idx])
        side = np.concatenate([has_pos[whole].astype(np.int8), np.zeros(n_cut, np.int8),
                               np.ones(n_cut, np.int8)])
        return out, src, side

    def clip(self, s: np.ndarray, eps: float):
        """Keep the part of every polygon where ``s >= 0`` (``s >= -eps``, see :meth:`split`).

        Returns ``(pieces, src)``: polygons with no vertex strictly positive are dropped.
        """
        pieces, src, side = self.split(s, eps)
        keep = np.flatnonzero(side == 1)
        return pieces.take(keep), src[keep]

    # ------------------------------------------------------------------ inscribed balls
    def chebyshev(self, tol: float, max_edges: int = 16, chunk: int = 1 << 20):
        """Centre and radius of the largest disc inside every polygon (the Chebyshev ball).

        The ball is the optimum of a 3-variable LP, attained where three edge constraints are
        tight; every triple of edges is solved by Cramer's rule and the best feasible one kept
        (vectorised over the polygons with the same number of edges). Polygons with more than
        ``max_edges`` edges go to an LP.

        Returns
        -------
        center : ndarray, shape (n, 2)
        radius : ndarray, shape (n,)
            The radius recomputed from the centre: the smallest distance to an edge line.
        """
        n = len(self)
        center = np.zeros((n, 2))
        radius = np.zeros(n)
        if n == 0:
            return center, radius
        N, h = self.edges()
        valid = np.any(N != 0, axis=1)
        # an edge of zero length constrains nothing: move its line out of reach
        h_solve = np.where(valid, h, 1e300)
        counts = self.counts
        for m in np.unique(counts):
            group = np.flatnonzero(counts == m)
            if m < 3:
                center[group] = self.xy[self.start[group]]
                continue
            if m > max_edges:
                for i in group:
                    center[i], radius[i] = _chebyshev_lp(N[self.start[i]:self.start[i + 1]],
                                                          h[self.start[i]:self.start[i + 1]])
                continue
            triples = np.array(list(combinations(range(m), 3)), dtype=np.int64)
            per = max(1, chunk // (len(triples) * m))
            for lo in range(0, len(group), per):
                g = group[lo:lo + per]
                rows = self.start[g][:, None] + np.arange(m)[None, :]
                Ng, hg = N[rows], h_solve[rows]                 # (G, m, 2), (G, m)
                c, r = _best_triple(Ng, hg, triples, tol)
                center[g], radius[g] = c, r
        # certify: the radius is the distance from the centre to the nearest edge line
        owner = self.owner
        slack = h - np.einsum("ij,ij->i", N, center[owner])
        slack[~valid] = np.inf
        radius = np.full(n, np.inf)
        np.minimum.at(radius, owner, slack)
        return center, radius


def _starts(counts: np.ndarray) -> np.ndarray:
    start = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    return start


def _best_triple(N: np.ndarray, h: np.ndarray, triples: np.ndarray, tol: float):
    """Best feasible basic solution of ``max r s.t. N c + r <= h`` over the given edge triples."""
    a, b, c = N[:, triples, 0], N[:, triples, 1], h[:, triples]      # (G, T, 3)
    # rows (a_i, b_i, 1); Cramer's rule for (cx, cy, r)
    det = (a[..., 0] * (b[..., 1] - b[..., 2]) - b[..., 0] * (a[..., 1] - a[..., 2])
           + (a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]))
    dx = (c[..., 0] * (b[..., 1] - b[..., 2]) - b[..., 0] * (c[..., 1] - c[..., 2])
          + (c[..., 1] * b[..., 2] - c[..., 2] * b[..., 1]))
    dy = (a[..., 0] * (c[..., 1] - c[..., 2]) - c[..., 0] * (a[..., 1] - a[..., 2])
          + (a[..., 1] * c[..., 2] - a[..., 2] * c[..., 1]))
    dr = (a[..., 0] * (b[..., 1] * c[..., 2] - b[..., 2] * c[..., 1])
          - b[..., 0] * (a[..., 1] * c[..., 2] - a[..., 2] * c[..., 1])
          + c[..., 0] * (a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]))
    ok = np.abs(det) > 1e-12
    safe = np.where(ok, det, 1.0)
    cx, cy, r = dx / safe, dy / safe, dr / safe
    slack = h[:, None, :] - (N[:, None, :, 0] * cx[..., None] + N[:, None, :, 1] * cy[..., None])
    worst = np.min(slack - r[..., None], axis=2)                     # (G, T)
    # the solve itself rounds: a tolerance below its error (tol = 0) would reject the optimum
    size = np.max(np.where(np.abs(h) < 1e299, np.abs(h), 0.0), axis=1)[:, None] + np.abs(r)
    feasible = ok & (worst >= -np.maximum(tol, 64 * np.finfo(np.float64).eps * size))
    score = np.where(feasible, r, -np.inf)
    best = np.argmax(score, axis=1)
    # no triple feasible (rounding on a degenerate polygon): the least violated one
    none = ~np.any(feasible, axis=1)
    if np.any(none):
        best[none] = np.argmax(np.where(ok[none], worst[none], -np.inf), axis=1)
    rows = np.arange(len(N))
    return np.stack([cx[rows, best], cy[rows, best]], axis=1), r[rows, best]


def _chebyshev_lp(N: np.ndarray, h: np.ndarray):
    from scipy.optimize import linprog

    keep = np.any(N != 0, axis=1)
    N, h = N[keep], h[keep]
    res = linprog([0, 0, -1], A_ub=np.hstack([N, np.ones((len(N), 1))]), b_ub=h,
                  bounds=[(None, None), (None, None), (0, None)], method="highs")
    if res.status != 0:  # pragma: no cover - a polygon always has a ball
        return N.mean(axis=0) * 0, 0.0
    return res.x[:2], res.x[2]


def polygon_from_halfspaces(H: np.ndarray, h: np.ndarray, lo, hi, eps: float,
                            poll=None) -> Polygons:
    """The convex polygon ``H x <= h`` inside the box ``[lo, hi]`` (which must contain it).

    One clip per row, each over the polygon so far: time grows like rows x vertices (minutes
    for 10^5 rows that are all facets); ``poll`` (a budget's check) is called every 256 rows."""
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    poly = Polygons.single([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    for i, (row, off) in enumerate(zip(np.asarray(H, dtype=np.float64),
                                       np.asarray(h, dtype=np.float64))):
        if poll is not None and i % 256 == 255:
            poll()
        s = off - poly.xy @ row
        poly, _ = poly.clip(s, eps)
        if len(poly) == 0:
            break
    return poly
