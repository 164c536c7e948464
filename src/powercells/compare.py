"""Exact against approximate: how wrong the usual approximations are, and where (issue 6).

:func:`compare` enumerates a domain exactly and runs the approximate tools on it: sampling counts
for growing N (split into patterns that are regions and *spurious* patterns of boundary points
that no region has) and, on 1-D and 2-D domains, the finite-difference rugosity against its exact
small-eps limit. Local complexity is point-wise: see
:func:`powercells.approx.compare_local_complexity`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .approx import (
    RugosityEstimate,
    RugosityLimit,
    SamplingCounts,
    rugosity_estimate,
    rugosity_limit,
    sampling_counts,
)
from .approx._common import (
    check_domain,
    check_network,
    positive_float,
    positive_int,
    rng_from,
)

__all__ = ["Comparison", "compare"]


def _relative(approx, exact):
    """``(approx - exact) / exact`` (None when the exact value is 0)."""
    return None if exact == 0 else (approx - exact) / exact


@dataclass
class Comparison:
    """Exact and approximate answers on one domain.

    Attributes
    ----------
    regions : int
        Exact number of linear regions (leaves).
    per_layer : list of int
        Exact regions after each layer.
    slivers : list of int
        Cells with inradius below the region tolerance, per layer (not counted).
    partial : bool
        True when a budget stopped the enumeration (exact counts are then lower bounds).
    engine : str
    seconds : float
        Time of the exact enumeration.
    sampling : SamplingCounts
        The sampled pattern counts.
    found : ndarray of int, shape (m,)
        Of the sampled patterns among the first N points, those that are regions.
    spurious : ndarray of int, shape (m,)
        Those that are not: patterns of points on a boundary (a unit exactly at 0, as on the
        tent map) or of float rounding, which no full-dimensional region has.
    rugosity : RugosityEstimate or None
    rugosity_limit : RugosityLimit or None
    rugosity_note : str or None
        Why the rugosity is missing, when it is.
    domain : str
    """

    regions: int
    per_layer: list
    slivers: list
    partial: bool
    engine: str
    seconds: float
    sampling: SamplingCounts
    found: np.ndarray
    spurious: np.ndarray
    rugosity: RugosityEstimate | None
    rugosity_limit: RugosityLimit | None
    rugosity_note: str | None
    domain: str

    @property
    def sampling_relative_error(self) -> np.ndarray:
        """``(sampled - exact) / exact`` of the region count at each N."""
        return (self.sampling.regions - self.regions) / max(self.regions, 1)

    @property
    def rugosity_relative_error(self) -> float | None:
        if self.rugosity is None or self.rugosity_limit is None:
            return None
        return _relative(self.rugosity.value, self.rugosity_limit.value)

    def as_dict(self) -> dict:
        """The JSON object printed by ``powercells compare --json``."""
        s = self.sampling
        out = {
            "domain": self.domain,
            "exact": {"regions": self.regions, "per_layer": list(self.per_layer),
                      "slivers": list(self.slivers), "partial": self.partial,
                      "engine": self.engine, "seconds": round(self.seconds, 6)},
            "sampling": {**s.as_dict(), "found": self.found.tolist(),
                         "spurious": self.spurious.tolist(),
                         "relative_error": [float(e) for e in self.sampling_relative_error],
                         "per_layer_relative_error": [
                             _relative(float(a), float(b))
                             for a, b in zip(s.per_layer[-1], self.per_layer)]},
        }
        if self.rugosity is not None:
            out["rugosity"] = {"estimate": self.rugosity.as_dict(),
                               "exact_limit": self.rugosity_limit.as_dict(),
                               "relative_error": self.rugosity_relative_error}
        else:
            out["rugosity"] = {"note": self.rugosity_note}
        return out

    def __str__(self) -> str:
        s = self.sampling
        flag = " (partial: lower bounds)" if self.partial else ""
        lines = [f"domain: {self.domain}",
                 (f"exact regions: {self.regions}{flag}, per layer {list(self.per_layer)} "
                 f"(engine {self.engine}, {self.seconds:.3f} s)")]
        if any(self.slivers):
            lines.append(f"slivers (inradius <= tolerance, not counted), per layer: "
                         f"{list(self.slivers)}")
        what = "grid points" if s.method == "grid" else f"{s.method} samples"
        lines.append(f"sampling counts ({what}):")
        lines.append(f"  {'N':>10} {'patterns':>9} {'regions':>8} {'spurious':>8} {'rel. error':>10}")
        for n, c, f, sp, e in zip(s.n_samples, s.regions, self.found, self.spurious,
                                  self.sampling_relative_error):
            lines.append(f"  {int(n):>10} {int(c):>9} {int(f):>8} {int(sp):>8} {e:>+10.2%}")
        lines.append(f"  per layer at N = {int(s.n_samples[-1])}: sampled {s.per_layer[-1].tolist()}"
                     f" vs exact {list(self.per_layer)}")
        if self.rugosity is not None:
            r, lim = self.rugosity, self.rugosity_limit
            lines.append(f"rugosity ({r.perturbation}, eps = {r.eps:g}, N = {r.n_samples}, "
                         f"{r.sampling}): estimate {r.value:.6g} +- {r.stderr:.2g}, exact limit "
                         f"{lim.value:.6g}, rel. error {self.rugosity_relative_error:+.2%}")
        else:
            lines.append(f"rugosity: {self.rugosity_note}")
        return "\n".join(lines)


def compare(network, domain, *, samples=(100, 1_000, 10_000, 100_000), method: str = "random",
            seed=None, rugosity: bool = True, eps: float = 1e-3,
            rugosity_samples: int = 1 << 18, rugosity_sampling: str = "random",
            engine: str = "auto", tol=None, max_regions=None, time_limit=None) -> Comparison:
    """Exact region counts and rugosity against their usual approximations on one domain.

    Parameters
    ----------
    network : Network
    domain : Domain or (lo, hi) or (A, b)
    samples : int or sequence of int
        Sample sizes N of the sampling counts (grid: cells per coordinate), as for
        :func:`powercells.approx.sampling_counts`.
    method : {"random", "grid", "sobol"}
        How the sampling counts draw their points.
    seed : int, numpy Generator or None
    rugosity : bool
        Also compare the rugosity estimate with its exact limit (1-D and 2-D domains; on others
        the report says why it is missing).
    eps, rugosity_samples, rugosity_sampling
        Perturbation scale, N and sampling of :func:`powercells.approx.rugosity_estimate`.
    engine, tol, max_regions, time_limit
        As for :func:`powercells.subdivide`.

    Returns
    -------
    Comparison
        ``print(result)`` gives a table; ``result.as_dict()`` the JSON of the CLI.

    Raises
    ------
    ApproximationError
        For invalid sample sizes, eps or methods.
    DomainError
        If the domain does not match the network.

    Examples
    --------
    >>> import numpy as np, powercells as pc
    >>> net = pc.Network.from_weights([(np.eye(2), [0.0, 0.0])], ["relu"])
    >>> result = pc.compare(net, pc.Box(-1, 1, dim=2), samples=[1000, 10000], seed=0,
    ...                     rugosity=False)
    >>> result.regions, result.sampling.regions.tolist()
    (4, [4, 4])
    """
    from .enumerate import subdivide

    network = check_network(network)
    domain = check_domain(network, domain)
    rng = rng_from(seed)
    if rugosity:
        eps = positive_float(eps, "eps")
        rugosity_samples = positive_int(rugosity_samples, "rugosity_samples")
    counts = sampling_counts(network, domain, samples, method=method, seed=rng)
    tree = subdivide(network, domain, engine=engine, tol=tol, max_regions=max_regions,
                     time_limit=time_limit)
    leaf_keys = {row.tobytes() for row in tree.leaf_codes().astype(np.int16)}
    is_region = np.array([row.astype(np.int16).tobytes() in leaf_keys
                          for row in counts.patterns], dtype=bool)
    spurious_first = np.sort(counts.first_seen[~is_region])
    if counts.method == "grid":
        # grids are not nested: every grid's patterns are checked on their own
        spurious = np.zeros(len(counts.n_samples), dtype=np.int64)
        for i, m in enumerate(counts.grid_sizes):
            patterns = sampling_counts(network, domain, [int(m)], method="grid").patterns
            spurious[i] = sum(row.astype(np.int16).tobytes() not in leaf_keys
                              for row in patterns)
    else:
        spurious = np.searchsorted(spurious_first, counts.n_samples, side="left")
    found = counts.regions - spurious
    estimate = limit = None
    note = None
    if not rugosity:
        note = "not requested"
    elif domain.dim > 2:
        note = (f"exact limit computed on 1-D and 2-D domains only; this domain has dimension "
                f"{domain.dim} (compare on a Slice or a Neighbourhood)")
    elif tree.partial:
        note = "the enumeration is partial: no exact limit"
    else:
        limit = rugosity_limit(network, tree=tree)
        estimate = rugosity_estimate(network, domain, eps=eps, n_samples=rugosity_samples,
                                     seed=rng, sampling=rugosity_sampling)
    return Comparison(tree.n_regions, tree.per_layer, tree.slivers.per_layer(tree.depth),
                      tree.partial, tree.engine, tree.seconds, counts, found, spurious, estimate,
                      limit, note, repr(domain))

