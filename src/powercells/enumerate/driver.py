"""The subdivision driver: one walk over the tree, any engine, any sink (DESIGN §2-4).

The driver splits the root by layer 1, then walks each depth-1 subtree depth-first and hands the
finished subtree to the sink. Subtrees are independent given their root node, so a later executor
can run them in worker processes and feed the sink in the same order; ids stay the same.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..domain import as_domain
from ..errors import BudgetExceeded, OptionError, PowercellsError, PrecisionWarning
from ..geometry.polygons import Polygons
from ..network import Network
from .base import Split
from .budget import Budget
from .engines import EngineOptions, EngineSetup, choose_engine
from .scale import (
    ScaledDomain,
    check_domain_scale,
    check_tolerance_scale,
    engine_exponent,
    scaled_polygons,
    to_input_units,
)
from .sinks import CountSink, LeafSink, Sink, TreeSink
from .tolerances import Tolerances
from .tree import Level, SliverTable, SubdivisionTree

__all__ = ["RegionCount", "count_regions", "stream_leaves", "subdivide"]


@dataclass
class RegionCount:
    """Counts from :func:`count_regions`.

    Attributes
    ----------
    regions : int
        Leaves: linear regions of the network over the domain.
    per_layer : list of int
        Regions after layer 1, 2, ..., L.
    slivers : list of int
        Per layer, the cells set aside with inradius <= the region tolerance (not counted).
    partial : bool
        True when a budget stopped the enumeration; the counts are then lower bounds.
    seconds : float
    engine : str
    stats : dict
    """

    regions: int
    per_layer: list
    slivers: list
    partial: bool
    seconds: float
    engine: str
    stats: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The JSON object printed by ``powercells count --json``."""
        return {"regions": self.regions, "per_layer": list(self.per_layer),
                "seconds": round(self.seconds, 6), "engine": self.engine,
                "partial": self.partial, "slivers": list(self.slivers)}


class _Progress:
    """A one-line progress report on stderr, at most a few times a second."""

    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled
        self.total = total
        self.start = time.perf_counter()
        self.last = 0.0

    def update(self, done: int, regions: int, force: bool = False):
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < 0.25:
            return
        self.last = now
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(24 * frac)
        sys.stderr.write(f"\r[{bar:<24}] {done}/{self.total} layer-1 cells, {regions} regions, "
                         f"{now - self.start:.1f} s")
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


class _Walk:
    """Depth-first over batches: a batch's children are cut into the next batches, pushed in
    reverse, so every level is filled in breadth-first order (parents in order) whatever the
    batch size."""

    def __init__(self, engine, layers, budget: Budget, slivers: SliverTable, exp: int = 0):
        self.engine = engine
        self.exp = exp                      # engine coordinates are x / 2**exp
        self.layers = layers
        self.L = len(layers)
        self.budget = budget
        self.leaves = 0
        self.slivers = slivers
        self.emitted = [0] * (self.L + 1)   # nodes per depth already handed to the sink

    def split(self, batch, depth, base, known: int = 0) -> Split:
        """Children under layer depth+1 of a batch whose first node has global index ``base``;
        ``known``: nodes of depth+1 already made in the current group. The budget is checked
        inside the split (by the engine) and after it."""
        self.budget.found = self.emitted[depth + 1] + known
        res = self.engine.split(batch, self.layers[depth])
        self.budget.found += len(res.parent)
        self.budget.poll()
        if self.exp:
            res = to_input_units(res, self.exp)
        sl = res.slivers
        for i in range(len(sl)):
            self.slivers.layer.append(depth + 1)
            self.slivers.parent.append((depth, base + int(sl.parent[i])))
            self.slivers.code.append(sl.code[i])
            self.slivers.interior_point.append(sl.center[i])
            self.slivers.inradius.append(float(sl.radius[i]))
        return res

    def batches(self, children, depth, base):
        """``(batch, depth, first index)`` for the children at ``depth``, last batch first."""
        n = len(children)
        size = max(1, self.engine.batch_size(self.layers[depth]))
        return [(self.engine.take(children, lo, lo + size), depth, base + lo)
                for lo in reversed(range(0, n, size))]

    def subtree(self, batch, acc):
        """Walk the subtrees under a batch of depth-1 nodes (already the entries of acc[0])."""
        stack = [(batch, 1, 0)]
        while stack:
            batch, depth, local = stack.pop()
            if depth == self.L:
                continue
            level = acc[depth]
            base = level.size
            res = self.split(batch, depth, self.emitted[depth] + local, known=base)
            level.add(res.code, local + res.parent, res.center, res.radius, res.cells)
            if depth + 1 == self.L:
                self.leaves += len(res.parent)
            else:
                stack.extend(self.batches(res.children, depth + 1, base))


class _LevelParts:
    """One level of a subtree group, accumulated as array chunks; ``kind`` names the engine's
    cell geometry column (``"polygons"``, ``"intervals"`` or None)."""

    def __init__(self, kind):
        self.kind = kind
        self.parts = []
        self.size = 0

    def add(self, code, parent, point, radius, cells=None):
        self.parts.append((code, parent, point, radius, cells))
        self.size += len(parent)

    def level(self, width, dim) -> Level:
        if not self.size:
            return Level.empty(width, dim)
        code, parent, point, radius, cells = zip(*self.parts)
        columns = {}
        if self.kind is not None and all(c is not None for c in cells):
            columns[self.kind] = (Polygons.concat(list(cells)) if self.kind == "polygons"
                                  else np.concatenate(cells))
        return Level(np.concatenate(code).astype(np.int16, copy=False).reshape(-1, width),
                     np.concatenate(parent).astype(np.int64, copy=False),
                     np.concatenate(point).reshape(-1, dim),
                     np.concatenate(radius).astype(np.float64, copy=False), **columns)


def _cells_range(cells, lo: int, hi: int):
    """Cells ``lo:hi`` of a cell geometry column (polygons or an array), or None."""
    if cells is None:
        return None
    if isinstance(cells, np.ndarray):
        return cells[lo:hi]
    return cells.take(np.arange(lo, hi))


def _imprecise(name: str, stats: dict, requested: str, rerun: bool) -> bool:
    """Whether to redo an enumeration with the lp engine: the vertex engine's cells lost
    consistency (near-coincident hyperplanes; vertices with fewer than d edges) and ``auto``
    chose it. Otherwise such a result comes with a PrecisionWarning."""
    fragile = stats.get("fragile_vertices", 0) if name == "vertex" else 0
    if not fragile:
        return False
    if requested == "auto" and rerun:
        return True
    warnings.warn(f"near-coincident hyperplanes left {fragile} vertices of the vertex engine's "
                  "cells inconsistent (fewer than d edges): counts near them may be off; "
                  "engine='lp' decides such cells by LP", PrecisionWarning, stacklevel=3)
    return False


def _stats(engine) -> dict:
    stats = engine.stats
    return stats.as_dict() if hasattr(stats, "as_dict") else dict(stats)


def _run(network, domain, *, engine, engine_options, lp, tol, tolerances, max_regions,
         time_limit, progress, sink: Sink):
    if not isinstance(network, Network):
        raise PowercellsError(f"expected a Network, got {type(network).__name__}; "
                              "use powercells.load or Network.from_weights")
    domain = as_domain(domain, dim=network.input_dim)
    options = EngineOptions.coerce(engine_options)
    spec = choose_engine(engine, domain.dim, lp_given=lp is not None, options=options)
    budget = Budget(max_regions, time_limit)
    net = domain.network_on(network)
    if tolerances is None:
        tolerances = Tolerances(region=tol)
    elif tol is not None:
        raise OptionError("give either tol or tolerances, not both")
    check_domain_scale(domain)
    # Engines work in coordinates t = x / 2**exp, chosen so that the domain's diameter is about
    # 1 (exp = 0 for domains 1e-3 to 1e3 wide), on an equivalent network whose units are scaled
    # by powers of two (Network.balanced): the same partition, and on ordinary input the same
    # arithmetic bit for bit, while domains like [-1e12, 1e12] or weights like 1e300 stay in the
    # range the LP solver's tolerances and float64's exponents are made for. Powers of two scale
    # exactly, so the engines' points and radii map back to x without rounding.
    exp = engine_exponent(domain)
    view = domain if exp == 0 else ScaledDomain(domain, exp)
    engine_tol = tolerances.scaled(exp).resolve(view.diameter)
    resolved = engine_tol.scaled(-exp)
    check_tolerance_scale(domain, resolved)
    name = spec.name
    work = net.balanced(input_exp=exp)
    # counting needs no interior points, only certain region decisions
    eng = spec.make(EngineSetup(tolerances=engine_tol, cap=2.0 * view.diameter,
                                lp=lp if spec.uses_lp else None, options=options,
                                exact_balls=not isinstance(sink, CountSink),
                                final_layer=work.layers[-1]))
    eng.budget = budget

    k = domain.dim
    try:
        root = eng.root(view)
    except BudgetExceeded:
        root = None                 # the domain's own polygon outlasted the budget (planar)
    center = np.asarray(domain.chebyshev[0], dtype=np.float64)
    H, h = domain.halfspaces()
    radius = float(np.min(h - H @ center))
    cells = eng.cells(root) if root is not None else None
    columns = {}
    if cells is not None:
        columns[spec.cells] = (scaled_polygons(cells, exp) if spec.cells == "polygons"
                               else np.ldexp(cells, exp))
    root_level = Level(np.empty((1, 0), dtype=np.int16), np.array([-1], dtype=np.int64),
                       center[None, :].copy(), np.array([radius]), **columns)
    widths = list(net.widths)
    L = net.depth
    sink.start(root_level, L)
    slivers = SliverTable()
    t0 = budget.start
    walk = _Walk(eng, work.layers, budget, slivers, exp)
    partial = False
    reporter = None
    try:
        if root is None:
            raise BudgetExceeded(budget.reason or "budget reached")
        first = walk.split(root, 0, 0)
        n_first = len(first.parent)
        if L == 1:
            walk.leaves = n_first
        reporter = _Progress(bool(progress), n_first)
        groups = walk.batches(first.children, 1, 0)[::-1] if L > 1 else []
        if L == 1:
            groups = [(first.children, 1, 0)]

        def group_levels(batch, lo):
            n = len(batch)
            acc = [_LevelParts(spec.cells) for _ in range(L)]
            acc[0].add(first.code[lo:lo + n], np.zeros(n, dtype=np.int64),
                       first.center[lo:lo + n], first.radius[lo:lo + n],
                       _cells_range(first.cells, lo, lo + n))
            return acc

        def emit(acc):
            levels = [acc[j].level(widths[j], k) for j in range(L)]
            sink.add_subtree(levels)
            for j, level in enumerate(levels):
                walk.emitted[j + 1] += len(level)

        for g, (batch, _, lo) in enumerate(groups):
            acc = group_levels(batch, lo)
            try:
                walk.subtree(batch, acc)
            except BudgetExceeded:
                # what is finished still counts: this group's partial subtree, and the
                # layer-1 regions of the groups never walked (the root's split was whole)
                emit(acc)
                for rest, _, rest_lo in groups[g + 1:]:
                    emit(group_levels(rest, rest_lo))
                raise
            emit(acc)
            reporter.update(lo + len(batch), walk.leaves)
    except BudgetExceeded:
        partial = True
    finally:
        if reporter is not None:
            reporter.update(reporter.total, walk.leaves, force=True)
            reporter.close()
    seconds = time.perf_counter() - t0
    if not partial:
        _check_tiling(walk.emitted[1:], slivers.per_layer(L), resolved)
    return net, domain, widths, slivers, partial, seconds, _stats(eng), resolved, name


def _check_tiling(counts, slivers, tol: Tolerances) -> None:
    """A layer's cells tile its parents, the previous layer's regions, so a finished run finds
    a region or a sliver at every layer that has parents; none means every cell fell below the
    empty tolerance (or the arithmetic failed), and no count is printed.

    Raises
    ------
    PowercellsError
    """
    for layer, (n, thin) in enumerate(zip(counts, slivers), 1):
        # a layer subdivides the previous layer's regions (slivers are not split): with
        # none, it has nothing to tile
        parents = 1 if layer == 1 else counts[layer - 2]
        if parents and n == 0 and thin == 0:
            raise PowercellsError(
                f"layer {layer}: no region and no sliver were found, but the cells of a layer "
                f"tile the domain: every cell had an inradius at or below the empty tolerance "
                f"{tol.empty:.3g} (cells that thin are taken as lower-dimensional): give a "
                "smaller tolerance; no count is reported")


def subdivide(network, domain, *, engine: str = "auto", engine_options=None, lp=None,
              tol: float | None = None, tolerances: Tolerances | None = None,
              max_regions: int | None = None, time_limit: float | None = None,
              progress: bool = False) -> SubdivisionTree:
    """Enumerate every region of every layer of ``network`` over ``domain``, exactly.

    Parameters
    ----------
    network : Network
    domain : Domain or (lo, hi) or (A, b)
        A :class:`Box`, :class:`Polytope` or :class:`Slice`.
    engine : {"auto", "lp", "interval", "planar", "vertex"}
        ``auto`` picks ``interval`` for 1-D domains, ``planar`` for 2-D domains and plane
        slices, ``vertex`` for 3 to 8 dimensions (10 with numba; all three exact and LP-free;
        the crossover with ``lp`` measured by ``benchmarks/bench_vertex.py``), and ``lp``
        otherwise or when ``lp`` is given (:mod:`powercells.enumerate.engines`).
    engine_options : EngineOptions or dict, optional
        Engine tuning that does not change results: ``compiled`` and ``threads`` of the vertex
        engine's compiled splitter (:class:`~powercells.enumerate.engines.EngineOptions`).
    lp : None, "highs", "cvxpy" or an LPBackend
        LP backend of the ``lp`` engine (default HiGHS), also used by the ``vertex`` engine for
        the Chebyshev balls of the tree.
    tol : float, optional
        Region tolerance tau (a region has inradius > tau); default ``1e-9 * diameter``.
    tolerances : Tolerances, optional
        All tolerances at once (exclusive with ``tol``).
    max_regions : int, optional
        Stop once more than this many regions are found after some layer (the leaves, in
        practice); the result is then ``partial`` and its counts are lower bounds. At least 1.
    time_limit : float, optional
        Stop after this many seconds; the result is then ``partial``. Both budgets are checked
        inside every engine's split, so a run stops within a fraction of a second of either.
    progress : bool
        Print a progress line on stderr.

    Returns
    -------
    SubdivisionTree

    Raises
    ------
    DomainError
        If the domain is malformed or does not match the network's input dimension.
    OptionError
        For unknown engine names or options, an engine that cannot run on the domain, invalid
        budgets or tolerances.
    PowercellsError
        For unknown LP backend names.
    SolverError
        If the LP backend fails.

    Examples
    --------
    >>> import numpy as np, powercells as pc
    >>> net = pc.Network.from_weights([(np.eye(2), [0.0, -1.0]), (np.array([[1.0, -1.0]]), [0.5])],
    ...                               activations=["relu", "relu"])
    >>> pc.subdivide(net, pc.Box(-10, 10, dim=2)).per_layer
    [4, 6]
    """
    options = {"engine_options": engine_options, "lp": lp, "tol": tol,
               "tolerances": tolerances, "max_regions": max_regions,
               "time_limit": time_limit, "progress": progress}
    sink = TreeSink()
    net, domain, widths, slivers, partial, seconds, stats, resolved, name = _run(
        network, domain, engine=engine, sink=sink, **options)
    rerun = _rerun_options(options, seconds)
    if _imprecise(name, stats, engine, rerun=rerun is not None and not partial):
        sink = TreeSink()
        net, domain, widths, slivers, partial, more, stats, resolved, name = _run(
            network, domain, engine="lp", sink=sink, **rerun)
        seconds += more
    return SubdivisionTree(net, domain, sink.levels(widths, domain.dim), slivers, partial=partial,
                           seconds=seconds, engine=name, stats=stats, tolerances=resolved,
                           source_network=network)


def count_regions(network, domain, *, engine: str = "auto", engine_options=None, lp=None,
                  tol: float | None = None, tolerances: Tolerances | None = None,
                  max_regions: int | None = None, time_limit: float | None = None,
                  progress: bool = False) -> RegionCount:
    """Count the regions of every layer without keeping the tree (memory independent of the
    count). Parameters as for :func:`subdivide`.

    Returns
    -------
    RegionCount
    """
    return _counted(CountSink(), network, domain, engine=engine,
                    engine_options=engine_options, lp=lp, tol=tol,
                    tolerances=tolerances, max_regions=max_regions, time_limit=time_limit,
                    progress=progress)


def stream_leaves(network, domain, emit, *, engine: str = "auto", engine_options=None,
                  lp=None, tol: float | None = None, tolerances: Tolerances | None = None,
                  max_regions: int | None = None, time_limit: float | None = None,
                  progress: bool = False) -> RegionCount:
    """Enumerate like :func:`subdivide`, handing the leaves to ``emit`` group by group instead of
    keeping the tree: memory is bounded by one group of subtrees, whatever the region count.

    Parameters
    ----------
    emit : callable
        Called with a :class:`~powercells.enumerate.sinks.LeafChunk` for every finished group,
        in tree order: full code paths, Chebyshev centres and inradii, and the polygons (planar
        engine) or intervals (interval engine) of its leaves.
    Other parameters as for :func:`subdivide`.

    Returns
    -------
    RegionCount
    """
    return _counted(LeafSink(emit), network, domain, engine=engine,
                    engine_options=engine_options, lp=lp, tol=tol,
                    tolerances=tolerances, max_regions=max_regions, time_limit=time_limit,
                    progress=progress)


def _rerun_options(options: dict, seconds: float):
    """The options of a rerun with the lp engine: the time limit is what the first run left
    (None when nothing is left: the first result stands, with its warning)."""
    limit = options.get("time_limit")
    if limit is None:
        return options
    left = float(limit) - seconds
    return {**options, "time_limit": left} if left > 0 else None


def _counted(sink, network, domain, **options) -> RegionCount:
    """Run with a sink that keeps per-depth ``counts``; return them as a RegionCount."""
    _, _, _, slivers, partial, seconds, stats, _, name = _run(network, domain, sink=sink,
                                                              **options)
    # a count can be redone; leaves already handed to the caller cannot
    rerun = _rerun_options(options, seconds)
    if _imprecise(name, stats, options["engine"], rerun=isinstance(sink, CountSink)
                  and rerun is not None and not partial):
        sink = CountSink()
        _, _, _, slivers, partial, more, stats, _, name = _run(
            network, domain, sink=sink, **{**rerun, "engine": "lp"})
        seconds += more
    counts = sink.counts
    return RegionCount(regions=counts[-1], per_layer=counts, slivers=slivers.per_layer(len(counts)),
                       partial=partial, seconds=seconds, engine=name, stats=stats)
