"""The ``vertex`` engine: exact subdivision in low input dimension by edge subdivision, no LP.

Every cell is a convex polytope kept as its vertices (each with the set of its tight
constraints), its edges and its facets (:class:`~powercells.enumerate.vertex.polytopes.Polytopes`), with
the affine map from the input to the current layer's output. Splitting a batch of cells by the
next layer is vectorised over the batch, as in the ``planar`` engine:

1. Every unit is pulled back to every cell. A unit whose pulled-back gradient cancels is constant
   on the cell and decided by the exact rule of the ``lp`` engine (SPEC §3.4); any other unit is
   decided by its signed distance at the cell's vertices, which is exact for a convex polytope:
   it cuts the cell iff some vertex is strictly on each side (beyond the ``empty`` tolerance).
   A ball around each cell's vertex mean screens out units whose hyperplane misses it.
2. The cutting units of every cell are applied in rounds, all cells at once; a ReLU-type unit
   splits a piece by its hyperplane (new vertices on the crossing edges, new edges from the
   section's incidences, exact on degenerate input), a maxout / max-pool unit clips the piece to
   each candidate piece's power-diagram cell. The side taken is recorded per round.
3. A final piece is a region iff its inradius exceeds the region tolerance. The ball around the
   vertex mean that touches the nearest facet is a lower bound: above the tolerance it decides;
   otherwise (thin pieces, rare) an LP on the piece's H-representation settles it, as it does
   for every child when the tree's exact Chebyshev balls are asked for.

A cell that no unit cuts keeps its polytope and its ball.

With numba installed, step 2 for ReLU-type layers runs in compiled code
(:mod:`powercells.enumerate.vertex.kernel`): the same rules cell by cell, depth first, in threads
over ranges of cells (:func:`_run_kernel`; a batch of fewer cells than threads, such as the root,
is split in two stages, :func:`_run_staged`). Its pieces and codes are the numpy path's (the
same vertices, to the bit); its vertex means are summed in another order, so the interior points
of counting runs can differ in the last bits. The engine options ``compiled=False`` select the
numpy path, ``compiled=True`` the compiled one, and ``threads`` the thread count.

By default (``compiled=None``) a run that outputs interior points (a tree, leaves) takes the
compiled path from the start, when numba is installed, so that its output never depends on
timing. A plain count starts on the numpy path and loads the compiled splitter only once the job
proves large (:mod:`powercells.enumerate.kernels`).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np

from ...lp import get_backend
from ...network.layers import Layer
from ..base import (
    Made,
    Split,
    SplitDoubts,
    SplitSlivers,
    split_doubts,
    tree_order,
    with_uncertified,
    with_vertices,
)
from ..budget import Budget
from ..engines import EngineSetup
from ..kernels import KernelSwitch, in_kernel_threads, wait_result, worker_pool
from ..pullback import pull_back
from ..unit_rules import (
    clip_to_winners,
    decide_max_units,
    max_doubts,
    piece_pairs,
    sides_from_extremes,
)
from .arrays import Candidates, Pieces, PolytopeArrays
from .filtered import (
    child_errors,
    domain_row_errors,
    hyperplane_errors,
    piece_errors,
    pullback_errors,
    uncertified,
)
from .polytopes import Polytopes, affine_values, csr_rows, distinct

__all__ = ["VertexCells", "VertexEngine"]

#: Below this much work (vertices times candidate units, summed over a batch's cells) the
#: compiled splitter runs in the calling thread.
_THREAD_MIN_WORK = 20_000

#: A call with little work whose cells have at most this many candidates (at most 2^8 pieces
#: each) runs in the calling thread; any other runs in worker threads, so that a budget or an
#: interrupt can stop it (see :func:`_run_kernel`).
_INLINE_MAX_CANDIDATES = 8

#: Bound on a batch's cells * units * 2^d (2^d stands for a cell's vertex count, which grows
#: like it): the per-(cell, unit) tables and the pieces' vertices and edges stay bounded.
_VALUES_BUDGET = 1 << 19

#: How many times larger a batch of the last layer may be on the compiled path, which keeps
#: no pieces' polytopes there (see :meth:`VertexEngine.batch_size`).
_FINAL_BATCH_FACTOR = 4


class VertexCells:
    """A batch of cells of one depth.

    Attributes
    ----------
    polytopes : Polytopes
        Built on first use: the last layer's children are never split, so their polytopes
        are never assembled.
    center, radius : ndarray, shapes (n, k) and (n,)
        An interior point and the inradius (exact Chebyshev balls, or in counting mode a ball
        around the vertex mean whose radius is a lower bound deciding the region test).
    maps : tuple ``(A, B)`` of ndarrays (n, D, k) and (n, D)
        On cell i the current layer's input is ``A[i] x + B[i]`` (computed on first use).
    fixed : ndarray of int8, shape (n, K), or None
        Pieces of a cell (:meth:`VertexEngine.precut`): the code of the units the next layer's
        split takes as decided on each piece (-1: a unit it decides itself).
    certified : Certified or None
        The certified mode's error bounds (:class:`Certified`).
    """

    def __init__(self, polytopes, center, radius, maps, rows=None, fixed=None, certified=None):
        # ``polytopes``, ``maps`` and the certified errors are functions of the rows of the
        # batch they were made for
        self._polytopes = polytopes
        self.center = center
        self.radius = radius
        self._maps = maps
        self._rows = np.arange(len(radius)) if rows is None else rows
        self.fixed = fixed
        self._certified = certified
        self._loaded = None
        self._built = None
        self._errors = None

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def polytopes(self) -> Polytopes:
        if self._built is None:
            self._built = self._polytopes(self._rows)
        return self._built

    @property
    def maps(self):
        if self._loaded is None:
            self._loaded = self._maps(self._rows)
        return self._loaded

    @property
    def certified(self) -> Bounds | None:
        """This batch's error bounds in the certified mode (None outside it)."""
        if self._certified is None:
            return None
        if self._errors is None:
            self._errors = self._certified.rows(self._rows)
        return self._errors

    def take(self, idx) -> VertexCells:
        idx = np.asarray(idx, dtype=np.int64)
        return VertexCells(self._polytopes, self.center[idx], self.radius[idx], self._maps,
                           self._rows[idx], None if self.fixed is None else self.fixed[idx],
                           self._certified)

    def __reduce__(self):
        # sent whole to a worker: the lazy columns are made now, for this batch's rows
        bounds = self.certified
        return VertexCells, (Made(self.polytopes), self.center, self.radius, Made(self.maps),
                             None, self.fixed,
                             None if bounds is None else Certified(Made(bounds[:2]),
                                                                   bounds.slot_err,
                                                                   bounds.rho))


class Bounds(NamedTuple):
    """The certified mode's error bounds of a batch of cells (:mod:`.filtered`): ``EA``,
    ``EB`` ``(n, D)`` bound the maps' distance from the exact maps (per row, the gradient's
    error summed over the inputs, :func:`.filtered.pullback_errors`); ``slot_err`` ``(n, 2)``
    bounds ``(dn, dh)`` of every constraint's distance from exact, per cell; ``rho`` ``(n,)`` bounds the distance of every
    vertex of the cell from its exact vertex (-1: not known yet, the root)."""

    EA: np.ndarray
    EB: np.ndarray
    slot_err: np.ndarray
    rho: np.ndarray


class Certified:
    """:class:`Bounds` of the cells of the batch they were made for: ``maps(rows)`` gives
    ``(EA, EB)`` of those rows (computed when asked, as the maps are); ``slot_err`` and
    ``rho`` are eager."""

    def __init__(self, maps, slot_err: np.ndarray, rho: np.ndarray):
        self.maps = maps
        self.slot_err = slot_err
        self.rho = rho

    def rows(self, rows) -> Bounds:
        return Bounds(*self.maps(rows), self.slot_err[rows], self.rho[rows])


class VertexEngine:
    """Splits batches of cells of a low-dimensional domain by one layer (module docstring).

    Parameters
    ----------
    setup : EngineSetup
        Resolved tolerances; the LP backend for the Chebyshev balls the bounds cannot settle;
        ``cap``, a number above every inradius; ``exact_balls``: compute every child's
        Chebyshev ball by LP (for the tree), or (counting) let the bounds decide and run an LP
        only where they cannot; the options ``compiled`` and ``threads``
        (:class:`~powercells.enumerate.engines.EngineOptions`).
    """

    name = "vertex"
    #: Highest domain dimension accepted: the root box alone has 2^d vertices.
    max_dim = 12

    def __init__(self, setup: EngineSetup):
        options = setup.options
        self.tol = setup.tolerances
        self._lp = setup.lp
        self._backend = None
        self.cap = float(setup.cap)
        self.exact_balls = setup.exact_balls
        # the interior points of a count differ in the last bits between the paths: only a
        # run that outputs none may change path midway
        self._switch = KernelSwitch("vertex", f"{__package__}.kernel", _load_kernel,
                                    options.compiled, lazy=not setup.outputs_points,
                                    what="the vertex engine's compiled splitter")
        self.threads = options.resolved_threads
        self.final_layer = setup.final_layer
        self.dim = setup.dim or 1
        # the certified mode: every decision checked by the float filter (.filtered)
        self.certified = setup.certified
        self.stats = {"cells_split": 0, "precuts": 0, "cells_cut": 0, "rounds": 0,
                      "pieces_cut": 0, "units_constant": 0, "ball_lps": 0, "ball_lps_failed": 0,
                      "fragile_vertices": 0, "cells_uncertified": 0}
        self.budget = Budget()          # the driver's, checked inside a split

    @property
    def kernel(self):
        return self._switch.kernel

    @property
    def backend(self):
        # made on first use: counting runs rarely solve an LP (and need not import the solver)
        if self._backend is None:
            self._backend = get_backend(self._lp)
        return self._backend

    # ------------------------------------------------------------------ driver interface
    def root(self, domain) -> VertexCells:
        H, h = domain.halfspaces()
        lo, hi = domain.bounds()
        k = self.dim = domain.dim
        if _is_box(H, h, lo, hi):
            polytopes = Polytopes.box(lo, hi)
        else:
            pad = 1e-9 * max(1.0, float(np.max(hi - lo)))
            polytopes = Polytopes.from_halfspaces(H, h, lo - pad, hi + pad, self.tol.empty).prune()
        if self.exact_balls or not _is_box(H, h, lo, hi):
            center, radius = self._ball_lp(polytopes, np.arange(1))
        else:                           # a count: the box's centre, with no LP solver to load
            center, radius = ((lo + hi) / 2)[None], np.array([float(np.min(hi - lo)) / 2])
        eye = np.eye(k)
        bounds = None
        if self.certified:
            # the box's facets are exact; a polytope's rows are divided by their float norms
            slot_err = np.zeros((1, 2))
            if not _is_box(H, h, lo, hi):
                slot_err[0] = domain_row_errors(H, h)
            bounds = Certified(lambda rows: (np.zeros((len(rows), k)),
                                             np.zeros((len(rows), k))), slot_err,
                               np.full(1, -1.0))
        return VertexCells(polytopes.take, center, radius,
                           lambda rows: (eye[None].repeat(len(rows), 0), np.zeros((len(rows), k))),
                           certified=bounds)

    def batch_size(self, layer: Layer) -> int:
        pieces = layer.out_dim * (1 if layer.is_switch else layer.max_pieces)
        budget = _VALUES_BUDGET
        if (self.kernel is not None and layer.is_switch and not self.exact_balls
                and layer is self.final_layer):
            # the compiled splitter keeps nothing of the last layer's pieces but their balls
            # and codes: a batch holds little more than its cells, and fewer, larger batches
            # keep the threads busy
            budget *= _FINAL_BATCH_FACTOR
        return int(max(16, budget // (max(pieces, 1) << min(self.dim, self.max_dim))))

    @staticmethod
    def points(cells: VertexCells) -> np.ndarray:
        """An interior point of every cell of the batch (its ball's centre)."""
        return cells.center

    @staticmethod
    def take(cells: VertexCells, lo: int, hi: int) -> VertexCells:
        return cells.take(np.arange(lo, min(hi, len(cells))))

    @staticmethod
    def cells(batch) -> None:
        """No cell geometry is kept in the tree (see :class:`~powercells.enumerate.engines.EngineSpec`)."""
        return

    def split(self, cells: VertexCells, layer: Layer) -> Split:
        self.stats["cells_split"] += len(cells)
        if not layer.is_switch:
            return self._split_pieces(cells, layer)
        return self._switched(cells, layer)

    def _switched(self, cells: VertexCells, layer: Layer, keep: bool = False) -> Split:
        """:meth:`_split_switch`, with the compiled splitter's switch told (see
        :class:`~powercells.enumerate.kernels.KernelSwitch`)."""
        started = self._switch.start()
        try:
            return self._split_switch(cells, layer, keep)
        finally:
            self._switch.done(started)

    def precut(self, cells: VertexCells, layer: Layer) -> VertexCells | None:
        """One cell cut by the first units of a wide ReLU-type layer, into pieces that the
        layer's split then takes one at a time, or None (nothing to gain, or a piece in
        doubt: then the cell is split whole, as always).

        A layer of K units can cut a k-dimensional cell into up to ``sum_{i<=k} C(K, i)``
        cells, all made by one split at once: ACAS Xu's first layer (50 units) cuts the
        whole prop_7 box into 403,943 cells, and their split held 5.6 GB. The pieces are the
        cells of the layer's first ``p`` units (:func:`precut_units`): each piece is the union
        of the layer's cells with that code prefix, so splitting every piece by the whole layer,
        the ``p`` units taken as decided (:attr:`VertexCells.fixed`), gives the cell's children,
        in tree order when the pieces are in code order (codes sort by their first units
        first). A piece is used only when it is clearly a region and no vertex came near a
        unit (no sliver, no doubt): then each child lies in exactly one piece.
        """
        # (the certified mode's filter checks whole splits: no precut there)
        p = (precut_units(layer, self.dim) if len(cells) == 1 and not self.certified
             else None)
        if p is None or cells.fixed is not None:
            return None
        sub = Layer.dense(layer.switch_W[:p], layer.switch_b[:p], "relu", name=layer.name)
        res = self._switched(cells, sub, keep=True)
        if len(res.slivers) or res.doubts is not None or len(res.parent) < 2:
            return None
        m = len(res.parent)
        fixed = np.full((m, layer.out_dim), -1, dtype=np.int8)
        fixed[:, :p] = res.code
        A, B = cells.maps
        self.stats["precuts"] += 1
        return VertexCells(Made(res.children.polytopes), res.center, res.radius,
                           Made((A[res.parent], B[res.parent])), fixed=fixed)

    # ------------------------------------------------------------------ ReLU-type layers
    def _split_switch(self, cells: VertexCells, layer: Layer, keep: bool = False) -> Split:
        n, K = len(cells), layer.out_dim
        planes = pull_back(layer, *cells.maps, self.tol.zero)
        # constant units (SPEC §3.4) are decided exactly by the pull-back's rule
        constant, code = planes.constant, planes.switch_codes()
        if cells.fixed is not None:         # pieces: units decided by the precut
            decided = cells.fixed >= 0
            constant = constant | decided
            code[decided] = cells.fixed[decided]
        self.stats["units_constant"] += int(constant.sum())
        eps = self.tol.empty
        G, g = planes.unit_normals()               # signed distances
        check = None
        fragile_before = self.stats["fragile_vertices"]
        if self.certified:
            bounds = cells.certified
            EPA, EPB = pullback_errors(layer.switch_W, layer.switch_b, *cells.maps,
                                       bounds.EA, bounds.EB)
            check = _Check(G, g, *hyperplane_errors(planes.grad, planes.offset, planes.norm,
                                                    constant, EPA, EPB),
                           bounds.slot_err, bounds.rho,
                           lambda cell, child_code: child_errors(
                               layer.switch_factors, EPA, EPB, planes.grad, planes.offset,
                               cell, child_code))
        if self.kernel is not None:
            # the compiled splitter screens the units with each cell's ball and tests the rest
            # on the cell's vertices itself
            nc, nu = np.nonzero(~constant)
            # the pieces' polytopes are kept for a tree's balls and for a layer with a next one
            keep = keep or self.exact_balls or self.certified or (
                self.final_layer is not None and layer is not self.final_layer)
            pieces, pcell, code_p, cut, flags = self._compiled_rounds(
                cells, ~constant, code, nu, G[nc, nu], g[nc, nu], keep)
            cancelled = planes.cancelled()
            flagged = np.flatnonzero((flags != 0) | cancelled.any(axis=1))
            doubts = self._doubts(cells.polytopes, constant, code, G, g, flagged,
                                  (flags[flagged] & 2) != 0, cancelled[flagged])
        else:
            polytopes = cells.polytopes
            mean = polytopes.vertex_mean()
            reach = polytopes.reach(mean) + 2 * eps
            at_mean = np.einsum("nkd,nd->nk", G, mean) + g
            near = ~constant & (np.abs(at_mean) <= reach[:, None])
            code[~constant & ~near & (at_mean > 0)] = 1
            crossing = np.zeros((n, K), dtype=bool)
            near_u = np.zeros((n, K), dtype=bool)
            nc, nu = np.nonzero(near)
            if nc.size:
                smax, smin = _pair_extremes(polytopes, nc, G[nc, nu], g[nc, nu])
                crossing[nc, nu], code[nc, nu], near_u[nc, nu] = sides_from_extremes(
                    smax, smin, eps=eps)
            cc, cu = np.nonzero(crossing)

            def hyperplane(pair):
                return G[cc[pair], cu[pair]], g[cc[pair], cu[pair]]

            touched = np.zeros(n, dtype=bool)
            pieces, pcell, code_p = self._rounds(cells, crossing, code, hyperplane=hyperplane,
                                                 touched=touched)
            cut = crossing.any(axis=1)
            doubts = split_doubts(code, crossing, near_u, touched, planes.cancelled())
        factor = layer.switch_factors

        def child_maps(cell, child_code):
            return planes.switch_maps(factor, cell, child_code)

        return self._finish(cells, cut, code, pieces, pcell, code_p, child_maps, doubts,
                            check, self.stats["fragile_vertices"] - fragile_before)

    def _doubts(self, polytopes, constant, code, G, g, flagged, touched, cancelled):
        """The :class:`~.base.SplitDoubts` of the cells the compiled splitter flagged: their
        units' sides, cuts and near vertices recomputed from their vertices (rare cells)."""
        if not flagged.size:
            return None
        eps = self.tol.empty
        rc, ru = np.nonzero(~constant[flagged])
        cell = flagged[rc]
        smax, smin = _pair_extremes(polytopes, cell, G[cell, ru], g[cell, ru])
        sub = code[flagged].astype(np.int16)
        crossing = np.zeros(sub.shape, dtype=bool)
        near = np.zeros(sub.shape, dtype=bool)
        crossing[rc, ru], sub[rc, ru], near[rc, ru] = sides_from_extremes(smax, smin, eps=eps)
        sub[crossing] = -1
        return SplitDoubts(parent=flagged.astype(np.int64), code=sub, near=near,
                           touched=touched, cancelled=cancelled)

    # ------------------------------------------------------------------ layers with R pieces
    def _split_pieces(self, cells: VertexCells, layer: Layer) -> Split:
        n = len(cells)
        A, B = cells.maps
        eps = self.tol.empty
        # per unit and ordered pair of pieces (r, q): the hyperplane where r ties q (unit
        # normal), or a vacuous constraint when the difference is constant and r wins it
        planes = pull_back(layer, A, B, self.tol.zero)
        pair_G, pair_g, possible = piece_pairs(planes, layer)
        every = np.arange(n)

        def highest(u, r, q):
            return _pair_extremes(cells.polytopes, every, pair_G[:, u, r, q],
                                  pair_g[:, u, r, q])[0]

        code, crossing, near_u = decide_max_units(layer, A, B, cells.center, pair_g, possible,
                                                  highest, eps=eps)
        _pair_cell, pair_unit = np.nonzero(crossing)
        touched = np.zeros(n, dtype=bool)

        def clip(Q, c, u, r, q, live):
            Gq = np.where(live[:, None], pair_G[c, u, r, q], 0.0)
            gq = np.where(live, pair_g[c, u, r, q], 1.0)     # cannot win: no constraint
            owner = Q.vertex_owner
            s = affine_values(Q.X, Gq[owner], gq[owner])
            touched[c[owner[np.abs(s) <= eps]]] = True
            Q, keep, _ = Q.cut(s, Gq, gq, eps, both=False)
            self.stats["fragile_vertices"] += Q.fragile
            return Q, keep

        def cut(P, pcell, pair):
            return clip_to_winners(P, pcell, pair_unit[pair], possible, clip,
                                   lambda parts: Polytopes.concat(parts, P.dim))

        pieces, pcell, code_p = self._rounds(cells, crossing, code, cut=cut)

        def child_maps(cell, child_code):
            return layer.compose(A[cell], B[cell], child_code)

        return self._finish(cells, crossing.any(axis=1), code, pieces, pcell, code_p,
                            child_maps, max_doubts(code, crossing, near_u, touched,
                                                   planes.cancelled_units(layer.out_dim)))

    # ------------------------------------------------------------------ shared steps
    def _rounds(self, cells: VertexCells, crossing, code, hyperplane=None, cut=None,
                touched=None):
        """Apply every cell's cutting units in rounds; return the final pieces, their cells and
        their codes (the cells' codes with the cutting units filled in by the sides taken).

        Round ``t`` offers every live piece of every cell with more than ``t`` cutting units to
        that cell's ``t``-th unit: either a hyperplane (``hyperplane(pair) -> (G, g)``, unit
        normals; ReLU-type units) or a general ``cut(pieces, cell, pair) -> (out, src, side)``
        (units with several pieces). Pieces live in chunks (one per round's output) with an alive
        flag: a hyperplane that misses a piece's ball, or leaves all its vertices on one side,
        only records the side, so untouched pieces are never copied. ``touched`` (hyperplanes
        only) gets the cells where a piece had a vertex within eps of a hyperplane
        (:class:`~.base.SplitDoubts`)."""
        counts = crossing.sum(axis=1)
        cut_cells = np.flatnonzero(counts)
        k = cells.polytopes.dim
        if cut_cells.size == 0:
            return (_Pieces([], [], np.empty(0, np.int64), np.zeros((0, k)), k),
                    np.empty(0, dtype=np.int64), code[:0])
        self.stats["cells_cut"] += len(cut_cells)
        _pair_cell, pair_unit = np.nonzero(crossing)
        first = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=first[1:])
        chunks = [cells.polytopes.take(cut_cells)]
        base = [0]                                  # global id of each chunk's first piece
        pcell = cut_cells
        pcode = code[pcell].copy()
        center = chunks[0].vertex_mean()
        reach = chunks[0].reach(center)
        alive = np.ones(len(pcell), dtype=bool)
        eps = self.tol.empty

        def gather(ids):
            which = np.searchsorted(base, ids, side="right") - 1
            order = np.argsort(which, kind="stable")
            parts = [chunks[c].take(ids[order][which[order] == c] - base[c])
                     for c in distinct(which)]
            return Polytopes.concat(parts, k), order

        uncut = len(counts) - len(cut_cells)
        for t in range(int(counts.max())):
            # every live piece holds at least one child
            self.budget.poll(uncut + int(alive.sum()))
            live = np.flatnonzero(alive & (counts[pcell] > t))
            if live.size == 0:
                break
            pair = first[pcell[live]] + t
            unit = pair_unit[pair]
            self.stats["rounds"] += 1
            if hyperplane is not None:
                Gp, gp = hyperplane(pair)
                dist = np.einsum("pd,pd->p", Gp, center[live]) + gp
                far = np.abs(dist) > reach[live] + 2 * eps
                pcode[live[far], unit[far]] = dist[far] > 0
                near = np.flatnonzero(~far)
                live, pair, unit, Gp, gp = live[near], pair[near], unit[near], Gp[near], gp[near]
                if live.size == 0:
                    continue
                smax, smin = self._extremes(chunks, base, live, Gp, gp)
                split = (smax > eps) & (smin < -eps)
                whole = ~split
                near = whole & ((np.abs(smax) <= eps) | (np.abs(smin) <= eps))
                touched[pcell[live[near]]] = True
                pcode[live[whole], unit[whole]] = smax[whole] > eps
                live, pair, unit, Gp, gp = live[split], pair[split], unit[split], Gp[split], gp[split]
                if live.size == 0:
                    continue
                P, order = gather(live)
                live, pair, unit, Gp, gp = (live[order], pair[order], unit[order], Gp[order],
                                            gp[order])
                owner = P.vertex_owner
                s = affine_values(P.X, Gp[owner], gp[owner])
                touched[pcell[live[owner[np.abs(s) <= eps]]]] = True
                out, src, side = P.cut(s, Gp, gp, eps)
                self.stats["fragile_vertices"] += out.fragile
            else:
                P, order = gather(live)
                live, pair, unit = live[order], pair[order], unit[order]
                out, src, side = cut(P, pcell[live], pair)
            self.stats["pieces_cut"] += len(live)
            new_code = pcode[live][src]
            new_code[np.arange(len(src)), unit[src]] = side
            out_center = out.vertex_mean()
            alive[live] = False
            base.append(len(pcell))
            chunks.append(out)
            pcell = np.concatenate([pcell, pcell[live][src]])
            pcode = np.concatenate([pcode, new_code])
            center = np.concatenate([center, out_center])
            reach = np.concatenate([reach, out.reach(out_center)])
            alive = np.concatenate([alive, np.ones(len(src), dtype=bool)])
            keep = [c for c in range(len(chunks)) if alive[base[c]:base[c] + len(chunks[c])].any()]
            if len(keep) < len(chunks):
                chunks = [chunks[c] for c in keep]
                base = [base[c] for c in keep]
        ids = np.flatnonzero(alive)
        return _Pieces(chunks, base, ids, center[ids], k), pcell[ids], pcode[ids]

    def _compiled_rounds(self, cells: VertexCells, candidate, code, pair_unit, Gp, gp,
                         keep_polytopes: bool):
        """What :meth:`_rounds` does for hyperplanes, cell by cell in compiled code
        (:mod:`powercells.enumerate.vertex.kernel`), given every cell's *candidate* units (those
        its ball does not rule out): the same pieces, codes and ball bounds, and which cells
        were cut. ``code`` gets the sides of the candidates that cut no cell. The pieces'
        polytopes are kept when ``keep_polytopes``; otherwise they are made only if asked for
        (a thin piece's LP), by running the kernel again on their cells with geometry on."""
        counts = candidate.sum(axis=1)
        first = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=first[1:])
        P = cells.polytopes
        top = int(P.slot.max()) + 1 if len(P.slot) else 0
        words = max(P.words, (top + int(counts.max(initial=0)) + 63) // 64)
        Gp = np.ascontiguousarray(Gp, dtype=np.float64)
        gp = np.ascontiguousarray(gp, dtype=np.float64)

        def run(sel, geometry):
            if sel is None:
                Q, f, G, g = P, first, Gp, gp
            else:
                Q = P.take(sel)
                rows, f = csr_rows(first, sel)
                G, g = Gp[rows], gp[rows]
            out = _run_kernel(self.kernel, Q, f, G, g, self.tol.empty, words, geometry,
                              self.threads, prune=True, budget=self.budget)
            self.stats["fragile_vertices"] += out.fragile
            return out

        pcell, sides, center, radius, _, geom, flags = run(None, keep_polytopes)
        # the sides are flat, piece by piece, in the order of the piece's cell's candidates
        T = counts[pcell]
        piece = np.repeat(np.arange(len(pcell)), T)
        offset = np.zeros(len(pcell) + 1, dtype=np.int64)
        np.cumsum(T, out=offset[1:])
        pair = np.repeat(first[pcell], T) + np.arange(offset[-1]) - np.repeat(offset[:-1], T)
        code_p = code[pcell]
        code_p[piece, pair_unit[pair]] = sides
        # a cell that comes back as one piece was not cut: it keeps its polytope and ball
        cut = np.bincount(pcell, minlength=len(counts)) > 1
        whole = ~cut[pcell]
        code[pcell[whole]] = code_p[whole]
        keep = np.flatnonzero(~whole)
        self.stats["cells_cut"] += int(cut.sum())
        self.stats["pieces_cut"] += len(keep) - int(cut.sum())
        self.stats["rounds"] += int(counts.max(initial=0))
        built = None
        if keep_polytopes:
            built = Polytopes(*geom)
            if len(keep) < len(built):
                built = built.take(keep)
        pieces = _CompiledPieces(pcell[keep], center[keep], radius[keep], built,
                                 lambda sel: Polytopes(*run(sel, True)[5]), P.dim)
        return pieces, pcell[keep], code_p[keep], cut, flags

    @staticmethod
    def _extremes(chunks, base, ids, G, g):
        """Max and min of ``G[i] . x + g[i]`` over the vertices of piece ``ids[i]``."""
        smax = np.empty(len(ids))
        smin = np.empty(len(ids))
        which = np.searchsorted(base, ids, side="right") - 1
        for c in distinct(which):
            sel = np.flatnonzero(which == c)
            hi, lo = _pair_extremes(chunks[c], ids[sel] - base[c], G[sel], g[sel])
            smax[sel], smin[sel] = hi, lo
        return smax, smin

    def _ball_lp(self, polytopes, idx, failed=None):
        """Chebyshev balls by LP of the polytopes ``idx`` of a Polytopes or the pieces of a
        split, pruned: the two paths give the LP the same rows (the centre of a ball that is
        not unique depends on them). With ``failed`` (a list), a problem the solver fails on
        gets radius -inf and its position appended there."""
        self.stats["ball_lps"] += len(idx)
        return polytopes.take_pruned(idx).chebyshev(self.backend, self.cap,
                                                    poll=self.budget.poll, failed=failed)

    def _balls(self, pieces: _Pieces):
        """Interior points and inradii: exact, or (counting) a lower bound that decides.

        The ball around a piece's vertex mean that touches its nearest facet is inside the
        piece (the mean is), so its radius is a certified lower bound on the inradius. An LP
        ball smaller than it is the solver's rounding (pieces thinner than its feasibility
        tolerance, ~1e-10): the certified ball is kept then, so such a piece stays a sliver as
        in the planar engine instead of vanishing."""
        center = pieces.center.copy()
        radius = pieces.inner_ball(center)
        # the bound decides "region" only one way; the rest (thin pieces, rare) get the exact
        # LP on their H-representation, which does not rely on the vertices (every piece when
        # the tree asks for exact balls)
        ask = (np.arange(len(radius)) if self.exact_balls
               else np.flatnonzero(radius <= self.tol.region))
        if ask.size:
            # a solver that fails on a piece (nearly parallel facets) leaves it the certified
            # ball: a thin piece stays a sliver, settled exactly
            failed = []
            c_lp, r_lp = self._ball_lp(pieces, ask, failed)
            self.stats["ball_lps_failed"] += len(failed)
            better = r_lp >= radius[ask]
            center[ask[better]], radius[ask[better]] = c_lp[better], r_lp[better]
        return center, radius

    def _finish(self, cells, cut, code, pieces, pcell, code_p, child_maps,
                doubts=None, check=None, fragile=0) -> Split:
        uncut = np.flatnonzero(~cut)
        center_p, radius_p = self._balls(pieces)
        region = radius_p > self.tol.region
        # however thin, a piece is set aside for the exact test, never dropped on its size
        sliver = ~region
        keep = np.flatnonzero(region)
        parent = np.concatenate([uncut, pcell[keep]])
        child_code = np.concatenate([code[uncut], code_p[keep]])
        center = np.concatenate([cells.center[uncut], center_p[keep]])
        radius = np.concatenate([cells.radius[uncut], radius_p[keep]])
        order = tree_order(parent, child_code)
        parent, child_code = parent[order], child_code[order]
        source = order                  # < len(uncut): an uncut cell; else a kept piece
        parents = cells.polytopes

        def build(rows):
            src = source[rows]
            whole = src < len(uncut)
            part = np.flatnonzero(whole)
            rest = np.flatnonzero(~whole)
            if not part.size:           # all pieces (the common case): already in order
                return pieces.take_pruned(keep[src - len(uncut)])
            built = Polytopes.concat([parents.take(uncut[src[part]]),
                                      pieces.take_pruned(keep[src[rest] - len(uncut)])],
                                     parents.dim)
            back = np.empty(len(rows), dtype=np.int64)
            back[np.concatenate([part, rest])] = np.arange(len(rows))
            return built.take(back)

        maps = lambda rows: child_maps(parent[rows], child_code[rows])  # noqa: E731
        bounds = None
        if check is not None:
            (uncut_err, uncut_rho), (piece_err, piece_rho), doubts = _filtered(
                self, cells, code, uncut, pieces, pcell, code_p, center_p, region, check,
                doubts, fragile)
            bounds = Certified(lambda rows: check.child_errors(parent[rows], child_code[rows]),
                               np.concatenate([uncut_err, piece_err[keep]])[order],
                               np.concatenate([uncut_rho, piece_rho[keep]])[order])
        children = VertexCells(build, center[order], radius[order], maps, certified=bounds)
        sl = np.flatnonzero(sliver)
        with_vertices(doubts, pcell, lambda idx: _vertex_lists(pieces.take(idx)),
                      lambda idx: _vertex_lists(cells.polytopes.take(idx)))
        slivers = SplitSlivers(parent=pcell[sl], code=code_p[sl], center=center_p[sl],
                               radius=radius_p[sl])
        return Split(children=children, parent=parent, code=child_code,
                     center=children.center, radius=children.radius, slivers=slivers,
                     doubts=doubts)


def _filtered(engine, cells, code, uncut, pieces, pcell, code_p, center_p, kept, check,
              doubts, fragile):
    """The certified mode's filter over a split (:mod:`.filtered`): every final piece
    (``pieces``, of cells ``pcell``, with codes ``code_p``, centres ``center_p``; ``kept``: the
    regions, the others slivers) and every uncut cell (``uncut``, children as they are) is
    checked against the layer's units. Returns the slot errors of the uncut cells' and the
    pieces' children, and the doubts with the cells the filter cannot certify marked for exact
    replacement (:func:`~powercells.enumerate.base.with_uncertified`).

    Slivers are checked too: a vertex the rounds decided at may end up in slivers only.
    Vertices with fewer than ``d`` edges (``fragile``, counted over the split) cannot come from
    certified signs; if some appeared and the filter flagged nothing, every cell of the batch
    is redone exactly."""
    n = len(code)
    piece_err = piece_errors(pcell, code_p, check.dn, check.dh, check.slot_err)
    test = _compiled_filter if engine.kernel is not None else uncertified
    threads = engine.threads if engine.kernel is not None else None
    # an uncut cell passed the vertex and region tests with these slot errors when it was made
    bad_p, rho_p = test(pieces.take(np.arange(len(pcell))), pcell, check.G, check.g,
                        check.dn, check.dh, piece_err, center_p,
                        np.where(kept, 0.0, np.inf), np.full(len(pcell), -1.0), threads)
    if test is uncertified:
        bad_u, rho_u = test(cells.polytopes.take(uncut), uncut, check.G, check.g, check.dn,
                            check.dh, check.slot_err[uncut], cells.center[uncut],
                            np.full(len(uncut), np.inf), check.rho[uncut], threads)
    else:                               # the batch's polytopes in place, the cut ones skipped
        active = np.zeros(n, dtype=bool)
        active[uncut] = True
        bad_u, rho_u = test(cells.polytopes, np.arange(n), check.G, check.g, check.dn,
                            check.dh, check.slot_err, cells.center, np.full(n, np.inf),
                            check.rho, threads, active)
        bad_u, rho_u = bad_u[uncut], rho_u[uncut]
    flagged = np.concatenate([pcell[bad_p], uncut[bad_u]])
    if fragile and not flagged.size:
        flagged = np.arange(n)
    if flagged.size:
        flagged = distinct(flagged)
        engine.stats["cells_uncertified"] += len(flagged)
        doubts = with_uncertified(doubts, flagged, code)
    return (check.slot_err[uncut], rho_u), (piece_err, rho_p), doubts


def _compiled_filter(P, parent, G, g, dn, dh, slot_err, center, radius, known, threads,
                     active=None):
    """:func:`.filtered.uncertified` in compiled code (:mod:`.filtered_kernel`), on ranges of
    the polytopes in the kernel threads (only the ``active`` ones, all by default)."""
    from . import filtered_kernel

    def c(a, dtype=np.float64):
        return np.ascontiguousarray(a, dtype=dtype)

    n = len(P)
    args = (c(P.X), c(P.inc, np.uint64), c(P.vstart, np.int64), c(P.N), c(P.h),
            c(P.slot, np.int64), c(P.cstart, np.int64), c(parent, np.int64), c(G), c(g),
            c(dn), c(dh), c(slot_err), c(center), np.isfinite(radius), c(known),
            np.ones(n, dtype=bool) if active is None else active)
    bad = np.zeros(n, dtype=bool)
    rho = np.zeros(n)
    in_kernel_threads(filtered_kernel.uncertified, n, threads or 1, *args, out=(bad, rho))
    return bad, rho


class _Check(NamedTuple):
    """What the certified mode's filter needs of a ReLU-type split (:mod:`.filtered`): the
    layer's unit-normal hyperplanes on the split cells, their error bounds (``inf`` on
    constant units), the cells' slot errors and vertex radii, and ``child_errors(cell,
    code)``, the children's map errors."""

    G: np.ndarray
    g: np.ndarray
    dn: np.ndarray
    dh: np.ndarray
    slot_err: np.ndarray
    rho: np.ndarray
    child_errors: object


class _Pieces:
    """The final pieces of a split, left in the chunks the rounds made them in (copied out only
    when asked for); ``center`` holds their vertex means."""

    def __init__(self, chunks, base, ids, center, dim):
        self.chunks = chunks
        self.center = center
        self.dim = dim
        self.which = np.searchsorted(np.asarray(base, dtype=np.int64), ids, side="right") - 1
        self.local = ids - np.asarray(base, dtype=np.int64)[self.which] if len(ids) else ids

    def __len__(self) -> int:
        return len(self.which)

    def _groups(self, idx):
        """``(chunk, positions in idx, local ids)`` for every chunk that ``idx`` reaches."""
        which = self.which[idx]
        for c in distinct(which):
            sel = np.flatnonzero(which == c)
            yield self.chunks[c], sel, self.local[idx[sel]]

    def take(self, idx) -> Polytopes:
        idx = np.asarray(idx, dtype=np.int64)
        parts, where = [], []
        for chunk, sel, local in self._groups(idx):
            parts.append(chunk.take(local))
            where.append(sel)
        if not parts:
            return Polytopes.empty(self.dim)
        built = Polytopes.concat(parts, self.dim)
        where = np.concatenate(where)
        if np.array_equal(where, np.arange(len(idx))):
            return built
        back = np.empty(len(idx), dtype=np.int64)
        back[where] = np.arange(len(idx))
        return built.take(back)

    def take_pruned(self, idx) -> Polytopes:
        """:meth:`take`, then :meth:`Polytopes.prune`."""
        return self.take(idx).prune()

    def inner_ball(self, center: np.ndarray) -> np.ndarray:
        """:meth:`Polytopes.inner_ball` of every piece, reading only the pieces' constraints."""
        out = np.empty(len(self))
        for chunk, sel, local in self._groups(np.arange(len(self))):
            rows, start = csr_rows(chunk.cstart, local)
            owner = np.repeat(np.arange(len(local)), np.diff(start))
            slack = chunk.h[rows] - np.einsum("cd,cd->c", chunk.N[rows], center[sel][owner])
            out[sel] = np.minimum.reduceat(slack, start[:-1])
        return out


class _CompiledPieces:
    """The final pieces of a compiled split: cells, vertex means and ball bounds; polytopes
    from ``built`` or, when not kept, rebuilt by ``rebuild(cells)`` (the kernel is deterministic
    and works cell by cell, so a cell's pieces come back in the same order)."""

    def __init__(self, cell, center, radius, built, rebuild, dim):
        self.cell = cell
        self.center = center
        self.radius = radius
        self.built = built
        self.rebuild = rebuild
        self.dim = dim
        self.first = np.searchsorted(cell, cell)    # each piece's cell's first piece
        self._last = None

    def __len__(self) -> int:
        return len(self.cell)

    def take(self, idx) -> Polytopes:
        idx = np.asarray(idx, dtype=np.int64)
        if self.built is not None:
            # the kernel gives a cell's pieces in the tree's order: often nothing to reorder
            if len(idx) == len(self.built) and np.array_equal(idx, np.arange(len(idx))):
                return self.built
            return self.built.take(idx)
        if idx.size == 0:
            return Polytopes.empty(self.dim)
        cells = distinct(self.cell[idx])
        # the last rebuild is kept: consecutive batches of children often share parents (all
        # of them share the root when the first layer is split)
        if self._last is None or not np.all(np.isin(cells, self._last[0])):
            self._last = (cells, self.rebuild(cells))
        cells, rebuilt = self._last
        sizes = np.searchsorted(self.cell, cells, side="right") - np.searchsorted(self.cell, cells)
        start = np.zeros(len(cells), dtype=np.int64)
        np.cumsum(sizes[:-1], out=start[1:])
        where = np.searchsorted(cells, self.cell[idx])
        return rebuilt.take(start[where] + idx - self.first[idx])

    def take_pruned(self, idx) -> Polytopes:
        """:meth:`take`: the kernel prunes the polytopes it makes."""
        return self.take(idx)

    def inner_ball(self, center: np.ndarray) -> np.ndarray:
        """The kernel's ball radii (``center`` is the pieces' vertex means)."""
        return self.radius


def _load_kernel():
    from .kernel import split_cells

    return split_cells


def _run_kernel(kernel, Q: Polytopes, first, G, g, eps, words, geometry, threads, bases=None,
                prune=False, budget: Budget | None = None, spread: bool = False):
    """The kernel over every cell of ``Q``: in one call, or (``threads`` > 1, enough work) over
    ranges of cells in a pool of threads (the kernel releases the GIL), merged in cell order,
    so the result does not depend on the thread count. ``bases``: the cells' first slot for
    their candidates (default: above their own slots); ``prune``: the pieces' polytopes come
    pruned (:meth:`Polytopes.prune`). ``spread``: share the cells among the threads whatever
    their estimated work (the second stage of :func:`_run_staged`, whose few cells each face
    many candidates: the pieces they make grow with them, unlike the estimate).

    ``budget`` is honoured inside the kernel: long calls run in worker threads while this
    thread watches the budget (and stays interruptible), and the kernel returns as soon as
    :attr:`Budget.stop` is set; then :class:`BudgetExceeded` is raised here."""
    budget = Budget() if budget is None else budget
    n = len(Q)
    bases = np.full(n, -1, dtype=np.int64) if bases is None else bases
    cells = PolytopeArrays(np.ascontiguousarray(Q.X, dtype=np.float64),
                           np.ascontiguousarray(Q.inc, dtype=np.uint64),
                           np.ascontiguousarray(Q.vstart, dtype=np.int64),
                           np.ascontiguousarray(Q.E, dtype=np.int64),
                           np.ascontiguousarray(Q.estart, dtype=np.int64),
                           np.ascontiguousarray(Q.N, dtype=np.float64),
                           np.ascontiguousarray(Q.h, dtype=np.float64),
                           np.ascontiguousarray(Q.slot, dtype=np.int64),
                           np.ascontiguousarray(Q.cstart, dtype=np.int64))
    candidates = Candidates(np.ascontiguousarray(first, dtype=np.int64), G, g,
                            np.ascontiguousarray(bases, dtype=np.int64))

    progress = np.zeros(8 * max(threads, 1) + 1, dtype=np.int64)

    def call(lo, hi, i=0):
        return kernel(cells, candidates, eps=eps, words=words, geometry=geometry, lo=lo, hi=hi,
                      prune=prune, stop=budget.stop, progress=progress[i:i + 1])

    # work of a cell ~ its vertices times its candidates; a few ranges per thread balance it
    counts = np.diff(first)
    work = np.diff(Q.vstart) * counts
    lead = int(np.ceil(np.log2(8 * threads)))
    if threads > 1 and n < 2 * threads and counts.max(initial=0) > lead + 2:
        # few cells cut by many units (the root): their pieces grow, unlike ``work``
        return _run_staged(kernel, Q, first, G, g, eps, words, geometry, threads, lead, bases,
                           prune, budget)
    small = work.sum() < _THREAD_MIN_WORK and not spread
    if small and counts.max(initial=0) <= _INLINE_MAX_CANDIDATES:
        out = call(0, n)            # short (a cell makes at most 2^8 pieces): in this thread
        budget.check_stopped()
        return out
    if threads <= 1 or n < 2 or small:
        ranges = [(0, n)]
    else:
        cum = np.cumsum(work)
        cuts = np.searchsorted(cum, cum[-1] * np.arange(1, 4 * threads) / (4 * threads))
        bounds = distinct(np.concatenate([[0], cuts + 1, [n]]).clip(0, n))
        ranges = list(itertools.pairwise(bounds))
    # in worker threads even for one range: this thread waits interruptibly, and an interrupt
    # or the budget's watchdog sets ``stop``, which every kernel call polls
    pool = worker_pool(threads)
    with budget.watching(progress):
        futures = [pool.submit(call, int(lo), int(hi), i) for i, (lo, hi) in enumerate(ranges)]
        try:
            outs = [wait_result(f, budget) for f in futures]
        except BaseException:
            # the calls still running see ``stop`` and return; their results (and the time
            # they take to free their pieces) are not waited for
            budget.stop[0] = 1
            raise
    if len(outs) == 1:
        return outs[0]
    geom = outs[0].geometry
    if geometry:
        geom = Polytopes.concat([Polytopes(*o.geometry) for o in outs], Q.dim)
        geom = PolytopeArrays(geom.X, geom.inc, geom.vstart, geom.E, geom.estart, geom.N, geom.h,
                              geom.slot, geom.cstart)
    return Pieces(*(np.concatenate([o[i] for o in outs]) for i in range(4)),
                  sum(o.fragile for o in outs), geom,
                  np.bitwise_or.reduce([o.flags for o in outs]))


def _within(lengths):
    """Position of every element inside its segment, for segments of the given lengths."""
    total = int(lengths.sum())
    return np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def _run_staged(kernel, Q: Polytopes, first, G, g, eps, words, geometry, threads, lead, bases,
                prune, budget):
    """:func:`_run_kernel` for a batch of fewer cells than threads (the root, say): the cells'
    first ``lead`` candidates in this thread, then the rest over the pieces they make, in
    threads. Splitting is depth first and in candidate order either way, and every candidate
    keeps its slot, so the pieces, their order, sides and polytopes are those of one call."""
    counts = np.diff(first)
    own = np.maximum.reduceat(np.r_[Q.slot, 0], Q.cstart[:-1]) + 1 if len(Q.slot) else \
        np.zeros(len(Q), dtype=np.int64)
    base = np.where(bases >= 0, bases, own)
    ka = np.minimum(counts, lead)
    rows_a = np.repeat(first[:-1], ka) + _within(ka)
    first_a = np.zeros(len(ka) + 1, dtype=np.int64)
    np.cumsum(ka, out=first_a[1:])
    a_cell, a_sides, a_center, a_radius, a_frag, a_geom, flags = _run_kernel(
        kernel, Q, first_a, G[rows_a], g[rows_a], eps, words, True, 1, base, budget=budget)
    QA = Polytopes(*a_geom)
    # every piece of the first stage with the rest of its cell's candidates
    rest = counts[a_cell] - ka[a_cell]
    first_b = np.zeros(len(a_cell) + 1, dtype=np.int64)
    np.cumsum(rest, out=first_b[1:])
    rows_b = np.repeat(first[a_cell] + ka[a_cell], rest) + _within(rest)
    b_piece, b_sides, b_center, b_radius, b_frag, b_geom, b_flags = _run_kernel(
        kernel, QA, first_b, G[rows_b], g[rows_b], eps, words, geometry, threads,
        base[a_cell] + ka[a_cell], prune, budget, spread=True)
    # the second stage's cells are pieces: any doubt there is about a piece of the cell
    touched = np.flatnonzero(b_flags)
    flags = flags.copy()
    flags[a_cell[touched]] |= 2
    # final pieces: first-stage pieces with no candidates left, and the second stage's, in the
    # order of their first-stage piece
    done = np.flatnonzero(rest == 0)
    source = np.concatenate([done, b_piece])
    order = np.argsort(source, kind="stable")
    piece_a = source[order]
    cell = a_cell[piece_a]
    center = np.concatenate([a_center[done], b_center])[order]
    radius = np.concatenate([a_radius[done], b_radius])[order]
    # sides: the first stage's for the piece, then the second stage's
    n_a = ka[cell]
    n_b = rest[piece_a]
    a_off = np.concatenate([[0], np.cumsum(ka[a_cell])])
    b_off = np.concatenate([[0], np.cumsum(rest[b_piece])])
    b_pos = np.maximum(order - len(done), 0)            # index among the second-stage pieces
    out_start = np.concatenate([[0], np.cumsum(n_a + n_b)])
    flat = np.concatenate([a_sides, b_sides])
    take = np.empty(int(out_start[-1]), dtype=np.int64)
    take[np.repeat(out_start[:-1], n_a) + _within(n_a)] = \
        np.repeat(a_off[piece_a], n_a) + _within(n_a)
    take[np.repeat(out_start[:-1] + n_a, n_b) + _within(n_b)] = \
        len(a_sides) + np.repeat(b_off[b_pos], n_b) + _within(n_b)
    sides = flat[take]
    geom = b_geom
    if geometry and done.size:      # else the second stage's pieces are already in order
        first_pieces = QA.take(done)
        both = Polytopes.concat([first_pieces.prune() if prune else first_pieces,
                                 Polytopes(*b_geom)], Q.dim).take(order)
        geom = PolytopeArrays(both.X, both.inc, both.vstart, both.E, both.estart, both.N,
                              both.h, both.slot, both.cstart)
    return Pieces(cell, sides, center, radius, a_frag + b_frag, geom, flags)


#: A cell is precut (VertexEngine.precut) when a layer could cut it into more than this many
#: cells (the bound of an arrangement in general position) ...
PRECUT_ABOVE = 100_000
#: ... by the layer's first units that cut it into at most this many pieces.
PRECUT_PIECES = 1024


def arrangement_bound(units: int, dim: int) -> int:
    """The most cells ``units`` hyperplanes cut a ``dim``-dimensional space into."""
    return sum(math.comb(units, i) for i in range(min(units, dim) + 1))


def precut_units(layer: Layer, dim: int) -> int | None:
    """How many of a layer's first units precut a cell (VertexEngine.precut), or None."""
    if not layer.is_switch or arrangement_bound(layer.out_dim, dim) <= PRECUT_ABOVE:
        return None
    p = 1
    while p + 1 < layer.out_dim and arrangement_bound(p + 1, dim) <= PRECUT_PIECES:
        p += 1
    return p


def _vertex_lists(P: Polytopes) -> list:
    return np.split(P.X, P.vstart[1:-1])


def _is_box(H, h, lo, hi) -> bool:
    """Whether ``H x <= h`` is exactly the box ``[lo, hi]`` (rows +-e_i, in any order)."""
    k = H.shape[1]
    if len(H) != 2 * k:
        return False
    nz = H != 0
    if not np.all(nz.sum(axis=1) == 1):
        return False
    axis = np.argmax(nz, axis=1)
    val = H[np.arange(len(H)), axis]
    bound = h / np.abs(val)
    upper = val > 0
    if sorted(axis[upper].tolist()) != list(range(k)) or sorted(axis[~upper].tolist()) != \
            list(range(k)):
        return False
    return bool(np.allclose(bound[upper], hi[axis[upper]], rtol=0, atol=0)
                and np.allclose(-bound[~upper], lo[axis[~upper]], rtol=0, atol=0))


def _pair_extremes(polytopes: Polytopes, cell: np.ndarray, G: np.ndarray, g: np.ndarray):
    """Max and min of ``G[p] . x + g[p]`` over the vertices of polytope ``cell[p]``, for every
    pair p."""
    rows, start = csr_rows(polytopes.vstart, cell)
    pair = np.repeat(np.arange(len(cell)), np.diff(start))
    S = affine_values(polytopes.X[rows], G[pair], g[pair])
    return np.maximum.reduceat(S, start[:-1]), np.minimum.reduceat(S, start[:-1])
