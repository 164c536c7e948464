"""Helpers for tests, the library's own and its users': a brute-force reference enumerator and
assertions on partitions.

The brute-force enumerator shares no code with the engines: it builds each region's polytope from
its full activation pattern, solves one Chebyshev LP per candidate pattern with
``scipy.optimize.linprog``, and walks from pattern to pattern across facets. It is slow (one LP
per candidate, tens of candidates per region) and meant as an oracle for small networks and as
the baseline of the benchmarks.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from math import comb

import numpy as np

from .domain import as_domain

__all__ = ["BruteForceResult", "assert_partitions_equal", "brute_force_regions", "leaf_code_set",
           "maso_layer_bound", "near_copies_weights", "serra_bound", "zaslavsky"]


@dataclass
class BruteForceResult:
    """Regions found by :func:`brute_force_regions`.

    Attributes
    ----------
    codes : set of tuple
        Full code paths (all layers concatenated) of the leaves.
    per_layer : list of int
        Distinct code-path prefixes after each layer (regions of layers 1..l).
    lps : int
        Chebyshev LPs solved.
    """

    codes: set
    per_layer: list
    lps: int

    @property
    def regions(self) -> int:
        return len(self.codes)


def _rows_of_pattern(net, domain, pattern, zero=1e-12):
    """Halfspaces ``H t <= h`` of a full pattern, plus per row the flips that cross it.

    Returns H, h (unnormalised, domain rows first), ``flips``: for each row, the (layer, unit,
    new piece) a point crossing that row would take, and ``valid``: False when a comparison of
    pieces that is constant on the region contradicts the pattern. A constant comparison is
    settled by the tie rule of SPEC §1.3 (a tie goes to the smaller piece index), with ``zero``
    the relative tolerance for an exact cancellation; its row is then all zero.
    """
    H0, h0 = domain.halfspaces()
    rows_H, rows_h, flips = [H0], [h0], [None] * len(h0)
    k = domain.dim
    A, B = np.eye(k), np.zeros(k)
    pos = 0
    valid = True
    for li, layer in enumerate(net.layers):
        K = layer.out_dim
        code = np.asarray(pattern[pos:pos + K], dtype=np.intp)
        pos += K
        row_norms = np.linalg.norm(A, axis=1)
        for unit in range(K):
            r = code[unit]
            for s in range(int(layer.n_pieces[unit])):
                if s == r:
                    continue
                # piece r >= piece s  <=>  (A_s - A_r) z <= B_r - B_s
                delta = layer.A[unit, r] - layer.A[unit, s]
                g = -delta @ A
                c = delta @ B + layer.B[unit, r] - layer.B[unit, s]
                if np.linalg.norm(g) <= zero * (np.abs(delta) @ row_norms):
                    c_scale = (np.abs(delta) @ np.abs(B) + abs(layer.B[unit, r])
                               + abs(layer.B[unit, s]))
                    tie = abs(c) <= zero * c_scale
                    valid &= bool(c > 0 or (tie and r < s))
                    g = np.zeros_like(g)
                    c = max(c, 0.0)
                rows_H.append(g[None, :])
                rows_h.append(np.array([c]))
                flips.append((li, unit, s))
        Aq = layer.A[np.arange(K), code]
        Bq = layer.B[np.arange(K), code]
        A, B = Aq @ A, Aq @ B + Bq
    return np.vstack(rows_H), np.concatenate(rows_h), flips, valid


def _chebyshev(H, h, cap):
    norms = np.linalg.norm(H, axis=1)
    keep = norms > 1e-12 * max(norms.max(), 1e-300)
    if np.any(~keep & (h < -1e-12)):
        return None, -np.inf
    H, h, norms = H[keep], h[keep], norms[keep]
    k = H.shape[1]
    cost = np.zeros(k + 1)
    cost[-1] = -1.0
    from scipy.optimize import linprog

    res = linprog(cost, A_ub=np.hstack([H / norms[:, None], np.ones((len(h), 1))]),
                  b_ub=h / norms, bounds=[(None, None)] * k + [(-cap, cap)], method="highs")
    if res.status != 0:
        return None, -np.inf
    x = res.x[:-1]
    return x, float(np.min(h / norms - (H / norms[:, None]) @ x))


def brute_force_regions(network, domain, *, tol: float | None = None, zero: float = 1e-12,
                        seeds: int = 64, seed=0,
                        max_regions: int | None = None) -> BruteForceResult:
    """All linear regions by a breadth-first search over full activation patterns.

    From each region, every row of its polytope names a unit and a piece to flip to. Rows that
    coincide in the region (duplicate neurons, concurrent boundaries) are grouped, and every
    pattern reachable by flipping any subset of a group is a candidate. A candidate is a region
    iff its Chebyshev radius exceeds ``tol`` *and* the forward pass at its Chebyshev centre gives
    back the candidate pattern (which settles units that are constant on the region by the
    tie-breaking rule of SPEC §1.3).

    Parameters
    ----------
    network : Network
    domain : Domain
    tol : float, optional
        Region tolerance; default ``1e-9 * diameter``.
    zero : float
        Relative tolerance for an exact cancellation (as ``Tolerances.zero``); 0 follows float
        arithmetic.
    seeds : int
        Random points whose patterns start the search (besides the domain's centre).
    seed : int or numpy Generator
    max_regions : int, optional
        Stop after this many regions (the result is then incomplete).
    """
    domain = as_domain(domain, dim=network.input_dim)
    net = domain.network_on(network)
    diam = domain.diameter
    tol = 1e-9 * diam if tol is None else tol
    cap = 2 * diam
    rng = np.random.default_rng(seed)
    lo, hi = domain.bounds()
    cand = lo + rng.random((max(seeds, 1) * 20, domain.dim)) * (hi - lo)
    cand = cand[domain.contains(cand)][:seeds]
    starts = np.vstack([domain.chebyshev[0][None, :], cand])

    def pattern_at(T):
        return [tuple(int(v) for v in row) for row in np.hstack(net.codes(T))]

    seen: set = set()
    regions: dict = {}
    queue: deque = deque()
    lps = 0

    def test(pattern):
        nonlocal lps
        seen.add(pattern)
        H, h, flips, valid = _rows_of_pattern(net, domain, pattern, zero)
        if not valid:
            return
        lps += 1
        x, r = _chebyshev(H, h, cap)
        if x is None or not r > tol:
            return
        zero_rows = np.flatnonzero(~np.any(H != 0, axis=1))
        settled = {sum(net.widths[:flips[i][0]]) + flips[i][1] for i in zero_rows
                   if flips[i] is not None}
        at_x = pattern_at(x[None, :])[0]
        if any(a != b for j, (a, b) in enumerate(zip(at_x, pattern)) if j not in settled):
            return
        regions[pattern] = (x, H, h, flips)
        queue.append(pattern)

    for pattern in pattern_at(starts):
        if pattern not in seen:
            test(pattern)
    while queue:
        if max_regions is not None and len(regions) >= max_regions:
            break
        pattern = queue.popleft()
        _, H, h, flips = regions[pattern]
        norms = np.linalg.norm(H, axis=1)
        n_dom = sum(1 for f in flips if f is None)
        big = 1e-12 * norms.max()
        rows = [i for i in range(n_dom, len(h)) if norms[i] > big]
        # A pre-activation identically 0 on this region (zero row, zero offset) may switch on
        # across any facet: offer its flip with every group.
        ties = [flips[i] for i in range(n_dom, len(h))
                if norms[i] <= big and abs(h[i]) <= 1e-12 * max(1.0, diam)]
        Hn = H[rows] / norms[rows, None]
        hn = h[rows] / norms[rows]
        # group rows that are the same hyperplane (same side) inside this region
        groups: list[list[int]] = []
        assigned = [False] * len(rows)
        for a in range(len(rows)):
            if assigned[a]:
                continue
            same = np.flatnonzero((np.abs(Hn - Hn[a]).max(axis=1) <= 1e-9)
                                  & (np.abs(hn - hn[a]) <= 1e-9 * max(1.0, diam)))
            for b in same:
                assigned[b] = True
            groups.append([rows[b] for b in same])
        for group in groups:
            moves = [flips[i] for i in group] + ties
            if len(moves) > 16:
                raise ValueError(f"{len(moves)} coincident rows at one facet: too degenerate for "
                                 "the brute-force enumerator (2^n candidate patterns)")
            for size in range(1, len(moves) + 1):
                for subset in itertools.combinations(moves, size):
                    units = [(li, u) for li, u, _ in subset]
                    if len(set(units)) < len(units):
                        continue  # one new piece per unit
                    new = list(pattern)
                    for li, u, s in subset:
                        new[sum(net.widths[:li]) + u] = s
                    new = tuple(new)
                    if new not in seen:
                        test(new)
    codes = set(regions)
    per_layer = []
    for li in range(net.depth):
        width = sum(net.widths[:li + 1])
        per_layer.append(len({c[:width] for c in codes}))
    return BruteForceResult(codes=codes, per_layer=per_layer, lps=lps)


def leaf_code_set(tree) -> set:
    """The leaves of a :class:`SubdivisionTree` as a set of full code paths (tuples)."""
    return {tuple(int(v) for v in row) for row in tree.leaf_codes()}


def assert_partitions_equal(a, b) -> None:
    """Assert that two partitions have the same leaves (code paths) and per-layer counts.

    ``a`` and ``b`` may be :class:`SubdivisionTree` or :class:`BruteForceResult` objects.

    Raises
    ------
    AssertionError
        Naming the counts and a few codes found by only one side.
    """

    def codes_of(x):
        return x.codes if isinstance(x, BruteForceResult) else leaf_code_set(x)

    ca, cb = codes_of(a), codes_of(b)
    if ca != cb:
        only_a = sorted(ca - cb)[:3]
        only_b = sorted(cb - ca)[:3]
        raise AssertionError(f"partitions differ: {len(ca)} vs {len(cb)} leaves; only in first: "
                             f"{only_a}; only in second: {only_b}")
    if list(a.per_layer) != list(b.per_layer):
        raise AssertionError(f"per-layer counts differ: {a.per_layer} vs {b.per_layer}")


# ---------------------------------------------------------------------- hard networks
def near_copies_weights(rng, d: int, noise: float, *, deep: bool = True) -> list:
    """The ``(W, b)`` pairs of a network with nearly parallel hyperplanes, which LP solvers
    decide wrongly (thin slabs and wedges between near-copies of a unit).

    Layer 1: three random units over ``d`` inputs (offsets ``N(0, 0.3^2)``), each with two or
    three copies moved by ``noise`` (weights and bias). Then, with ``deep``, four units that
    are near-copies of two, and three random units; without, four random units.
    """
    base, offsets = rng.normal(size=(3, d)), rng.normal(scale=0.3, size=3)
    W, b = [], []
    for w, o in zip(base, offsets):
        for _ in range(int(rng.integers(2, 4))):
            W.append(w + noise * rng.normal(size=d))
            b.append(o + noise * rng.normal())
    W, b = np.array(W), np.array(b)
    n = len(b)
    if not deep:
        return [(W, b), (rng.normal(size=(4, n)), rng.normal(scale=0.3, size=4))]
    base2, offsets2 = rng.normal(size=(2, n)), rng.normal(scale=0.3, size=2)
    W2 = np.vstack([base2[i % 2] + noise * rng.normal(size=n) for i in range(4)])
    b2 = np.array([offsets2[i % 2] + noise * rng.normal() for i in range(4)])
    return [(W, b), (W2, b2), (rng.normal(size=(3, 4)), rng.normal(scale=0.3, size=3))]


# ---------------------------------------------------------------------- count bounds
# Upper bounds on region counts that exact counts must respect (SPEC §2.4, §6.3).

def zaslavsky(n: int, d: int) -> int:
    """Regions of ``n`` hyperplanes in general position in R^d: ``sum_{i<=d} C(n, i)``."""
    return sum(comb(n, i) for i in range(min(n, d) + 1))


def maso_layer_bound(pieces, d: int) -> int:
    """Cells of one MASO layer in R^d: ``min(prod_k R_k, sum_{i<=d} C(sum_k C(R_k, 2), i))``.

    Parameters
    ----------
    pieces : sequence of int
        Number of pieces of each unit.
    d : int
        Dimension of the layer's input (or of the region it subdivides).
    """
    prod = 1
    for r in pieces:
        prod *= int(r)
    hyperplanes = sum(comb(int(r), 2) for r in pieces)
    return min(prod, zaslavsky(hyperplanes, d))


def serra_bound(n0: int, widths) -> int:
    """Serra, Tjandraatmadja & Ramalingam (ICML 2018), Theorem 1: the largest number of linear
    regions of a ReLU network with input dimension ``n0`` and hidden widths ``widths``.

    ``sum_{j in J} prod_l C(n_l, j_l)`` with
    ``J = {j : 0 <= j_l <= min(n0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l)}``.

    Examples
    --------
    >>> serra_bound(2, [4, 4]), serra_bound(3, [5, 5, 5]), serra_bound(1, [3, 4, 3])
    (121, 11776, 80)
    """
    widths = [int(w) for w in widths]

    def rec(level: int, cap: int) -> int:
        if level == len(widths):
            return 1
        n = widths[level]
        total = 0
        for j in range(min(cap, n) + 1):
            total += comb(n, j) * rec(level + 1, min(cap, n - j))
        return total

    return rec(0, int(n0))
