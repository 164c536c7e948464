"""powercells: exact geometry of piecewise-affine deep networks.

Every region of every layer of a ReLU / leaky-ReLU / abs / maxout / max-pool network over an input
domain, as a subdivision tree with closed-form per-region quantities. See SPEC.md for the
mathematics.
"""

from .domain import Box, Domain, Neighbourhood, Polytope, Slice, random_directions
from .enumerate import (
    RegionCount,
    SubdivisionTree,
    Tolerances,
    count_regions,
    region_halfspaces,
    stream_leaves,
    subdivide,
)
from .errors import (
    BudgetExceeded,
    DomainError,
    NetworkError,
    PointError,
    PowercellsError,
    SolverError,
    UnsupportedLayerError,
)
from . import testing  # noqa: F401  (pc.testing: the brute-force oracle for users' tests)
from .io import load, read_leaves, save_npz, write_leaves
from .io.onnx import from_onnx
from .io.torch import from_torch
from .io.vnnlib import read_vnnlib
from .verify import VerifyResult, verify
from . import approx  # pc.approx: the approximate tools (issue 6)
from .approx import ApproximationError
from .compare import Comparison, compare
from .network import Layer, Network

__version__ = "0.1.0"

__all__ = [
    "Box", "Domain", "Polytope", "Slice", "Neighbourhood", "random_directions",
    "RegionCount", "SubdivisionTree", "Tolerances", "count_regions", "region_halfspaces",
    "subdivide", "stream_leaves", "write_leaves", "read_leaves",
    "BudgetExceeded", "DomainError", "NetworkError", "PointError", "PowercellsError",
    "SolverError", "UnsupportedLayerError",
    "load", "save_npz", "from_onnx", "from_torch", "read_vnnlib", "verify", "VerifyResult",
    "Layer", "Network",
    "approx", "ApproximationError", "Comparison", "compare",
    "__version__",
]
