"""Batches of convex polytopes in any dimension, kept as vertices, edges and facets, and cut by
hyperplanes with no LP (the edge-subdivision method of Berzins, ICML 2023, made exact on
degenerate input).

Each polytope of a batch stores

* its vertices, and for every vertex the set of the polytope's constraints that are tight there
  (its *incidence*, a bit set over the polytope's constraint *slots*);
* its edges, as pairs of local vertex indices;
* its constraints ``n . x <= h`` with unit normals, each in its own slot.

Cutting a polytope ``P`` by a hyperplane ``s(x) = g . x + g0 = 0`` (``|g| = 1``) is combinatorial:
vertices with ``s > eps`` go to the ``+`` side, those with ``s < -eps`` to the ``-`` side, the
others lie on the hyperplane and belong to both; every edge with ends strictly on opposite sides
gets a new vertex. The new edges are those of the section ``Q = P n {s = 0}``; two vertices ``a``,
``b`` of ``Q`` span an edge of ``Q`` exactly when no third vertex of ``Q`` is tight on every
constraint tight at both (the smallest face of ``Q`` holding ``a`` and ``b`` is cut out by those
constraints, and a face with two vertices is a segment). That test needs no general position, so
vertices on the hyperplane, several hyperplanes through one vertex, and hyperplanes along faces
are exact, as long as the incidences are: a hyperplane passing within the tolerance of a vertex
without going through it, or grazing an edge, can make them inconsistent, and :meth:`cut`
counts the vertices where that shows (``fragile``: a vertex with fewer than ``d`` edges, which
no d-polytope has) so that callers can fall back. Where every vertex of a section is *simple* (tight on exactly ``d`` constraints,
the usual case) it reduces to matching ``(d-1)``-subsets of tight constraints, a sort; the
pairwise test runs only on sections with a degenerate vertex.

Constraints tight at fewer than ``d`` vertices are not facets and are dropped by :meth:`prune`,
which keeps the slot count small.
"""

from __future__ import annotations

import numpy as np

from ...errors import SolverError

__all__ = ["Polytopes", "affine_values", "csr_rows", "distinct"]

_ONE = np.uint64(1)


def csr_rows(start: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the CSR segments ``idx`` (in that order) and the start array of the gathered
    segments."""
    idx = np.asarray(idx, dtype=np.int64)
    counts = start[idx + 1] - start[idx]
    new = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(counts, out=new[1:])
    rows = np.repeat(start[idx] - new[:-1], counts) + np.arange(new[-1])
    return rows, new


def distinct(a: np.ndarray) -> np.ndarray:
    """The sorted distinct values of an integer array (``np.unique`` without its import of
    ``numpy.ma``, ~7 ms that a small job in a fresh process would notice)."""
    a = np.sort(np.asarray(a).ravel())
    if a.size < 2:
        return a
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def affine_values(X: np.ndarray, G: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``G[i] . X[i] + g[i]`` for every row, summed in a fixed order (coordinate 0, 1, ..., then
    ``g``): the compiled splitter sums the same way, so both paths classify vertices alike."""
    s = X[:, 0] * G[:, 0]
    for j in range(1, X.shape[1]):
        s += X[:, j] * G[:, j]
    return s + g


def _owner(start: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(start) - 1), np.diff(start))


def _start(owner: np.ndarray, n: int) -> np.ndarray:
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=start[1:])
    return start


def _bits(slot: np.ndarray, words: int) -> np.ndarray:
    """Bit sets ``(len(slot), words)`` holding one slot each."""
    out = np.zeros((len(slot), words), dtype=np.uint64)
    slot = np.asarray(slot, dtype=np.int64)
    out[np.arange(len(slot)), slot // 64] = _ONE << (slot % 64).astype(np.uint64)
    return out


def _merge_positions(owners: list, n: int):
    """Positions that interleave groups of rows, each sorted by owner, owner by owner (group 0's
    rows of an owner first), and the start array of the result."""
    counts = [np.bincount(o, minlength=n) for o in owners]
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sum(counts), out=start[1:])
    out = []
    before = start[:-1].copy()          # where each owner's rows of this group begin
    for o, c in zip(owners, counts):
        first = np.cumsum(c) - c        # index of each owner's first row within the group
        out.append(before[o] + np.arange(len(o)) - first[o])
        before += c
    return out, start


def _popcount(bits: np.ndarray) -> np.ndarray:
    return np.bitwise_count(bits).sum(axis=1, dtype=np.int64)


class Polytopes:
    """A batch of convex polytopes in R^d (see the module docstring).

    ``fragile`` (on the result of :meth:`cut`) counts the vertices with fewer than ``d`` edges:
    near-coincident hyperplanes gave near-duplicate vertices inconsistent incidences.

    Attributes
    ----------
    X : ndarray (n_vertices, d)
        Vertices, polytope by polytope (CSR by ``vstart``).
    inc : ndarray of uint64 (n_vertices, words)
        Incidence bit sets over the owning polytope's constraint slots.
    E : ndarray of int64 (n_edges, 2)
        Edges as local vertex indices (CSR by ``estart``).
    N, h, slot : ndarrays (n_constraints, d), (n_constraints,), (n_constraints,)
        Constraints ``N x <= h`` with unit rows, and their slots (CSR by ``cstart``).
    """

    fragile = 0

    def __init__(self, X, inc, vstart, E, estart, N, h, slot, cstart):
        self.X, self.inc, self.vstart = X, inc, vstart
        self.E, self.estart = E, estart
        self.N, self.h, self.slot, self.cstart = N, h, slot, cstart

    # ------------------------------------------------------------------ construction
    @classmethod
    def box(cls, lo, hi) -> Polytopes:
        """The box ``[lo, hi]`` as a batch of one: slot ``2i`` is ``x_i >= lo_i``, slot ``2i+1``
        is ``x_i <= hi_i``."""
        lo = np.asarray(lo, dtype=np.float64)
        hi = np.asarray(hi, dtype=np.float64)
        d = len(lo)
        corners = (np.arange(1 << d)[:, None] >> np.arange(d)[None, :]) & 1   # 1 = upper
        X = np.where(corners == 1, hi, lo)
        words = (2 * d + 63) // 64
        inc = np.zeros((1 << d, words), dtype=np.uint64)
        for i in range(d):
            s = 2 * i + corners[:, i]
            inc |= _bits(s, words)
        a = np.repeat(np.arange(1 << d), d)
        flip = np.tile(1 << np.arange(d), 1 << d)
        b = a ^ flip
        keep = a < b
        E = np.stack([a[keep], b[keep]], axis=1).astype(np.int64)
        N = np.zeros((2 * d, d))
        N[0::2] = -np.eye(d)
        N[1::2] = np.eye(d)
        h = np.empty(2 * d)
        h[0::2], h[1::2] = -lo, hi
        return cls(X, inc, np.array([0, 1 << d]), E, np.array([0, len(E)]), N, h,
                   np.arange(2 * d), np.array([0, 2 * d]))

    @classmethod
    def from_halfspaces(cls, H, hvec, lo, hi, eps: float) -> Polytopes:
        """``{x : H x <= hvec}`` inside the box ``[lo, hi]`` (which must contain it), as a batch
        of one, by clipping the box. Rows of ``H`` need not be unit."""
        P = cls.box(lo, hi)
        H = np.asarray(H, dtype=np.float64)
        hvec = np.asarray(hvec, dtype=np.float64)
        for row, off in zip(H, hvec):
            nrm = float(np.linalg.norm(row))
            if nrm == 0:
                continue
            g, g0 = -row / nrm, off / nrm          # keep g . x + g0 >= 0
            s = P.X @ g + g0
            P, _, _ = P.cut(s, g[None, :], np.array([g0]), eps, both=False)
        return P

    @classmethod
    def concat(cls, parts: list[Polytopes], dim: int | None = None) -> Polytopes:
        parts = [p for p in parts if p is not None]
        if dim is None:
            dim = parts[0].dim
        parts = [p for p in parts if len(p)] or ([parts[0]] if parts else [])
        if not parts:
            return cls.empty(dim)
        if len(parts) == 1:
            return parts[0]
        words = max(p.words for p in parts)
        incs = [p.inc if p.words == words else
                np.hstack([p.inc, np.zeros((len(p.inc), words - p.words), np.uint64)])
                for p in parts]

        def starts(name):
            out, off = [np.zeros(1, dtype=np.int64)], 0
            for p in parts:
                s = getattr(p, name)
                out.append(s[1:] + off)
                off += s[-1]
            return np.concatenate(out)

        return cls(np.vstack([p.X for p in parts]), np.vstack(incs), starts("vstart"),
                   np.vstack([p.E for p in parts]), starts("estart"),
                   np.vstack([p.N for p in parts]), np.concatenate([p.h for p in parts]),
                   np.concatenate([p.slot for p in parts]), starts("cstart"))

    @classmethod
    def empty(cls, dim: int) -> Polytopes:
        z = np.zeros(1, dtype=np.int64)
        return cls(np.zeros((0, dim)), np.zeros((0, 1), np.uint64), z, np.zeros((0, 2), np.int64),
                   z, np.zeros((0, dim)), np.zeros(0), np.zeros(0, np.int64), z)

    # ------------------------------------------------------------------ basic access
    def __len__(self) -> int:
        return len(self.vstart) - 1

    @property
    def dim(self) -> int:
        return self.X.shape[1]

    @property
    def words(self) -> int:
        return self.inc.shape[1]

    @property
    def vertex_owner(self) -> np.ndarray:
        return _owner(self.vstart)

    @property
    def n_vertices(self) -> np.ndarray:
        return np.diff(self.vstart)

    @property
    def n_edges(self) -> np.ndarray:
        return np.diff(self.estart)

    @property
    def n_facets(self) -> np.ndarray:
        return np.diff(self.cstart)

    def vertices(self, i: int) -> np.ndarray:
        return self.X[self.vstart[i]:self.vstart[i + 1]]

    def edges(self, i: int) -> np.ndarray:
        return self.E[self.estart[i]:self.estart[i + 1]]

    def take(self, idx) -> Polytopes:
        idx = np.asarray(idx, dtype=np.int64)
        vr, vs = csr_rows(self.vstart, idx)
        er, es = csr_rows(self.estart, idx)
        cr, cs = csr_rows(self.cstart, idx)
        return Polytopes(self.X[vr], self.inc[vr], vs, self.E[er], es, self.N[cr], self.h[cr],
                         self.slot[cr], cs)

    def take_pruned(self, idx) -> Polytopes:
        """:meth:`take`, then :meth:`prune` (the interface the vertex engine's pieces share)."""
        return self.take(idx).prune()

    def vertex_mean(self) -> np.ndarray:
        if not len(self):
            return np.zeros((0, self.dim))
        # every polytope has vertices, so the CSR segments are never empty
        return np.add.reduceat(self.X, self.vstart[:-1], axis=0) / self.n_vertices[:, None]

    def reach(self, center: np.ndarray) -> np.ndarray:
        """Largest distance from each polytope's ``center`` to its vertices."""
        if not len(self):
            return np.zeros(0)
        diff = self.X - np.repeat(center, self.n_vertices, axis=0)
        return np.sqrt(np.maximum.reduceat(np.einsum("vd,vd->v", diff, diff), self.vstart[:-1]))

    # ------------------------------------------------------------------ balls
    def inner_ball(self, center: np.ndarray) -> np.ndarray:
        """Radius of the largest ball around each ``center`` inside its polytope (a lower
        bound on the inradius when the centre is inside, negative when it is outside)."""
        owner = _owner(self.cstart)
        slack = self.h - np.einsum("cd,cd->c", self.N, center[owner])
        return np.minimum.reduceat(slack, self.cstart[:-1])

    def chebyshev(self, backend, cap: float, idx=None, poll=None,
                  failed: list | None = None) -> tuple[np.ndarray,
                                                                          np.ndarray]:
        """Chebyshev centres and inradii by LP, for the polytopes ``idx`` (default all).

        Parameters
        ----------
        backend : LPBackend
        cap : float
            Bound on the radius variable (any number above every inradius).
        poll : callable, optional
            Called every 64 LPs (a budget's check, which raises to stop).
        failed : list, optional
            Where given, a problem the solver fails on is appended here (its position in
            ``idx``) with radius -inf, instead of raising.

        Raises
        ------
        SolverError
            If the solver fails on a problem and ``failed`` is not given.
        """
        idx = np.arange(len(self)) if idx is None else np.asarray(idx, dtype=np.int64)
        center = np.zeros((len(idx), self.dim))
        radius = np.zeros(len(idx))
        for j, i in enumerate(idx):
            if poll is not None and j % 64 == 63:
                poll()
            lo, hi = self.cstart[i], self.cstart[i + 1]
            try:
                ball = backend.chebyshev(self.N[lo:hi], self.h[lo:hi], cap=cap)
            except SolverError:
                if failed is None:
                    raise
                failed.append(j)
                center[j], radius[j] = np.nan, -np.inf
                continue
            center[j], radius[j] = ball.center, ball.radius
        return center, radius

    # ------------------------------------------------------------------ cutting
    def cut(self, s: np.ndarray, g: np.ndarray, g0: np.ndarray, eps: float, both: bool = True):
        """Cut every polytope ``i`` by its own hyperplane ``g[i] . x + g0[i] = 0``.

        Parameters
        ----------
        s : ndarray (n_vertices,)
            ``g . x + g0`` at every vertex (its owner's hyperplane; ``|g| = 1``).
        g, g0 : ndarrays (n, d), (n,)
        eps : float
            Vertices with ``|s| <= eps`` lie on the hyperplane.
        both : bool
            Keep both sides (a split) or only ``s >= 0`` (a clip).

        Returns
        -------
        pieces : Polytopes
        src : ndarray of int64
            The polytope each piece comes from (pieces are in no particular order).
        side : ndarray of int16
            1 for the ``+`` side (a polytope the hyperplane does not cut is on the ``+`` side
            iff it has a vertex with ``s > eps``), 0 for the ``-`` side.
        """
        n = len(self)
        owner = self.vertex_owner
        pos, neg = s > eps, s < -eps
        has_pos = np.bincount(owner, weights=pos, minlength=n) > 0
        has_neg = np.bincount(owner, weights=neg, minlength=n) > 0
        split = has_pos & has_neg
        whole = np.flatnonzero(~split & (has_pos | both))
        parts, srcs, sides = [], [], []
        fragile = 0
        if whole.size:
            parts.append(self.take(whole))
            srcs.append(whole)
            sides.append(has_pos[whole].astype(np.int16))
        cut_ids = np.flatnonzero(split)
        if cut_ids.size:
            if cut_ids.size == n:
                C, s_cut = self, s
            else:
                C = self.take(cut_ids)
                vr, _ = csr_rows(self.vstart, cut_ids)
                s_cut = s[vr]
            parts.append(C._split(s_cut, g[cut_ids], g0[cut_ids], eps, both))
            srcs.append(np.tile(cut_ids, 2 if both else 1))
            sides.append(np.repeat(np.array([1, 0][:2 if both else 1], dtype=np.int16),
                                   len(cut_ids)))
        if not parts:
            return (Polytopes.empty(self.dim), np.empty(0, np.int64), np.empty(0, np.int16))
        out = Polytopes.concat(parts, self.dim)
        if cut_ids.size and self.dim > 1:
            # every vertex of a d-polytope has at least d edges: fewer means near-coincident
            # hyperplanes gave near-duplicate vertices different incidences (not exact)
            eowner = _owner(out.estart)
            ends = (out.E + out.vstart[eowner][:, None]).ravel()
            degree = np.bincount(ends, minlength=len(out.X))
            fragile += int(np.count_nonzero(degree < self.dim))
        out.fragile = fragile
        return out, np.concatenate(srcs), np.concatenate(sides)

    def _split(self, s, g, g0, eps, both):
        """Both sides (all ``+`` sides, then all ``-`` sides; or the ``+`` sides alone) of
        polytopes that the hyperplanes all cut strictly."""
        n, d = len(self), self.dim
        owner = self.vertex_owner
        pos, neg = s > eps, s < -eps
        on = ~pos & ~neg
        # a free slot for the new constraint in every polytope
        slot, inc = self._free_slots()
        words = inc.shape[1]
        new_bit = _bits(slot, words)
        # new vertices on the crossing edges
        eowner = _owner(self.estart)
        ga = self.E[:, 0] + self.vstart[eowner]
        gb = self.E[:, 1] + self.vstart[eowner]
        cross = (pos[ga] & neg[gb]) | (neg[ga] & pos[gb])
        # interpolated from the + end, whichever way the edge is stored, as the compiled
        # splitter does: both paths make the same vertices, to the bit
        flip = neg[ga[cross]]
        ca = np.where(flip, gb[cross], ga[cross])
        cb = np.where(flip, ga[cross], gb[cross])
        cown = eowner[cross]
        t = s[ca] / (s[ca] - s[cb])
        Xn = self.X[ca] + t[:, None] * (self.X[cb] - self.X[ca])
        incn = (inc[ca] & inc[cb]) | new_bit[cown]
        # the section Q: vertices on the hyperplane, then the new ones, polytope by polytope
        zid = np.flatnonzero(on)
        (p_zero, p_new), _ = _merge_positions([owner[zid], cown], n)
        mq = len(zid) + len(cown)
        q_owner = np.empty(mq, dtype=np.int64)
        q_owner[p_zero], q_owner[p_new] = owner[zid], cown
        q_inc = np.empty((mq, words), dtype=np.uint64)
        q_inc[p_zero], q_inc[p_new] = inc[zid] | new_bit[owner[zid]], incn
        q_kind = np.empty(mq, dtype=np.int8)
        q_kind[p_zero], q_kind[p_new] = 0, 1
        q_ref = np.empty(mq, dtype=np.int64)
        q_ref[p_zero], q_ref[p_new] = zid, np.arange(len(cown))
        qa, qb = _section_edges(q_owner, q_inc, n, d, slot)
        return self._sides(both, pos, neg, on, inc, new_bit, ga, gb, cross, Xn, incn, cown,
                           q_kind, q_ref, q_owner, qa, qb, g, g0, slot)

    def _sides(self, both, pos, neg, on, inc, new_bit, ga, gb, cross, Xn, incn, cown, q_kind,
               q_ref, q_owner, qa, qb, g, g0, slot):
        """The children of a split as one batch: the ``+`` sides of the ``n`` polytopes, then
        (``both``) their ``-`` sides. Every group of rows below is sorted by child already, so
        the children's rows are placed by positions computed from counts, with no sort."""
        n, nv = len(self), len(self.X)
        sides = (1, 0) if both else (1,)
        S = len(sides)
        owner = self.vertex_owner
        keep = [pos | on, neg | on][:S]
        strict = [pos, neg][:S]
        # vertices: each child's kept old ones, then its new ones
        old = [np.flatnonzero(k) for k in keep]
        old_owner = np.concatenate([owner[o] + j * n for j, o in enumerate(old)])
        old_rows = np.concatenate(old)
        new_owner = np.concatenate([cown + j * n for j in range(S)])
        (p_old, p_new), vstart = _merge_positions([old_owner, new_owner], S * n)
        m = len(old_rows) + len(new_owner)
        v_X = np.empty((m, self.dim))
        v_X[p_old] = self.X[old_rows]
        v_X[p_new] = np.tile(Xn, (S, 1))
        v_inc = np.empty((m, inc.shape[1]), dtype=np.uint64)
        v_inc[p_old] = np.where(on[old_rows][:, None], inc[old_rows] | new_bit[owner[old_rows]],
                                inc[old_rows])
        v_inc[p_new] = np.tile(incn, (S, 1))
        old_local = np.full((S, nv), -1, dtype=np.int64)
        old_local[np.repeat(np.arange(S), [len(o) for o in old]), old_rows] = \
            p_old - vstart[old_owner]
        new_local = (p_new - vstart[new_owner]).reshape(S, len(cown))
        # edges: old ones on each side (not both ends on the hyperplane: those come with the
        # section), the kept halves of crossing edges, and the section's edges (on both sides)
        eowner = _owner(self.estart)
        both_on = on[ga] & on[gb]
        q_order = np.argsort(q_owner[qa], kind="stable")
        qa, qb = qa[q_order], qb[q_order]
        zero_kind = q_kind == 0
        groups_old, groups_half, groups_q, pairs = [], [], [], []
        for j in range(S):
            keep_e = np.flatnonzero(keep[j][ga] & keep[j][gb] & ~both_on)
            half = np.where(strict[j][ga[cross]], ga[cross], gb[cross])
            q_local = np.empty(len(q_kind), dtype=np.int64)
            q_local[zero_kind] = old_local[j, q_ref[zero_kind]]
            q_local[~zero_kind] = new_local[j, q_ref[~zero_kind]]
            groups_old.append(eowner[keep_e] + j * n)
            groups_half.append(cown + j * n)
            groups_q.append(q_owner[qa] + j * n)
            pairs.append(((old_local[j, ga[keep_e]], old_local[j, gb[keep_e]]),
                          (old_local[j, half], new_local[j]),
                          (q_local[qa], q_local[qb])))
        positions, estart = _merge_positions(
            [np.concatenate(groups_old), np.concatenate(groups_half),
             np.concatenate(groups_q)], S * n)
        E = np.empty((int(estart[-1]), 2), dtype=np.int64)
        for k, pos_k in enumerate(positions):
            E[pos_k, 0] = np.concatenate([pairs[j][k][0] for j in range(S)])
            E[pos_k, 1] = np.concatenate([pairs[j][k][1] for j in range(S)])
        # constraints: the old ones and the hyperplane (last), oriented to keep each side
        cowner = _owner(self.cstart)
        sign = np.array([-1.0, 1.0][:S])       # + side keeps g.x + g0 >= 0: -g.x <= g0
        (c_old, c_new), cstart = _merge_positions(
            [np.concatenate([cowner + j * n for j in range(S)]), np.arange(S * n)], S * n)
        nc = len(self.h)
        N = np.empty((S * (nc + n), self.dim))
        N[c_old] = np.tile(self.N, (S, 1))
        N[c_new] = (sign[:, None, None] * g[None]).reshape(S * n, self.dim)
        h = np.empty(S * (nc + n))
        h[c_old] = np.tile(self.h, S)
        h[c_new] = (-sign[:, None] * g0[None]).ravel()
        slots = np.empty(S * (nc + n), dtype=np.int64)
        slots[c_old] = np.tile(self.slot, S)
        slots[c_new] = np.tile(slot, S)
        return Polytopes(v_X, v_inc, vstart, E, estart, N, h, slots, cstart)

    def _free_slots(self):
        """The lowest free constraint slot of every polytope, and the incidence array (grown by
        a word when some polytope has no free slot)."""
        n, words = len(self), self.words
        used = np.zeros((n, words), dtype=np.uint64)
        if len(self.slot):
            bits = _bits(self.slot, words)
            used = np.bitwise_or.reduceat(bits, self.cstart[:-1], axis=0)
            used[self.cstart[:-1] == self.cstart[1:]] = 0
        free = ~used
        inc = self.inc
        if not np.all(free.any(axis=1)):
            free = np.hstack([free, np.full((n, 1), ~np.uint64(0))])
            inc = np.hstack([inc, np.zeros((len(inc), 1), np.uint64)])
            words += 1
        word = np.argmax(free != 0, axis=1)
        f = free[np.arange(n), word]
        lowest = f & (~f + _ONE)
        return word * 64 + np.bitwise_count(lowest - _ONE).astype(np.int64), inc

    def prune(self) -> Polytopes:
        """Drop constraints tight at fewer than ``d`` vertices (not facets) and their bits."""
        n, d = len(self), self.dim
        if not len(self.slot):
            return self
        used = int(self.slot.max()) + 1
        bits = np.unpackbits(self.inc.view(np.uint8), axis=1, count=used, bitorder="little")
        tight = np.add.reduceat(bits, self.vstart[:-1], axis=0, dtype=np.int32)   # (n, used)
        cowner = _owner(self.cstart)
        keep = tight[cowner, self.slot] >= d
        if keep.all():
            return self
        kept_bits = _bits(self.slot[keep], self.words)
        mask = np.zeros((n, self.words), dtype=np.uint64)
        np.bitwise_or.at(mask, cowner[keep], kept_bits)
        inc = self.inc & mask[self.vertex_owner]
        return Polytopes(self.X, inc, self.vstart, self.E, self.estart, self.N[keep],
                         self.h[keep], self.slot[keep], _start(cowner[keep], n))


def _section_edges(q_owner, q_inc, n, d, slot):
    """Edges of every section ``Q``, as pairs ``(a, b)`` of indices into the sorted section
    arrays.

    A vertex of ``Q`` tight on exactly ``d`` constraints (the hyperplane among them) is *simple*:
    its constraints are independent, so dropping any one other than the hyperplane leaves a line,
    and the edges at the vertex are exactly the vertices sharing those ``d - 1`` constraints. On
    sections whose vertices are all simple the edges are found by matching these keys (a sort);
    elsewhere by the exact pairwise test (:func:`_pairwise_edges`)."""
    simple = _popcount(q_inc) == d
    degenerate = np.bincount(q_owner, weights=~simple, minlength=n) > 0
    hashed = ~degenerate[q_owner]
    a1, b1 = _matched_edges(np.flatnonzero(hashed), q_owner, q_inc, slot)
    rest = np.flatnonzero(degenerate[q_owner])
    if rest.size == 0:
        return a1, b1
    a2, b2 = _pairwise_edges(q_owner[rest], q_inc[rest], n, d)
    a = np.concatenate([a1, rest[a2]])
    b = np.concatenate([b1, rest[b2]])
    return a, b


def _matched_edges(ids, q_owner, q_inc, slot):
    """Edges among simple section vertices ``ids``: pairs tight on the same constraints but
    one (never the section's hyperplane, in slot ``slot[owner]``, which they all share)."""
    if ids.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    inc = q_inc[ids]
    words = inc.shape[1]
    owner = q_owner[ids]
    row, bit = _set_bits(inc)
    other = bit != slot[owner[row]]
    row, bit = row[other], bit[other]
    key = inc[row] ^ _bits(bit, words)
    # equal (section, key) pairs must end up adjacent: sort by a 64-bit hash of both (one
    # quicksort), and fall back to the exact lexicographic sort if two different pairs share a
    # hash (then a run of equal hashes could interleave them)
    digest = owner[row].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    for w in range(words):
        digest = (digest ^ key[:, w]) * np.uint64(0xBF58476D1CE4E5B9)
    order = np.argsort(digest)
    srow, skey = row[order], key[order]
    equal_hash = digest[order][1:] == digest[order][:-1]
    same = np.all(skey[1:] == skey[:-1], axis=1) & (owner[srow[1:]] == owner[srow[:-1]])
    if np.any(equal_hash & ~same):
        order = np.lexsort(tuple(key[:, w] for w in range(words - 1, -1, -1)) + (owner[row],))
        srow, skey = row[order], key[order]
        same = np.all(skey[1:] == skey[:-1], axis=1) & (owner[srow[1:]] == owner[srow[:-1]])
    i = np.flatnonzero(same)
    return ids[srow[i]], ids[srow[i + 1]]


def _set_bits(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(row, position)`` of every set bit of the bit sets ``bits`` (rows of uint64 words),
    peeling the lowest set bit of every row at once (a few passes, not 64)."""
    rows, positions = [], []
    for w in range(bits.shape[1]):
        x = bits[:, w].copy()
        live = np.flatnonzero(x)
        while live.size:
            xl = x[live]
            low = xl & (~xl + _ONE)
            rows.append(live)
            positions.append(64 * w + np.bitwise_count(low - _ONE).astype(np.int64))
            x[live] = xl ^ low
            live = live[x[live] != 0]
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(rows), np.concatenate(positions)


def _pairwise_edges(q_owner, q_inc, n, d):
    """Edges of every section by the exact test: ``(a, b)`` is an edge iff they share at least
    ``d - 1`` tight constraints and no third vertex of the section is tight on all of them."""
    qstart = _start(q_owner, n)
    m = len(q_owner)
    partners = qstart[q_owner + 1] - np.arange(m) - 1          # later vertices of the section
    a = np.repeat(np.arange(m), partners)
    first = np.repeat(np.cumsum(partners) - partners, partners)
    b = a + 1 + (np.arange(len(a)) - first)
    common = q_inc[a] & q_inc[b]
    cand = np.flatnonzero(_popcount(common) >= d - 1)
    a, b, common = a[cand], b[cand], common[cand]
    size = np.diff(qstart)[q_owner[a]]
    pair = np.repeat(np.arange(len(a)), size)
    pfirst = np.repeat(np.cumsum(size) - size, size)
    c = qstart[q_owner[a]][pair] + (np.arange(len(pair)) - pfirst)
    T = common[pair]
    covers = np.all((q_inc[c] & T) == T, axis=1) & (c != a[pair]) & (c != b[pair])
    blocked = np.bincount(pair, weights=covers, minlength=len(a)) > 0
    return a[~blocked], b[~blocked]
