"""Power-diagram sites of layers and regions in closed form (SPEC §2-3), vectorised.

Conventions (SPEC §2.1): the power of x for site ``(mu, rad)`` is ``||x - mu||^2 - rad``; a cell
is where a site has the smallest power. ``rad`` is a squared radius and may be negative.

* A layer's site for a code ``r`` (SPEC §2.3), in the layer's own input space:
  ``mu_r = sum_k A[k, r_k]``, ``rad_r = 2 sum_k B[k, r_k] + ||mu_r||^2``.
* The same site pulled back into a parent region ``omega`` with map ``z = A_w x + B_w``
  (SPEC §3.2): ``mu_r(omega) = A_w^T mu_r``,
  ``rad_r(omega) = ||mu_r(omega)||^2 + 2 <mu_r, B_w> + 2 <1, B_r>``.
* A node's own centroid and radius (SPEC §3.3), from its map ``z^(l) = A x + B`` alone:
  ``mu = A^T 1``, ``rad = ||mu||^2 + 2 <1, B>``; it equals the parent diagram's site of the node's
  code.

Centroids are not invariant to reparametrisations that keep the network function (SPEC §2.1).
"""

from __future__ import annotations

import numpy as np

__all__ = ["layer_sites", "node_sites", "power", "pulled_back_sites"]


def _selected(layer, codes):
    codes = np.atleast_2d(np.asarray(codes, dtype=np.intp))
    if codes.shape[1] != layer.out_dim:
        raise ValueError(f"{layer.name}: codes need {layer.out_dim} entries, got {codes.shape[1]}")
    if codes.min() < 0 or np.any(codes >= layer.n_pieces[None, :]):
        raise ValueError(f"{layer.name}: a code names a piece the unit does not have")
    idx = np.arange(layer.out_dim)[None, :]
    return layer.A[idx, codes], layer.B[idx, codes]          # (n, K, D), (n, K)


def layer_sites(layer, codes):
    """Sites ``(mu (n, D), rad (n,))`` of a layer's power diagram for codes ``(n, K)``."""
    Aq, Bq = _selected(layer, codes)
    mu = Aq.sum(axis=1)
    return mu, 2 * Bq.sum(axis=1) + np.einsum("nd,nd->n", mu, mu)


def pulled_back_sites(layer, codes, A_w, B_w):
    """The layer's sites for ``codes`` inside a region with map ``z = A_w x + B_w`` (the
    layer's input), as sites in the region's coordinates: ``(mu (n, k), rad (n,))``."""
    Aq, Bq = _selected(layer, codes)
    mu_layer = Aq.sum(axis=1)                                # (n, D)
    mu = mu_layer @ np.asarray(A_w)                          # A_w^T mu, row-wise
    rad = (np.einsum("nk,nk->n", mu, mu) + 2 * mu_layer @ np.asarray(B_w)
           + 2 * Bq.sum(axis=1))
    return mu, rad


def node_sites(A, B):
    """Centroids and radii ``(mu (n, k), rad (n,))`` of nodes with maps ``A (n, K, k)``,
    ``B (n, K)`` (e.g. ``tree.affine_maps(depth)``)."""
    mu = np.asarray(A).sum(axis=1)
    return mu, np.einsum("nk,nk->n", mu, mu) + 2 * np.asarray(B).sum(axis=1)


def power(x, mu, rad):
    """Power distances ``||x - mu_r||^2 - rad_r`` of points ``x (m, k)`` to sites: ``(m, n)``."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    d = x[:, None, :] - np.asarray(mu)[None, :, :]
    return np.einsum("mnk,mnk->mn", d, d) - np.asarray(rad)[None, :]
