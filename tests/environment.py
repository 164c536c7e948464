"""Engine switches for tests: the compiled and numpy paths of the vertex and planar engines."""

import importlib.util

from powercells.enumerate import engine_defaults

__all__ = ["VERTEX_PATHS", "both_paths", "engine_defaults"]

#: ``compiled`` values to test: the numpy path always, the compiled one when numba is there
VERTEX_PATHS = [False] + ([True] if importlib.util.find_spec("numba") else [])


def both_paths(fn):
    """``fn()`` on the compiled path and on the numpy path."""
    with engine_defaults(compiled=True):
        compiled = fn()
    with engine_defaults(compiled=False):
        plain = fn()
    return compiled, plain
