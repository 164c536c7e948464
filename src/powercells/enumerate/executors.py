"""Where tasks run: in this process, in a local process pool, or on a Dask cluster (DESIGN §4).

An executor receives the run's :class:`~powercells.enumerate.tasks.RunContext` once
(:meth:`Executor.start`), then tasks (:meth:`Executor.submit`), and hands back
:class:`~powercells.enumerate.tasks.Part` objects. The coordinator (:mod:`.schedule`) decides
what to submit and in which order; the executors only move tasks and parts, so the results are
the same for every executor and worker count.

* :class:`SerialExecutor`: no workers; the coordinator runs every task itself.
* :class:`ProcessExecutor`: a pool of worker processes on this machine, started with ``spawn``
  once the run is known to be large. The default: one worker per available CPU, this process
  among them (it runs tasks in a thread of its own beside the worker processes). A worker that dies
  (killed, out of memory) breaks the pool: a new pool is started and the tasks it held are run
  again.
* :class:`DaskExecutor`: a ``dask.distributed.Client`` given by the caller, a scheduler
  address, or a ``LocalCluster`` of ``n`` workers; Dask's own scheduling, serialisation,
  retries after a lost worker and dashboard.

:func:`as_executor` turns the ``executor=`` argument of the API into one of these.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import multiprocessing
import os
import pickle
import sys
import tempfile
from contextlib import contextmanager

from ..errors import OptionError, PowercellsError
from .budget import Budget

__all__ = ["DaskExecutor", "Executor", "ProcessExecutor", "SerialExecutor", "as_executor",
           "available_cpus"]

#: Seconds a run works in this process before it may start a pool of workers: shorter runs
#: never pay for one. Starting costs this process ~20 ms (the workers read the run's context
#: from a file); a worker then takes ~0.5-0.8 s to import powercells and load its compiled
#: kernel, on a CPU this process leaves idle, while this process goes on working.
START_AFTER = 0.5

#: Seconds of work a run must still have (estimated in this process,
#: :func:`~powercells.enumerate.schedule.seconds_left`) for the default pool to start: with
#: fewer, the worker would be up only for the last moments. On the 2-core development machine
#: ACAS Xu 1_1 prop_1 (estimated 0.6 s left at 0.6 s) stays in this process (2.0 s either way),
#: and ACAS Xu 3_3 prop_9 (5-14 s left) took 5.5-5.7 s with the pool against 6.6 s without
#: (``benchmarks/bench_scale.py``).
MIN_POOL_WORK = 2.0

#: Times a task may lose its worker before the run gives up on it.
MAX_ATTEMPTS = 3


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):         # pragma: no cover - not Linux
        return os.cpu_count() or 1


class WorkerLost(Exception):
    """A task's worker died; the task may be run again."""


class Executor:
    """Runs tasks away from the coordinator (see the module docstring).

    Attributes
    ----------
    name : str
        ``serial``, ``processes`` or ``dask``.
    workers : int
        Workers (0: the coordinator runs every task itself).
    local : bool
        The coordinator is one of the workers: once the others are up it runs tasks too,
        between handing tasks out (a local pool of ``workers - 1`` processes).
    start_after : float
        Seconds of work in this process before :meth:`start` is called.
    min_work : float
        Seconds of work left (estimated) below which :meth:`start` is not called.
    """

    name = "executor"
    #: Whether the workers see this machine's disk: then tasks travel by key through the
    #: run's spool (:mod:`.spool`), not through the coordinator.
    shares_disk = False
    workers = 0
    local = False
    start_after = START_AFTER
    min_work = 0.0

    def start(self, ctx) -> None:                       # pragma: no cover - interface
        """Start the workers (may return before they are up: see :meth:`ready`)."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the workers are up (until then the coordinator runs tasks itself)."""
        return True

    def submit(self, task, known, *, limit, max_regions):  # pragma: no cover - interface
        """Run ``task`` on a worker; returns a handle for :meth:`wait`."""
        raise NotImplementedError

    def wait(self, handles, timeout):                   # pragma: no cover - interface
        """The handles that finished within ``timeout`` seconds (maybe none)."""
        raise NotImplementedError

    def outcome(self, handle):                          # pragma: no cover - interface
        """The Part of a finished handle; raises :class:`WorkerLost` if its worker died."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the workers (tasks still running are abandoned)."""

    def describe(self) -> str:
        return f"{self.name} ({self.workers} workers)"

    @property
    def processes(self) -> int:
        """Workers away from the coordinator (the tasks in flight are a multiple of them)."""
        return self.workers - 1 if self.local else self.workers

    @property
    def dashboard(self) -> str | None:
        return None


class SerialExecutor(Executor):
    """Every task in this process, one after another."""

    name = "serial"
    workers = 0

    def describe(self) -> str:
        return "serial"


# ---------------------------------------------------------------------- worker side

_ENGINE: dict = {}          # this worker's engine of the current run: {"token", "engine"}
_POOL: dict = {}            # the run context a pool worker was started with


def _worker_engine(ctx):
    """The engine of the run ``ctx`` in this worker (made once per run and worker)."""
    if _ENGINE.get("token") != ctx.token:
        _ENGINE.clear()
        _ENGINE.update(token=ctx.token, engine=ctx.make_engine())
    return _ENGINE["engine"]


def worker_context(ctx, workers: int = 0):
    """The context a worker runs with: its engine uses its share of this machine's CPUs (one
    thread each when there are as many workers as CPUs), unless the caller chose, and loads its
    compiled kernel as it starts (workers start only for large jobs; see :mod:`.kernels`)."""
    from .kernels import numba_installed

    options = ctx.setup.options
    if options.threads is None:
        share = available_cpus() // workers if workers else 1
        options = dataclasses.replace(options, threads=max(1, share))
    if options.compiled is None and numba_installed():
        options = dataclasses.replace(options, compiled=True)
    return dataclasses.replace(ctx, setup=dataclasses.replace(ctx.setup, options=options))


def run_remote(ctx, task, known, *, limit, max_regions):
    """Run one task in a worker: a budget of the seconds left and the regions still allowed.
    With a spool (a worker on the coordinator's machine) the task may come as a key, and the
    subtasks go back as keys, filed here."""
    from .spool import TaskRef
    from .tasks import release_memory, run_task

    if isinstance(task, TaskRef):           # sent by key: its batches are in the spool
        task = ctx.spool.load(task.key)
    engine = _worker_engine(ctx)
    budget = Budget(max_regions=max_regions, time_limit=limit)
    try:
        part = run_task(ctx, engine, task, budget, known)
    finally:
        del task
        release_memory()
    if ctx.spool is not None and part.subtasks:
        # filed here, on the coordinator's machine: it receives keys, not batches
        part.subtasks = [ctx.spool.file(sub) for sub in part.subtasks]
    return part


def _init_pool_worker(ctx_file):
    with open(ctx_file, "rb") as fh:
        _POOL["ctx"] = pickle.load(fh)


def _warm_worker():
    _worker_engine(_POOL["ctx"])


def _pool_run(task, known, limit, max_regions):
    return run_remote(_POOL["ctx"], task, known, limit=limit, max_regions=max_regions)


# ---------------------------------------------------------------------- local processes

#: Environment variables that set the thread pools of BLAS and OpenMP, read when numpy loads.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextmanager
def _one_blas_thread():
    """Processes started in the block get one BLAS/OpenMP thread (unless the caller chose)."""
    added = [k for k in _THREAD_VARIABLES if k not in os.environ]
    for k in added:
        os.environ[k] = "1"
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


@contextmanager
def _main_hidden():
    """Start processes without re-running the caller's main script in them.

    ``spawn`` normally imports the parent's ``__main__`` in every child, so a script that
    calls powercells at its top level (no ``if __name__ == "__main__"`` guard, the usual case
    in notebooks and short scripts) would run again in each worker. The workers need nothing
    from it: everything they run lives in importable modules.
    """
    main = sys.modules.get("__main__")
    if main is None:                                    # pragma: no cover - embedded
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)



class ProcessExecutor(Executor):
    """A pool of worker processes on this machine.

    Parameters
    ----------
    workers : int, optional
        Workers (default: one per available CPU): worker processes, or with ``local`` this
        process and ``workers - 1`` worker processes.
    local : bool
        This process is one of the workers: while the others work it runs tasks too, between
        handing tasks out. On a machine the workers fill, a coordinator that only waited would
        leave a CPU's share idle, and each worker process costs its start (imports, compiled
        kernels) and the transfer of its tasks; the API's and the command line's pools work
        this way (:func:`as_executor`).
    start_after : float
        Seconds of work in this process before the pool starts (0: at once).
    min_work : float
        ... and the seconds of work left, estimated from the run so far, that the pool must
        have to start (:data:`MIN_POOL_WORK`; 0: start after ``start_after`` whatever is
        left). A run whose estimate stays below it finishes in this process.
    """

    name = "processes"
    shares_disk = True

    def __init__(self, workers: int | None = None, *, local: bool = False,
                 start_after: float = START_AFTER, min_work: float = MIN_POOL_WORK):
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                    or workers < 1):
            raise OptionError(f"workers must be a whole number >= 1, got {workers!r}")
        self.workers = workers or available_cpus()
        self.local = bool(local)
        if self.local and self.workers < 2:
            raise OptionError(f"a pool whose coordinator is one of its workers needs 2 or more "
                              f"workers, got {self.workers}")
        self.start_after = float(start_after)
        self.min_work = float(min_work)
        self._pool = None
        self._ctx_file = None

    def _new_pool(self):
        # the run's context reaches the workers in a file: given as an argument it would be
        # written into each new process's pipe while the process imports powercells to read
        # it, and the coordinator would wait for that (0.2 s a worker) instead of working
        self._pool = cf.ProcessPoolExecutor(
            max_workers=self.processes, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_pool_worker, initargs=(self._ctx_file,))
        # the workers are started now, all of them, without the caller's main script, and
        # with one BLAS thread each (they share the CPUs; BLAS threads spinning beside another
        # worker's slow everyone down); each makes its engine while the coordinator goes on
        with _main_hidden(), _one_blas_thread():
            self._warming = [self._pool.submit(_warm_worker) for _ in range(self.processes)]

    def ready(self) -> bool:
        if not all(f.done() for f in self._warming):
            return False
        for f in self._warming:
            f.result()              # a worker that could not start raises here
        return True

    def start(self, ctx) -> None:
        fd, self._ctx_file = tempfile.mkstemp(prefix="powercells-run-", suffix=".pickle")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(worker_context(ctx, self.workers), fh, protocol=pickle.HIGHEST_PROTOCOL)
        self._new_pool()

    def submit(self, task, known, *, limit, max_regions):
        args = (task, known, limit, max_regions)
        try:
            return self._pool.submit(_pool_run, *args)
        except cf.process.BrokenProcessPool:
            self._restart()
            return self._pool.submit(_pool_run, *args)

    def wait(self, handles, timeout):
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return done

    def outcome(self, handle):
        try:
            return handle.result()
        except cf.process.BrokenProcessPool:
            self._restart()
            raise WorkerLost("a worker process died") from None

    def _restart(self):
        """After a worker died: the old pool is broken for good; start a new one."""
        old = self._pool
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)
        self._new_pool()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        ctx_file, self._ctx_file = self._ctx_file, None
        try:
            if pool is not None:
                # running tasks are abandoned: kill their processes rather than wait for them
                procs = list(getattr(pool, "_processes", {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                for proc in procs:
                    if proc.is_alive():
                        proc.kill()
                for proc in procs:
                    proc.join(timeout=5)
        finally:
            if ctx_file is not None:    # the workers read it as they started
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(ctx_file)


# ---------------------------------------------------------------------- Dask

class DaskExecutor(Executor):
    """Tasks on a Dask cluster.

    Parameters
    ----------
    client : dask.distributed.Client, optional
        The caller's client (not closed by the run).
    address : str, optional
        A scheduler address (``tcp://HOST:PORT``): the run connects a client and closes it.
    local : int, optional
        Start a ``LocalCluster`` of this many single-threaded worker processes for the run.
    start_after : float
        Seconds of work in this process before tasks go to the cluster (0: at once).
    """

    name = "dask"

    def __init__(self, client=None, *, address: str | None = None, local: int | None = None,
                 start_after: float = START_AFTER):
        if sum(x is not None for x in (client, address, local)) != 1:
            raise OptionError("give one of client, address or local to DaskExecutor")
        if local is not None and (isinstance(local, bool) or not isinstance(local, int)
                                  or local < 1):
            raise OptionError(f"a Dask LocalCluster needs a whole number >= 1 of workers, "
                              f"got {local!r}")
        self._given = client
        self._address = address
        self._local = local
        self.client = client
        self._cluster = None
        self._owned = False
        self.start_after = float(start_after)
        self._ctx_future = None
        self.workers = local or 0
        # a LocalCluster made for the run is on this machine: its workers use the spool
        self.shares_disk = local is not None

    @staticmethod
    def _distributed():
        try:
            import distributed
        except ImportError:
            raise OptionError("the Dask executor needs dask.distributed: pip install "
                              "'powercells[dask]'") from None
        return distributed

    def start(self, ctx) -> None:
        distributed = self._distributed()
        if self.client is None:
            if self._local is not None:
                self._cluster = distributed.LocalCluster(
                    n_workers=self._local, threads_per_worker=1, processes=True,
                    dashboard_address=":0", silence_logs=40)
                self.client = distributed.Client(self._cluster)
            else:
                try:
                    self.client = distributed.Client(self._address, timeout="10s")
                except (OSError, TimeoutError) as exc:
                    raise PowercellsError(f"cannot reach the Dask scheduler at "
                                          f"{self._address}: {exc}") from None
            self._owned = True
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        self._ctx_future = self.client.scatter(worker_context(ctx), broadcast=True, hash=False)

    def submit(self, task, known, *, limit, max_regions):
        return self.client.submit(run_remote, self._ctx_future, task, known, limit=limit,
                                  max_regions=max_regions, pure=False)

    def wait(self, handles, timeout):
        distributed = self._distributed()
        try:
            done, _ = distributed.wait(list(handles), timeout=timeout,
                                       return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set()
        return done

    def outcome(self, handle):
        distributed = self._distributed()
        try:
            return handle.result()
        except distributed.KilledWorker as exc:
            raise PowercellsError(f"a task killed {MAX_ATTEMPTS} or more Dask workers and was "
                                  f"given up ({exc}); no count is reported") from None

    def close(self) -> None:
        if self._ctx_future is not None:
            try:
                self.client.cancel(self._ctx_future)
            except Exception:               # the cluster may be gone already
                pass
            self._ctx_future = None
        if self._owned and self.client is not None:
            self.client.close()
            if self._cluster is not None:
                self._cluster.close()
            self.client, self._cluster, self._owned = None, None, False

    @property
    def dashboard(self) -> str | None:
        return getattr(self.client, "dashboard_link", None) if self.client is not None else None

    def describe(self) -> str:
        return f"dask ({self.workers} workers)"


def as_executor(executor) -> Executor:
    """The executor named by the API's ``executor=`` argument.

    ``None`` or ``"processes"``: one worker per available CPU (serial on a one-CPU machine);
    ``"serial"``, ``0`` or ``1``: this process only (it is the one worker); an int ``n >= 2``:
    ``n`` workers, this process and ``n - 1`` worker processes (:class:`ProcessExecutor` with
    ``local=True``; ``ProcessExecutor(n)`` makes ``n`` processes and a coordinator that only
    hands tasks out); a ``dask.distributed.Client``; a string ``"tcp://HOST:PORT"``: that Dask
    scheduler; an :class:`Executor` as it is.

    Raises
    ------
    OptionError
    """
    if isinstance(executor, Executor):
        return executor
    if executor is None or executor == "processes":
        n = available_cpus()
        return ProcessExecutor(n, local=True) if n > 1 else SerialExecutor()
    if executor == "serial":
        return SerialExecutor()
    if isinstance(executor, int) and not isinstance(executor, bool):
        if executor < 0:
            raise OptionError(f"executor: a worker count must be >= 0, got {executor}")
        # one worker is this process: a pool of one would only add its start and transfers
        return SerialExecutor() if executor <= 1 else ProcessExecutor(executor, local=True)
    if isinstance(executor, str) and "://" in executor:
        return DaskExecutor(address=executor)
    if type(executor).__name__ == "Client" and hasattr(executor, "submit"):
        return DaskExecutor(executor)
    raise OptionError(f"executor must be None, 'serial', 'processes', a worker count, a "
                      f"dask.distributed.Client, a scheduler address 'tcp://HOST:PORT' or an "
                      f"Executor, got {executor!r}")
