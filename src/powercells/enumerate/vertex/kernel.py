"""Compiled cell splitting for the ``vertex`` engine (numba; optional).

Its arrays travel in NamedTuples (:class:`PolytopeArrays`, :class:`Candidates`,
:class:`Pieces`). :func:`split_cells` does, cell by cell and piece by piece (depth first), what the engine's
vectorised rounds do batch-wide with :meth:`Polytopes.cut`: every piece of a cell is offered the
cell's cutting hyperplanes in order; a hyperplane with vertices strictly on both sides (beyond
``eps``) splits it, otherwise the piece only records its side. The arithmetic and the
combinatorial rules are those of :mod:`powercells.enumerate.vertex.polytopes` (vertices with
``|s| <= eps`` on the hyperplane and in both children, new vertices on crossing edges, section
edges by matching ``(d-1)``-subsets of tight constraints when every section vertex is simple, by
the exact pairwise face test otherwise; ``fragile`` counts vertices left with fewer than ``d``
edges), so the two paths give the same pieces and codes; the tests check it. Working on one
small piece at a time keeps its vertices in cache and costs no array passes over the batch,
which is what the numpy path spends its time on in 6-8 dimensions. A split reads the piece's
edges once (:func:`_split_edges`: both sides' kept edges and the crossing ones), reuses its
scratch arrays from split to split, and matches the section's edge keys in a small flat table
(:func:`_section_edges`). A cell's pieces come out in the lexicographic order of their sides
(the - side's pieces first), which is the tree's order, and pruned when asked, so the engine
takes them as they are.

Two things differ from the numpy path, neither in the pieces: the vertex means are summed in
another order (the interior points can differ in the last bits), and when the pieces' polytopes
are not asked for, a side that no later hyperplane cuts is never built: its vertices decide the
later hyperplanes and its ball, and its ``fragile`` vertices are counted from the degrees its
edges would have. Hyperplane values at vertices are summed exactly as the numpy path sums them
(:func:`~powercells.enumerate.vertex.polytopes.affine_values`), so "on the hyperplane" means the same.

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

from ..kernel_flags import read_flag
from .arrays import Candidates, Pieces, PolytopeArrays

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


@njit(cache=True)
def _all_simple(inc, d):
    """Whether every row of ``inc`` has exactly ``d`` bits."""
    for i in range(len(inc)):
        if _row_popcount(inc, i) != d:
            return False
    return True


_FIB = np.uint64(0x9E3779B97F4A7C15)     # 2^64 / golden ratio: Fibonacci hashing


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


@njit(cache=True, inline="always")
def _key_hash(inc, i, slot):
    """A hash of vertex ``i``'s tight set without ``slot`` (the words mixed by multiplication)."""
    h = np.uint64(0)
    for w in range(inc.shape[1]):
        x = inc[i, w]
        if slot // 64 == w:
            x &= ~(_ONE << np.uint64(slot % 64))
        h = (h ^ x) * _FIB
    return h ^ (h >> np.uint64(29))


@njit(cache=True)
def _section_edges(q_inc, d, new_slot, table, used):
    """Edges among the section's vertices (rows of ``q_inc``), as two index arrays.

    When every section vertex is simple (exactly ``d`` tight constraints): a key per (vertex,
    tight constraint other than the hyperplane), the vertex's tight set without that constraint
    (a simple vertex's constraints are independent, so the others leave a line); equal keys are
    the two ends of one edge. A key met again pairs with its previous holder, which it replaces
    (the pairs a stable sort by key would give). Keys go into an open-addressing table
    (``table``: flat ``(key, value)`` pairs, all zero on entry and again on return; ``used``:
    room for the positions filled; both grown when too small and returned). With one word of
    bits a key is its bit set, stored as is; with more, its hash is stored and equal hashes are
    confirmed on the bit sets. A section with a degenerate vertex takes the exact pairwise test.
    """
    m, W = q_inc.shape
    if not _all_simple(q_inc, d):
        qa, qb = _pairwise_edges(q_inc, d)
        return qa, qb, table, used
    nk = m * (d - 1)
    bits = 4
    while (1 << bits) < nk + (nk >> 1) + 1:        # load at most 2/3
        bits += 1
    size = 1 << bits
    if len(table) < 2 * size:
        table = np.zeros(2 * size, dtype=np.uint64)
    if len(used) < nk:
        used = np.empty(2 * nk, dtype=np.int64)
    shift = np.uint64(64 - bits)
    mask = np.uint64(size - 1)
    out_a = np.empty(nk, dtype=np.int64)
    out_b = np.empty(nk, dtype=np.int64)
    n_edges = 0
    n_used = 0
    if W == 1:
        new_bit = _ONE << np.uint64(new_slot)
        for i in range(m):
            whole = q_inc[i, 0]
            x = whole & ~new_bit
            while x:
                low = x & (~x + _ONE)
                x ^= low
                key = whole ^ low
                at = (key * _FIB) >> shift
                while True:
                    held = table[2 * at]
                    if held == 0:
                        table[2 * at] = key
                        table[2 * at + _ONE] = np.uint64(i)
                        used[n_used] = np.int64(at)
                        n_used += 1
                        break
                    if held == key:
                        out_a[n_edges] = np.int64(table[2 * at + _ONE])
                        out_b[n_edges] = i
                        n_edges += 1
                        table[2 * at + _ONE] = np.uint64(i)
                        break
                    at = (at + _ONE) & mask
    else:
        stride = 64 * W
        for i in range(m):
            for w in range(W):
                x = q_inc[i, w]
                while x:
                    low = x & (~x + _ONE)
                    x ^= low
                    b = 64 * w + _lowest_bit(low)
                    if b == new_slot:
                        continue
                    hashed = _key_hash(q_inc, i, b) | _ONE      # never 0, the empty mark
                    at = (hashed * _FIB) >> shift
                    while True:
                        held = table[2 * at]
                        if held == 0:
                            table[2 * at] = hashed
                            table[2 * at + _ONE] = np.uint64(i * stride + b)
                            used[n_used] = np.int64(at)
                            n_used += 1
                            break
                        if held == hashed:
                            value = np.int64(table[2 * at + _ONE])
                            j = value // stride
                            if _same_key(q_inc, i, b, j, value % stride):
                                out_a[n_edges] = j
                                out_b[n_edges] = i
                                n_edges += 1
                                table[2 * at + _ONE] = np.uint64(i * stride + b)
                                break
                        at = (at + _ONE) & mask
    for k in range(n_used):
        table[2 * used[k]] = 0
    return out_a[:n_edges].copy(), out_b[:n_edges].copy(), table, used


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
def _child(cX, inc, idx, m, sg, want, local, kept_E, incn, cross_a, cross_b, on_idx, n_on, qa,
           qb, N, h, slot, new_word, new_mask, g, g0, new_slot):
    """One side of a split piece (``want``: +1 or -1): its vertices ``cX`` (from
    :func:`_side_vertices`), their tight sets, its edges (``kept_E``, the old ones it keeps in its
    numbering, from :func:`_split_edges`; the halves of the crossing edges; the section's
    edges) and its constraints (the piece's and the halfspace)."""
    d = cX.shape[0]
    W = inc.shape[1]
    nn = len(incn)
    cinc = np.empty((m + nn, W), dtype=np.uint64)
    for k in range(m):
        i = idx[k]
        for w in range(W):
            cinc[k, w] = inc[i, w]
        if sg[i] == 0:
            cinc[k, new_word] |= new_mask
    for i in range(nn):
        for w in range(W):
            cinc[m + i, w] = incn[i, w]
    ke = len(kept_E) // 2
    n_edges = ke + nn + len(qa)
    flat = np.empty(2 * n_edges, dtype=np.int64)
    flat[:2 * ke] = kept_E
    for i in range(nn):
        a, b = cross_a[i], cross_b[i]
        end = a if sg[a] == want else b
        flat[2 * (ke + i)] = local[end]
        flat[2 * (ke + i) + 1] = m + i
    k = 2 * (ke + nn)
    for i in range(len(qa)):
        q = qa[i]
        flat[k] = local[on_idx[q]] if q < n_on else m + q - n_on
        q = qb[i]
        flat[k + 1] = local[on_idx[q]] if q < n_on else m + q - n_on
        k += 2
    cE = flat.reshape((n_edges, 2))
    nc = len(h)
    cN = np.empty((nc + 1, d))
    ch = np.empty(nc + 1)
    cslot = np.empty(nc + 1, dtype=np.int64)
    cN[:nc] = N
    ch[:nc] = h
    cslot[:nc] = slot
    for j in range(d):
        cN[nc, j] = -want * g[j]
    ch[nc] = want * g0
    cslot[nc] = new_slot
    return cX, cinc, cE, cN, ch, cslot


@njit(cache=True)
def _side_fragile(E, sg, on_idx, n_on, nn, qa, qb, d):
    """Vertices with fewer than ``d`` edges in each side of a split, counted without building
    the sides, among the vertices a split changes (``sg``: the old vertices' sides, 0 on the
    hyperplane; the section's vertices are the ``n_on`` old ones ``on_idx`` then the ``nn`` new
    ones; ``qa, qb`` its edges): a vertex on the hyperplane keeps its edges to that side's
    strict vertices and gains its section edges, a new vertex has its half edge and its section
    edges (what :func:`_child` would build). A strict vertex keeps its degree (a crossing edge
    becomes its half), which was checked when its piece was made."""
    if d < 2:
        return 0, 0
    nq = n_on + nn
    q_deg = np.zeros(nq, dtype=np.int64)
    for i in range(len(qa)):
        q_deg[qa[i]] += 1
        q_deg[qb[i]] += 1
    to_pos = np.zeros(len(sg) if n_on else 0, dtype=np.int64)
    to_neg = np.zeros(len(sg) if n_on else 0, dtype=np.int64)
    if n_on:
        for e in range(len(E)):
            a, b = E[e, 0], E[e, 1]
            if sg[a] == 0:
                to_pos[a] += sg[b] > 0
                to_neg[a] += sg[b] < 0
            if sg[b] == 0:
                to_pos[b] += sg[a] > 0
                to_neg[b] += sg[a] < 0
    fp = 0
    fm = 0
    for q in range(nq):
        if q < n_on:
            i = on_idx[q]
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
def _classify(s, eps, sg, local_p, local_m, idx_p, idx_m, on_idx):
    """The sides of a cut piece's vertices (values ``s``): ``sg`` 1, -1, or 0 within ``eps`` (on
    the hyperplane, in both sides); each vertex's index in the + and - side (``local_p``,
    ``local_m``; -1: not in it) and the inverse lists ``idx_p``, ``idx_m``; ``on_idx`` the
    vertices on the hyperplane. Returns the three counts."""
    mp = 0
    mm = 0
    n_on = 0
    for i in range(len(s)):
        v = s[i]
        g = 1 if v > eps else (-1 if v < -eps else 0)
        sg[i] = g
        local_p[i] = mp if g >= 0 else -1
        local_m[i] = mm if g <= 0 else -1
        idx_p[mp] = i
        idx_m[mm] = i
        on_idx[n_on] = i
        mp += g >= 0
        mm += g <= 0
        n_on += g == 0
    return mp, mm, n_on


@njit(cache=True)
def _split_edges(E, sg, local_p, local_m, ep, em, cross_a, cross_b):
    """One pass over a cut piece's edges (``E`` flat: ``a0, b0, a1, b1, ...``): the + side keeps
    those with both ends in it and not both on the hyperplane (into ``ep``, flat, in its
    numbering), the - side likewise (``em``); the crossing ones (ends strictly on opposite
    sides) go to ``cross_a``, ``cross_b``. Branch-free: every slot is written, the counts
    advance when kept; unsigned indices spare the negative-index checks. Returns the counts."""
    kp = np.uint64(0)
    km = np.uint64(0)
    nn = np.uint64(0)
    two = np.uint64(2)
    for e in range(len(E) // 2):
        a = np.uint64(E[2 * e])
        b = np.uint64(E[2 * e + 1])
        sa = np.int64(sg[a])
        sb = np.int64(sg[b])
        ep[two * kp] = local_p[a]
        ep[two * kp + _ONE] = local_p[b]
        em[two * km] = local_m[a]
        em[two * km + _ONE] = local_m[b]
        cross_a[nn] = a
        cross_b[nn] = b
        both = sa * sb
        kp += np.uint64((sa + sb > 0) & (both >= 0))
        km += np.uint64((sa + sb < 0) & (both >= 0))
        nn += np.uint64(both < 0)
    return np.int64(kp), np.int64(km), np.int64(nn)


@njit(cache=True)
def _new_vertices(X, inc, s, cross_a, cross_b, nn, new_word, new_mask):
    """The new vertices on the first ``nn`` crossing edges: coordinates ``(d, nn)`` and tight
    sets (the edge's, and the hyperplane)."""
    d = X.shape[0]
    W = inc.shape[1]
    frac = np.empty(nn)
    incn = np.empty((nn, W), dtype=np.uint64)
    for k in range(nn):
        a, b = cross_a[k], cross_b[k]
        if s[a] < 0:            # from the + end, whichever way the edge is stored, as the
            a, b = b, a         # numpy path does: both paths make the same vertices
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
    return Xn, incn


@njit(cache=True)
def _section_inc(inc, on_idx, n_on, incn, new_word, new_mask):
    """The section's vertices' tight sets: those on the hyperplane (with it), then the new."""
    W = inc.shape[1]
    nn = len(incn)
    q_inc = np.empty((n_on + nn, W), dtype=np.uint64)
    for k in range(n_on):
        for w in range(W):
            q_inc[k, w] = inc[on_idx[k], w]
        q_inc[k, new_word] |= new_mask
    q_inc[n_on:] = incn
    return q_inc


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
    :func:`~powercells.enumerate.vertex.polytopes.affine_values` sums it (the same bits)."""
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
def _side_of(X, center, reach, G, g, p, s, eps, flags, bit):
    """The side (1: +, 0: -) of a piece that hyperplane ``p`` does not cut, or -1 when it cuts
    it (its values at the vertices left in ``s``). A hyperplane that misses the ball around
    the vertex mean is decided by the ball, any other by the vertices; one that does not cut
    the piece but comes within ``eps`` of a vertex sets ``bit`` in ``flags[0]`` (a doubt, see
    :class:`~powercells.enumerate.base.SplitDoubts`)."""
    d, nv = X.shape
    dist = g[p]
    for j in range(d):
        dist += G[p, j] * center[j]
    if abs(dist) > reach + 2 * eps:
        return 1 if dist > 0 else 0
    _values(X, G, g, p, s)
    smax = -np.inf
    smin = np.inf
    for i in range(nv):
        smax = max(smax, s[i])
        smin = min(smin, s[i])
    if smax > eps and smin < -eps:
        return -1
    if abs(smax) <= eps or abs(smin) <= eps:
        flags[0] |= bit
    return 1 if smax > eps else 0


@njit(cache=True)
def _advance(X, center, reach, G, g, p0, t, T, sides, s, eps, whole, flags):
    """Offer hyperplanes ``t, t+1, ...`` of the cell (rows ``p0 + t`` of ``G, g``) to a piece;
    record the side of each one that does not cut it; return the index of the first one that
    does (its values at the vertices left in ``s``), or ``T``. A hyperplane that does not cut
    the whole cell (``whole[t]``) is not offered: its side is the cell's. A vertex within
    ``eps`` of a hyperplane that does not cut the piece sets bit 2 of ``flags[0]``."""
    while t < T:
        if not whole[t]:
            side = _side_of(X, center, reach, G, g, p0 + t, s, eps, flags, 2)
            if side < 0:
                return t
            sides[t] = side
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
def _side_vertices(X, idx, m, Xn):
    """A side's vertices, ``(d, m + nn)``: the old ones ``idx[:m]``, then the new ones."""
    d = X.shape[0]
    nn = Xn.shape[1]
    out = np.empty((d, m + nn))
    for j in range(d):          # row by row: contiguous writes
        for k in range(m):
            out[j, k] = X[j, idx[k]]
        for i in range(nn):
            out[j, m + i] = Xn[j, i]
    return out


def split_cells(cells: PolytopeArrays, candidates: Candidates, *, eps: float, words: int,
                geometry: bool, lo: int, hi: int, prune: bool, stop: np.ndarray,
                progress: np.ndarray) -> Pieces:
    """Split every cell ``c`` in ``lo:hi`` of a batch by its candidate hyperplanes (a cell no
    candidate cuts comes back as one piece). A candidate whose hyperplane misses the ball
    around a piece's vertex mean is decided by the ball, the others by the piece's vertices.
    Releases the GIL: threads can take disjoint ranges of cells. ``stop[0] != 0`` (set by
    another thread: a budget ran out, an interrupt) makes it return at once with the pieces
    finished so far, which the caller discards; ``progress[0]`` counts the final pieces, for
    the watchdog of a region budget.

    ``words``: 64-bit words of the pieces' bit sets. ``geometry``: return the pieces'
    polytopes (``prune``: without their constraints that are not facets, as
    :meth:`~powercells.enumerate.vertex.polytopes.Polytopes.prune` leaves them). Without
    ``geometry`` a side that no later hyperplane cuts is not built: its vertices give its
    ball, and its fragile vertices are counted from the degrees its edges would have
    (:func:`_side_fragile`); when both sides are final, no vertex is on the hyperplane and
    every new vertex is simple, the section is whole (each 2-face crosses the hyperplane in two
    edges) and its edges, which nothing would read, are not matched.
    """
    cell, sides, center, radius, fragile, geom, flags = _split_cells(
        *cells, *candidates, float(eps), int(words), bool(geometry), int(lo), int(hi),
        bool(prune), stop, progress)
    return Pieces(cell, sides, center, radius, int(fragile), PolytopeArrays(*geom), flags)


@njit(cache=True)
def _scratch(nv, ne):
    """Scratch arrays of one split for a piece of ``nv`` vertices and ``ne`` edges: vertex
    signs, both sides' local and global vertex indices, the vertices on the hyperplane, both
    sides' edges and the crossing edges' ends."""
    return (np.empty(2 * nv, dtype=np.int8), np.empty(2 * nv, dtype=np.int64),
            np.empty(2 * nv, dtype=np.int64), np.empty(2 * nv, dtype=np.int64),
            np.empty(2 * nv, dtype=np.int64), np.empty(2 * nv, dtype=np.int64),
            np.empty(4 * ne, dtype=np.int64), np.empty(4 * ne, dtype=np.int64),
            np.empty(2 * ne, dtype=np.int64), np.empty(2 * ne, dtype=np.int64))


@njit(cache=True)
def _start_cell(X, inc, E, N, h, slot, v0, v1, e0, e1, c0, c1, G, g, p0, T, eps, words, flags):
    """Cell ``c`` as the first entry of its stack: its vertices ``(d, n)`` (sums vectorise),
    bit sets widened to ``words``, edges and constraints, the first candidate that cuts it,
    its sides of the candidates decided so far, its ball, and the values at its vertices of
    the candidate that cuts it; with the candidates that do not cut the cell itself
    (``whole``: they take its side in every piece, as in the numpy path: a piece's new
    vertices, interpolated, are not re-tested against them) and its fragile vertex count.
    Such a candidate within ``eps`` of a vertex of the cell sets bit 1 of ``flags[0]``."""
    d = X.shape[1]
    rX = X[v0:v1].T.copy()
    rE = E[e0:e1].copy()
    fragile = _fragile(rX, rE, d)      # a cell's own vertices are checked once, here
    rinc = np.zeros((v1 - v0, words), dtype=np.uint64)
    rinc[:, :inc.shape[1]] = inc[v0:v1]
    center, reach = _ball(rX)
    sides = np.zeros(T, dtype=np.int8)
    s = np.empty(rX.shape[1])
    whole = np.zeros(T, dtype=np.bool_)
    for u in range(T):
        side = _side_of(rX, center, reach, G, g, p0 + u, s, eps, flags, 1)
        if side >= 0:
            whole[u] = True
            sides[u] = side
    t = _advance(rX, center, reach, G, g, p0, 0, T, sides, s, eps, whole, flags)
    entry = (rX, rinc, rE, N[c0:c1].copy(), h[c0:c1].copy(), slot[c0:c1].copy(), t, sides,
             center, reach, s, np.nan)
    return entry, whole, fragile


@njit(cache=True)
def _cut_piece(entry, G, g, p0, T, base, eps, geometry, whole, scratch, table, used, words,
               flags):
    """Cut a stack entry by the candidate ``t`` that cuts it: both sides as stack entries
    (the + side first), each offered the later candidates up to the next that cuts it; a
    side that no later candidate cuts and whose polytope is not asked for is not built (its
    ball's radius comes with it). Returns the two entries, the fragile vertices of both sides,
    and the scratch arrays and section table (grown when the piece outgrew them)."""
    PX, Pinc, PE, PN, Ph, Pslot, t, sides, _, _, s, _ = entry
    d = PX.shape[0]
    p = p0 + t
    new_slot = base + t
    new_word = new_slot // 64
    new_mask = _ONE << np.uint64(new_slot % 64)
    nv = PX.shape[1]
    if nv > len(scratch[0]) or 2 * len(PE) > len(scratch[6]):
        scratch = _scratch(max(nv, len(scratch[0]) // 2), max(len(PE), len(scratch[6]) // 4))
    sg, local_p, local_m, idx_p, idx_m, on_idx, ep, em, cross_a, cross_b = scratch
    mp, mm, n_on = _classify(s, eps, sg, local_p, local_m, idx_p, idx_m, on_idx)
    if n_on:
        flags[0] |= 2               # a vertex within eps of the cutting hyperplane
    kp, km, nn = _split_edges(PE.reshape(2 * len(PE)), sg, local_p, local_m, ep, em,
                               cross_a, cross_b)
    Xn, incn = _new_vertices(PX, Pinc, s, cross_a, cross_b, nn, new_word, new_mask)
    # both sides' vertices, balls, and the next hyperplane that cuts each
    Xp = _side_vertices(PX, idx_p, mp, Xn)
    Xm = _side_vertices(PX, idx_m, mm, Xn)
    cp, rp = _ball(Xp)
    cm, rm = _ball(Xm)
    s_plus = sides.copy()
    s_plus[t] = 1
    s_minus = sides.copy()
    s_minus[t] = 0
    sp = np.empty(Xp.shape[1])
    sm = np.empty(Xm.shape[1])
    tp = _advance(Xp, cp, rp, G, g, p0, t + 1, T, s_plus, sp, eps, whole, flags)
    tm = _advance(Xm, cm, rm, G, g, p0, t + 1, T, s_minus, sm, eps, whole, flags)
    # a final side needs no arrays unless the geometry is asked for
    build_p = geometry or tp < T
    build_m = geometry or tm < T
    fragile = 0
    qa = qb = np.empty(0, dtype=np.int64)
    if build_p or build_m or n_on or not _all_simple(incn, d):
        q_inc = incn if n_on == 0 else _section_inc(Pinc, on_idx, n_on, incn, new_word,
                                                     new_mask)
        qa, qb, table, used = _section_edges(q_inc, d, new_slot, table, used)
        # fragile vertices of both sides, from the degrees their edges give (built or not)
        fp, fm = _side_fragile(PE, sg[:nv], on_idx, n_on, nn, qa, qb, d)
        fragile += fp + fm
    # else both sides are final and nothing will read their edges; with no vertex on the
    # hyperplane (every sign beyond eps) each 2-face of the piece, a polygon, has exactly two
    # crossing edges, so the section of simple vertices is whole: nothing to match and no
    # vertex short of edges
    no_inc = np.empty((0, words), dtype=np.uint64)
    no_E = np.empty((0, 2), dtype=np.int64)
    if build_p:
        q = _child(Xp, Pinc, idx_p, mp, sg, 1, local_p, ep[:2 * kp], incn, cross_a, cross_b,
                   on_idx, n_on, qa, qb, PN, Ph, Pslot, new_word, new_mask, G[p], g[p],
                   new_slot)
        plus = (q[0], q[1], q[2], q[3], q[4], q[5], tp, s_plus, cp, rp, sp, np.nan)
    else:
        plus = (Xp, no_inc, no_E, PN, Ph, Pslot, tp, s_plus, cp, rp, sp,
                _inner_radius(PN, Ph, cp, G[p], g[p], 1.0))
    if build_m:
        q = _child(Xm, Pinc, idx_m, mm, sg, -1, local_m, em[:2 * km], incn, cross_a, cross_b,
                   on_idx, n_on, qa, qb, PN, Ph, Pslot, new_word, new_mask, G[p], g[p],
                   new_slot)
        minus = (q[0], q[1], q[2], q[3], q[4], q[5], tm, s_minus, cm, rm, sm, np.nan)
    else:
        minus = (Xm, no_inc, no_E, PN, Ph, Pslot, tm, s_minus, cm, rm, sm,
                 _inner_radius(PN, Ph, cm, G[p], g[p], -1.0))
    return plus, minus, fragile, scratch, table, used


@njit(cache=True)
def _assemble(d, words, p_cell, p_sides, p_center, p_radius, g_X, g_inc, g_E, g_N, g_h,
              g_slot, geometry, prune):
    """The final pieces as flat arrays (and, asked for, their polytopes as CSR arrays)."""
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
    mg = len(g_X) if geometry and m else 0
    if prune:
        for i in range(mg):
            _prune_piece(g_inc, g_N, g_h, g_slot, i, d)
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
    return cell, sides, center, radius, (oX, oinc, vs, oE, es, oN, oh, oslot, cs)


@njit(cache=True, nogil=True)
def _split_cells(X, inc, vstart, E, estart, N, h, slot, cstart, first, G, g, bases, eps, words,
                 geometry, lo, hi, prune, stop, progress):
    """:func:`split_cells` on the arrays: cell by cell, each cell's pieces depth first (a
    stack of pieces, each with the next candidate that cuts it)."""
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
    # per cell: bit 1, a candidate that cuts no piece came within eps of a vertex of the cell;
    # bit 2, one came within eps of a vertex of a piece (SplitDoubts)
    flags = np.zeros(len(first) - 1, dtype=np.int8)
    # scratch space of one split, reused (grown when a piece outgrows it)
    scratch = _scratch(0, 0)
    table = np.zeros(0, dtype=np.uint64)
    used = np.empty(0, dtype=np.int64)
    for c in range(lo, hi):
        if read_flag(stop) != 0:
            break
        T = first[c + 1] - first[c]
        if T == 0:
            continue
        p0 = first[c]
        c0, c1 = cstart[c], cstart[c + 1]
        base = bases[c]
        if base < 0:
            for r in range(c0, c1):
                base = max(base, slot[r] + 1)
        entry, whole, cell_fragile = _start_cell(X, inc, E, N, h, slot, vstart[c], vstart[c + 1],
                                                 estart[c], estart[c + 1], c0, c1, G, g, p0, T,
                                                 eps, words, flags[c:c + 1])
        fragile += cell_fragile
        # a piece on the stack has been offered its cell's hyperplanes up to ``t``, the first
        # that cuts it (its values at the vertices in ``s``), or ``T``: then it is final, and
        # ``radius`` (when not NaN) is its ball's, computed when its edges were not built
        stack = List()
        stack.append(entry)
        while len(stack):
            if read_flag(stop) != 0:
                break
            entry = stack.pop()
            PX, Pinc, PE, PN, Ph, Pslot, t, sides, center, _, _, radius = entry
            if t == T:
                if np.isnan(radius):
                    radius = _inner_radius(PN, Ph, center, G[p0], 0.0, 0.0)
                progress[0] += 1
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
            plus, minus, cut_fragile, scratch, table, used = _cut_piece(
                entry, G, g, p0, T, base, eps, geometry, whole, scratch, table, used, words,
                flags[c:c + 1])
            fragile += cut_fragile
            # the stack gives the - side (and its pieces) first, so a cell's pieces come out in
            # the lexicographic order of their sides, the tree's order
            stack.append(plus)
            stack.append(minus)
    if read_flag(stop) != 0:
        # stopped early: the caller discards the result, so nothing is assembled
        p_cell = List.empty_list(np.int64)
    cell, sides, center, radius, geom = _assemble(d, words, p_cell, p_sides, p_center,
                                                  p_radius, g_X, g_inc, g_E, g_N, g_h, g_slot,
                                                  geometry, prune)
    return cell, sides, center, radius, fragile, geom, flags


@njit(cache=True)
def _prune_piece(g_inc, g_N, g_h, g_slot, i, d):
    """:meth:`~powercells.enumerate.vertex.polytopes.Polytopes.prune` of piece ``i``: its constraints
    tight at fewer than ``d`` vertices (not facets) are dropped, and their bits."""
    inc = g_inc[i]
    slot = g_slot[i]
    W = inc.shape[1]
    tight = np.zeros(64 * W, dtype=np.int64)
    for v in range(len(inc)):
        for w in range(W):
            x = inc[v, w]
            while x:
                low = x & (~x + _ONE)
                x ^= low
                tight[64 * w + _lowest_bit(low)] += 1
    keep = np.empty(len(slot), dtype=np.bool_)
    mask = np.zeros(W, dtype=np.uint64)
    for r in range(len(slot)):
        keep[r] = tight[slot[r]] >= d
        if keep[r]:
            mask[slot[r] // 64] |= _ONE << np.uint64(slot[r] % 64)
    if keep.all():
        return
    for v in range(len(inc)):
        for w in range(W):
            inc[v, w] &= mask[w]
    g_N[i] = g_N[i][keep]
    g_h[i] = g_h[i][keep]
    g_slot[i] = slot[keep]
