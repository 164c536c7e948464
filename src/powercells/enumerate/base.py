"""What an engine gives the driver (DESIGN §2).

An engine splits a *batch* of nodes of one depth by the next layer. It defines its own batch type
(the ``lp`` engine: a list of nodes; the ``planar`` engine: columnar polygons) and provides

``root(domain) -> batch``
    the domain as a batch of one node;
``batch_size(layer) -> int``
    how many nodes it wants per call (1 for the ``lp`` engine, thousands for ``planar``);
``split(batch, layer) -> Split``
    every child of every node in the batch, grouped by parent in batch order and sorted by code
    within a parent, with the slivers it set aside;
``take(batch, lo, hi)``/``len(batch)``
    cutting a batch of children into the next batches;
``cells(batch)``
    the batch's cell geometry (polygons, intervals) for engines that keep one, else None;
``points(batch)``
    an interior point of every cell (optional: without it, slivers cannot be settled exactly
    and are reported as undecided, see :mod:`.thin`).

Nothing else crosses the boundary, so engines can be swapped and cross-checked node for node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Made", "Split", "SplitDoubts", "SplitSlivers", "split_doubts", "tree_order",
           "with_vertices"]


@dataclass
class SplitSlivers:
    """Slivers set aside while splitting a batch: cells with a certified interior but inradius
    <= the region tolerance. ``parent`` indexes the split batch; ``code`` uses -1 for units the
    engine had not decided when it set the sliver aside."""

    parent: np.ndarray
    code: np.ndarray
    center: np.ndarray
    radius: np.ndarray

    def __len__(self) -> int:
        return len(self.parent)


@dataclass
class SplitDoubts:
    """Cells of a split batch where floating point may have missed a thin child.

    An engine that decides sides by the signs of a cell's vertices cannot tell a vertex within
    the ``empty`` tolerance of a hyperplane from one on it: the cell may hold a region thinner
    than that on the far side, which it would never make. It reports such cells here, and
    :class:`~powercells.enumerate.thin.ThinSplitter` settles them exactly.

    Attributes
    ----------
    parent : ndarray of int64, shape (m,)
        The cells, as indices of the split batch.
    code : ndarray of int16, shape (m, K)
        The engine's code of each cell, ``-1`` for the units that cut it (their sides vary
        over its children).
    near : ndarray of bool, shape (m, K)
        Units that do not cut the cell but have a vertex within ``empty`` of their hyperplane
        (their other side may hold a thin region).
    touched : ndarray of bool, shape (m,)
        Some piece of the cell had a vertex within ``empty`` of a unit that cut the cell (a
        region may be lost between near-concurrent hyperplanes).
    points : list of ndarray or None
        Per cell, the vertices where its sides were decided ``(p, k)``: its pieces' (touched
        cells) or its own (None where not given). If each is exactly one vertex of the
        arrangement, every side the engine decided there is exact and its pieces are the exact
        ones (:func:`~powercells.enumerate.exact_cells.vertices_exact`).
    cancelled : ndarray of bool, shape (m, K), or None
        Units the constant-unit rule took as constant on the cell although their float gradient
        is not 0 (:meth:`~powercells.enumerate.pullback.Hyperplanes.cancelled`). If one is not
        exactly constant, or its exact sign is not the engine's code, the engine's children of
        the cell are wrong as a whole and are replaced by exact ones.
    uncertified : ndarray of bool, shape (m,), or None
        The certified mode: cells where a decision was beyond the float filter's proof
        (:mod:`~powercells.enumerate.vertex.filtered`); their exact children replace the
        engine's.
    """

    parent: np.ndarray
    code: np.ndarray
    near: np.ndarray
    touched: np.ndarray
    points: list | None = None
    cancelled: np.ndarray | None = None
    uncertified: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.parent)


@dataclass
class Split:
    """The children of a batch of nodes under one layer.

    Attributes
    ----------
    children : engine batch
        The children as the engine's own batch type (input to the next split).
    parent : ndarray of int64, shape (n,)
        Index of each child's parent in the split batch (non-decreasing).
    code, center, radius : ndarray
        The children's layer codes (n, K), Chebyshev centres (n, k) and inradii (n,).
    slivers : SplitSlivers
    cells : Polygons or ndarray or None
        The children's cell geometry, from engines whose spec names one
        (:attr:`EngineSpec.cells <powercells.enumerate.engines.EngineSpec>`): polygons (planar),
        intervals ``(n, 2)`` (interval).
    thin : ndarray of bool or None
        Which children are thin regions, settled exactly (:mod:`.thin`); None: none is.
    doubts : SplitDoubts or None
        Cells that may hold thin children the engine did not make (settled by :mod:`.thin`).
    """

    children: object
    parent: np.ndarray
    code: np.ndarray
    center: np.ndarray
    radius: np.ndarray
    slivers: SplitSlivers
    cells: object = None
    thin: np.ndarray | None = None
    doubts: SplitDoubts | None = None


def split_doubts(code: np.ndarray, crossing: np.ndarray, near: np.ndarray,
                 touched: np.ndarray, cancelled: np.ndarray | None = None) -> SplitDoubts | None:
    """The :class:`SplitDoubts` of a split batch (None when no cell is in doubt), from every
    cell's code ``(n, K)``, its cutting units, its near units, its touched flag and its
    cancelled units (see there)."""
    doubtful = near.any(axis=1) | touched
    if cancelled is not None:
        doubtful |= cancelled.any(axis=1)
    flagged = np.flatnonzero(doubtful)
    if not flagged.size:
        return None
    code = code[flagged].astype(np.int16)
    code[crossing[flagged]] = -1
    return SplitDoubts(parent=flagged.astype(np.int64), code=code,
                       near=near[flagged] & ~crossing[flagged], touched=touched[flagged],
                       cancelled=None if cancelled is None else cancelled[flagged])


def with_uncertified(doubts: SplitDoubts | None, cells: np.ndarray,
                     code: np.ndarray) -> SplitDoubts:
    """``doubts`` with the cells ``cells`` (sorted indices of the split batch, whose codes
    are ``code[cells]``) marked uncertified, added where they are not in doubt already."""
    if doubts is None:
        K = code.shape[1]
        doubts = SplitDoubts(parent=np.empty(0, dtype=np.int64),
                             code=np.empty((0, K), dtype=np.int16),
                             near=np.zeros((0, K), dtype=bool), touched=np.zeros(0, dtype=bool))
    old = np.isin(cells, doubts.parent)
    add = cells[~old]
    n_add = len(add)
    parent = np.concatenate([doubts.parent, add.astype(np.int64)])
    order = np.argsort(parent, kind="stable")
    flag = np.concatenate([np.zeros(len(doubts), dtype=bool) if doubts.uncertified is None
                           else doubts.uncertified, np.ones(n_add, dtype=bool)])
    flag[np.flatnonzero(np.isin(doubts.parent, cells))] = True
    cancelled = (None if doubts.cancelled is None else
                 np.concatenate([doubts.cancelled,
                                 np.zeros((n_add, doubts.cancelled.shape[1]), dtype=bool)]))
    return SplitDoubts(
        parent=parent[order],
        code=np.concatenate([doubts.code, code[add].astype(np.int16)])[order],
        near=np.concatenate([doubts.near,
                             np.zeros((n_add, doubts.near.shape[1]), dtype=bool)])[order],
        touched=np.concatenate([doubts.touched, np.zeros(n_add, dtype=bool)])[order],
        points=None, cancelled=None if cancelled is None else cancelled[order],
        uncertified=flag[order])


def with_vertices(doubts: SplitDoubts | None, pcell: np.ndarray, piece_vertices,
                  cell_vertices) -> None:
    """Fill ``doubts.points``: a touched cell's pieces' vertices (``pcell`` the pieces' cells,
    ``piece_vertices(idx)`` the vertex arrays of pieces ``idx``), any other cell's own
    (``cell_vertices(idx)``, of cells ``idx`` of the batch)."""
    if doubts is None:
        return
    touched = doubts.parent[doubts.touched]
    idx = np.flatnonzero(np.isin(pcell, touched))
    points = {int(c): [] for c in doubts.parent}
    for i, xy in zip(idx, piece_vertices(idx)):
        points[int(pcell[i])].append(xy)
    own = np.flatnonzero(~doubts.touched)
    for j, xy in zip(own, cell_vertices(doubts.parent[own])):
        points[int(doubts.parent[j])].append(xy)
    doubts.points = [np.concatenate(points[int(c)]) if points[int(c)] else None
                     for c in doubts.parent]


def tree_order(parent: np.ndarray, code: np.ndarray) -> np.ndarray:
    """The order by parent, then by code (lexicographic): the tree's order of children."""
    keys = code
    if code.size and code.min() >= 0 and code.max() <= 1:
        # 0/1 codes packed eight to a byte keep their lexicographic order (zero padding last)
        keys = np.packbits(code.astype(np.uint8), axis=1)
    return np.lexsort(tuple(keys[:, j] for j in range(keys.shape[1] - 1, -1, -1)) + (parent,))


class Made:
    """A batch column that engines make lazily (``column(rows)``), once made: what a batch is
    pickled with when it goes to a worker process (closures cannot travel). ``Made(value)(rows)``
    gives the value's rows: ``value.take(rows)``, or each array's rows for a tuple of arrays."""

    def __init__(self, value):
        self.value = value

    def __call__(self, rows):
        if isinstance(self.value, tuple):
            return tuple(a[rows] for a in self.value)
        return self.value.take(rows)
