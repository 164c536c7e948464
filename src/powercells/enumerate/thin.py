"""Thin regions: cells below the region tolerance, settled exactly (DESIGN §6, SPEC §5.5).

An engine sets aside the cells whose inradius it finds at or below the region tolerance (its
*slivers*): float64 cannot tell a thin region from an empty cell there. The engines that decide
by vertex signs also report the cells where a vertex came within their ``empty`` tolerance of a
hyperplane (their *doubts*, :class:`~.base.SplitDoubts`): a region thinner than that may hide
there, which they would never cut out. :class:`ThinSplitter` wraps any engine and settles each
of them in exact arithmetic (:mod:`.exact_cells`):

* the sliver's parent node is placed exactly (its code path, followed from the engine's interior
  point of the parent, layer by layer);
* the sliver's partial code is cut by the layer's undecided units with exact strict-feasibility
  tests (:func:`powercells.lp.exact.strict_point`);
* every child with an exact interior witness is a region, counted like any other and marked
  *thin*; a cell with a Farkas certificate of emptiness is dropped;
* a doubtful cell is cleared where every vertex the engine decided at is one exact vertex of
  the arrangement (exact incidence), or every unit that came near misses the cell (a Farkas
  certificate each); otherwise it is split exactly with the units the engine settled beyond
  doubt fixed, and its exact children that the engine made too are dropped;
* a unit the constant-unit rule took as constant with a float gradient (or zero constant) that
  is not 0.0 is checked exactly; if it is not exactly constant with the engine's sign, the
  cell's exact children replace the engine's.

A thin region is then split by the following layers in exact arithmetic too (the float engines
are not asked to cut cells below their own resolution), so its whole subtree is exact. Batches
that hold thin cells are :class:`Mixed`: the engine's cells and the exact ones, in tree order.

What cannot be settled stays a sliver (or a doubt), reported as *undecided* and never counted:
a parent whose interior point lies exactly on a hyperplane (the engine's constant-unit rule
differs from exact arithmetic there), or an engine that exposes no interior points (``points``).
"""

from __future__ import annotations

from collections import OrderedDict
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from .base import Split, SplitSlivers, tree_order

if TYPE_CHECKING:
    from .exact_cells import ExactCell

# exact arithmetic (.exact_cells) is imported where a sliver is met: most runs meet none

__all__ = ["Mixed", "ThinSplitter"]

#: Exact cells kept by :meth:`ThinSplitter._placed` (ancestors shared by the parents it places).
_NODES_KEPT = 128


class Mixed:
    """A batch of an engine's cells and exact cells, in tree order: cell ``i`` is the next of
    ``thin`` where ``is_thin[i]``, else the next of the engine's batch (None if it has none)."""

    def __init__(self, engine_batch, thin: list, is_thin: np.ndarray):
        self.engine = engine_batch
        self.thin = thin
        self.is_thin = is_thin

    def __len__(self) -> int:
        return len(self.is_thin)


class ThinSplitter:
    """An engine that settles its slivers exactly (module docstring). It has the engine's
    interface (``root``, ``batch_size``, ``take``, ``split``, ``cells``, ``stats``,
    ``budget``) and passes the engine's batches through untouched while no thin cell exists.

    Parameters
    ----------
    inner : Engine
        The engine whose slivers are settled.
    layers : list of Layer
        The layers the engine splits by (engine coordinates); see :meth:`bind`.
    domain_rows : (H, h)
        The domain ``H t <= h`` in engine coordinates.
    cells_kind : str or None
        The geometry the engine's batches carry (``"polygons"``, ``"intervals"``); thin cells
        get theirs from their exact rows.
    """

    def __init__(self, inner, layers, domain_rows, cells_kind=None):
        self.engine = inner
        self.name = inner.name
        self.bind(layers)
        self.domain_rows = domain_rows
        self.cells_kind = cells_kind
        self.counts = {"thin_regions": 0, "thin_empty": 0, "undecided": 0, "doubts": 0,
                       "doubts_cleared": 0, "cells_replaced": 0}
        self._nodes: OrderedDict = OrderedDict()        # code path -> ExactCell (_placed)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_nodes"] = OrderedDict()
        return state

    def bind(self, layers) -> None:
        """The layers that ``split`` will be given, by identity: a worker process keeps one
        splitter per run but receives a fresh copy of the layers with every task."""
        self.layers = list(layers)          # held, so the ids below stay theirs
        self.depth_of = {id(layer): d for d, layer in enumerate(self.layers)}
        inner = getattr(self.engine, "bind", None)
        if inner is not None:
            inner(self.layers)

    @property
    def empty(self) -> float:
        """The engine's empty tolerance (engine coordinates): the band of its vertex signs."""
        tol = getattr(self.engine, "tol", None)
        return 0.0 if tol is None or tol.empty is None else float(tol.empty)

    # ------------------------------------------------------------- the engine interface
    @property
    def budget(self):
        return self.engine.budget

    @budget.setter
    def budget(self, value):
        self.engine.budget = value

    @property
    def stats(self) -> dict:
        stats = self.engine.stats
        out = stats.as_dict() if hasattr(stats, "as_dict") else dict(stats)
        out.update(self.counts)
        return out

    def root(self, domain):
        return self.engine.root(domain)

    def cells(self, batch):
        return self.engine.cells(batch)

    def batch_size(self, layer) -> int:
        return self.engine.batch_size(layer)

    def take(self, batch, lo: int, hi: int):
        if not isinstance(batch, Mixed):
            return self.engine.take(batch, lo, hi)
        hi = min(hi, len(batch))
        mask = batch.is_thin
        t_lo, t_hi = int(mask[:lo].sum()), int(mask[:hi].sum())
        e_lo, e_hi = lo - t_lo, hi - t_hi
        eng = (self.engine.take(batch.engine, e_lo, e_hi)
               if batch.engine is not None and e_hi > e_lo else None)
        return Mixed(eng, batch.thin[t_lo:t_hi], mask[lo:hi])

    def precut(self, batch, layer):
        """The engine's pieces of a cell (see :meth:`VertexEngine.precut
        <powercells.enumerate.vertex.VertexEngine.precut>`), or None: never of thin cells."""
        inner = getattr(self.engine, "precut", None)
        if inner is None or isinstance(batch, Mixed):
            return None
        return inner(batch, layer)

    def split(self, batch, layer) -> Split:
        depth = self.depth_of[id(layer)]
        if not isinstance(batch, Mixed):
            res = self.engine.split(batch, layer)
            if not len(res.slivers) and res.doubts is None:
                return res
            return self._settle(res, None, batch, [], layer, depth)
        where = np.flatnonzero(~batch.is_thin)
        res = None
        if batch.engine is not None and len(where):
            res = self.engine.split(batch.engine, layer)
        thin_parents = list(zip(np.flatnonzero(batch.is_thin), batch.thin))
        return self._settle(res, where, batch.engine, thin_parents, layer, depth)

    # ------------------------------------------------------------- settling
    def _settle(self, res, where, engine_batch, thin_parents, layer, depth) -> Split:
        """The engine's split (``res``, of the batch's engine cells at positions ``where``;
        None: all of them) merged with the exact children of its slivers and thin cells."""
        from .exact_cells import split_exact

        new = []                                # (parent position, ExactCell)
        keep = []                               # slivers left undecided
        unsettled = []                          # doubts left undecided
        replaced = set()                        # cells whose engine children are wrong
        doubts = None if res is None else res.doubts
        if res is not None and (len(res.slivers) or doubts is not None):
            sl = res.slivers
            points = self._points(engine_batch)
            placed: dict[int, ExactCell | None] = {}

            def parent_of(p):
                if p not in placed:
                    placed[p] = None if points is None else self._placed(points[p], depth)
                return placed[p]

            for j in range(len(sl)):
                self.engine.budget.poll()       # exact work can be long: budgets stop it too
                p = int(sl.parent[j])
                parent = parent_of(p)
                if parent is None:
                    keep.append(j)
                    continue
                children = split_exact(parent, layer, fixed=sl.code[j], hint=sl.center[j],
                                       depth=depth)
                if not children:
                    self.counts["thin_empty"] += 1
                pos = p if where is None else int(where[p])
                new.extend((pos, child) for child in children)
            for j in range(len(doubts) if doubts is not None else 0):
                self.engine.budget.poll()
                p = int(doubts.parent[j])
                parent = parent_of(p)
                if parent is None:
                    k = len(self.domain_rows[0][0])
                    unsettled.append((j, np.full(k, np.nan) if points is None else points[p]))
                    continue
                children, wrong = self._doubtful(parent, doubts, j, layer, depth, points[p])
                pos = p if where is None else int(where[p])
                new.extend((pos, child) for child in children)
                if wrong:
                    replaced.add(pos)
                    for child in children:
                        child.regular = True
        for pos, cell in thin_parents:
            self.engine.budget.poll()
            for child in split_exact(cell, layer, depth=depth):
                child.regular = cell.regular        # thin (or regular) as their parent
                new.append((int(pos), child))
        return self._merged(res, where, new, keep, layer, unsettled, replaced)

    def _doubtful(self, parent: ExactCell, doubts, j: int, layer, depth: int, hint):
        """The exact children of a cell in doubt (:class:`~.base.SplitDoubts`) that the engine
        may have missed, with the ones it made among them (:meth:`_merged` drops those).

        The engine decided every side from the signs of vertices, taking a vertex within
        ``empty`` of a hyperplane as on it; where every such decision is exactly true, its
        pieces are the exact ones and it missed nothing. So the cell is cleared when

        * each vertex where it decided (its pieces', or the cell's own when only units that
          cut no piece came near) is one exact vertex of the arrangement: the hyperplanes near
          it meet exactly in one point (:func:`~.exact_cells.vertices_exact`; concurrent and
          duplicate units, hyperplanes through a corner); or
        * no piece's vertex came near a unit that cuts the cell, and each unit that came near
          is empty on its far side over the whole cell (one Farkas certificate each).

        Otherwise the cell is split exactly, with the units the engine settled beyond doubt
        fixed.

        Units the constant-unit rule took as constant with a float gradient that is not 0 are
        checked first: if one is not exactly constant, or its exact sign is not the engine's
        code, every child the engine made of the cell is wrong (its code, its geometry for the
        later layers), and the cell's exact children replace them.

        Returns ``(children, replace)``."""
        from .exact_cells import (
            constant_codes,
            empty_sides,
            split_exact,
            vertices_exact,
        )

        self.counts["doubts"] += 1
        if doubts.uncertified is not None and doubts.uncertified[j]:
            # the certified mode's filter could not prove the engine's split: it is redone
            self.counts["cells_replaced"] += 1
            free = np.full(len(doubts.code[j]), -1, dtype=np.int16)
            return split_exact(parent, layer, fixed=free, hint=hint, depth=depth), True
        cancelled = (np.empty(0, dtype=np.intp) if doubts.cancelled is None
                     else np.flatnonzero(doubts.cancelled[j]))
        if cancelled.size:
            # a max unit's pairs are not checked one by one: its cell is replaced
            exact = constant_codes(parent, layer, cancelled) if layer.is_switch else [None]
            if any(c is None or c != doubts.code[j][u] for c, u in zip(exact, cancelled)):
                self.counts["cells_replaced"] += 1
                code = doubts.code[j].copy()
                code[cancelled] = -1
                code[np.flatnonzero(doubts.near[j])] = -1
                return split_exact(parent, layer, fixed=code, hint=hint, depth=depth), True
            if not doubts.touched[j] and not doubts.near[j].any():
                self.counts["doubts_cleared"] += 1
                return [], False
        points = None if doubts.points is None else doubts.points[j]
        if (points is not None and layer.is_switch
                and vertices_exact(parent, layer, points, eps=self.empty)):
            self.counts["doubts_cleared"] += 1
            return [], False
        code = doubts.code[j].copy()
        near = np.flatnonzero(doubts.near[j])
        cleared = layer.is_switch and not doubts.touched[j]
        if near.size and layer.is_switch:
            empty = np.array(empty_sides(parent, layer, near, 1 - code[near], hint=hint,
                                         depth=depth), dtype=bool)
            code[near[~empty]] = -1
            cleared = cleared and bool(empty.all())
        if cleared:
            self.counts["doubts_cleared"] += 1
            return [], False
        return split_exact(parent, layer, fixed=code, hint=hint, depth=depth), False

    def _points(self, engine_batch):
        get = getattr(self.engine, "points", None)
        return None if get is None or engine_batch is None else get(engine_batch)

    def _placed(self, point, depth: int) -> ExactCell | None:
        """The exact cell of the depth-``depth`` node containing an engine interior point.

        The ancestors met on the way are kept by code path (the latest ``_NODES_KEPT``): the
        parents settled in a split share them, in tree order, and a kept cell keeps its layer
        values (the object-array products that dominate placing). The cell itself is not kept:
        a wide layer's exact cells are large (~100 KB at 512 units), and its doubts and slivers
        are settled in one pass."""
        from .exact_cells import Unplaced, exact_root, place

        H, h = self.domain_rows
        try:
            first = exact_root(H, h, point)
            point = first.witness
            cell = self._kept(first) if depth else first
            for d in range(depth):
                cell = place(cell, self.layers[d], point, depth=d)
                if d + 1 < depth:
                    cell = self._kept(cell)
        except Unplaced:
            return None
        return cell

    def _kept(self, cell: ExactCell) -> ExactCell:
        """The kept cell with this code path (any interior witness serves), or this one."""
        got = self._nodes.get(cell.path)
        if got is not None:
            self._nodes.move_to_end(cell.path)
            return got
        self._nodes[cell.path] = cell
        if len(self._nodes) > _NODES_KEPT:
            self._nodes.popitem(last=False)
        return cell

    def _merged(self, res, where, new, keep, layer, unsettled=(), replaced=()) -> Split:
        K = layer.out_dim
        k = len(self.domain_rows[0][0])
        engine_children = None
        if res is not None:
            r_parent = res.parent if where is None else where[res.parent]
            r_code, r_center, r_radius = res.code.reshape(-1, K), res.center, res.radius
            r_cells = res.cells
            engine_children = res.children
            if replaced:
                # the engine's children of these cells are wrong: their exact ones replace them
                idx = np.flatnonzero(~np.isin(r_parent, list(replaced)))
                r_parent, r_code = r_parent[idx], r_code[idx]
                r_center, r_radius = r_center[idx], r_radius[idx]
                if r_cells is not None:
                    r_cells = (r_cells[idx] if isinstance(r_cells, np.ndarray)
                               else r_cells.take(idx))
                engine_children = _select(engine_children, idx)
        else:
            r_parent = np.empty(0, dtype=np.int64)
            r_code = np.empty((0, K), dtype=np.int16)
            r_center, r_radius, r_cells = np.empty((0, k)), np.empty(0), None
        if new:
            t_parent = np.array([p for p, _ in new], dtype=np.int64)
            t_code = np.array([c.code for _, c in new], dtype=np.int16).reshape(-1, K)
            t_center = np.array([c.point() for _, c in new]).reshape(-1, k)
            t_radius = np.array([c.radius() for _, c in new])
        else:
            t_parent, t_code = np.empty(0, dtype=np.int64), np.empty((0, K), dtype=np.int16)
            t_center, t_radius = np.empty((0, k)), np.empty(0)
        parent = np.concatenate([r_parent.astype(np.int64), t_parent])
        code = np.concatenate([r_code.astype(np.int16), t_code])
        is_thin = np.concatenate([np.zeros(len(r_parent), bool), np.ones(len(t_parent), bool)])
        # exact cells that replace an engine's (and their descendants) are not reported as thin
        regular = np.concatenate([np.zeros(len(r_parent), bool),
                                  np.array([c.regular for _, c in new], dtype=bool)])
        order = tree_order(parent, code)
        parent, code, is_thin = parent[order], code[order], is_thin[order]
        regular = regular[order]
        # a thin cell with the code of one of the engine's children is that child: drop it
        same = np.zeros(len(order), dtype=bool)
        if len(order) > 1:
            same[1:] = (parent[1:] == parent[:-1]) & np.all(code[1:] == code[:-1], axis=1)
        drop = same & is_thin
        alive = ~drop
        thin_order = [int(i) - len(r_parent) for i in order[is_thin & alive]]
        order = order[alive]
        parent, code, is_thin = parent[alive], code[alive], is_thin[alive]
        regular = regular[alive]
        thin_cells = [new[i][1] for i in thin_order]
        self.counts["thin_regions"] += int((is_thin & ~regular).sum())
        center = np.concatenate([r_center.reshape(-1, k), t_center])[order]
        radius = np.concatenate([r_radius, t_radius])[order]
        cells = self._cells(r_cells, len(r_parent), [new[i][1] for i in range(len(new))], order)
        if thin_cells or res is None:
            children = Mixed(engine_children, thin_cells, is_thin)
        else:
            children = engine_children
        slivers = self._undecided(res, where, keep, unsettled)
        return Split(children=children, parent=parent, code=code, center=center,
                     radius=radius, slivers=slivers, cells=cells, thin=is_thin & ~regular)

    def _undecided(self, res, where, keep, unsettled) -> SplitSlivers:
        """The slivers and doubts that could not be settled (their parent could not be
        placed): reported, never counted. A doubt is reported with its cell's code (-1 for
        the units that cut it), the engine's interior point of the cell and radius 0."""
        if res is None:
            k = len(self.domain_rows[0][0])
            return SplitSlivers(np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.int16),
                                np.empty((0, k)), np.empty(0))
        sl = res.slivers
        idx = np.array(keep, dtype=np.intp)
        parent, code = sl.parent[idx], sl.code[idx]
        center, radius = sl.center[idx], sl.radius[idx]
        if len(unsettled):
            # a doubt names a cell: its interior point, where there is one
            jdx = np.array([j for j, _ in unsettled], dtype=np.intp)
            doubts = res.doubts
            parent = np.concatenate([parent, doubts.parent[jdx]])
            code = np.concatenate([code.astype(np.int16), doubts.code[jdx]])
            center = np.concatenate([center, np.array([c for _, c in unsettled],
                                                      dtype=np.float64)])
            radius = np.concatenate([radius, np.zeros(len(jdx))])
        self.counts["undecided"] += len(parent)
        parent = parent if where is None else where[parent]
        return SplitSlivers(parent=parent.astype(np.int64), code=code,
                            center=center, radius=radius)

    def _cells(self, r_cells, n_regular, thin, order):
        """The children's geometry (polygons or intervals), thin ones from their exact rows."""
        if self.cells_kind is None or (n_regular and r_cells is None):
            return None
        if self.cells_kind == "intervals":
            parts = [np.asarray(r_cells).reshape(-1, 2)] if n_regular else []
            parts.append(np.array([_interval(c) for c in thin]).reshape(-1, 2))
            return np.concatenate(parts)[order]
        from ..geometry.polygons import Polygons

        parts = [r_cells] if n_regular else []
        parts.extend(Polygons.single(_polygon(c)) for c in thin)
        return Polygons.concat(parts).take(order)


def _select(batch, idx: np.ndarray):
    """An engine batch's cells ``idx`` (in that order)."""
    take = getattr(batch, "take", None)
    return take(idx) if take is not None else [batch[i] for i in idx]


def _interval(cell: ExactCell) -> tuple[float, float]:
    """A 1-D cell's ``[lo, hi]`` from its rows ``a t < b`` (exact, then rounded)."""
    lo, hi = None, None
    for (a,), b in zip(cell.H, cell.h):
        a, b = int(a), int(b)
        if a > 0:
            v = Fraction(b, a)
            hi = v if hi is None else min(hi, v)
        elif a < 0:
            v = Fraction(b, a)
            lo = v if lo is None else max(lo, v)
    return float(lo), float(hi)


def _polygon(cell: ExactCell) -> np.ndarray:
    """A 2-D cell's vertices, counter-clockwise: the domain's rows and the cell's clipped
    exactly (Sutherland-Hodgman in rationals), then rounded."""
    big = Fraction(1 << 64)
    poly = [(-big, -big), (big, -big), (big, big), (-big, big)]
    approx = np.array([(float(x), float(y)) for x, y in poly])
    for (a0, a1), b in zip(cell.H, cell.h):
        a0, a1, b = int(a0), int(a1), int(b)
        if a0 == 0 and a1 == 0:
            continue
        if _misses(a0, a1, b, approx):
            continue                    # every vertex strictly inside: the row cuts nothing
        out = []
        for i, (x, y) in enumerate(poly):
            nx, ny = poly[(i + 1) % len(poly)]
            fa = a0 * x + a1 * y - b
            fb = a0 * nx + a1 * ny - b
            if fa <= 0:
                out.append((x, y))
            if (fa < 0 < fb) or (fb < 0 < fa):
                s = fa / (fa - fb)
                out.append((x + s * (nx - x), y + s * (ny - y)))
        poly = out
        if not poly:
            break
        approx = np.array([(float(x), float(y)) for x, y in poly])
    return np.array([(float(x), float(y)) for x, y in poly], dtype=np.float64).reshape(-1, 2)


def _misses(a0: int, a1: int, b: int, approx: np.ndarray) -> bool:
    """Whether ``a0 x + a1 y < b`` holds strictly at every vertex, proven in floating point:
    ``approx`` holds the vertices rounded to float64 and the value is trusted only with a
    margin far above its rounding error (a few units in the last place of its terms); an
    exact clip is skipped only when it would keep the polygon as it is."""
    try:
        f0, f1, fb = float(a0), float(a1), float(b)
    except OverflowError:
        return False
    x, y = approx[:, 0], approx[:, 1]
    value = f0 * x + f1 * y - fb
    margin = 1e-12 * (abs(f0) * np.abs(x) + abs(f1) * np.abs(y) + abs(fb))
    return bool(np.all(value < -margin)) and bool(np.all(np.isfinite(value)))
