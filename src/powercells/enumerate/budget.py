"""Budgets of one enumeration (seconds, regions), honoured inside an engine's split.

The driver checks a budget between batches, but one split can be long (the root of a wide first
layer holds most of the work). So every engine checks it *inside* a split too:

* Python loops (the ``lp`` engine's cells, the ``planar`` and ``vertex`` engines' rounds) call
  :meth:`Budget.poll` with the number of children the split has found so far;
* compiled code, which cannot call Python, reads the flag :attr:`Budget.stop` and adds its
  finished pieces to a counter that :meth:`Budget.watching` checks from a watchdog thread.

When a budget runs out the split stops, its unfinished children are dropped, and the driver
reports what was finished: the counts are then lower bounds (``partial``). ``max_regions``
bounds the regions found after *any* layer (every layer's count but for slivers is at most the
last one's, so this stops as soon as the leaves could exceed it).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import numpy as np

from ..errors import BudgetExceeded, OptionError

__all__ = ["Budget"]

#: How often the watchdog of compiled code looks at the clock and the counters (seconds).
WATCH_INTERVAL = 0.02


class Budget:
    """The limits of one enumeration and the state engines check them against.

    Parameters
    ----------
    max_regions : int, optional
        Stop once more than this many regions are known after some layer (>= 1).
    time_limit : float, optional
        Stop after this many seconds (> 0, finite).

    Attributes
    ----------
    stop : ndarray of uint8, shape (1,)
        Set to 1 once the budget ran out or the caller was interrupted; compiled code polls it.
    found : int
        Regions of the depth being made that were known before the current split (set by the
        driver before each split).

    Raises
    ------
    OptionError
        For a ``max_regions`` below 1 or a ``time_limit`` that is not a positive finite number.
    """

    def __init__(self, max_regions=None, time_limit=None):
        if max_regions is not None:
            if isinstance(max_regions, bool) or not isinstance(max_regions, (int, np.integer)):
                raise OptionError(f"max_regions must be an integer, got {max_regions!r}")
            if max_regions < 1:
                raise OptionError(f"max_regions must be at least 1, got {max_regions} (every "
                                  "domain has a region)")
            max_regions = int(max_regions)
        if time_limit is not None:
            try:
                time_limit = float(time_limit)
            except (TypeError, ValueError):
                raise OptionError(f"time_limit must be a number of seconds, got "
                                  f"{time_limit!r}") from None
            if not (np.isfinite(time_limit) and time_limit > 0):
                raise OptionError(f"time_limit must be a positive finite number of seconds, "
                                  f"got {time_limit}")
        self.max_regions = max_regions
        self.time_limit = time_limit
        self.start = time.perf_counter()
        self.deadline = None if time_limit is None else self.start + time_limit
        self.stop = np.zeros(1, dtype=np.uint8)
        self.found = 0
        self.reason: str | None = None

    @property
    def limited(self) -> bool:
        """Whether there is a limit to watch at all."""
        return self.max_regions is not None or self.deadline is not None

    def _exceeded(self, pending: int) -> str | None:
        if self.stop[0]:
            return self.reason or "interrupted"
        if self.max_regions is not None and self.found + pending > self.max_regions:
            return f"more than {self.max_regions} regions"
        if self.deadline is not None and time.perf_counter() > self.deadline:
            return f"time limit of {self.time_limit:g} s reached"
        return None

    def poll(self, pending: int = 0) -> None:
        """Raise :class:`BudgetExceeded` if the budget ran out.

        Parameters
        ----------
        pending : int
            Regions the current split has found so far (added to :attr:`found`).
        """
        reason = self._exceeded(pending)
        if reason is not None:
            self.trip(reason)

    def trip(self, reason: str) -> None:
        """Stop: set the flag compiled code reads and raise :class:`BudgetExceeded`."""
        if self.reason is None:
            self.reason = reason
        self.stop[0] = 1
        raise BudgetExceeded(self.reason)

    def check_stopped(self) -> None:
        """After compiled code returned: raise if it stopped early."""
        if self.stop[0]:
            self.trip(self.reason or "interrupted")

    @contextmanager
    def watching(self, progress: np.ndarray):
        """Watch the clock and ``progress`` (children finished by compiled code, one counter
        per call) from a thread while the block runs, setting :attr:`stop` when the budget runs
        out; an exception in the block (an interrupt) sets it too, so threads still in compiled
        code return at once."""
        done = threading.Event()

        def watch():
            while not done.wait(WATCH_INTERVAL):
                reason = self._exceeded(int(progress.sum()))
                if reason is not None:
                    if self.reason is None:
                        self.reason = reason
                    self.stop[0] = 1
                    return

        watcher = None
        if self.limited:
            watcher = threading.Thread(target=watch, name="powercells-budget", daemon=True)
            watcher.start()
        try:
            yield
        except BaseException:
            if self.reason is None:
                self.reason = "interrupted"
            self.stop[0] = 1
            raise
        finally:
            done.set()
            if watcher is not None:
                watcher.join()

