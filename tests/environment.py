"""Engine switches for tests: the compiled and numpy paths of the vertex and planar engines."""

import importlib.util

from powercells.enumerate import engine_defaults

__all__ = ["VERTEX_PATHS", "both_paths", "counted_kernel_loads", "engine_defaults"]

#: ``compiled`` values to test: the numpy path always, the compiled one when numba is there
VERTEX_PATHS = [False] + ([True] if importlib.util.find_spec("numba") else [])


def both_paths(fn):
    """``fn()`` on the compiled path and on the numpy path."""
    with engine_defaults(compiled=True):
        compiled = fn()
    with engine_defaults(compiled=False):
        plain = fn()
    return compiled, plain


def counted_kernel_loads(monkeypatch, engine_module, kernel_module: str, kernel):
    """Make the engine of ``engine_module`` load its compiled kernel as in a fresh process, with
    every load recorded in the list returned (``kernel`` stands in for the import of
    ``kernel_module``). ``KERNEL_AFTER`` chooses when a job loads it."""
    import sys

    loads = []

    def counting_loader():
        loads.append(True)
        return kernel

    monkeypatch.setattr(engine_module, "_load_kernel", counting_loader)
    monkeypatch.delitem(sys.modules, kernel_module)
    return loads
