"""Environment switches for tests: the vertex engine's compiled and numpy paths."""

import contextlib
import importlib.util
import os

#: ``POWERCELLS_JIT`` values to test: the numpy path always, the compiled one when numba is there
VERTEX_PATHS = ["0"] + (["1"] if importlib.util.find_spec("numba") else [])


@contextlib.contextmanager
def env(**values):
    """Set environment variables for the block, then restore them."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
