"""The scale of a question: what float64 can answer, and the coordinates engines work in.

Counting is exact at any scale: the engines split by :meth:`Network.balanced` (every unit
scaled by a power of two) in coordinates ``t = x / 2**exp`` with the domain about 1 wide
(:func:`engine_exponent`, :class:`ScaledDomain`), and their points and radii map back to ``x``
exactly (:func:`to_input_units`). What remains out of reach is refused by name: domains and
tolerances float64 cannot resolve (:func:`check_domain_scale`, :func:`check_tolerance_scale`),
and geometry computed from the network's own values when these leave float64's range
(:func:`check_value_scale`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import DomainError, GeometryError, OptionError
from ..geometry.polygons import Polygons
from .base import Split
from .tolerances import Tolerances

__all__ = ["MAX_COORDINATE", "MIN_DIAMETER", "RESOLUTION_FACTOR", "VALUE_MAX_EXPONENT",
           "ScaledDomain", "check_domain_scale", "check_tolerance_scale", "check_value_scale",
           "engine_exponent", "scaled_polygons", "to_input_units"]


#: Domains reach at most this far from the origin (their coordinates and diameter stay finite
#: through the engines' arithmetic, which works at the domain's own scale).
MAX_COORDINATE = 1e300

#: ... and are at least this wide: float64's smallest normal number (below it, coordinates
#: lose their significant bits).
MIN_DIAMETER = float(np.finfo(np.float64).tiny)

#: Domains whose diameter's binary exponent is within this of 0 are enumerated in their own
#: coordinates; others at the scale 2**exponent (see engine_exponent).
_SCALE_FREE_EXPONENT = 10


#: Past this binary exponent (about 1e120), a network's own values (a unit's output, a node's
#: affine map) or a domain's coordinates are too large or too small for the quantities computed
#: from them, whose products and squares leave float64's range (see check_value_scale).
VALUE_MAX_EXPONENT = 400


def check_value_scale(network, domain, what: str) -> None:
    """Refuse, by name, geometry and estimates that compute with the network's own values or
    the domain's coordinates when these are of extreme magnitude (counts are exact at any
    scale: engines work on the balanced network at the domain's own scale; affine maps,
    Lipschitz constants, volumes, meshes, bends and rugosity are computed from the network as
    given, where a unit of 1e300 overflows).

    Raises
    ------
    GeometryError
    """
    e_net = network.magnitude()
    if e_net > VALUE_MAX_EXPONENT:
        raise GeometryError(
            f"cannot compute {what} from this network's own values: some of its units are "
            f"about 2^{e_net} (1e{int(e_net * 0.30103)}) times larger or smaller than their "
            "inputs, and float64 cannot hold the products; the counts (powercells count, "
            "count_regions, subdivide) are exact at any scale: for this, rescale the weights "
            "(a unit's row times c > 0 and the next layer's column divided by c change no "
            "region)")
    for value, name in ((_reach(domain), "its distance from the origin"),
                        (domain.diameter, "its width")):
        e = int(np.frexp(value)[1]) if value > 0 else 0
        if abs(e) > VALUE_MAX_EXPONENT:
            raise GeometryError(
                f"cannot compute {what} in this domain's coordinates: {name} is "
                f"{value:.3g}, and float64 cannot hold their products; the counts are exact "
                "at any scale: for this, rescale the inputs (fold the scale into the first "
                "layer)")


def engine_exponent(domain) -> int:
    """``exp`` such that engines work in ``t = x / 2**exp`` with a diameter in [1, 2): 0 for
    domains about 1e-3 to 1e3 wide, whose arithmetic is left as it is."""
    e = int(np.frexp(domain.diameter)[1])           # diameter in [2**(e-1), 2**e)
    return 0 if abs(e) <= _SCALE_FREE_EXPONENT else e - 1


class ScaledDomain:
    """What an engine reads of a domain (halfspaces, bounds, Chebyshev ball, dimension,
    diameter), in coordinates ``t = x / 2**exp``: every number times a power of two, exactly."""

    def __init__(self, domain, exp: int):
        H, h = domain.halfspaces()
        self._H, self._h = H, np.ldexp(h, -exp)
        lo, hi = domain.bounds()
        self._lo, self._hi = np.ldexp(lo, -exp), np.ldexp(hi, -exp)
        c, r = domain.chebyshev
        self.chebyshev = (np.ldexp(np.asarray(c, dtype=np.float64), -exp),
                          float(np.ldexp(r, -exp)))
        self.dim = domain.dim
        self.diameter = float(np.ldexp(domain.diameter, -exp))

    def halfspaces(self):
        return self._H, self._h

    def bounds(self):
        return self._lo, self._hi


def scaled_polygons(polys, exp: int):
    """Polygons times ``2**exp`` (exact)."""
    return Polygons(np.ldexp(polys.xy, exp), polys.start)


def to_input_units(res: Split, exp: int) -> Split:
    """A split's points, radii, polygons and intervals from engine coordinates to x (new
    arrays: the engine's batch keeps its own)."""
    sl = res.slivers
    return dataclasses.replace(
        res, center=np.ldexp(res.center, exp), radius=np.ldexp(res.radius, exp),
        cells=None if res.cells is None else (np.ldexp(res.cells, exp)
                                              if isinstance(res.cells, np.ndarray)
                                              else scaled_polygons(res.cells, exp)),
        slivers=dataclasses.replace(sl, center=np.ldexp(sl.center, exp),
                                    radius=np.ldexp(sl.radius, exp)))

#: A region tolerance must exceed float64's spacing at the domain's coordinates by this factor:
#: below it, rounding in the coordinates alone decides what is a region.
RESOLUTION_FACTOR = 1024


def _reach(domain) -> float:
    """The largest absolute coordinate of the domain's bounding box."""
    lo, hi = domain.bounds()
    return float(max(np.max(np.abs(lo)), np.max(np.abs(hi))))


def check_domain_scale(domain) -> None:
    """Refuse, by name, a domain float64 cannot enumerate.

    Raises
    ------
    DomainError
        If the domain reaches beyond :data:`MAX_COORDINATE` or is narrower than
        :data:`MIN_DIAMETER`.
    """
    reach, diameter = _reach(domain), domain.diameter
    if not reach <= MAX_COORDINATE:
        raise DomainError(f"{domain!r} reaches {reach:.3g} from the origin; engines handle "
                          f"domains within {MAX_COORDINATE:g} of it: rescale the inputs, e.g. "
                          "fold the scale into the first layer")
    if not diameter >= MIN_DIAMETER:
        raise DomainError(f"{domain!r} is {diameter:.3g} wide; engines handle domains at least "
                          f"{MIN_DIAMETER:.3g} wide (float64's smallest normal number): rescale "
                          "the inputs")


def check_tolerance_scale(domain, tol: Tolerances) -> None:
    """Refuse, by name, a region tolerance float64 cannot honour on this domain.

    Raises
    ------
    OptionError
        If the region tolerance is not above float64's resolution at the domain's coordinates,
        or not below the domain's inradius (no cell could then be a region).
    """
    scale = max(_reach(domain), domain.diameter)
    resolution = RESOLUTION_FACTOR * float(np.spacing(scale))
    if not tol.region > resolution:
        raise OptionError(
            f"the region tolerance {tol.region:.3g} is not above float64's resolution on this "
            f"domain ({resolution:.3g} = {RESOLUTION_FACTOR} x the spacing of floats at "
            f"{scale:.3g}): regions that thin cannot be told from rounding; give a larger "
            "tolerance, or shift the inputs so that the domain lies near the origin")
    radius = float(domain.chebyshev[1])
    if not tol.region < radius:
        raise OptionError(f"the region tolerance {tol.region:.3g} is not below the domain's "
                          f"inradius {radius:.3g}: no cell could be a region")
