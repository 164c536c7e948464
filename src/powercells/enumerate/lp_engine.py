"""The ``lp`` engine: a node's children for one layer, in any input dimension (SPEC §3.2-3.4).

Given a node (a convex polytope ``H x <= h`` with its affine map ``z = A x + B`` into the previous
layer's output) and the next layer, the children are the non-empty cells of the layer's power
diagram restricted to the node. The engine finds them in three phases:

1. **Which units cut the node.** Every unit is pulled back to the node's coordinates. Units that
   are constant on the node (duplicate or dead units, SPEC §3.4) are decided exactly; units whose
   pieces cannot change over the node's bounding box are decided by interval bounds.
2. **The arrangement of the cutting units inside the node**, unit by unit, depth-first so that
   consecutive LPs are on nested cells. Whether a unit cuts a cell is decided, cheapest first, by
   points known to lie in the cell's closure on both sides of the unit; by the unit's hyperplane
   crossing the cell's Chebyshev ball; by a *vertex certificate* (below) proving a side empty; and
   only then by an LP that minimises the unit over the cell. Phase 1 is this test on the node.
3. **The Chebyshev ball of every final cell** not known exactly (a cell keeps its parent's ball
   when no cut crosses that ball).

Vertex certificates: an extreme-point LP returns a vertex ``v`` and ``k`` tight rows ``G_B`` of
its optimal basis. For any cost ``c`` with ``-c = G_B^T lam``, ``lam >= 0``, weak duality gives
``c @ x >= c @ v`` on every polytope whose rows include ``G_B``: the node itself and every cell
inside it that contains those rows. One LP therefore bounds many units over many cells.

A cell is a region when its inradius exceeds the region tolerance tau. A cell with a smaller
inradius, and every side whose Chebyshev LP ends within tau of zero (HiGHS cannot tell a thin
side from an empty one there), is a *sliver*: set aside and settled in exact arithmetic by
:mod:`.thin` (a thin region or no cell). Screens by bounds and vertex certificates rule a side
out only with a margin of tau, so thin sides reach the LP instead of being dropped unseen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SolverError
from ..lp import Ball, Extreme, LPStatus, get_backend
from ..lp.bounds import dual_lower_bound, proof_of_emptiness
from ..lp.dense import DenseBackend
from ..network.layers import Layer
from .base import Split, SplitDoubts, SplitSlivers
from .budget import Budget
from .engines import EngineSetup
from .kernels import KernelSwitch
from .pullback import item_index, pull_back

__all__ = ["EngineStats", "LPEngine", "Node", "Sliver"]

#: How many known closure points a node hands down to its children.
MAX_POINTS_PER_NODE = 32


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
        Other points known to lie in the node's closure (certificates for cheap tests).
    lo, hi : ndarray, shape (k,)
        A box containing the node.
    code : ndarray of int16, shape (K,)
        The code of the layer that made this node (empty for the root).
    certificates : tuple of ndarrays or None
        Vertex certificates inherited from the ancestors (see :class:`_Certificates`): their
        vertices, basis inverses, basis rows and right-hand sides.
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
    certificates: tuple | None = None


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
    lps_extreme: int = 0
    lps_chebyshev: int = 0
    units_constant: int = 0
    units_by_bounds: int = 0
    tests_by_points: int = 0
    tests_by_ball: int = 0
    sides_by_certificate: int = 0
    sides_by_lp: int = 0
    sides_present_by_lp: int = 0
    sides_doubtful: int = 0
    sides_unproven: int = 0         # LP verdicts "empty" weak duality did not confirm
    lps_failed: int = 0             # LPs the solver failed on (their sides settled exactly)
    balls_inherited: int = 0
    balls_by_lp: int = 0
    lp_fallbacks: int = 0           # LPs the compiled simplex handed to HiGHS

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class _Unit:
    """A unit that may cut the node: its candidate pieces pulled back to engine coordinates.

    A two-piece unit is stored as a switch hyperplane ``dist(x) = normal @ x + offset`` (signed
    distance), position 1 on its positive side. A unit with more pieces keeps, for every ordered
    pair of positions ``(j, o)``, the pulled-back difference ``piece o - piece j``
    (``pair_G[j, o] @ x + pair_g[j, o]``): differences taken before the pull-back, as
    :func:`.pullback.pull_back` takes them, so two pieces a few ulps apart keep their exact
    tie line instead of the rounding noise of two pulled-back pieces subtracted.
    """

    __slots__ = ("_rows", "index", "normal", "offset", "pair_G", "pair_g", "pieces", "row_ids")

    def __init__(self, index, pieces, *, normal=None, offset=None, pair_G=None, pair_g=None):
        self.index = index
        self.pieces = pieces
        self.normal = normal
        self.offset = offset
        self.pair_G = pair_G
        self.pair_g = pair_g
        self._rows = None
        self.row_ids = None

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
                    G = self.pair_G[jj, others]          # piece o - piece jj <= 0
                    g = -self.pair_g[jj, others]
                    norms = np.linalg.norm(G, axis=1)
                    rows.append((G / norms[:, None], g / norms))
                self._rows = rows
        return self._rows[j]

    def ids(self, ctx, j: int) -> np.ndarray:
        """Ids of position j's rows in the node's LP context (registered on first use)."""
        if self.row_ids is None:
            self.row_ids = [None] * self.n
        if self.row_ids[j] is None:
            self.row_ids[j] = ctx.add_rows(*self.rows(j))
        return self.row_ids[j]

    def witness(self, P: np.ndarray, eps: float) -> np.ndarray:
        """Position of the winning piece at each point of P, or -1 when no piece wins by a
        margin larger than eps (in distance units)."""
        if self.normal is not None:
            return _sign_positions(P @ self.normal + self.offset, eps)
        out = np.full(len(P), -1, dtype=np.int8)
        for j in range(self.n):
            G, g = self.rows(j)
            margin = np.min(g[None, :] - P @ G.T, axis=1)
            out[margin > eps] = j       # at most one position wins with a positive margin
        return out


def _sign_positions(dist: np.ndarray, eps: float) -> np.ndarray:
    out = np.full(dist.shape, -1, dtype=np.int8)
    out[dist > eps] = 1
    out[dist < -eps] = 0
    return out


class _Pool:
    """Points known to lie in the node's closure (its centre, inherited points, LP centres and
    vertices), with each point's winning position for every cutting unit."""

    def __init__(self, points: np.ndarray, units: list[_Unit], eps: float):
        self.units = units
        self.eps = eps
        switch = [i for i, u in enumerate(units) if u.normal is not None]
        self._switch = np.array(switch, dtype=np.intp)
        self._others = [i for i, u in enumerate(units) if u.normal is None]
        if switch:
            self._N = np.stack([units[i].normal for i in switch])
            self._o = np.array([units[i].offset for i in switch])
        self.points = np.empty((max(64, 2 * len(points)), points.shape[1]))
        self.wit = np.empty((len(units), self.points.shape[0]), dtype=np.int8)
        self.n = 0
        self.add(points)

    def add(self, P: np.ndarray) -> np.ndarray:
        """Append points; returns their pool indices."""
        P = np.atleast_2d(P)
        m = len(P)
        if self.n + m > self.points.shape[0]:
            size = 2 * (self.n + m)
            self.points = np.vstack([self.points[:self.n], np.empty((size - self.n, P.shape[1]))])
            wit = np.empty((len(self.units), size), dtype=np.int8)
            wit[:, :self.n] = self.wit[:, :self.n]
            self.wit = wit
        cols = slice(self.n, self.n + m)
        self.points[cols] = P
        if self._switch.size:
            self.wit[self._switch, cols] = _sign_positions(self._N @ P.T + self._o[:, None],
                                                           self.eps)
        for i in self._others:
            self.wit[i, cols] = self.units[i].witness(P, self.eps)
        self.n += m
        return np.arange(cols.start, cols.stop)


_NO_IDS = np.empty(0, dtype=np.int64)


class _Certificates:
    """Vertices of the node from extreme-point LPs, each with its basis rows and their normals'
    inverse (see the module docstring): lower bounds on linear functions over the node."""

    def __init__(self, k: int, reach: float, inherited=None):
        # Certificates of an ancestor stay valid: the node's rows include the ancestor's.
        self.reach = reach          # |x|_inf over the node: residuals of proofs are charged on it
        if inherited is None:
            self.V, self.inv = np.empty((0, k)), np.empty((0, k, k))     # lam = inv @ (-c)
            self.GB, self.gB = np.empty((0, k, k)), np.empty((0, k))
        else:
            self.V, self.inv, self.GB, self.gB = inherited

    def add(self, x: np.ndarray, basis: np.ndarray, G: np.ndarray, g: np.ndarray) -> None:
        GB = G[basis]
        try:
            inv = np.linalg.inv(GB.T)
        except np.linalg.LinAlgError:
            return
        if not np.all(np.isfinite(inv)) or np.abs(inv).max() > 1e8:
            return   # an ill-conditioned basis gives no useful multipliers
        self.V = np.concatenate([self.V, x[None, :]])
        self.inv = np.concatenate([self.inv, inv[None]])
        self.GB = np.concatenate([self.GB, GB[None]])
        self.gB = np.concatenate([self.gB, g[basis][None]])

    def lower_bound(self, c: np.ndarray) -> float:
        """The best lower bound of ``c @ x`` over the node that weak duality proves (the
        multipliers' residual and rounding charged, :func:`~powercells.lp.bounds.dual_lower_bound`;
        not the solver's vertex value, which is only as good as its tolerances)."""
        if not len(self.V):
            return -np.inf
        return float(np.max(dual_lower_bound(c, self.inv @ (-c), self.GB, self.gB,
                                             self.reach)))

    def kept(self, keep: np.ndarray):
        """The certificates ``keep`` (a mask), to hand to a child."""
        return self.V[keep], self.inv[keep], self.GB[keep], self.gB[keep]


@dataclass(slots=True, eq=False)
class _Cell:
    idx: np.ndarray                 # pool indices of points in the cell's closure
    active: list                    # row-id arrays of the units that split it
    choice: list                    # position chosen for each processed unit
    ball: Ball | None               # exact Chebyshev ball, if known
    _ids: tuple | None = None

    def ids(self) -> tuple[np.ndarray, frozenset]:
        """The cell's extra rows, as an array and as a set."""
        if self._ids is None:
            arr = np.concatenate(self.active) if self.active else _NO_IDS
            self._ids = (arr, frozenset(arr.tolist()))
        return self._ids


def _cancel_doubts(doubts, K: int):
    """The :class:`~.base.SplitDoubts` of the nodes with units the constant-unit rule took as
    constant with a float gradient that is not 0 (``(node, code)``, code -1 elsewhere)."""
    if not doubts:
        return None
    code = np.array([c for _, c in doubts], dtype=np.int16).reshape(-1, K)
    m = len(doubts)
    return SplitDoubts(parent=np.array([i for i, _ in doubts], dtype=np.int64), code=code,
                       near=np.zeros((m, K), dtype=bool), touched=np.zeros(m, dtype=bool),
                       cancelled=code >= 0)


class _LazyContext:
    """The node's LP context, created on the first LP (many nodes need none)."""

    def __init__(self, engine: LPEngine, node: Node):
        self._engine = engine
        self._node = node
        self._ctx = None

    def get(self):
        if self._ctx is None:
            e = self._engine
            self._ctx = e.backend.context(self._node.H, self._node.h, cap=e.cap)
            self._ctx.warm(self._node.center, self._node.radius)
        return self._ctx

    def chebyshev(self, ids) -> Ball:
        """The Chebyshev ball of the node's rows plus ``ids``; a problem the solver fails on
        (nearly parallel rows) gives a FAILED ball (radius NaN, the node's centre), which the
        engine sets aside as a sliver, settled exactly."""
        stats = self._engine.stats
        stats.lps += 1
        stats.lps_chebyshev += 1
        try:
            return self.get().chebyshev(ids)
        except SolverError:
            stats.lps_failed += 1
            return Ball(self._node.center, np.nan, LPStatus.FAILED)

    def extreme(self, c, ids):
        """The minimum of ``c @ x``; a problem the solver fails on gives no vertex (the engine
        goes on to a Chebyshev LP)."""
        stats = self._engine.stats
        stats.lps += 1
        stats.lps_extreme += 1
        try:
            return self.get().extreme(c, ids)
        except SolverError:
            stats.lps_failed += 1
            return Extreme(np.nan, None, None)

    def close(self):
        if self._ctx is not None:
            self._ctx.close()


class LPEngine:
    """Exact splitting of nodes by layers with LP feasibility checks and cheap certificates.

    Parameters
    ----------
    setup : EngineSetup
        Its LP backend (when None: the compiled dense simplex, :mod:`powercells.lp.dense`,
        where numba is installed and the engine option ``compiled`` allows it, else HiGHS),
        resolved tolerances, and ``cap``, a bound on Chebyshev radii (larger than any cell).
    """

    name = "lp"

    def __init__(self, setup: EngineSetup):
        self.stats = EngineStats()
        self._switch = None
        if setup.lp is None:
            # the compiled simplex where numba is installed; a plain count starts on HiGHS and
            # loads it once the job proves large (the Chebyshev centres differ in the last
            # bits between the two, and a count outputs none)
            self._switch = KernelSwitch("lp", "powercells.lp.dense_kernel", _load_kernel,
                                        setup.options.compiled, lazy=not setup.outputs_points,
                                        what="the lp engine's compiled simplex")
            self._use(self._switch.kernel or get_backend("highs"))
        else:
            self._use(get_backend(setup.lp))
        self.tol = setup.tolerances
        self.cap = float(setup.cap)
        self.final_layer = setup.final_layer
        self.budget = Budget()          # the driver's, checked inside a split
        self._pending = 0               # children of the batch found before the current node
        self._cancelled = None          # the current node's cancelled units (SplitDoubts)

    def _use(self, backend) -> None:
        """Solve with ``backend`` from now on; its ``fallbacks`` (LPs a compiled simplex handed
        to HiGHS) count in the stats from here (a backend object may come from earlier runs)."""
        self._fallbacks_before = self.stats.lp_fallbacks
        self._fallbacks_at = getattr(backend, "fallbacks", 0)
        self.backend = backend

    # ------------------------------------------------------------------ driver interface
    def root(self, domain) -> list[Node]:
        """The domain as a batch of one node."""
        H, h = domain.halfspaces()
        k = domain.dim
        center = np.asarray(domain.chebyshev[0], dtype=np.float64)
        radius = float(np.min(h - H @ center))
        lo, hi = domain.bounds()
        return [Node(H=H, h=h, A=np.eye(k), B=np.zeros(k), center=center, radius=radius,
                     points=np.empty((0, k)), lo=lo, hi=hi, code=np.empty(0, dtype=np.int16))]

    def batch_size(self, layer: Layer) -> int:
        """One node at a time: the walk stays depth-first, so memory follows the depth."""
        return 1

    @staticmethod
    def points(nodes: list[Node]) -> np.ndarray:
        """An interior point of every node of the batch (its Chebyshev centre)."""
        return np.array([node.center for node in nodes])

    @staticmethod
    def take(nodes: list[Node], lo: int, hi: int) -> list[Node]:
        return nodes[lo:hi]

    @staticmethod
    def cells(batch) -> None:
        """No cell geometry is kept in the tree (see
        :class:`~powercells.enumerate.engines.EngineSpec`)."""
        return

    def split(self, nodes: list[Node], layer: Layer) -> Split:
        """The children of every node of the batch (see :mod:`.base`)."""
        children, parent, slivers, sliver_parent = [], [], [], []
        doubts = []                     # (node, its code of the cancelled units, -1 elsewhere)
        started = self._switch.start() if self._switch is not None else None
        for i, node in enumerate(nodes):
            self._pending = len(children)
            self._cancelled = None
            kids, sl = self.split_node(node, layer)
            children.extend(kids)
            parent.extend([i] * len(kids))
            slivers.extend(sl)
            sliver_parent.extend([i] * len(sl))
            if self._cancelled is not None:
                doubts.append((i, self._cancelled))
        if started is not None:
            self._switch.done(started)
            if self._switch.kernel is not None and self.backend is not self._switch.kernel:
                self._use(self._switch.kernel)
        self.stats.lp_fallbacks = self._fallbacks_before + (
            getattr(self.backend, "fallbacks", 0) - self._fallbacks_at)
        k = nodes[0].center.size if nodes else 0
        K = layer.out_dim
        return Split(
            children=children,
            parent=np.array(parent, dtype=np.int64),
            code=np.array([c.code for c in children], dtype=np.int16).reshape(-1, K),
            center=np.array([c.center for c in children]).reshape(-1, k),
            radius=np.array([c.radius for c in children], dtype=np.float64),
            slivers=SplitSlivers(
                parent=np.array(sliver_parent, dtype=np.int64),
                code=np.array([s.code for s in slivers], dtype=np.int16).reshape(-1, K),
                center=np.array([s.center for s in slivers]).reshape(-1, k),
                radius=np.array([s.radius for s in slivers], dtype=np.float64)),
            doubts=_cancel_doubts(doubts, K))

    def split_node(self, node: Node, layer: Layer) -> tuple[list[Node], list[Sliver]]:
        """The children of ``node`` under ``layer`` (sorted by code) and the slivers set aside."""
        self.stats.nodes_split += 1
        K = layer.out_dim
        code = np.full(K, -1, dtype=np.int16)
        self._certs = _Certificates(node.center.size, _reach(node), node.certificates)
        if layer.max_pieces == 1:
            code[:] = 0
            return [self._child(node, layer, code, None, _node_ball(node), node.points)], []
        units = (self._switch_units(node, layer, code) if layer.is_switch
                 else self._piece_units(node, layer, code))
        if not units:
            return [self._child(node, layer, code, None, _node_ball(node), node.points)], []
        ctx = _LazyContext(self, node)
        try:
            self._pool = _Pool(np.vstack([node.center[None, :], node.points]), units,
                               self.tol.empty)
            self._cheb_certs: dict = {}
            root = _Cell(idx=np.arange(self._pool.n), active=[], choice=[], ball=_node_ball(node))
            # Phase 1: every unit on the node itself; the ones that cut it go on to phase 2.
            cutting = []
            for i, unit in enumerate(units):
                self.budget.poll(self._pending)
                present = self._present(root, i, unit, ctx)
                if len(present) >= 2:
                    cutting.append(i)
                else:
                    code[unit.index] = unit.pieces[next(iter(present))]
            if not cutting:
                return [self._child(node, layer, code, None, _node_ball(node),
                                    self._pool.points[:self._pool.n])], []
            cells = self._phase2(root, units, cutting, ctx)
            return self._phase3(node, layer, code, units, cutting, cells, ctx)
        finally:
            ctx.close()

    # ------------------------------------------------------------------ deciding one test
    def _present(self, cell: _Cell, i: int, unit: _Unit, ctx) -> dict:
        """The positions of unit ``i`` with an interior part in ``cell``: {position: ball or None}.

        The ball is the Chebyshev ball of ``cell`` restricted to that position when an LP found
        it."""
        eps = self.tol.empty
        pool = self._pool
        wit = pool.wit[i, cell.idx]
        if unit.normal is not None:
            present = {}
            if (wit == 0).any():
                present[0] = None
            if (wit == 1).any():
                present[1] = None
        else:
            present = {int(j): None for j in np.unique(wit[wit >= 0])}
        if len(present) == unit.n:
            self.stats.tests_by_points += 1
            return present
        if unit.normal is not None and cell.ball is not None:
            crossing = _ball_crossing(unit, cell.ball.center, cell.ball.radius)
            if crossing is not None:
                cell.idx = np.concatenate([cell.idx, pool.add(crossing)])
                self.stats.tests_by_ball += 1
                return {0: None, 1: None}
        active, on = cell.ids()
        if unit.normal is not None:
            for j in (0, 1):
                if j in present:
                    continue
                # position j exists iff min over the cell of s * dist < -eps, s = -1 for j = 1
                s = -1.0 if j == 1 else 1.0
                if not cell.active:
                    # On the node itself: vertex certificates, else an extreme-point LP whose
                    # vertex certifies later tests. (Inside the node they cannot help: a unit
                    # that reaches phase 2 has both sides on the node.)
                    c = s * unit.normal
                    if self._certs.lower_bound(c) + s * unit.offset >= self.tol.region:
                        self.stats.sides_by_certificate += 1
                        continue
                    self.stats.sides_by_lp += 1
                    ext = ctx.extreme(c, active)
                    if ext.x is not None:
                        if ext.basis is not None:
                            self._certs.add(ext.x, ext.basis, *ctx.get().all_rows)
                        inside = np.max(node_rows_violation(ctx.get(), ext.x)) <= 1e-3 * eps
                        if inside and ext.value + s * unit.offset < -eps:
                            present[j] = None
                            self.stats.sides_present_by_lp += 1
                            cell.idx = np.concatenate([cell.idx, pool.add(ext.x)])
                            continue
                        # absent only as weak duality proves it (the new vertex's basis)
                        if self._certs.lower_bound(c) + s * unit.offset >= self.tol.region:
                            continue            # clearly absent
                    # within tau of the hyperplane, or no trustworthy vertex: a Chebyshev LP
                elif any(cert <= on for cert in self._cheb_certs.get(i, {}).get(j, ())):
                    self.stats.sides_by_certificate += 1
                    continue
                else:
                    self.stats.sides_by_lp += 1
                side = unit.ids(ctx.get(), j)
                ids = np.concatenate([active, side])
                ball = ctx.chebyshev(ids)
                if ball.radius > eps:
                    present[j] = ball
                    cell.idx = np.concatenate([cell.idx, pool.add(ball.center)])
                    self.stats.sides_present_by_lp += 1
                elif (ball.radius > -self.tol.region
                      or (proof := self._empty(ctx, ids, ball)) is None):
                    # within the solver's reach of zero (float64 cannot tell a thin side from
                    # an empty one), or called empty without proof: set aside (a sliver) and
                    # settled exactly (.thin)
                    present[j] = _doubtful(ball)
                    self.stats.sides_doubtful += 1
                else:
                    # the proof's rows, less this side's: every cell with them lacks side j
                    cert = frozenset(proof.tolist()) - frozenset(side.tolist())
                    self._cheb_certs.setdefault(i, {}).setdefault(j, []).append(cert)
            if not present:   # numerically lost: keep the side of the cell's centre
                present[0 if cell.ball is None or
                        cell.ball.center @ unit.normal + unit.offset <= 0 else 1] = None
            return present
        # multi-piece unit: a Chebyshev LP for each position no point witnesses
        best = (-np.inf, 0)
        certs = self._cheb_certs.get(i, {})
        for j in range(unit.n):
            if j in present:
                continue
            if any(c <= on for c in certs.get(j, ())):
                self.stats.sides_by_certificate += 1
                continue
            self.stats.sides_by_lp += 1
            side = unit.ids(ctx.get(), j)
            ids = np.concatenate([active, side])
            ball = ctx.chebyshev(ids)
            best = max(best, (ball.radius, j))
            if ball.radius > eps:
                present[j] = ball
                cell.idx = np.concatenate([cell.idx, pool.add(ball.center)])
            elif (ball.radius > -self.tol.region
                  or (proof := self._empty(ctx, ids, ball)) is None):
                present[j] = _doubtful(ball)        # set aside, settled exactly (.thin)
                self.stats.sides_doubtful += 1
            else:
                # weak duality: every cell with the proof's rows lacks position j too
                cert = frozenset(proof.tolist()) - frozenset(side.tolist())
                self._cheb_certs.setdefault(i, {}).setdefault(j, []).append(cert)
        if not present:   # numerically lost: keep the piece with the largest ball
            present[best[1]] = None
        return present

    def _empty(self, ctx, ids, ball: Ball):
        """A proof that the cell of the context's rows plus ``ids``, whose Chebyshev LP ended at
        or below -tau, is empty (:func:`~powercells.lp.bounds.proof_of_emptiness`): the extra
        rows it uses (every cell of the node with them lacks the side too), or None. An LP
        solver's tolerances are far looser than tau on nearly parallel rows."""
        c = ctx.get()
        G, g = c.all_rows
        nb = len(c.b)
        rows = np.concatenate([np.arange(nb), ids])
        within = self.tol.region / 4
        kern = self.backend.kernel if isinstance(self.backend, DenseBackend) else None
        used = None
        if kern is not None:                    # compiled: a simple vertex's multipliers
            got, where = kern.empty_proof(G, g, rows, ball.center, self._certs.reach, within)
            if got == kern.PROVEN:
                used = where
        if used is None and (kern is None or got == kern.ASK_NNLS):
            used = proof_of_emptiness(G[rows], g[rows], ball.center, self._certs.reach, within)
        if used is None:
            self.stats.sides_unproven += 1
            return None
        return rows[used[used >= nb]]

    # ------------------------------------------------------------------ phase 2
    def _phase2(self, root, units, cutting, ctx):
        """The arrangement of the cutting units inside the node, depth-first so that consecutive
        LPs are on nested cells. Returns the final cells (regions and slivers)."""
        s = len(cutting)
        final = []
        stack = [(root, 0)]
        while stack:
            # a wide layer can make most of a run's cells in one node: the budget is checked
            # cell by cell (final cells are this node's children, or slivers)
            self.budget.poll(self._pending + len(final))
            cell, t = stack.pop()
            if t == s:
                final.append(cell)
                continue
            i = cutting[t]
            unit = units[i]
            present = self._present(cell, i, unit, ctx)
            if len(present) == 1:
                (j, ball), = present.items()
                cell.choice.append(j)
                if cell.ball is None and ball is not None:
                    cell.ball = ball    # the LP ran on the whole cell: its ball is the cell's
                stack.append((cell, t + 1))
                continue
            wit = self._pool.wit[i, cell.idx]
            children = []
            for j in sorted(present):
                ball = present[j]
                if ball is None and cell.ball is not None and _ball_inside(unit, j, cell.ball):
                    ball = cell.ball
                children.append(_Cell(idx=cell.idx[wit == j],
                                      active=cell.active + [unit.ids(ctx.get(), j)],
                                      choice=cell.choice + [j], ball=ball))
            for child in reversed(children):
                if child.ball is not None and not child.ball.radius > self.tol.region:
                    final.append(child)  # a sliver: no further splitting
                else:
                    stack.append((child, t + 1))
        return final

    # ------------------------------------------------------------------ phase 3
    def _phase3(self, node, layer, code, units, cutting, cells, ctx):
        """Exact Chebyshev balls of the final cells, then regions vs slivers."""
        children: list[Node] = []
        slivers: list[Sliver] = []
        P = self._pool.points
        for cell in cells:
            self.budget.poll(self._pending + len(children))
            ball = cell.ball
            if ball is None:
                ids = cell.ids()[0]
                ball = ctx.chebyshev(ids)
                self.stats.balls_by_lp += 1
                if not ball.radius > -self.tol.region and self._empty(ctx, ids, ball) is None:
                    ball = _doubtful(ball)          # no proof (NaN: the solver failed)
            else:
                self.stats.balls_inherited += 1
            full = code.copy()
            for t, j in enumerate(cell.choice):
                unit = units[cutting[t]]
                full[unit.index] = unit.pieces[j]
            if ball.radius > self.tol.region and len(cell.choice) == len(cutting):
                rows = None if layer is self.final_layer else ctx.get().rows_of(cell.ids()[0])
                children.append(self._child(node, layer, full, rows, ball, P[cell.idx]))
            elif ball.radius > -self.tol.region:
                # at or below the region tolerance, or within the solver's reach of zero:
                # set aside, and settled in exact arithmetic (.thin)
                slivers.append(Sliver(full, ball.center, max(ball.radius, 0.0)))
            # else clearly empty (no point within tau of every row): neither region nor sliver
        children.sort(key=lambda c: c.code.tolist())
        return children, slivers

    # ------------------------------------------------------------------ phase 0
    def _switch_units(self, node: Node, layer: Layer, code: np.ndarray) -> list[_Unit]:
        """Pull back a ReLU-type layer; decide constant and bounded units in ``code``."""
        planes = pull_back(layer, node.A[None], node.B[None], self.tol.zero)
        pre_A, pre_B, norm = planes.grad[0], planes.offset[0], planes.norm[0]
        constant = planes.constant[0]
        if np.any(constant):
            code[constant] = planes.above[0, constant]
            self.stats.units_constant += int(constant.sum())
            cancelled = planes.cancelled()[0]
            if cancelled.any():
                # checked in exact arithmetic (SplitDoubts.cancelled)
                self._cancelled = np.where(cancelled, code, -1).astype(np.int16)
        live = np.flatnonzero(~constant)
        if live.size == 0:
            return []
        normal = pre_A[live] / norm[live, None]
        offset = pre_B[live] / norm[live]
        mid = (node.lo + node.hi) / 2
        half = (node.hi - node.lo) / 2
        at_mid = normal @ mid + offset
        spread = np.abs(normal) @ half
        # decided by the box only with a margin of tau: a side thinner than that may be a thin
        # region, and goes to the LPs (then, if still undecided, to exact arithmetic)
        tau = self.tol.region
        active = at_mid - spread >= tau
        inactive = at_mid + spread <= -tau
        code[live[active]] = 1
        code[live[inactive & ~active]] = 0
        self.stats.units_by_bounds += int((active | inactive).sum())
        keep = ~(active | inactive)
        return [_Unit(int(k), np.array([0, 1], dtype=np.int16), normal=nv, offset=float(o))
                for k, nv, o in zip(live[keep], normal[keep], offset[keep])]

    def _piece_units(self, node: Node, layer: Layer, code: np.ndarray) -> list[_Unit]:
        """Pull back a general MASO layer unit by unit; drop duplicate and dominated pieces."""
        units = []
        mid = (node.lo + node.hi) / 2
        half = (node.hi - node.lo) / 2
        planes = pull_back(layer, node.A[None], node.B[None], self.tol.zero)
        cancelled = planes.cancelled_units(layer.out_dim)[0]
        if cancelled.any():
            # the cell's exact children replace this node's (SplitDoubts.cancelled)
            self._cancelled = np.where(cancelled, 0, -1).astype(np.int16)
        item = item_index(layer)
        grad, offset = planes.grad[0], planes.offset[0]

        def diff(k, r, s):
            """``piece r - piece s`` of unit k on the node, from the pulled-back pair."""
            m = item[k, min(r, s), max(r, s)]
            sign = 1.0 if r > s else -1.0
            return sign * grad[m], sign * offset[m]

        for k in range(layer.out_dim):
            n = int(layer.n_pieces[k])
            keep: list[int] = []
            for r in range(n):
                dominated = False
                for s in list(keep):
                    m = item[k, s, r]                # s < r: the item "r beats s"
                    if not planes.constant[0, m]:
                        continue
                    if planes.above[0, m]:
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
                        d_a, d_b = diff(k, r, s)
                        nrm = np.linalg.norm(d_a)
                        top = (d_a @ mid + d_b + np.abs(d_a) @ half) / nrm
                        if top <= -self.tol.region:
                            lost = True
                            break
                    if not lost:
                        alive.append(r)
                if len(alive) <= 1:
                    self.stats.units_by_bounds += 1
                keep = alive or keep[:1]
            if len(keep) == 1:
                code[k] = keep[0]
                self.stats.units_constant += 1
                continue
            pieces = np.array(keep, dtype=np.int16)
            if len(keep) == 2:
                d_a, d_b = diff(k, keep[1], keep[0])
                nrm = np.linalg.norm(d_a)
                units.append(_Unit(k, pieces, normal=d_a / nrm, offset=float(d_b / nrm)))
            else:
                pair_G = np.zeros((len(keep), len(keep), node.A.shape[1]))
                pair_g = np.zeros((len(keep), len(keep)))
                for j, r in enumerate(keep):
                    for o, s in enumerate(keep):
                        if o != j:
                            pair_G[j, o], pair_g[j, o] = diff(k, s, r)
                units.append(_Unit(k, pieces, pair_G=pair_G, pair_g=pair_g))
        return units

    # ------------------------------------------------------------------ children
    def _child(self, node, layer, code, rows, ball, points) -> Node:
        if layer is self.final_layer:
            return _leaf(node, code, ball)
        Aq, Bq = layer.selected(code)
        if rows is not None:
            H = np.vstack([node.H, rows[0]])
            h = np.concatenate([node.h, rows[1]])
        else:
            H, h = node.H, node.h
        if len(points) > MAX_POINTS_PER_NODE:
            points = points[:MAX_POINTS_PER_NODE]
        inherited = None
        certs = getattr(self, "_certs", None)
        if certs is not None and len(certs.V):
            # valid on any sub-polytope; kept where their vertex lies in the child (useful)
            keep = np.ones(len(certs.V), dtype=bool)
            if rows is not None:
                keep = np.all(certs.V @ rows[0].T <= rows[1] + self.tol.empty, axis=1)
            if keep.any():
                inherited = certs.kept(keep)
        return Node(H=H, h=h, A=Aq @ node.A, B=Aq @ node.B + Bq, center=ball.center,
                    radius=ball.radius, points=points, lo=node.lo, hi=node.hi, code=code,
                    certificates=inherited)


def _leaf(node: Node, code: np.ndarray, ball: Ball) -> Node:
    """A child of the run's last layer: only its code and ball are read (by the driver), so its
    polytope, map and certificates are not built."""
    return Node(H=node.H, h=node.h, A=node.A, B=node.B, center=ball.center, radius=ball.radius,
                points=_NO_POINTS, lo=node.lo, hi=node.hi, code=code)


_NO_POINTS = np.empty((0, 0))


def _load_kernel():
    from ..lp.dense import DenseBackend

    return DenseBackend()


def node_rows_violation(ctx, x: np.ndarray) -> np.ndarray:
    """How far x violates each of the context's base rows (<= 0 inside)."""
    return ctx.A @ x - ctx.b


def _reach(node: Node) -> float:
    """A bound on ``|x|_inf`` over the node (its box)."""
    return float(max(np.max(np.abs(node.lo), initial=0.0), np.max(np.abs(node.hi), initial=0.0)))


def _doubtful(ball: Ball) -> Ball:
    """A side the LP could not decide, as a sliver's ball (radius 0 or its small positive
    radius, never NaN: settled exactly)."""
    return Ball(ball.center, ball.radius if ball.radius > 0 else 0.0, ball.status, None)


def _node_ball(node: Node) -> Ball:
    return Ball(node.center, node.radius)


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
