"""When the engines load their compiled kernels (numba).

Loading a kernel costs about half a second in a fresh process (numba's import, then its cached
machine code), more than a small job takes in all on the numpy path. An engine therefore starts
a job on the numpy path, timing it, and loads its kernel once some seconds of splitting
(:data:`KERNEL_AFTER`) have shown the job to be large: a small job never pays for the load, and
a large one loses at most that much to the slower path. A kernel this process has loaded
already is used from the start.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from contextlib import contextmanager
from importlib.util import find_spec

import numpy as np

from ..errors import OptionError
from .budget import WATCH_INTERVAL, Budget

__all__ = ["KERNEL_AFTER", "KernelSwitch", "blas_run", "hold_blas", "in_kernel_threads",
           "numba_installed", "run_watched", "wait_result", "worker_pool"]

#: Seconds of splitting on the numpy path after which each engine loads its compiled kernel.
#: Loading costs ~0.5 s in a fresh process. The vertex engine's numpy path is ~5x slower than
#: its kernel: the load repays itself once ~0.6 s of numpy work remain, so the switch comes
#: early, and smaller jobs (a few thousand regions in 3-6 dimensions) never pay for it. The
#: planar engine's is ~1.5x slower (its matrix products stay in numpy): the load repays itself
#: only after ~1.5 s more, so jobs under ~100k regions stay on numpy. The lp engine's compiled
#: simplex is 2-3x HiGHS at d >= 10 (its path before the switch): it repays the load after
#: ~0.8 s more. In the certified mode the planar engine's numpy path also runs the float filter
#: in numpy, a few times slower than its compiled twin: it switches sooner.
KERNEL_AFTER = {"vertex": 0.2, "planar": 1.0, "planar (certified)": 0.5, "lp": 0.3}


@functools.cache
def numba_installed() -> bool:
    """Whether numba can be imported (without importing it)."""
    return find_spec("numba") is not None


class KernelSwitch:
    """An engine's compiled kernel: none, loaded now, or loaded once the job proves large.

    Parameters
    ----------
    name : str
        The engine's name (its :data:`KERNEL_AFTER`).
    module : str
        The kernel's module (imported by ``load``).
    load : callable
        Imports the module and returns the kernel; raises ImportError without numba.
    compiled : bool or None
        The engine option: False never loads it, True loads it now (an OptionError naming
        ``what`` when numba is missing), None loads it now when ``lazy`` is False, else after
        the engine's :data:`KERNEL_AFTER` seconds of numpy splitting (at once when the module
        is loaded already).
    lazy : bool
        Whether the engine may change path midway (its output does not depend on the path).
    what : str
        What needs numba, for the error message.
    """

    def __init__(self, name: str, module: str, load, compiled, lazy: bool, what: str):
        self._load = load
        self._what = what
        self.kernel = None
        self._left = None               # numpy seconds before loading (None: path fixed)
        if compiled is False:
            return
        if compiled is None and lazy and module not in sys.modules:
            self._left = KERNEL_AFTER[name] if numba_installed() else None
            return
        self.kernel = self._get(required=compiled is True)

    def _get(self, required: bool):
        try:
            return self._load()
        except ImportError as exc:
            if required:
                raise OptionError(f"{self._what} needs numba (pip install 'powercells[fast]'): "
                                  f"{exc}") from None
            return None

    def start(self) -> float | None:
        """Call before a split: a start time when the split runs on the numpy path and counts
        toward loading the kernel."""
        return time.perf_counter() if self._left is not None else None

    def done(self, started: float | None) -> None:
        """Call after the split begun with :meth:`start`: loads the kernel when the job has
        spent its numpy time."""
        if started is None or self._left is None:
            return
        self._left -= time.perf_counter() - started
        if self._left <= 0:
            self._left = None
            self.kernel = self._get(required=False)


# ---------------------------------------------------------------------- running kernels
def wait_result(future, budget: Budget):
    """A kernel call's result, or :class:`BudgetExceeded` as soon as the budget stops it."""
    from concurrent.futures import TimeoutError as FutureTimeout

    while True:
        try:
            return future.result(timeout=WATCH_INTERVAL)
        except FutureTimeout:
            budget.check_stopped()


_POOLS: dict = {}
_POOLS_LOCK = threading.Lock()

_BLAS = {"runs": 0, "limit": None}
_BLAS_LOCK = threading.Lock()


@contextmanager
def blas_run():
    """Mark the block as a run: once it starts threads of its own (:func:`hold_blas`), numpy's
    matrix products (BLAS) use one thread until the last run in the process ends.

    The engines multiply small matrices (a batch of node maps by a layer of tens of units),
    where BLAS threads gain nothing, but an idle BLAS thread spins for a while before it
    sleeps, on the CPUs the kernel threads and the other workers need: on the 2-core
    development machine ACAS Xu 3_3 over prop_9 took 8.4-8.8 s with OpenBLAS's default (a
    thread per CPU) and 6.6 s with one, and two single-threaded runs side by side took 2.2x
    as long each instead of 1.0x. A small job, which starts no threads, pays nothing (not even
    threadpoolctl's import). BLAS has one setting per process: runs in several threads at once
    share it, the last to end restores it, and code the run calls back meanwhile (a
    ``stream_leaves`` callback) runs its products on one thread too.
    """
    with _BLAS_LOCK:
        _BLAS["runs"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS["runs"] -= 1
            if _BLAS["runs"] == 0 and _BLAS["limit"] is not None:
                _BLAS["limit"].restore_original_limits()
                _BLAS["limit"] = None


def hold_blas() -> None:
    """BLAS on one thread from now to the end of the runs in progress (:func:`blas_run`);
    nothing outside a run. Called where a run starts threads or worker processes."""
    if _BLAS["limit"] is not None or _BLAS["runs"] == 0:
        return
    with _BLAS_LOCK:
        if _BLAS["limit"] is not None or _BLAS["runs"] == 0:
            return
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:                 # pragma: no cover - a dependency
            return
        # the libraries loaded now (scipy's own BLAS may have come since the last run)
        _BLAS["limit"] = threadpool_limits(limits=1, user_api="blas")


def worker_pool(threads: int):
    """A pool of ``threads`` worker threads kept for the process (idle threads cost nothing;
    starting a pool per call would cost more than a short kernel call)."""
    from concurrent.futures import ThreadPoolExecutor

    threads = max(int(threads), 1)
    if threads > 1:
        hold_blas()                     # BLAS threads would spin beside these
    with _POOLS_LOCK:
        pool = _POOLS.get(threads)
        if pool is None:
            pool = _POOLS[threads] = ThreadPoolExecutor(max_workers=threads,
                                                        thread_name_prefix="powercells-kernel")
        return pool


def in_kernel_threads(kernel, n: int, threads: int, *args, out) -> None:
    """``kernel(*args, first, last, *out)`` over ranges of ``n`` items, one range per kernel
    thread (a compiled function that releases the GIL and writes its results into ``out``);
    in this thread when there are few items."""
    parts = max(1, min(int(threads), n // 256))
    if parts == 1:
        kernel(*args, 0, n, *out)
        return
    edges = np.linspace(0, n, parts + 1).astype(np.int64)
    pool = worker_pool(parts)
    for job in [pool.submit(kernel, *args, int(a), int(b), *out)
                for a, b in zip(edges[:-1], edges[1:])]:
        job.result()


def run_watched(call, budget: Budget, counter):
    """``call()`` (compiled code that polls ``budget.stop`` and counts its finished children
    in ``counter``, an array) in a worker thread while this thread waits interruptibly and the
    budget's watchdog runs: a time limit, a region limit or an interrupt stops it within
    :data:`~powercells.enumerate.budget.WATCH_INTERVAL`, raising :class:`BudgetExceeded`."""
    with budget.watching(counter):
        future = worker_pool(1).submit(call)
        try:
            out = wait_result(future, budget)
        except BaseException:
            budget.stop[0] = 1          # the call sees it and returns; not waited for
            raise
    budget.check_stopped()
    return out
