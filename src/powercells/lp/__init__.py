"""LP backends: HiGHS (default) and cvxpy (reference), behind one small protocol."""

from .base import BACKENDS, Ball, ChebyshevContext, LPBackend, LPStatus, get_backend

__all__ = ["BACKENDS", "Ball", "ChebyshevContext", "LPBackend", "LPStatus", "get_backend"]
