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
   pieces with inradius above the region tolerance are children, the others are slivers, which
   :mod:`.thin` settles exactly (thin regions or empty).
4. A cell where a vertex came within ``empty`` of a unit's line without being cut by it (a
   line through a vertex, or a region thinner than ``empty`` beyond it) is reported in the
   split's :class:`~.base.SplitDoubts`, and :mod:`.thin` settles it exactly too.

A cell that no unit cuts keeps its polygon and its ball.
"""

from __future__ import annotations

import functools

import numpy as np

from ..geometry.polygons import Polygons, polygon_from_halfspaces
from ..network.layers import Layer
from .base import (
    Made,
    Split,
    SplitSlivers,
    split_doubts,
    tree_order,
    with_vertices,
)
from .budget import Budget
from .engines import EngineSetup
from .kernels import KernelSwitch, run_watched
from .pullback import pull_back
from .unit_rules import (
    clip_to_winners,
    decide_max_units,
    max_doubts,
    piece_pairs,
    sides_from_extremes,
)

__all__ = ["PlanarCells", "PlanarEngine"]

#: Bound on the floats of a batch's per-(cell, unit) tables (pulled-back maps, screens), which
#: dominate a batch's memory; about 8 such tables live at once.
_VALUES_BUDGET = 1 << 22
#: (piece, cutting unit) pairs labelled at once (see :meth:`PlanarEngine._labelled`).
_LABELS_BUDGET = 1 << 19

#: The compiled rounds (:meth:`PlanarEngine._compiled_rounds`), in bounds on the pieces a call
#: can make: a call makes at most about this many (a budget is checked between calls) ...
_KERNEL_CALL_PIECES = 1 << 16
#: ... the kernel writes the codes of a cell that makes at most this many (~90 lines) ...
_KERNEL_CODED_PIECES = 1 << 12
#: ... and a call that can make more runs in a worker thread, where an interrupt or a budget
#: stops it (:func:`~powercells.enumerate.kernels.run_watched`).
_KERNEL_INLINE_PIECES = 1 << 14


class _Maps:
    """Affine maps of a batch of cells, computed only when a cell is split (the last layer's
    children never are): ``get(rows)`` gives ``(A, B)`` for the rows, see PlanarCells."""

    def __init__(self, get):
        self.get = get

    @classmethod
    def eager(cls, A: np.ndarray, B: np.ndarray) -> _Maps:
        return cls(lambda rows: (A[rows], B[rows]))


class PlanarCells:
    """A batch of cells of one depth.

    Attributes
    ----------
    polys : Polygons
    center, radius : ndarray, shapes (n, 2) and (n,)
        Chebyshev balls.
    maps : tuple ``(A, B)`` of ndarrays (n, D, 2) and (n, D)
        On cell i the current layer's output is ``A[i] t + B[i]`` (computed on first use).
    """

    def __init__(self, polys: Polygons, center, radius, maps: _Maps, rows=None):
        self.polys = polys
        self.center = center
        self.radius = radius
        self._maps = maps
        self._rows = np.arange(len(polys)) if rows is None else rows
        self._loaded = None

    def __len__(self) -> int:
        return len(self.polys)

    @property
    def maps(self):
        if self._loaded is None:
            self._loaded = self._maps.get(self._rows)
        return self._loaded

    def take(self, idx) -> PlanarCells:
        idx = np.asarray(idx, dtype=np.int64)
        return PlanarCells(self.polys.take(idx), self.center[idx], self.radius[idx], self._maps,
                           self._rows[idx])

    def slice(self, lo: int, hi: int) -> PlanarCells:
        return self.take(np.arange(lo, min(hi, len(self))))

    def __reduce__(self):
        # sent whole to a worker: the maps are made now, for this batch's rows
        return PlanarCells, (self.polys, self.center, self.radius, _Maps(Made(self.maps)))


class PlanarEngine:
    """Splits batches of 2-D cells by one layer (see the module docstring).

    Parameters
    ----------
    setup : EngineSetup
        Its resolved tolerances (absolute ``region`` and ``empty``) and ``exact_balls``:
        compute every child's Chebyshev ball (for the tree). When False (counting), a child gets
        the mean of its vertices as interior point and ``area / perimeter`` as radius, a lower
        bound on its inradius (``A/P <= r <= 2A/P`` for a convex polygon); the exact ball is
        computed only when these bounds cannot decide whether the child is a region.
    """

    name = "planar"

    def __init__(self, setup: EngineSetup):
        self.tol = setup.tolerances
        self.exact_balls = setup.exact_balls
        self.stats = {"cells_split": 0, "cells_cut": 0, "rounds": 0, "pieces_cut": 0,
                      "units_constant": 0}
        self.budget = Budget()          # the driver's, checked round by round
        # the compiled rounds give the numpy path's pieces to the bit: a run may change path
        # midway whatever it outputs
        self._switch = KernelSwitch("planar", f"{__package__}.planar_kernel", _load_kernel,
                                    setup.options.compiled, lazy=True,
                                    what="the planar engine's compiled rounds")

    @property
    def kernel(self):
        return self._switch.kernel

    # ------------------------------------------------------------------ driver interface
    def root(self, domain) -> PlanarCells:
        H, h = domain.halfspaces()
        lo, hi = domain.bounds()
        pad = 1e-9 * max(1.0, float(np.max(hi - lo)))
        poly = polygon_from_halfspaces(H, h, lo - pad, hi + pad, self.tol.empty,
                                       poll=self.budget.poll)
        center, radius = poly.chebyshev(self.tol.empty)
        return PlanarCells(poly, center, radius, _Maps.eager(np.eye(2)[None], np.zeros((1, 2))))

    def batch_size(self, layer: Layer) -> int:
        """Cells per batch for ``layer``: the per-(cell, unit) tables stay bounded."""
        pieces = layer.out_dim * (1 if layer.is_switch else layer.max_pieces)
        return int(max(64, _VALUES_BUDGET // (8 * max(pieces, 1))))

    @staticmethod
    def points(cells: PlanarCells) -> np.ndarray:
        """An interior point of every cell of the batch (its ball's centre)."""
        return cells.center

    @staticmethod
    def take(cells: PlanarCells, lo: int, hi: int) -> PlanarCells:
        return cells.slice(lo, hi)

    @staticmethod
    def cells(batch: PlanarCells):
        """The batch's polygons."""
        return batch.polys

    def split(self, cells: PlanarCells, layer: Layer) -> Split:
        self.stats["cells_split"] += len(cells)
        if not layer.is_switch:
            return self._split_pieces(cells, layer)
        started = self._switch.start()
        try:
            return self._split_switch(cells, layer)
        finally:
            self._switch.done(started)

    # ------------------------------------------------------------------ ReLU-type layers
    def _split_switch(self, cells: PlanarCells, layer: Layer) -> Split:
        n, K = len(cells), layer.out_dim
        planes = pull_back(layer, *cells.maps, self.tol.zero)
        PA, PB, norm = planes.grad, planes.offset, planes.norm
        PAx, PAy = PA[..., 0], PA[..., 1]
        # constant units (SPEC §3.4) are decided exactly by the pull-back's rule
        constant, code = planes.constant, planes.switch_codes()
        self.stats["units_constant"] += int(constant.sum())
        eps = self.tol.empty
        # A unit whose line misses the disc around the Chebyshev centre that holds every vertex
        # is on one side of the whole cell; only the others are evaluated at the vertices.
        polys = cells.polys
        if self.kernel is not None:
            crossing, near_u = self.kernel.classify_units(PA, PB, norm, constant, code,
                                                          cells.center, polys.xy, polys.start,
                                                          eps)
        else:
            at_center = PAx * cells.center[:, :1] + PAy * cells.center[:, 1:] + PB
            reach = _circumradius(polys, cells.center) + 2 * eps
            near = ~constant & (np.abs(at_center) <= reach[:, None] * norm)
            code[~constant & ~near & (at_center > 0)] = 1
            crossing = np.zeros((n, K), dtype=bool)
            near_u = np.zeros((n, K), dtype=bool)
            nc, nu = np.nonzero(near)
            if nc.size:
                # signed distances: the pulled-back lines with unit normals
                nrm = norm[nc, nu]
                smax, smin = _pair_extremes(polys, nc, PAx[nc, nu] / nrm, PAy[nc, nu] / nrm,
                                            PB[nc, nu] / nrm)
                crossing[nc, nu], code[nc, nu], near_u[nc, nu] = sides_from_extremes(
                    smax, smin, eps=eps)
        cc, cu = np.nonzero(crossing)           # the rounds' pairs, in the same order
        nrm = norm[cc, cu]
        Gx, Gy, g = PAx[cc, cu] / nrm, PAy[cc, cu] / nrm, PB[cc, cu] / nrm
        # cells where a piece had a vertex within eps of a cutting line (SplitDoubts)
        touched = np.zeros(n, dtype=bool)

        def cut(P, pcell, pair):
            pv = pair[P.owner]
            s = Gx[pv] * P.xy[:, 0] + Gy[pv] * P.xy[:, 1] + g[pv]
            on = np.abs(s) <= eps
            if on.any():
                touched[cc[pv[on]]] = True
            return P.split(s, eps)

        def screen(pair, center):
            """Signed distance of each piece's centre to its round's line."""
            return Gx[pair] * center[:, 0] + Gy[pair] * center[:, 1] + g[pair]

        def label(pair, point):
            return (screen(pair, point) > 0).astype(np.int16)

        if self.kernel is not None:
            pieces, pcell, code_p = self._compiled_rounds(crossing, code, cells.polys, Gx, Gy,
                                                          g, label, touched)
        else:
            pieces, pcell, code_p = self._rounds(cells, crossing, code, cut, label, screen)
        factor = layer.switch_factors
        doubts = split_doubts(code, crossing, near_u, touched, planes.cancelled())

        def child_maps(cell, child_code):
            return planes.switch_maps(factor, cell, child_code)

        return self._finish(cells, crossing, code, pieces, pcell, code_p, child_maps, doubts)

    # ------------------------------------------------------------------ layers with R pieces
    def _split_pieces(self, cells: PlanarCells, layer: Layer) -> Split:
        n = len(cells)
        A, B = cells.maps
        eps = self.tol.empty
        # per unit and ordered pair of pieces (r, q): the line where r ties q (unit normal), or
        # a vacuous constraint when the difference is constant and r wins it
        planes = pull_back(layer, A, B, self.tol.zero)
        pair_G, pair_g, possible = piece_pairs(planes, layer)
        pair_Gx, pair_Gy = pair_G[..., 0], pair_G[..., 1]
        every = np.arange(n)

        def highest(u, r, q):
            return _pair_extremes(cells.polys, every, pair_Gx[:, u, r, q], pair_Gy[:, u, r, q],
                                  pair_g[:, u, r, q])[0]

        code, crossing, near_u = decide_max_units(layer, A, B, cells.center, pair_g, possible,
                                                  highest, eps=eps)
        pair_cell, pair_unit = np.nonzero(crossing)
        touched = np.zeros(n, dtype=bool)

        def clip(Q, c, u, r, q, live):
            owner = Q.owner
            cv, uv = c[owner], u[owner]
            s = (pair_Gx[cv, uv, r, q] * Q.xy[:, 0] + pair_Gy[cv, uv, r, q] * Q.xy[:, 1]
                 + pair_g[cv, uv, r, q])
            s = np.where(live[owner], s, 1.0)   # a piece that cannot win: no constraint
            touched[cv[np.abs(s) <= eps]] = True
            return Q.clip(s, eps)

        def cut(P, pcell, pair):
            return clip_to_winners(P, pcell, pair_unit[pair], possible, clip, Polygons.concat)

        def label(pair, point):
            # the piece that beats every other possible one at the point, by the signed
            # distances to the pairs' lines: comparing the pieces' values instead fails where
            # two pieces differ by a tiny gradient (their difference is below the values'
            # rounding near the line, though the piece's point is well inside its side)
            c, u = pair_cell[pair], pair_unit[pair]
            x, y = point[:, 0, None, None], point[:, 1, None, None]
            dist = pair_Gx[c, u] * x + pair_Gy[c, u] * y + pair_g[c, u]   # (p, R, R)
            R = dist.shape[1]
            dist[:, np.arange(R), np.arange(R)] = np.inf
            live = possible[c, u]
            dist = np.where(live[:, None, :], dist, np.inf)               # only live rivals
            margin = np.where(live, dist.min(axis=2), -np.inf)
            return np.argmax(margin, axis=1).astype(np.int16)

        pieces, pcell, code_p = self._rounds(cells, crossing, code, cut, label)

        def child_maps(cell, child_code):
            return layer.compose(A[cell], B[cell], child_code)

        return self._finish(cells, crossing, code, pieces, pcell, code_p, child_maps,
                            max_doubts(code, crossing, near_u, touched,
                                       planes.cancelled_units(layer.out_dim)))

    # ------------------------------------------------------------------ shared steps
    def _rounds(self, cells: PlanarCells, crossing: np.ndarray, code: np.ndarray, cut, label,
                screen=None):
        """Apply every cell's cutting units in rounds; return the final pieces, their cells and
        their codes (the cells' codes with the cutting units filled in).

        Round ``t`` offers every live piece of every cell with more than ``t`` cutting units to
        that cell's ``t``-th unit. Pieces live in a growing pool: a piece the unit does not cut
        stays where it is, and ``screen`` (the signed distance of a piece's vertex mean to the
        unit's line) spares the vertex test of pieces whose disc the line misses, so a round
        costs little more than the pieces it cuts. The codes of the cutting units are read at
        the end at each final piece's vertex mean, which lies strictly on one side of every
        cutting line: a region's vertex mean is at distance at least ``(r - (m - 1) eps) / m``
        from it (inradius ``r > tau``, ``m`` vertices), far above rounding.
        """
        counts, cut_cells, pair_unit, first = self._pairs(crossing)
        if cut_cells.size == 0:
            return Polygons.concat([]), np.empty(0, dtype=np.int64), code[:0]
        pool = _PiecePool(cells.polys.take(cut_cells), cut_cells)
        eps = self.tol.empty
        uncut = len(counts) - len(cut_cells)
        for t in range(int(counts.max())):
            live = pool.live_ids()
            # every live piece holds at least one child
            self.budget.poll(uncut + len(live))
            live = live[counts[pool.cell[live]] > t]
            if live.size == 0:
                break
            pair = first[pool.cell[live]] + t
            if screen is not None:
                near = np.abs(screen(pair, pool.center[live])) <= pool.reach[live] + 2 * eps
                live, pair = live[near], pair[near]
                if live.size == 0:
                    continue
            P = pool.polygons(live)
            out, src, _ = cut(P, pool.cell[live], pair)
            self.stats["rounds"] += 1
            self.stats["pieces_cut"] += len(P)
            # pieces the unit did not split stay in the pool as they are
            pieces_of = np.bincount(src, minlength=len(live))
            split = pieces_of != 1
            if not split.any():
                continue
            new = np.flatnonzero(split[src])
            pool.replace(live[split], out.take(new), pool.cell[live][src[new]])
        pieces, pcell = pool.final()
        return pieces, pcell, self._labelled(pieces, pcell, counts, first, pair_unit, code, label)

    def _pairs(self, crossing):
        """The rounds' (cell, unit) pairs: per cell its number of cutting units, the cells
        with any, every pair's unit (cell by cell, units in order) and each cell's first pair."""
        counts = crossing.sum(axis=1)
        cut_cells = np.flatnonzero(counts)
        self.stats["cells_cut"] += len(cut_cells)
        _, pair_unit = np.nonzero(crossing)
        first = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=first[1:])
        return counts, cut_cells, pair_unit, first

    def _compiled_rounds(self, crossing, code, polys: Polygons, Gx, Gy, g, label, touched):
        """What :meth:`_rounds` does for lines, cell by cell in compiled code
        (:mod:`powercells.enumerate.planar_kernel`): the same pieces and codes, to the bit, in
        another order (the tree's order is restored by :meth:`_finish`).

        A cell cut by ``m`` lines makes at most ``1 + m (m + 1) / 2`` pieces. Cells are sent in
        calls of a bounded number of pieces; the kernel writes the codes of cells with few
        pieces, and those of cells cut by many lines (a wide first layer's root) are read
        afterwards in bounded slices (:meth:`_labelled`), so that a call's memory stays that of
        its polygons. Calls that may take long run where a budget or an interrupt stops them.
        ``touched`` gets the cells where a piece had a vertex within eps of a cutting line."""
        counts, cut_cells, pair_unit, first = self._pairs(crossing)
        if cut_cells.size == 0:
            return Polygons.concat([]), np.empty(0, dtype=np.int64), code[:0]
        self.stats["pieces_cut"] += int(counts.sum())
        polys = polys.take(cut_cells)
        firsts = first[np.append(cut_cells, len(counts))]
        m = counts[cut_cells]
        bound = 1 + m * (m + 1) // 2
        coded = bound <= _KERNEL_CODED_PIECES
        # calls: runs of coded cells up to _KERNEL_CALL_PIECES pieces each; other cells alone
        cum = np.cumsum(np.where(coded, bound, _KERNEL_CALL_PIECES))
        call_of = (cum - 1) // _KERNEL_CALL_PIECES
        call_of += np.cumsum(np.r_[False, coded[1:] != coded[:-1]])     # never mix the two
        edges = np.flatnonzero(np.r_[True, call_of[1:] != call_of[:-1], True])
        parts, cell_of, codes, unlabelled = [], [], [], []
        done = 0
        for lo, hi in zip(edges[:-1], edges[1:]):
            self.budget.poll(len(counts) - len(cut_cells) + done)
            sub, f0 = polys.start[lo:hi + 1], firsts[lo]
            progress = np.zeros(1, dtype=np.int64)
            with_codes = bool(coded[lo])
            call = functools.partial(
                self.kernel.split_polygons, polys.xy[sub[0]:sub[-1]], sub - sub[0],
                firsts[lo:hi + 1] - f0, Gx[f0:], Gy[f0:], g[f0:], self.tol.empty,
                code[cut_cells[lo:hi]], pair_unit[f0:], with_codes, self.budget.stop,
                progress)
            if self.budget.limited or int(bound[lo:hi].sum()) > _KERNEL_INLINE_PIECES:
                xy, start, cell, code_p, near = run_watched(call, self.budget, progress)
            else:
                xy, start, cell, code_p, near = call()
            touched[cut_cells[lo:hi]] |= near
            pieces, pcell = Polygons(xy, start), cut_cells[lo + cell]
            if with_codes:
                parts.append(pieces)
                cell_of.append(pcell)
                codes.append(code_p)
            else:
                unlabelled.append((pieces, pcell))
            done += len(cell)
        for pieces, pcell in unlabelled:
            parts.append(pieces)
            cell_of.append(pcell)
            codes.append(self._labelled(pieces, pcell, counts, first, pair_unit, code, label))
        return Polygons.concat(parts), np.concatenate(cell_of), np.concatenate(codes)

    @staticmethod
    def _labelled(pieces, pcell, counts, first, pair_unit, code, label):
        """The final pieces' codes: their cells', with every cutting unit read at the piece's
        vertex mean (see :meth:`_rounds`)."""
        codes = code[pcell]                 # a new array (integer indexing copies)
        point = pieces.vertex_mean()
        # every final piece, for every cutting unit of its cell: its code at the vertex mean,
        # in chunks of _LABELS_BUDGET (piece, unit) pairs: a 512-unit layer cuts a batch into
        # ~60k pieces with ~70 cutting units each, whose index and distance arrays would take
        # hundreds of megabytes at once
        per = counts[pcell]
        step = max(1, _LABELS_BUDGET // max(int(per.max()), 1))
        for lo in range(0, len(pcell), step):
            rows = np.arange(lo, min(lo + step, len(pcell)))
            k = per[rows]
            r = np.repeat(rows, k)
            offs = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
            pair = first[pcell[r]] + offs
            codes[r, pair_unit[pair]] = label(pair, point[r])
        return codes

    def _balls(self, pieces: Polygons):
        """Interior points and inradii (exact, or a lower bound that decides; see the class)."""
        if self.exact_balls:
            return pieces.chebyshev(self.tol.empty)
        area, perimeter = pieces.area_perimeter()
        lower = area / np.where(perimeter > 0, perimeter, 1.0)
        center, radius = pieces.vertex_mean(), lower
        unsure = np.flatnonzero((lower <= self.tol.region) & (2 * lower > self.tol.empty))
        if unsure.size:
            center[unsure], radius[unsure] = pieces.take(unsure).chebyshev(self.tol.empty)
        return center, radius

    def _finish(self, cells, crossing, code, pieces, pcell, code_p, child_maps,
                doubts=None) -> Split:
        uncut = np.flatnonzero(~crossing.any(axis=1))
        with_vertices(doubts, pcell, lambda idx: _vertex_lists(pieces.take(idx)),
                      lambda idx: _vertex_lists(cells.polys.take(idx)))
        center_p, radius_p = self._balls(pieces)
        region = radius_p > self.tol.region
        # every other piece has a vertex beyond eps on its side of each cut: it is set aside,
        # however thin, for the exact test (a piece is never dropped on its size alone)
        sliver = ~region
        keep = np.flatnonzero(region)
        parent = np.concatenate([uncut, pcell[keep]])
        child_code = np.concatenate([code[uncut], code_p[keep]])
        polys = Polygons.concat([cells.polys.take(uncut), pieces.take(keep)])
        center = np.concatenate([cells.center[uncut], center_p[keep]])
        radius = np.concatenate([cells.radius[uncut], radius_p[keep]])
        # children in tree order: by parent, then by code
        order = tree_order(parent, child_code)
        parent, child_code = parent[order], child_code[order]
        children = PlanarCells(polys.take(order), center[order], radius[order],
                               _Maps(lambda rows: child_maps(parent[rows], child_code[rows])))
        sl = np.flatnonzero(sliver)
        # in tree order too: the order of the pieces depends on the path that made them
        sl = sl[tree_order(pcell[sl], code_p[sl])]
        slivers = SplitSlivers(parent=pcell[sl], code=code_p[sl], center=center_p[sl],
                               radius=radius_p[sl])
        return Split(children=children, parent=parent, code=child_code,
                     center=children.center, radius=children.radius, slivers=slivers,
                     cells=children.polys, doubts=doubts)


def _load_kernel():
    from . import planar_kernel

    return planar_kernel


def _vertex_lists(polys: Polygons) -> list:
    return np.split(polys.xy, polys.start[1:-1])


def _circumradius(polys: Polygons, center: np.ndarray) -> np.ndarray:
    """Largest distance from each centre to its polygon's vertices."""
    owner = polys.owner
    dist = np.hypot(polys.xy[:, 0] - center[owner, 0], polys.xy[:, 1] - center[owner, 1])
    out = np.zeros(len(polys))
    np.maximum.at(out, owner, dist)
    return out


def _pair_extremes(polys: Polygons, cell: np.ndarray, Gx, Gy, g):
    """Max and min of ``Gx[p] x + Gy[p] y + g[p]`` over the vertices of polygon ``cell[p]``, for
    every pair p."""
    counts = polys.counts[cell]
    start = np.zeros(len(cell) + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    rows = np.repeat(polys.start[cell] - start[:-1], counts) + np.arange(start[-1])
    pair = np.repeat(np.arange(len(cell)), counts)
    xy = polys.xy[rows]
    S = Gx[pair] * xy[:, 0] + Gy[pair] * xy[:, 1] + g[pair]
    return np.maximum.reduceat(S, start[:-1]), np.minimum.reduceat(S, start[:-1])


class _PiecePool:
    """The pieces of the cells being cut, in a growing vertex buffer: replacing a piece appends
    its parts and marks it dead, so untouched pieces are never copied."""

    def __init__(self, polys: Polygons, cell: np.ndarray):
        n = len(polys)
        self.xy = polys.xy.copy()
        self.used = len(polys.xy)
        self.start = polys.start[:-1].copy()
        self.count = polys.counts.copy()
        self.cell = np.asarray(cell, dtype=np.int64).copy()
        self.alive = np.ones(n, dtype=bool)
        self.center, self.reach = _disc(polys)

    def live_ids(self) -> np.ndarray:
        return np.flatnonzero(self.alive)

    def polygons(self, ids) -> Polygons:
        counts = self.count[ids]
        start = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(counts, out=start[1:])
        rows = np.repeat(self.start[ids] - start[:-1], counts) + np.arange(start[-1])
        return Polygons(self.xy[rows], start)

    def replace(self, dead, parts: Polygons, cell) -> None:
        self.alive[dead] = False
        m = len(parts.xy)
        if self.used + m > len(self.xy):
            grown = np.empty((max(2 * len(self.xy), self.used + m), 2))
            grown[:self.used] = self.xy[:self.used]
            self.xy = grown
        self.xy[self.used:self.used + m] = parts.xy
        center, reach = _disc(parts)
        self.start = np.concatenate([self.start, parts.start[:-1] + self.used])
        self.count = np.concatenate([self.count, parts.counts])
        self.cell = np.concatenate([self.cell, cell])
        self.alive = np.concatenate([self.alive, np.ones(len(parts), dtype=bool)])
        self.center = np.concatenate([self.center, center])
        self.reach = np.concatenate([self.reach, reach])
        self.used += m

    def final(self) -> tuple[Polygons, np.ndarray]:
        ids = self.live_ids()
        return self.polygons(ids), self.cell[ids]


def _disc(polys: Polygons):
    """A disc around each polygon: its vertex mean and the largest distance to a vertex."""
    center = polys.vertex_mean()
    return center, _circumradius(polys, center)
