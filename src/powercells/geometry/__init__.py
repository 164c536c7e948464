"""Closed-form geometry of regions (volumes now; power diagrams, bends and maps to come)."""

from .volume import polytope_volume

__all__ = ["polytope_volume"]
