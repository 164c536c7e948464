"""The approximate tools of region studies, implemented as their authors define them, beside
their exact counterparts.

* :func:`sampling_counts`: distinct activation patterns among N samples of a domain.
* :func:`local_complexity`: the local complexity (LC) of Humayun et al. (ICML 2024);
  :func:`exact_local_complexity`: the exact neuron and region counts it estimates.
* :func:`rugosity_estimate`: the finite-difference rugosity of SPEC §5.6 item 1;
  :func:`rugosity_limit`: its exact small-eps limit from the complex (items 2 and 4).

:func:`powercells.compare` puts exact and approximate side by side.
"""

from ._common import SAMPLING_METHODS, ApproximationError, jacobians, sample_domain
from .complexity import (
    MAX_LINF_DIRECTIONS,
    ExactLocalComplexity,
    LocalComplexity,
    LocalComplexityComparison,
    compare_local_complexity,
    exact_local_complexity,
    local_complexity,
    neurons_meeting,
)
from .rugosity import (
    PERTURBATIONS,
    RugosityEstimate,
    RugosityLimit,
    rugosity_estimate,
    rugosity_limit,
)
from .sampling import SamplingCounts, sampling_counts

__all__ = [
    "MAX_LINF_DIRECTIONS",
    "PERTURBATIONS",
    "SAMPLING_METHODS",
    "ApproximationError",
    "ExactLocalComplexity",
    "LocalComplexity",
    "LocalComplexityComparison",
    "RugosityEstimate",
    "RugosityLimit",
    "SamplingCounts",
    "compare_local_complexity",
    "exact_local_complexity",
    "jacobians",
    "local_complexity",
    "neurons_meeting",
    "rugosity_estimate",
    "rugosity_limit",
    "sample_domain",
    "sampling_counts",
]
