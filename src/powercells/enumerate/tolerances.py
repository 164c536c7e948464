"""Explicit, scale-aware tolerances (SPEC §5.5, §8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import OptionError

__all__ = ["Tolerances"]


@dataclass(frozen=True)
class Tolerances:
    """Thresholds that decide what is a region.

    Parameters
    ----------
    region : float, optional
        tau: a cell is a region iff its inradius is > tau. Default ``1e-9 * diameter`` of the
        domain (the diagonal of its bounding box), as in SPEC §5.5.
    empty : float, optional
        The resolution of the engines that decide by the signs of a cell's vertices (planar,
        vertex, interval): a vertex within ``empty`` of a hyperplane is taken as on it. Such a
        decision is never final: a cell where it happened is re-examined in exact arithmetic
        (:class:`~powercells.enumerate.base.SplitDoubts`), and a piece of inradius <= ``region``
        is set aside and settled exactly, so cells thinner than ``empty`` are still found (thin
        regions). The geometry tools (adjacency, bends, boundaries) use it as their geometric
        tolerance. Default ``1e-3 * region``.
    zero : float
        Relative tolerance for exact cancellation: a unit whose pulled-back gradient has norm
        <= ``zero`` times the size of the terms that produced it is constant on the cell (duplicate
        or dead units); a constant <= ``zero`` times its terms is an exact zero, i.e. inactive
        (SPEC §1.3). Default 1e-12.

    Raises
    ------
    OptionError
        If a value is not finite, negative, or ``empty > region`` (on :meth:`resolve`).
    """

    region: float | None = None
    empty: float | None = None
    zero: float = 1e-12

    def scaled(self, exp: int) -> Tolerances:
        """The tolerances in coordinates ``x / 2**exp`` (the given values times ``2**-exp``;
        ``zero`` is relative and stays)."""
        if exp == 0:
            return self
        region = None if self.region is None else np.ldexp(_finite(self.region, "region"), -exp)
        empty = None if self.empty is None else np.ldexp(_finite(self.empty, "empty"), -exp)
        return Tolerances(region=None if region is None else float(region),
                          empty=None if empty is None else float(empty), zero=self.zero)

    def resolve(self, diameter: float) -> Tolerances:
        """Absolute values for a domain of the given diameter.

        Raises
        ------
        OptionError
            If a value is not a finite number, ``region`` is not positive, ``empty`` or
            ``zero`` is negative, ``zero >= 1`` or ``empty > region``.
        """
        region = 1e-9 * diameter if self.region is None else _finite(self.region, "region")
        empty = 1e-3 * region if self.empty is None else _finite(self.empty, "empty")
        zero = _finite(self.zero, "zero")
        if not region > 0 or empty < 0 or zero < 0:
            raise OptionError(
                f"tolerances must be positive: region={region}, empty={empty}, zero={zero}")
        if zero >= 1:
            raise OptionError(f"the zero tolerance is relative and must be below 1, got {zero}")
        if empty > region:
            raise OptionError(
                f"the empty tolerance {empty} exceeds the region tolerance {region}")
        return Tolerances(region=region, empty=empty, zero=zero)


def _finite(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"the {name} tolerance must be a number, got {value!r}") from None
    if not np.isfinite(value):
        raise OptionError(f"the {name} tolerance must be a finite number, got {value}")
    return value
