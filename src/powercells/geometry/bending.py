"""Bend angles where a layer's boundary crosses an earlier boundary, in 2-D (SPEC §4).

For a target unit ``k`` of layer ``l`` and two depth-``(l-1)`` regions sharing an edge of the
mesh (the edge lies on unit ``j`` of an earlier layer), unit ``k``'s boundary has a piece in each
region with normals ``n = grad h_k`` on either side (the same continuous ``h_k``, so consistently
oriented). Where ``h_k`` vanishes on the shared edge the two pieces meet at a ridge and bend by

    bend_oriented = arccos(<n, n'> / (|n| |n'|))  in [0, pi]      (0: no fold)
    bend_unsigned = arccos(|<n, n'>| / (|n| |n'|)) in [0, pi/2]   (the paper's form)

A target unit that is constant on one side (``n = 0``) has no piece there and no ridge. A ridge
through a mesh vertex (where several edges meet) is not reported: the edges meeting there are
not a single facet.

:func:`planar_bends` reads the ridges off the planar mesh (2-D, ReLU-type targets).
:func:`bends` works in any dimension from the facet adjacency (:mod:`.adjacency`): for every
adjacent pair and every target hyperplane (a ReLU-type unit's switch, or two pieces ``r1 < r2``
of a maxout / max-pool / MASO unit, which bend where those two pieces tie at the top), the ridge
``F ∩ {h = 0}`` must have a ``(d-2)``-dimensional relative interior inside the facet ``F``. It is
certified without an LP when the facet's inscribed ball meets the target hyperplane in a ball of
radius above the region tolerance; otherwise one LP (the Chebyshev ball within the ridge's flat)
decides. :func:`decision_boundary_bends` applies the same to the network's linear head (SPEC
§4.4): the logit for one output, the logit differences ``f_c - f_c'`` (tied at the top) for
several.

Nothing undecided is dropped silently. A target hyperplane *parallel to* the facet (SPEC §4.3,
the non-generic case ``n ∥ u_j``) either misses it (no ridge) or contains it: then ``h`` vanishes
on the whole facet and the bend is exactly 0 (``h`` changes sign across it) or pi (a fold); such
pairs are listed in ``Bends.coincident`` with that angle. A ridge whose ``(d-2)``-ball has a
radius in ``(empty, region]`` (for ``d = 2``: a ridge point within ``region`` of the facet's
end) is listed in ``Bends.undecided``. Tolerances come from ``tree.tolerances``: ``zero``
(relative to the terms) says a target is constant on a side; a target hyperplane is parallel to
the facet when it tilts from it by at most ``region`` across the domain's diameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Bends", "bends", "decision_boundary_bends", "planar_bends"]


@dataclass
class Bends:
    """One row per ridge: the two regions (indices in ``tree.levels[layer - 1]``), the unit the
    shared edge lies on (crossing), the unit whose boundary bends (target), the ridge point and
    both angles (radians).

    ``piece_1, piece_2`` name the two pieces of the target unit that tie on the ridge for
    maxout / max-pool / MASO targets and the two classes for the decision boundary; they are -1
    for ReLU-type targets (the switch ``h_k = 0``) and for a one-logit head (``f = 0``).
    ``normal_a, normal_b`` are the gradients of the same continuous function (``h_k``, the
    piece difference ``piece_1 - piece_2``, or the logit difference) on either region.

    ``coincident`` ``(q, 5)``: ``region_a, region_b, target_unit, piece_1, piece_2`` where the
    target's hyperplane contains the whole facet (parallel case of SPEC §4.3), with
    ``coincident_bend`` ``(q,)`` the oriented bend there, 0 or pi. ``undecided`` ``(u, 5)``, same
    columns: ridges too thin to call under the region tolerance, too wide to call empty. Neither
    is counted among the ridges.
    """

    region_a: np.ndarray
    region_b: np.ndarray
    crossing_layer: np.ndarray
    crossing_unit: np.ndarray
    target_layer: np.ndarray
    target_unit: np.ndarray
    point: np.ndarray
    normal_a: np.ndarray
    normal_b: np.ndarray
    bend_oriented: np.ndarray
    bend_unsigned: np.ndarray
    piece_1: np.ndarray | None = None
    piece_2: np.ndarray | None = None
    coincident: np.ndarray | None = None
    coincident_bend: np.ndarray | None = None
    undecided: np.ndarray | None = None

    def __post_init__(self):
        if self.piece_1 is None:
            self.piece_1 = np.full(len(self.region_a), -1, dtype=np.int64)
            self.piece_2 = np.full(len(self.region_a), -1, dtype=np.int64)
        if self.coincident is None:
            self.coincident = np.empty((0, 5), dtype=np.int64)
            self.coincident_bend = np.empty(0)
        if self.undecided is None:
            self.undecided = np.empty((0, 5), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.region_a)


def planar_bends(tree, layer: int, *, eps: float | None = None) -> Bends:
    """The bends of layer ``layer``'s switch units across the edges between depth
    ``layer - 1`` regions of a 2-D tree (``layer >= 2``; ReLU-type target layers)."""
    from ..errors import GeometryError

    if not 2 <= layer <= tree.depth:
        raise GeometryError(f"bends need a layer between 2 and {tree.depth}, got {layer}")
    target = tree.network.layers[layer - 1]
    if not target.is_switch:
        raise GeometryError(f"{target.name}: planar bends are computed for ReLU-type layers "
                            "(use bends() for maxout / max-pool targets)")
    eps = tree.tolerances.empty if eps is None else eps
    depth = layer - 1
    mesh = tree.mesh(depth)
    inner = np.flatnonzero(mesh.edge_faces[:, 1] >= 0)
    fa, fb = mesh.edge_faces[inner, 0], mesh.edge_faces[inner, 1]
    A, B = tree.affine_maps(depth)                       # (n, D, 2), (n, D)
    W, b = target.switch_W, target.switch_b
    Na = np.einsum("kd,edj->ekj", W, A[fa])               # normals on either side: (E, K, 2)
    Nb = np.einsum("kd,edj->ekj", W, A[fb])
    ca = B[fa] @ W.T + b
    p, q = mesh.vertices[mesh.edges[inner, 0]], mesh.vertices[mesh.edges[inner, 1]]
    # h_k at both ends of the edge (continuous across it: either side's map will do)
    hp = np.einsum("ekj,ej->ek", Na, p) + ca
    hq = np.einsum("ekj,ej->ek", Na, q) + ca
    norm_a = np.linalg.norm(Na, axis=2)
    norm_b = np.linalg.norm(Nb, axis=2)
    live = (norm_a > 0) & (norm_b > 0)
    scale = np.where(live, norm_a, 1.0)
    sp, sq = hp / scale, hq / scale                       # signed distances to unit k's line
    ridge = live & (((sp > eps) & (sq < -eps)) | ((sp < -eps) & (sq > eps)))
    e, k = np.nonzero(ridge)
    t = sp[e, k] / (sp[e, k] - sq[e, k])
    point = p[e] + t[:, None] * (q[e] - p[e])
    na, nb = Na[e, k], Nb[e, k]
    cos = np.einsum("ij,ij->i", na, nb) / (norm_a[e, k] * norm_b[e, k])
    cos = np.clip(cos, -1.0, 1.0)
    return Bends(region_a=fa[e], region_b=fb[e],
                 crossing_layer=mesh.edge_layer[inner][e], crossing_unit=mesh.edge_unit[inner][e],
                 target_layer=np.full(len(e), layer), target_unit=k, point=point,
                 normal_a=na, normal_b=nb, bend_oriented=np.arccos(cos),
                 bend_unsigned=np.arccos(np.abs(cos)))


# ------------------------------------------------------------------------------- any dimension
def _target_items(target):
    """The hyperplanes a target layer bends on: ``unit, piece_1, piece_2`` (M,), the piece
    difference ``dA (M, D)``, ``dB (M,)``, and per item the rows "no other piece is above
    piece_1" as ``(G (T, D), g (T,))`` meaning ``G z + g <= 0``."""
    if target.is_switch:
        K = target.out_dim
        none = np.full(K, -1, dtype=np.int64)
        return (np.arange(K), none, none, target.switch_W, target.switch_b,
                [(np.empty((0, target.in_dim)), np.empty(0))] * K)
    units, p1, p2, dA, dB, tops = [], [], [], [], [], []
    for k in range(target.out_dim):
        n = int(target.n_pieces[k])
        for r1 in range(n):
            for r2 in range(r1 + 1, n):
                others = [s for s in range(n) if s not in (r1, r2)]
                units.append(k)
                p1.append(r1)
                p2.append(r2)
                dA.append(target.A[k, r1] - target.A[k, r2])
                dB.append(target.B[k, r1] - target.B[k, r2])
                tops.append((target.A[k, others] - target.A[k, r1],
                             target.B[k, others] - target.B[k, r1]))
    D = target.in_dim
    return (np.array(units, dtype=np.int64), np.array(p1, dtype=np.int64),
            np.array(p2, dtype=np.int64), np.array(dA).reshape(-1, D), np.array(dB), tops)


def _present(tree, layer, units, p1, p2):
    """``(n_regions, M)``: whether each depth ``layer - 1`` region has children on both sides
    of each target item (a necessary condition for a ridge on its boundary: near a ridge point,
    the target's boundary cuts the region)."""
    level = tree.levels[layer]
    n = len(tree.levels[layer - 1])
    R = int(tree.network.layers[layer - 1].max_pieces)
    K = tree.network.layers[layer - 1].out_dim
    has = np.zeros((n, K, max(R, 2)), dtype=bool)
    code = level.code.astype(np.intp)
    rows = np.repeat(level.parent, K)
    cols = np.tile(np.arange(K), len(level))
    has[rows, cols, code.reshape(-1)] = True
    q1 = np.where(p1 < 0, 0, p1)      # switch units: codes 0 and 1
    q2 = np.where(p2 < 0, 1, p2)
    return has[:, units, q1] & has[:, units, q2]


def bends(tree, layer: int, *, adjacency=None, lp=None) -> Bends:
    """The bends of layer ``layer``'s boundaries across the facets between depth
    ``layer - 1`` regions, in any dimension (SPEC §4.2-4.3).

    Parameters
    ----------
    tree : SubdivisionTree
    layer : int
        The target layer, ``2 .. tree.depth``; any kind but a linear (identity) layer, which
        has no boundary (see :func:`decision_boundary_bends` for a linear head).
    adjacency : Adjacency, optional
        The facet adjacency of depth ``layer - 1`` (computed when not given).
    lp : str or LPBackend, optional
        LP backend for the adjacency and the ridges that the facet ball does not certify.

    Returns
    -------
    Bends
        Regions are indices in ``tree.levels[layer - 1]``.

    Raises
    ------
    GeometryError
        For a layer outside ``2 .. depth``, a linear target layer, or an adjacency of another
        depth.
    """
    from ..errors import GeometryError

    if not 2 <= layer <= tree.depth:
        raise GeometryError(f"bends need a layer between 2 and {tree.depth}, got {layer}")
    target = tree.network.layers[layer - 1]
    if target.kind == "identity" or target.max_pieces == 1:
        raise GeometryError(f"{target.name} is linear: it has no boundary to bend (use "
                              "decision_boundary_bends for a linear head)")
    units, p1, p2, dA, dB, tops = _target_items(target)
    present = _present(tree, layer, units, p1, p2)
    return _ridges(tree, layer - 1, adjacency, lp, units, p1, p2, dA, dB, tops, present,
                   target_layer=layer, certify=target.is_switch)


def decision_boundary_bends(tree, *, adjacency=None, lp=None) -> Bends:
    """Bends of the decision boundary (SPEC §4.4) across the facets between the regions of the
    hidden layers (depth ``L - 1``), in any dimension.

    The target is the linear head: ``f = 0`` for one output (``piece_1 = piece_2 = -1``), the
    ties ``f_c = f_c' >= f_j`` for several (``piece_1, piece_2 = c, c'``, ``c < c'``).
    ``target_layer`` is ``L`` and ``target_unit`` 0.

    Raises
    ------
    GeometryError
        If the last layer is not linear, or the network has no hidden layer.
    """
    from ..errors import GeometryError

    head = tree.network.layers[-1]
    if head.kind != "identity":
        raise GeometryError(f"{head.name} is {head.kind}, not a linear head: the decision "
                            "boundary of SPEC §5.3 needs one")
    if tree.depth < 2:
        raise GeometryError("the network has no hidden layer: its decision boundary is flat")
    W, b = head.A[:, 0, :], head.B[:, 0]
    C, D = W.shape
    if C == 1:
        units, p1, p2 = np.zeros(1, np.int64), np.full(1, -1), np.full(1, -1)
        dA, dB, tops = W, b, [(np.empty((0, D)), np.empty(0))]
        certify = True
    else:
        c1, c2 = np.triu_indices(C, 1)
        units, p1, p2 = np.zeros(len(c1), np.int64), c1.astype(np.int64), c2.astype(np.int64)
        dA, dB = W[c1] - W[c2], b[c1] - b[c2]
        tops = [(W[[j for j in range(C) if j not in (i, k)]] - W[i],
                 b[[j for j in range(C) if j not in (i, k)]] - b[i]) for i, k in zip(c1, c2)]
        certify = False
    # a ridge needs a decision-boundary piece on both sides: the pieces name the class pairs
    # present in each region (2-D: the leaves' segments, exact clipping; else one LP each)
    present = np.zeros((len(tree.levels[tree.depth - 1]), len(units)), dtype=bool)
    if tree.levels[-1].polygons is not None:
        db = tree.decision_boundary()
        region, classes = tree.levels[-1].parent[db.leaf], db.classes
    else:
        from .boundary import decision_boundary_pieces

        pieces = decision_boundary_pieces(tree, lp=lp)
        region, classes = pieces.region, pieces.classes
    if C == 1:
        present[region, 0] = True
    else:
        item = {(int(i), int(k)): m for m, (i, k) in enumerate(zip(c1, c2))}
        for r, (i, k) in zip(region, classes):
            present[r, item[(int(i), int(k))]] = True
    return _ridges(tree, tree.depth - 1, adjacency, lp, units, p1, p2, dA, dB, tops, present,
                   target_layer=tree.depth, certify=certify)


def _ridges(tree, depth, adjacency, lp, units, p1, p2, dA, dB, tops, present, *,
            target_layer, certify) -> Bends:
    from ..errors import GeometryError
    from .adjacency import _LPAdjacency, facet_adjacency

    k = tree.domain.dim
    if adjacency is None:
        adjacency = facet_adjacency(tree, depth, lp=lp)
    elif adjacency.depth != depth:
        raise GeometryError(f"the adjacency is of depth {adjacency.depth}; bends of layer "
                            f"{depth + 1} need depth {depth}")
    empty = Bends(*(np.empty(0, np.int64),) * 6, np.empty((0, k)), np.empty((0, k)),
                  np.empty((0, k)), np.empty(0), np.empty(0))
    if k < 2 or len(adjacency) == 0:
        return empty
    tol = tree.tolerances
    rows = _LPAdjacency(tree, lp)
    A, B = tree.affine_maps(depth)
    row_norm = np.linalg.norm(A, axis=2)                    # (n, D): terms of the gradients
    absdA = np.abs(dA)
    a, b = adjacency.region_a, adjacency.region_b

    def gradients(e, m):
        ga = np.einsum("md,mdk->mk", dA[m], A[a[e]])
        gb = np.einsum("md,mdk->mk", dA[m], A[b[e]])
        c0 = np.einsum("md,md->m", dA[m], B[a[e]]) + dB[m]
        norm_a, norm_b = np.linalg.norm(ga, axis=1), np.linalg.norm(gb, axis=1)
        # constant on a side (relative to its terms): no piece there (SPEC §4.2 "undefined")
        live = (norm_a > tol.zero * np.einsum("md,md->m", row_norm[a[e]], absdA[m])) & (
            norm_b > tol.zero * np.einsum("md,md->m", row_norm[b[e]], absdA[m])) & (
            norm_a > 0) & (norm_b > 0)
        n = adjacency.normal[e]
        g_in = ga - np.einsum("mk,mk->m", ga, n)[:, None] * n   # gradient within the facet
        norm_in = np.linalg.norm(g_in, axis=1)
        parallel = rows.parallel(norm_in / np.where(norm_a > 0, norm_a, 1.0))
        return ga, gb, c0, norm_a, norm_b, live, g_in, norm_in, parallel

    def top_rows(i_e, i_m):
        """The rows "piece_1 is at the top" on region_a, normalised; None when infeasible."""
        Gt, gt = tops[i_m]
        if not len(gt):
            return np.empty((0, k)), np.empty(0)
        Tt = Gt @ A[a[i_e]]
        tt = -(Gt @ B[a[i_e]] + gt)
        tn = np.linalg.norm(Tt, axis=1)
        ok = (tn > tol.zero * (np.abs(Gt) @ row_norm[a[i_e]])) & (tn > 0)
        if np.any(~ok & (tt < -tol.region)):
            return None
        return Tt[ok] / tn[ok, None], tt[ok] / tn[ok]

    # ---- the parallel case (SPEC §4.3, n ∥ u_j): every (pair, item), not only the "present"
    # ones (a target containing the facet keeps each region on one side of it)
    M = len(units)
    coincident, coincident_bend, undecided = [], [], []
    step = max(1, 200_000 // max(1, M * k))
    for lo in range(0, len(adjacency), step):
        e = np.repeat(np.arange(lo, min(lo + step, len(adjacency))), M)
        m = np.tile(np.arange(M), len(e) // M)
        ga, gb, c0, norm_a, _, live, _, _, parallel = gradients(e, m)
        h_center = np.einsum("mk,mk->m", ga, adjacency.center[e]) + c0
        on = live & parallel & (np.abs(h_center) <= 2 * tol.region * norm_a)
        for i in np.flatnonzero(on):
            top = top_rows(e[i], m[i])
            if top is None:
                continue
            if len(top[1]):
                Ga, ga_ = rows.rows(depth, a[e[i]])
                Gb, gb_ = rows.rows(depth, b[e[i]])
                _, radius = rows.facet(np.vstack([Ga, Gb, top[0]]),
                                       np.concatenate([ga_, gb_, top[1]]),
                                       adjacency.normal[e[i]], adjacency.offset[e[i]])
            else:
                radius = adjacency.radius[e[i]]
            key = (a[e[i]], b[e[i]], units[m[i]], p1[m[i]], p2[m[i]])
            if radius > tol.region:
                coincident.append(key)
                coincident_bend.append(0.0 if ga[i] @ gb[i] >= 0 else np.pi)
            elif radius > tol.empty:
                undecided.append(key)

    # ---- ridges: a target hyperplane crossing the facet
    e, m = np.nonzero(present[a] & present[b])
    ga, gb, c0, norm_a, norm_b, live, g_in, norm_in, parallel = gradients(e, m)
    live &= ~parallel
    e, m, ga, gb, c0, g_in = e[live], m[live], ga[live], gb[live], c0[live], g_in[live]
    norm_a, norm_b, norm_in = norm_a[live], norm_b[live], norm_in[live]
    n = adjacency.normal[e]
    center, radius = adjacency.center[e], adjacency.radius[e]
    h_center = np.einsum("mk,mk->m", ga, center) + c0
    delta = np.abs(h_center) / norm_in
    point = center - (h_center / norm_in ** 2)[:, None] * g_in
    if k == 2:
        sure = delta < radius - tol.region
    else:
        sure = radius ** 2 - delta ** 2 > tol.region ** 2
    sure &= certify
    found = sure.copy()
    for i in np.flatnonzero(~sure):
        top = top_rows(e[i], m[i])
        if top is None:
            continue
        Ga, ga_ = rows.rows(depth, a[e[i]])
        Gb, gb_ = rows.rows(depth, b[e[i]])
        G = np.vstack([Ga, Gb, top[0]])
        g = np.concatenate([ga_, gb_, top[1]])
        x, r = _ridge_point(rows, G, g, n[i], adjacency.offset[e[i]], ga[i], c0[i], tol)
        if r > tol.region:
            found[i] = True
            point[i] = x
        elif r > tol.empty:
            undecided.append((a[e[i]], b[e[i]], units[m[i]], p1[m[i]], p2[m[i]]))
    e, m = e[found], m[found]
    ga, gb, point = ga[found], gb[found], point[found]
    cos = np.clip(np.einsum("ij,ij->i", ga, gb) / (norm_a[found] * norm_b[found]), -1.0, 1.0)
    first = np.searchsorted(adjacency.unit_pair, e)
    return Bends(region_a=a[e], region_b=b[e], crossing_layer=adjacency.layer[first],
                 crossing_unit=adjacency.unit[first],
                 target_layer=np.full(len(e), target_layer, dtype=np.int64),
                 target_unit=units[m], point=point, normal_a=ga, normal_b=gb,
                 bend_oriented=np.arccos(cos), bend_unsigned=np.arccos(np.abs(cos)),
                 piece_1=p1[m], piece_2=p2[m],
                 coincident=np.array(coincident, dtype=np.int64).reshape(-1, 5),
                 coincident_bend=np.array(coincident_bend, dtype=np.float64),
                 undecided=np.array(undecided, dtype=np.int64).reshape(-1, 5))


def _ridge_point(rows, G, g, n, offset, grad, const, tol):
    """The Chebyshev ball of ``{G t <= g, n t = offset, grad t + const = 0}`` within its
    ``(d-2)``-flat: ``(centre, radius)``, radius ``-inf`` when the ridge misses the facet. Rows
    parallel to the flat count as bounds on the radius (the facet's own rows must hold within
    the region tolerance, any other row strictly: else the ridge runs along the facet's
    relative boundary); for ``d = 2`` the ridge is a point and its radius is its distance to the
    facet's ends."""
    k = len(n)
    M = np.stack([n, grad])
    x0 = np.linalg.lstsq(M, np.array([offset, -const]), rcond=None)[0]
    q, _ = np.linalg.qr(M.T, mode="complete")
    N = q[:, 2:]
    rhs = g - G @ x0
    P = G @ N
    norms = np.linalg.norm(P, axis=1) if k > 2 else np.zeros(len(g))
    flat = rows.parallel(norms)
    on_facet = rows.parallel(np.linalg.norm(G[flat] - np.outer(G[flat] @ n, n), axis=1))
    if np.any(rhs[flat][on_facet] < -tol.region):
        return x0, -np.inf
    bound = np.min(rhs[flat][~on_facet], initial=np.inf)
    if k == 2 or not bound > tol.empty:
        return x0, bound
    P, rhs, norms = P[~flat], rhs[~flat], norms[~flat]
    ball = rows.backend.chebyshev(P / norms[:, None], rhs / norms, cap=rows.diam)
    if not np.isfinite(ball.radius):
        return x0, -np.inf
    radius = float(ball.radius)
    # a parallel row within the region tolerance of the ridge makes it undecided at best
    return x0 + N @ ball.center, (radius if bound > tol.region else min(radius, bound))
