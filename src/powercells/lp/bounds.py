"""Emptiness and lower bounds that do not trust the LP solver (weak duality, checked).

An LP solver's verdict that a cell is empty, or that a linear function stays above a value on
it, is only as good as its optimality tolerances, and on nearly parallel rows those are far
looser than the region tolerance: HiGHS has returned a point 4e-4 outside a non-empty cell as
its Chebyshev centre. The functions here turn such a verdict into a proof, or refuse it:

* :func:`proof_of_emptiness`: nonnegative multipliers ``y`` of the rows tight at the solver's
  Chebyshev centre with ``y @ G ~ 0`` (found by NNLS), and the bound
  ``y @ g + |y @ G|_1 R < 0`` over the box ``|x|_inf <= R``: then no point satisfies every row
  strictly. The rows with positive multipliers are the proof: any cell that has them all is
  empty too.
* :func:`dual_lower_bound`: a lower bound of ``c @ x`` over ``G_B x <= g_B`` from the basis
  multipliers, clamped to be nonnegative, with the residual of ``G_B^T lam = -c`` charged
  over the box.

Every sum is charged a rounding error bound (``4 t u`` times the sum of magnitudes), so a
``True`` / a bound is rigorous for the rows as given in floating point; a ``False`` only means
"not proven" (callers then settle the cell exactly).
"""

from __future__ import annotations

import numpy as np

__all__ = ["dual_lower_bound", "proof_of_emptiness"]

_U = np.finfo(np.float64).eps / 2


def proof_of_emptiness(G: np.ndarray, g: np.ndarray, x: np.ndarray | None, reach: float,
                       within: float) -> np.ndarray | None:
    """A proof that ``{x : G x < g, |x|_inf <= reach}`` is empty: the rows it uses (indices,
    their multipliers positive), or None when none is found.

    Parameters
    ----------
    G, g : ndarray, shapes (m, k) and (m,)
        Every row of the cell (the node's and the switched-on ones), of unit norm.
    x : ndarray (k,)
        The solver's answer to the Chebyshev LP ``max r : G x + r <= g``.
    reach : float
        A bound on ``|x|_inf`` over the cell (the domain's box).
    within : float
        The rows whose slack at ``x`` is within this of the least are taken as the optimal
        basis (the dual's support): nonnegative multipliers of those rows summing the normals
        to ~0 (NNLS) prove that no point satisfies them all strictly, when their combination
        of the right-hand sides, with the residual charged over the box, is negative. A
        solver's answer that is not optimal gives no such multipliers: not proven.

    :func:`powercells.lp.dense_kernel.empty_proof` is the compiled usual case (a simple
    vertex), which the lp engine tries first when it runs on the dense simplex.
    """
    m, k = G.shape
    if m == 0 or not np.all(np.isfinite(x)):
        return None
    slack = g - G @ x
    rows = np.flatnonzero(slack <= slack.min() + within)
    t = len(rows)
    if t > 4 * (k + 1):      # a degenerate optimum: the tightest rows suffice
        rows = rows[np.argsort(slack[rows], kind="stable")[:4 * (k + 1)]]
        t = len(rows)
    Gt, gt = G[rows], g[rows]
    M = np.empty((k + 1, t))
    M[:k] = Gt.T
    M[k] = 1.0
    e = np.zeros(k + 1)
    e[-1] = 1.0
    y = None
    if t == k + 1:
        # a simple vertex (the usual optimum): its multipliers solve a square system
        try:
            y = np.linalg.solve(M, e)
        except np.linalg.LinAlgError:
            pass
        if y is not None and not np.all(y >= 0):
            y = None
    if y is None:
        from scipy.optimize import nnls

        try:
            y, _ = nnls(M, e)
        except (RuntimeError, ValueError):      # no convergence / non-finite rows
            return None
    if not np.all(np.isfinite(y)) or not y.sum() > 0:
        return None
    rho = y @ Gt
    ay = np.abs(y)
    value = float(y @ gt + np.abs(rho).sum() * reach)
    err = 4 * (t + k) * _U * float(ay @ np.abs(gt) + reach * (ay @ np.abs(Gt)).sum())
    return rows[y > 0] if value + err < 0 else None


def dual_lower_bound(c: np.ndarray, lam: np.ndarray, G_B: np.ndarray, g_B: np.ndarray,
                     reach: float) -> np.ndarray:
    """Lower bounds of ``c @ x`` over ``{G_B[i] x <= g_B[i]}``, one per basis ``i``.

    Parameters
    ----------
    c : ndarray (k,)
    lam : ndarray (n, k)
        Multipliers with ``G_B[i]^T lam[i] ~ -c`` (negative entries are clamped to 0).
    G_B, g_B : ndarray, shapes (n, k, k) and (n, k)
    reach : float
        A bound on ``|x|_inf`` over the polytope.

    Weak duality: with ``lam >= 0`` and ``rho = c + G_B^T lam``,
    ``c @ x = rho @ x - lam @ G_B x >= -|rho|_1 reach - lam @ g_B``.
    """
    lam = np.maximum(lam, 0.0)
    rho = c + np.einsum("nij,ni->nj", G_B, lam)
    k = len(c)
    err = 4 * (k + 1) * _U * (np.einsum("ni,ni->n", lam, np.abs(g_B))
                              + reach * (np.abs(c).sum()
                                         + np.einsum("nij,ni->n", np.abs(G_B), lam)))
    return -np.einsum("ni,ni->n", lam, g_B) - np.abs(rho).sum(axis=1) * reach - err
