"""A region's H-representation as a pure function of its code path (DESIGN §1)."""

from __future__ import annotations

import numpy as np

from .pullback import coded_rows, pull_back
from .tolerances import Tolerances

__all__ = ["region_halfspaces"]


def region_halfspaces(network, domain, code_path, *, normalize: bool = True,
                      zero: float = Tolerances.zero):
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
    zero : float
        The constant-unit rule's relative tolerance (:mod:`powercells.enumerate.pullback`).

    Returns
    -------
    H : ndarray, shape (m, k)
    h : ndarray, shape (m,)
        Rows of units that are constant on the region are dropped.
    """
    H0, h0 = domain.halfspaces()
    rows_H, rows_h = [H0], [h0]
    k = domain.dim
    A, B = np.eye(k)[None], np.zeros((1, k))
    for layer, code in zip(network.layers, code_path):
        code = np.asarray(code, dtype=np.intp).reshape(1, -1)
        G, g, _, constant = coded_rows(pull_back(layer, A, B, zero), code)
        rows_H.append(G[0][~constant[0]])
        rows_h.append(g[0][~constant[0]])
        A, B = layer.compose(A, B, code)
    H = np.vstack(rows_H)
    h = np.concatenate(rows_h)
    norms = np.linalg.norm(H, axis=1)
    keep = norms > 0
    H, h, norms = H[keep], h[keep], norms[keep]
    if normalize:
        H, h = H / norms[:, None], h / norms
    return H, h
