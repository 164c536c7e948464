"""The ``planar`` engine: exact subdivision of 2-D domains by convex-polygon clipping, no LP.

Every cell is a convex polygon (its vertices, counter-clockwise) with the affine map from the
plane to the current layer's output. Splitting a batch of cells by the next layer is vectorised
over the whole batch:

1. Every unit is pulled back to every cell (one matrix product for the batch). A unit whose
   pulled-back gradient cancels is constant on the cell and decided exactly by the rule of the
   ``lp`` engine (SPEC §3.4); any other unit is decided by the signs of its value at the cell's
   vertices, which is exact for a convex polygon: it cuts the cell iff some vertex is strictly on
   each side (beyond the ``empty`` tolerance).
2. The cutting units of every cell are applied in *rounds*: round ``t`` cuts every current piece
   of every cell by that cell's ``t``-th cutting unit, all cells at once. A ReLU-type unit splits a
   piece along its line; a unit with more pieces (maxout, max-pool) splits it into the cells of
   its pieces' power diagram by clipping each candidate piece against the others. The sides taken
   are recorded per round and turned into codes at the end.
3. Each final piece's Chebyshev ball is computed in closed form (:meth:`Polygons.chebyshev`);
   pieces with inradius above the region tolerance are children, those in ``(empty, region]``
   are slivers (reported, never counted), the rest touch their neighbours only along a segment
   or a point and are dropped (SPEC §3.4).

A cell that no unit cuts keeps its polygon and its ball.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.polygons import Polygons, polygon_from_halfspaces
from ..network.layers import Layer
from .base import Split, SplitSlivers
from .tolerances import Tolerances

__all__ = ["PlanarCells", "PlanarEngine"]

#: Upper bound on the floats held per batch for the vertex-by-unit value tables.
_VALUES_BUDGET = 1 << 22


@dataclass
class PlanarCells:
    """A batch of cells of one depth.

    Attributes
    ----------
    polys : Polygons
    A, B : ndarray, shapes (n, D, 2) and (n, D)
        Per cell, the affine map from the plane to the current layer's output.
    center, radius : ndarray, shapes (n, 2) and (n,)
        Chebyshev balls.
    """

    polys: Polygons
    A: np.ndarray
    B: np.ndarray
    center: np.ndarray
    radius: np.ndarray

    def __len__(self) -> int:
        return len(self.polys)

    def take(self, idx) -> "PlanarCells":
        idx = np.asarray(idx, dtype=np.int64)
        return PlanarCells(self.polys.take(idx), self.A[idx], self.B[idx], self.center[idx],
                           self.radius[idx])

    def slice(self, lo: int, hi: int) -> "PlanarCells":
        return self.take(np.arange(lo, min(hi, len(self))))


class PlanarEngine:
    """Splits batches of 2-D cells by one layer (see the module docstring).

    Parameters
    ----------
    tolerances : Tolerances
        Resolved tolerances (absolute ``region`` and ``empty``).
    """

    name = "planar"

    def __init__(self, tolerances: Tolerances):
        self.tol = tolerances
        self.stats = {"cells_split": 0, "cells_cut": 0, "rounds": 0, "pieces_cut": 0,
                      "units_constant": 0}

    # ------------------------------------------------------------------ driver interface
    def root(self, domain) -> PlanarCells:
        H, h = domain.halfspaces()
        lo, hi = domain.bounds()
        pad = 1e-9 * max(1.0, float(np.max(hi - lo)))
        poly = polygon_from_halfspaces(H, h, lo - pad, hi + pad, self.tol.empty)
        center, radius = poly.chebyshev(self.tol.empty)
        return PlanarCells(poly, np.eye(2)[None], np.zeros((1, 2)), center, radius)

    def batch_size(self, layer: Layer) -> int:
        """Cells per batch for ``layer``: the vertex-by-piece value tables stay bounded."""
        pieces = layer.out_dim * (1 if layer.is_switch else layer.max_pieces)
        return int(max(64, _VALUES_BUDGET // (8 * max(pieces, 1))))

    @staticmethod
    def take(cells: PlanarCells, lo: int, hi: int) -> PlanarCells:
        return cells.slice(lo, hi)

    def split(self, cells: PlanarCells, layer: Layer) -> Split:
        self.stats["cells_split"] += len(cells)
        if layer.is_switch:
            return self._split_switch(cells, layer)
        return self._split_pieces(cells, layer)

    # ------------------------------------------------------------------ ReLU-type layers
    def _split_switch(self, cells: PlanarCells, layer: Layer) -> Split:
        W, b = layer.switch_W, layer.switch_b
        n, K = len(cells), layer.out_dim
        pre_A, pre_B = _pull_back(W, b, cells)
        norm = np.hypot(pre_A[..., 0], pre_A[..., 1])
        absW = np.abs(W)
        scale_A = np.linalg.norm(cells.A, axis=2) @ absW.T
        constant = norm <= self.tol.zero * scale_A
        code = np.zeros((n, K), dtype=np.int16)
        if constant.any():
            scale_B = np.abs(cells.B) @ absW.T + np.abs(b)
            code[constant] = pre_B[constant] > self.tol.zero * scale_B[constant]
            self.stats["units_constant"] += int(constant.sum())
        safe = np.where(constant, 1.0, norm)
        G = pre_A / safe[..., None]          # unit normals: values are signed distances
        g = pre_B / safe
        eps = self.tol.empty
        smax, smin = _vertex_extremes(cells.polys, G, g)
        crossing = ~constant & (smax > eps) & (smin < -eps)
        side = ~constant & ~crossing & (smax > eps)
        code[side] = 1

        def cut(P, pcell, unit):
            owner = P.owner
            c, u = pcell[owner], unit[owner]
            s = G[c, u, 0] * P.xy[:, 0] + G[c, u, 1] * P.xy[:, 1] + g[c, u]
            return P.split(s, eps)

        pieces, pcell, code_p = self._rounds(cells, crossing, code, cut)
        factor = _switch_factors(layer)

        def child_maps(cell, child_code):
            f = factor[child_code]
            return f[..., None] * pre_A[cell], f * pre_B[cell]

        return self._finish(cells, crossing, code, pieces, pcell, code_p, child_maps)

    # ------------------------------------------------------------------ layers with R pieces
    def _split_pieces(self, cells: PlanarCells, layer: Layer) -> Split:
        n, K, R = len(cells), layer.out_dim, layer.max_pieces
        D = layer.in_dim
        flatA = layer.A.reshape(K * R, D)
        P_A, P_B = _pull_back(flatA, layer.B.reshape(K * R), cells)
        P_A = P_A.reshape(n, K, R, 2)
        P_B = P_B.reshape(n, K, R)
        zero, eps = self.tol.zero, self.tol.empty
        row_norm = np.linalg.norm(cells.A, axis=2)            # (n, D)
        abs_B = np.abs(cells.B)
        code = np.zeros((n, K), dtype=np.int16)
        crossing = np.zeros((n, K), dtype=bool)
        # per unit and ordered pair of pieces (r, q): the line where r ties q, or a constant
        pair_G = np.zeros((n, K, R, R, 2))
        pair_g = np.zeros((n, K, R, R))
        possible = np.zeros((n, K, R), dtype=bool)
        npieces = layer.n_pieces
        for k in range(K):
            m = int(npieces[k])
            alive = np.ones((n, m), dtype=bool)
            for r in range(m):
                for q in range(m):
                    if q == r:
                        continue
                    delta = layer.A[k, r] - layer.A[k, q]
                    dA = P_A[:, k, r] - P_A[:, k, q]
                    dB = P_B[:, k, r] - P_B[:, k, q]
                    nrm = np.hypot(dA[:, 0], dA[:, 1])
                    const = nrm <= zero * (row_norm @ np.abs(delta))
                    gap_scale = abs_B @ np.abs(delta) + abs(layer.B[k, r]) + abs(layer.B[k, q])
                    # a constant difference: r beats q everywhere, or loses everywhere (ties go
                    # to the smaller index, SPEC §1.3)
                    beats = (dB > zero * gap_scale) | ((np.abs(dB) <= zero * gap_scale) & (r < q))
                    alive[:, r] &= ~const | beats
                    safe = np.where(const, 1.0, nrm)
                    pair_G[:, k, r, q] = np.where(const[:, None], 0.0, dA / safe[:, None])
                    # vacuous constraint for constant pairs that r wins
                    pair_g[:, k, r, q] = np.where(const, 1.0, dB / safe)
            # a non-constant pair that r loses at every vertex: r has no interior in the cell
            for r in range(m):
                for q in range(m):
                    if q == r:
                        continue
                    smax, _ = _vertex_extremes(cells.polys, pair_G[:, k, r, q][:, None],
                                               pair_g[:, k, r, q][:, None])
                    alive[:, r] &= smax[:, 0] > eps
            count = alive.sum(axis=1)
            first = np.argmax(alive, axis=1)
            code[:, k] = first
            crossing[:, k] = count > 1
            possible[:, k, :m] = alive
            if np.any(count == 0):
                # cannot happen for a cell wider than the tolerances; decide at the centre
                bad = np.flatnonzero(count == 0)
                vals = np.einsum("nrj,nj->nr", P_A[bad, k, :m], cells.center[bad]) + P_B[bad, k, :m]
                code[bad, k] = np.argmax(vals, axis=1)

        def cut(P, pcell, unit):
            outs, srcs, sides = [], [], []
            for r in range(R):
                cand = np.flatnonzero(possible[pcell, unit, r])
                if cand.size == 0:
                    continue
                Q = P.take(cand)
                origin = cand
                for q in range(R):
                    if q == r or len(Q) == 0:
                        continue
                    c, u = pcell[origin], unit[origin]
                    live = possible[c, u, q]
                    owner = Q.owner
                    cv, uv = c[owner], u[owner]
                    s = (pair_G[cv, uv, r, q, 0] * Q.xy[:, 0] + pair_G[cv, uv, r, q, 1] * Q.xy[:, 1]
                         + pair_g[cv, uv, r, q])
                    s = np.where(live[owner], s, 1.0)   # a piece that cannot win: no constraint
                    Q, keep = Q.clip(s, eps)
                    origin = origin[keep]
                outs.append(Q)
                srcs.append(origin)
                sides.append(np.full(len(Q), r, dtype=np.int16))
            out = Polygons.concat(outs)
            src = np.concatenate(srcs) if srcs else np.empty(0, dtype=np.int64)
            side = np.concatenate(sides) if sides else np.empty(0, dtype=np.int16)
            order = np.lexsort((side, src))
            return out.take(order), src[order], side[order]

        pieces, pcell, code_p = self._rounds(cells, crossing, code, cut)

        def child_maps(cell, child_code):
            idx = child_code.astype(np.intp)[..., None, None]
            A = np.take_along_axis(P_A[cell], idx, axis=2)[:, :, 0]
            B = np.take_along_axis(P_B[cell], idx[..., 0], axis=2)[:, :, 0]
            return A, B

        return self._finish(cells, crossing, code, pieces, pcell, code_p, child_maps)

    # ------------------------------------------------------------------ shared steps
    def _rounds(self, cells: PlanarCells, crossing: np.ndarray, code: np.ndarray, cut):
        """Apply every cell's cutting units in rounds; return the final pieces, their cells and
        their codes (the cells' codes with the cutting units filled in)."""
        counts = crossing.sum(axis=1)
        cut_cells = np.flatnonzero(counts)
        if cut_cells.size == 0:
            return Polygons.concat([]), np.empty(0, dtype=np.int64), code[:0]
        self.stats["cells_cut"] += len(cut_cells)
        pair_cell, pair_unit = np.nonzero(crossing)
        first = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=first[1:])
        P = cells.polys.take(cut_cells)
        pcell = cut_cells
        history = []          # per round: (src into the round's input, side, unit per output)
        finished = []         # (round, index in that round's output)
        keep_prev = None
        for t in range(int(counts.max())):
            unit = pair_unit[first[pcell] + t]
            out, src, side = cut(P, pcell, unit)
            self.stats["rounds"] += 1
            self.stats["pieces_cut"] += len(P)
            out_cell = pcell[src]
            history.append((src, side, unit[src], keep_prev))
            done = counts[out_cell] == t + 1
            done_idx = np.flatnonzero(done)
            finished.append((t, done_idx, out_cell[done_idx], out.take(done_idx)))
            keep_prev = np.flatnonzero(~done)
            P = out.take(keep_prev)
            pcell = out_cell[keep_prev]
            if len(P) == 0:
                break
        # final pieces, in the order of the rounds that finished them
        polys, fcell, fround, findex = [], [], [], []
        for t, idx, cell, done_polys in finished:
            fround.append(np.full(len(idx), t))
            findex.append(idx)
            fcell.append(cell)
            polys.append(done_polys)
        fround = np.concatenate(fround)
        findex = np.concatenate(findex)
        fcell = np.concatenate(fcell)
        pieces = Polygons.concat(polys)
        codes = code[fcell].copy()
        cur = np.full(len(fround), -1, dtype=np.int64)
        for t in range(len(history) - 1, -1, -1):
            src, side, unit, keep = history[t]
            here = fround == t
            cur[here] = findex[here]
            active = fround >= t
            rows = np.flatnonzero(active)
            codes[rows, unit[cur[rows]]] = side[cur[rows]]
            if t > 0:
                cur[rows] = keep[src[cur[rows]]]
        return pieces, fcell, codes

    def _finish(self, cells, crossing, code, pieces, pcell, code_p, child_maps) -> Split:
        uncut = np.flatnonzero(~crossing.any(axis=1))
        center_p, radius_p = pieces.chebyshev(self.tol.empty)
        region = radius_p > self.tol.region
        sliver = ~region & (radius_p > self.tol.empty)
        keep = np.flatnonzero(region)
        parent = np.concatenate([uncut, pcell[keep]])
        child_code = np.concatenate([code[uncut], code_p[keep]])
        polys = Polygons.concat([cells.polys.take(uncut), pieces.take(keep)])
        center = np.concatenate([cells.center[uncut], center_p[keep]])
        radius = np.concatenate([cells.radius[uncut], radius_p[keep]])
        # children in tree order: by parent, then by code
        order = np.lexsort(tuple(child_code[:, j] for j in range(child_code.shape[1] - 1, -1, -1))
                           + (parent,))
        parent, child_code = parent[order], child_code[order]
        A, B = child_maps(parent, child_code)
        children = PlanarCells(polys.take(order), A, B, center[order], radius[order])
        sl = np.flatnonzero(sliver)
        slivers = SplitSlivers(parent=pcell[sl], code=code_p[sl], center=center_p[sl],
                               radius=radius_p[sl])
        return Split(children=children, parent=parent, code=child_code,
                     center=children.center, radius=children.radius, slivers=slivers,
                     polygons=children.polys)


def _pull_back(W: np.ndarray, b: np.ndarray, cells: PlanarCells):
    """``W A + ...`` for every cell in one matrix product: shapes (n, K, 2) and (n, K)."""
    n, D = cells.A.shape[0], cells.A.shape[1]
    flat = cells.A.transpose(1, 0, 2).reshape(D, 2 * n)
    pre_A = (W @ flat).reshape(W.shape[0], n, 2).transpose(1, 0, 2)
    pre_B = cells.B @ W.T + b
    return pre_A, pre_B


def _vertex_extremes(polys: Polygons, G: np.ndarray, g: np.ndarray):
    """Max and min over every polygon's vertices of ``G[i, k] @ v + g[i, k]``: (n, K) each."""
    n, K = g.shape
    smax = np.empty((n, K))
    smin = np.empty((n, K))
    counts = polys.counts
    per = max(1, _VALUES_BUDGET // max(K, 1))
    lo = 0
    while lo < n:
        # as many polygons as fit the budget of vertex values (at least one)
        hi = int(np.searchsorted(polys.start, polys.start[lo] + per, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        sub = slice(int(polys.start[lo]), int(polys.start[hi]))
        owner = np.repeat(np.arange(hi - lo), counts[lo:hi])
        xy = polys.xy[sub]
        S = (G[lo:hi, :, 0][owner] * xy[:, 0:1] + G[lo:hi, :, 1][owner] * xy[:, 1:2]
             + g[lo:hi][owner])
        starts = polys.start[lo:hi] - polys.start[lo]
        smax[lo:hi] = np.maximum.reduceat(S, starts, axis=0)
        smin[lo:hi] = np.minimum.reduceat(S, starts, axis=0)
        lo = hi
    return smax, smin


def _switch_factors(layer: Layer) -> np.ndarray:
    """Factor of the pre-activation in piece 0 and piece 1 of a ReLU-type unit."""
    low = {"relu": 0.0, "leaky_relu": float(layer.slope or 0.0), "abs": -1.0}[layer.kind]
    return np.array([low, 1.0])
