"""What the batch engines (planar, vertex) do with a max unit's pieces on a batch of cells:
the pair tables read from the pull-back (:mod:`.pullback`), and clipping to each piece's cell of
the unit's power diagram (SPEC §3.2)."""

from __future__ import annotations

import numpy as np

from .base import split_doubts

__all__ = ["clip_to_winners", "decide_max_units", "max_doubts", "piece_pairs",
           "sides_from_extremes", "values_at"]


def piece_pairs(planes, layer):
    """Per cell, unit and ordered pair of pieces ``(r, q)``: the hyperplane where ``r`` ties
    ``q`` with its unit normal pointing to where ``r`` wins, or a vacuous constraint (zero normal,
    offset 1) when the difference is constant on the cell; and the pieces no constant pair rules
    out.

    Parameters
    ----------
    planes : Hyperplanes
        The layer pulled back to the cells (:func:`.pullback.pull_back`).
    layer : Layer
        A layer with more than two pieces per unit, or ragged pieces (not ReLU-type).

    Returns
    -------
    pair_G : ndarray (n, K, R, R, k)
    pair_g : ndarray (n, K, R, R)
    alive : ndarray of bool (n, K, R)
        False for pieces past a unit's count and for pieces that lose a constant pair (ties go to
        the smaller index, SPEC §1.3).
    """
    n, M, k = planes.grad.shape
    K, R = layer.out_dim, layer.max_pieces
    G, g = planes.unit_normals()
    const = planes.constant
    pair_G = np.zeros((n, K, R, R, k))
    pair_g = np.zeros((n, K, R, R))
    alive = np.arange(R)[None, None, :] < layer.n_pieces[None, :, None]
    alive = np.repeat(alive, n, axis=0)
    for m in range(M):
        u, lo, hi = planes.unit[m], planes.low[m], planes.high[m]
        c = const[:, m]
        pair_G[:, u, hi, lo] = G[:, m]
        pair_G[:, u, lo, hi] = -G[:, m]
        pair_g[:, u, hi, lo] = np.where(c, 1.0, g[:, m])
        pair_g[:, u, lo, hi] = np.where(c, 1.0, -g[:, m])
        above = planes.above[:, m]
        alive[:, u, hi] &= ~c | above
        alive[:, u, lo] &= ~c | ~above
    return pair_G, pair_g, alive


def decide_max_units(layer, A, B, center, pair_g, possible, highest, *, eps: float):
    """The max units every cell of a batch decides on its own, and the ones that cut it.

    A piece that loses a non-constant pair at every vertex of the cell (``highest(u, r, q)``:
    the largest value over each cell's vertices of the signed distance to the pair's
    hyperplane, positive where ``r`` wins) has no interior in the cell; a unit with one piece
    left is decided, a unit with several cuts the cell.

    Parameters
    ----------
    layer : Layer
    A, B : the cells' maps into the layer's input; center : the cells' interior points
    pair_g : ndarray (n, K, R, R)
    possible : ndarray of bool (n, K, R)
        From :func:`piece_pairs`; updated in place to the pieces that can win on each cell.
    highest : callable ``(u, r, q) -> ndarray (n,)``
    eps : float
        The empty tolerance: a piece must win beyond it at some vertex.

    Returns
    -------
    code : ndarray of int16 (n, K)
        The winning piece of the decided units (the first possible one of the others).
    crossing : ndarray of bool (n, K)
    near : ndarray of bool (n, K)
        Units with a piece ruled out only within ``eps``: it wins nowhere by more than ``eps``
        but loses to no piece by more than that at every vertex, so it may win on a cell
        thinner than ``eps`` (see :class:`~powercells.enumerate.base.SplitDoubts`).
    """
    n, K = pair_g.shape[:2]
    code = np.zeros((n, K), dtype=np.int16)
    crossing = np.zeros((n, K), dtype=bool)
    near = np.zeros((n, K), dtype=bool)
    for u in range(K):
        m = int(layer.n_pieces[u])
        alive = possible[:, u, :m]
        for r in range(m):
            was = alive[:, r].copy()
            weak = np.zeros(n, dtype=bool)
            beaten = np.zeros(n, dtype=bool)
            for q in range(m):
                if q != r:
                    top = highest(u, r, q)
                    alive[:, r] &= top > eps
                    weak |= top <= eps
                    beaten |= top < -eps
            near[:, u] |= was & weak & ~beaten
        count = alive.sum(axis=1)
        code[:, u] = np.argmax(alive, axis=1)
        crossing[:, u] = count > 1
        if np.any(count == 0):
            # cannot happen for a cell wider than the tolerances; decide at the centre
            bad = np.flatnonzero(count == 0)
            near[bad, u] = True
            vals = values_at(layer, A[bad], B[bad], np.full(len(bad), u), center[bad])
            code[bad, u] = np.argmax(vals[:, :m], axis=1)
    return code, crossing, near


def sides_from_extremes(smax: np.ndarray, smin: np.ndarray, *, eps: float):
    """A ReLU-type unit on a convex cell from the extremes of its signed distance over the
    cell's vertices: ``(crossing, code, near)``. It cuts the cell iff a vertex is beyond ``eps``
    on each side; otherwise the cell is on its + side iff a vertex is beyond ``eps`` there, and
    ``near`` marks a unit with a vertex within ``eps`` (a doubt, see
    :class:`~powercells.enumerate.base.SplitDoubts`)."""
    crossing = (smax > eps) & (smin < -eps)
    code = (~crossing & (smax > eps)).astype(np.int16)
    near = ~crossing & ((np.abs(smax) <= eps) | (np.abs(smin) <= eps))
    return crossing, code, near


def max_doubts(code, crossing, near, touched, cancelled):
    """The :class:`~powercells.enumerate.base.SplitDoubts` of a split by a layer of max units:
    a unit with a piece ruled out within ``eps`` (``near``) is left free like a cutting one,
    and such cells are split exactly (the whole-cell test of ReLU-type units does not apply);
    a unit with a pair of pieces the zero rule took as constant with a float difference that
    is not 0.0 (``cancelled``) has the cell's exact children replace the engine's."""
    return split_doubts(code, crossing | near, np.zeros_like(near), touched | near.any(axis=1),
                        cancelled)


def values_at(layer, A, B, unit, point):
    """Every piece of ``unit[i]`` at ``point[i]`` on cell ``i`` (input ``A[i] t + B[i]``): the
    pieces' values ``(n, R)``, for deciding a unit at a point."""
    z = np.einsum("ndk,nk->nd", A, point) + B
    return np.einsum("nrd,nd->nr", layer.A[unit], z) + layer.B[unit]


def clip_to_winners(P, pcell, unit, possible, clip, concat):
    """Split pieces by a max unit into the cells of its pieces' power diagram.

    For every piece ``P[i]`` (of cell ``pcell[i]``, cut by max unit ``unit[i]``) and every
    piece ``r`` of the unit that can win on the cell, the part of ``P[i]`` where ``r`` wins:
    ``P[i]`` clipped to ``piece r >= piece q`` for every other piece ``q`` (SPEC §3.2).

    Parameters
    ----------
    P : Polygons or Polytopes
        Anything with ``take(idx)`` and ``len``.
    pcell, unit : ndarray of int64
    possible : ndarray of bool (cells, units, R)
        Which pieces can win on each cell (the others lose everywhere on it).
    clip : callable ``(Q, cell, unit, r, q, live) -> (Q', keep)``
        Keep the part of each ``Q[j]`` where ``r >= q`` (no constraint where ``live[j]`` is
        False); ``keep`` indexes the kept pieces of ``Q``.
    concat : callable ``(list of pieces) -> pieces``

    Returns
    -------
    pieces, src, side
        The parts, the index in ``P`` each comes from and its winning piece ``r``.
    """
    R = possible.shape[2]
    outs, srcs, sides = [], [], []
    for r in range(R):
        cand = np.flatnonzero(possible[pcell, unit, r])
        if cand.size == 0:
            continue
        Q, origin = P.take(cand), cand
        for q in range(R):
            if q == r or len(Q) == 0:
                continue
            c, u = pcell[origin], unit[origin]
            Q, keep = clip(Q, c, u, r, q, possible[c, u, q])
            origin = origin[keep]
        outs.append(Q)
        srcs.append(origin)
        sides.append(np.full(len(Q), r, dtype=np.int16))
    src = np.concatenate(srcs) if srcs else np.empty(0, dtype=np.int64)
    side = np.concatenate(sides) if sides else np.empty(0, dtype=np.int16)
    return concat(outs), src, side
