"""The exact rules both batch engines (planar, vertex) apply to units pulled back to cells
(SPEC §1.3, §3.4): a unit whose pulled-back gradient cancels is constant on the cell, and a
constant is an exact zero when it cancels too. "Cancels" is relative: the result is at most
``zero`` times the size of the terms that produced it."""

from __future__ import annotations

import numpy as np

__all__ = ["constant_piece_pair", "constant_switch_units"]


def constant_switch_units(norm, row_norm, PB, B, W, b, zero: float):
    """Constant ReLU-type units of a batch of cells and their codes.

    Parameters
    ----------
    norm : ndarray (n, K)
        Norms of the units' pulled-back gradients ``W @ A_i``.
    row_norm : ndarray (n, D)
        Norms of the rows of each cell's map ``A_i`` (the terms of those gradients).
    PB, B : ndarrays (n, K), (n, D)
        The units' pulled-back offsets ``W @ B_i + b`` and the cells' offsets ``B_i``.
    W, b : the layer's switch weights and biases.
    zero : float

    Returns
    -------
    constant : ndarray of bool (n, K)
    code : ndarray of int16 (n, K)
        1 where a constant unit is positive beyond the zero tolerance (active), else 0; ties are
        inactive.
    """
    n, K = norm.shape
    absW = np.abs(W)
    # a cheap upper bound of the terms screens out almost every (cell, unit) pair first
    suspect = norm <= zero * (row_norm.max(axis=1)[:, None] * absW.sum(axis=1)[None, :])
    constant = np.zeros((n, K), dtype=bool)
    if suspect.any():
        sc, su = np.nonzero(suspect)
        constant[sc, su] = norm[sc, su] <= zero * np.einsum("pd,pd->p", row_norm[sc], absW[su])
    code = np.zeros((n, K), dtype=np.int16)
    if constant.any():
        scale_B = np.abs(B) @ absW.T + np.abs(b)
        code[constant] = PB[constant] > zero * scale_B[constant]
    return constant, code


def constant_piece_pair(nrm, row_norm, abs_B, dB, layer, unit: int, r: int, q: int,
                        zero: float):
    """Whether the difference of pieces ``r`` and ``q`` of a max unit is constant on each cell,
    and whether ``r`` beats ``q`` there (ties go to the smaller index, SPEC §1.3).

    Parameters
    ----------
    nrm : ndarray (n,)
        Norm of the pulled-back gradient of ``piece r - piece q`` on each cell.
    row_norm, abs_B : ndarrays (n, D)
        Norms of the rows of each cell's map and the absolute values of its offsets.
    dB : ndarray (n,)
        The pulled-back offset of ``piece r - piece q``.
    layer : Layer
    unit, r, q : int
    zero : float

    Returns
    -------
    const, beats : ndarrays of bool (n,)
    """
    delta = layer.A[unit, r] - layer.A[unit, q]
    const = nrm <= zero * (row_norm @ np.abs(delta))
    gap_scale = abs_B @ np.abs(delta) + abs(layer.B[unit, r]) + abs(layer.B[unit, q])
    beats = (dB > zero * gap_scale) | ((np.abs(dB) <= zero * gap_scale) & (r < q))
    return const, beats


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
