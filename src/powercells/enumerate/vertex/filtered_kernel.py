"""The certified mode's float filter in compiled code (numba): what
:func:`powercells.enumerate.vertex.filtered.uncertified` checks, polytope by polytope, with a
ball screen that spares the vertex test of units far from a polytope.

The bounds are those of :mod:`.filtered` (see there for why they hold), with one more step: a
unit whose hyperplane is farther from the polytope's vertex mean than every vertex, by more
than the largest error any vertex's sign could have, is on one side at every exact vertex, and
its vertices are not tested one by one. Both paths are rigorous; where one certifies a cell
that the other hands to exact arithmetic, the count is the same (the exact fallback gives the
exact children).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

U = 2.0 ** -53
_SLACK = 1.0 + 1e-10


@njit(cache=True, inline="always")
def _gamma(n):
    return n * U / (1.0 - n * U)


@njit(cache=True)
def _vertex_radius(Nt, ht, v, dn, dh, k, work):
    """The bound on ``|v - v*|_inf`` of :func:`.filtered.vertex_radii` for one simple vertex
    (tight rows ``Nt`` ``(k, k)``, ``ht``); ``inf`` if the rows are too ill-conditioned.
    ``work`` is ``(k, 2k)`` scratch."""
    g = _gamma(k + 1)
    vmax = 0.0
    for j in range(k):
        vmax = max(vmax, abs(v[j]))
    R = 0.0
    for i in range(k):
        r = -ht[i]
        a = abs(ht[i])
        for j in range(k):
            r += Nt[i, j] * v[j]
            a += abs(Nt[i, j]) * abs(v[j])
        R = max(R, abs(r) + g * a)
    R = (R + dn * vmax + dh) * _SLACK
    # M, a float inverse of Nt, by Gauss-Jordan elimination with partial pivoting
    for i in range(k):
        for j in range(k):
            work[i, j] = Nt[i, j]
            work[i, k + j] = 1.0 if i == j else 0.0
    for c in range(k):
        p = c
        for r in range(c + 1, k):
            if abs(work[r, c]) > abs(work[p, c]):
                p = r
        if work[p, c] == 0.0:
            return np.inf
        if p != c:
            for j in range(2 * k):
                t = work[c, j]
                work[c, j] = work[p, j]
                work[p, j] = t
        piv = work[c, c]
        for j in range(2 * k):
            work[c, j] /= piv
        for r in range(k):
            if r != c and work[r, c] != 0.0:
                f = work[r, c]
                for j in range(2 * k):
                    work[r, j] -= f * work[c, j]
    norm_M = 0.0
    alpha = 0.0
    for i in range(k):
        row = 0.0
        e_row = 0.0
        a_row = 0.0
        for j in range(k):
            row += abs(work[i, k + j])
            e = -1.0 if i == j else 0.0
            a = 0.0
            for q in range(k):
                e += work[i, k + q] * Nt[q, j]
                a += abs(work[i, k + q]) * abs(Nt[q, j])
            e_row += abs(e)
            a_row += a
        norm_M = max(norm_M, row)
        alpha = max(alpha, e_row + g * (a_row + k))
    norm_M *= _SLACK
    alpha = (alpha + norm_M * dn) * _SLACK
    if not alpha < 0.5 or not math.isfinite(R):
        return np.inf
    return norm_M * R / (1.0 - alpha) * _SLACK


@njit(cache=True, inline="always")
def _tight(inc, v, slot, c0, c1, k, row):
    """The constraints ``c0 <= c < c1`` vertex ``v`` is tight on, into ``row`` (at most
    ``k``); returns how many there are (``k + 1``: more than ``k``)."""
    m = 0
    for c in range(c0, c1):
        s = slot[c]
        if (inc[v, s // 64] >> np.uint64(s % 64)) & np.uint64(1):
            if m == k:
                return k + 1
            row[m] = c
            m += 1
    return m


@njit(cache=True)
def _radius_of(X, inc, N, h, slot, c0, c1, v, row, sn, sh, k, Nt, ht, work):
    """:func:`_radius_at` of vertex ``v`` with its tight rows (into ``row``); ``inf`` when it
    is not simple."""
    if _tight(inc, v, slot, c0, c1, k, row) != k:
        return np.inf
    return _radius_at(X, N, h, v, row, sn, sh, k, Nt, ht, work)


@njit(cache=True)
def _radius_at(X, N, h, v, row, sn, sh, k, Nt, ht, work):
    """:func:`_vertex_radius` of vertex ``v`` tight on rows ``row``."""
    for r in range(k):
        ht[r] = h[row[r]]
        for j in range(k):
            Nt[r, j] = N[row[r], j]
    return _vertex_radius(Nt, ht, X[v], sn, sh, k, work)


@njit(cache=True, nogil=True)
def uncertified(X, inc, vstart, N, h, slot, cstart, parent, G, g, dn, dh, slot_err, center,
                region, known, active, first, last, bad, radius_out):
    """Sets ``bad[i]`` for the polytopes ``first <= i < last`` that the filter cannot
    certify (see :mod:`.filtered`): a vertex that is not simple or whose radius is unbounded,
    a unit's sign at a vertex within its error bound (unless the vertex was made on the
    unit), or (``region``) an interior point not inside every exact constraint; and
    ``radius_out[i]``, the largest vertex radius of polytope ``i``.

    ``known[i] >= 0``: polytope ``i`` passed the vertex checks before with slot errors no
    smaller (a cell no unit of the last layer cut), and ``known[i]`` bounds its vertices'
    radii: they are computed only at the rare vertex where that bound does not decide.
    Polytopes not ``active`` are skipped."""
    k = X.shape[1]
    K = G.shape[1]
    gk = _gamma(k + 1)
    gk2 = _gamma(k + 2)
    work = np.empty((k, 2 * k))
    Nt = np.empty((k, k))
    ht = np.empty(k)
    mean = np.empty(k)
    for i in range(first, last):
        if not active[i]:
            continue
        v0, v1 = vstart[i], vstart[i + 1]
        c0, c1 = cstart[i], cstart[i + 1]
        nv = v1 - v0
        sn, sh = slot_err[i, 0], slot_err[i, 1]
        p = parent[i]
        lazy = known[i] >= 0.0
        tight = np.empty((nv, k), dtype=np.int64)
        rho = np.empty(nv)
        ok = True
        max_rho = known[i] if lazy else 0.0
        max_abs = 0.0
        for a in range(nv):
            v = v0 + a
            for j in range(k):
                max_abs = max(max_abs, abs(X[v, j]))
            if lazy:
                rho[a] = -1.0                   # not computed: known[i] bounds it
                continue
            rho[a] = _radius_of(X, inc, N, h, slot, c0, c1, v, tight[a], sn, sh, k, Nt, ht,
                                work)
            if not math.isfinite(rho[a]):
                ok = False
                break
            max_rho = max(max_rho, rho[a])
        radius_out[i] = max_rho
        if not ok:
            bad[i] = True
            continue
        if region[i]:
            for c in range(c0, c1):
                sl = h[c]
                a_ = abs(h[c])
                cmax = 0.0
                for j in range(k):
                    sl -= N[c, j] * center[i, j]
                    a_ += abs(N[c, j]) * abs(center[i, j])
                    cmax = max(cmax, abs(center[i, j]))
                if not sl > (gk2 * a_ + sn * cmax + sh) * _SLACK:
                    ok = False
                    break
            if not ok:
                bad[i] = True
                continue
        # the vertex mean and the largest distance to a vertex, for the ball screen
        reach = 0.0
        for j in range(k):
            mean[j] = 0.0
        for a in range(nv):
            for j in range(k):
                mean[j] += X[v0 + a, j]
        for j in range(k):
            mean[j] /= nv
        for a in range(nv):
            d2 = 0.0
            for j in range(k):
                d2 += (X[v0 + a, j] - mean[j]) ** 2
            reach = max(reach, math.sqrt(d2))
        mean_abs = 0.0
        for j in range(k):
            mean_abs = max(mean_abs, abs(mean[j]))
        for u in range(K):
            if not math.isfinite(dn[p, u]):
                continue                    # a constant unit: not decided by signs
            sc = g[p, u]
            a_ = abs(g[p, u])
            g1 = 0.0
            for j in range(k):
                sc += G[p, u, j] * mean[j]
                a_ += abs(G[p, u, j]) * abs(mean[j])
                g1 += abs(G[p, u, j])
            margin = (abs(sc) - (gk * a_ + reach * (1.0 + 1e-10) + g1 * max_rho
                                 + dn[p, u] * max(max_abs, mean_abs) + dh[p, u]
                                 + gk * (g1 * max_abs + abs(g[p, u]))) * _SLACK)
            if margin > 0.0:
                continue                    # every vertex well on one side
            for a in range(nv):
                v = v0 + a
                s = g[p, u]
                a_ = abs(g[p, u])
                vmax = 0.0
                for j in range(k):
                    s += G[p, u, j] * X[v, j]
                    a_ += abs(G[p, u, j]) * abs(X[v, j])
                    vmax = max(vmax, abs(X[v, j]))
                rest = (dn[p, u] * vmax + dh[p, u] + gk * a_) * _SLACK
                if abs(s) > g1 * (rho[a] if rho[a] >= 0.0 else max_rho) * _SLACK + rest:
                    continue
                if rho[a] < 0.0:            # the known bound did not decide: this radius
                    rho[a] = _radius_of(X, inc, N, h, slot, c0, c1, v, tight[a], sn, sh, k, Nt,
                                        ht, work)
                    if not math.isfinite(rho[a]):
                        ok = False
                        break
                    if abs(s) > g1 * rho[a] * _SLACK + rest:
                        continue
                # made on the unit's hyperplane: tight on a row -+(G, g) to the bit
                made = False
                for r in range(k):
                    c = tight[a, r]
                    plus = h[c] == -g[p, u]
                    minus = h[c] == g[p, u]
                    for j in range(k):
                        plus = plus and N[c, j] == G[p, u, j]
                        minus = minus and N[c, j] == -G[p, u, j]
                    if plus or minus:
                        made = True
                        break
                if not made:
                    ok = False
                    break
            if not ok:
                break
        if not ok:
            bad[i] = True
