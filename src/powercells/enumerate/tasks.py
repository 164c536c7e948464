"""Subtree tasks: a run cut into independent pieces that any executor can run (DESIGN §4).

A :class:`Task` is a run of consecutive nodes of one depth, held as engine batches (picklable:
a worker process or a Dask worker receives them whole), with the layers still to apply named
by the run's :class:`RunContext`. :func:`run_task` walks the task's subtrees depth first over
batches, exactly as one serial walk would, and stops after :attr:`RunContext.cap` new nodes: what
is left on its stack becomes its subtasks. Work is therefore cut where it turns out large, by a
rule that depends only on the nodes (never on time or on the number of workers), so the cut is
the same for every executor, and no task holds more than ``cap`` nodes (bounded memory).

Keys make the output order a function of the code paths. The root task has key ``()``; a task
with key ``t`` files its finished nodes as the part ``t + (0,)`` and its subtasks get
``t + (1,)``, ``t + (2,)``, ... in tree order. Because the walk is depth first, sorting the parts
by key puts every depth's nodes in tree order (by parent, then by code): the order of
:func:`powercells.subdivide` and of a serial run.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import BudgetExceeded
from .base import Split
from .budget import Budget
from .engines import EngineSetup, EngineSpec
from .scale import to_input_units

__all__ = ["MODES", "Part", "RunContext", "Task", "passing_layers", "run_task"]

#: What a run keeps of the nodes: ``count`` (numbers per depth), ``leaves`` (the last layer's
#: nodes with their full code paths), ``tree`` (every node, with its parent).
MODES = ("count", "leaves", "tree")

#: New nodes a task makes before it hands the rest of its stack on as subtasks (the default of
#: :attr:`RunContext.cap`): large enough that a task's fixed costs (shipping its batches,
#: writing its part) are small beside its work, small enough that a task lasts seconds and
#: its nodes take tens of megabytes.
DEFAULT_CAP = 20_000

#: A task's leftover batches of one depth are dealt into subtasks of at most this many nodes:
#: a waiting task stays small (the vertex engine's 5-D cells take a few kilobytes each), and
#: big subtrees fan out over the workers quickly.
SUBTASK_NODES = 2048

#: ... and of at most this many bytes of the nodes' affine maps (``8 D (k + 1)`` bytes a node
#: for a layer of input width ``D`` over ``k`` coordinates): a task of a 2-D net of width 512
#: takes 12 KB a node, and its batches are pickled whole to a worker; four tasks of 25 MB in
#: flight, and their pickles, raised the coordinator's and the workers' peak memory by ~200 MB.
SUBTASK_BYTES = 4 << 20


#: ... and of at most this many pieces of a node (a piece holds hundreds of the node's
#: children): the pieces of a precut root go to several workers at once.
SUBTASK_PIECES = 16


@dataclass
class RunContext:
    """What every task of one run shares (shipped once to each worker).

    Attributes
    ----------
    engine : EngineSpec
        The engine (its spec travels to workers, so engines registered by the caller run
        there too, if their module can be imported).
    setup : EngineSetup
    layers : list of Layer
        The layers the engine splits by (the balanced network's).
    exp : int
        Engine coordinates are ``x / 2**exp``.
    widths : list of int
        Units per layer (code widths).
    dim : int
        Input dimension of the domain (of its coordinates).
    mode : str
        One of :data:`MODES`.
    cap : int
        New nodes per task before it hands the rest on.
    token : str
        Identifies the run (a worker keeps one engine per run).
    domain_rows : (H, h) or None
        The domain ``H t <= h`` in engine coordinates, for settling slivers exactly.
    spool : TaskSpool or None
        Where a worker on the coordinator's machine reads the tasks it is sent by key and
        files the subtasks of its parts, handing back only their keys
        (:mod:`~powercells.enumerate.spool`); None for workers that may be on other machines
        (a Dask cluster given by the caller or by address).
    passes : int
        The last ``passes`` layers are not split by (:func:`passing_layers`): a node of depth
        ``depth - passes`` is one node of each depth after it, with the same cell and code 0.
    """

    engine: EngineSpec
    setup: EngineSetup
    layers: list
    exp: int
    widths: list
    dim: int
    mode: str
    cap: int = DEFAULT_CAP
    token: str = ""

    @property
    def depth(self) -> int:
        return len(self.layers)

    domain_rows: tuple | None = None
    spool: object = None
    passes: int = 0

    def make_engine(self):
        """The engine, wrapped to settle its slivers exactly (:mod:`.thin`) when the run
        knows its domain's rows."""
        engine = self.engine.make(self.setup)
        if self.domain_rows is None:
            return engine
        from .thin import ThinSplitter

        return ThinSplitter(engine, self.layers, self.domain_rows, self.engine.cells)

    @property
    def cells_kind(self):
        return self.engine.cells


@dataclass
class Task:
    """Consecutive nodes of one depth and the subtrees under them.

    Attributes
    ----------
    key : tuple of int
        Position in the run (module docstring).
    depth : int
        Depth of the nodes (0: the root).
    batches : list
        The nodes, as engine batches in tree order.
    origin : tuple
        ``(part key, row)``: the nodes are the rows ``row, row + 1, ...`` of depth ``depth`` in
        that part (the root's part is ``()``).
    paths : ndarray of int16 or None
        The nodes' code paths, ``(n, widths[0] + ... + widths[depth-1])`` (``leaves`` mode).
    pieces : bool
        The batches hold pieces of one node, the origin's row (an engine's ``precut``):
        splitting them makes that node's children.
    """

    key: tuple
    depth: int
    batches: list
    origin: tuple
    paths: np.ndarray | None = None
    pieces: bool = False

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.batches)


@dataclass
class Part:
    """What one task made: the nodes it finished and the subtasks it handed on.

    Attributes
    ----------
    key : tuple
        The task's key plus ``(0,)``.
    depth : int
        The task's depth; the part holds nodes of depths ``depth + 1`` and below.
    origin : tuple
        The task's origin: where the parents of the part's first-depth nodes are.
    counts : list of int
        New nodes per depth ``1..L``.
    slivers : list of int
        Cells set aside undecided per layer ``1..L`` (slivers no exact test settled).
    sliver_rows : list of tuple
        ``(layer, parent depth, parent row, code, point, radius)``; the parent row indexes the
        part's own rows of that depth, or the origin's rows when the parent depth is the task's.
    levels : list or None
        ``tree`` mode: per depth ``depth + 1 .. L``, ``(code, parent, point, radius, thin,
        cells)`` arrays; ``parent`` as for the sliver rows.
    leaves : tuple or None
        ``leaves`` mode: ``(paths, point, radius, thin, cells)`` of the part's last-layer
        nodes.
    thin : list of int
        Thin regions (settled exactly, counted in ``counts``) per depth ``1..L``.
    subtasks : list of Task
    stats : dict
    stopped : str or None
        Why a budget stopped the task (its unsplit nodes are then among the subtasks).
    seconds : float
    """

    key: tuple
    depth: int
    origin: tuple
    counts: list
    slivers: list
    sliver_rows: list = field(default_factory=list)
    levels: list | None = None
    leaves: tuple | None = None
    subtasks: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    stopped: str | None = None
    seconds: float = 0.0
    thin: list = field(default_factory=list)

    @property
    def task_key(self) -> tuple:
        return self.key[:-1]



def passing_layers(layers) -> int:
    """How many of the last layers cut nothing: layers whose every unit is one affine piece
    (an identity/linear output layer, a maxout of one piece), after at least one layer.

    Such a layer's code is 0 on every cell and its cells are its input's: each node of the
    layer before is exactly one node of it. A count need not split by them (ACAS Xu's linear
    output layer took a third of the whole count of 3_3 over prop_9), and the layer before
    them is then the last the engine splits by, whose children it need not build."""
    n = 0
    for layer in reversed(layers[1:]):
        if layer.is_switch or layer.max_pieces != 1:
            break
        n += 1
    return n


def root_task(batch, *, with_paths: bool = False) -> Task:
    """The task of the whole run: the root node, to be split by every layer (with its empty
    code path when the run keeps leaves' code paths)."""
    return Task(key=(), depth=0, batches=[batch], origin=((), 0),
                paths=np.empty((len(batch), 0), dtype=np.int16) if with_paths else None)


class _Chunks:
    """Array chunks of one depth, concatenated when the part is finished."""

    def __init__(self):
        self.parts = []

    def add(self, *columns):
        self.parts.append(columns)

    def arrays(self, cells_kind):
        if not self.parts:
            return None
        cols = list(zip(*self.parts))
        out = [np.concatenate(c) for c in cols[:-1]]
        cells = cols[-1]
        if cells_kind is None or any(c is None for c in cells):
            out.append(None)
        elif cells_kind == "polygons":
            from ..geometry.polygons import Polygons

            out.append(Polygons.concat(list(cells)))
        else:
            out.append(np.concatenate(cells))
        return tuple(out)


def _libc_trim():
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):       # not glibc
        return None


_TRIM = _libc_trim()
_TRIMMED = float("-inf")

#: Seconds between two trims of the heap (release_memory).
TRIM_EVERY = 2.0


def release_memory() -> None:
    """Give the memory freed by a finished task back to the system. A split makes many small
    arrays that glibc keeps in its arenas after they are freed (the first layer of ACAS Xu 1_9
    over prop_7 left 2.6 GB resident with 0.2 GB live); without this a process's resident
    memory is its largest task's, forever."""
    global _TRIMMED
    now = time.perf_counter()
    # trimming walks the whole heap (milliseconds): at most once every few seconds
    if now - _TRIMMED < TRIM_EVERY:
        return
    pa = sys.modules.get("pyarrow")
    if pa is not None:                  # Parquet parts written by the store
        pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)
    _TRIMMED = time.perf_counter()


def engine_stats(splitter) -> dict:
    """An engine's statistics as a dict."""
    stats = splitter.stats
    return stats.as_dict() if hasattr(stats, "as_dict") else dict(stats)


def run_task(ctx: RunContext, splitter, task: Task, budget: Budget | None = None,
             known: list | None = None) -> Part:
    """Walk a task's subtrees depth first, for at most ``ctx.cap`` new nodes.

    Parameters
    ----------
    ctx : RunContext
    splitter : Engine
        Made by :meth:`RunContext.make_engine` (kept between tasks of one run); its
        ``budget`` is set to ``budget``.
    task : Task
    budget : Budget, optional
        Checked inside every split; when it runs out the task stops and its unsplit nodes
        become subtasks (:attr:`Part.stopped` says why).
    known : list of int, optional
        Nodes per depth ``1..L`` known before this task (for ``max_regions``).

    Returns
    -------
    Part
    """
    t0 = time.perf_counter()
    L, j = ctx.depth, task.depth
    last = L - ctx.passes                 # the depths after it are counted, not split
    budget = budget or Budget()
    known = known or [0] * L
    splitter.budget = budget
    bind = getattr(splitter, "bind", None)
    if bind is not None:                    # the thin-cell splitter (see .thin)
        bind(ctx.layers)
    stats_before = engine_stats(splitter)
    keep_tree, keep_leaves = ctx.mode == "tree", ctx.mode == "leaves"
    kind = ctx.cells_kind if (keep_tree or keep_leaves) else None
    counts = [0] * L
    thin = [0] * L
    slivers = [0] * L
    sliver_rows = []
    levels = [_Chunks() for _ in range(L)]
    leaves = _Chunks()
    # stack entries: (batch, depth, first row of the batch at its depth, code paths or None,
    # pieces); rows of the task's own depth are the origin's, deeper rows the part's own; the
    # pieces of one node (precut) all have that node's row
    stack = []
    row = 0
    paths = task.paths
    for batch in task.batches:
        n = len(batch)
        stack.append((batch, j, row, None if paths is None else paths[row:row + n],
                      task.pieces))
        if not task.pieces:
            row += n
    stack.reverse()
    precut = getattr(splitter, "precut", None)
    made = 0
    root_pieces = 0
    stopped = None
    while stack:
        if made >= ctx.cap:
            break
        batch, depth, base, bpaths, pieces = stack[-1]
        # max_regions counts the nodes of the depth being made (DESIGN §3)
        budget.found = known[depth] + counts[depth]
        try:
            if depth == 0 and not pieces and precut is not None:
                # the root by a wide first layer: its pieces, one at a time (a piece holds
                # hundreds of the root's children)
                cut = precut(batch, ctx.layers[0])
                if cut is not None:
                    root_pieces += len(cut)
                    stack.pop()
                    _push(stack, splitter, cut, depth, base,
                          None if bpaths is None else np.repeat(bpaths, len(cut), axis=0),
                          1, pieces=True)
                    continue
            res: Split = splitter.split(batch, ctx.layers[depth])
            budget.found += len(res.parent)
            budget.poll()
        except BudgetExceeded as exc:
            stopped = str(exc) or budget.reason or "budget reached"
            break
        stack.pop()
        if ctx.exp:
            res = to_input_units(res, ctx.exp)
        n = len(res.parent)
        first = counts[depth]                 # the children's first row at depth + 1
        sl = res.slivers
        slivers[depth] += len(sl)
        for i in range(len(sl)):
            sliver_rows.append((depth + 1, depth, base + (0 if pieces else int(sl.parent[i])),
                                sl.code[i], sl.center[i], float(sl.radius[i])))
        code = res.code.astype(np.int16, copy=False).reshape(n, -1)
        is_thin = np.zeros(n, dtype=bool) if res.thin is None else res.thin
        thin[depth] += int(is_thin.sum())
        center, radius = res.center.reshape(n, -1), res.radius.astype(np.float64, copy=False)
        if keep_tree:
            parent_rows = np.full(n, base, dtype=np.int64) if pieces else (
                base + res.parent.astype(np.int64, copy=False))
            levels[depth].add(code, parent_rows, center, radius, is_thin, res.cells)
        counts[depth] += n
        made += n
        for d in (range(last, L) if depth + 1 == last else ()):
            # a layer that cuts nothing (passing_layers): the same cells, one node each, code 0
            zero = np.zeros((n, ctx.widths[d]), dtype=np.int16)
            if keep_tree:
                levels[d].add(zero, counts[d - 1] - n + np.arange(n, dtype=np.int64), center,
                              radius, is_thin, res.cells)
            code = np.hstack([code, zero])
            counts[d] += n
            thin[d] += int(is_thin.sum())
            made += n
        child_paths = None
        if bpaths is not None:
            child_paths = np.hstack([bpaths[res.parent], code])
        if depth + 1 in (last, L):
            if keep_leaves:
                leaves.add(child_paths, center, radius, is_thin, res.cells)
            continue
        _push(stack, splitter, res.children, depth + 1, first, child_paths,
              max(1, splitter.batch_size(ctx.layers[depth + 1])))
    key = task.key + (0,)
    subtasks = _hand_on(task, key, stack[::-1], ctx, splitter)
    stats_after = engine_stats(splitter)
    stats = {k: v - stats_before.get(k, 0) for k, v in stats_after.items()
             if isinstance(v, (int, float))}
    if root_pieces:
        stats["root_pieces"] = root_pieces      # prices the pieces waiting (seconds_left)
    part = Part(key=key, depth=j, origin=task.origin, counts=counts, slivers=slivers,
                sliver_rows=sliver_rows, subtasks=subtasks, stats=stats, stopped=stopped,
                seconds=time.perf_counter() - t0, thin=thin)
    if keep_tree:
        part.levels = [levels[d].arrays(kind) if d >= j else None for d in range(L)]
    if keep_leaves:
        part.leaves = leaves.arrays(kind)
    return part


def _push(stack, splitter, batch, depth, first, paths, size, pieces=False) -> None:
    """A batch onto the stack, cut into batches of ``size`` (the first on top); rows from
    ``first`` on, or all ``first`` (the pieces of the node of that row)."""
    n = len(batch)
    for lo in reversed(range(0, n, size)):
        hi = min(lo + size, n)
        stack.append((splitter.take(batch, lo, hi), depth, first if pieces else first + lo,
                      None if paths is None else paths[lo:hi], pieces))


def subtask_nodes(ctx: RunContext, depth: int) -> int:
    """The most nodes of depth ``depth`` in one subtask (:data:`SUBTASK_NODES`,
    :data:`SUBTASK_BYTES`): a function of the layer widths only, so the cut is the same for
    every executor."""
    per_node = 8 * ctx.layers[depth].in_dim * (ctx.dim + 1)
    return max(1, min(SUBTASK_NODES, SUBTASK_BYTES // per_node))


def _hand_on(task: Task, key: tuple, pending: list, ctx: RunContext, splitter) -> list[Task]:
    """The subtasks of a stopped task: its pending batches (in tree order), grouped by depth
    (the pending batches of one depth are consecutive rows) and dealt into subtasks of at most
    :func:`subtask_nodes` nodes (a larger batch is cut)."""
    subtasks = []
    i = 0
    while i < len(pending):
        depth, pieces = pending[i][1], pending[i][4]
        k = i
        while k < len(pending) and pending[k][1] == depth and pending[k][4] == pieces:
            k += 1
        limit = SUBTASK_PIECES if pieces else subtask_nodes(ctx, depth)
        run = []
        for batch, d, row, paths, _ in pending[i:k]:
            n = len(batch)
            if n <= limit:
                run.append((batch, d, row, paths))
                continue
            for lo in range(0, n, limit):
                hi = min(lo + limit, n)
                run.append((splitter.take(batch, lo, hi), d, row if pieces else row + lo,
                            None if paths is None else paths[lo:hi]))
        groups, group, size = [], [], 0
        for entry in run:
            n = len(entry[0])
            if group and size + n > limit:
                groups.append(group)
                group, size = [], 0
            group.append(entry)
            size += n
        groups.append(group)
        for group in groups:
            if depth == task.depth:         # rows of the origin's part
                origin = (task.origin[0], task.origin[1] + group[0][2])
            else:                           # rows of this task's part
                origin = (key, group[0][2])
            paths = None
            if group[0][3] is not None:
                paths = np.concatenate([g[3] for g in group])
            subtasks.append(Task(key=task.key + (len(subtasks) + 1,), depth=depth,
                                 batches=[g[0] for g in group], origin=origin, paths=paths,
                                 pieces=pieces))
        i = k
    return subtasks
