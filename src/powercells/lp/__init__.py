"""LP backends: HiGHS (default), a compiled dense simplex (the lp engine's default with numba)
and cvxpy (reference), behind one small protocol
(:class:`LPBackend`, in :mod:`.base`), and the registry that names them."""

from __future__ import annotations

from ..errors import OptionError
from .base import Ball, Extreme, LPBackend, LPStatus, PolytopeContext

__all__ = ["BACKENDS", "Ball", "Extreme", "LPBackend", "LPStatus", "PolytopeContext",
           "get_backend", "register_backend"]


def _highs() -> LPBackend:
    from .highs import HighsBackend

    return HighsBackend()


def _dense() -> LPBackend:
    from .dense import DenseBackend

    return DenseBackend()


def _cvxpy() -> LPBackend:
    from .cvxpy_backend import CvxpyBackend

    return CvxpyBackend()


#: Backend name -> factory (imports the solver on first use).
BACKENDS = {"highs": _highs, "dense": _dense, "cvxpy": _cvxpy}


def register_backend(name: str, factory) -> None:
    """Make ``lp=name`` build a backend with ``factory()`` (an :class:`LPBackend`)."""
    if not isinstance(name, str) or not name or name in BACKENDS:
        raise OptionError(f"LP backend name {name!r} is empty or already registered")
    BACKENDS[name] = factory


def get_backend(lp=None) -> LPBackend:
    """The LP backend for ``lp``: None or ``"highs"`` (default), ``"dense"``, ``"cvxpy"``,
    another registered name, or a backend object.

    Raises
    ------
    OptionError
        For an unknown name; the message lists the valid ones.
    """
    if lp is None:
        lp = "highs"
    if isinstance(lp, LPBackend):
        return lp
    if isinstance(lp, str) and lp in BACKENDS:
        return BACKENDS[lp]()
    raise OptionError(f"unknown LP backend {lp!r}; choose one of {', '.join(BACKENDS)}")
