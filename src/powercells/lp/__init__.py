"""LP backends: HiGHS (default) and cvxpy (reference), behind one small protocol."""

from .base import (
           BACKENDS,
           Ball,
           Extreme,
           LPBackend,
           LPStatus,
           PolytopeContext,
           get_backend,
)

__all__ = ["BACKENDS", "Ball", "Extreme", "LPBackend", "LPStatus", "PolytopeContext",
           "get_backend"]
