"""A region's H-representation as a pure function of its code path (DESIGN §1)."""

from __future__ import annotations

import numpy as np

__all__ = ["region_halfspaces"]


def region_halfspaces(network, domain, code_path, *, normalize: bool = True):
    """The closed polytope ``H t <= h`` of the region with this code path (SPEC §3.4).

    Parameters
    ----------
    network : Network
        In engine coordinates (a slice already folded in).
    domain : Domain
    code_path : sequence of array_like
        Codes of layers 1..l.
    normalize : bool
        Scale rows to unit norm.

    Returns
    -------
    H : ndarray, shape (m, k)
    h : ndarray, shape (m,)
        Rows with a zero gradient are dropped (the unit is constant on the region).
    """
    H0, h0 = domain.halfspaces()
    rows_H, rows_h = [H0], [h0]
    k = domain.dim
    A, B = np.eye(k), np.zeros(k)
    for layer, code in zip(network.layers, code_path):
        code = np.asarray(code, dtype=np.intp)
        if layer.is_switch:
            pre_A = layer.switch_W @ A
            pre_B = layer.switch_W @ B + layer.switch_b
            sign = np.where(code == 1, -1.0, 1.0)   # active: h >= 0 <=> -h <= 0
            rows_H.append(sign[:, None] * pre_A)
            rows_h.append(-sign * pre_B)
        elif layer.max_pieces > 1:
            for unit in range(layer.out_dim):
                r = code[unit]
                others = [s for s in range(int(layer.n_pieces[unit])) if s != r]
                if not others:
                    continue
                delta = layer.A[unit, others] - layer.A[unit, r]
                rows_H.append(delta @ A)
                rows_h.append((layer.A[unit, r] - layer.A[unit, others]) @ B
                              + layer.B[unit, r] - layer.B[unit, others])
        Aq, Bq = layer.selected(code)
        A, B = Aq @ A, Aq @ B + Bq
    H = np.vstack(rows_H)
    h = np.concatenate(rows_h)
    norms = np.linalg.norm(H, axis=1)
    keep = norms > 1e-14 * max(norms.max(initial=0.0), 1e-300)
    H, h, norms = H[keep], h[keep], norms[keep]
    if normalize:
        H, h = H / norms[:, None], h / norms
    return H, h
