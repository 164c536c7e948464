"""Upper bounds on region counts that exact counts must respect (SPEC §2.4, §6.3)."""

from __future__ import annotations

from math import comb

__all__ = ["maso_layer_bound", "serra_bound", "zaslavsky"]


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
