"""The planar engine's certified filter in compiled code (numba): what
:func:`powercells.enumerate.planar_filtered.edge_lines` and
:func:`~powercells.enumerate.planar_filtered.uncertified` do, polygon by polygon (see there and
:mod:`powercells.enumerate.vertex.filtered` for why the bounds hold). Both paths are rigorous;
where one certifies a cell that the other hands to exact arithmetic, the count is the same.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .vertex.filtered_kernel import U, _gamma, _vertex_radius

_SLACK = 1.0 + 1e-10
_TINY = 1e-300


@njit(cache=True, nogil=True)
def edge_lines(xy, start, pcell, cand, cand_start, cand_unit, code_p, eps, lines, unit, bad):
    """Every edge's line among its cell's candidates (the one within ``eps`` of both its
    ends), a unit's line oriented to the piece's side of it (``code_p``); ``bad[i]`` where an
    edge of polygon ``i`` has no such line or two."""
    n = len(start) - 1
    for i in range(n):
        v0, v1 = start[i], start[i + 1]
        c = pcell[i]
        for a in range(v0, v1):
            b = a + 1 if a + 1 < v1 else v0
            found = -1
            for r in range(cand_start[c], cand_start[c + 1]):
                sa = cand[r, 0] * xy[a, 0] + cand[r, 1] * xy[a, 1] + cand[r, 2]
                if abs(sa) > eps:
                    continue
                sb = cand[r, 0] * xy[b, 0] + cand[r, 1] * xy[b, 1] + cand[r, 2]
                if abs(sb) > eps:
                    continue
                if found >= 0:
                    found = -2
                    break
                found = r
            if found < 0:
                bad[i] = True
                unit[a] = -1
                continue
            u = cand_unit[found]
            sign = 1.0
            if u >= 0 and code_p[i, u] != 1:
                sign = -1.0
            for j in range(3):
                lines[a, j] = sign * cand[found, j]
            unit[a] = u


@njit(cache=True)
def _radius(lines, a, p, x, sn, sh, Nt, ht, work):
    """The vertex radius of vertex ``a`` (at ``x``) on the lines of edges ``p`` and ``a``."""
    for j in range(2):
        Nt[0, j] = lines[p, j]
        Nt[1, j] = lines[a, j]
    ht[0] = -lines[p, 2]
    ht[1] = -lines[a, 2]
    return _vertex_radius(Nt, ht, x, sn, sh, 2, work)


@njit(cache=True, nogil=True)
def uncertified(xy, start, lines, unit, parent, grad, offset, norm, constant, EPA, EPB,
                slot_err, center, region, known, active, first, last, bad, radius_out):
    """Sets ``bad[i]`` for the polygons ``first <= i < last`` (``active`` ones) that the
    filter cannot certify, and ``radius_out[i]``, their largest vertex radius (see
    :func:`~powercells.enumerate.planar_filtered.uncertified`). The layer's unit-normal
    lines and their error bounds are formed here from the pull-back (``grad`` by input
    coordinate ``(cells, 2, K)``, ``offset``, ``norm``, ``constant``) and its error bounds
    (``EPA``, ``EPB``), as
    :meth:`~powercells.enumerate.pullback.Hyperplanes.unit_normals` and
    :func:`~powercells.enumerate.vertex.filtered.hyperplane_errors` form them."""
    K = grad.shape[2]
    gk = _gamma(3)
    gk2 = _gamma(4)
    work = np.empty((2, 4))
    Nt = np.empty((2, 2))
    ht = np.empty(2)
    for i in range(first, last):
        if not active[i] or bad[i]:
            continue
        v0, v1 = start[i], start[i + 1]
        nv = v1 - v0
        sn, sh = slot_err[i, 0], slot_err[i, 1]
        p = parent[i]
        lazy = known[i] >= 0.0
        rho = np.empty(nv)
        ok = True
        max_rho = known[i] if lazy else 0.0
        max_abs = 0.0
        mx = 0.0
        my = 0.0
        for a in range(nv):
            v = v0 + a
            max_abs = max(max_abs, abs(xy[v, 0]), abs(xy[v, 1]))
            mx += xy[v, 0]
            my += xy[v, 1]
            if lazy:
                rho[a] = -1.0
                continue
            pv = v - 1 if a > 0 else v1 - 1
            rho[a] = _radius(lines, v, pv, xy[v], sn, sh, Nt, ht, work)
            if not math.isfinite(rho[a]):
                ok = False
                break
            max_rho = max(max_rho, rho[a])
        radius_out[i] = max_rho
        if not ok:
            bad[i] = True
            continue
        if region[i]:
            cx, cy = center[i, 0], center[i, 1]
            cmax = max(abs(cx), abs(cy))
            for v in range(v0, v1):
                s = lines[v, 0] * cx + lines[v, 1] * cy + lines[v, 2]
                loss = (gk2 * (abs(lines[v, 0] * cx) + abs(lines[v, 1] * cy) + abs(lines[v, 2]))
                        + sn * cmax + sh) * _SLACK
                if not s > loss:
                    ok = False
                    break
            if not ok:
                bad[i] = True
                continue
        mx /= nv
        my /= nv
        reach = 0.0
        for v in range(v0, v1):
            reach = max(reach, math.sqrt((xy[v, 0] - mx) ** 2 + (xy[v, 1] - my) ** 2))
        mean_abs = max(abs(mx), abs(my))
        for u in range(K):
            if constant[p, u]:
                continue                    # a constant unit: not decided by signs
            nrm = norm[p, u]
            Gx, Gy, gu = grad[p, 0, u] / nrm, grad[p, 1, u] / nrm, offset[p, u] / nrm
            dn_u = 2.0 * (EPA[p, u] / nrm + U * (abs(grad[p, 0, u]) + abs(grad[p, 1, u])) / nrm) \
                + _TINY
            dh_u = 2.0 * (EPB[p, u] / nrm + U * abs(offset[p, u]) / nrm) + _TINY
            g1 = abs(Gx) + abs(Gy)
            sc = Gx * mx + Gy * my + gu
            margin = (abs(sc) - (gk * (abs(Gx * mx) + abs(Gy * my) + abs(gu))
                                 + reach * (1.0 + 1e-10) + g1 * max_rho
                                 + dn_u * max(max_abs, mean_abs) + dh_u
                                 + gk * (g1 * max_abs + abs(gu))) * _SLACK)
            if margin > 0.0:
                continue                    # every vertex well on one side
            for a in range(nv):
                v = v0 + a
                pv = v - 1 if a > 0 else v1 - 1
                if unit[v] == u or unit[pv] == u:
                    continue                # made on the unit's line: exactly on it
                s = Gx * xy[v, 0] + Gy * xy[v, 1] + gu
                rest = (dn_u * max(abs(xy[v, 0]), abs(xy[v, 1])) + dh_u
                        + gk * (abs(Gx * xy[v, 0]) + abs(Gy * xy[v, 1]) + abs(gu))) * _SLACK
                if abs(s) > g1 * (rho[a] if rho[a] >= 0.0 else max_rho) * _SLACK + rest:
                    continue
                if rho[a] < 0.0:            # the known bound did not decide: this radius
                    rho[a] = _radius(lines, v, pv, xy[v], sn, sh, Nt, ht, work)
                    if math.isfinite(rho[a]) and abs(s) > g1 * rho[a] * _SLACK + rest:
                        continue
                ok = False
                break
            if not ok:
                break
        if not ok:
            bad[i] = True
