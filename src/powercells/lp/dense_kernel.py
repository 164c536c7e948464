"""A small dense simplex, compiled with numba (optional): ``minimise c @ z  s.t.  M z <= q``
over a few dozen columns and rows, the LPs the ``lp`` engine solves by the thousand.

The basis is a set of ``n`` rows (``n`` = columns): row ids of ``M``, or *free rows* ``-1 - j``
(the coordinate ``z_j`` held where it is; its multiplier must be 0 at an optimum, and it leaves
the basis in whichever direction improves). The solver keeps the inverse of the basis matrix
(rank-one updates, refactorised every :data:`REFACTOR` pivots, and for the answer once
:data:`FRESH_AFTER` updates have built up, warm starts included) and runs

* the **dual simplex** when the start basis is all real rows and dual feasible (the optimal
  basis of a problem with fewer rows, which is how consecutive LPs on nested cells relate): it
  pivots the most violated row in until the vertex is feasible;
* otherwise the **primal active-set method** from a feasible point ``z``: a free row or a row
  with a negative multiplier leaves, the edge direction is followed to the first blocking row
  (at most ``n`` steps reach a vertex from an interior point).

Degenerate steps switch the choice rules to Bland's (smallest index) after
:data:`DEGENERATE_BEFORE_BLAND` in a row, so the method cannot cycle; an iteration limit, a
singular basis or an unbounded edge return a status instead of an answer, and so does a final
vertex that violates a row (:func:`chebyshev`'s INEXACT): the caller then asks HiGHS. Nothing
here decides a count on its own: the caller re-verifies what it uses (:mod:`powercells.lp.dense`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Status codes returned by :func:`solve`.
OPTIMAL, UNBOUNDED, ITERATION_LIMIT, SINGULAR, INFEASIBLE, NOT_DUAL_FEASIBLE, INEXACT = (
    0, 1, 2, 3, 4, 5, 6)
#: Pivots between refactorisations of the basis inverse.
REFACTOR = 24
#: Rank-one updates since the last factorisation (carried over warm starts) after which the
#: answer is refactorised.
FRESH_AFTER = 8
#: Smallest pivot accepted, relative to the largest candidate: a smaller one makes a nearly
#: singular basis (nearly parallel rows), whose vertex slides along the singular direction.
PIVOT = 1e-7
#: Degenerate (zero-length) steps in a row before Bland's rules take over.
DEGENERATE_BEFORE_BLAND = 8


_NO_INVERSE = np.empty((0, 0))


@njit(cache=True, fastmath={"reassoc", "contract"})
def _basis_matrix(M, basis, n):
    """The basis matrix *transposed* (column l is basis row l): its inverse is ``T``, the
    transposed inverse of the basis matrix, whose rows the updates read contiguously."""
    B = np.zeros((n, n))
    for l in range(n):
        b = basis[l]
        if b >= 0:
            B[:, l] = M[b, :]
        else:
            B[-1 - b, l] = 1.0
    return B


@njit(cache=True, fastmath={"reassoc", "contract"})
def _invert(B):
    """The inverse of B by Gauss-Jordan with partial pivoting; ok False when B is (nearly)
    singular."""
    n = B.shape[0]
    A = B.copy()
    inv = np.eye(n)
    scale = 0.0
    for i in range(n):
        for j in range(n):
            scale = max(scale, abs(A[i, j]))
    if scale == 0.0:
        return inv, False
    for col in range(n):
        p = col
        best = abs(A[col, col])
        for r in range(col + 1, n):
            if abs(A[r, col]) > best:
                best = abs(A[r, col])
                p = r
        if best <= 1e-12 * scale:
            return inv, False
        if p != col:
            for j in range(n):
                A[col, j], A[p, j] = A[p, j], A[col, j]
                inv[col, j], inv[p, j] = inv[p, j], inv[col, j]
        piv = A[col, col]
        for j in range(n):
            A[col, j] /= piv
            inv[col, j] /= piv
        for r in range(n):
            if r != col:
                f = A[r, col]
                if f != 0.0:
                    for j in range(n):
                        A[r, j] -= f * A[col, j]
                        inv[r, j] -= f * inv[col, j]
    return inv, True


@njit(cache=True, fastmath={"reassoc", "contract"})
def _multipliers(T, c, mu):
    """``mu`` with ``B^T mu = -c`` (``T`` is ``B^-T``): ``mu = -T c``."""
    n = c.shape[0]
    for l in range(n):
        s = 0.0
        for i in range(n):
            s += T[l, i] * c[i]
        mu[l] = -s


@njit(cache=True, fastmath={"reassoc", "contract"})
def _replace(T, alpha, l):
    """T after basis row l is replaced by a row r with ``alpha = T r`` (alpha[l] != 0)."""
    n = T.shape[0]
    al = alpha[l]
    for i in range(n):
        T[l, i] /= al
    for j in range(n):
        if j != l and alpha[j] != 0.0:
            f = alpha[j]
            for i in range(n):
                T[j, i] -= T[l, i] * f


@njit(cache=True, fastmath={"reassoc", "contract"})
def _row_times(M, r, T, out):
    n = T.shape[0]
    for j in range(n):
        s = 0.0
        for i in range(n):
            s += M[r, i] * T[j, i]
        out[j] = s


@njit(cache=True, fastmath={"reassoc", "contract"})
def _enter(M, basis, in_basis, T, alpha, l, e, updates):
    """Row ``e`` takes basis slot ``l`` (``alpha = T M[e]``); ``T`` is updated, refactorised
    every :data:`REFACTOR` updates (then ``updates`` is 0). Returns ``T, updates, ok``."""
    if basis[l] >= 0:
        in_basis[basis[l]] = False
    basis[l] = e
    in_basis[e] = True
    _replace(T, alpha, l)
    updates += 1
    ok = True
    if updates >= REFACTOR:
        T, ok = _invert(_basis_matrix(M, basis, M.shape[1]))
        updates = 0
    return T, updates, ok


@njit(cache=True, fastmath={"reassoc", "contract"})
def _vertex(M, q, basis, T, z, z_free):
    """The point where every basis row is tight (free rows at ``z_free``)."""
    n = z.shape[0]
    rhs = np.empty(n)
    for l in range(n):
        b = basis[l]
        rhs[l] = q[b] if b >= 0 else z_free[-1 - b]
    for i in range(n):
        s = 0.0
        for l in range(n):
            s += T[l, i] * rhs[l]
        z[i] = s


@njit(cache=True, fastmath={"reassoc", "contract"})
def solve(M, q, rows, c, z0, basis0, T0, updates0, warm, max_iter, feas_tol, dual_tol):
    """Minimise ``c @ z`` over the rows ``rows`` of ``M z <= q``.

    Parameters
    ----------
    M, q : the row table (N, n) and (N,); only ``rows`` take part.
    rows : int64 array of row ids.
    c : cost (n,).
    z0 : start point (n,): feasible (within ``feas_tol``) unless ``basis0`` is a dual-feasible
        basis of real rows, whose vertex is then the start.
    basis0 : int64 (n,): start basis, row ids in ``rows`` or ``-1 - j`` for free rows.
    T0 : (n, n) the inverse of ``basis0``'s matrix, transposed, when known (else any shape:
        it is computed); ``updates0`` rank-one updates made it since its factorisation.
    warm : bool
        ``basis0`` is meant as a dual-feasible basis (status NOT_DUAL_FEASIBLE when it is not);
        otherwise its real rows are tight at ``z0``.

    Returns
    -------
    status, z, basis, mu, T, updates, iterations
        ``T`` and the updates it carries; ``mu`` are the basis rows' multipliers
        (``-c = sum mu_l M[basis_l]``, all >= -dual_tol at an optimum, free rows ~0).
    """
    N, n = M.shape
    basis = basis0.copy()
    z = z0.copy()
    mu = np.zeros(n)
    alpha = np.empty(n)
    d = np.empty(n)
    in_basis = np.zeros(N, dtype=np.bool_)
    for l in range(n):
        if basis[l] >= 0:
            in_basis[basis[l]] = True
    updates = 0
    if T0.shape[0] == n:
        T = T0.copy()
        updates = updates0
    else:
        T, ok = _invert(_basis_matrix(M, basis, n))
        if not ok:
            return SINGULAR, z, basis, mu, T, updates, 0
    _multipliers(T, c, mu)
    all_real = True
    dual_feasible = True
    for l in range(n):
        if basis[l] < 0:
            all_real = False
        elif mu[l] < -dual_tol:
            dual_feasible = False
    it = 0
    degenerate = 0
    if warm and not (all_real and dual_feasible):
        return NOT_DUAL_FEASIBLE, z, basis, mu, T, updates, 0
    if all_real and dual_feasible:
        # ---- dual simplex from the start basis's vertex
        _vertex(M, q, basis, T, z, z0)
        while True:
            bland = degenerate >= DEGENERATE_BEFORE_BLAND
            worst = -feas_tol
            e = -1
            for t in range(rows.shape[0]):
                r = rows[t]
                if in_basis[r]:
                    continue
                s = q[r]
                for i in range(n):
                    s -= M[r, i] * z[i]
                # the most violated row; under Bland's rule the smallest violated id
                if (s < worst and not bland) or (bland and s < -feas_tol and (e < 0 or r < e)):
                    worst = s
                    e = r
            if e < 0:
                break                                   # primal feasible: optimal
            if it >= max_iter:
                return ITERATION_LIMIT, z, basis, mu, T, updates, it
            it += 1
            _row_times(M, e, T, alpha)
            l = -1
            best = np.inf
            amax = 0.0
            for j in range(n):
                amax = max(amax, abs(alpha[j]))
            for j in range(n):
                if alpha[j] > PIVOT * max(amax, 1.0):
                    ratio = max(mu[j], 0.0) / alpha[j]
                    if ratio < best - 1e-12 or (ratio <= best + 1e-12 and l >= 0 and (
                            (bland and basis[j] < basis[l]) or
                            (not bland and alpha[j] > alpha[l]))):
                        best = ratio
                        l = j
            if l < 0:
                return INFEASIBLE, z, basis, mu, T, updates, it
            degenerate = degenerate + 1 if best <= 1e-12 else 0
            theta = max(mu[l], 0.0) / alpha[l]
            step = -worst / alpha[l]                    # moves row e onto its bound
            for i in range(n):
                z[i] -= step * T[l, i]
            for j in range(n):
                mu[j] -= theta * alpha[j]
            mu[l] = theta
            T, updates, ok = _enter(M, basis, in_basis, T, alpha, l, e, updates)
            if not ok:
                return SINGULAR, z, basis, mu, T, updates, it
            if updates == 0:                            # refactorised: fresh vertex and mu
                _vertex(M, q, basis, T, z, z0)
                _multipliers(T, c, mu)
    else:
        # ---- primal active-set method from the feasible point z0
        while True:
            bland = degenerate >= DEGENERATE_BEFORE_BLAND
            l = -1
            score = 0.0
            for j in range(n):
                b = basis[j]
                if b < 0:
                    v = abs(mu[j])
                    if v > dual_tol and (l < 0 or basis[l] >= 0 or v > score):
                        l = j
                        score = v
                elif mu[j] < -dual_tol and (l < 0 or basis[l] >= 0):
                    v = -mu[j]
                    if l < 0 or (bland and b < basis[l]) or (not bland and v > score):
                        l = j
                        score = v
            if l < 0:
                break                                   # dual feasible: optimal
            if it >= max_iter:
                return ITERATION_LIMIT, z, basis, mu, T, updates, it
            it += 1
            sign = -1.0 if (basis[l] >= 0 or mu[l] < 0.0) else 1.0
            dmax = 0.0
            for i in range(n):
                d[i] = sign * T[l, i]
                dmax = max(dmax, abs(d[i]))
            # ratio test: the first row the edge meets
            e = -1
            best = np.inf
            best_a = 0.0
            for t in range(rows.shape[0]):
                r = rows[t]
                if in_basis[r]:
                    continue
                a = 0.0
                for i in range(n):
                    a += M[r, i] * d[i]
                if a <= PIVOT * dmax:
                    continue
                s = q[r]
                for i in range(n):
                    s -= M[r, i] * z[i]
                ratio = max(s, 0.0) / a
                if (ratio < best - 1e-13 or (ratio <= best + 1e-13 and (
                        (bland and r < e) or (not bland and a > best_a)))):
                    best = ratio
                    best_a = a
                    e = r
            if e < 0:
                return UNBOUNDED, z, basis, mu, T, updates, it
            degenerate = degenerate + 1 if best <= 1e-12 else 0
            for i in range(n):
                z[i] += best * d[i]
            _row_times(M, e, T, alpha)
            T, updates, ok = _enter(M, basis, in_basis, T, alpha, l, e, updates)
            if not ok:
                return SINGULAR, z, basis, mu, T, updates, it
            _multipliers(T, c, mu)
    # the answer from a fresh factorisation once the updates add up
    if updates > FRESH_AFTER:
        T, ok = _invert(_basis_matrix(M, basis, n))
        if not ok:
            return SINGULAR, z, basis, mu, T, updates, it
        updates = 0
    _multipliers(T, c, mu)
    all_real = True
    for l in range(n):
        if basis[l] < 0:
            all_real = False
            if abs(mu[l]) > dual_tol:
                return ITERATION_LIMIT, z, basis, mu, T, updates, it
        elif mu[l] < -dual_tol:
            return ITERATION_LIMIT, z, basis, mu, T, updates, it
    if all_real:
        _vertex(M, q, basis, T, z, z0)
    return OPTIMAL, z, basis, mu, T, updates, it


@njit(cache=True, fastmath={"reassoc", "contract"})
def chebyshev(M, q, n_base, active, x0, warm_basis, warm_T, warm_updates, max_iter, tol):
    """The Chebyshev problem ``max r  s.t.  M[:, :k] x + r <= q`` over the rows ``0..n_base-1``
    (the first two bound r by the cap) and ``active``. Starts from ``warm_basis`` when one is
    given (length n: a dual-feasible basis, ``warm_T`` its transposed inverse or empty, made by
    ``warm_updates`` rank-one updates), else, or when it is not dual feasible, from ``x0`` with
    r at its smallest slack.

    Returns
    -------
    status, x, radius, basis, T, updates, support, warm_failed
        ``radius`` is recomputed from ``x``: ``min(q - M[:, :k] @ x)`` over the rows after the
        first two, at most the cap. It equals the vertex's r up to ``2 tol (1 + |r|)`` or the
        status is INEXACT (the vertex violates a row: an ill-conditioned basis), so that a
        radius with status OPTIMAL is the optimum, not only a lower bound of it. ``T`` is the
        basis's transposed inverse and ``updates`` the rank-one updates it carries;
        ``support`` lists the ``active`` rows of the basis with a non-zero multiplier (by weak
        duality, the base rows and these alone allow no larger radius); ``warm_failed`` says
        that a warm basis was given and not used.
    """
    n = M.shape[1]
    k = n - 1
    rows = np.empty(n_base + active.shape[0], dtype=np.int64)
    for t in range(n_base):
        rows[t] = t
    for t in range(active.shape[0]):
        rows[n_base + t] = active[t]
    c = np.zeros(n)
    c[k] = -1.0
    status = NOT_DUAL_FEASIBLE
    z0 = np.zeros(n)
    warm_failed = False
    if warm_basis.shape[0] == n:
        status, z, basis, mu, T, updates, _ = solve(M, q, rows, c, z0, warm_basis, warm_T,
                                                    warm_updates, True, max_iter, tol, tol)
        warm_failed = status != OPTIMAL
    if status != OPTIMAL:
        z0[:k] = x0
        best = np.inf
        first = rows[0]
        for t in range(rows.shape[0]):
            r = rows[t]
            if M[r, k] > 0.0:                        # a row bounding r from above
                s = q[r]
                for i in range(k):
                    s -= M[r, i] * x0[i]
                s /= M[r, k]
                if s < best:
                    best = s
                    first = r
        z0[k] = best
        basis0 = np.empty(n, dtype=np.int64)
        basis0[0] = first
        for j in range(k):
            basis0[j + 1] = -1 - j
        status, z, basis, mu, T, updates, _ = solve(M, q, rows, c, z0, basis0, _NO_INVERSE, 0,
                                                    False, max_iter, tol, tol)
    x = z[:k].copy()
    radius = q[0]
    for t in range(2, rows.shape[0]):
        r = rows[t]
        s = q[r]
        for i in range(k):
            s -= M[r, i] * x[i]
        radius = min(radius, s)
    if status == OPTIMAL and radius < min(z[k], q[0]) - 2.0 * tol * (1.0 + abs(z[k])):
        status = INEXACT
    m = 0
    for l in range(n):
        if basis[l] >= n_base and abs(mu[l]) > 1e-12:
            m += 1
    support = np.empty(m, dtype=np.int64)
    m = 0
    for l in range(n):
        if basis[l] >= n_base and abs(mu[l]) > 1e-12:
            support[m] = basis[l]
            m += 1
    return status, x, radius, basis, T, updates, support, warm_failed


#: Answers of :func:`empty_proof`.
PROVEN, NOT_PROVEN, ASK_NNLS = 1, 0, -1
_NONE = np.empty(0, dtype=np.int64)


@njit(cache=True)
def empty_proof(G, g, rows, x, reach, within):
    """:func:`powercells.lp.bounds.proof_of_emptiness` for the usual case, compiled: the rows
    ``rows`` of ``G x <= g`` whose slack at ``x`` is within ``within`` of the least are
    ``k + 1`` (a simple vertex); their multipliers solve a square system. Returns PROVEN and
    the positions in ``rows`` of the proof's rows (positive multipliers), or NOT_PROVEN or
    ASK_NNLS (another number of tight rows, a singular system or clearly negative multipliers:
    the caller's NNLS decides) with no rows. No fastmath: the error bound charged holds for any
    order of summation, but the code says what it computes."""
    m = rows.shape[0]
    k = G.shape[1]
    for i in range(k):
        if not np.isfinite(x[i]):
            return NOT_PROVEN, _NONE
    slack = np.empty(m)
    least = np.inf
    for t in range(m):
        r = rows[t]
        s = g[r]
        for i in range(k):
            s -= G[r, i] * x[i]
        slack[t] = s
        least = min(least, s)
    n = k + 1
    tight = np.empty(n, dtype=np.int64)
    where = np.empty(n, dtype=np.int64)
    count = 0
    for t in range(m):
        if slack[t] <= least + within:
            if count == n:
                return ASK_NNLS, _NONE
            tight[count] = rows[t]
            where[count] = t
            count += 1
    if count != n:
        return ASK_NNLS, _NONE
    # [G_T^T; 1] y = e_k by Gaussian elimination with partial pivoting
    A = np.empty((n, n + 1))
    for c in range(n):
        for i in range(k):
            A[i, c] = G[tight[c], i]
        A[k, c] = 1.0
    for i in range(n):
        A[i, n] = 0.0
    A[k, n] = 1.0
    for c in range(n):
        p = c
        for i in range(c + 1, n):
            if abs(A[i, c]) > abs(A[p, c]):
                p = i
        if A[p, c] == 0.0:
            return ASK_NNLS, _NONE
        if p != c:
            for j in range(c, n + 1):
                A[c, j], A[p, j] = A[p, j], A[c, j]
        for i in range(c + 1, n):
            f = A[i, c] / A[c, c]
            for j in range(c, n + 1):
                A[i, j] -= f * A[c, j]
    y = np.empty(n)
    for c in range(n - 1, -1, -1):
        s = A[c, n]
        for j in range(c + 1, n):
            s -= A[c, j] * y[j]
        y[c] = s / A[c, c]
    top = 0.0
    for c in range(n):
        if not np.isfinite(y[c]):
            return ASK_NNLS, _NONE
        top = max(top, abs(y[c]))
    for c in range(n):
        if y[c] < 0.0:
            if y[c] < -1e-12 * top:
                return ASK_NNLS, _NONE
            y[c] = 0.0          # rounding: the residual below is charged over the box
    # y @ g + |y @ G|_1 reach + rounding < 0 proves {G_T x < g_T} empty
    value = 0.0
    mag = 0.0
    for c in range(n):
        value += y[c] * g[tight[c]]
        mag += y[c] * abs(g[tight[c]])
    for i in range(k):
        rho = 0.0
        for c in range(n):
            rho += y[c] * G[tight[c], i]
            mag += reach * y[c] * abs(G[tight[c], i])
        value += abs(rho) * reach
    err = 4.0 * (n + k) * 1.1102230246251565e-16 * mag
    if not value + err < 0.0:
        return NOT_PROVEN, _NONE
    used = 0
    for c in range(n):
        if y[c] > 0.0:
            used += 1
    support = np.empty(used, dtype=np.int64)
    used = 0
    for c in range(n):
        if y[c] > 0.0:
            support[used] = where[c]
            used += 1
    return PROVEN, support
