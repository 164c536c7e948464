"""powercells: exact geometry of piecewise-affine deep networks.

Every region of every layer of a ReLU / leaky-ReLU / abs / maxout / max-pool network over an input
domain, as a subdivision tree with closed-form per-region quantities. See SPEC.md for the
mathematics.
"""

from . import (
    approx,  # pc.approx: the approximate tools
    soft_vq,
    testing,  # noqa: F401  (pc.testing: the brute-force oracle for users' tests)
)
from .certificate import check_certificate
from .comparison import Comparison, compare
from .domain import Box, Domain, Neighbourhood, Polytope, Slice, random_directions
from .enumerate import (
    EngineOptions,
    RegionCount,
    SubdivisionTree,
    Tolerances,
    count_regions,
    engine_defaults,
    region_halfspaces,
    stream_leaves,
    subdivide,
)
from .errors import (
    ApproximationError,
    BudgetExceeded,
    CertificateError,
    DomainError,
    GeometryError,
    NetworkError,
    OptionError,
    OutputError,
    PointError,
    PowercellsError,
    PrecisionWarning,
    SolverError,
    UnsupportedLayerError,
    VnnlibError,
)
from .io import load, read_leaves, read_store, save_npz, write_leaves
from .io.onnx import from_onnx
from .io.torch import from_torch
from .io.vnnlib import read_vnnlib
from .network import Layer, Network
from .verification import VerifyResult, verify

__version__ = "0.1.0"

__all__ = [
    "ApproximationError",
    "Box",
    "BudgetExceeded",
    "CertificateError",
    "Comparison",
    "Domain",
    "DomainError",
    "EngineOptions",
    "GeometryError",
    "Layer",
    "Neighbourhood",
    "Network",
    "NetworkError",
    "OptionError",
    "OutputError",
    "PointError",
    "Polytope",
    "PowercellsError",
    "PrecisionWarning",
    "RegionCount",
    "Slice",
    "SolverError",
    "SubdivisionTree",
    "Tolerances",
    "UnsupportedLayerError",
    "VerifyResult",
    "VnnlibError",
    "__version__",
    "approx",
    "check_certificate",
    "compare",
    "count_regions",
    "engine_defaults",
    "from_onnx",
    "from_torch",
    "load",
    "random_directions",
    "read_leaves",
    "read_store",
    "read_vnnlib",
    "region_halfspaces",
    "save_npz",
    "soft_vq",
    "stream_leaves",
    "subdivide",
    "verify",
    "write_leaves",
]
