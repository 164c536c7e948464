"""Engine switches for tests: the vertex engine's compiled and numpy paths."""

import importlib.util

from powercells.enumerate import engine_defaults

__all__ = ["VERTEX_PATHS", "engine_defaults"]

#: ``compiled`` values to test: the numpy path always, the compiled one when numba is there
VERTEX_PATHS = [False] + ([True] if importlib.util.find_spec("numba") else [])
