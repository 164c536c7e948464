"""The planar engine's rounds in compiled code (numba), cell by cell and depth first.

:func:`split_polygons` cuts every cell's polygon by the cell's crossing lines in order, as the
rounds of :meth:`~powercells.enumerate.planar_engine.PlanarEngine._rounds` do over the whole
batch, and returns the final pieces. It follows :meth:`~powercells.geometry.polygons.Polygons.split`
operation for operation: a vertex is on a line when ``|s| <= eps`` (and then in both pieces),
``s = Gx x + Gy y + g`` is summed in that order, an edge whose ends are strictly on opposite
sides gets the point ``v + t (w - v)`` with ``t = s_v / (s_v - s_w)``, and a piece lists its
vertices in the order of its parent's boundary with each crossing point after the vertex its
edge starts from. The pieces are therefore the numpy path's, to the bit; only their order
differs (cell by cell here, round by round there), and the engine puts both in tree order.

This module imports numba; the engine imports it only when it is installed and the job is large
enough to repay its loading (see :mod:`powercells.enumerate.planar_engine`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .kernel_flags import read_flag

__all__ = ["classify_units", "split_polygons"]


@njit(cache=True)
def _grow2(a, need):
    if need <= a.shape[0]:
        return a
    out = np.empty((max(2 * a.shape[0], need), 2))
    out[:a.shape[0]] = a
    return out


@njit(cache=True)
def _grow1(a, need):
    if need <= a.shape[0]:
        return a
    out = np.empty(max(2 * a.shape[0], need), dtype=a.dtype)
    out[:a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _append_side(buf, off, cnt, s, sg, side, k):
    """Write at ``buf[k:]`` the piece on ``side`` (-1 or +1) of the polygon ``buf[off:off +
    cnt]``: its vertices not strictly on the other side, each crossing edge's point after the
    vertex the edge starts from (as :meth:`Polygons.split`); returns the end."""
    for i in range(cnt):
        j = i + 1 if i + 1 < cnt else 0
        if sg[i] * side >= 0:
            buf[k, 0] = buf[off + i, 0]
            buf[k, 1] = buf[off + i, 1]
            k += 1
        if sg[i] * sg[j] == -1:
            f = s[i] / (s[i] - s[j])
            x0, y0 = buf[off + i, 0], buf[off + i, 1]
            buf[k, 0] = x0 + f * (buf[off + j, 0] - x0)
            buf[k, 1] = y0 + f * (buf[off + j, 1] - y0)
            k += 1
    return k


@njit(cache=True, nogil=True)
def split_polygons(xy, start, first, Gx, Gy, g, eps, code, unit, with_codes, stop, progress):
    """The final pieces of every polygon ``c`` cut by its lines ``first[c] <= p < first[c + 1]``
    (unit normals ``(Gx[p], Gy[p])``, offsets ``g[p]``, of the units ``unit[p]``), in that order.

    Returns ``(xy, start, cell, codes, touched)``: the pieces' vertices in CSR layout, each
    piece's polygon, (``with_codes``; else no rows) its code: its polygon's row of ``code`` with
    every cutting unit read at the piece's vertex mean (``Gx x + Gy y + g > 0``), as the numpy
    path reads it, and per polygon whether a piece offered a line had a vertex within ``eps``
    of it (:class:`~powercells.enumerate.base.SplitDoubts`).

    Releases the GIL; returns early (the caller discards the result) once ``stop[0]`` is set
    (by a budget's watchdog, :func:`~powercells.enumerate.kernels.run_watched`), counting its
    finished pieces in ``progress[0]``.
    """
    n = len(start) - 1
    K = code.shape[1]
    out_xy = np.empty((max(16, 2 * len(xy)), 2))
    out_start = np.zeros(max(16, 2 * n + 1), dtype=np.int64)
    out_cell = np.empty(max(16, 2 * n), dtype=np.int64)
    out_code = np.empty((max(16, 2 * n) if with_codes else 0, K), dtype=code.dtype)
    touched = np.zeros(n, dtype=np.bool_)
    n_out = 0
    used = 0
    # the stack: pieces' vertices in a scratch buffer, each entry (offset, count, next line)
    buf = np.empty((64, 2))
    s_off = np.empty(16, dtype=np.int64)
    s_cnt = np.empty(16, dtype=np.int64)
    s_t = np.empty(16, dtype=np.int64)
    s = np.empty(64)
    sg = np.empty(64, dtype=np.int8)
    for c in range(n):
        m = start[c + 1] - start[c]
        buf = _grow2(buf, m)
        buf[:m] = xy[start[c]:start[c + 1]]
        s_off[0], s_cnt[0], s_t[0] = 0, m, first[c]
        depth = 1
        while depth > 0:
            if read_flag(stop) != 0:
                break
            depth -= 1
            off, cnt, t = s_off[depth], s_cnt[depth], s_t[depth]
            end = off + cnt             # the popped run is the last one: the buffer's used end
            if cnt > len(s):
                s = np.empty(2 * cnt)
                sg = np.empty(2 * cnt, dtype=np.int8)
            # the next line that cuts the piece (a vertex strictly on each side)
            last = first[c + 1]
            while t < last:
                pos = False
                neg = False
                gx, gy, g0 = Gx[t], Gy[t], g[t]
                for i in range(cnt):
                    v = gx * buf[off + i, 0] + gy * buf[off + i, 1] + g0
                    s[i] = v
                    if v > eps:
                        sg[i] = 1
                        pos = True
                    elif v < -eps:
                        sg[i] = -1
                        neg = True
                    else:
                        sg[i] = 0
                        touched[c] = True
                if pos and neg:
                    break
                t += 1
            if t == last:               # final: to the output
                out_xy = _grow2(out_xy, used + cnt)
                out_xy[used:used + cnt] = buf[off:off + cnt]
                used += cnt
                out_start = _grow1(out_start, n_out + 2)
                out_cell = _grow1(out_cell, n_out + 1)
                out_cell[n_out] = c
                if with_codes:
                    if n_out + 1 > out_code.shape[0]:
                        grown = np.empty((2 * out_code.shape[0], K), dtype=code.dtype)
                        grown[:n_out] = out_code[:n_out]
                        out_code = grown
                    # the vertex mean, summed in vertex order as np.bincount sums it
                    mx = 0.0
                    my = 0.0
                    for i in range(cnt):
                        mx += buf[off + i, 0]
                        my += buf[off + i, 1]
                    mx /= cnt
                    my /= cnt
                    out_code[n_out] = code[c]
                    for p in range(first[c], last):
                        out_code[n_out, unit[p]] = (1 if Gx[p] * mx + Gy[p] * my + g[p] > 0
                                                    else 0)
                n_out += 1
                out_start[n_out] = used
                progress[0] += 1
                continue
            # both pieces after the run: the - side then the + side; the + side is cut
            # first (it is pushed last), as any order gives the same pieces
            buf = _grow2(buf, end + 4 * cnt)
            k_neg = _append_side(buf, off, cnt, s, sg, -1, end)
            k_pos = _append_side(buf, off, cnt, s, sg, 1, k_neg)
            # the parent's run is dead: move both pieces down over it
            n_neg, n_pos = k_neg - end, k_pos - k_neg
            buf[off:off + n_neg + n_pos] = buf[end:k_pos].copy()
            if depth + 2 > len(s_off):
                s_off = _grow1(s_off, depth + 2)
                s_cnt = _grow1(s_cnt, depth + 2)
                s_t = _grow1(s_t, depth + 2)
            s_off[depth], s_cnt[depth], s_t[depth] = off, n_neg, t + 1
            s_off[depth + 1], s_cnt[depth + 1], s_t[depth + 1] = off + n_neg, n_pos, t + 1
            depth += 2
        if read_flag(stop) != 0:
            break
    return (out_xy[:used].copy(), out_start[:n_out + 1].copy(), out_cell[:n_out].copy(),
            out_code[:n_out if with_codes else 0].copy(), touched)


@njit(cache=True)
def classify_units(PA, PB, norm, constant, code, center, xy, start, eps):
    """Every unit on every polygon: ``code[c, u]`` (1 where the unit is positive on the whole
    polygon; constant units keep the code given), whether it crosses the polygon (a vertex
    strictly on each side) and, if not, whether a vertex is within ``eps`` of it (``near``).
    As the numpy path decides: a line that misses the disc around the polygon's centre holding
    every vertex (``reach + 2 eps``) takes its sign at the centre; any other is evaluated at
    the vertices with the unit normal ``PA / norm``."""
    n, K = PB.shape
    crossing = np.zeros((n, K), dtype=np.bool_)
    near = np.zeros((n, K), dtype=np.bool_)
    for c in range(n):
        cx, cy = center[c, 0], center[c, 1]
        reach = 0.0
        for i in range(start[c], start[c + 1]):
            reach = max(reach, np.hypot(xy[i, 0] - cx, xy[i, 1] - cy))
        reach += 2 * eps
        for u in range(K):
            if constant[c, u]:
                continue
            ax, ay, b, nrm = PA[c, u, 0], PA[c, u, 1], PB[c, u], norm[c, u]
            at = ax * cx + ay * cy + b
            if not abs(at) <= reach * nrm:
                code[c, u] = 1 if at > 0 else 0
                continue
            gx, gy, g0 = ax / nrm, ay / nrm, b / nrm
            hi = -np.inf
            lo = np.inf
            for i in range(start[c], start[c + 1]):
                v = gx * xy[i, 0] + gy * xy[i, 1] + g0
                hi = max(hi, v)
                lo = min(lo, v)
            crossing[c, u] = hi > eps and lo < -eps
            code[c, u] = 1 if (hi > eps and not lo < -eps) else 0
            near[c, u] = not crossing[c, u] and (abs(hi) <= eps or abs(lo) <= eps)
    return crossing, near
