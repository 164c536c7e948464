"""Compiled cell splitting for the ``vertex`` engine (numba; optional).

:func:`split_cells` does, cell by cell and piece by piece (depth first), what the engine's
vectorised rounds do batch-wide with :meth:`Polytopes.cut`: every piece of a cell is offered the
cell's cutting hyperplanes in order; a hyperplane with vertices strictly on both sides (beyond
``eps``) splits it, otherwise the piece only records its side. The arithmetic and the
combinatorial rules are those of :mod:`powercells.geometry.polytopes` (vertices with
``|s| <= eps`` on the hyperplane and in both children, new vertices on crossing edges, section
edges by matching ``(d-1)``-subsets of tight constraints when every section vertex is simple, by
the exact pairwise face test otherwise; ``fragile`` counts vertices left with fewer than ``d``
edges), so the two paths give the same pieces and codes; the tests check it. Working on one
small piece at a time keeps its vertices in cache and costs no array passes over the batch,
which is what the numpy path spends its time on in 6-8 dimensions.

Two things differ from the numpy path, neither in the pieces: the vertex means are summed in
another order (the interior points can differ in the last bits), and when the pieces' polytopes
are not asked for, a side that no later hyperplane cuts is never built: its vertices decide the
later hyperplanes and its ball, and its ``fragile`` vertices are counted from the degrees its
edges would have. Hyperplane values at vertices are summed exactly as the numpy path sums them
(:func:`~powercells.geometry.polytopes.affine_values`), so "on the hyperplane" means the same.

Constraint slots: a cell's own constraints keep their slots; its ``t``-th cutting hyperplane
takes slot ``base + t`` (``base`` above every slot of the cell, or given, as the two-stage split
of the engine does), so no slot is ever reused within a cell and bit sets have a fixed width per
call.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic
from numba.typed import List

_ONE = np.uint64(1)


@intrinsic
def _popcount(typingctx, x):
    """Set bits of a uint64 (LLVM's ctpop: one instruction where the CPU has it)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [ir.IntType(64)])
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)], fnty)
        return builder.call(fn, [args[0]])

    return types.int64(x), codegen


@intrinsic
def _lowest_bit(typingctx, x):
    """Index of the lowest set bit of a non-zero uint64 (LLVM's cttz)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [ir.IntType(64), ir.IntType(1)])
        fn = builder.module.declare_intrinsic("llvm.cttz", [ir.IntType(64)], fnty)
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 1)])

    return types.int64(x), codegen


@njit(cache=True)
def _row_popcount(inc, i):
    n = 0
    for w in range(inc.shape[1]):
        n += _popcount(inc[i, w])
    return n


@njit(cache=True, inline="always")
def _slot_hash(slot):
    """A fixed pseudo-random word per constraint slot (splitmix64)."""
    z = np.uint64(slot) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _same_key(inc, a, slot_a, b, slot_b):
    """Whether vertex ``a``'s tight set without ``slot_a`` equals ``b``'s without ``slot_b``."""
    for w in range(inc.shape[1]):
        x = inc[a, w]
        y = inc[b, w]
        if slot_a // 64 == w:
            x &= ~(_ONE << np.uint64(slot_a % 64))
        if slot_b // 64 == w:
            y &= ~(_ONE << np.uint64(slot_b % 64))
        if x != y:
            return False
    return True


@njit(cache=True)
def _section_keys(q_inc, d, new_word, new_mask, z):
    """For a section whose vertices are all simple (exactly ``d`` tight constraints): every
    vertex's tight constraints other than the hyperplane, ``(m, d - 1)`` slots, and the XOR
    hash of its whole tight set (``z``: a word per slot). ``simple`` is False (and the rest
    empty) otherwise."""
    m, W = q_inc.shape
    slots = np.empty((m, max(d - 1, 0)), dtype=np.int64)
    full = np.zeros(m, dtype=np.uint64)
    for i in range(m):
        if _row_popcount(q_inc, i) != d:
            return False, slots[:0], full[:0]
        k = 0
        for w in range(W):
            x = q_inc[i, w]
            while x:
                low = x & (~x + _ONE)
                b = 64 * w + _lowest_bit(low)
                full[i] ^= z[b]
                if not (w == new_word and low == new_mask):
                    slots[i, k] = b
                    k += 1
                x ^= low
    return True, slots, full


@njit(cache=True)
def _section_edges(q_inc, d, simple, slots, full, z):
    """Edges among the section's vertices (rows of ``q_inc``), as two index arrays."""
    m = len(q_inc)
    if not simple:
        return _pairwise_edges(q_inc, d)
    # a key per (vertex, tight constraint other than the hyperplane): the vertex's tight set
    # without that constraint (a simple vertex's constraints are independent, so the others
    # leave a line); equal keys are the two ends of one edge. Keys go into an open-addressing
    # table under an XOR hash (a random word per slot, so dropping a slot is one XOR) and equal
    # hashes are confirmed on the bit sets themselves; a key met again pairs with its previous
    # holder, which it replaces (the pairs a stable sort by key would give)
    nk = m * (d - 1)
    size = 8
    while size < 2 * nk:
        size <<= 1
    mask = np.uint64(size - 1)
    single = q_inc.shape[1] == 1           # then a key is the bit set itself, one word
    t_vertex = np.full(size, -1, dtype=np.int64)
    t_slot = np.empty(size, dtype=np.int64)
    t_key = np.empty(size, dtype=np.uint64)
    out_a = np.empty(nk, dtype=np.int64)
    out_b = np.empty(nk, dtype=np.int64)
    n_edges = 0
    for i in range(m):
        for k in range(d - 1):
            b = slots[i, k]
            hashed = full[i] ^ z[b]
            key = q_inc[i, 0] & ~(_ONE << np.uint64(b)) if single else hashed
            at = hashed & mask
            while True:
                j = t_vertex[at]
                if j < 0:
                    t_vertex[at], t_slot[at], t_key[at] = i, b, key
                    break
                if t_key[at] == key and (single or _same_key(q_inc, i, b, j, t_slot[at])):
                    out_a[n_edges], out_b[n_edges] = j, i
                    n_edges += 1
                    t_vertex[at], t_slot[at] = i, b
                    break
                at = (at + _ONE) & mask
    return out_a[:n_edges].copy(), out_b[:n_edges].copy()


@njit(cache=True)
def _pairwise_edges(q_inc, d):
    """The exact test on a section with a degenerate vertex: ``(a, b)`` is an edge iff they
    share at least ``d - 1`` tight constraints and no third vertex is tight on all of them."""
    m, W = q_inc.shape
    ea = List.empty_list(np.int64)
    eb = List.empty_list(np.int64)
    common = np.empty(W, dtype=np.uint64)
    for a in range(m):
        for b in range(a + 1, m):
            c = 0
            for w in range(W):
                common[w] = q_inc[a, w] & q_inc[b, w]
                c += _popcount(common[w])
            if c < d - 1:
                continue
            blocked = False
            for o in range(m):
                if o == a or o == b:
                    continue
                covers = True
                for w in range(W):
                    if (q_inc[o, w] & common[w]) != common[w]:
                        covers = False
                        break
                if covers:
                    blocked = True
                    break
            if not blocked:
                ea.append(a)
                eb.append(b)
    out_a = np.empty(len(ea), dtype=np.int64)
    out_b = np.empty(len(eb), dtype=np.int64)
    for i in range(len(ea)):
        out_a[i] = ea[i]
        out_b[i] = eb[i]
    return out_a, out_b


@njit(cache=True)
def _child(cX, inc, E, N, h, slot, keep_strict, on, cross_a, cross_b, incn, q_kind, q_ref,
           qa, qb, new_word, new_mask, g, g0, sign, new_slot):
    """One side of a split piece (``keep_strict``: that side's strictly-inside vertices;
    ``cX``: its vertices, from :func:`_child_vertices`)."""
    d = cX.shape[0]
    nv, W = inc.shape
    local = np.full(nv, -1, dtype=np.int64)
    m = 0
    for i in range(nv):
        if keep_strict[i] or on[i]:
            local[i] = m
            m += 1
    n_old = m
    nn = len(incn)
    cinc = np.empty((m + nn, W), dtype=np.uint64)
    for i in range(nv):
        j = local[i]
        if j >= 0:
            for w in range(W):
                cinc[j, w] = inc[i, w]
            if on[i]:
                cinc[j, new_word] |= new_mask
    for i in range(nn):
        for w in range(W):
            cinc[n_old + i, w] = incn[i, w]
    # edges: kept old ones (not both ends on the hyperplane), kept halves of crossing edges,
    # the section's edges
    ne = len(E)
    cE = np.empty((ne + nn + len(qa), 2), dtype=np.int64)
    k = 0
    for e in range(ne):         # branch-free: write, then advance when kept
        a, b = E[e, 0], E[e, 1]
        la, lb = local[a], local[b]
        cE[k, 0], cE[k, 1] = la, lb
        k += (la >= 0) & (lb >= 0) & (np.int64(on[a]) + np.int64(on[b]) < 2)
    for i in range(nn):
        a, b = cross_a[i], cross_b[i]
        end = a if keep_strict[a] else b
        cE[k, 0], cE[k, 1] = local[end], n_old + i
        k += 1
    for i in range(len(qa)):
        for t in range(2):
            q = qa[i] if t == 0 else qb[i]
            cE[k, t] = local[q_ref[q]] if q_kind[q] == 0 else n_old + q_ref[q]
        k += 1
    cE = cE[:k].copy()
    nc = len(h)
    cN = np.empty((nc + 1, d))
    ch = np.empty(nc + 1)
    cslot = np.empty(nc + 1, dtype=np.int64)
    cN[:nc] = N
    ch[:nc] = h
    cslot[:nc] = slot
    for j in range(d):
        cN[nc, j] = -sign * g[j]
    ch[nc] = sign * g0
    cslot[nc] = new_slot
    return cX, cinc, cE, cN, ch, cslot


@njit(cache=True)
def _side_fragile(E, pos, neg, on, q_kind, q_ref, qa, qb, d):
    """Vertices with fewer than ``d`` edges in each side of a split, counted without building
    the sides, among the vertices a split changes: a vertex on the hyperplane keeps its edges to
    that side's strict vertices and gains its section edges, a new vertex has its half edge and
    its section edges (what :func:`_child` would build). A strict vertex keeps its degree (a
    crossing edge becomes its half), which was checked when its piece was made."""
    if d < 2:
        return 0, 0
    nq = len(q_kind)
    q_deg = np.zeros(nq, dtype=np.int64)
    for i in range(len(qa)):
        q_deg[qa[i]] += 1
        q_deg[qb[i]] += 1
    n_on = 0
    for q in range(nq):
        n_on += q_kind[q] == 0
    to_pos = np.zeros(len(pos) if n_on else 0, dtype=np.int64)
    to_neg = np.zeros(len(pos) if n_on else 0, dtype=np.int64)
    if n_on:
        for e in range(len(E)):
            a, b = E[e, 0], E[e, 1]
            if on[a]:
                to_pos[a] += pos[b]
                to_neg[a] += neg[b]
            if on[b]:
                to_pos[b] += pos[a]
                to_neg[b] += neg[a]
    fp = 0
    fm = 0
    for q in range(nq):
        if q_kind[q] == 0:
            i = q_ref[q]
            fp += to_pos[i] + q_deg[q] < d
            fm += to_neg[i] + q_deg[q] < d
        else:
            fp += 1 + q_deg[q] < d
            fm += 1 + q_deg[q] < d
    return fp, fm


@njit(cache=True)
def _fragile(X, E, d):
    if d < 2:
        return 0
    nv = X.shape[1]
    deg = np.zeros(nv, dtype=np.int64)
    for e in range(len(E)):
        deg[E[e, 0]] += 1
        deg[E[e, 1]] += 1
    n = 0
    for i in range(nv):
        if deg[i] < d:
            n += 1
    return n


@njit(cache=True)
def _crossing(X, inc, E, s, eps, new_word, new_mask):
    """The split's classification (``pos``, ``neg``, ``on``), its crossing edges and the new
    vertices on them (coordinates and tight sets)."""
    d, nv = X.shape
    W = inc.shape[1]
    pos = s > eps
    neg = s < -eps
    on = ~pos & ~neg
    sign = np.empty(nv, dtype=np.int8)
    for i in range(nv):
        sign[i] = 1 if pos[i] else (-1 if neg[i] else 0)
    ne = len(E)
    crossed = np.empty(ne, dtype=np.int64)
    nn = 0
    for e in range(ne):
        crossed[nn] = e
        nn += sign[E[e, 0]] * sign[E[e, 1]] < 0
    cross_a = np.empty(nn, dtype=np.int64)
    cross_b = np.empty(nn, dtype=np.int64)
    frac = np.empty(nn)
    incn = np.empty((nn, W), dtype=np.uint64)
    for k in range(nn):
        a, b = E[crossed[k], 0], E[crossed[k], 1]
        cross_a[k], cross_b[k] = a, b
        frac[k] = s[a] / (s[a] - s[b])
        for w in range(W):
            incn[k, w] = inc[a, w] & inc[b, w]
        incn[k, new_word] |= new_mask
    Xn = np.empty((d, nn))
    for j in range(d):          # coordinate by coordinate: gathers within one row
        for k in range(nn):
            xa = X[j, cross_a[k]]
            Xn[j, k] = xa + frac[k] * (X[j, cross_b[k]] - xa)
    return pos, neg, on, cross_a, cross_b, Xn, incn


@njit(cache=True)
def _section(inc, on, incn, new_word, new_mask):
    """The section's vertices: those on the hyperplane, then the new ones (tight sets, kind 0/1
    and index into the old or the new vertices)."""
    nv, W = inc.shape
    n_on = 0
    for i in range(nv):
        if on[i]:
            n_on += 1
    nn = len(incn)
    q_inc = np.empty((n_on + nn, W), dtype=np.uint64)
    q_kind = np.empty(n_on + nn, dtype=np.int8)
    q_ref = np.empty(n_on + nn, dtype=np.int64)
    k = 0
    for i in range(nv):
        if on[i]:
            for w in range(W):
                q_inc[k, w] = inc[i, w]
            q_inc[k, new_word] |= new_mask
            q_kind[k], q_ref[k] = 0, i
            k += 1
    for i in range(nn):
        for w in range(W):
            q_inc[k, w] = incn[i, w]
        q_kind[k], q_ref[k] = 1, i
        k += 1
    return q_inc, q_kind, q_ref


@njit(cache=True)
def _ball(X):
    """Vertex mean and the largest distance from it to a vertex (``X`` is ``(d, n)``)."""
    d, nv = X.shape
    center = np.zeros(d)
    for j in range(d):
        # four running sums: independent additions keep the pipeline full
        a0 = a1 = a2 = a3 = 0.0
        i = 0
        while i + 4 <= nv:
            a0 += X[j, i]
            a1 += X[j, i + 1]
            a2 += X[j, i + 2]
            a3 += X[j, i + 3]
            i += 4
        while i < nv:
            a0 += X[j, i]
            i += 1
        center[j] = ((a0 + a1) + (a2 + a3)) / nv
    r2 = np.empty(nv)
    c0 = center[0]
    for i in range(nv):
        r2[i] = (X[0, i] - c0) ** 2
    for j in range(1, d):
        cj = center[j]
        for i in range(nv):
            r2[i] += (X[j, i] - cj) ** 2
    reach = 0.0
    for i in range(nv):
        reach = max(reach, r2[i])
    return center, np.sqrt(reach)


@njit(cache=True)
def _values(X, G, g, p, s):
    """``G[p] . x + g[p]`` at every vertex (columns of ``X``), summed as
    :func:`~powercells.geometry.polytopes.affine_values` sums it (the same bits)."""
    d, nv = X.shape
    g0 = G[p, 0]
    for i in range(nv):
        s[i] = g0 * X[0, i]
    for j in range(1, d):
        gj = G[p, j]
        for i in range(nv):
            s[i] += gj * X[j, i]
    for i in range(nv):
        s[i] += g[p]


@njit(cache=True)
def _advance(X, center, reach, G, g, p0, t, T, sides, s, eps, whole):
    """Offer hyperplanes ``t, t+1, ...`` of the cell (rows ``p0 + t`` of ``G, g``) to a piece;
    record the side of each one that does not cut it; return the index of the first one that
    does (its values at the vertices left in ``s``), or ``T``. A hyperplane that does not cut
    the whole cell (``whole[t]``) is not offered: its side is the cell's."""
    d, nv = X.shape
    while t < T:
        if whole[t]:
            t += 1
            continue
        p = p0 + t
        dist = g[p]
        for j in range(d):
            dist += G[p, j] * center[j]
        if abs(dist) > reach + 2 * eps:
            sides[t] = 1 if dist > 0 else 0
            t += 1
            continue
        _values(X, G, g, p, s)
        smax = -np.inf
        smin = np.inf
        for i in range(nv):
            smax = max(smax, s[i])
            smin = min(smin, s[i])
        if smax > eps and smin < -eps:
            return t
        sides[t] = 1 if smax > eps else 0
        t += 1
    return T


@njit(cache=True)
def _inner_radius(N, h, center, g, g0, sign):
    """Largest ball around ``center`` inside ``{N x <= h}`` and (``sign`` +-1, 0 for none) the
    halfspace ``sign * (g . x + g0) >= 0``."""
    d = len(center)
    radius = np.inf
    if sign != 0:
        radius = sign * g0
        for j in range(d):
            radius += sign * g[j] * center[j]
    for r in range(len(h)):
        v = h[r]
        for j in range(d):
            v -= N[r, j] * center[j]
        radius = min(radius, v)
    return radius


@njit(cache=True)
def _child_vertices(X, keep_strict, on, Xn):
    """A side's vertices, ``(d, n)``: the kept old ones, then the new ones."""
    d, nv = X.shape
    kept = np.empty(nv, dtype=np.int64)
    m = 0
    for i in range(nv):
        kept[m] = i
        m += keep_strict[i] or on[i]
    nn = Xn.shape[1]
    out = np.empty((d, m + nn))
    for j in range(d):          # row by row: contiguous writes
        for k in range(m):
            out[j, k] = X[j, kept[k]]
        for i in range(nn):
            out[j, m + i] = Xn[j, i]
    return out


@njit(cache=True, nogil=True)
def split_cells(X, inc, vstart, E, estart, N, h, slot, cstart, first, G, g, eps, words,
                geometry, lo, hi, bases):
    """Split every cell ``c`` in ``lo:hi`` of a batch by its candidate hyperplanes
    ``G[p] . x + g[p] = 0`` (unit normals), ``p`` in ``first[c]:first[c+1]``, in that order
    (a cell no candidate cuts comes back as one piece). Cell ``c``'s ``t``-th candidate takes
    constraint slot ``bases[c] + t`` (``bases[c] < 0``: above the cell's own slots). Releases
    the GIL: threads can take disjoint ranges of cells.

    Returns the final pieces: their cells, their sides (``1``: ``+``) for every cutting
    hyperplane of their cell (flat, the cell's hyperplanes in order), vertex means, the radius
    of the largest ball around the vertex mean inside the piece (a lower bound on the inradius),
    the count of fragile vertices, and (``geometry``) the pieces as CSR arrays in the layout of
    :class:`~powercells.geometry.polytopes.Polytopes`.

    Without ``geometry`` a side that no later hyperplane cuts is not built: its vertices give
    its ball, and its fragile vertices are counted from the degrees its edges would have
    (:func:`_side_fragile`).
    """
    d = X.shape[1]
    p_cell = List.empty_list(np.int64)
    p_sides = List()
    p_center = List()
    p_radius = List.empty_list(np.float64)
    g_X = List()
    g_inc = List()
    g_E = List()
    g_N = List()
    g_h = List()
    g_slot = List()
    fragile = 0
    z = np.empty(64 * words, dtype=np.uint64)      # a pseudo-random word per constraint slot
    for b in range(64 * words):
        z[b] = _slot_hash(b)
    for c in range(lo, hi):
        T = first[c + 1] - first[c]
        if T == 0:
            continue
        p0 = first[c]
        v0, v1 = vstart[c], vstart[c + 1]
        c0, c1 = cstart[c], cstart[c + 1]
        e0, e1 = estart[c], estart[c + 1]
        base = bases[c]
        if base < 0:
            for r in range(c0, c1):
                base = max(base, slot[r] + 1)
        rX = X[v0:v1].T.copy()          # pieces keep their vertices as (d, n): sums vectorise
        rE = E[e0:e1].copy()
        fragile += _fragile(rX, rE, d)      # a cell's own vertices are checked once, here
        rinc = np.zeros((v1 - v0, words), dtype=np.uint64)
        rinc[:, :inc.shape[1]] = inc[v0:v1]
        center, reach = _ball(rX)
        sides = np.zeros(T, dtype=np.int8)
        s = np.empty(rX.shape[1])
        # candidates that do not cut the cell itself take its side in every piece (as in the
        # numpy path: a piece's new vertices, interpolated, are not re-tested against them)
        whole = np.zeros(T, dtype=np.bool_)
        for u in range(T):
            _values(rX, G, g, p0 + u, s)
            smax, smin = s.max(), s.min()
            if not (smax > eps and smin < -eps):
                whole[u] = True
                sides[u] = 1 if smax > eps else 0
        t = _advance(rX, center, reach, G, g, p0, 0, T, sides, s, eps, whole)
        # a piece on the stack has been offered its cell's hyperplanes up to ``t``, the first
        # that cuts it (its values at the vertices in ``s``), or ``T``: then it is final, and
        # ``radius`` (when not NaN) is its ball's, computed when its edges were not built
        stack = List()
        stack.append((rX, rinc, rE, N[c0:c1].copy(), h[c0:c1].copy(),
                      slot[c0:c1].copy(), t, sides, center, reach, s, np.nan))
        no_inc = np.empty((0, words), dtype=np.uint64)
        no_E = np.empty((0, 2), dtype=np.int64)
        while len(stack):
            PX, Pinc, PE, PN, Ph, Pslot, t, sides, center, reach, s, radius = stack.pop()
            if t == T:
                if np.isnan(radius):
                    radius = _inner_radius(PN, Ph, center, G[p0], 0.0, 0.0)
                p_cell.append(c)
                p_sides.append(sides)
                p_center.append(center)
                p_radius.append(radius)
                if geometry:
                    g_X.append(PX)
                    g_inc.append(Pinc)
                    g_E.append(PE)
                    g_N.append(PN)
                    g_h.append(Ph)
                    g_slot.append(Pslot)
                continue
            p = p0 + t
            new_slot = base + t
            new_word = new_slot // 64
            new_mask = _ONE << np.uint64(new_slot % 64)
            pos, neg, on, cross_a, cross_b, Xn, incn = _crossing(PX, Pinc, PE, s, eps, new_word,
                                                                 new_mask)
            q_inc, q_kind, q_ref = _section(Pinc, on, incn, new_word, new_mask)
            # both sides' vertices, balls, and the next hyperplane that cuts each
            Xp = _child_vertices(PX, pos, on, Xn)
            Xm = _child_vertices(PX, neg, on, Xn)
            cp, rp = _ball(Xp)
            cm, rm = _ball(Xm)
            s_plus = sides.copy()
            s_plus[t] = 1
            s_minus = sides.copy()
            s_minus[t] = 0
            sp = np.empty(Xp.shape[1])
            sm = np.empty(Xm.shape[1])
            tp = _advance(Xp, cp, rp, G, g, p0, t + 1, T, s_plus, sp, eps, whole)
            tm = _advance(Xm, cm, rm, G, g, p0, t + 1, T, s_minus, sm, eps, whole)
            simple, slots, full = _section_keys(q_inc, d, new_word, new_mask, z)
            qa, qb = _section_edges(q_inc, d, simple, slots, full, z)
            # fragile vertices of both sides, from the degrees their edges give (built or not)
            fp, fm = _side_fragile(PE, pos, neg, on, q_kind, q_ref, qa, qb, d)
            fragile += fp + fm
            # a final side needs no arrays unless the geometry is asked for
            build_p = geometry or tp < T
            build_m = geometry or tm < T
            # the - side first: the stack gives the + side (and its pieces) first
            if build_m:
                minus = _child(Xm, Pinc, PE, PN, Ph, Pslot, neg, on, cross_a, cross_b, incn,
                               q_kind, q_ref, qa, qb, new_word, new_mask, G[p], g[p], -1.0,
                               new_slot)
                stack.append((minus[0], minus[1], minus[2], minus[3], minus[4], minus[5], tm,
                              s_minus, cm, rm, sm, np.nan))
            else:
                stack.append((Xm, no_inc, no_E, PN, Ph, Pslot, tm, s_minus, cm, rm, sm,
                              _inner_radius(PN, Ph, cm, G[p], g[p], -1.0)))
            if build_p:
                plus = _child(Xp, Pinc, PE, PN, Ph, Pslot, pos, on, cross_a, cross_b, incn,
                              q_kind, q_ref, qa, qb, new_word, new_mask, G[p], g[p], 1.0,
                              new_slot)
                stack.append((plus[0], plus[1], plus[2], plus[3], plus[4], plus[5], tp, s_plus,
                              cp, rp, sp, np.nan))
            else:
                stack.append((Xp, no_inc, no_E, PN, Ph, Pslot, tp, s_plus, cp, rp, sp,
                              _inner_radius(PN, Ph, cp, G[p], g[p], 1.0)))
    m = len(p_cell)
    cell = np.empty(m, dtype=np.int64)
    radius = np.empty(m)
    center = np.empty((m, d))
    total = 0
    for i in range(m):
        total += len(p_sides[i])
    sides = np.empty(total, dtype=np.int8)
    k = 0
    for i in range(m):
        cell[i] = p_cell[i]
        radius[i] = p_radius[i]
        center[i] = p_center[i]
        for j in range(len(p_sides[i])):
            sides[k] = p_sides[i][j]
            k += 1
    mg = len(g_X) if geometry else 0
    vs = np.zeros(mg + 1, dtype=np.int64)
    es = np.zeros(mg + 1, dtype=np.int64)
    cs = np.zeros(mg + 1, dtype=np.int64)
    for i in range(mg):
        vs[i + 1] = vs[i] + g_X[i].shape[1]
        es[i + 1] = es[i] + len(g_E[i])
        cs[i + 1] = cs[i] + len(g_h[i])
    oX = np.empty((vs[mg], d))
    oinc = np.empty((vs[mg], words), dtype=np.uint64)
    oE = np.empty((es[mg], 2), dtype=np.int64)
    oN = np.empty((cs[mg], d))
    oh = np.empty(cs[mg])
    oslot = np.empty(cs[mg], dtype=np.int64)
    for i in range(mg):
        oX[vs[i]:vs[i + 1]] = g_X[i].T
        oinc[vs[i]:vs[i + 1]] = g_inc[i]
        oE[es[i]:es[i + 1]] = g_E[i]
        oN[cs[i]:cs[i + 1]] = g_N[i]
        oh[cs[i]:cs[i + 1]] = g_h[i]
        oslot[cs[i]:cs[i + 1]] = g_slot[i]
    return cell, sides, center, radius, fragile, (oX, oinc, vs, oE, es, oN, oh, oslot, cs)
