"""The subdivision driver: one run, any engine, any executor, any sink (DESIGN §2-4).

The driver checks the network, domain and options, makes the engine and the root, and hands the
root task to the coordinator (:mod:`.schedule`), which runs it and the subtasks it hands on
(:mod:`.tasks`) in this process or on an executor's workers and gives the parts to the sink in
tree order: the result and its ids are the same whatever the executor.
"""

from __future__ import annotations

import time
import uuid
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..domain import as_domain
from ..errors import BudgetExceeded, OptionError, PowercellsError, PrecisionWarning
from ..network import Network
from . import tasks as tasks_module
from .budget import Budget
from .engines import EngineOptions, EngineSetup, choose_engine
from .executors import as_executor
from .kernels import blas_run
from .scale import (
    ScaledDomain,
    check_domain_scale,
    check_tolerance_scale,
    engine_exponent,
    scaled_polygons,
)
from .schedule import execute
from .sinks import CertifyingSink, CountSink, LeafSink, Sink, TreeSink
from .tasks import RunContext, engine_stats, passing_layers, root_task
from .tolerances import Tolerances
from .tree import Level, SubdivisionTree

__all__ = ["RegionCount", "count_regions", "stream_leaves", "subdivide"]


@dataclass
class RegionCount:
    """Counts from :func:`count_regions`.

    Attributes
    ----------
    regions : int
        Leaves: linear regions of the network over the domain.
    per_layer : list of int
        Regions after layer 1, 2, ..., L (thin regions included).
    thin : list of int
        Per layer, the thin regions among them: inradius at or below the region tolerance,
        with an interior point certified in exact arithmetic (:mod:`powercells.enumerate.thin`).
        The certified mode (``certify=True``) decides every cell exactly and marks none thin
        (it computes no inradius, only witnesses).
    undecided : list of int
        Per layer, cells set aside that float64 could neither count nor rule out and that no
        exact test settled (not counted; normally all zero).
    certified : int or None
        With ``certify_leaves=True``: how many leaves are certified regions (their interior
        point strictly inside their code path's open cell, in exact terms): a proven lower
        bound of the exact count. None otherwise.
    partial : bool
        True when a budget stopped the enumeration; the counts are then lower bounds.
    seconds : float
    engine : str
    stats : dict
    """

    regions: int
    per_layer: list
    thin: list
    undecided: list
    partial: bool
    seconds: float
    engine: str
    stats: dict = field(default_factory=dict)
    certified: int | None = None

    def as_dict(self) -> dict:
        """The JSON object printed by ``powercells count --json``."""
        out = {"regions": self.regions, "per_layer": list(self.per_layer),
               "seconds": round(self.seconds, 6), "engine": self.engine,
               "partial": self.partial, "thin": list(self.thin),
               "undecided": list(self.undecided)}
        if self.certified is not None:
            out["certified_leaves"] = self.certified
        return out


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


def _run(*args, **kwargs):
    with blas_run():        # BLAS on one thread once the run starts threads (kernels.hold_blas)
        return _run_on(*args, **kwargs)


def _run_on(network, domain, *, engine, engine_options, lp, tol, tolerances, max_regions,
            time_limit, progress, sink: Sink, mode: str, executor=None, store=None,
            certify=False, certificate=None):
    if not isinstance(network, Network):
        raise PowercellsError(f"expected a Network, got {type(network).__name__}; "
                              "use powercells.load or Network.from_weights")
    domain = as_domain(domain, dim=network.input_dim)
    options = EngineOptions.coerce(engine_options)
    if certify not in (True, False):
        raise OptionError(f"certify must be True or False, got {certify!r}")
    if certificate is not None and not certify:
        raise OptionError("a certificate is written by the certified mode: give certify=True "
                          "(CLI: --certify)")
    if certify:
        engine = _certified_engine(engine, lp, domain, network, certificate)
    spec = choose_engine(engine, domain.dim, lp_given=lp is not None, options=options)
    budget = Budget(max_regions, time_limit)
    if certificate is not None:
        executor = "serial"                 # the certificate is written by this process
    executor = as_executor(executor)
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
    # the exact engine computes with the network and domain as given: no rescaling at all
    exp = 0 if spec.name == "exact" else engine_exponent(domain)
    view = domain if exp == 0 else ScaledDomain(domain, exp)
    engine_tol = tolerances.scaled(exp).resolve(view.diameter)
    resolved = engine_tol.scaled(-exp)
    check_tolerance_scale(domain, resolved)
    # the name runs and stores report: the certified mode's float filter is another run
    name = f"{spec.name} (certified)" if certify and spec.name != "exact" else spec.name
    work = net if spec.name == "exact" else net.balanced(input_exp=exp)
    # no split by trailing one-piece layers (a linear output layer): their cells are the layer
    # before's, which is then the last the engine makes children for; a certificate records
    # every split, so it gets them all
    passes = passing_layers(work.layers) if certificate is None else 0
    # counting needs no interior points, only certain region decisions
    setup = EngineSetup(tolerances=engine_tol, cap=2.0 * view.diameter,
                        lp=lp if spec.uses_lp else None, options=options,
                        exact_balls=not isinstance(sink, CountSink),
                        final_layer=work.layers[-1 - passes], dim=domain.dim,
                        outputs_points=mode != "count",
                        certified=certify and spec.name != "exact")
    widths = list(net.widths)
    L = net.depth
    k = domain.dim
    if store is not None:
        from ..io.store import run_fields

        store.bind({**run_fields(net, domain, engine=name, tolerances=resolved, lp=lp),
                    "leaves": mode == "leaves"}, widths, k)
        if store.complete:                  # the totals, without enumerating
            sink.start(None, L)
            store.totals(sink)
            stats = dict(store.manifest.get("stats", {}), store_seconds=store.manifest["seconds"])
            return (net, domain, widths, sink.slivers, False, time.perf_counter() - budget.start,
                    stats, resolved, name)
    ctx = RunContext(engine=spec, setup=setup, layers=list(work.layers), exp=exp,
                     widths=widths, dim=k, mode=mode,
                     cap=spec.task_cap or tasks_module.DEFAULT_CAP,
                     token=uuid.uuid4().hex, domain_rows=view.halfspaces(), passes=passes)
    eng = ctx.make_engine()
    eng.budget = budget
    if certificate is not None:
        certificate.start(net, domain, eng)

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
    sink.start(root_level, L)
    known = None
    tasks = [root_task(root, with_paths=mode == "leaves")] if root is not None else []
    if store is not None and root is not None:
        tasks, known = store.resume(tasks, sink)
    stats = engine_stats(eng)
    if root is None:
        stopped, n_tasks, workers = budget.reason or "budget reached", 0, 0
    else:
        outcome = execute(ctx, eng, tasks, executor=executor, budget=budget, sink=sink,
                          store=store, known=known, progress=progress)
        for key, value in outcome.stats.items():        # the tasks' own, wherever they ran
            stats[key] = stats.get(key, 0) + value
        stopped, n_tasks, workers = outcome.stopped, outcome.tasks, outcome.workers
    stats.update(tasks=n_tasks, workers=workers, executor=executor.name)
    partial = stopped is not None
    seconds = time.perf_counter() - budget.start
    if not partial:
        _check_tiling(sink.counts, sink.slivers.per_layer(L), resolved)
        if certify and len(sink.slivers):
            _refuse_undecided(sink.slivers)
    if store is not None:
        store.finish(complete=not partial, counts=sink.counts, thin=sink.thin,
                     slivers=sink.slivers.per_layer(L), seconds=seconds, stats=stats)
    return net, domain, widths, sink.slivers, partial, seconds, stats, resolved, name



def _certified_engine(engine, lp, domain, network, certificate) -> str:
    """The engine of the certified mode, or why none can certify.

    A float engine with its certified filter (:mod:`.planar_filtered` in 2-D,
    :mod:`.vertex.filtered` above: every decision proven by a rigorous error bound, the cells
    it cannot prove settled exactly) where it applies: every layer but trailing linear ones
    ReLU-type, no certificate to write, a domain of 2 dimensions (the planar engine) or 3 to 8
    (the vertex engine; up to 12 when asked for). The exact engine (every decision in rational
    arithmetic) otherwise."""
    from ..domain import Slice
    from .tasks import passing_layers

    if engine not in ("auto", "exact", "vertex", "planar"):
        raise OptionError(f"certify=True runs the exact engine (every decision in rational "
                          f"arithmetic) or the planar or vertex engine with a certified float "
                          f"filter; engine={engine!r} cannot certify its decisions")
    if lp is not None:
        raise OptionError("certify=True solves its LPs in exact arithmetic; do not give an lp "
                          "backend")
    if isinstance(domain, Slice):
        raise OptionError("certify=True needs a box or polytope of the input space: a slice "
                          "is folded into the first layer in floating point, which is not "
                          "the network as stored")
    layers = network.layers
    cutting = layers[:len(layers) - passing_layers(layers)]
    d = domain.dim
    switch_only = certificate is None and all(layer.is_switch for layer in cutting)
    if engine in ("vertex", "planar"):
        top = 12 if engine == "vertex" else 2
        if not (switch_only and 2 <= d <= top):
            raise OptionError(f"certify=True with engine={engine!r} needs ReLU-type layers (a "
                              f"linear output layer may follow), a domain of 2"
                              f"{' to 12' if top == 12 else ''} dimensions and no certificate; "
                              "engine='auto' takes the exact engine otherwise")
        return engine
    if engine == "auto" and switch_only and 2 <= d <= CERTIFIED_VERTEX_MAX_DIM:
        return "planar" if d == 2 else "vertex"
    return "exact"


def _refuse_undecided(slivers) -> None:
    """The certified mode reports an exact count or none: cells it could not settle (the
    exact placement of their parent met a hyperplane through the engine's interior point) make
    the run raise, naming them.

    Raises
    ------
    PowercellsError
    """
    shown = "; ".join(f"layer {layer}, near {np.array2string(np.asarray(point), precision=6)}"
                      for layer, point in list(zip(slivers.layer, slivers.interior_point))[:5])
    raise PowercellsError(f"certify=True could not settle {len(slivers)} cell(s) ({shown}); no "
                          "count is reported: engine='exact' decides every cell in rational "
                          "arithmetic")


#: Highest dimension for which ``certify=True`` under ``engine="auto"`` takes the vertex engine
#: with its certified filter (a box has 2^d vertices; the exact engine above it).
CERTIFIED_VERTEX_MAX_DIM = 8


def _check_tiling(counts, slivers, tol: Tolerances) -> None:
    """A layer's cells tile its parents, the previous layer's regions, so a finished run finds
    a region or a sliver at every layer that has parents; none means the arithmetic failed,
    and no count is printed.

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
                f"tile the domain: every cell was set aside below the region tolerance "
                f"{tol.region:.3g} and none could be settled (the arithmetic failed); no count "
                "is reported")


def subdivide(network, domain, *, engine: str = "auto", engine_options=None, lp=None,
              tol: float | None = None, tolerances: Tolerances | None = None,
              max_regions: int | None = None, time_limit: float | None = None,
              progress: bool = False, executor=None, certify: bool = False) -> SubdivisionTree:
    """Enumerate every region of every layer of ``network`` over ``domain``, exactly.

    Parameters
    ----------
    network : Network
    domain : Domain or (lo, hi) or (A, b)
        A :class:`Box`, :class:`Polytope` or :class:`Slice`.
    engine : {"auto", "lp", "interval", "planar", "vertex"}
        ``auto`` picks ``interval`` for 1-D domains, ``planar`` for 2-D domains and plane
        slices, ``vertex`` for 3 to 8 dimensions (9 with numba; all three exact and LP-free;
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
        Print a live progress line on stderr (regions, tasks done and queued, regions per
        second, elapsed time).
    executor : None, "serial", "processes", int, dask.distributed.Client, str or Executor
        Where the run's subtree tasks go (:func:`~powercells.enumerate.executors.as_executor`):
        by default one worker per available CPU, this process among them (with a worker
        process for each other CPU), started only once the run has lasted
        :data:`~powercells.enumerate.executors.START_AFTER` seconds in this process and
        still has about :data:`~powercells.enumerate.executors.MIN_POOL_WORK` seconds of
        work (estimated); ``"serial"``, ``0`` or ``1`` keep it in this process; an int ``n``
        asks for ``n`` workers (this process and ``n - 1`` worker processes); a Dask client or
        scheduler address sends tasks to that cluster. Results are
        identical for every executor (same nodes, same order, same ids).
    certify : bool
        Every decision in exact rational arithmetic (see :func:`count_regions`); interior
        points are exact witnesses rounded to float64, and ``inradius`` is the radius of the
        largest ball about each (a lower bound).

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
               "time_limit": time_limit, "progress": progress, "executor": executor,
               "certify": certify}
    sink = TreeSink()
    net, domain, widths, slivers, partial, seconds, stats, resolved, name = _run(
        network, domain, engine=engine, sink=sink, mode="tree", **options)
    rerun = _rerun_options(options, seconds)
    if not certify and _imprecise(name, stats, engine,
                                  rerun=rerun is not None and not partial):
        sink = TreeSink()
        net, domain, widths, slivers, partial, more, stats, resolved, name = _run(
            network, domain, engine="lp", sink=sink, mode="tree", **rerun)
        seconds += more
    return SubdivisionTree(net, domain, sink.levels(widths, domain.dim), slivers, partial=partial,
                           seconds=seconds, engine=name, stats=stats, tolerances=resolved,
                           source_network=network)


def count_regions(network, domain, *, engine: str = "auto", engine_options=None, lp=None,
                  tol: float | None = None, tolerances: Tolerances | None = None,
                  max_regions: int | None = None, time_limit: float | None = None,
                  progress: bool = False, executor=None, store=None,
                  store_leaves: bool = True, certify: bool = False,
                  certificate=None, certify_leaves: bool = False) -> RegionCount:
    """Count the regions of every layer without keeping the tree (memory independent of the
    count). Parameters as for :func:`subdivide`.

    Parameters
    ----------
    store : str or path, optional
        A folder that keeps the run (:mod:`powercells.io.store`): every finished task's leaves
        (code path, interior point, inradius) and counts as a Parquet part. Rerunning on the
        same folder resumes where the last run stopped (budget, interrupt, crash); on a
        finished store the totals are read back without enumerating. A folder made for another
        network, domain or options is refused. Needs pyarrow.
    store_leaves : bool
        Write each part's leaves (about 60 bytes a region for ACAS Xu, compressed); False keeps
        only the counts, for runs of billions of regions.
    certify : bool
        The certified mode: every decision in exact rational arithmetic (the ``exact``
        engine, :mod:`powercells.enumerate.exact_engine`), for the network as given (its
        floats taken as the binary rationals they are) over a box or polytope; nothing is
        undecided and no tolerance decides anything. Much slower than the float engines.
    certificate : str or path, optional
        With ``certify=True``: write a certificate of the count to this file
        (:mod:`powercells.certificate`; ``powercells check-certificate`` verifies it). The run
        then stays in this process.
    certify_leaves : bool
        Certify every leaf by its interior point (a float64 forward pass with a rigorous error
        bound, exact arithmetic where it cannot decide; one forward pass per leaf): the result's
        ``certified`` is then a proven lower bound of the exact count, whatever the engine
        (:class:`~powercells.enumerate.sinks.CertifyingSink`). Boxes and polytopes only.

    Returns
    -------
    RegionCount
    """
    options = dict(engine=engine, engine_options=engine_options, lp=lp, tol=tol,
                   tolerances=tolerances, max_regions=max_regions, time_limit=time_limit,
                   progress=progress, executor=executor)
    if certify or certificate is not None:
        options.update(certify=certify)
    if certify_leaves not in (True, False):
        raise OptionError(f"certify_leaves must be True or False, got {certify_leaves!r}")
    if certify_leaves:
        from ..domain import Slice

        if store is not None or certificate is not None:
            raise OptionError("certify_leaves counts in this process without a store or a "
                              "certificate")
        net_domain = as_domain(domain, dim=getattr(network, "input_dim", None))
        if isinstance(net_domain, Slice):
            raise OptionError("certify_leaves needs a box or polytope of the input space: a "
                              "slice's points are rounded off its plane")
        return _counted(CertifyingSink(network, net_domain), network, domain, **options)
    if store is not None:
        if certificate is not None:
            raise OptionError("a certificate is written by a run without a store")
        from ..io.store import count_with_store

        return count_with_store(network, domain, store, leaves=store_leaves, **options)
    if certificate is None:
        return _counted(CountSink(), network, domain, **options)
    from ..certificate import CertificateWriter

    writer = CertificateWriter(certificate)
    try:
        result = _counted(CountSink(), network, domain, certificate=writer, **options)
        writer.finish(result)
    finally:
        writer.abort()
    return result


def stream_leaves(network, domain, emit, *, engine: str = "auto", engine_options=None,
                  lp=None, tol: float | None = None, tolerances: Tolerances | None = None,
                  max_regions: int | None = None, time_limit: float | None = None,
                  progress: bool = False, executor=None) -> RegionCount:
    """Enumerate like :func:`subdivide`, handing the leaves to ``emit`` group by group instead of
    keeping the tree: memory is bounded by one group of subtrees, whatever the region count.

    Parameters
    ----------
    emit : callable
        Called with a :class:`~powercells.enumerate.sinks.LeafChunk` for every finished task,
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
                    progress=progress, executor=executor)


def _rerun_options(options: dict, seconds: float):
    """The options of a rerun with the lp engine: the time limit is what the first run left
    (None when nothing is left: the first result stands, with its warning)."""
    limit = options.get("time_limit")
    if limit is None:
        return options
    left = float(limit) - seconds
    return {**options, "time_limit": left} if left > 0 else None


def _counted(sink, network, domain, store=None, store_leaves=True, **options) -> RegionCount:
    """Run with a sink that keeps per-depth ``counts``; return them as a RegionCount."""
    mode = ("leaves" if isinstance(sink, LeafSink) or (store is not None and store_leaves)
            else "count")
    _, _, _, slivers, partial, seconds, stats, _, name = _run(network, domain, sink=sink,
                                                              mode=mode, store=store,
                                                              **options)
    # a count can be redone; leaves already handed to the caller cannot
    rerun = _rerun_options(options, seconds)
    restartable = isinstance(sink, CountSink) or getattr(sink, "restartable", False)
    # the certified mode's filter redoes exactly whatever fragile vertices touched
    if not options.get("certify") and _imprecise(
            name, stats, options["engine"],
            rerun=restartable and store is None and rerun is not None and not partial):
        sink = sink.fresh() if hasattr(sink, "fresh") else CountSink()
        _, _, _, slivers, partial, more, stats, _, name = _run(
            network, domain, sink=sink, mode="leaves" if isinstance(sink, LeafSink) else "count",
            **{**rerun, "engine": "lp"})
        seconds += more
    counts = sink.counts
    return RegionCount(regions=counts[-1], per_layer=counts, thin=list(sink.thin),
                       undecided=slivers.per_layer(len(counts)), partial=partial,
                       seconds=seconds, engine=name, stats=stats,
                       certified=sink.certified if isinstance(sink, CertifyingSink) else None)
