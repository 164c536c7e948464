"""Shared helpers of the approximate tools: errors, seeds, points in a domain, Jacobians."""

from __future__ import annotations

import numpy as np

from ..domain import Box, Domain, Slice, _CrossPolytope, as_domain
from ..errors import ApproximationError
from ..network import Network

__all__ = ["MAX_SAMPLE_VALUES", "SAMPLING_METHODS", "ApproximationError", "jacobians",
           "sample_domain"]

#: How points of a domain are drawn: ``"random"`` (i.i.d. uniform), ``"grid"`` (a regular grid of
#: the bounding box, endpoints included, kept inside the domain), ``"sobol"`` (scrambled Sobol points
#: of the bounding box, kept inside the domain: randomised quasi-Monte Carlo).
SAMPLING_METHODS = ("random", "grid", "sobol")


def rng_from(seed) -> np.random.Generator:
    """A Generator from an int, a Generator or None.

    Raises
    ------
    ApproximationError
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ApproximationError(f"seed must be an int, a numpy Generator or None, got "
                                 f"{type(seed).__name__}")
    if seed is not None and seed < 0:
        raise ApproximationError(f"seed must be a non-negative integer, got {seed}")
    return np.random.default_rng(seed)


def check_network(network) -> Network:
    if not isinstance(network, Network):
        raise ApproximationError(f"expected a Network, got {type(network).__name__}; use "
                                 "powercells.load or Network.from_weights")
    return network


def check_domain(network, domain) -> Domain:
    domain = as_domain(domain, dim=network.input_dim)
    domain.network_on(network)          # raises DomainError on a dimension mismatch
    return domain


#: The most sample coordinates (points x dimensions) a tool draws at once: 2^28 float64 values,
#: 2 GiB. More is refused with an error naming the option instead of running out of memory.
MAX_SAMPLE_VALUES = 1 << 28


def positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ApproximationError(f"{name} must be a positive integer, got {value!r}")
    if value >= 1 << 63:
        raise ApproximationError(f"{name} = {value} is out of range (64-bit integers)")
    return int(value)


def check_sample_size(n: int, dim: int, name: str) -> int:
    """``n`` points of ``dim`` coordinates, refused past :data:`MAX_SAMPLE_VALUES`.

    Raises
    ------
    ApproximationError
    """
    if n * max(dim, 1) > MAX_SAMPLE_VALUES:
        raise ApproximationError(
            f"{name} = {n} points of {dim} coordinates is more than the "
            f"{MAX_SAMPLE_VALUES // max(dim, 1)} that fit the {MAX_SAMPLE_VALUES} values a tool "
            "draws at once (2 GiB); use fewer samples")
    return n


def positive_float(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ApproximationError(f"{name} must be a number, got {value!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise ApproximationError(f"{name} must be a positive finite number, got {value}")
    return value


def _inner(domain: Domain) -> Domain:
    return domain.inner if isinstance(domain, Slice) else domain


def _uniform_l1_ball(n: int, dim: int, radius: float, rng) -> np.ndarray:
    """Exactly uniform points of the l1 ball: P + 1 exponential spacings give a uniform point of
    the simplex {y >= 0, sum y <= 1}; random signs unfold it (rejection from the cube would
    accept only 1/P! of the draws)."""
    E = rng.exponential(size=(n, dim + 1))
    Y = E[:, :dim] / E.sum(axis=1, keepdims=True)
    return radius * Y * rng.choice([-1.0, 1.0], size=(n, dim))


def sample_domain(domain: Domain, n: int, *, method: str = "random", seed=None,
                  max_tries: int = 1000) -> np.ndarray:
    """Points of a domain in engine coordinates (slice coordinates for a slice).

    Parameters
    ----------
    domain : Domain
    n : int
        ``"random"`` and ``"sobol"``: the number of points. ``"grid"``: the number of grid
        points per coordinate (``np.linspace(lo, hi, n)``, endpoints included), so the grid of
        the bounding box has ``n**k`` points, of which those inside the domain are returned.
    method : {"random", "grid", "sobol"}
        See :data:`SAMPLING_METHODS`. Uniform points of a box and of an l1 ball are drawn
        directly; other polytopes by rejection from the bounding box.
    seed : int, numpy Generator or None
    max_tries : int
        Rejection rounds allowed before giving up on a thin polytope.

    Returns
    -------
    ndarray, shape (m, k)
        ``m = n`` for ``"random"`` and ``"sobol"``.

    Raises
    ------
    ApproximationError
        For an unknown method, ``n < 1``, or a polytope too thin in its bounding box to be
        sampled by rejection.
    """
    if method not in SAMPLING_METHODS:
        raise ApproximationError(f"unknown sampling method {method!r}; choose one of "
                                 f"{', '.join(SAMPLING_METHODS)}")
    n = positive_int(n, "the number of samples" if method != "grid" else "the grid size")
    rng = rng_from(seed)
    inner = _inner(domain)
    lo, hi = inner.bounds()
    k = inner.dim
    if method != "grid":
        check_sample_size(n, k, "the number of samples")
    if method == "grid":
        if float(n) ** k > 5e7:
            raise ApproximationError(f"a grid of {n}^{k} points is too large; use fewer cells per "
                                     "coordinate or random samples")
        # endpoints included, as region studies draw their grids (np.linspace): grid points can
        # then sit exactly on boundaries, which is part of what the comparison shows
        axes = [np.linspace(lo[i], hi[i], n) for i in range(k)]
        T = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, k)
        return T[inner.contains(T)] if not isinstance(inner, Box) else T
    if method == "random" and isinstance(inner, Box):
        return lo + rng.random((n, k)) * (hi - lo)
    if method == "random" and isinstance(inner, _CrossPolytope):
        return _uniform_l1_ball(n, k, float(hi[0]), rng)
    # rejection from the bounding box (Sobol points keep their low discrepancy in the box)
    if method == "sobol":
        from scipy.stats import qmc

        sobol = qmc.Sobol(k, scramble=True, rng=rng)
    out, have = [], 0
    for _ in range(max_tries):
        m = max(2 * (n - have), 64)
        if method == "sobol":
            # draws of 2^j points keep the balance of the sequence (and scipy quiet)
            m = max(1 << int(m - 1).bit_length(), sobol.num_generated)
        U = sobol.random(m) if method == "sobol" else rng.random((m, k))
        T = lo + U * (hi - lo)
        T = T[inner.contains(T)] if not isinstance(inner, Box) else T
        out.append(T)
        have += len(T)
        if have >= n:
            return np.concatenate(out)[:n]
    raise ApproximationError(f"{domain!r} fills too little of its bounding box to be sampled by "
                             f"rejection ({have} of {n} points after {max_tries} rounds)")


def jacobians(network: Network, X: np.ndarray, codes=None) -> np.ndarray:
    """The Jacobian of the network's output at each row of X, ``J (n, K_L, d)``, from the codes
    there (ties as in SPEC §1.3): forward-mode, one batched product per layer.

    Parameters
    ----------
    network : Network
    X : ndarray, shape (n, d)
    codes : list of ndarray, optional
        ``network.codes(X)`` when already computed.
    """
    X = np.asarray(X, dtype=np.float64)
    if codes is None:
        codes = network.codes(X)
    n, d = X.shape
    # dZ[:, j, :] is d z / d x_j: one (n, K) matrix per input coordinate, so that the switch
    # layers are plain BLAS products
    dZ = np.broadcast_to(np.eye(d)[None, :, :], (n, d, d))
    for layer, code in zip(network.layers, codes):
        code = np.asarray(code, dtype=np.intp)
        if layer.kind == "identity":
            dZ = dZ @ layer.A[:, 0, :].T
        elif layer.is_switch:
            dZ = (dZ @ layer.switch_W.T) * layer.switch_factors[code][:, None, :]
        else:
            idx = np.arange(layer.out_dim)
            Aq = layer.A[idx[None, :], code]                   # (n, K, D)
            dZ = np.einsum("nkD,njD->njk", Aq, dZ)
    return np.transpose(dZ, (0, 2, 1))


def full_codes(network: Network, X: np.ndarray) -> np.ndarray:
    """Full code paths (all layers concatenated), int16, shape (n, sum K_l)."""
    return np.hstack(network.codes(X)).astype(np.int16, copy=False)

