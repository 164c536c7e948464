"""Runs cut into subtree tasks (DESIGN §4, §7): the same tree, counts and store for every
executor; stores that resume after a budget, a SIGKILL or a lost worker; stores that refuse
another run.

Every test cuts its run into many small tasks: ``DEFAULT_CAP`` is lowered, and so are the batch
sizes of the vertex and planar engines (else a run this small is one batch per depth, hence one
chain of 2-3 tasks). Worker processes start fresh (spawn), so the batch sizes reach them through
a ``sitecustomize`` module on ``PYTHONPATH``; that they did is checked: every executor must cut
the run into the same tasks.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from networks import random_network

import powercells as pc
import powercells.enumerate.tasks as tasks_module
import powercells.enumerate.vertex.engine as vertex_engine
from powercells.cli import EXIT_ERROR, main
from powercells.enumerate import planar_engine
from powercells.enumerate.executors import DaskExecutor, ProcessExecutor, as_executor
from powercells.enumerate.schedule import TaskRef
from powercells.errors import OptionError
from powercells.io.store import read_store, store_summary

#: New nodes per task in these tests (a run of ~1000 nodes makes 10-25 tasks).
CAP = 50

#: ``_VALUES_BUDGET`` of the vertex and planar engines here: their batches hold 16 (vertex) and
#: 64 (planar) cells, the engines' minimum.
BATCH_BUDGET = 1

#: ``PRECUT_ABOVE`` and ``PRECUT_PIECES`` of the vertex engine here: a 3-D root is cut into
#: up to 64 pieces by the first 7 units of layer 1 (``VertexEngine.precut``), split one at a
#: time and handed on as tasks of pieces like any other.
PRECUT = (10, 64)

SITECUSTOMIZE = f"""\
import powercells.enumerate.planar_engine as _planar
import powercells.enumerate.vertex.engine as _vertex
_planar._VALUES_BUDGET = {BATCH_BUDGET}
_vertex._VALUES_BUDGET = {BATCH_BUDGET}
_vertex.PRECUT_ABOVE, _vertex.PRECUT_PIECES = {PRECUT}
"""

#: (engine, input dimension, widths, region tolerance): small runs with thin regions at every layer.
RUNS = {
    "vertex": ("vertex", 3, [12, 12, 12], 1e-3),
    "lp": ("lp", 3, [10, 10, 10], 1e-3),
    "planar": ("planar", 2, [25, 25, 25], 1e-3),
}


@pytest.fixture
def cut(monkeypatch, tmp_path_factory):
    """Small tasks and small batches, here and in every process started meanwhile."""
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(site) + (os.pathsep + path if path else ""))
    monkeypatch.setattr(tasks_module, "DEFAULT_CAP", CAP)
    monkeypatch.setattr(vertex_engine, "_VALUES_BUDGET", BATCH_BUDGET)
    monkeypatch.setattr(planar_engine, "_VALUES_BUDGET", BATCH_BUDGET)
    monkeypatch.setattr(vertex_engine, "PRECUT_ABOVE", PRECUT[0])
    monkeypatch.setattr(vertex_engine, "PRECUT_PIECES", PRECUT[1])


class Pool(ProcessExecutor):
    """The real process pool, started at once; the coordinator waits for its workers instead
    of running tasks itself meanwhile, so every task goes through the pool."""

    def __init__(self, workers: int = 2, local: bool = False):
        super().__init__(workers, local=local, start_after=0)
        self.submitted = 0
        self.filed = 0          # subtasks the workers filed in the store themselves

    def start(self, ctx) -> None:
        self.spool = ctx.spool
        super().start(ctx)

    def ready(self) -> bool:
        cf.wait(self._warming)
        return super().ready()

    def outcome(self, handle):
        part = super().outcome(handle)
        self.filed += sum(isinstance(sub, TaskRef) for sub in part.subtasks)
        return part

    def submit(self, task, known, *, limit, max_regions):
        self.submitted += 1
        return super().submit(task, known, limit=limit, max_regions=max_regions)


class KillOnce(Pool):
    """A pool whose worker is SIGKILLed right after the ``after``-th task was submitted (while
    tasks are in flight)."""

    def __init__(self, after: int, local: bool = False):
        super().__init__(3 if local else 2, local=local)
        self.after = after
        self.killed = None
        self.restarts = 0

    def submit(self, task, known, *, limit, max_regions):
        handle = super().submit(task, known, limit=limit, max_regions=max_regions)
        if self.killed is None and self.submitted == self.after:
            self.killed = next(iter(self._pool._processes))
            os.kill(self.killed, signal.SIGKILL)
        return handle

    def _restart(self):
        self.restarts += 1
        super()._restart()


def setup_of(name):
    engine, d, widths, tol = RUNS[name]
    return random_network(d, widths, seed=0), pc.Box(-1, 1, dim=d), {"engine": engine, "tol": tol}


def assert_same_tree(a, b, same_tasks=True):
    assert not a.partial and not b.partial
    assert a.per_layer == b.per_layer
    assert a.slivers.per_layer(a.depth) == b.slivers.per_layer(b.depth)
    if same_tasks:
        assert a.stats["tasks"] == b.stats["tasks"]     # the same cut into tasks
    assert len(a.levels) == len(b.levels)
    for la, lb in zip(a.levels, b.levels):
        np.testing.assert_array_equal(la.code, lb.code)
        np.testing.assert_array_equal(la.parent, lb.parent)
        np.testing.assert_array_equal(la.interior_point, lb.interior_point)
        np.testing.assert_array_equal(la.inradius, lb.inradius)
        np.testing.assert_array_equal(la.thin, lb.thin)
        if la.polygons is not None or lb.polygons is not None:
            np.testing.assert_array_equal(la.polygons.xy, lb.polygons.xy)
    sa, sb = a.slivers, b.slivers
    assert sa.layer == sb.layer and sa.parent == sb.parent
    np.testing.assert_array_equal(np.array(sa.code), np.array(sb.code))
    np.testing.assert_array_equal(np.array(sa.interior_point), np.array(sb.interior_point))


def table(directory):
    return read_store(directory).to_table().select(["code", "interior_point", "inradius"])


def part_names(directory):
    return sorted(p.name for p in (directory / "parts").glob("*.parquet"))


def snapshot(directory):
    """Every file of a folder with its bytes and modification time."""
    out = {}
    for root, _, files in os.walk(directory):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, directory)] = (fh.read(), os.stat(p).st_mtime_ns)
    return out


# ---------------------------------------------------------------------- one tree, any executor

@pytest.mark.parametrize("backend", ["highs", "dense"])
def test_lp_backend_objects_travel_to_the_workers(cut, backend):
    """``lp=`` given as a backend object (holding solver objects that do not pickle) reaches
    the pool's workers as a fresh backend of the same kind."""
    if backend == "dense":
        pytest.importorskip("numba")
    from powercells.lp import get_backend

    network, box, opts = setup_of("lp")
    serial = pc.subdivide(network, box, executor="serial", lp=backend, **opts)
    pooled = pc.subdivide(network, box, executor=Pool(2), lp=get_backend(backend), **opts)
    assert_same_tree(serial, pooled)


@pytest.mark.parametrize("name", list(RUNS))
def test_pool_gives_the_serial_tree(cut, name):
    network, box, opts = setup_of(name)
    serial = pc.subdivide(network, box, executor="serial", **opts)
    # thin regions (settled exactly) at every layer: mixed batches travel to the workers too
    assert serial.stats["tasks"] >= 10
    assert serial.levels[-1].thin.any()
    assert serial.stats["executor"] == "serial" and serial.stats["workers"] == 0
    pool = Pool(2)
    pooled = pc.subdivide(network, box, executor=pool, **opts)
    assert pool.submitted == pooled.stats["tasks"]      # every task ran in a worker
    # no store: the workers pass subtasks on by key through a temporary spool, removed at the end
    assert pool.filed > 0 and pool.spool.owned and not pool.spool.directory.exists()
    assert pooled.stats["workers"] == 2 and pooled.stats["executor"] == "processes"
    assert_same_tree(serial, pooled)
    # leaves streamed through a pool: in tree order, chunk after chunk
    chunks = []
    result = pc.stream_leaves(network, box, chunks.append, executor=Pool(2), **opts)
    assert result.per_layer == serial.per_layer and len(chunks) >= 2
    assert [c.first for c in chunks] == list(np.cumsum([0] + [len(c) for c in chunks[:-1]]))
    np.testing.assert_array_equal(np.vstack([c.codes for c in chunks]), serial.leaf_codes())
    np.testing.assert_array_equal(np.vstack([c.interior_point for c in chunks]),
                                  serial.levels[-1].interior_point)


def with_linear_head(network, outputs=(3, 2), seed=1):
    """``network`` followed by linear layers of ``outputs`` units."""
    rng = np.random.default_rng(seed)
    pairs = [(layer.weight, layer.bias) for layer in network.layers]
    dims = [network.layers[-1].out_dim, *outputs]
    pairs += [(rng.normal(size=(dims[i + 1], dims[i])), rng.normal(size=dims[i + 1]))
              for i in range(len(outputs))]
    return pc.Network.from_weights(pairs, ["relu"] * network.depth + ["identity"] * len(outputs))


def test_passing_layers_are_the_trailing_one_piece_layers():
    relu = random_network(2, [3, 3], seed=0)
    assert tasks_module.passing_layers(relu.layers) == 0
    assert tasks_module.passing_layers(with_linear_head(relu).layers) == 2
    assert tasks_module.passing_layers(with_linear_head(relu, (4,)).layers) == 1
    # a linear layer between ReLU layers cuts nothing either, but the next layer splits
    middle = random_network(2, [3, 3, 3], seed=0, activations=["relu", "identity", "relu"])
    assert tasks_module.passing_layers(middle.layers) == 0
    # at least one layer is split by: a linear model's one layer
    linear = pc.Network.from_weights([(np.eye(2), np.zeros(2))], ["identity"])
    assert tasks_module.passing_layers(linear.layers) == 0
    assert pc.count_regions(linear, pc.Box(-1, 1, dim=2)).per_layer == [1]


@pytest.mark.parametrize("name", list(RUNS))
def test_trailing_linear_layers_give_the_tree_they_would_split_into(cut, name, monkeypatch):
    """A count, a tree and leaves of a network ending in linear layers are the same as when
    the engine splits by these layers (their nodes: the last ReLU layer's cells, code 0),
    thin regions included, in this process and through a pool."""
    from powercells.enumerate.thin import ThinSplitter

    kinds = []                                  # the layers the engine split by, by kind
    split_by = ThinSplitter.split
    monkeypatch.setattr(ThinSplitter, "split",
                        lambda self, batch, layer: kinds.append(layer.kind)
                        or split_by(self, batch, layer))
    network, box, opts = setup_of(name)
    network = with_linear_head(network)
    fast = pc.subdivide(network, box, executor="serial", **opts)
    assert "relu" in kinds and "identity" not in kinds
    pooled = pc.subdivide(network, box, executor=Pool(2), **opts)
    counted = pc.count_regions(network, box, executor="serial", **opts)
    leaves = []
    pc.stream_leaves(network, box, leaves.append, executor="serial", **opts)
    import powercells.enumerate.driver as driver

    monkeypatch.setattr(driver, "passing_layers", lambda layers: 0)
    split = pc.subdivide(network, box, executor="serial", **opts)
    assert "identity" in kinds
    assert split.per_layer[-3] == split.per_layer[-2] == split.per_layer[-1]
    assert split.levels[-1].thin.any()
    assert_same_tree(fast, split, same_tasks=False)
    assert_same_tree(pooled, split, same_tasks=False)
    assert counted.per_layer == split.per_layer and counted.thin == split.thin
    np.testing.assert_array_equal(np.vstack([c.codes for c in leaves]), split.leaf_codes())
    np.testing.assert_array_equal(np.vstack([c.interior_point for c in leaves]),
                                  split.levels[-1].interior_point)


@pytest.mark.parametrize("engine,d", [("interval", 1), ("exact", 2), ("vertex", 3)])
def test_trailing_linear_layers_in_every_engine(engine, d, monkeypatch):
    """The counts and leaves of the engines not in RUNS, with and without splitting by the
    linear layers, in one process."""
    network = with_linear_head(random_network(d, [6, 5], seed=3), (2, 3))
    box = pc.Box(-1, 1, dim=d)
    fast = pc.subdivide(network, box, engine=engine, executor="serial")
    import powercells.enumerate.driver as driver

    monkeypatch.setattr(driver, "passing_layers", lambda layers: 0)
    split = pc.subdivide(network, box, engine=engine, executor="serial")
    assert fast.per_layer[-1] == fast.per_layer[-3] > 1
    assert_same_tree(fast, split, same_tasks=False)
    np.testing.assert_array_equal(fast.leaf_codes(), split.leaf_codes())


def test_a_precut_root_gives_the_tree_of_its_whole_split(cut, monkeypatch):
    """The vertex engine's root cut into pieces by the first units of layer 1, the pieces
    handed on as tasks (here and through a pool), makes the tree a whole split makes: the same
    nodes in the same order, thin regions and slivers included."""
    network, box, opts = setup_of("vertex")
    handed = []
    hand_on = tasks_module._hand_on

    def spy(*args):
        subtasks = hand_on(*args)
        handed.extend(t for t in subtasks if t.pieces)
        return subtasks

    monkeypatch.setattr(tasks_module, "_hand_on", spy)
    serial = pc.subdivide(network, box, executor="serial", **opts)
    assert serial.stats["precuts"] == 1 and handed      # pieces went on as tasks
    pooled = pc.subdivide(network, box, executor=Pool(2), **opts)
    assert_same_tree(serial, pooled)
    chunks = []
    pc.stream_leaves(network, box, chunks.append, executor=Pool(2), **opts)
    monkeypatch.setattr(vertex_engine, "PRECUT_ABOVE", 10**9)
    whole = pc.subdivide(network, box, executor="serial", **opts)
    assert whole.stats["precuts"] == 0
    assert serial.per_layer == whole.per_layer and serial.thin == whole.thin
    assert serial.levels[-1].thin.any()
    assert serial.slivers.per_layer(3) == whole.slivers.per_layer(3)
    for a, b in zip(serial.levels, whole.levels):
        np.testing.assert_array_equal(a.code, b.code)
        np.testing.assert_array_equal(a.parent, b.parent)
        np.testing.assert_array_equal(a.thin, b.thin)
        np.testing.assert_allclose(a.inradius, b.inradius, rtol=1e-9, atol=1e-12)
    # every interior point lies in its node's cell: the forward pass gives its code path
    paths = serial.leaf_codes()
    np.testing.assert_array_equal(np.vstack([c.codes for c in chunks]), paths)
    forward = np.hstack(network.codes(serial.levels[-1].interior_point))
    np.testing.assert_array_equal(forward, paths)


def test_precut_needs_a_wide_switch_layer():
    from powercells.enumerate.vertex.engine import arrangement_bound, precut_units

    assert arrangement_bound(50, 5) == 2_369_936 and arrangement_bound(3, 5) == 8
    wide = random_network(5, [50], seed=0).layers[0]
    assert precut_units(wide, 5) == 11                  # 1,024 pieces at most
    assert precut_units(random_network(4, [16], seed=0).layers[0], 4) is None
    maxout = random_network(5, [50], seed=0, activations=["maxout:2"]).layers[0]
    assert precut_units(maxout, 5) is None


def test_a_root_whose_first_units_leave_a_sliver_is_split_whole(cut):
    """Units 0 and 1 of layer 1 nearly coincide: the pieces of the first units include a
    sliver, and the root is split whole (its thin regions settled exactly as always)."""
    rng = np.random.default_rng(5)
    W1, b1 = rng.normal(size=(12, 3)), rng.normal(size=12) * 0.3
    W1[1], b1[1] = W1[0] + 1e-13, b1[0]
    network = pc.Network.from_weights([(W1, b1), (rng.normal(size=(8, 12)), rng.normal(size=8))],
                                      ["relu", "relu"])
    box = pc.Box(-1, 1, dim=3)
    cut_tried = pc.subdivide(network, box, engine="vertex", executor="serial")
    assert cut_tried.stats["precuts"] == 0
    exact = pc.count_regions(network, box, engine="exact")
    assert cut_tried.per_layer == exact.per_layer


def test_subtasks_are_bounded_by_the_bytes_of_their_maps(cut, monkeypatch):
    """A subtask holds at most ``SUBTASK_BYTES`` of affine maps: wide layers' batches are cut
    into smaller subtasks (a 2-D net of width 512: 341 nodes, not 2,048); the tree is the same
    tree, in the same order."""
    network, box, opts = setup_of("planar")
    whole = pc.subdivide(network, box, executor="serial", **opts)
    sizes = []
    hand_on = tasks_module._hand_on

    def recorded(*args):
        subtasks = hand_on(*args)
        sizes.extend((t.depth, t.size) for t in subtasks)
        return subtasks

    monkeypatch.setattr(tasks_module, "_hand_on", recorded)
    monkeypatch.setattr(tasks_module, "SUBTASK_BYTES", 8 * 25 * 3 * 5)   # 5 nodes of width 25
    small = pc.subdivide(network, box, executor="serial", **opts)
    assert sizes and max(size for depth, size in sizes if depth > 0) <= 5
    assert small.stats["tasks"] > whole.stats["tasks"]
    assert small.per_layer == whole.per_layer
    for a, b in zip(whole.levels, small.levels):
        np.testing.assert_array_equal(a.code, b.code)
        np.testing.assert_array_equal(a.parent, b.parent)
    wide = random_network(2, [512, 512], seed=0)
    ctx = tasks_module.RunContext(engine=None, setup=None, layers=list(wide.layers), exp=0,
                                  widths=[512, 512], dim=2, mode="count")
    monkeypatch.setattr(tasks_module, "SUBTASK_BYTES", 4 << 20)
    assert tasks_module.subtask_nodes(ctx, 1) == (4 << 20) // (8 * 512 * 3) == 341
    assert tasks_module.subtask_nodes(ctx, 0) == tasks_module.SUBTASK_NODES


def test_work_left_is_priced_by_the_branching_so_far():
    """``seconds_left``: 1 root split into 10 nodes, 6 of them split into 100 leaves in 1.1 s
    (0.01 s a node); the 4 waiting nodes of depth 1 will make 100/6 leaves each."""
    from powercells.enumerate.schedule import TaskRef, seconds_left

    heap = [((1,), 0, TaskRef((1,), 1, 3)), ((2,), 1, TaskRef((2,), 1, 1))]
    assert seconds_left(heap, [10, 100], [10, 100], 1.1) == pytest.approx(4 * 100 / 6 * 0.01)
    # a deeper waiting node is priced by the same rates: each root child makes 100/6 leaves
    heap.append(((0,), 2, TaskRef((0,), 0, 1)))
    assert seconds_left(heap, [10, 100], [10, 100], 1.1, roots=2) == \
        pytest.approx((4 * 100 / 6 + 10 * (1 + 100 / 6)) * 0.01)
    # nothing made yet, or a depth with no node split: nothing to go on
    assert seconds_left(heap, [10, 100], [0, 0], 1.1) == np.inf
    assert seconds_left([((1,), 0, TaskRef((1,), 1, 10))], [10, 100], [10, 100], 1.1) == np.inf
    # a resumed store's task (size unknown), pieces of a root whose cut is unknown: the same
    for entry in (TaskRef((3,), None, None), TaskRef((3,), 0, 16, pieces=True)):
        assert seconds_left(heap + [((3,), 3, entry)], [10, 100], [10, 100], 1.1) == np.inf


def test_the_pieces_of_a_cut_root_are_priced_by_the_pieces_split():
    """A root cut into 40 pieces: 8 split into 10 nodes of depth 1 (6 of those split into 100
    leaves); the 32 pieces waiting make 10/8 nodes of depth 1 each, and each of those 100/6
    leaves, at 0.01 s a node made."""
    from powercells.enumerate.schedule import TaskRef, seconds_left

    heap = [((1,), 0, TaskRef((1,), 1, 4)), ((2,), 1, TaskRef((2,), 0, 32, pieces=True))]
    got = seconds_left(heap, [10, 100], [10, 100], 1.1, pieces=40)
    assert got == pytest.approx((4 * 100 / 6 + 32 * 10 / 8 * (1 + 100 / 6)) * 0.01)


def test_the_root_pieces_reach_the_statistics(cut, monkeypatch):
    """A run whose root is cut into pieces reports how many (what prices the pieces waiting)."""
    from powercells.enumerate.vertex import engine as vertex_engine

    monkeypatch.setattr(vertex_engine, "PRECUT_ABOVE", 4)
    network = random_network(3, [12, 6], seed=2)
    got = pc.count_regions(network, pc.Box(-1, 1, dim=3), engine="vertex", executor="serial")
    assert got.stats["precuts"] == 1 and got.stats["root_pieces"] >= 2


@pytest.mark.parametrize("left, started", [(0.5, False), (10.0, True)])
def test_the_pool_starts_only_when_enough_work_is_left(cut, monkeypatch, left, started):
    """A run whose work left is estimated below ``min_work`` stays in this process; one above
    it starts the pool. The counts are the same either way."""
    import powercells.enumerate.schedule as schedule

    network, box, opts = setup_of("vertex")
    serial = pc.count_regions(network, box, executor="serial", **opts)
    monkeypatch.setattr(schedule, "seconds_left", lambda *args, **kw: left)
    pool = ProcessExecutor(2, start_after=0, min_work=3.0)
    got = pc.count_regions(network, box, executor=pool, **opts)
    assert got.per_layer == serial.per_layer
    assert got.stats["workers"] == (2 if started else 0)


class CountedHere:
    """Counts the tasks each thread of this process runs (the schedule's run_task)."""

    def __init__(self, monkeypatch):
        import threading

        import powercells.enumerate.schedule as schedule

        self.threads = {}
        run = schedule.run_task

        def counted(*args, **kw):
            name = threading.current_thread().name
            self.threads[name] = self.threads.get(name, 0) + 1
            return run(*args, **kw)

        monkeypatch.setattr(schedule, "run_task", counted)


@pytest.mark.parametrize("name", ["vertex", "lp"])
def test_this_process_is_one_of_the_pools_workers(cut, monkeypatch, name):
    """``executor=2`` (and the default): this process and one worker process. Once the worker
    is up, a thread of this process runs tasks beside it; the tree is the serial one."""
    network, box, opts = setup_of(name)
    serial = pc.subdivide(network, box, executor="serial", **opts)
    default = as_executor(2)
    assert isinstance(default, ProcessExecutor) and default.local
    assert (default.workers, default.processes) == (2, 1)
    here = CountedHere(monkeypatch)
    pool = ProcessExecutor(2, local=True, start_after=0, min_work=0)
    warming = pool.ready
    pool.ready = lambda: cf.wait(pool._warming) and warming()     # no run done before it is up
    pooled = pc.subdivide(network, box, executor=pool, **opts)
    assert_same_tree(serial, pooled)
    assert pooled.stats["workers"] == 2
    ran_here = sum(n for t, n in here.threads.items() if t.startswith("powercells-here"))
    assert ran_here >= 1                                    # this process worked beside it
    assert sum(here.threads.values()) < pooled.stats["tasks"]   # ... and so did the worker


def test_an_interrupt_stops_this_processs_thread_and_the_workers(cut, monkeypatch):
    """Ctrl-C while this process's own thread and a worker run tasks: the interrupt propagates
    at once, the thread's task stops (the budget's stop flag: here it would otherwise wait a
    minute), the worker process is killed, and the temporary spool and the run-context file
    are removed."""
    import glob
    import tempfile
    import threading

    import powercells.enumerate.schedule as schedule

    run = schedule.run_task

    def slow_here(ctx, engine, task, budget, known):
        if threading.current_thread().name.startswith("powercells-here"):
            deadline = time.monotonic() + 60
            while not budget.stop[0] and time.monotonic() < deadline:
                time.sleep(0.01)
        return run(ctx, engine, task, budget, known)

    monkeypatch.setattr(schedule, "run_task", slow_here)

    class Interrupted(ProcessExecutor):
        waits = 0

        def start(self, ctx):
            self.spool = ctx.spool
            super().start(ctx)

        def ready(self):
            cf.wait(self._warming)
            return super().ready()

        def wait(self, handles, timeout):
            self.waits += 1
            if self.waits == 3:
                self.processes_seen = list(self._pool._processes.values())
                raise KeyboardInterrupt
            return super().wait(handles, timeout)

    contexts = set(glob.glob(os.path.join(tempfile.gettempdir(), "powercells-run-*.pickle")))
    network, box, opts = setup_of("vertex")
    pool = Interrupted(2, local=True, start_after=0, min_work=0)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        pc.count_regions(network, box, executor=pool, **opts)
    assert time.monotonic() - start < 30          # hang guard: the thread's task was stopped
    assert not any(t.name.startswith("powercells-here") for t in threading.enumerate())
    assert pool.processes_seen and not any(p.is_alive() for p in pool.processes_seen)
    assert not pool.spool.directory.exists()
    assert set(glob.glob(os.path.join(tempfile.gettempdir(),
                                      "powercells-run-*.pickle"))) <= contexts


def test_a_pool_whose_coordinator_works_needs_two_workers():
    with pytest.raises(OptionError, match="2 or more workers"):
        ProcessExecutor(1, local=True)


def test_a_run_with_threads_keeps_blas_on_one_thread(monkeypatch):
    """BLAS threads spin on the CPUs the kernel threads need: once a run starts threads of its
    own, BLAS runs on one thread until the run ends, and gets its setting back then (also
    after nested and failed runs); a run without threads, and code outside runs, change
    nothing."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        """Threads of every BLAS library loaded (numpy's, and any other a test loaded)."""
        return {d["filepath"]: d["num_threads"] for d in threadpoolctl.threadpool_info()
                if d["user_api"] == "blas"}

    if not blas_threads():
        pytest.skip("numpy's BLAS is not one threadpoolctl controls")
    # two BLAS threads to begin with, whatever this machine's default (so a hold shows)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        _check_blas_holds(monkeypatch, blas_threads)


def _check_blas_holds(monkeypatch, blas_threads):
    import powercells.enumerate.schedule as schedule
    from powercells.enumerate.kernels import blas_run, hold_blas, worker_pool

    before = blas_threads()
    assert 2 in before.values()
    one = dict.fromkeys(before, 1)
    network, box = random_network(3, [8, 8], seed=1), pc.Box(-1, 1, dim=3)
    seen = []
    run = schedule.run_task

    def watched(*args, threads=1, **kw):
        seen.append(blas_threads())
        worker_pool(threads)            # what a compiled splitter asks for its threads
        seen.append(blas_threads())
        return run(*args, **kw)

    monkeypatch.setattr(schedule, "run_task", watched)
    pc.count_regions(network, box, executor="serial")
    assert seen and all(s == before for s in seen)          # no threads: untouched
    seen.clear()
    monkeypatch.setattr(schedule, "run_task", lambda *a, **k: watched(*a, threads=2, **k))
    pc.count_regions(network, box, executor="serial")
    assert seen[0] == before and all(s == one for s in seen[1:])
    assert blas_threads() == before
    hold_blas()                                             # outside a run: nothing
    assert blas_threads() == before
    with blas_run():
        with blas_run():
            hold_blas()
            assert blas_threads() == one
        assert blas_threads() == one            # the outer run still holds it
    assert blas_threads() == before
    with pytest.raises(ZeroDivisionError), blas_run():
        hold_blas()
        1 / 0
    assert blas_threads() == before


def test_pool_started_beside_the_coordinator_gives_the_serial_tree(cut):
    # the plain executor: the coordinator runs tasks itself until the workers are up
    network, box, opts = setup_of("lp")
    serial = pc.subdivide(network, box, executor="serial", **opts)
    assert_same_tree(serial, pc.subdivide(network, box, executor=ProcessExecutor(2, start_after=0),
                                          **opts))


def test_dask_gives_the_serial_tree(cut):
    pytest.importorskip("distributed")

    class Counted(DaskExecutor):
        submitted = by_key = 0

        def submit(self, task, *args, **kwargs):
            self.submitted += 1
            self.by_key += isinstance(task, TaskRef)
            return super().submit(task, *args, **kwargs)

    network, box, opts = setup_of("vertex")
    serial = pc.subdivide(network, box, executor="serial", **opts)
    dask = Counted(local=2, start_after=0)
    tree = pc.subdivide(network, box, executor=dask, **opts)
    assert tree.stats["executor"] == "dask" and tree.stats["workers"] == 2
    assert dask.submitted == tree.stats["tasks"]       # start() waits for the cluster
    # a LocalCluster is on this machine: its workers pass the tasks on through the spool
    assert dask.shares_disk and dask.by_key >= dask.submitted - 1
    assert dask.client is None                          # its own cluster is closed
    assert_same_tree(serial, tree)


def test_a_callers_dask_client_runs_the_tasks_and_stays_open(cut):
    distributed = pytest.importorskip("distributed")
    network, box, opts = setup_of("vertex")
    serial = pc.count_regions(network, box, executor="serial", **opts)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        given = pc.count_regions(network, box, executor=DaskExecutor(client, start_after=0),
                                 **opts)
        assert given.stats["executor"] == "dask" and given.stats["workers"] == 2
        assert client.status == "running"               # the caller's client is not closed
    assert (given.per_layer, given.thin, given.undecided) == (serial.per_layer, serial.thin,
                                                                 serial.undecided)


# ---------------------------------------------------------------------- stores

def test_store_is_the_same_for_every_executor(cut, tmp_path, monkeypatch):
    network, box, opts = setup_of("vertex")
    a = pc.count_regions(network, box, executor="serial", store=tmp_path / "a", **opts)
    pool = Pool(2)
    b = pc.count_regions(network, box, executor=pool, store=tmp_path / "b", **opts)
    assert pool.submitted == b.stats["tasks"] >= 10
    # the workers filed their subtasks in the store (the coordinator got keys, not batches)
    assert pool.filed > 0
    assert (a.per_layer, a.thin, a.undecided, a.partial) == (b.per_layer, b.thin,
                                                                  b.undecided, False)
    for d in (tmp_path / "a", tmp_path / "b"):
        summary = store_summary(d)
        assert summary["complete"] and summary["regions"] == a.regions
        assert summary["per_layer"] == a.per_layer
        assert not list((d / "tasks").glob("*"))       # nothing left waiting
    # ... and with this process among the workers (the default pool), the same store again
    here = CountedHere(monkeypatch)
    local = ProcessExecutor(2, local=True, start_after=0, min_work=0)
    warming = local.ready
    local.ready = lambda: cf.wait(local._warming) and warming()
    c = pc.count_regions(network, box, executor=local, store=tmp_path / "c", **opts)
    assert c.per_layer == a.per_layer and not c.partial
    assert sum(n for t, n in here.threads.items() if t.startswith("powercells-here")) >= 1
    assert not list((tmp_path / "c" / "tasks").glob("*"))
    names = part_names(tmp_path / "a")
    assert len(names) == a.stats["tasks"] and names == part_names(tmp_path / "b")
    assert names == part_names(tmp_path / "c")
    ta, tb = table(tmp_path / "a"), table(tmp_path / "b")
    assert ta.num_rows == a.regions and ta.equals(tb) and ta.equals(table(tmp_path / "c"))
    # the store's rows are the leaves, in the order stream_leaves gives them
    chunks = []
    pc.stream_leaves(network, box, chunks.append, executor="serial", **opts)
    codes = np.array(ta.column("code").to_pylist(), dtype=np.int16)
    np.testing.assert_array_equal(codes, np.vstack([c.codes for c in chunks]))
    # a complete store gives its totals again without enumerating
    again = pc.count_regions(network, box, executor="serial", store=tmp_path / "a", **opts)
    assert (again.per_layer, again.thin, again.partial) == (a.per_layer, a.thin, False)
    assert "store_seconds" in again.stats and part_names(tmp_path / "a") == names


def test_budget_leaves_a_store_that_resumes(cut, tmp_path):
    network, box, opts = setup_of("vertex")
    full = pc.count_regions(network, box, executor="serial", store=tmp_path / "full", **opts)
    store = tmp_path / "cut"
    part = pc.count_regions(network, box, executor="serial", store=store, max_regions=300,
                            **opts)
    assert part.partial and part.regions < full.regions
    assert all(p <= f for p, f in zip(part.per_layer, full.per_layer))
    assert not store_summary(store)["complete"]
    assert list((store / "tasks").glob("task-*.pickle"))        # work left, on disk
    done = part_names(store)
    assert 0 < len(done) < full.stats["tasks"]
    # a second budgeted run goes on, still partial
    more = pc.count_regions(network, box, executor="serial", store=store, max_regions=500,
                            **opts)
    assert more.partial and part.regions <= more.regions < full.regions
    assert set(done) <= set(part_names(store))
    # the rest through a pool
    pool = Pool(2)
    rest = pc.count_regions(network, box, executor=pool, store=store, **opts)
    assert not rest.partial and 0 < pool.submitted < full.stats["tasks"]
    assert (rest.regions, rest.per_layer, rest.thin) == (full.regions, full.per_layer,
                                                         full.thin)
    summary = store_summary(store)
    assert summary["complete"] and summary["per_layer"] == full.per_layer
    # a task a budget stopped handed its unsplit nodes on: the cut differs, the rows do not
    assert table(store).equals(table(tmp_path / "full"))
    assert not list((store / "tasks").glob("*"))


def test_a_store_refuses_another_run(cut, tmp_path):
    network, box, opts = setup_of("vertex")
    complete, partial = tmp_path / "complete", tmp_path / "partial"
    pc.count_regions(network, box, executor="serial", store=complete, **opts)
    pc.count_regions(network, box, executor="serial", store=partial, max_regions=300, **opts)
    other = random_network(3, [12, 12, 12], seed=1)
    cases = [
        (other, box, opts, "different network"),
        (network, box, {**opts, "tol": 2e-3}, "different tolerances"),
        (network, pc.Box(-1, 2, dim=3), opts, "different domain"),
        (network, box, {**opts, "engine": "lp"}, "different engine"),
    ]
    for store in (complete, partial):
        before = snapshot(store)
        for net, dom, kw, field in cases:
            with pytest.raises(pc.PowercellsError, match=field) as info:
                pc.count_regions(net, dom, executor="serial", store=store, **kw)
            assert str(store) in str(info.value)
            assert snapshot(store) == before
    # the store still serves its own run
    result = pc.count_regions(network, box, executor="serial", store=partial, **opts)
    assert result.per_layer == store_summary(complete)["per_layer"]
    assert table(partial).equals(table(complete))


def test_a_store_of_another_format_version_is_refused(cut, tmp_path):
    network, box, opts = setup_of("vertex")
    store = tmp_path / "store"
    pc.count_regions(network, box, executor="serial", store=store, max_regions=300, **opts)
    assert read_store(store).count_rows() > 0
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["format_version"] = manifest["format_version"] + 1     # a later powercells's
    (store / "manifest.json").write_text(json.dumps(manifest))
    before = snapshot(store)
    for reader in (lambda: pc.count_regions(network, box, executor="serial", store=store,
                                            **opts),
                   lambda: read_store(store), lambda: store_summary(store)):
        with pytest.raises(pc.PowercellsError, match="store format version 2") as info:
            reader()
        assert "reads version 1 only" in str(info.value) and str(store) in str(info.value)
    assert snapshot(store) == before


@pytest.mark.parametrize("local", [False, True], ids=["pool", "this process among them"])
def test_a_lost_worker_loses_no_region(cut, tmp_path, monkeypatch, local):
    network, box, opts = setup_of("lp")
    serial = pc.subdivide(network, box, executor="serial", **opts)
    pool = KillOnce(after=3, local=local)
    here = CountedHere(monkeypatch)
    tree = pc.subdivide(network, box, executor=pool, **opts)
    assert pool.killed is not None and pool.restarts >= 1
    ran = pool.submitted + sum(here.threads.values())
    assert ran > tree.stats["tasks"]                    # some tasks ran twice
    assert_same_tree(serial, tree)


# ---------------------------------------------------------------------- command line

WRAPPER = """\
import sys

import powercells.enumerate.tasks

powercells.enumerate.tasks.DEFAULT_CAP = int(sys.argv[1])
from powercells.cli import main

sys.exit(main(sys.argv[2:]))
"""


def test_sigkill_then_rerun_completes_the_store(tmp_path, monkeypatch):
    # ~20 tasks of 400 nodes, ~3 s in all (lp engine)
    cap = 400
    network = random_network(3, [14, 14, 14], seed=0)
    net = tmp_path / "net.npz"
    pc.save_npz(network, net)
    wrapper = tmp_path / "run.py"
    wrapper.write_text(WRAPPER)
    out = tmp_path / "store"
    cmd = [sys.executable, str(wrapper), str(cap), "count", str(net), "--box", "-1", "1",
           "--engine", "lp", "--out", str(out), "--workers", "0", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("parts/part-*.parquet"))) < 4:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert proc.poll() is None          # killed mid-way
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not store_summary(out)["complete"]
    killed_at = part_names(out)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    monkeypatch.setattr(tasks_module, "DEFAULT_CAP", cap)
    ref = pc.count_regions(network, pc.Box(-1, 1, dim=3), engine="lp", executor="serial",
                           store=tmp_path / "ref")
    assert not got["partial"] and got["store"] == str(out)
    assert (got["regions"], got["per_layer"], got["thin"]) == (ref.regions, ref.per_layer,
                                                               ref.thin)
    summary = store_summary(out)
    assert summary["complete"] and summary["per_layer"] == ref.per_layer
    assert set(killed_at) < set(part_names(out)) == set(part_names(tmp_path / "ref"))
    assert table(out).equals(table(tmp_path / "ref"))
    assert not list((out / "tasks").glob("*.pickle"))


def test_cli_count_into_a_store_and_again(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tasks_module, "DEFAULT_CAP", CAP)
    network = random_network(3, [10, 10, 10], seed=0)
    net = tmp_path / "net.npz"
    pc.save_npz(network, net)
    out = tmp_path / "store"
    argv = ["count", str(net), "--box", "-1", "1", "--engine", "lp", "--out", str(out),
            "--workers", "0", "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    names = part_names(out)
    assert len(names) > 1 and store_summary(out)["complete"]
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    ref = pc.count_regions(network, pc.Box(-1, 1, dim=3), engine="lp", executor="serial")
    for got in (first, second):
        assert got["store"] == str(out) and not got["partial"]
        assert (got["regions"], got["per_layer"], got["thin"]) == (ref.regions, ref.per_layer,
                                                                   ref.thin)
    assert part_names(out) == names


@pytest.mark.parametrize("option,value", [("--workers", "-1"), ("--scheduler", "foo")])
def test_cli_refuses_bad_executor_options(tmp_path, capsys, option, value):
    net = tmp_path / "net.npz"
    pc.save_npz(random_network(3, [4], seed=0), net)
    out = tmp_path / "store"
    code = main(["count", str(net), "--box", "-1", "1", "--out", str(out), option, value])
    assert code == EXIT_ERROR == 2
    err = capsys.readouterr().err
    assert f"{option} {value}" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()                 # refused before the store is made


def test_deep_task_keys_make_short_file_names(tmp_path, monkeypatch):
    # every generation of tasks adds a number to the key: with one-node batches (lp) and a
    # small cap the keys grow past a hundred numbers, more than a file name can hold
    monkeypatch.setattr(tasks_module, "DEFAULT_CAP", 150)
    network, box = random_network(3, [16, 16, 16], 0), pc.Box(-1, 1, dim=3)
    store = tmp_path / "store"
    result = pc.count_regions(network, box, engine="lp", executor="serial", store=store)
    assert result.per_layer == pc.count_regions(network, box, engine="lp",
                                                executor="serial").per_layer
    pq = pytest.importorskip("pyarrow.parquet")
    keys = [json.loads(pq.read_schema(f).metadata[b"powercells"])["key"]
            for f in (store / "parts").iterdir()]
    # deep enough that names made of the keys (7 characters a number) pass 255 bytes
    assert max(map(len, keys)) > 32
    assert max(len(f.name) for f in (store / "parts").iterdir()) < 64
    assert read_store(store).count_rows() == result.regions


def test_a_store_of_counts_only(tmp_path, monkeypatch):
    monkeypatch.setattr(tasks_module, "DEFAULT_CAP", 200)
    network, box = random_network(3, [12, 12, 12], 4), pc.Box(-1, 1, dim=3)
    full = pc.count_regions(network, box, executor="serial")
    store = tmp_path / "counts"
    part = pc.count_regions(network, box, executor="serial", store=store, store_leaves=False,
                            max_regions=600)
    assert part.partial
    done = pc.count_regions(network, box, executor="serial", store=store, store_leaves=False)
    assert (done.per_layer, done.partial) == (full.per_layer, False)
    assert read_store(store).count_rows() == 0 and store_summary(store)["regions"] == full.regions
    with pytest.raises(pc.PowercellsError, match="different leaves"):
        pc.count_regions(network, box, executor="serial", store=store)
    # the CLI's flag, and its refusal without a store
    path = tmp_path / "net.npz"
    pc.save_npz(network, path)
    assert main(["count", str(path), "--box", "-1", "1", "--no-leaves"]) == EXIT_ERROR


def test_progress_line_counts_this_runs_regions_per_second(capsys):
    from powercells.enumerate.schedule import Progress

    line = Progress(True, time.perf_counter() - 10.0, base=1_000_000)
    line.update(1_000_500, 1, 3, force=True)
    line.close()
    err = capsys.readouterr().err
    # a resumed store's regions are in the total, not in the rate (500 new in 10 s)
    assert "1,000,500 regions, 1 task done, 3 queued" in err
    assert " 50 regions/s" in err
