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
from typing import NamedTuple

import numpy as np

from ..geometry.polygons import Polygons, polygon_from_halfspaces
from ..network.layers import Layer
from .base import (
    Made,
    Split,
    SplitSlivers,
    split_doubts,
    tree_order,
    with_uncertified,
    with_vertices,
)
from .budget import Budget
from .engines import EngineSetup
from .kernels import KernelSwitch, in_kernel_threads, numba_installed, run_watched
from .planar_filtered import edge_lines, root_lines, uncertified
from .pullback import pull_back
from .unit_rules import (
    clip_to_winners,
    decide_max_units,
    max_doubts,
    piece_pairs,
    sides_from_extremes,
)
from .vertex.filtered import (
    child_errors,
    domain_row_errors,
    hyperplane_errors,
    pullback_errors,
)

__all__ = ["PlanarCells", "PlanarEngine"]

#: Bound on the floats of a batch's per-(cell, unit) tables (pulled-back maps, screens), which
#: dominate a batch's memory; about 8 such tables live at once.
_VALUES_BUDGET = 1 << 22
#: Edge-line tests (a piece's edges times its cell's candidate lines) above which the
#: certified filter runs compiled even while the rounds are on the numpy path.
_FILTER_KERNEL_WORK = 1 << 20
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
    certified : Certified or None
        The certified mode's error bounds and edge lines (:class:`Certified`).
    """

    def __init__(self, polys: Polygons, center, radius, maps: _Maps, rows=None,
                 certified=None):
        self.polys = polys
        self.center = center
        self.radius = radius
        self._maps = maps
        self._rows = np.arange(len(polys)) if rows is None else rows
        self._loaded = None
        self._certified = certified
        self._bounds = None

    @property
    def certified(self) -> Bounds | None:
        """This batch's error bounds and edge lines in the certified mode (None outside it)."""
        if self._certified is None:
            return None
        if self._bounds is None:
            self._bounds = self._certified.rows(self._rows)
        return self._bounds

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
                           self._rows[idx], self._certified)

    def slice(self, lo: int, hi: int) -> PlanarCells:
        return self.take(np.arange(lo, min(hi, len(self))))

    def __reduce__(self):
        # sent whole to a worker: the maps are made now, for this batch's rows
        b = self.certified
        return PlanarCells, (self.polys, self.center, self.radius, _Maps(Made(self.maps)), None,
                             None if b is None else Certified(Made((b.EA, b.EB)), b.slot_err,
                                                              b.rho, b.lines))


class Bounds(NamedTuple):
    """The certified mode's data of a batch of cells (:mod:`.planar_filtered`): bounds ``EA``,
    ``EB`` on the maps' distance from exact, ``slot_err`` ``(n, 2)`` on every edge line's,
    ``rho`` ``(n,)`` on every vertex's (-1: not known), and ``lines``, the oriented line of
    every edge (a :class:`Polygons` of ``(Gx, Gy, g)`` rows, aligned with the cells' polygons).
    """

    EA: np.ndarray
    EB: np.ndarray
    slot_err: np.ndarray
    rho: np.ndarray
    lines: Polygons


class Certified:
    """:class:`Bounds` of the cells of the batch they were made for: ``maps(rows)`` gives
    ``(EA, EB)`` of those rows when asked; the rest is eager."""

    def __init__(self, maps, slot_err, rho, lines: Polygons):
        self.maps = maps
        self.slot_err = slot_err
        self.rho = rho
        self.lines = lines

    def rows(self, rows) -> Bounds:
        return Bounds(*self.maps(rows), self.slot_err[rows], self.rho[rows],
                      self.lines.take(rows))


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
        # the certified mode: every sign checked by the float filter (.planar_filtered)
        self.certified = setup.certified
        self.threads = setup.options.resolved_threads      # (the compiled filter's)
        self.stats["cells_uncertified"] = 0
        # the compiled rounds give the numpy path's pieces to the bit: a run may change path
        # midway whatever it outputs
        self._switch = KernelSwitch("planar (certified)" if setup.certified else "planar",
                                    f"{__package__}.planar_kernel", _load_kernel,
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
        bounds = None
        if self.certified:
            lines, ok = root_lines(poly, H, h, eps=self.tol.empty)
            # edges that match no row, or two: the root is redone exactly at the first split
            err = np.array([domain_row_errors(H, h) if ok else (np.inf, np.inf)])
            bounds = Certified(lambda rows: (np.zeros((len(rows), 2)),
                                             np.zeros((len(rows), 2))),
                               err, np.full(1, -1.0), Polygons(lines, poly.start))
        return PlanarCells(poly, center, radius, _Maps.eager(np.eye(2)[None], np.zeros((1, 2))),
                           certified=bounds)

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

        check = None
        if self.certified:
            b = cells.certified
            EPA, EPB = pullback_errors(layer.switch_W, layer.switch_b, *cells.maps, b.EA, b.EB)
            check = _Check(planes, constant, EPA, EPB, b, lambda cell, child_code: child_errors(
                factor, EPA, EPB, planes.grad, planes.offset, cell, child_code))
        return self._finish(cells, crossing, code, pieces, pcell, code_p, child_maps, doubts,
                            check)

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

    # ------------------------------------------------------------------ the certified mode
    def _filtered(self, cells, crossing, code, uncut, pieces, pcell, code_p, center_p, kept,
                  check, doubts):
        """The certified mode's filter over a split (:mod:`.planar_filtered`): every final
        piece (slivers too: a vertex the rounds decided at may end up in slivers only) and
        every uncut cell is checked against the layer's units. Returns the uncut cells' edge
        lines and vertex radii, the pieces' slot errors, radii and edge lines, and the doubts
        with the cells the filter cannot certify marked for exact replacement."""
        n = len(code)
        b = check.bounds
        eps = self.tol.empty
        # each cell's candidate lines: its own edges', then those of the units that cut it
        cc, cu = np.nonzero(crossing)
        G_c, g_c, dn_c, dh_c = check.lines(cc, cu)
        own = b.lines.counts
        per = own + np.bincount(cc, minlength=n)
        cand_start = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(per, out=cand_start[1:])
        cand = np.empty((cand_start[-1], 3))
        cand_unit = np.full(cand_start[-1], -1, dtype=np.int64)
        at_own = np.repeat(cand_start[:-1], own) + (np.arange(own.sum())
                                                    - np.repeat(b.lines.start[:-1], own))
        cand[at_own] = b.lines.xy
        first = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(cc, minlength=n), out=first[1:])
        at_unit = cand_start[cc] + own[cc] + np.arange(len(cc)) - first[cc]
        cand[at_unit, :2] = G_c
        cand[at_unit, 2] = g_c
        cand_unit[at_unit] = cu
        # a piece's slot error: its cell's, and those of the lines of the units that cut it
        made = np.zeros((n, 2))
        np.maximum.at(made, cc, np.column_stack([dn_c, dh_c]))
        err_p = np.maximum(b.slot_err[pcell], made[pcell])
        lines_u = b.lines.take(uncut)
        # the compiled filter with the compiled rounds, or alone for a large batch: the numpy
        # one tests every edge against every line of its cell (a wide first layer's pieces
        # against all its units: seconds)
        work = int(np.sum(per[pcell] * pieces.counts))
        if self.kernel is not None or (work > _FILTER_KERNEL_WORK and numba_installed()):
            lines_p, bad_p, rho_p, bad_u, rho_u = _compiled_filter(
                cells, uncut, pieces, pcell, code_p, center_p, kept, check, cand, cand_start,
                cand_unit, err_p, eps, self.threads)
        else:
            G, g = check.planes.unit_normals()
            dn, dh = hyperplane_errors(check.planes.grad, check.planes.offset,
                                       check.planes.norm, check.constant, check.EPA, check.EPB)
            lines_p, unit_p, ok_p = edge_lines(pieces, pcell, cand, cand_start, cand_unit,
                                               eps=eps)
            # a unit's line oriented to the piece's side of it (code 1: where it is positive)
            from_unit = np.flatnonzero(unit_p >= 0)
            side = code_p[pieces.owner[from_unit], unit_p[from_unit]]
            lines_p[from_unit] *= np.where(side == 1, 1.0, -1.0)[:, None]
            bad_p, rho_p = uncertified(pieces, lines_p, unit_p, pcell, G, g, dn, dh, err_p,
                                       center_p, kept, np.full(len(pcell), -1.0))
            bad_p |= ~ok_p
            P_u = cells.polys.take(uncut)
            bad_u, rho_u = uncertified(P_u, lines_u.xy, np.full(len(P_u.xy), -1), uncut, G, g,
                                       dn, dh, b.slot_err[uncut], cells.center[uncut],
                                       np.zeros(len(uncut), dtype=bool), b.rho[uncut])
        flagged = np.concatenate([pcell[bad_p], uncut[bad_u]])
        if flagged.size:
            flagged = np.unique(flagged)
            self.stats["cells_uncertified"] += len(flagged)
            doubts = with_uncertified(doubts, flagged, code)
        return (lines_u, rho_u), (err_p, rho_p, lines_p), doubts

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
                doubts=None, check=None) -> Split:
        uncut = np.flatnonzero(~crossing.any(axis=1))
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
        bounds = None
        if check is not None:
            (lines_u, rho_u), (err_p, rho_p, lines_p), doubts = self._filtered(
                cells, crossing, code, uncut, pieces, pcell, code_p, center_p, region, check,
                doubts)
            lines = Polygons.concat([lines_u, Polygons(lines_p, pieces.start).take(keep)])
            bounds = Certified(
                lambda rows: check.child_errors(parent[rows], child_code[rows]),
                np.concatenate([check.bounds.slot_err[uncut], err_p[keep]])[order],
                np.concatenate([rho_u, rho_p[keep]])[order], lines.take(order))
        with_vertices(doubts, pcell, lambda idx: _vertex_lists(pieces.take(idx)),
                      lambda idx: _vertex_lists(cells.polys.take(idx)))
        children = PlanarCells(polys.take(order), center[order], radius[order],
                               _Maps(lambda rows: child_maps(parent[rows], child_code[rows])),
                               certified=bounds)
        sl = np.flatnonzero(sliver)
        # in tree order too: the order of the pieces depends on the path that made them
        sl = sl[tree_order(pcell[sl], code_p[sl])]
        slivers = SplitSlivers(parent=pcell[sl], code=code_p[sl], center=center_p[sl],
                               radius=radius_p[sl])
        return Split(children=children, parent=parent, code=child_code,
                     center=children.center, radius=children.radius, slivers=slivers,
                     cells=children.polys, doubts=doubts)


def _compiled_filter(cells, uncut, pieces, pcell, code_p, center_p, kept, check, cand,
                     cand_start, cand_unit, err_p, eps, threads):
    """:meth:`PlanarEngine._filtered`'s checks in compiled code
    (:mod:`.planar_filtered_kernel`): the pieces' edge lines, then the pieces and the uncut
    cells (in place) checked. Returns the pieces' lines, flags and radii, then the uncut
    cells' flags and radii."""
    from . import planar_filtered_kernel as fk

    def c(a, dtype=np.float64):
        return np.ascontiguousarray(a, dtype=dtype)

    b = check.bounds
    pl = check.planes
    # the gradients by input coordinate: the layout pull_back made them in (no copy)
    units = (c(pl.grad.transpose(0, 2, 1)), c(pl.offset), c(pl.norm),
             c(check.constant, np.bool_), c(check.EPA), c(check.EPB))
    m, nv = len(pcell), len(pieces.xy)
    xy, start, cell = c(pieces.xy), c(pieces.start, np.int64), c(pcell, np.int64)
    lines = np.zeros((nv, 3))
    unit = np.full(nv, -1, dtype=np.int64)
    bad_p = np.zeros(m, dtype=bool)
    rho_p = np.zeros(m)
    fk.edge_lines(xy, start, cell, c(cand), c(cand_start, np.int64), c(cand_unit, np.int64),
                  c(code_p, np.int64), float(eps), lines, unit, bad_p)
    in_kernel_threads(fk.uncertified, m, threads, xy, start, lines, unit, cell, *units, c(err_p),
                c(center_p), c(kept, np.bool_), np.full(m, -1.0), np.ones(m, dtype=bool),
                out=(bad_p, rho_p))
    n = len(cells)
    active = np.zeros(n, dtype=bool)
    active[uncut] = True
    bad = np.zeros(n, dtype=bool)
    rho = np.zeros(n)
    polys = cells.polys
    in_kernel_threads(fk.uncertified, n, threads, c(polys.xy), c(polys.start, np.int64),
                c(b.lines.xy), np.full(len(polys.xy), -1, dtype=np.int64),
                np.arange(n, dtype=np.int64), *units, c(b.slot_err), c(cells.center),
                np.zeros(n, dtype=bool), c(b.rho), active, out=(bad, rho))
    return lines, bad_p, rho_p, bad[uncut], rho[uncut]


class _Check(NamedTuple):
    """What the certified mode's filter needs of a ReLU-type split: the layer's pull-back on
    the split cells, its constant units and error bounds (:func:`.vertex.filtered.
    pullback_errors`), the cells' :class:`Bounds`, and ``child_errors(cell, code)``, the
    children's map errors."""

    planes: object
    constant: np.ndarray
    EPA: np.ndarray
    EPB: np.ndarray
    bounds: Bounds
    child_errors: object

    def lines(self, cell, unit):
        """The unit-normal lines ``(G (m, 2), g (m,))`` and their error bounds ``(dn, dh)``
        of the pairs (``cell``, ``unit``), as the filter's kernel forms them."""
        pl = self.planes
        grad, offset, norm = pl.grad[cell, unit], pl.offset[cell, unit], pl.norm[cell, unit]
        constant = self.constant[cell, unit]
        safe = np.where(constant, 1.0, norm)
        dn, dh = hyperplane_errors(grad[:, None], offset[:, None], norm[:, None],
                                   constant[:, None], self.EPA[cell, unit][:, None],
                                   self.EPB[cell, unit][:, None])
        return grad / safe[:, None], offset / safe, dn[:, 0], dh[:, 0]


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
