"""The decision boundary of a 2-D subdivision, as segments per leaf (SPEC §5.3).

On a leaf the network's output is affine, ``f(x) = A x + B``. For one output (a logit) the
boundary is ``{f = 0}``; for C outputs it is where the arg-max changes: the pieces
``{x in leaf : f_c = f_c' >= f_j for all j}``, which inside a leaf are the edges of the power
diagram of the classes (SPEC §5.3). Every piece is a segment, computed by exact convex clipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .polygons import Polygons

__all__ = ["DecisionBoundary", "DecisionPieces", "decision_boundary", "decision_boundary_pieces"]


@dataclass
class DecisionBoundary:
    """Segments of the decision boundary.

    Attributes
    ----------
    segments : ndarray, shape (m, 2, 2)
        End points, engine coordinates.
    leaf : ndarray of int64, shape (m,)
        The leaf (index in the tree's last level) each segment lies in. A segment along an edge
        between two leaves is listed with both.
    classes : ndarray of int64, shape (m, 2)
        The two classes tied on the segment, ``c < c'``. With one output, class 1 is ``f > 0``
        and class 0 is ``f <= 0``, so every segment has classes ``(0, 1)``.
    tied_leaves : ndarray of int64
        Leaves on which two classes tie identically (the output difference is constant zero),
        so that the boundary is the whole leaf rather than segments.
    """

    segments: np.ndarray
    leaf: np.ndarray
    classes: np.ndarray
    tied_leaves: np.ndarray

    def __len__(self) -> int:
        return len(self.leaf)

    def length(self) -> float:
        d = self.segments[:, 1] - self.segments[:, 0]
        return float(np.hypot(d[:, 0], d[:, 1]).sum())


def decision_boundary(polys: Polygons, A: np.ndarray, B: np.ndarray, *, eps: float,
                      zero: float = 1e-12, terms=None) -> DecisionBoundary:
    """Decision-boundary segments of leaves with polygons ``polys`` and output maps ``(A, B)``.

    Parameters
    ----------
    A, B : ndarray, shapes (n, C, 2) and (n, C)
    eps : float
        Distance under which a vertex lies on a line.
    zero : float
        Relative tolerance under which an output difference is constant on a leaf.
    terms : tuple of ndarrays (n, C), optional
        The sizes of the terms that produced each output's gradient and constant (e.g. ``|W|``
        times the hidden layer's row norms and ``|W| |B_hidden| + |b|``): a difference is
        constant, and a constant difference a tie, when it is at most ``zero`` times them.
        Default: the sizes of the outputs' own gradients and constants (which cannot see a
        gradient that cancels to rounding).
    """
    n, C = B.shape
    if terms is None:
        terms = (np.linalg.norm(A, axis=2), np.abs(B))
    A_terms, B_terms = terms
    if C == 1:   # one logit: classes "f <= 0" and "f > 0"
        A = np.concatenate([np.zeros_like(A), A], axis=1)
        B = np.concatenate([np.zeros_like(B), B], axis=1)
        A_terms = np.concatenate([np.zeros_like(A_terms), A_terms], axis=1)
        B_terms = np.concatenate([np.zeros_like(B_terms), B_terms], axis=1)
        C = 2
    segs, leaves, classes, tied = [], [], [], []
    every = np.arange(n)
    for c in range(C):
        for c2 in range(c + 1, C):
            # the part of every leaf where c and c2 are both maximal ...
            P, origin = polys, every
            for j in range(C):
                for win in (c, c2):
                    if j in (c, c2) or len(P) == 0:
                        continue
                    s, const = _difference(A[origin], B[origin], A_terms[origin], win, j, P,
                                           zero)
                    P, keep = P.clip(s, eps)
                    origin = origin[keep]
            if len(P) == 0:
                continue
            # ... cut by the line f_c = f_c2
            _, const = _difference(A[origin], B[origin], A_terms[origin], c, c2, P, zero)
            gap = B[origin, c] - B[origin, c2]
            tie = const & (np.abs(gap) <= zero * (B_terms[origin, c] + B_terms[origin, c2]))
            tied.append(origin[tie])
            live = np.flatnonzero(~const)
            if live.size == 0:
                continue
            P, origin = P.take(live), origin[live]
            s, _ = _difference(A[origin], B[origin], A_terms[origin], c, c2, P, zero)
            seg, has = _line_segments(P, s, A[origin], c, c2, eps)
            segs.append(seg[has])
            leaves.append(origin[has])
            classes.append(np.tile([c, c2], (int(has.sum()), 1)))
    if segs:
        segments = np.concatenate(segs)
        leaf = np.concatenate(leaves)
        cls = np.concatenate(classes)
    else:
        segments, leaf, cls = np.empty((0, 2, 2)), np.empty(0, np.int64), np.empty((0, 2), np.int64)
    order = np.lexsort((cls[:, 1], cls[:, 0], leaf))
    tied_leaves = np.unique(np.concatenate(tied)) if tied else np.empty(0, np.int64)
    return DecisionBoundary(segments[order], leaf[order].astype(np.int64),
                            cls[order].astype(np.int64), tied_leaves.astype(np.int64))


def _difference(A, B, A_terms, c, j, P: Polygons, zero):
    """Per vertex of P, the signed distance to ``f_c = f_j`` (positive where c wins); and per
    polygon whether the difference is constant (then the value is +-1 by its sign)."""
    gx = A[:, c, 0] - A[:, j, 0]
    gy = A[:, c, 1] - A[:, j, 1]
    g0 = B[:, c] - B[:, j]
    norm = np.hypot(gx, gy)
    const = norm <= zero * (A_terms[:, c] + A_terms[:, j])
    safe = np.where(const, 1.0, norm)
    owner = P.owner
    s = (gx[owner] * P.xy[:, 0] + gy[owner] * P.xy[:, 1] + g0[owner]) / safe[owner]
    # a constant difference: c keeps the whole polygon when it is >= 0
    s = np.where(const[owner], np.where(g0[owner] >= 0, 1.0, -1.0), s)
    return s, const


def _line_segments(P: Polygons, s: np.ndarray, A, c, c2, eps):
    """The segment ``{s = 0}`` inside every polygon: its end points and whether it has length."""
    n = len(P)
    nxt = P.next_vertex()
    owner = P.owner
    sigma = np.where(s > eps, 1, np.where(s < -eps, -1, 0))
    on = sigma == 0
    cross = (sigma * sigma[nxt]) == -1
    t = np.zeros(len(s))
    t[cross] = s[cross] / (s[cross] - s[nxt][cross])
    pts = np.concatenate([P.xy[on], (P.xy + t[:, None] * (P.xy[nxt] - P.xy))[cross]])
    poly = np.concatenate([owner[on], owner[cross]])
    # order the candidate points along the line's direction, per polygon
    d = np.stack([-(A[:, c, 1] - A[:, c2, 1]), A[:, c, 0] - A[:, c2, 0]], axis=1)
    proj = np.einsum("ij,ij->i", pts, d[poly])
    order = np.lexsort((proj, poly))
    pts, poly = pts[order], poly[order]
    seg = np.zeros((n, 2, 2))
    has = np.zeros(n, dtype=bool)
    if len(poly) == 0:
        return seg, has
    first = np.flatnonzero(np.r_[True, poly[1:] != poly[:-1]])
    last = np.r_[first[1:], len(poly)] - 1
    p = poly[first]
    seg[p, 0] = pts[first]
    seg[p, 1] = pts[last]
    length = np.hypot(*(pts[last] - pts[first]).T)
    has[p] = length > eps
    return seg, has


@dataclass
class DecisionPieces:
    """The decision boundary as a sub-complex in any dimension (SPEC §5.3): its pieces with a
    non-empty relative interior, per region of the hidden layers.

    Attributes
    ----------
    region : ndarray of int64, shape (m,)
        Index in ``tree.levels[L - 1]`` (the hidden layers' regions; the linear head splits
        nothing).
    classes : ndarray of int64, shape (m, 2)
        ``(c, c')``, ``c < c'``, tied on the piece ``{f_c = f_c' >= f_j for all j}``; for one
        output, ``(0, 1)`` with class 1 where ``f > 0``.
    normal, offset : ndarray, shapes (m, k) and (m,)
        The piece's hyperplane ``normal @ t == offset`` (unit normal pointing where ``c'``
        wins).
    center, radius : ndarray, shapes (m, k) and (m,)
        Centre and radius of the largest ``(d-1)``-ball inside the piece, within its
        hyperplane (``inf`` radius for the points of a 1-D domain).
    tied : ndarray of int64, shape (q, 3)
        ``(region, c, c')`` where the two outputs are identical on the whole region (the
        boundary is not a hyperplane there): reported, not listed as pieces.
    undecided : ndarray of int64, shape (u, 3)
        ``(region, c, c')`` whose piece has a relative inradius in ``(empty, region]``.
    """

    region: np.ndarray
    classes: np.ndarray
    normal: np.ndarray
    offset: np.ndarray
    center: np.ndarray
    radius: np.ndarray
    tied: np.ndarray
    undecided: np.ndarray

    def __len__(self) -> int:
        return len(self.region)


def decision_boundary_pieces(tree, *, lp=None) -> DecisionPieces:
    """The pieces of the decision boundary inside every hidden region, in any dimension: one
    Chebyshev LP within the hyperplane ``f_c = f_c'`` per region and class pair (SPEC §5.3).

    A class pair is *tied* on a region when ``f_c' - f_c`` vanishes identically there: its
    gradient and its constant are each at most ``tree.tolerances.zero`` times the size of the
    terms that produced them (both classes' terms: for one output, those of the logit itself).

    Raises
    ------
    GeometryError
        If the last layer is not a linear head.
    """
    from ..errors import GeometryError
    from .adjacency import _LPAdjacency

    head = tree.network.layers[-1]
    if head.kind != "identity":
        raise GeometryError(f"{head.name} is {head.kind}, not a linear head: the decision "
                              "boundary of SPEC §5.3 needs one")
    depth = tree.depth - 1
    W, b = head.A[:, 0, :], head.B[:, 0]
    if W.shape[0] == 1:
        W = np.vstack([np.zeros_like(W), W])
        b = np.concatenate([[0.0], b])
    C = W.shape[0]
    k = tree.domain.dim
    A, B = tree.affine_maps(depth)
    tol = tree.tolerances
    rows = _LPAdjacency(tree, lp)
    row_norm = np.linalg.norm(A, axis=2)                    # (n, D): terms of the gradients
    absB = np.abs(B)
    out = {"region": [], "classes": [], "normal": [], "offset": [], "center": [], "radius": []}
    tied, undecided = [], []
    for c1, c2 in zip(*np.triu_indices(C, 1)):
        grad = (W[c2] - W[c1]) @ A                          # f_c' - f_c on every region
        const = B @ (W[c2] - W[c1]) + b[c2] - b[c1]
        norm = np.linalg.norm(grad, axis=1)
        # the terms of both classes (for one output, c1 is the prepended zero row)
        absW = np.abs(W[c1]) + np.abs(W[c2])
        flat = norm <= tol.zero * (row_norm @ absW)
        const_terms = absB @ absW + abs(b[c1]) + abs(b[c2])
        others = [j for j in range(C) if j not in (c1, c2)]
        for i in np.flatnonzero(flat):
            if abs(const[i]) <= tol.zero * const_terms[i]:
                tied.append((i, c1, c2))
        for i in np.flatnonzero(~flat):
            G, g = rows.rows(depth, i)
            if others:
                # f_j <= f_c on the piece
                Gt = (W[others] - W[c1]) @ A[i]
                gt = -((W[others] - W[c1]) @ B[i] + b[others] - b[c1])
                tn = np.linalg.norm(Gt, axis=1)
                live = (tn > tol.zero * (row_norm[i] @ (np.abs(W[others]) + np.abs(W[c1])).T)
                        ) & (tn > 0)
                if np.any(~live & (gt < -tol.region)):
                    continue
                G = np.vstack([G, Gt[live] / tn[live, None]])
                g = np.concatenate([g, gt[live] / tn[live]])
            n, off = grad[i] / norm[i], -const[i] / norm[i]
            center, radius = rows.facet(G, g, n, off)
            if radius > tol.region:
                for key, val in (("region", i), ("classes", (c1, c2)), ("normal", n),
                                 ("offset", off), ("center", center), ("radius", radius)):
                    out[key].append(val)
            elif radius > tol.empty:
                undecided.append((i, c1, c2))
    m = len(out["region"])
    region = np.array(out["region"], dtype=np.int64)
    order = np.lexsort((np.array(out["classes"], dtype=np.int64).reshape(m, 2)[:, 1],
                        np.array(out["classes"], dtype=np.int64).reshape(m, 2)[:, 0], region))
    return DecisionPieces(region[order],
                          np.array(out["classes"], dtype=np.int64).reshape(m, 2)[order],
                          np.array(out["normal"]).reshape(m, k)[order],
                          np.array(out["offset"]).reshape(m)[order],
                          np.array(out["center"]).reshape(m, k)[order],
                          np.array(out["radius"]).reshape(m)[order],
                          np.array(tied, dtype=np.int64).reshape(-1, 3),
                          np.array(undecided, dtype=np.int64).reshape(-1, 3))
