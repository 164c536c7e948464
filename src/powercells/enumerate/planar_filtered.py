"""The certified mode's float filter for the planar engine: the checks of
:mod:`powercells.enumerate.vertex.filtered` on polygons.

A polygon keeps no incidences, so the filter carries them: every cell's polygon comes with the
line of each of its edges (the edge from vertex ``i`` to vertex ``i + 1``), oriented so that the
cell is where ``G . t + g >= 0``, with the cell's *slot error* ``(dn, dh)`` bounding every such
line's distance from exact. After a split, each edge of each piece is on a line of its cell (the
cell's own edge lines) or on the line of a unit that cut the cell, and its line is the one
candidate within the engine's ``empty`` tolerance of both its ends (:func:`edge_lines`): an edge
near two candidates (nearly coincident lines) is not certified. Vertex ``i`` is then the
crossing of the lines of edges ``i - 1`` and ``i``, its distance from the exact crossing is
bounded as a vertex of the vertex engine (:func:`~.vertex.filtered.radii`, ``d = 2``), and every
sign the engine read is checked against the bounds (:func:`uncertified`): at every vertex of
every piece, and for every non-constant unit of the layer, the vertex is on the unit's line
(one of its two edges is) or the unit's value there exceeds the bound on its error; and a new
region's interior point is strictly inside every exact edge line. The argument is the vertex
engine's: every sign the clipping read is exact, so the pieces are the exact pieces.
"""

from __future__ import annotations

import numpy as np

from ..geometry.polygons import Polygons
from .vertex.filtered import _SLACK, _gamma, near_pairs
from .vertex.polytopes import csr_rows

__all__ = ["edge_lines", "root_lines", "uncertified"]


def edge_lines(pieces: Polygons, pcell: np.ndarray, cand: np.ndarray, cand_start: np.ndarray,
               cand_unit: np.ndarray, *, eps: float):
    """The line of every edge of every piece, among its cell's candidates.

    Parameters
    ----------
    pieces : Polygons
    pcell : ndarray (n,)
        Each piece's cell (an index into the candidates' CSR).
    cand : ndarray (m, 3)
        Candidate lines ``(Gx, Gy, g)``, unit normals, CSR by ``cand_start`` over the cells.
    cand_unit : ndarray (m,)
        The unit a candidate is the line of (-1: an edge line of the cell).
    eps : float
        The engine's ``empty`` tolerance: an edge's line is within it of both its ends.

    Returns
    -------
    lines : ndarray (n_vertices, 3)
        The line of each edge, as the candidate (orient units' lines afterwards).
    unit : ndarray (n_vertices,)
        Its unit, or -1.
    ok : ndarray of bool (n,)
        Every edge of the piece has exactly one candidate line.
    """
    nv = len(pieces.xy)
    owner = pieces.owner
    nxt = pieces.next_vertex()
    rows, start = csr_rows(cand_start, pcell[owner])
    edge = np.repeat(np.arange(nv), np.diff(start))
    L = cand[rows]
    a, b = pieces.xy[edge], pieces.xy[nxt[edge]]
    sa = L[:, 0] * a[:, 0] + L[:, 1] * a[:, 1] + L[:, 2]
    sb = L[:, 0] * b[:, 0] + L[:, 1] * b[:, 1] + L[:, 2]
    on = (np.abs(sa) <= eps) & (np.abs(sb) <= eps)
    count = np.bincount(edge[on], minlength=nv)
    chosen = np.zeros(nv, dtype=np.int64)
    chosen[edge[on]] = rows[on]
    unique = count == 1
    lines = np.where(unique[:, None], cand[chosen], 0.0)
    unit = np.where(unique, cand_unit[chosen], -1)
    ok = (np.logical_and.reduceat(unique, pieces.start[:-1]) if len(pieces)
          else np.zeros(0, dtype=bool))
    return lines, unit, ok


def root_lines(poly: Polygons, H: np.ndarray, h: np.ndarray, *, eps: float):
    """The edge lines of a domain's polygon (one polygon), oriented inward: among the domain's
    rows ``H x <= h`` divided by their float norms. Returns ``(lines, ok)``."""
    H = np.asarray(H, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    norm = np.sqrt(np.einsum("ij,ij->i", H, H))
    live = norm > 0
    cand = np.column_stack([-H[live] / norm[live, None], h[live] / norm[live]])
    lines, _, ok = edge_lines(poly, np.zeros(1, dtype=np.int64), cand,
                              np.array([0, len(cand)]), np.full(len(cand), -1), eps=eps)
    return lines, bool(ok[0]) if len(ok) else False


def uncertified(P: Polygons, lines: np.ndarray, unit: np.ndarray, parent: np.ndarray,
                G: np.ndarray, g: np.ndarray, dn: np.ndarray, dh: np.ndarray,
                slot_err: np.ndarray, center: np.ndarray, region: np.ndarray,
                known: np.ndarray):
    """Which polygons the filter cannot certify, and each one's largest vertex radius.

    Parameters
    ----------
    P : Polygons
    lines, unit : ndarrays (n_vertices, 3), (n_vertices,)
        Each edge's oriented line and its unit (-1: none of this layer's), from
        :func:`edge_lines`.
    parent : ndarray (n,)
        Each polygon's cell in the split batch.
    G, g, dn, dh : ndarrays (cells, K, 2), (cells, K), (cells, K), (cells, K)
        The layer's unit-normal lines on the cells and their error bounds (``inf`` on
        constant units, which are skipped).
    slot_err : ndarray (n, 2)
    center : ndarray (n, 2)
    region : ndarray of bool (n,)
        Polygons whose interior point must be checked (new regions).
    known : ndarray (n,)
        A bound on the polygon's vertex radii known from before (a cell no unit of the last
        layer cut, with the same slot error), or -1.
    """
    n = len(P)
    bad = np.zeros(n, dtype=bool)
    if n == 0:
        return bad, np.zeros(0)
    owner = P.owner
    prev = _previous(P)
    gam = _gamma(3)
    # vertex radii: the crossing of the lines of the vertex's two edges
    lazy = known >= 0
    rho = np.repeat(np.where(lazy, known, 0.0), P.counts)
    todo = np.flatnonzero(~lazy[owner])
    if todo.size:
        rho[todo] = _radii2(lines[prev[todo]], lines[todo], P.xy[todo], slot_err[owner[todo]])
    finite = np.isfinite(rho)
    bad |= np.logical_or.reduceat(~finite, P.start[:-1])
    rho = np.where(finite, rho, 0.0)
    largest = np.maximum.reduceat(rho, P.start[:-1])
    # a region's interior point strictly inside every exact edge line
    inside = lines[:, 0] * center[owner, 0] + lines[:, 1] * center[owner, 1] + lines[:, 2]
    loss = (gam * (np.abs(lines[:, 0] * center[owner, 0]) + np.abs(lines[:, 1] * center[owner, 1])
                   + np.abs(lines[:, 2]))
            + slot_err[owner, 0] * np.abs(center[owner]).max(axis=1) + slot_err[owner, 1]) * _SLACK
    bad |= region & ~np.logical_and.reduceat(inside > loss, P.start[:-1])
    # signs: the ball screen, then the vertices of the units near each polygon
    near_p, near_u = near_pairs(P.xy, P.start, owner, parent, G, g, dn, dh, largest)
    step = 1 << 15
    for lo in range(0, len(near_p), step):
        np_, nu = near_p[lo:lo + step], near_u[lo:lo + step]
        vrows, vstart = csr_rows(P.start, np_)
        pair = np.repeat(np.arange(len(np_)), np.diff(vstart))
        c, u = parent[np_][pair], nu[pair]
        v = P.xy[vrows]
        Gv, gv = G[c, u], g[c, u]
        sv = Gv[:, 0] * v[:, 0] + Gv[:, 1] * v[:, 1] + gv
        absv = np.abs(v)
        r = rho[vrows]
        # a lazy polygon's vertex has its polygon's bound; where that does not decide, its own
        bound = ((np.abs(Gv).sum(axis=1) * r + dn[c, u] * absv.max(axis=1) + dh[c, u]
                  + gam * (np.abs(Gv[:, 0] * v[:, 0]) + np.abs(Gv[:, 1] * v[:, 1])
                           + np.abs(gv))) * _SLACK)
        doubt = ~(np.abs(sv) > bound)
        # a vertex made on the unit's line is on it exactly
        made_on = (unit[vrows] == u) | (unit[prev[vrows]] == u)
        failed = doubt & ~made_on
        if failed.any():
            bad[owner[vrows[failed]]] = True
    return bad, largest


def _radii2(L0: np.ndarray, L1: np.ndarray, v: np.ndarray, err: np.ndarray) -> np.ndarray:
    """:func:`~.vertex.filtered.radii` for points on two lines ``L0``, ``L1`` (rows ``(Gx, Gy,
    g)``, the point where ``G . x + g = 0``), in closed form: the same bound, term by term."""
    g3 = _gamma(3)
    a, b, c, d = L0[:, 0], L0[:, 1], L1[:, 0], L1[:, 1]
    h0, h1 = -L0[:, 2], -L1[:, 2]
    ax, ay = np.abs(v[:, 0]), np.abs(v[:, 1])
    r0 = np.abs(a * v[:, 0] + b * v[:, 1] - h0) + g3 * (np.abs(a) * ax + np.abs(b) * ay
                                                          + np.abs(h0))
    r1 = np.abs(c * v[:, 0] + d * v[:, 1] - h1) + g3 * (np.abs(c) * ax + np.abs(d) * ay
                                                          + np.abs(h1))
    R = (np.maximum(r0, r1) + err[:, 0] * np.maximum(ax, ay) + err[:, 1]) * _SLACK
    det = a * d - b * c
    safe = np.where(det != 0, det, 1.0)
    m00, m01, m10, m11 = d / safe, -b / safe, -c / safe, a / safe     # a float inverse
    norm_M = np.maximum(np.abs(m00) + np.abs(m01), np.abs(m10) + np.abs(m11)) * _SLACK
    e0 = np.abs(m00 * a + m01 * c - 1.0) + np.abs(m00 * b + m01 * d)
    e1 = np.abs(m10 * a + m11 * c) + np.abs(m10 * b + m11 * d - 1.0)
    t0 = np.abs(m00) * (np.abs(a) + np.abs(b)) + np.abs(m01) * (np.abs(c) + np.abs(d))
    t1 = np.abs(m10) * (np.abs(a) + np.abs(b)) + np.abs(m11) * (np.abs(c) + np.abs(d))
    alpha = (np.maximum(e0, e1) + g3 * (np.maximum(t0, t1) + 2) + norm_M * err[:, 0]) * _SLACK
    ok = (det != 0) & (alpha < 0.5) & np.isfinite(R)
    return np.where(ok, norm_M * R / np.where(ok, 1.0 - alpha, 1.0) * _SLACK, np.inf)


def _previous(P: Polygons) -> np.ndarray:
    """Each vertex's predecessor in its polygon (cyclically)."""
    prev = np.arange(len(P.xy)) - 1
    prev[P.start[:-1]] = P.start[1:] - 1
    return prev
