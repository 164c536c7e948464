"""Rugosity (SPEC §5.6): the finite-difference estimator and its exact small-eps limit.

**Which rugosity.** The quantity estimated and computed here is the *first-order* finite
difference of the Jacobian (SPEC §5.6 item 1), the form of the authors' code
(``RandallBalestriero/Hessian``), with a perturbation scale ``eps``:

    R_eps = E_{x ~ U(X), u} || (J_f(x + eps T u) - J_f(x)) T ||_F / eps

where ``J_f`` is the Jacobian of the network's output with respect to the domain's coordinates
(input coordinates for a box or a polytope, the slice coordinates ``t`` for a :class:`Slice`, so
that ``J_f T`` is the *tangent* Jacobian along the slice, SPEC §5.6 item 4 with
``U = directions``), ``T`` is a tangent basis in those coordinates (default: the identity, all
of the domain's directions), and ``u ~ N(0, I_m)`` (``perturbation="gaussian"``) or uniform on
the unit sphere of R^m (``"sphere"``).

For a continuous piecewise-affine f the Hessian vanishes almost everywhere, and ``R_eps`` has a
finite limit as ``eps -> 0`` (SPEC §5.6 item 2, tangent form of item 4):

    R_0 = (1 / vol(X)) sum_{facets F} vol_{d-1}(F) ||(J' - J) T||_F E|<T u, n_F>| ,

with ``n_F`` the unit normal of the facet F between two leaves, ``J' - J = a n_F^T`` the jump of
the Jacobian across it (rank one by continuity, so ``||(J' - J) T||_F = ||a|| ||T^T n_F||``) and
``E|<T u, n>| = ||T^T n|| c_m``, ``c_m = sqrt(2/pi)`` for Gaussian u,
``Gamma(m/2) / (sqrt(pi) Gamma((m+1)/2))`` on the sphere. :func:`rugosity_limit` computes it
from the enumerated complex on 1-D and 2-D domains (segments, planes, neighbourhoods with one or
two directions, in any input dimension).

The squared variant ``||.||_F^2 / eps^2`` diverges like ``1/eps`` for CPA networks (SPEC §5.6
item 3) and is deliberately not offered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, ndtri

from ..domain import Slice
from ._common import (
    ApproximationError,
    check_domain,
    check_network,
    jacobians,
    positive_float,
    positive_int,
    rng_from,
    sample_domain,
)

__all__ = [
    "PERTURBATIONS",
    "RugosityEstimate",
    "RugosityLimit",
    "rugosity_estimate",
    "rugosity_limit",
]

#: Perturbation laws of u.
PERTURBATIONS = ("gaussian", "sphere")


def _abs_projection_mean(m: int, perturbation: str) -> float:
    """``E|<u, e>|`` for a unit vector e of R^m."""
    if perturbation == "gaussian":
        return float(np.sqrt(2.0 / np.pi))
    return float(np.exp(gammaln(m / 2) - gammaln((m + 1) / 2)) / np.sqrt(np.pi))


@dataclass
class RugosityEstimate:
    """The finite-difference rugosity estimate (see the module docstring).

    Attributes
    ----------
    value : float
        ``R_eps``, the sample mean.
    stderr : float
        Its standard error (sample standard deviation / sqrt(N)); for Sobol points an upper
        estimate, the i.i.d. formula.
    eps : float
    n_samples : int
    crossings : int
        Samples whose perturbed point lies in another region (the only ones that contribute).
    perturbation, sampling : str
    """

    value: float
    stderr: float
    eps: float
    n_samples: int
    crossings: int
    perturbation: str
    sampling: str

    def as_dict(self) -> dict:
        return {"value": self.value, "stderr": self.stderr, "eps": self.eps,
                "n_samples": self.n_samples, "crossings": self.crossings,
                "perturbation": self.perturbation, "sampling": self.sampling}


@dataclass
class RugosityLimit:
    """The exact ``eps -> 0`` limit of the rugosity estimator.

    Attributes
    ----------
    value : float
    facets : int
        Interior facets (knots in 1-D, edges in 2-D) between two leaves.
    volume : float
        vol(X) in the domain's coordinates.
    slivers : int
        Cells the engine set aside as slivers: their facets are missing from the sum (reported,
        never silently dropped).
    perturbation : str
    """

    value: float
    facets: int
    volume: float
    slivers: int
    perturbation: str

    def as_dict(self) -> dict:
        return {"value": self.value, "facets": self.facets, "volume": self.volume,
                "slivers": self.slivers, "perturbation": self.perturbation}


def _tangent(domain, tangent) -> np.ndarray:
    k = domain.dim
    if tangent is None:
        return np.eye(k)
    try:
        T = np.asarray(tangent, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ApproximationError(f"tangent is not numeric ({exc})") from None
    if T.ndim == 1:
        T = T[:, None]
    if T.ndim != 2 or T.shape[0] != k or T.shape[1] == 0 or not np.all(np.isfinite(T)):
        raise ApproximationError(f"tangent must be a finite array of shape ({k}, m), in the "
                                 f"domain's coordinates, got shape {np.shape(tangent)}")
    return T


def _perturbation(perturbation: str) -> str:
    if perturbation not in PERTURBATIONS:
        raise ApproximationError(f"unknown perturbation {perturbation!r}; choose one of "
                                 f"{', '.join(PERTURBATIONS)}")
    return perturbation


def _input_frame(domain) -> np.ndarray:
    """The linear part of the map from domain coordinates to input coordinates."""
    return domain.directions if isinstance(domain, Slice) else np.eye(domain.dim)


def rugosity_estimate(network, domain, *, eps, n_samples, seed=None, tangent=None,
                      perturbation: str = "gaussian", sampling: str = "random",
                      chunk: int = 1 << 16) -> RugosityEstimate:
    """The finite-difference rugosity estimate ``R_eps`` (SPEC §5.6 item 1; tangent form, item
    4, on slices or with ``tangent``).

    Parameters
    ----------
    network : Network
    domain : Domain or (lo, hi) or (A, b)
    eps : float
        Perturbation scale (> 0).
    n_samples : int
        N, points x drawn uniformly in the domain, each with one perturbation u.
    seed : int, numpy Generator or None
    tangent : array_like, shape (k, m), optional
        Tangent basis T in the domain's coordinates (default: the identity).
    perturbation : {"gaussian", "sphere"}
        The law of u in R^m.
    sampling : {"random", "sobol"}
        ``"random"``: i.i.d. x and u, the authors' Monte Carlo. ``"sobol"``: x and u from one
        scrambled Sobol sequence of dimension k + m (randomised quasi-Monte Carlo: the same
        expectation, a smaller error for the same N).
    chunk : int
        Points handled at a time.

    Returns
    -------
    RugosityEstimate

    Raises
    ------
    ApproximationError
        For a non-positive eps or N, an unknown perturbation or sampling, a malformed tangent.

    Notes
    -----
    Only samples whose perturbed point has another activation pattern contribute (the Jacobian
    is a function of the code path), so the cost is one forward pass per point plus a Jacobian
    per crossing sample. The network is evaluated at input points ``x`` (the slice is not
    folded in): this is the estimator as the authors run it.
    """
    network = check_network(network)
    domain = check_domain(network, domain)
    eps = positive_float(eps, "eps")
    n = positive_int(n_samples, "n_samples")
    chunk = positive_int(chunk, "chunk")
    perturbation = _perturbation(perturbation)
    if sampling not in ("random", "sobol"):
        raise ApproximationError(f"unknown sampling {sampling!r}; choose random or sobol")
    T = _tangent(domain, tangent)
    k, m = T.shape
    rng = rng_from(seed)
    frame = _input_frame(domain) @ T                 # (d, m): d x / d u
    if sampling == "sobol":
        from scipy.stats import qmc

        inner = domain.inner if isinstance(domain, Slice) else domain
        if not hasattr(inner, "lo"):
            raise ApproximationError("sobol sampling of the rugosity needs a box (or a slice of "
                                     "a box); use sampling='random'")
        U = qmc.Sobol(k + m, scramble=True, seed=rng).random(n)
        U = np.clip(U, 1e-16, 1 - 1e-16)
        points = inner.lo + U[:, :k] * (inner.hi - inner.lo)
        u = ndtri(U[:, k:])
        if perturbation == "sphere":
            raise ApproximationError("sobol sampling draws Gaussian perturbations only")
    else:
        points = sample_domain(domain, n, method="random", seed=rng)
        u = rng.standard_normal((n, m))
        if perturbation == "sphere":
            u /= np.linalg.norm(u, axis=1, keepdims=True)
    total = total_sq = 0.0
    crossings = 0
    for lo in range(0, n, chunk):
        X = domain.to_input(points[lo:lo + chunk])
        X2 = X + eps * (u[lo:lo + chunk] @ frame.T)
        c1 = network.codes(X)
        c2 = network.codes(X2)
        moved = np.any(np.hstack(c1) != np.hstack(c2), axis=1)
        if not moved.any():
            continue
        J1 = jacobians(network, X[moved], [c[moved] for c in c1])
        J2 = jacobians(network, X2[moved], [c[moved] for c in c2])
        vals = np.linalg.norm((J2 - J1) @ frame, axis=(1, 2)) / eps
        total += float(vals.sum())
        total_sq += float(vals @ vals)
        crossings += int(moved.sum())
    mean = total / n
    var = max(total_sq / n - mean * mean, 0.0) * n / max(n - 1, 1)
    return RugosityEstimate(mean, float(np.sqrt(var / n)), eps, n, crossings, perturbation,
                            sampling)


def rugosity_limit(network, domain=None, *, tangent=None, perturbation: str = "gaussian",
                   tree=None, engine: str = "auto", tol=None) -> RugosityLimit:
    """The exact ``eps -> 0`` limit of :func:`rugosity_estimate`, from the enumerated complex
    (SPEC §5.6 items 2 and 4).

    Parameters
    ----------
    network : Network
    domain : Domain or (lo, hi) or (A, b), optional
        A 1-D or 2-D domain: a segment or box of a 1- or 2-input network, a :class:`Slice`, a
        :class:`Neighbourhood` with one or two directions. Not needed with ``tree``.
    tangent, perturbation
        As for :func:`rugosity_estimate`.
    tree : SubdivisionTree, optional
        A subdivision of the domain by the interval or planar engine, to reuse.
    engine, tol
        As for :func:`powercells.subdivide` (``"auto"`` picks the LP-free engines).

    Returns
    -------
    RugosityLimit

    Raises
    ------
    ApproximationError
        If the domain has more than two dimensions (facet volumes are computed from intervals
        and polygons; take a slice), or for an unknown perturbation or a malformed tangent.
    """
    network = check_network(network)
    perturbation = _perturbation(perturbation)
    if tree is None:
        from ..enumerate import subdivide

        if domain is None:
            raise ApproximationError("give a domain or a tree")
        domain = check_domain(network, domain)
        if domain.dim > 2:
            raise ApproximationError(
                f"the exact rugosity limit is computed on 1-D and 2-D domains; this one has "
                f"dimension {domain.dim} (take a Slice or a Neighbourhood with 1 or 2 directions)")
        tree = subdivide(network, domain, engine=engine, tol=tol)
    domain = tree.domain
    if domain.dim > 2:
        raise ApproximationError(f"the exact rugosity limit is computed on 1-D and 2-D domains; "
                                 f"this tree's domain has dimension {domain.dim}")
    T = _tangent(domain, tangent)
    c_m = _abs_projection_mean(T.shape[1], perturbation)
    A, _ = tree.affine_maps()                        # (leaves, K_L, k): Jacobians in t
    if domain.dim == 1:
        lo, hi = tree.intervals()
        order = np.argsort(lo)
        lo, hi, A = lo[order], hi[order], A[order]
        glue = np.isclose(hi[:-1], lo[1:], rtol=0, atol=tree.tolerances.empty)
        jump = (A[1:] - A[:-1])[glue]                # (facets, K_L, 1)
        normal = np.ones((len(jump), 1))
        size = np.ones(len(jump))
        root = tree.levels[0].intervals
        volume = float(root[0, 1] - root[0, 0])
    else:
        mesh = tree.mesh()
        inner = mesh.edge_faces[:, 1] >= 0
        edges, faces = mesh.edges[inner], mesh.edge_faces[inner]
        vec = mesh.vertices[edges[:, 1]] - mesh.vertices[edges[:, 0]]
        size = np.linalg.norm(vec, axis=1)
        normal = np.stack([-vec[:, 1], vec[:, 0]], axis=1) / size[:, None]
        jump = A[faces[:, 1]] - A[faces[:, 0]]
        volume = float(tree.levels[0].polygons.area_perimeter()[0][0])
    tangential = np.linalg.norm(normal @ T, axis=1)   # ||T^T n||
    jump_norm = np.linalg.norm(jump @ T, axis=(1, 2)) if len(jump) else np.empty(0)
    value = float(np.sum(size * jump_norm * tangential) * c_m / volume)
    return RugosityLimit(value, len(jump), volume, len(tree.slivers), perturbation)
