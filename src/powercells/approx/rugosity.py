"""Rugosity (SPEC §5.6): the finite-difference estimator and its exact small-eps limit.

**Which rugosity.** The quantity estimated and computed here is the *first-order* finite
difference of the Jacobian (SPEC §5.6 item 1), the form of the authors' code
(``RandallBalestriero/Hessian``), with a perturbation scale ``eps``:

    R_eps = E_{x ~ U(X), u} || (J_f(x + eps T u) - J_f(x)) T ||_F / eps

where ``J_f`` is the Jacobian of the network's output with respect to the domain's coordinates
(input coordinates for a box or a polytope, the slice coordinates ``t`` for a :class:`Slice`),
``T`` is a tangent basis in those coordinates and ``u ~ N(0, I_m)``
(``perturbation="gaussian"``) or uniform on the unit sphere of R^m (``"sphere"``). x is uniform
in the domain (on a slice: uniform on the piece of the line or plane).

The default ``T``:

* on a box or a polytope, the identity: SPEC §5.6 items 1-2, the full rugosity;
* on a :class:`Slice` (and a :class:`Neighbourhood`), ``T = R^{-1}`` where
  ``directions = Q R`` (QR): the input-space perturbation is then ``eps Q u`` and the metric
  ``||(J' - J) Q||_F`` with ``Q`` an orthonormal basis of the slice's span, which is SPEC §5.6
  item 4 with ``U = Q``. The value depends on the slice's line or plane and its extent only,
  not on how it is parametrised (``Slice.through_points`` gives directions that are neither
  unit nor orthogonal). On a neighbourhood the directions are orthonormal and ``Q`` is them.

A ``tangent`` given by the caller is used as is, in the domain's coordinates: the input-space
tangent vectors are then ``directions @ T`` on a slice (``T`` on a box), and the value is item 4
with ``U = directions @ T`` only when those columns are orthonormal (otherwise it scales with
them: ``T = 2`` on a segment multiplies the value by 4).

For a continuous piecewise-affine f the Hessian vanishes almost everywhere, and ``R_eps`` has a
finite limit as ``eps -> 0`` (SPEC §5.6 item 2, tangent form of item 4):

    R_0 = (1 / vol(X)) sum_{facets F} vol_{d-1}(F) ||(J' - J) T||_F E|<T u, n_F>| ,

with ``n_F`` the unit normal of the facet F between two leaves, ``J' - J = a n_F^T`` the jump of
the Jacobian across it (rank one by continuity, so ``||(J' - J) T||_F = ||a|| ||T^T n_F||``) and
``E|<T u, n>| = ||T^T n|| c_m``, ``c_m = sqrt(2/pi)`` for Gaussian u,
``Gamma(m/2) / (sqrt(pi) Gamma((m+1)/2))`` on the sphere. :func:`rugosity_limit` computes it
from the enumerated complex: on 1-D and 2-D domains (segments, planes, neighbourhoods with one or
two directions, in any input dimension) from the intervals or the planar mesh, above from the
LP facet adjacency and the facets' volumes.

The squared variant ``||.||_F^2 / eps^2`` diverges like ``1/eps`` for CPA networks (SPEC §5.6
item 3) and is deliberately not offered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..domain import Slice
from ..enumerate.scale import check_value_scale
from ._common import (
    ApproximationError,
    check_domain,
    check_network,
    check_sample_size,
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

def _special():
    """scipy.special, imported on first use (a fifth of a second that every CLI call and
    worker process would pay otherwise)."""
    import scipy.special

    return scipy.special

PERTURBATIONS = ("gaussian", "sphere")


def _abs_projection_mean(m: int, perturbation: str) -> float:
    """``E|<u, e>|`` for a unit vector e of R^m."""
    if perturbation == "gaussian":
        return float(np.sqrt(2.0 / np.pi))
    return float(np.exp(_special().gammaln(m / 2) - _special().gammaln((m + 1) / 2)) / np.sqrt(np.pi))


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
    """The tangent basis T in the domain's coordinates (see the module docstring): the caller's,
    or by default the identity on a box and ``R^{-1}`` (``directions = Q R``) on a slice, so
    that ``directions @ T = Q`` is orthonormal."""
    k = domain.dim
    if tangent is None:
        if isinstance(domain, Slice):
            _, R = np.linalg.qr(domain.directions)
            return np.linalg.inv(R)
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


def _sampling(domain, sampling: str, perturbation: str) -> str:
    """Check the ``sampling`` of :func:`rugosity_estimate` against the domain and perturbation
    (before anything is computed)."""
    if sampling not in ("random", "sobol"):
        raise ApproximationError(f"unknown rugosity sampling {sampling!r}; choose random or sobol")
    if sampling == "sobol":
        inner = domain.inner if isinstance(domain, Slice) else domain
        if not hasattr(inner, "lo"):
            raise ApproximationError("sobol sampling of the rugosity needs a box (or a slice of "
                                     "a box); use sampling='random'")
        if perturbation == "sphere":
            raise ApproximationError("sobol sampling draws Gaussian perturbations only; use "
                                     "sampling='random' with perturbation='sphere'")
    return sampling


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
        Tangent basis T in the domain's coordinates (default: the identity on a box, an
        orthonormal basis of the span on a slice; see the module docstring).
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
    check_value_scale(network, domain, "the rugosity estimate (Jacobians)")
    eps = positive_float(eps, "eps")
    n = positive_int(n_samples, "n_samples")
    chunk = positive_int(chunk, "chunk")
    perturbation = _perturbation(perturbation)
    sampling = _sampling(domain, sampling, perturbation)
    T = _tangent(domain, tangent)
    k, m = T.shape
    check_sample_size(n, k + m, "n_samples")
    rng = rng_from(seed)
    frame = _input_frame(domain) @ T                 # (d, m): d x / d u
    if sampling == "sobol":
        from scipy.stats import qmc

        inner = domain.inner if isinstance(domain, Slice) else domain
        # a power of 2 keeps the balance of the Sobol points (and scipy quiet); the first n
        # points of the sequence are the same either way
        U = qmc.Sobol(k + m, scramble=True, rng=rng).random_base2(int(n - 1).bit_length())[:n]
        U = np.clip(U, 1e-16, 1 - 1e-16)
        points = inner.lo + U[:, :k] * (inner.hi - inner.lo)
        u = _special().ndtri(U[:, k:])
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


def _same_domain(a, b) -> bool:
    if a is b:
        return True
    if type(a) is not type(b) or a.dim != b.dim or a.input_dim != b.input_dim:
        return False
    if isinstance(a, Slice):
        if not (np.array_equal(a.origin, b.origin) and np.array_equal(a.directions, b.directions)):
            return False
        a, b = a.inner, b.inner
    (Ha, ha), (Hb, hb) = a.halfspaces(), b.halfspaces()
    return Ha.shape == Hb.shape and np.array_equal(Ha, Hb) and np.array_equal(ha, hb)


def _check_tree(network, domain, tree) -> None:
    """A tree passed to :func:`rugosity_limit` must be a complete subdivision of ``domain`` by
    ``network``: anything else would give a value for another network or domain, silently."""
    source = getattr(tree, "source_network", None)
    if source is None or not hasattr(tree, "levels"):
        raise ApproximationError(f"tree must be a SubdivisionTree (from powercells.subdivide), "
                                 f"got {type(tree).__name__}")
    if source is not network:
        raise ApproximationError("tree is not a subdivision by this network (tree.source_network "
                                 "is another Network object); subdivide this network or pass "
                                 "tree.source_network")
    if tree.partial:
        raise ApproximationError("tree is partial (a budget stopped the enumeration): its facets "
                                 "are not all known, so there is no exact limit")
    if domain is not None:
        domain = check_domain(network, domain)
        if not _same_domain(domain, tree.domain):
            raise ApproximationError(f"domain {domain!r} is not the tree's domain "
                                     f"{tree.domain!r}; pass one of them")


def rugosity_limit(network, domain=None, *, tangent=None, perturbation: str = "gaussian",
                   tree=None, engine: str = "auto", tol=None) -> RugosityLimit:
    """The exact ``eps -> 0`` limit of :func:`rugosity_estimate`, from the enumerated complex
    (SPEC §5.6 items 2 and 4).

    Parameters
    ----------
    network : Network
    domain : Domain or (lo, hi) or (A, b), optional
        Any domain: 1-D and 2-D ones (segments, planes, neighbourhoods with one or two
        directions) read the facets off the intervals or the planar mesh; in higher dimensions
        the facets come from the LP adjacency and their volumes from qhull (cost grows with the
        number of facets). Not needed with ``tree``.
    tangent, perturbation
        As for :func:`rugosity_estimate`.
    tree : SubdivisionTree, optional
        A complete subdivision of the domain by ``network`` (interval or planar engine), to
        reuse. With a tree, ``domain`` may be omitted; if given it must be the tree's.
    engine, tol
        As for :func:`powercells.subdivide` (``"auto"`` picks the LP-free engines).

    Returns
    -------
    RugosityLimit

    Raises
    ------
    ApproximationError
        For an unknown perturbation or a malformed tangent, or if
        ``tree`` is partial (a budget stopped it), is not a subdivision by ``network``, or is
        of another domain than ``domain``.
    """
    network = check_network(network)
    perturbation = _perturbation(perturbation)
    if tree is not None:
        _check_tree(network, domain, tree)
    else:
        from ..enumerate import subdivide

        if domain is None:
            raise ApproximationError("give a domain or a tree")
        domain = check_domain(network, domain)
        tree = subdivide(network, domain, engine=engine, tol=tol)
    domain = tree.domain
    check_value_scale(tree.network, domain, "the rugosity limit (Jacobians)")
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
    elif domain.dim > 2 or tree.levels[-1].polygons is None:
        # any dimension: the facets from the LP adjacency, their (d-1)-volumes by qhull
        from ..geometry.adjacency import facet_adjacency, facet_volumes
        from ..geometry.volume import region_volumes

        adjacency = facet_adjacency(tree, method="lp")
        normal = adjacency.normal
        size = facet_volumes(tree, adjacency)
        jump = A[adjacency.region_b] - A[adjacency.region_a]
        volume = float(region_volumes(tree, 0, method="exact").volume[0])
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
