"""The coordinator: tasks out, parts back, in tree order to the sink (DESIGN §3-4).

:func:`execute` starts from the root task (or the tasks a store left unfinished), runs tasks in
this process until the run has lasted :attr:`Executor.start_after` seconds and the work left is
estimated at :attr:`Executor.min_work` seconds or more (:func:`seconds_left`), then hands them
to the executor's workers, smallest key first (depth first over the tree, so the tasks waiting
stay few). Parts come back in any order; each is filed in the store at once (if there is one)
and handed to the sink in key order, i.e. in tree order, as soon as no unfinished task could
still make a part before it. Budgets stop the run cleanly: no new task starts, the tasks
running finish or stop, and what was finished is reported (and stays in the store).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import heapq
import math
import sys
import time

from ..errors import PowercellsError
from .executors import MAX_ATTEMPTS, SerialExecutor, WorkerLost, available_cpus
from .kernels import hold_blas
from .spool import TaskRef, TaskSpool
from .tasks import release_memory, run_task

__all__ = ["Outcome", "TaskRef", "execute", "seconds_left"]


class Outcome:
    """What :func:`execute` reports: node and sliver counts per depth, summed engine
    statistics, the number of tasks, and why a budget stopped the run (None if it finished)."""

    def __init__(self, depth: int):
        self.counts = [0] * depth
        self.thin = [0] * depth
        self.slivers = [0] * depth
        self.stats: dict = {}
        self.tasks = 0
        self.stopped: str | None = None
        self.workers = 0

    def add(self, part) -> None:
        for d in range(len(self.counts)):
            self.counts[d] += part.counts[d]
            self.thin[d] += part.thin[d] if part.thin else 0
            self.slivers[d] += part.slivers[d]
        for k, v in part.stats.items():
            self.stats[k] = self.stats.get(k, 0) + v
        self.tasks += 1


class Progress:
    """A live line on stderr: regions, tasks done / queued, regions per second, elapsed time,
    and the Dask dashboard when there is one; at most four updates a second."""

    def __init__(self, enabled: bool, start: float, base: int = 0):
        self.enabled = bool(enabled)
        self.start = start
        self.base = base                # regions a resumed store had already
        self.last = 0.0
        self.shown = False

    def update(self, regions: int, done: int, queued: int, where: str = "",
               force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < 0.25:
            return
        self.last = now
        elapsed = now - self.start
        rate = (regions - self.base) / elapsed if elapsed > 0 else 0.0
        line = (f"\r{regions:,} regions, {done} task{'s' * (done != 1)} done, {queued} queued, "
                f"{rate:,.0f} regions/s, {elapsed:.1f} s{where}")
        sys.stderr.write(line + "\x1b[K")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def execute(ctx, local_engine, tasks, *, executor=None, budget, sink, store=None, known=None,
            progress: bool = False) -> Outcome:
    """Run ``tasks`` and everything they hand on.

    Parameters
    ----------
    ctx : RunContext
    local_engine : Engine
        This process's engine (runs the tasks done here).
    tasks : list of Task
    executor : Executor, optional
        Default: serial.
    budget : Budget
        This run's; the coordinator checks it between tasks and passes what is left to workers.
    sink : Sink
        Receives every part, in key order (:meth:`Sink.add_part`).
    store : Store, optional
        Files every part as it arrives (and the tasks it hands on).
    known : list of int, optional
        Nodes per depth already finished (a resumed store's).
    progress : bool

    Returns
    -------
    Outcome
    """
    executor = executor or SerialExecutor()
    L = ctx.depth
    out = Outcome(L)
    known = list(known) if known is not None else [0] * L
    heap = []
    seq = 0
    # waiting tasks on disk: the store's (durable), or a temporary one once workers on this
    # machine start (they file and read the batches; the coordinator passes keys)
    spool = store.spool if store is not None else None
    for task in tasks:
        if store is not None and task.key and not isinstance(task, TaskRef):
            task = TaskRef.of(task)
        heapq.heappush(heap, (task.key, seq, task))
        seq += 1
    roots = sum(t.size for t in tasks if t.depth == 0) or 1
    ready = []                      # parts waiting for their turn (key order)
    in_flight = {}                  # handle -> task
    attempts = {}
    started = dispatching = False
    here = here_task = None         # this process's own worker thread (Executor.local) and task
    report = Progress(progress, budget.start, base=known[-1] if L else 0)

    def outstanding_min():
        keys = [t.key for t in in_flight.values()]
        if heap:
            keys.append(heap[0][0])
        return min(keys) if keys else None

    def deliver(flush=False):
        limit = None if flush else outstanding_min()
        while ready and (limit is None or ready[0][0] < limit):
            sink.add_part(heapq.heappop(ready)[2])

    def arrive(part):
        nonlocal seq
        if store is not None:
            store.add(part)
        elif spool is not None:
            spool.forget(part.task_key)
        if not sink.keeps_rows:         # filed; only its counts wait for their turn
            part.leaves = part.levels = None
        out.add(part)
        for d in range(L):
            known[d] += part.counts[d]
        if part.stopped and out.stopped is None:
            out.stopped = part.stopped
        for sub in part.subtasks:
            # a task waiting in a spool is read back when it runs: the coordinator's memory
            # holds keys, not the (large) batches of every task waiting
            if store is not None or isinstance(sub, TaskRef):
                entry = TaskRef.of(sub)         # filed already
            elif spool is not None:
                entry = spool.file(sub)
            else:
                entry = sub
            heapq.heappush(heap, (sub.key, seq, entry))
            seq += 1
        part.subtasks = [TaskRef.of(sub) for sub in part.subtasks]
        heapq.heappush(ready, (part.key, seq, part))
        seq += 1
        deliver()

    def run_here():
        """The next task, in this process."""
        task = _loaded(heapq.heappop(heap)[2], spool)
        part = run_task(ctx, local_engine, task, budget, known)
        del task
        arrive(part)
        release_memory()
        report.update(known[-1], out.tasks, len(heap) + len(in_flight), where())

    def where():
        if not started:
            return ""
        dash = executor.dashboard
        return f", {executor.describe()}" + (f", dashboard {dash}" if dash else "")

    try:
        while heap or in_flight:
            if out.stopped is None:
                out.stopped = _exhausted(budget, known)
            if out.stopped is not None and not in_flight:
                break
            if (not started and not isinstance(executor, SerialExecutor) and heap
                    and out.stopped is None and _worth_workers(executor, heap, known, out,
                                                               budget, roots)):
                hold_blas()             # BLAS threads would spin beside the workers
                if executor.shares_disk and spool is None:
                    spool = TaskSpool.temporary()
                started = True          # closed in any case from here on, even half started
                executor.start(dataclasses.replace(ctx, spool=spool) if executor.shares_disk
                               else ctx)
                if executor.local:
                    here = cf.ThreadPoolExecutor(1, thread_name_prefix="powercells-here")
                    if ctx.setup.options.threads is None:
                        # this process now shares the CPUs with the other workers
                        _use_threads(local_engine, max(1, available_cpus() // executor.workers))
                out.workers = executor.workers
                # tasks in flight per worker away from here: with this process among the
                # workers, one (a worker's next task goes out the moment its last comes back:
                # tasks wait here, where this process's own thread can still take the last
                # ones, not in a worker's queue while this process has nothing left); else two
                queue_depth = executor.processes * (1 if executor.local else 2)
            if not started or (not dispatching and not executor.ready()):
                if not heap:            # the workers are still starting and nothing is left
                    break
                run_here()
                continue
            dispatching = True
            while (out.stopped is None and heap
                   and len(in_flight) - (here_task is not None) < queue_depth):
                entry = heapq.heappop(heap)[2]
                # a worker on this machine reads a waiting task from the spool itself
                task = entry if isinstance(entry, TaskRef) and executor.shares_disk else \
                    _loaded(entry, spool)
                limit = None
                if budget.deadline is not None:
                    limit = max(budget.deadline - time.perf_counter(), 1e-3)
                in_flight[executor.submit(task, list(known), limit=limit,
                                          max_regions=budget.max_regions)] = task
            if here is not None and here_task is None and heap and out.stopped is None:
                # this process is one of the workers: a thread of its own runs the next task
                # while this one hands out the others' tasks as soon as theirs come back
                task = _loaded(heapq.heappop(heap)[2], spool)
                here_task = here.submit(run_task, ctx, local_engine, task, budget, list(known))
                in_flight[here_task] = TaskRef.of(task)     # the thread holds the batches
                del task
            for handle in executor.wait(list(in_flight), 0.25):
                task = in_flight.pop(handle)
                if handle is here_task:
                    here_task = None
                    del task
                    arrive(handle.result())
                    continue
                try:
                    part = executor.outcome(handle)
                except WorkerLost as exc:
                    # which task killed its worker is unknown: every task the pool held runs
                    # again, and one that keeps killing workers is given up
                    lost = [task] + [in_flight.pop(h) for h in list(in_flight)
                                     if h is not here_task]
                    for t in lost:
                        n = attempts[t.key] = attempts.get(t.key, 0) + 1
                        if n >= MAX_ATTEMPTS:
                            raise PowercellsError(
                                f"task {t.key} ({t.size} nodes of depth {t.depth}) was running "
                                f"each of the {n} times a worker died ({exc}); no count is "
                                "reported") from None
                        heapq.heappush(heap, (t.key, seq, TaskRef.of(t)
                                              if store is not None else t))
                        seq += 1
                    break
                arrive(part)
            report.update(known[-1], out.tasks, len(heap) + len(in_flight), where())
            release_memory()            # what this process did itself before (throttled)
    finally:
        # each step runs even if one before it fails (or a second Ctrl-C lands): no worker
        # process, thread or temporary file outlives the run
        try:
            if here_task is not None and not here_task.done():
                budget.stop[0] = 1      # an interrupt or an error: the thread's task stops too
            if started:
                executor.close()        # workers killed before this process waits for its thread
        finally:
            try:
                if here is not None:
                    here.shutdown(wait=True)
            finally:
                try:
                    if spool is not None:
                        spool.remove()  # a temporary spool (a store's stays)
                finally:
                    report.update(known[-1], out.tasks, len(heap) + len(in_flight), where(),
                                  force=True)
                    report.close()
    deliver(flush=True)
    if out.stopped is None and heap:            # pragma: no cover - defensive
        raise PowercellsError("the run ended with tasks left")
    return out


def seconds_left(heap, known, made_now, elapsed: float, roots: int = 1,
                 pieces: int = 0) -> float:
    """An estimate of the seconds this process would still need for the tasks waiting in
    ``heap``, from the run so far: the branching of each depth (nodes made per node split)
    gives the expected subtree below a waiting node, and the seconds per node made so far
    price it. A root cut into pieces (a wide first layer, :attr:`Task.pieces
    <powercells.enumerate.tasks.Task.pieces>`) counts as its pieces: the children per piece
    split so far price the pieces waiting. ``inf`` while some depth has no node (or piece)
    split yet, or some waiting task is of an unknown size (a resumed store's): nothing to go
    on.

    Parameters
    ----------
    heap : list of (key, seq, task)
    known : list of int
        Nodes made per depth ``1..L`` (with a resumed store's).
    made_now : list of int
        Nodes made per depth by this run (what ``elapsed`` paid for).
    elapsed : float
    roots : int
        Nodes of depth 0.
    pieces : int
        Pieces the root was cut into (0: not cut); waiting pieces count as depth 0.
    """
    L = len(known)
    work_now = sum(made_now)
    if work_now == 0:
        return math.inf
    pending = [0] * (L + 1)
    for entry in heap:
        task = entry[2]
        if task.depth is None or (getattr(task, "pieces", False) and not pieces):
            return math.inf
        pending[task.depth] += task.size
    made = [pieces or roots] + list(known)
    below = 0.0                     # expected nodes made under one node of depth j + 1
    total = 0.0
    for j in reversed(range(L)):
        split = made[j] - pending[j]
        if split <= 0:
            return math.inf
        below = made[j + 1] / split * (1.0 + below)
        total += pending[j] * below
    return elapsed / work_now * total


def _worth_workers(executor, heap, known, out, budget, roots) -> bool:
    """Whether the run has shown itself large enough to start the executor's workers: it has
    lasted :attr:`~Executor.start_after` seconds and :func:`seconds_left` prices the work
    waiting at :attr:`~Executor.min_work` seconds or more; while that estimate has nothing to
    go on (a depth not split yet), once the run has lasted twice as long."""
    elapsed = time.perf_counter() - budget.start
    if elapsed < executor.start_after:
        return False
    if executor.min_work <= 0:
        return True
    left = seconds_left(heap, known, out.counts, elapsed, roots, out.stats.get("root_pieces", 0))
    if math.isinf(left):
        return elapsed >= 2 * executor.start_after
    return left >= executor.min_work


def _use_threads(engine, threads: int) -> None:
    """Set the kernel threads of an engine (and of the engine a splitter wraps)."""
    while engine is not None:
        if hasattr(engine, "threads"):
            engine.threads = threads
        engine = getattr(engine, "engine", None)


def _loaded(entry, spool):
    return spool.load(entry.key) if isinstance(entry, TaskRef) else entry


def _exhausted(budget, known) -> str | None:
    """Why the budget is spent, judged between tasks (None if it is not)."""
    if budget.stop[0]:
        return budget.reason or "interrupted"
    if budget.max_regions is not None and max(known, default=0) > budget.max_regions:
        return f"more than {budget.max_regions} regions"
    if budget.deadline is not None and time.perf_counter() > budget.deadline:
        return f"time limit of {budget.time_limit:g} s reached"
    return None
