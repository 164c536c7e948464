"""Sampling counts: distinct activation patterns among sample points of a domain.

The usual empirical count of linear regions: draw points (uniformly at random, on a grid, or
quasi-randomly), run the network, count the distinct activation patterns. Every sampled pattern
of a point inside a region is that region's pattern, so on a generic network the count is a
lower bound of the exact count that approaches it as N grows; small regions are found late
(DESIGN: 20 million samples find 60% of the regions of a 4-input [16, 16] network). A point on a
boundary can also produce a pattern that no region has (SPEC §6.1 item 4: the tent map touches 0
at grid points), and a point in a sliver (a full-dimensional cell thinner than the region
tolerance, which the exact count sets aside) the sliver's pattern: :func:`powercells.compare`
splits the sampled patterns into regions, slivers and *spurious* patterns; only the first are a
lower bound of the exact count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import (
    SAMPLING_METHODS,
    ApproximationError,
    check_domain,
    check_network,
    check_sample_size,
    full_codes,
    positive_int,
    rng_from,
    sample_domain,
)

__all__ = ["SamplingCounts", "sampling_counts"]


@dataclass
class SamplingCounts:
    """Distinct activation patterns as a function of the number of samples.

    Attributes
    ----------
    n_samples : ndarray of int, shape (m,)
        N, the number of sample points of each count (for a grid: the grid points inside the
        domain).
    regions : ndarray of int, shape (m,)
        Distinct full activation patterns (all layers) among the first ``n_samples[i]`` points.
    per_layer : ndarray of int, shape (m, L)
        Distinct code-path prefixes (layers 1..l) among them: the sampled counterpart of
        ``SubdivisionTree.per_layer``.
    patterns : ndarray of int16, shape (p, sum K_l)
        The distinct full patterns of the largest sample (for grids: of the finest grid,
        whatever the order of ``n_samples``), in order of first appearance.
    first_seen : ndarray of int, shape (p,)
        For each pattern, the index of the first sample that had it (random and Sobol samples
        are nested: the first N points of the largest sample are the sample of size N).
    method : str
        ``"random"``, ``"grid"`` or ``"sobol"``.
    grid_sizes : ndarray of int or None
        For grids, the number of cells per coordinate of each count.
    """

    n_samples: np.ndarray
    regions: np.ndarray
    per_layer: np.ndarray
    patterns: np.ndarray
    first_seen: np.ndarray
    method: str
    grid_sizes: np.ndarray | None = None

    @property
    def largest(self) -> int:
        """Index of the sample that ``patterns`` and ``first_seen`` describe (the largest N; for
        grids the finest grid)."""
        sizes = self.grid_sizes if self.grid_sizes is not None else self.n_samples
        return int(np.argmax(sizes))

    def as_dict(self) -> dict:
        out = {"method": self.method, "n_samples": self.n_samples.tolist(),
               "regions": self.regions.tolist(), "per_layer": self.per_layer.tolist()}
        if self.grid_sizes is not None:
            out["grid_sizes"] = self.grid_sizes.tolist()
        return out


def _as_row_keys(C: np.ndarray) -> np.ndarray:
    C = np.ascontiguousarray(C)
    return C.view(np.dtype((np.void, C.dtype.itemsize * C.shape[1]))).reshape(-1)


class _PatternCounter:
    """Running first occurrences of full patterns and of every layer's code-path prefix."""

    def __init__(self, widths):
        self.bounds = np.cumsum(widths)
        self.seen = [{} for _ in widths]          # per layer: prefix bytes -> first index
        self.full_rows = {}

    def add(self, C: np.ndarray, offset: int) -> None:
        for layer, end in enumerate(self.bounds):
            keys = _as_row_keys(C[:, :end])
            uniq, first = np.unique(keys, return_index=True)
            seen = self.seen[layer]
            last = layer == len(self.bounds) - 1
            for key, i in zip(uniq.tolist(), first.tolist()):
                if key not in seen:
                    seen[key] = offset + i
                    if last:
                        self.full_rows[key] = C[i]

    def first_seen(self, layer: int) -> np.ndarray:
        return np.sort(np.fromiter(self.seen[layer].values(), dtype=np.int64,
                                   count=len(self.seen[layer])))


def sampling_counts(network, domain, *, n_samples=(100, 1_000, 10_000, 100_000),
                    method: str = "random", seed=None, chunk: int = 1 << 16) -> SamplingCounts:
    """Count distinct activation patterns among samples of a domain, for growing N.

    Parameters
    ----------
    network : Network
    domain : Domain or (lo, hi) or (A, b)
        Points are drawn uniformly in the domain (on the slice, for a :class:`Slice` or a
        :class:`Neighbourhood`), then mapped to input coordinates and run through the network.
    n_samples : int or sequence of int
        ``"random"`` / ``"sobol"``: sample sizes N; one sample of the largest size is drawn and
        its first N points are counted, so the counts are nested and non-decreasing.
        ``"grid"``: the number of grid points per coordinate of each grid (endpoints included,
        points inside the domain; one grid per entry).
    method : {"random", "grid", "sobol"}
    seed : int, numpy Generator or None
    chunk : int
        Points run through the network at a time (memory).

    Returns
    -------
    SamplingCounts

    Raises
    ------
    ApproximationError
        For an unknown method, empty or non-positive sample sizes.
    DomainError
        If the domain does not match the network.

    Examples
    --------
    >>> import numpy as np, powercells as pc
    >>> net = pc.Network.from_weights([(np.eye(2), [0.0, 0.0])], ["relu"])
    >>> int(sampling_counts(net, pc.Box(-1, 1, dim=2), n_samples=[1000], seed=0).regions[-1])
    4
    """
    network = check_network(network)
    domain = check_domain(network, domain)
    if method not in SAMPLING_METHODS:
        raise ApproximationError(f"unknown sampling method {method!r}; choose one of "
                                 f"{', '.join(SAMPLING_METHODS)}")
    sizes = np.atleast_1d(np.asarray(n_samples))
    if sizes.size == 0 or sizes.ndim != 1:
        raise ApproximationError(f"n_samples must be a positive integer or a list of them, got "
                                 f"{n_samples!r}")
    sizes = np.array([positive_int(v.item() if hasattr(v, "item") else v, "n_samples")
                      for v in sizes], dtype=np.int64)
    chunk = positive_int(chunk, "chunk")
    if method != "grid":
        check_sample_size(int(sizes.max()), domain.dim, "n_samples")
    rng = rng_from(seed)
    widths = network.widths

    def run(T, counter):
        for lo in range(0, len(T), chunk):
            X = domain.to_input(T[lo:lo + chunk])
            counter.add(full_codes(network, X), lo)

    if method == "grid":
        n_points, regions, per_layer = [], [], []
        largest = None                  # the patterns reported are the largest grid's
        for i, m in enumerate(sizes):
            T = sample_domain(domain, int(m), method="grid")
            counter = _PatternCounter(widths)
            run(T, counter)
            n_points.append(len(T))
            per_layer.append([len(s) for s in counter.seen])
            regions.append(per_layer[-1][-1])
            if i == int(np.argmax(sizes)):
                largest = counter
        first = largest.first_seen(len(widths) - 1)
        return SamplingCounts(np.array(n_points), np.array(regions), np.array(per_layer),
                              _patterns(largest), first, method, grid_sizes=sizes)
    T = sample_domain(domain, int(sizes.max()), method=method, seed=rng)
    counter = _PatternCounter(widths)
    run(T, counter)
    per_layer = np.stack([np.searchsorted(counter.first_seen(layer), sizes, side="left")
                          for layer in range(len(widths))], axis=1)
    return SamplingCounts(sizes, per_layer[:, -1].copy(), per_layer, _patterns(counter),
                          counter.first_seen(len(widths) - 1), method)


def _patterns(counter: _PatternCounter) -> np.ndarray:
    items = sorted(counter.full_rows.items(), key=lambda kv: counter.seen[-1][kv[0]])
    if not items:
        return np.empty((0, int(counter.bounds[-1])), dtype=np.int16)
    return np.stack([row for _, row in items]).astype(np.int16)
