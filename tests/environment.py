"""Environment switches for tests: the vertex engine's compiled and numpy paths."""

import importlib.util

from powercells.testing import environment as env

__all__ = ["VERTEX_PATHS", "env"]

#: ``POWERCELLS_JIT`` values to test: the numpy path always, the compiled one when numba is there
VERTEX_PATHS = ["0"] + (["1"] if importlib.util.find_spec("numba") else [])
