"""Interrupts deferred across the few steps that must not be cut in half.

Renaming a finished output into place and removing a temporary folder and its lock are short,
but an interrupt (``Ctrl-C``, or SIGTERM, which the CLI turns into one) landing in the middle
would leave a lock file, a half-removed folder, or report "nothing written" for an output that
was. The CLI's signal handlers call :func:`interrupt`, which raises at once unless such a step
is running; then the interrupt is raised when the step ends (:func:`deferred`). Signal handlers
run in the main thread only, so a module-level counter is enough.
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["deferred", "interrupt"]

_depth = 0
_pending: BaseException | None = None


@contextmanager
def deferred():
    """Hold interrupts raised through :func:`interrupt` until the block ends."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            exc, _pending = _pending, None
            raise exc


def interrupt(exc: BaseException) -> None:
    """Raise ``exc`` now, or when the running :func:`deferred` block ends."""
    global _pending
    if _depth:
        if _pending is None:
            _pending = exc
        return
    raise exc
