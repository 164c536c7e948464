"""The certified mode's float filter for the vertex engine: every decision of a split proven
with a rigorous bound on its floating-point error, the cells where the bound cannot decide
settled in exact arithmetic (SPEC §5.5, DESIGN §6).

The vertex engine decides everything from signs: the side of a unit's hyperplane at each vertex
of a cell (beyond the ``empty`` tolerance, or on it). Its float vertices and hyperplanes differ
from the exact ones of the network as stored (its floats taken as the binary rationals they
are). The filter bounds both differences and checks every decision against the bound, in
float64, vectorised over a batch:

* **Hyperplanes.** A cell carries, beside its affine map ``(A, B)``, bounds ``(EA, EB)`` on
  the map's distance from its exact one (per row: the gradient's error summed over the
  inputs, and the offset's). A pull-back ``W A`` is then within ``|W| EA + gamma_{D+1} |W|
  |A|`` of exact (any summation order, FMA included; ``gamma_m = m u / (1 - m u)``, ``u =
  2**-53``), doubled to cover the rounding of the bound itself, as in
  :mod:`powercells.network.certified`. The engine's unit-normal hyperplane ``G t + g`` is the
  exact one divided by the float norm (a positive factor: same hyperplane, same sides) up to
  ``dn >= |G - G*|_1`` and ``dh >= |g - g*|`` (:func:`hyperplane_errors`).
* **Vertices.** A cell's constraint slots are such hyperplanes (or the box's exact facets), so
  every slot of a cell is within ``(dn, dh)`` of exact, the largest over the cell's ancestry
  (the cell's *slot error*). A *simple* vertex (tight on exactly ``d`` slots ``N_T v <= h_T``)
  is the exact polytope's vertex ``v* = N*_T^-1 h*_T``, and ``|v - v*|_inf <= |M|_inf R /
  (1 - alpha)`` with ``M`` a float inverse of ``N_T``, ``R`` a bound on ``|N*_T v - h*_T|`` (the
  float residual, its rounding and the slot error) and ``alpha >= |I - M N*_T|_inf < 1``
  (:func:`vertex_radii`).
* **Decisions.** At every vertex of every child (every vertex the rounds decided at is one:
  a vertex strictly on a side stays a vertex of the pieces on that side) and for every
  non-constant unit of the layer: the vertex is tight on the unit's own slot (it was made on
  the hyperplane: ``s(v*) = 0`` exactly), or ``|s(v)|`` exceeds the bound on ``|s(v) -
  s*(v*)|``. A vertex the engine took as on a hyperplane it was not made on is tight on one slot
  more than ``d``: not simple, so not certified. And a child is a region only if its
  interior point is inside every exact constraint of it, beyond rounding and slot error.

Then every sign the engine read is the exact sign, so by induction over the rounds its pieces
are the exact pieces (same vertices, incidences and codes) and its regions are exact regions: a
cell that passes is certified. A cell that does not (:func:`uncertified`) is reported
in the split's :class:`~powercells.enumerate.base.SplitDoubts` and replaced by its exact
children (:class:`~powercells.enumerate.thin.ThinSplitter`). Constant units are the pull-back's
exact rule or checked exactly (``cancelled``), slivers and doubts are settled exactly, as in
the default path.
"""

from __future__ import annotations

import numpy as np

from .polytopes import Polytopes, csr_rows

__all__ = ["child_errors", "domain_row_errors", "hyperplane_errors", "near_pairs",
           "piece_errors", "pullback_errors", "radii", "uncertified", "vertex_radii"]

U = 2.0 ** -53
#: Inflation of every computed bound for the rounding of the bound's own arithmetic (a few
#: relative ulps at most, far below this).
_SLACK = 1.0 + 1e-10
#: Added to absolute error bounds: products that underflow lose up to this much.
_TINY = 1e-300


def _gamma(n: int) -> float:
    return n * U / (1 - n * U)


def pullback_errors(W: np.ndarray, b: np.ndarray, A: np.ndarray, B: np.ndarray,
                    EA: np.ndarray, EB: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on the errors of the pulled-back units ``W z + b`` on cells where ``z = A t + B``.

    A map's gradient error is kept as one number per row, a bound on the row's error summed
    over the input coordinates (what the hyperplanes' errors need, :func:`hyperplane_errors`):
    summed over the coordinates, ``|W| EA + gamma |W| |A|`` is ``|W|`` times the rows' sums,
    one matrix-vector product per cell.

    Parameters
    ----------
    W, b : ndarrays (K, D), (K,)
    A, B : ndarrays (n, D, k), (n, D)
        The cells' float maps.
    EA, EB : ndarrays (n, D), (n, D)
        Bounds on the maps' distance from the exact ones: ``EA[i, d] >= sum_j |A[i, d, j] -
        A*[i, d, j]|``, ``EB[i, d] >= |B[i, d] - B*[i, d]|``.

    Returns
    -------
    EPA, EPB : ndarrays (n, K), (n, K)
        The same bounds for ``fl(W A)`` against ``W A*`` and ``fl(W B + b)`` against
        ``W B* + b``.
    """
    D = W.shape[1]
    aW = np.abs(W)
    g = _gamma(D + 1)
    # (the factor 2 covers the rounding of the bounds' own arithmetic)
    n = len(EA)
    both = np.concatenate([EA + g * np.abs(A).sum(axis=2), EB + g * np.abs(B)]) @ aW.T
    EPA = 2.0 * both[:n] + _TINY * D
    EPB = 2.0 * (both[n:] + g * np.abs(b)) + _TINY * D
    return EPA, EPB


def hyperplane_errors(grad, offset, norm, constant, EPA, EPB) -> tuple[np.ndarray, np.ndarray]:
    """``(dn, dh)`` per (cell, unit): bounds on ``|G - G*|_1`` and ``|g - g*|`` for the unit
    normal hyperplanes ``G = fl(grad / norm)``, ``g = fl(offset / norm)`` against the exact
    ones divided by the same float ``norm``; ``inf`` where the unit is constant."""
    safe = np.where(constant, 1.0, norm)
    dn = 2.0 * (EPA / safe + U * np.abs(grad).sum(axis=2) / safe) + _TINY
    dh = 2.0 * (EPB / safe + U * np.abs(offset) / safe) + _TINY
    return np.where(constant, np.inf, dn), np.where(constant, np.inf, dh)


def domain_row_errors(H: np.ndarray, h: np.ndarray) -> tuple[float, float]:
    """``(dn, dh)`` for a polytope domain's rows ``H x <= h`` divided by their float norms
    (:meth:`Polytopes.from_halfspaces`): one rounding per coefficient."""
    H = np.asarray(H, dtype=np.float64)
    norm = np.sqrt(np.einsum("ij,ij->i", H, H))
    live = norm > 0
    if not live.any():
        return 0.0, 0.0
    dn = 2.0 * U * (np.abs(H[live]).sum(axis=1) / norm[live]) + _TINY
    dh = 2.0 * U * np.abs(np.asarray(h, dtype=np.float64)[live]) / norm[live] + _TINY
    return float(dn.max()), float(dh.max())


def child_errors(factor: np.ndarray, EPA, EPB, grad, offset, cell, code):
    """The map errors ``(EA, EB)`` (see :func:`pullback_errors`) of the children (``cell``,
    ``code``) of a ReLU-type split: each unit's pulled-back map times its factor for the code,
    exact for factors 0 and +-1, within ``u`` of the product otherwise (a leaky ReLU's slope).
    """
    f = factor[code]                                            # (m, K)
    EA = np.abs(f) * EPA[cell]
    EB = np.abs(f) * EPB[cell]
    inexact = (f != 0) & (np.abs(f) != 1)
    if inexact.any():
        EA = EA + 2 * U * np.abs(f) * np.abs(grad[cell]).sum(axis=2) * inexact
        EB = EB + 2 * U * np.abs(f * offset[cell]) * inexact
    return EA, EB


def near_pairs(X, start, owner, parent, G, g, dn, dh, largest):
    """The (polytope, unit) pairs whose unit the ball screen cannot put on one side of the
    whole exact polytope: a unit (not constant: ``dn`` finite) farther from the polytope's
    vertex mean than every vertex (``X``, CSR by ``start``, ``owner``), by more than any vertex's
    error (``largest``, its largest radius, and the unit's ``dn``, ``dh``), is on one side of
    it. Returns ``(polytopes, units)``."""
    d = X.shape[1]
    gam = _gamma(d + 1)
    counts = np.diff(start)
    mean = np.add.reduceat(X, start[:-1], axis=0) / counts[:, None]
    reach = np.sqrt(np.maximum.reduceat(((X - mean[owner]) ** 2).sum(axis=1), start[:-1]))
    max_abs = np.maximum.reduceat(np.abs(X).max(axis=1), start[:-1])
    Gp, gp = G[parent], g[parent]                                   # (n, K, d), (n, K)
    sc = np.einsum("nkd,nd->nk", Gp, mean) + gp
    g1 = np.abs(Gp).sum(axis=2)
    far = np.abs(sc) - (gam * (np.einsum("nkd,nd->nk", np.abs(Gp), np.abs(mean)) + np.abs(gp))
                        + reach[:, None] * (1.0 + 1e-10) + g1 * largest[:, None]
                        + dn[parent] * np.maximum(max_abs, np.abs(mean).max(axis=1))[:, None]
                        + dh[parent] + gam * (g1 * max_abs[:, None] + np.abs(gp))) * _SLACK
    return np.nonzero(np.isfinite(dn[parent]) & ~(far > 0.0))


def piece_errors(pcell: np.ndarray, code_p: np.ndarray, dn: np.ndarray, dh: np.ndarray,
                 slot_err: np.ndarray) -> np.ndarray:
    """The slot errors ``(m, 2)`` of a split's pieces (of cells ``pcell``, codes ``code_p``):
    a piece's constraints are its cell's (``slot_err`` per cell) and the lines of the units
    that cut the cell, the units whose sides vary among the cell's pieces; ``dn``, ``dh`` per
    cell and unit."""
    made = np.zeros((len(slot_err), 2))
    if len(pcell):
        order = np.argsort(pcell, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(pcell[order]) != 0])
        cut = pcell[order][starts]
        varies = (np.maximum.reduceat(code_p[order], starts, axis=0)
                  != np.minimum.reduceat(code_p[order], starts, axis=0))
        made[cut, 0] = np.where(varies, dn[cut], 0.0).max(axis=1, initial=0.0)
        made[cut, 1] = np.where(varies, dh[cut], 0.0).max(axis=1, initial=0.0)
    return np.maximum(slot_err[pcell], made[pcell])


def tight_rows(P: Polytopes):
    """Per vertex, whether it is simple (tight on exactly ``d`` of its polytope's constraints)
    and, for the simple ones, the rows of ``P.N`` / ``P.h`` they are tight on ``(s, d)``."""
    d = P.dim
    owner = P.vertex_owner
    rows, start = csr_rows(P.cstart, owner)        # every (vertex, constraint of its polytope)
    vertex = np.repeat(np.arange(len(owner)), np.diff(start))
    slot = P.slot[rows]
    word = P.inc[vertex, slot // 64]
    tight = (word >> (slot % 64).astype(np.uint64)) & np.uint64(1) == 1
    count = np.bincount(vertex[tight], minlength=len(owner))
    simple = count == d
    take = tight & simple[vertex]
    return simple, rows[take].reshape(-1, d)


def vertex_radii(P: Polytopes, slot_err: np.ndarray):
    """A bound on ``|v - v*|_inf`` for every vertex of ``P``, ``inf`` where the vertex is not
    simple or its constraints are too ill-conditioned to bound it (module docstring).

    Parameters
    ----------
    P : Polytopes
    slot_err : ndarray (n, 2)
        Per polytope, ``(dn, dh)`` bounding every one of its constraints' distance from exact.

    Returns
    -------
    rho : ndarray (n_vertices,)
    simple : ndarray of bool (n_vertices,)
    rows : ndarray (n_simple, d)
        The tight rows of the simple vertices (:func:`tight_rows`).
    """
    simple, rows = tight_rows(P)
    rho = np.full(len(P.X), np.inf)
    if not rows.size:
        return rho, simple, rows
    idx = np.flatnonzero(simple)
    rho[idx] = radii(P.N[rows], P.h[rows], P.X[idx], slot_err[P.vertex_owner[idx]])
    return rho, simple, rows


def radii(N: np.ndarray, h: np.ndarray, v: np.ndarray, err: np.ndarray) -> np.ndarray:
    """For points ``v`` ``(s, d)`` each on ``d`` constraints ``N[i] x = h[i]`` ``(s, d, d)``,
    ``(s, d)`` within ``err[i] = (dn, dh)`` of exact: a bound on the distance ``|v - v*|_inf``
    to the exact constraints' common point, ``inf`` where the constraints are too
    ill-conditioned to bound it (module docstring)."""
    d = N.shape[-1]
    out = np.full(len(v), np.inf)
    if not len(v):
        return out
    g = _gamma(d + 1)
    absv = np.abs(v)
    resid = (np.abs(np.einsum("sij,sj->si", N, v) - h)
             + g * (np.einsum("sij,sj->si", np.abs(N), absv) + np.abs(h)))
    R = (resid.max(axis=1) + err[:, 0] * absv.max(axis=1) + err[:, 1]) * _SLACK
    det_ok = np.abs(np.linalg.det(N)) > 0
    M = np.zeros_like(N)
    if det_ok.any():
        M[det_ok] = np.linalg.inv(N[det_ok])
    absM = np.abs(M)
    norm_M = absM.sum(axis=2).max(axis=1) * _SLACK
    E = np.matmul(M, N) - np.eye(d)
    alpha = (np.abs(E).sum(axis=2).max(axis=1)
             + g * (np.matmul(absM, np.abs(N)).sum(axis=2).max(axis=1) + d)
             + norm_M * err[:, 0]) * _SLACK
    ok = det_ok & (alpha < 0.5) & np.isfinite(R)
    out[ok] = norm_M[ok] * R[ok] / (1.0 - alpha[ok]) * _SLACK
    return out


def uncertified(P: Polytopes, parent: np.ndarray, G: np.ndarray, g: np.ndarray,
                dn: np.ndarray, dh: np.ndarray, slot_err: np.ndarray, center: np.ndarray,
                radius: np.ndarray, known=None, threads=None):
    """Which children of a ReLU-type split the filter cannot certify (module docstring).

    Parameters
    ----------
    P : Polytopes
        The children (every child of the batch, uncut cells included).
    parent : ndarray (n,)
        Each child's cell in the split batch.
    G, g : ndarrays (cells, K, d), (cells, K)
        The layer's unit-normal hyperplanes on the split cells.
    dn, dh : ndarrays (cells, K)
        Their error bounds (:func:`hyperplane_errors`; ``inf`` on constant units, which are
        not decided by signs and are skipped).
    slot_err : ndarray (n, 2)
        The children's slot errors.
    center, radius : ndarrays (n, d), (n,)
        The interior points of the polytopes whose ``radius`` is finite (new regions), which
        must be strictly inside every exact constraint; ``inf``: not checked (a sliver,
        settled exactly anyway, or a cell whose region test was passed when it was made).
    known, threads : ignored
        (The compiled filter's: bounds on the vertex radii known from before, and its thread
        count; this path computes every radius, in one thread.)

    Returns
    -------
    bad : ndarray of bool (n,)
    rho : ndarray (n,)
        The largest vertex radius of each polytope (:func:`vertex_radii`).
    """
    n, d = len(P), P.dim
    bad = np.zeros(n, dtype=bool)
    if n == 0:
        return bad, np.zeros(0)
    # a region: its centre strictly inside every exact constraint (slack beyond its rounding
    # and the slot error), so that the exact piece has an interior
    region = np.flatnonzero(np.isfinite(radius))
    if region.size:
        rows, start = csr_rows(P.cstart, region)
        owner_c = np.repeat(np.arange(len(region)), np.diff(start))
        c = center[region][owner_c]
        N, h = P.N[rows], P.h[rows]
        slack = h - np.einsum("rd,rd->r", N, c)
        loss = (_gamma(d + 2) * (np.einsum("rd,rd->r", np.abs(N), np.abs(c)) + np.abs(h))
                + slot_err[region][owner_c, 0] * np.abs(c).max(axis=1)
                + slot_err[region][owner_c, 1]) * _SLACK
        inside = slack > loss
        ok = np.ones(len(region), dtype=bool)
        np.logical_and.at(ok, owner_c, inside)
        bad[region[~ok]] = True
    rho, simple, rows = vertex_radii(P, slot_err)
    owner = P.vertex_owner
    finite = np.isfinite(rho)
    bad |= np.logical_or.reduceat(~finite, P.vstart[:-1])
    rho = np.where(finite, rho, 0.0)            # (those cells are out already)
    largest = np.maximum.reduceat(rho, P.vstart[:-1])   # (every polytope has vertices)
    # tight rows per vertex (the simple ones), to recognise a vertex made on a unit
    tight = np.full((len(P.X), d), -1, dtype=np.int64)
    tight[np.flatnonzero(simple)] = rows
    gam = _gamma(d + 1)
    near_p, near_u = near_pairs(P.X, P.vstart, owner, parent, G, g, dn, dh, largest)
    step = 1 << 20
    for lo in range(0, len(near_p), max(1, step // 32)):
        np_, nu = near_p[lo:lo + max(1, step // 32)], near_u[lo:lo + max(1, step // 32)]
        vrows, vstart = csr_rows(P.vstart, np_)             # every vertex of each near pair
        pair = np.repeat(np.arange(len(np_)), np.diff(vstart))
        c, u = parent[np_][pair], nu[pair]
        v = P.X[vrows]
        Gv, gv = G[c, u], g[c, u]                                   # (s, d), (s,)
        sv = np.einsum("sd,sd->s", Gv, v) + gv
        absv = np.abs(v)
        bound = ((np.abs(Gv).sum(axis=1) * rho[vrows] + dn[c, u] * absv.max(axis=1) + dh[c, u]
                  + gam * (np.einsum("sd,sd->s", np.abs(Gv), absv) + np.abs(gv))) * _SLACK)
        doubt = np.flatnonzero(~(np.abs(sv) > bound))
        if not doubt.size:
            continue
        # a vertex made on the unit's hyperplane is tight on its slot, ``N = -+G``,
        # ``h = +-g`` to the bit: exactly on it
        t = tight[vrows[doubt]]                                     # (p, d)
        has = t >= 0
        Nt = P.N[np.where(has, t, 0)]                               # (p, d, d)
        ht = P.h[np.where(has, t, 0)]
        Gu, gu = Gv[doubt][:, None, :], gv[doubt][:, None]
        same = (np.all(Nt == -Gu, axis=2) & (ht == gu)) | (np.all(Nt == Gu, axis=2)
                                                           & (ht == -gu))
        made_on = (same & has).any(axis=1)
        bad[owner[vrows[doubt[~made_on]]]] = True
    return bad, largest
