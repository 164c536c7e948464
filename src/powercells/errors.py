"""The exception hierarchy of powercells.

Every error the library raises on purpose derives from :class:`PowercellsError`, so a caller can
catch the package's errors with one ``except`` clause and let programming errors through.
"""

from __future__ import annotations

__all__ = [
    "ApproximationError",
    "BudgetExceeded",
    "CertificateError",
    "DomainError",
    "GeometryError",
    "NetworkError",
    "OptionError",
    "OutputError",
    "PointError",
    "PowercellsError",
    "PrecisionWarning",
    "SolverError",
    "UnsupportedLayerError",
    "VnnlibError",
]


class PowercellsError(Exception):
    """Base class of every error raised by powercells."""


class CertificateError(PowercellsError, ValueError):
    """A certificate of a certified count that does not verify (the message names the first
    record that fails and why), or a file that is not a certificate."""


class NetworkError(PowercellsError, ValueError):
    """A network is malformed: non-finite weights, shapes that do not chain, bad metadata."""


class UnsupportedLayerError(NetworkError):
    """A layer or activation is not a max-affine spline (not convex piecewise-affine), e.g.
    a sigmoid or a leaky ReLU with slope > 1."""


class DomainError(PowercellsError, ValueError):
    """An input domain is malformed, empty, lower-dimensional, unbounded, or of the wrong
    dimension for the network."""


class GeometryError(PowercellsError, ValueError):
    """A geometry or export routine (adjacency, bends, decision boundary, volumes, exports) got a
    bad argument: a layer outside the tree, an unknown method, a partial tree, a
    non-integer sample size, an unusable output folder."""


class VnnlibError(PowercellsError, ValueError):
    """A VNN-LIB property that cannot be read: unreadable or binary file, bad syntax, unknown
    names, non-linear terms, numbers float64 cannot hold, or an expansion past its limit."""


class OptionError(PowercellsError, ValueError):
    """An option or parameter has a value the library cannot honour: a tolerance that is not a
    positive finite number, a budget below 1, a sample count past its limit. The message names
    the option and the value."""


class ApproximationError(PowercellsError, ValueError):
    """A parameter of an approximate tool or a comparison is invalid (sample sizes, eps,
    radius, number of directions), or the exact counterpart cannot be computed for the domain
    (for instance the exact rugosity limit in more than two dimensions)."""


class OutputError(PowercellsError, OSError):
    """An output file or folder cannot be written: its parent is missing or unwritable, it
    exists and is not ours to replace, or another powercells process is writing it."""


class PointError(PowercellsError, ValueError):
    """A query point has the wrong shape or non-finite entries."""


class SolverError(PowercellsError, RuntimeError):
    """An LP backend failed to return a usable answer (numerical failure, unexpected status)."""


class BudgetExceeded(PowercellsError):
    """An enumeration budget (regions or seconds) ran out. Raised only internally; the driver
    turns it into a partial result."""


class PrecisionWarning(UserWarning):
    """An engine met a configuration its floating-point arithmetic cannot settle within the
    tolerances (e.g. a hyperplane grazing an edge of a vertex-engine cell); the result may be
    off there. ``engine="auto"`` reruns such cases with the ``lp`` engine where it can."""
