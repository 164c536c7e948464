"""The ``interval`` engine: exact subdivision of 1-D domains (a segment of the input line, or
the segment between two input points), no LP.

Every cell is an interval ``[lo, hi]`` with the affine map ``z = a t + B`` of the current layer.
Splitting a batch of cells by the next layer, vectorised over the batch:

1. Every unit is pulled back; constant units are decided by the rule of the ``lp`` engine (SPEC
   §3.4). For every other unit, every pair of its pieces that changes order inside the cell
   gives a candidate breakpoint (a ReLU-type unit has one: its root).
2. A cell's candidate breakpoints, sorted and merged when closer than the ``empty`` tolerance
   (duplicate or concurrent units), cut it into sub-intervals; every sub-interval gets the codes
   of the network at its midpoint, where no unit ties (ties of constant units go to the smaller
   piece, as everywhere).
3. Consecutive sub-intervals with the same code are merged (a candidate breakpoint of a maxout
   unit need not be one of its envelope). A piece longer than twice the region tolerance is a
   child; a shorter one is a sliver, settled exactly by :mod:`.thin`.
4. A cell where two breakpoints merged, or a breakpoint fell within ``empty`` of an end, may
   hide an interval shorter than that: it is reported in the split's
   :class:`~.base.SplitDoubts` and split exactly by :mod:`.thin`.
"""

from __future__ import annotations

import numpy as np

from ..network.layers import Layer
from .base import Made, Split, SplitDoubts, SplitSlivers, tree_order
from .budget import Budget
from .engines import EngineSetup
from .pullback import pull_back

__all__ = ["IntervalCells", "IntervalEngine"]


#: Floats of the per-(sub-interval, unit, piece) values computed at once.
_VALUES_BUDGET = 1 << 22


class IntervalCells:
    """A batch of 1-D cells: ``lo``, ``hi`` (n,) and the maps ``a``, ``B`` (n, D) of the
    current layer's output, ``z = a t + B``.

    The maps are made when a batch is split (``maps(rows)`` gives them for rows of the batch
    the cells were made in): a wide layer's children would otherwise hold children x units
    floats each, most of them before they are split, and the last layer's never are."""

    def __init__(self, lo, hi, maps, rows=None):
        self.lo, self.hi = lo, hi
        self._maps = maps
        self._rows = np.arange(len(lo)) if rows is None else rows
        self._made = None

    @classmethod
    def eager(cls, lo, hi, a, B) -> IntervalCells:
        return cls(lo, hi, lambda rows: (a[rows], B[rows]))

    def __len__(self) -> int:
        return len(self.lo)

    def _get(self):
        if self._made is None:
            self._made = self._maps(self._rows)
        return self._made

    @property
    def a(self) -> np.ndarray:
        return self._get()[0]

    @property
    def B(self) -> np.ndarray:
        return self._get()[1]

    def take(self, idx) -> IntervalCells:
        return IntervalCells(self.lo[idx], self.hi[idx], self._maps, self._rows[idx])

    def __reduce__(self):
        # sent whole to a worker: the maps are made now, for this batch's rows
        return IntervalCells, (self.lo, self.hi, Made(self._get()))

    @property
    def intervals(self) -> np.ndarray:
        return np.stack([self.lo, self.hi], axis=1)


class IntervalEngine:
    """Splits batches of intervals by one layer (see the module docstring)."""

    name = "interval"

    def __init__(self, setup: EngineSetup):
        self.tol = setup.tolerances
        self.stats = {"cells_split": 0, "cells_cut": 0, "breakpoints": 0}
        self.budget = Budget()          # the driver's, checked chunk by chunk

    def root(self, domain) -> IntervalCells:
        lo, hi = domain.bounds()
        return IntervalCells.eager(np.array([float(lo[0])]), np.array([float(hi[0])]),
                                   np.ones((1, 1)), np.zeros((1, 1)))

    def batch_size(self, layer: Layer) -> int:
        # per cell: the layer's pairs of pieces, and the cell's map into the layer's input
        # (made from the previous layer's pieces when the batch is split)
        per_cell = max(layer.out_dim * layer.max_pieces ** 2, 4 * layer.in_dim)
        return int(max(16, (1 << 22) // (8 * per_cell)))

    @staticmethod
    def points(cells: IntervalCells) -> np.ndarray:
        """An interior point of every cell of the batch (its midpoint)."""
        return ((cells.lo + cells.hi) / 2)[:, None]

    @staticmethod
    def take(cells: IntervalCells, lo: int, hi: int) -> IntervalCells:
        return cells.take(np.arange(lo, min(hi, len(cells))))

    @staticmethod
    def cells(batch: IntervalCells) -> np.ndarray:
        """The batch's intervals ``(n, 2)``."""
        return batch.intervals

    def split(self, cells: IntervalCells, layer: Layer) -> Split:
        self.stats["cells_split"] += len(cells)
        n, K, R = len(cells), layer.out_dim, layer.max_pieces
        zero, eps = self.tol.zero, self.tol.empty
        flatA = layer.A.reshape(K * R, layer.in_dim)
        Pa = (cells.a @ flatA.T).reshape(n, K, R)
        PB = (cells.B @ flatA.T + layer.B.reshape(K * R)).reshape(n, K, R)
        # candidate breakpoints: every pair of pieces whose order changes inside the cell
        planes = pull_back(layer, cells.a[:, :, None], cells.B, zero)
        # constant pairs, settled by value and the tie rule: beaten[n, k, r] = some piece beats
        # piece r everywhere on the cell
        beaten = np.zeros((n, K, R), dtype=bool)
        const = planes.constant
        for m in range(len(planes.unit)):
            u, low, high = planes.unit[m], planes.low[m], planes.high[m]
            beaten[:, u, low] |= const[:, m] & planes.above[:, m]
            beaten[:, u, high] |= const[:, m] & ~planes.above[:, m]
        grad = planes.grad[:, :, 0]
        t = -planes.offset / np.where(const, 1.0, grad)
        inside = ~const & (t > cells.lo[:, None] + eps) & (t < cells.hi[:, None] - eps)
        # a breakpoint within eps of an end, or of another breakpoint, may hide an interval
        # thinner than that (SplitDoubts): such cells are settled exactly
        doubt = np.any(~const & ~inside & (np.abs(t - cells.lo[:, None]) <= eps)
                       | ~const & ~inside & (np.abs(t - cells.hi[:, None]) <= eps), axis=1)
        cancelled = planes.cancelled_units(K)
        doubt |= cancelled.any(axis=1)
        owner_rows, _ = np.nonzero(inside)
        roots, owner = [t[inside]], [owner_rows]
        roots = np.concatenate(roots) if roots else np.empty(0)
        owner = np.concatenate(owner) if owner else np.empty(0, dtype=np.int64)
        self.stats["breakpoints"] += len(roots)
        self.stats["cells_cut"] += len(np.unique(owner))
        # sub-intervals: the cell ends and its breakpoints, sorted; near-equal breakpoints merge
        ends = np.concatenate([cells.lo, cells.hi, roots])
        cell = np.concatenate([np.arange(n), np.arange(n), owner])
        order = np.lexsort((ends, cell))
        ends, cell = ends[order], cell[order]
        same = np.r_[False, (cell[1:] == cell[:-1]) & (np.diff(ends) <= eps)]
        doubt[cell[same]] = True
        ends, cell = ends[~same], cell[~same]
        pair = np.flatnonzero(cell[1:] == cell[:-1])
        lo, hi, sub_cell = ends[pair], ends[pair + 1], cell[pair]
        mid = (lo + hi) / 2
        absent = ~(np.arange(R)[None, None, :] < layer.n_pieces[None, :, None])
        code = np.empty((len(mid), K), dtype=np.int16)
        # in chunks of sub-intervals: one wide layer makes ~K sub-intervals of K units each
        step = max(1, _VALUES_BUDGET // max(K * R, 1))
        live = np.flatnonzero(~const.all(axis=0))
        for s in range(0, len(mid), step):
            self.budget.poll()
            rows = slice(s, s + step)
            sub = sub_cell[rows]
            # the winner of each unit: the piece no pair loses at the midpoint. The pairs'
            # signs come from the pulled-back differences (exact tie lines even for pieces a
            # few ulps apart), not from comparing the pieces' values, which rounding can order
            # either way there. Constant pairs were settled in ``beaten``.
            wins = ~(beaten[sub] | absent)
            diff = grad[sub][:, live] * mid[rows, None] + planes.offset[sub][:, live]
            moving = ~const[sub][:, live]
            loser = np.where(diff > 0, planes.low[live], planes.high[live])
            r, m = np.nonzero(moving)
            wins[r, planes.unit[live][m], loser[r, m]] = False
            won = wins.any(axis=2)
            code[rows] = np.argmax(wins, axis=2)
            if not won.all():
                # no piece beats all others (signs at rounding level): the values decide for
                # now, and the cell's exact children replace the engine's (as for a unit
                # the zero rule may have misjudged: SplitDoubts.cancelled)
                vals = Pa[sub] * mid[rows, None, None] + PB[sub]
                vals = np.where(beaten[sub] | absent, -np.inf, vals)
                bad = ~won.all(axis=1)
                code[rows][bad] = np.argmax(vals[bad], axis=2)
                bc, bu = np.nonzero(~won)
                cancelled[sub[bc], bu] = True
                doubt[sub[bc]] = True
        # merge consecutive sub-intervals of a cell with the same code
        new = np.r_[True, (sub_cell[1:] != sub_cell[:-1]) | np.any(code[1:] != code[:-1], axis=1)]
        first = np.flatnonzero(new)
        last = np.r_[first[1:], len(new)] - 1
        lo, hi = lo[first], hi[last]
        code, parent = code[first], sub_cell[first]
        radius = (hi - lo) / 2
        region = radius > self.tol.region
        # however short, an interval is set aside for the exact test, never dropped on its size
        sliver = ~region
        keep = np.flatnonzero(region)
        # children in tree order: by parent, then by code (not left to right)
        keep = keep[tree_order(parent[keep], code[keep])]
        kept_parent, kept_code = parent[keep], code[keep]
        children = IntervalCells(lo[keep], hi[keep], lambda rows: _child_maps(
            layer, Pa, PB, kept_parent[rows], kept_code[rows]))
        center = ((lo + hi) / 2)[:, None]
        sl = np.flatnonzero(sliver)
        return Split(children=children, parent=parent[keep], code=code[keep],
                     center=center[keep], radius=radius[keep],
                     slivers=SplitSlivers(parent=parent[sl], code=code[sl], center=center[sl],
                                          radius=radius[sl]),
                     cells=children.intervals,
                     doubts=_doubts(np.flatnonzero(doubt), K, cells, t, const, eps, cancelled,
                                    planes.switch_codes() if layer.is_switch else None))


def _doubts(flagged: np.ndarray, K: int, cells: IntervalCells, t, const, eps, cancelled,
            const_codes):
    """Doubtful cells with every unit free (an interval's exact split is cheap) but the units
    the constant-unit rule took as constant with a float value that may be rounding, which
    carry the rule's code to be checked (``const_codes``, switch layers), and the points where
    the engine decided: the cell's ends and its breakpoints (see
    :func:`~powercells.enumerate.exact_cells.vertices_exact`)."""
    if not flagged.size:
        return None
    m = len(flagged)
    code = np.full((m, K), -1, np.int16)
    if const_codes is not None:
        checked = cancelled[flagged]
        code[checked] = const_codes[flagged][checked]
    points = []
    for c in flagged:
        lo, hi = cells.lo[c], cells.hi[c]
        roots = t[c][~const[c] & (t[c] >= lo - eps) & (t[c] <= hi + eps)]
        points.append(np.concatenate([[lo, hi], roots])[:, None])
    return SplitDoubts(parent=flagged.astype(np.int64), code=code,
                       near=np.zeros((m, K), dtype=bool), touched=np.ones(m, dtype=bool),
                       points=points, cancelled=None if cancelled is None else cancelled[flagged])


def _child_maps(layer: Layer, Pa, PB, parent, code):
    idx = code.astype(np.intp)[..., None]
    return (np.take_along_axis(Pa[parent], idx, axis=2)[:, :, 0],
            np.take_along_axis(PB[parent], idx, axis=2)[:, :, 0])
