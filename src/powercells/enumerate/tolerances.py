"""Explicit, scale-aware tolerances (SPEC §5.5, §8)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PowercellsError

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
        A cell whose inradius is <= this is treated as having no interior: it touches its
        neighbours only along a lower-dimensional set (SPEC §3.4) and is not reported. Cells with
        ``empty < inradius <= region`` are *slivers*: reported beside the regions, never counted
        and never silently dropped. Default ``1e-3 * region``.
    zero : float
        Relative tolerance for exact cancellation: a unit whose pulled-back gradient has norm
        <= ``zero`` times the size of the terms that produced it is constant on the cell (duplicate
        or dead units); a constant <= ``zero`` times its terms is an exact zero, i.e. inactive
        (SPEC §1.3). Default 1e-12.

    Raises
    ------
    PowercellsError
        If a value is negative or ``empty > region``.
    """

    region: float | None = None
    empty: float | None = None
    zero: float = 1e-12

    def resolve(self, diameter: float) -> Tolerances:
        """Absolute values for a domain of the given diameter."""
        region = 1e-9 * diameter if self.region is None else float(self.region)
        empty = 1e-3 * region if self.empty is None else float(self.empty)
        if region <= 0 or empty < 0 or self.zero < 0:
            raise PowercellsError(
                f"tolerances must be positive: region={region}, empty={empty}, zero={self.zero}"
            )
        if empty > region:
            raise PowercellsError(
                f"the empty tolerance {empty} exceeds the region tolerance {region}")
        return Tolerances(region=region, empty=empty, zero=self.zero)
