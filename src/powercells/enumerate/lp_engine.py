"""The ``lp`` engine: a node's children for one layer, in any input dimension (SPEC §3.2-3.4).

Given a node (a convex polytope ``H x <= h`` with its affine map ``z = A x + B`` into the previous
layer's output) and the next layer, the children are the non-empty cells of the layer's power
diagram restricted to the node. The engine finds them in three phases:

1. **Which units cut the node.** Every unit is pulled back to the node's coordinates. Units that are
   constant on the node (duplicate or dead units, SPEC §3.4) are decided exactly; units whose
   pieces cannot change over the node's bounding box are decided by interval bounds; units with
   known interior points on both sides, or whose switch hyperplane crosses the node's Chebyshev
   ball, certainly cut. Only the rest cost an LP: the Chebyshev ball of the node intersected with
   the unwitnessed side.
2. **The arrangement of the cutting units inside the node**, unit by unit. A cell is split by a
   unit when known interior points lie on both sides or the unit crosses the cell's Chebyshev
   ball; otherwise one LP on the unwitnessed side decides. Every LP solution is a new interior
   point that later tests reuse.
3. **The Chebyshev ball of every final cell** not already known exactly (a cell keeps its parent's
   ball when no cut crosses that ball).

A cell is a region when its inradius exceeds the region tolerance; a cell with a certified
interior but a smaller inradius is a *sliver*, reported, never counted (see :class:`Tolerances`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..lp.base import Ball, LPBackend
from ..network.layers import Layer
from .tolerances import Tolerances

__all__ = ["Node", "Sliver", "EngineStats", "LPEngine"]

#: How many known interior points a node hands down to its children.
MAX_POINTS_PER_NODE = 24


@dataclass(slots=True, eq=False)
class Node:
    """The state the engine needs to split a node (not the stored table row).

    Attributes
    ----------
    H, h : ndarray, shapes (m, k) and (m,)
        The node's polytope ``H x <= h``, rows of unit norm; only rows that cut an ancestor.
    A, B : ndarray, shapes (D, k) and (D,)
        The affine map from engine coordinates to the current layer's output.
    center, radius : the node's Chebyshev ball (exact).
    points : ndarray, shape (p, k)
        Other points known to lie in the node's interior (certificates for cheap tests).
    lo, hi : ndarray, shape (k,)
        A box containing the node.
    code : ndarray of int16, shape (K,)
        The code of the layer that made this node (empty for the root).
    """

    H: np.ndarray
    h: np.ndarray
    A: np.ndarray
    B: np.ndarray
    center: np.ndarray
    radius: float
    points: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    code: np.ndarray


@dataclass(slots=True)
class Sliver:
    """A piece of a node with a certified interior but inradius <= the region tolerance.

    ``code`` holds the layer's code, -1 for units not yet decided when the sliver was set aside.
    """

    code: np.ndarray
    center: np.ndarray
    radius: float


@dataclass
class EngineStats:
    """Counters of how each decision was made; for benchmarks and notes."""

    nodes_split: int = 0
    lps: int = 0
    units_constant: int = 0
    units_by_bounds: int = 0
    units_cut_by_points: int = 0
    units_cut_by_ball: int = 0
    units_by_lp: int = 0
    cell_tests_by_points: int = 0
    cell_tests_by_ball: int = 0
    cell_tests_by_lp: int = 0
    balls_inherited: int = 0
    balls_by_lp: int = 0

    def merge(self, other: "EngineStats") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class _Unit:
    """A unit that may cut the node: its candidate pieces pulled back to engine coordinates.

    A two-piece unit is stored as a switch hyperplane ``dist(x) = normal @ x + offset`` (signed
    distance), position 1 on its positive side. A unit with more pieces keeps all of them.
    """

    __slots__ = ("index", "pieces", "normal", "offset", "a", "beta", "_rows")

    def __init__(self, index, pieces, *, normal=None, offset=None, a=None, beta=None):
        self.index = index
        self.pieces = pieces
        self.normal = normal
        self.offset = offset
        self.a = a
        self.beta = beta
        self._rows = None

    @property
    def n(self) -> int:
        return len(self.pieces)

    def rows(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Unit-norm rows ``G x <= g`` meaning "position j wins"."""
        if self._rows is None:
            if self.normal is not None:
                # position 0: dist <= 0; position 1: dist >= 0
                self._rows = [(self.normal[None, :], np.array([-self.offset])),
                              (-self.normal[None, :], np.array([self.offset]))]
            else:
                rows = []
                for jj in range(self.n):
                    others = [o for o in range(self.n) if o != jj]
                    G = self.a[others] - self.a[jj]
                    g = self.beta[jj] - self.beta[others]
                    norms = np.linalg.norm(G, axis=1)
                    rows.append((G / norms[:, None], g / norms))
                self._rows = rows
        return self._rows[j]

    def witness(self, P: np.ndarray, eps: float) -> np.ndarray:
        """Position of the winning piece at each point of P, or -1 when no piece wins by a
        margin larger than eps (in distance units)."""
        if self.normal is not None:
            dist = P @ self.normal + self.offset
            out = np.full(len(P), -1, dtype=np.int8)
            out[dist > eps] = 1
            out[dist < -eps] = 0
            return out
        vals = P @ self.a.T + self.beta
        best = np.argmax(vals, axis=1)
        out = np.full(len(P), -1, dtype=np.int8)
        for j in range(self.n):
            sel = best == j
            if not np.any(sel):
                continue
            G, g = self.rows(j)
            margin = np.min(g[None, :] - P[sel] @ G.T, axis=1)
            out[np.flatnonzero(sel)[margin > eps]] = j
        return out


@dataclass(slots=True, eq=False)
class _Cell:
    idx: np.ndarray                 # pool indices of interior points
    rows_H: list = field(default_factory=list)
    rows_h: list = field(default_factory=list)
    choice: list = field(default_factory=list)   # position chosen for each processed unit
    ball: Ball | None = None        # exact Chebyshev ball, if known


class _Pool:
    """Interior points found while splitting one node, with each point's winning position for
    every cutting unit (the certificates of phase 2)."""

    def __init__(self, points: np.ndarray, units: list[_Unit], eps: float):
        self.units = units
        self.eps = eps
        self.points = [points]
        self.wit = [self._witness(points)]
        self.n = len(points)

    def _witness(self, P):
        return np.stack([u.witness(P, self.eps) for u in self.units])

    def add(self, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Append points; returns their pool indices and witness columns (units x points)."""
        P = np.atleast_2d(P)
        w = self._witness(P)
        self.points.append(P)
        self.wit.append(w)
        idx = np.arange(self.n, self.n + len(P))
        self.n += len(P)
        return idx, w

    def freeze(self) -> tuple[np.ndarray, np.ndarray]:
        """Merge the appended blocks; returns (points, witness matrix)."""
        if len(self.points) > 1:
            self.points = [np.vstack(self.points)]
            self.wit = [np.hstack(self.wit)]
        return self.points[0], self.wit[0]


class LPEngine:
    """Exact splitting of nodes by layers with LP feasibility checks and cheap certificates.

    Parameters
    ----------
    backend : LPBackend
    tolerances : Tolerances
        Already resolved to absolute values.
    cap : float
        Bound on Chebyshev radii (larger than any cell), e.g. the domain's diameter.
    """

    name = "lp"

    def __init__(self, backend: LPBackend, tolerances: Tolerances, cap: float):
        self.backend = backend
        self.tol = tolerances
        self.cap = cap
        self.stats = EngineStats()

    # ------------------------------------------------------------------ public
    def split(self, node: Node, layer: Layer) -> tuple[list[Node], list[Sliver]]:
        """The children of ``node`` under ``layer`` (sorted by code) and the slivers set aside."""
        self.stats.nodes_split += 1
        K = layer.out_dim
        if layer.max_pieces == 1:
            return [self._child(node, layer, np.zeros(K, dtype=np.int16), [], [], node_ball(node),
                                np.empty((0, node.center.size)))], []
        code = np.full(K, -1, dtype=np.int16)
        units = (self._switch_units(node, layer, code) if layer.is_switch
                 else self._piece_units(node, layer, code))
        ctx = None

        def context():
            nonlocal ctx
            if ctx is None:
                ctx = self.backend.context(node.H, node.h, cap=self.cap)
            return ctx

        # Phase 1: which of the remaining units cut the node.
        eps = self.tol.empty
        known = np.vstack([node.center[None, :], node.points])
        extra_points = []
        first_present: dict[int, dict[int, Ball | None]] = {}
        cutting: list[_Unit] = []
        for unit in units:
            wit = unit.witness(known, eps)
            present: dict[int, Ball | None] = {int(j): None for j in np.unique(wit[wit >= 0])}
            if len(present) >= 2:
                self.stats.units_cut_by_points += 1
            elif unit.normal is not None:
                crossing = _ball_crossing(unit, node.center, node.radius)
                if crossing is not None:
                    present = {0: None, 1: None}
                    extra_points.append(crossing)
                    self.stats.units_cut_by_ball += 1
            if len(present) < unit.n:
                best = (-np.inf, 0)
                for j in range(unit.n):
                    if j in present:
                        continue
                    ball = context().solve(*unit.rows(j))
                    self.stats.lps += 1
                    best = max(best, (ball.radius, j))
                    if ball.radius > eps:
                        present[j] = ball
                        extra_points.append(ball.center[None, :])
                if not present:  # numerically lost: keep the piece with the largest ball
                    present[best[1]] = None
                if len(present) < 2:
                    self.stats.units_by_lp += 1
            if len(present) >= 2:
                cutting.append(unit)
                first_present[unit.index] = present
            else:
                code[unit.index] = unit.pieces[next(iter(present))]

        if not cutting:
            if ctx is not None:
                ctx.close()
            return [self._child(node, layer, code, [], [], node_ball(node), node.points)], []

        # Phase 2: the arrangement of the cutting units inside the node.
        pool = _Pool(np.vstack([known] + extra_points), cutting, eps)
        cells = [_Cell(idx=np.arange(pool.n), ball=node_ball(node))]
        slivers: list[tuple[_Cell, Ball]] = []
        for i, unit in enumerate(cutting):
            pool.freeze()
            next_cells = []
            for cell in cells:
                known_present = first_present[unit.index] if i == 0 else None
                next_cells.extend(self._split_cell(cell, i, unit, pool, context, known_present,
                                                   slivers))
            cells = next_cells

        # Phase 3: exact Chebyshev balls of the final cells, then classification.
        P, _ = pool.freeze()
        children: list[Node] = []
        out_slivers: list[Sliver] = []
        for cell in cells:
            ball = cell.ball
            if ball is None:
                ball = context().solve(*_stack_rows(cell))
                self.stats.lps += 1
                self.stats.balls_by_lp += 1
            else:
                self.stats.balls_inherited += 1
            full = _full_code(code, cutting, cell.choice)
            if ball.radius > self.tol.region:
                children.append(self._child(node, layer, full, cell.rows_H, cell.rows_h, ball,
                                            P[cell.idx]))
            else:
                out_slivers.append(Sliver(full, ball.center, ball.radius))
        for cell, ball in slivers:
            out_slivers.append(Sliver(_full_code(code, cutting, cell.choice), ball.center,
                                      ball.radius))
        if ctx is not None:
            ctx.close()
        children.sort(key=lambda c: c.code.tobytes())
        return children, out_slivers

    # ------------------------------------------------------------------ phase 2
    def _split_cell(self, cell, i, unit, pool, context, known_present, slivers):
        """Split one cell by the i-th cutting unit; returns the cells that continue.

        ``known_present`` (for the node itself, i = 0) holds phase 1's answer: no LP needed.
        """
        eps = self.tol.empty
        wit = pool.wit[0][i, cell.idx]
        if known_present is not None:
            present = dict(known_present)
        else:
            present = {int(j): None for j in np.unique(wit[wit >= 0])}
            if len(present) >= 2:
                self.stats.cell_tests_by_points += 1
        new_idx, new_wit = [], []
        if unit.normal is not None and cell.ball is not None and len(present) < 2:
            crossing = _ball_crossing(unit, cell.ball.center, cell.ball.radius)
            if crossing is not None:
                idx, w = pool.add(crossing)
                new_idx.append(idx)
                new_wit.append(w[i])
                present = {0: None, 1: None}
                self.stats.cell_tests_by_ball += 1
        if len(present) < unit.n and known_present is None:
            self.stats.cell_tests_by_lp += 1
            best = (-np.inf, 0, None)
            H, h = _stack_rows(cell)
            for j in range(unit.n):
                if j in present:
                    continue
                G, g = unit.rows(j)
                ball = context().solve(np.vstack([H, G]), np.concatenate([h, g]))
                self.stats.lps += 1
                if ball.radius > best[0]:
                    best = (ball.radius, j, ball)
                if ball.radius > eps:
                    present[j] = ball
                    idx, w = pool.add(ball.center)
                    new_idx.append(idx)
                    new_wit.append(w[i])
            if not present:  # numerically lost: keep the piece with the largest ball
                present[best[1]] = None
        if new_idx:
            cell.idx = np.concatenate([cell.idx] + new_idx)
            wit = np.concatenate([wit] + new_wit)
        if len(present) == 1:
            (j, ball), = present.items()
            cell.choice.append(j)
            if cell.ball is None and ball is not None:
                cell.ball = ball  # the LP ran on the whole cell: its ball is the cell's
            return [cell]
        out = []
        for j in sorted(present):
            G, g = unit.rows(j)
            ball = present[j]
            if ball is None and cell.ball is not None and _ball_inside(unit, j, cell.ball):
                ball = cell.ball
            child = _Cell(idx=cell.idx[wit == j], rows_H=cell.rows_H + [G],
                          rows_h=cell.rows_h + [g], choice=cell.choice + [j], ball=ball)
            if ball is not None and not ball.radius > self.tol.region:
                slivers.append((child, ball))
                continue
            out.append(child)
        return out

    # ------------------------------------------------------------------ phase 0
    def _switch_units(self, node: Node, layer: Layer, code: np.ndarray) -> list[_Unit]:
        """Pull back a ReLU-type layer; decide constant and bounded units in ``code``."""
        W, b = layer.switch_W, layer.switch_b
        pre_A = W @ node.A
        pre_B = W @ node.B + b
        absW = np.abs(W)
        norm = np.linalg.norm(pre_A, axis=1)
        scale_A = absW @ np.linalg.norm(node.A, axis=1)
        constant = norm <= self.tol.zero * scale_A
        if np.any(constant):
            scale_B = absW @ np.abs(node.B) + np.abs(b)
            code[constant] = pre_B[constant] > self.tol.zero * scale_B[constant]
            self.stats.units_constant += int(constant.sum())
        live = np.flatnonzero(~constant)
        if live.size == 0:
            return []
        normal = pre_A[live] / norm[live, None]
        offset = pre_B[live] / norm[live]
        mid = (node.lo + node.hi) / 2
        half = (node.hi - node.lo) / 2
        at_mid = normal @ mid + offset
        spread = np.abs(normal) @ half
        eps = self.tol.empty
        active = at_mid - spread >= -eps
        inactive = at_mid + spread <= eps
        code[live[active]] = 1
        code[live[inactive & ~active]] = 0
        self.stats.units_by_bounds += int((active | inactive).sum())
        keep = ~(active | inactive)
        return [_Unit(int(k), np.array([0, 1], dtype=np.int16), normal=nv, offset=float(o))
                for k, nv, o in zip(live[keep], normal[keep], offset[keep])]

    def _piece_units(self, node: Node, layer: Layer, code: np.ndarray) -> list[_Unit]:
        """Pull back a general MASO layer unit by unit; drop duplicate and dominated pieces."""
        units = []
        zero = self.tol.zero
        eps = self.tol.empty
        row_norms = np.linalg.norm(node.A, axis=1)
        abs_B = np.abs(node.B)
        mid = (node.lo + node.hi) / 2
        half = (node.hi - node.lo) / 2
        for k in range(layer.out_dim):
            n = int(layer.n_pieces[k])
            Ak, Bk = layer.A[k, :n], layer.B[k, :n]
            a = Ak @ node.A
            beta = Ak @ node.B + Bk
            keep: list[int] = []
            for r in range(n):
                dominated = False
                for s in list(keep):
                    delta = Ak[r] - Ak[s]
                    slope = delta @ node.A
                    if np.linalg.norm(slope) > zero * (np.abs(delta) @ row_norms):
                        continue
                    gap = beta[r] - beta[s]
                    gap_scale = np.abs(delta) @ abs_B + abs(Bk[r]) + abs(Bk[s])
                    if gap > zero * gap_scale:
                        keep.remove(s)   # r beats s everywhere on the node
                    else:
                        dominated = True  # s beats r, or they tie and s has the smaller index
                        break
                if not dominated:
                    keep.append(r)
            keep.sort()
            if len(keep) > 1:
                # Drop pieces that lose to another candidate over the whole bounding box.
                alive = []
                for r in keep:
                    lost = False
                    for s in keep:
                        if s == r:
                            continue
                        d_a = a[r] - a[s]
                        nrm = np.linalg.norm(d_a)
                        top = (d_a @ mid + beta[r] - beta[s] + np.abs(d_a) @ half) / nrm
                        if top <= eps:
                            lost = True
                            break
                    if not lost:
                        alive.append(r)
                if len(alive) < len(keep):
                    self.stats.units_by_bounds += int(len(alive) <= 1)
                keep = alive or keep[:1]
            if len(keep) == 1:
                code[k] = keep[0]
                self.stats.units_constant += 1
                continue
            pieces = np.array(keep, dtype=np.int16)
            if len(keep) == 2:
                d_a = a[keep[1]] - a[keep[0]]
                nrm = np.linalg.norm(d_a)
                units.append(_Unit(k, pieces, normal=d_a / nrm,
                                   offset=float((beta[keep[1]] - beta[keep[0]]) / nrm)))
            else:
                units.append(_Unit(k, pieces, a=a[keep], beta=beta[keep]))
        return units

    # ------------------------------------------------------------------ children
    def _child(self, node, layer, code, rows_H, rows_h, ball, points) -> Node:
        Aq, Bq = layer.selected(code)
        if rows_H:
            H = np.vstack([node.H] + rows_H)
            h = np.concatenate([node.h] + rows_h)
        else:
            H, h = node.H, node.h
        if len(points) > MAX_POINTS_PER_NODE:
            points = points[:MAX_POINTS_PER_NODE]
        return Node(H=H, h=h, A=Aq @ node.A, B=Aq @ node.B + Bq, center=ball.center,
                    radius=ball.radius, points=points, lo=node.lo, hi=node.hi, code=code)


def node_ball(node: Node) -> Ball:
    return Ball(node.center, node.radius)


def _full_code(code, cutting, choice):
    full = code.copy()
    for unit, j in zip(cutting, choice):
        full[unit.index] = unit.pieces[j]
    return full


def _stack_rows(cell: _Cell):
    return np.vstack(cell.rows_H), np.concatenate(cell.rows_h)


def _ball_crossing(unit: _Unit, center: np.ndarray, radius: float):
    """Two interior points on either side of a switch hyperplane that crosses the ball, or None."""
    dist = float(center @ unit.normal + unit.offset)
    if not abs(dist) < radius:
        return None
    up = (radius - dist) / 2      # lands at signed distance (radius + dist) / 2 > 0
    down = (radius + dist) / 2    # lands at signed distance (dist - radius) / 2 < 0
    return np.vstack([center + up * unit.normal, center - down * unit.normal])


def _ball_inside(unit: _Unit, j: int, ball: Ball) -> bool:
    """Whether the whole ball lies in position j's piece (then it stays the child's ball)."""
    G, g = unit.rows(j)
    return bool(np.all(g - G @ ball.center >= ball.radius))
