"""Exact against approximate: how wrong the usual approximations are, and where.

:func:`compare` enumerates a domain exactly and runs the approximate tools on it: sampling counts
for growing N (split into patterns that are regions, patterns of slivers, and *spurious* patterns
of boundary points that no full-dimensional cell has; not split when a budget stopped the
enumeration, since a pattern may then be a region never reached) and, on domains of up to 4-D,
the finite-difference rugosity against its exact small-eps limit. Local complexity is point-wise: see
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
from .approx.rugosity import _sampling as _rugosity_sampling

__all__ = ["Comparison", "compare"]


def _relative(approx, exact):
    """``(approx - exact) / exact`` (None when the exact value is 0)."""
    return None if exact == 0 else (approx - exact) / exact


#: Why found / in slivers / spurious are missing on a partial tree.
PARTIAL_NOTE = ("the enumeration is partial (a budget stopped it): a sampled pattern that is not "
                "among the enumerated regions may be a region never reached, so the sampled "
                "patterns are not split into found / in slivers / spurious")


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
        True when a budget stopped the enumeration (exact counts are then lower bounds, and the
        sampled patterns are not classified: ``found``, ``in_slivers``, ``spurious`` and
        ``found_per_layer`` are None, ``pattern_note`` says why).
    engine : str
    seconds : float
        Time of the exact enumeration.
    sampling : SamplingCounts
        The sampled pattern counts.
    found : ndarray of int, shape (m,), or None
        Of the sampled patterns among the first N points, those that are regions (leaves of the
        tree): a lower bound of ``regions``.
    in_slivers : ndarray of int, shape (m,), or None
        Those that are not regions but belong to a sliver: a full-dimensional cell thinner than
        the region tolerance, set aside by the engine (its code, -1 for units the engine left
        undecided, matches the pattern's prefix).
    spurious : ndarray of int, shape (m,), or None
        The rest: patterns of points on a boundary (a unit exactly at 0, as on the tent map) or
        of float rounding, which no full-dimensional cell has.
    found_per_layer : list of int or None
        At the largest sample (``sampling.largest``), per layer, the distinct sampled code-path
        prefixes that are nodes of the tree at that depth.
    rugosity : RugosityEstimate or None
    rugosity_limit : RugosityLimit or None
    rugosity_note : str or None
        Why the rugosity is missing, when it is.
    domain : str
    pattern_note : str or None
        Why the sampled patterns are not classified, when they are not.
    """

    regions: int
    per_layer: list
    slivers: list
    partial: bool
    engine: str
    seconds: float
    sampling: SamplingCounts
    found: np.ndarray | None
    in_slivers: np.ndarray | None
    spurious: np.ndarray | None
    found_per_layer: list | None
    rugosity: RugosityEstimate | None
    rugosity_limit: RugosityLimit | None
    rugosity_note: str | None
    domain: str
    pattern_note: str | None = None

    @property
    def sampling_relative_error(self) -> np.ndarray | None:
        """``(found - exact) / exact`` of the region count at each N, from the sampled patterns
        that are regions (so in [-1, 0]); None on a partial tree."""
        if self.found is None:
            return None
        return (self.found - self.regions) / max(self.regions, 1)

    @property
    def per_layer_relative_error(self) -> list | None:
        """Per layer, ``(found - exact) / exact`` at the largest sample; None on a partial
        tree."""
        if self.found_per_layer is None:
            return None
        return [_relative(float(a), float(b)) for a, b in zip(self.found_per_layer,
                                                               self.per_layer)]

    @property
    def rugosity_relative_error(self) -> float | None:
        if self.rugosity is None or self.rugosity_limit is None:
            return None
        return _relative(self.rugosity.value, self.rugosity_limit.value)

    def as_dict(self) -> dict:
        """The JSON object printed by ``powercells compare --json``."""
        s = self.sampling

        def listed(values):
            return None if values is None else [int(v) for v in values]

        rel = self.sampling_relative_error
        out = {
            "domain": self.domain,
            "exact": {"regions": self.regions, "per_layer": list(self.per_layer),
                      "slivers": list(self.slivers), "partial": self.partial,
                      "engine": self.engine, "seconds": round(self.seconds, 6)},
            "sampling": {**s.as_dict(), "found": listed(self.found),
                         "in_slivers": listed(self.in_slivers),
                         "spurious": listed(self.spurious),
                         "relative_error": None if rel is None else [float(e) for e in rel],
                         "per_layer_at": int(s.n_samples[s.largest]),
                         "found_per_layer": listed(self.found_per_layer),
                         "per_layer_relative_error": self.per_layer_relative_error},
        }
        if self.pattern_note is not None:
            out["sampling"]["note"] = self.pattern_note
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
        big = s.largest
        if self.found is None:
            lines.append(f"  {'N':>10} {'patterns':>9}")
            for n, c in zip(s.n_samples, s.regions):
                lines.append(f"  {int(n):>10} {int(c):>9}")
            lines.append(f"  {self.pattern_note}")
            lines.append(f"  per layer at N = {int(s.n_samples[big])}: sampled prefixes "
                         f"{s.per_layer[big].tolist()} vs enumerated {list(self.per_layer)}")
        else:
            lines.append(f"  {'N':>10} {'patterns':>9} {'regions':>8} {'slivers':>8} "
                         f"{'spurious':>8} {'rel. error':>10}")
            for n, c, f, sl, sp, e in zip(s.n_samples, s.regions, self.found, self.in_slivers,
                                          self.spurious, self.sampling_relative_error):
                lines.append(f"  {int(n):>10} {int(c):>9} {int(f):>8} {int(sl):>8} {int(sp):>8} "
                             f"{_percent(e):>10}")
            lines.append(f"  per layer at N = {int(s.n_samples[big])}: found {self.found_per_layer}"
                         f" vs exact {list(self.per_layer)}")
        if self.rugosity is not None:
            r, lim = self.rugosity, self.rugosity_limit
            lines.append(f"rugosity ({r.perturbation}, eps = {r.eps:g}, N = {r.n_samples}, "
                         f"{r.sampling}): estimate {r.value:.6g} +- {r.stderr:.2g}, exact limit "
                         f"{lim.value:.6g}, rel. error "
                         f"{_percent(self.rugosity_relative_error)}")
        else:
            lines.append(f"rugosity: {self.rugosity_note}")
        return "\n".join(lines)


def _percent(x) -> str:
    """A relative error as a signed percentage; "n/a" where it is undefined (an exact value of
    0, such as the rugosity of an affine network)."""
    return "n/a" if x is None else f"{x:+.2%}"


def _keys(C: np.ndarray) -> set:
    C = np.ascontiguousarray(np.asarray(C, dtype=np.int16))
    return {row.tobytes() for row in C}


def _sliver_codes(tree) -> list:
    """The slivers as code-path prefixes, grouped by layer: ``[(width, codes)]`` with ``codes``
    of shape (n, width), the parent's code path then the sliver's layer code (-1: a unit the
    engine left undecided, which matches any code)."""
    sl = tree.slivers
    groups = {}
    paths = {}
    for layer, (depth, index), code in zip(sl.layer, sl.parent, sl.code):
        if depth not in paths:
            paths[depth] = tree.path_codes(depth) if depth else None
        prefix = paths[depth][index] if depth else np.empty(0, dtype=np.int16)
        groups.setdefault(layer, []).append(np.concatenate([prefix, code]).astype(np.int16))
    return [(len(rows[0]), np.stack(rows)) for _, rows in sorted(groups.items())]


def _in_slivers(patterns: np.ndarray, slivers: list, chunk: int = 4096) -> np.ndarray:
    """Which patterns (full code paths) lie in a sliver: their prefix matches a sliver's code
    path on every unit the engine decided."""
    hit = np.zeros(len(patterns), dtype=bool)
    for width, S in slivers:
        decided = S >= 0
        for lo in range(0, len(patterns), chunk):
            P = patterns[lo:lo + chunk, :width]
            match = np.all(~decided[None] | (P[:, None, :] == S[None]), axis=2)
            hit[lo:lo + chunk] |= match.any(axis=1)
    return hit


def _classify(patterns: np.ndarray, leaf_keys: set, slivers: list) -> np.ndarray:
    """0: a region (a leaf's code path); 1: in a sliver; 2: spurious."""
    patterns = np.asarray(patterns, dtype=np.int16)
    kind = np.full(len(patterns), 2, dtype=np.int8)
    is_region = np.array([row.tobytes() in leaf_keys for row in np.ascontiguousarray(patterns)],
                         dtype=bool).reshape(-1)
    kind[is_region] = 0
    rest = np.flatnonzero(~is_region)
    if len(rest) and slivers:
        kind[rest[_in_slivers(patterns[rest], slivers)]] = 1
    return kind


def compare(network, domain, *, n_samples=(100, 1_000, 10_000, 100_000), method: str = "random",
            seed=None, rugosity: bool = True, eps: float = 1e-3,
            rugosity_n_samples: int = 1 << 18, rugosity_sampling: str = "random",
            engine: str = "auto", tol=None, max_regions=None, time_limit=None) -> Comparison:
    """Exact region counts and rugosity against their usual approximations on one domain.

    Parameters
    ----------
    network : Network
    domain : Domain or (lo, hi) or (A, b)
    n_samples : int or sequence of int
        Sample sizes N of the sampling counts (grid: cells per coordinate), as for
        :func:`powercells.approx.sampling_counts`.
    method : {"random", "grid", "sobol"}
        How the sampling counts draw their points.
    seed : int, numpy Generator or None
    rugosity : bool
        Also compare the rugosity estimate with its exact limit (domains of up to 4-D; on others
        the report says why it is missing).
    eps, rugosity_n_samples, rugosity_sampling
        Perturbation scale, N and sampling (``"random"`` or ``"sobol"``) of
        :func:`powercells.approx.rugosity_estimate`.
    engine, tol, max_regions, time_limit
        As for :func:`powercells.subdivide`.

    Returns
    -------
    Comparison
        ``print(result)`` gives a table; ``result.as_dict()`` the JSON of the CLI.

    Raises
    ------
    ApproximationError
        For invalid sample sizes, eps, methods or rugosity sampling; all arguments are checked
        before the enumeration runs.
    DomainError
        If the domain does not match the network.

    Examples
    --------
    >>> import numpy as np, powercells as pc
    >>> net = pc.Network.from_weights([(np.eye(2), [0.0, 0.0])], ["relu"])
    >>> result = pc.compare(net, pc.Box(-1, 1, dim=2), n_samples=[1000, 10000], seed=0,
    ...                     rugosity=False)
    >>> result.regions, result.sampling.regions.tolist()
    (4, [4, 4])
    """
    from .enumerate import subdivide

    network = check_network(network)
    domain = check_domain(network, domain)
    rng = rng_from(seed)
    # every argument is checked before the (possibly long) enumeration
    if rugosity:
        eps = positive_float(eps, "eps")
        rugosity_n_samples = positive_int(rugosity_n_samples, "rugosity_n_samples")
        rugosity_sampling = _rugosity_sampling(domain, rugosity_sampling, "gaussian")
    counts = sampling_counts(network, domain, n_samples=n_samples, method=method, seed=rng)
    tree = subdivide(network, domain, engine=engine, tol=tol, max_regions=max_regions,
                     time_limit=time_limit)
    found = in_slivers = spurious = found_per_layer = None
    pattern_note = None
    if tree.partial:
        pattern_note = PARTIAL_NOTE
    else:
        leaf_keys = _keys(tree.leaf_codes())
        slivers = _sliver_codes(tree)
        kind = _classify(counts.patterns, leaf_keys, slivers)
        if counts.method == "grid":
            # grids are not nested: every grid's patterns are classified on their own
            per_grid = []
            for i, m in enumerate(counts.grid_sizes):
                k = kind if i == counts.largest else _classify(
                    sampling_counts(network, domain, n_samples=[int(m)], method="grid").patterns,
                    leaf_keys, slivers)
                per_grid.append(np.bincount(k, minlength=3))
            found, in_slivers, spurious = np.array(per_grid, dtype=np.int64).T
        else:
            # nested samples: a kind's count at N is the number of its patterns first seen
            # among the first N points
            found, in_slivers, spurious = (
                np.searchsorted(np.sort(counts.first_seen[kind == j]), counts.n_samples,
                                side="left").astype(np.int64) for j in range(3))
        bounds = np.cumsum(network.widths)
        patterns = np.ascontiguousarray(counts.patterns, dtype=np.int16)
        found_per_layer = []
        for depth, end in enumerate(bounds, 1):
            nodes = _keys(tree.path_codes(depth))
            found_per_layer.append(sum(key in nodes for key in _keys(patterns[:, :end])))
    estimate = limit = None
    note = None
    if not rugosity:
        note = "not requested"
    elif domain.dim > 4:
        note = (f"exact limit not computed above 4-D domains here (one LP per candidate facet); "
                f"this domain has dimension {domain.dim}: call rugosity_limit, or compare on a "
                "Slice or a Neighbourhood")
    elif tree.partial:
        note = "the enumeration is partial: no exact limit"
    else:
        limit = rugosity_limit(network, tree=tree)
        estimate = rugosity_estimate(network, domain, eps=eps, n_samples=rugosity_n_samples,
                                     seed=rng, sampling=rugosity_sampling)
    return Comparison(tree.n_regions, tree.per_layer, tree.slivers.per_layer(tree.depth),
                      tree.partial, tree.engine, tree.seconds, counts, found, in_slivers,
                      spurious, found_per_layer, estimate, limit, note, repr(domain),
                      pattern_note)
