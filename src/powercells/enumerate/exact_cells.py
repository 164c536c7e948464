"""Exact cells: a network's partition computed in integers, for the cells float64 cannot decide.

Every float64 is a dyadic rational, so a layer's weights are an integer matrix over a power of
two, and so is every pulled-back hyperplane and affine map: the arithmetic here is Python
integers (numpy object arrays) and is exact for the network as the engines see it (the balanced
network, in engine coordinates: both differ from the stored one by powers of two only).

An :class:`ExactCell` is an open polytope ``{x : H x < h}`` (integer rows) with a rational
interior witness, the exact affine map ``z = (MA x + MB) / 2**e`` into the next layer, and the
code of the layer that made it. :func:`split_exact` cuts a cell by a layer unit by unit, deciding
each side with :func:`powercells.lp.exact.strict_point` (a witness or a Farkas certificate),
so no decision depends on a tolerance. :func:`place` finds the cell of a point layer by layer
(no LP), which is how a float engine's node is turned into an exact one.

Code conventions are the engines' (SPEC §1.3): a ReLU-type unit is active iff its
pre-activation is > 0; a max unit's code is the winning piece, the smallest index on ties; a
unit constant on a cell adds no row (a zero pre-activation is inactive).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..lp.exact import Witness, strict_point

__all__ = ["ExactCell", "Unplaced", "constant_codes", "dyadic", "empty_sides", "exact_root",
           "place", "split_exact", "vertices_exact"]


class Unplaced(ArithmeticError):
    """A point lies exactly on a hyperplane of a unit, so it names no cell."""


def dyadic(a) -> tuple[np.ndarray, int]:
    """``(N, e)`` with ``a == N / 2**e`` exactly: ``N`` an object array of Python ints."""
    a = np.asarray(a, dtype=np.float64)
    m, ex = np.frexp(a)
    mant = (m * 2.0 ** 53).astype(np.int64)                 # exact: 53 significant bits
    k = ex.astype(np.int64) - 53                            # a == mant * 2**k
    nz = mant != 0
    e = int(-k[nz].min()) if nz.any() else 0
    # Python ints (object arrays), shifted in numpy's object loop; zeros have no exponent
    shift = np.where(nz, k + e, 0).astype(object)
    return np.asarray(mant.astype(object) << shift, dtype=object), e


def _shift(N: np.ndarray, s: int) -> np.ndarray:
    return N * (1 << s) if s else N


class _ExactLayer:
    """A layer's pieces (or switch rows) as integer arrays over powers of two."""

    def __init__(self, layer):
        self.layer = layer
        self.kind = layer.kind
        self.switch = layer.is_switch
        if self.switch:
            self.W, self.ew = dyadic(layer.switch_W)
            self.b, self.eb = dyadic(layer.switch_b)
            if layer.kind == "leaky_relu":
                (s,), self.es = dyadic([float(layer.slope)])
                self.slope = int(s)
        else:
            self.A, self.ea = dyadic(layer.A)
            self.B, self.eb = dyadic(layer.B)
            self.n_pieces = np.asarray(layer.n_pieces)

    def on(self, cell: ExactCell):
        """The layer's values on the cell as integer affine functions of x over ``2**E``:
        switch layers ``(G (K, k), g (K,), E)``; max layers ``(P (K, R, k), p (K, R), E)``.
        Kept on the cell (``cell.memo``): placing many points, and settling a cell's doubts and
        slivers, read them again."""
        got = cell.memo.get(id(self))
        if got is not None and got[0] is self:
            return got[1]
        if self.switch:
            E = max(self.ew + cell.e, self.eb)
            G = _shift(self.W.dot(cell.MA), E - self.ew - cell.e)
            g = _shift(self.W.dot(cell.MB), E - self.ew - cell.e) + _shift(self.b, E - self.eb)
            out = G, g, E
        else:
            K, R, D = self.A.shape
            E = max(self.ea + cell.e, self.eb)
            flat = self.A.reshape(K * R, D)
            P = _shift(flat.dot(cell.MA), E - self.ea - cell.e).reshape(K, R, -1)
            p = (_shift(flat.dot(cell.MB), E - self.ea - cell.e).reshape(K, R)
                 + _shift(self.B, E - self.eb))
            out = P, p, E
        cell.memo[id(self)] = (self, out)
        return out


_LAYERS: dict = {}

#: Exact layers kept (a worker receives fresh copies of a run's layers with every task, so the
#: cache holds the latest few; each entry holds its layer, so an id is never reused under it).
_LAYERS_KEPT = 64


def _exact(layer) -> _ExactLayer:
    """The exact form of a layer (cached: layers are immutable)."""
    got = _LAYERS.get(id(layer))
    if got is None or got.layer is not layer:
        got = _ExactLayer(layer)
        while len(_LAYERS) >= _LAYERS_KEPT:
            del _LAYERS[next(iter(_LAYERS))]
        _LAYERS[id(layer)] = got
    return got


@dataclass
class ExactCell:
    """An open polytope with its exact affine map and a rational interior point.

    Attributes
    ----------
    H, h : object arrays of int, shapes (m, k) and (m,)
        The cell is ``{x : H x < h}`` (engine coordinates).
    MA, MB, e : the map into the next layer's input, ``z = (MA x + MB) / 2**e``.
    witness : Witness
        ``H x < h`` holds at it exactly.
    code : ndarray of int16
        The code of the layer that made the cell (empty for the root).
    tags : list
        What each row is: ``("d", i)`` row ``i`` of the domain, ``(layer, unit)`` a ReLU-type
        unit's switch (the side is the cell's code), ``(layer, unit, r, s)`` piece ``s``
        against piece ``r`` of a max unit.
    exps : list of int
        Row ``i`` is ``2**exps[i]`` times that row's exact value (certificates give weights
        for the exact rows).
    path : tuple
        The codes of every layer so far (tuples of ints).
    """

    H: np.ndarray
    h: np.ndarray
    MA: np.ndarray
    MB: np.ndarray
    e: int
    witness: Witness
    code: np.ndarray
    tags: list
    exps: list
    path: tuple = ()
    #: per exact layer, its values on the cell (:meth:`_ExactLayer.on`), kept while the cell is
    memo: dict = field(default_factory=dict, repr=False, compare=False)
    #: an ordinary region computed exactly (it replaced an engine's wrong cell), not a thin one
    regular: bool = False

    def __getstate__(self):
        state = dict(self.__dict__)
        state["memo"] = {}                  # recomputed where needed, never shipped
        return state

    @property
    def dim(self) -> int:
        return self.MA.shape[1]

    def point(self) -> np.ndarray:
        """The witness, rounded to float64."""
        return self.witness.as_float()

    def radius(self) -> float:
        """The radius of the largest ball about the witness inside the cell (a lower bound of
        the inradius), rounded to float64."""
        if not len(self.h):
            return float("inf")
        p = np.array(list(self.witness.numerators), dtype=object)
        q = self.witness.denominator
        slack = self.h * q - self.H.dot(p)                  # exact integers, all > 0
        norm2 = (self.H * self.H).sum(axis=1)
        best = None
        for s, n2 in zip(slack, norm2):
            if n2:
                # s / (q |row|) with |row| by an integer square root, 2^-60 relative: no float
                # of the big integers (a 1e300-wide domain squares past float64)
                root = math.isqrt(int(n2) << 120)
                r = float(Fraction(int(s) << 60, q * root))
                best = r if best is None else min(best, r)
        return float("inf") if best is None else best


def exact_root(H, h, point) -> ExactCell:
    """The domain ``H x <= h`` (floats, taken exactly) as a cell, with ``point`` (floats,
    strictly inside) as its witness.

    Raises
    ------
    Unplaced
        If the point is not strictly inside.
    """
    H = np.asarray(H, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    k = H.shape[1]
    rows_H, rows_h, exps = [], [], []
    for i in range(len(h)):
        Ni, ei = dyadic(np.append(H[i], h[i]))
        rows_H.append(Ni[:k])
        rows_h.append(Ni[k])
        exps.append(ei)
    Hx = np.array(rows_H, dtype=object).reshape(len(h), k)
    hx = np.array(rows_h, dtype=object)
    witness = _as_witness(point)
    if not _inside(Hx, hx, witness):
        raise Unplaced("the point is not strictly inside the domain")
    MA = np.empty((k, k), dtype=object)
    MA[:] = 0
    for i in range(k):
        MA[i, i] = 1
    MB = np.array([0] * k, dtype=object)
    return ExactCell(Hx, hx, MA, MB, 0, witness, np.empty(0, dtype=np.int16),
                     [("d", i) for i in range(len(h))], exps)


def _as_witness(point) -> Witness:
    N, e = dyadic(np.asarray(point, dtype=np.float64).reshape(-1))
    if e >= 0:
        return Witness(tuple(int(v) for v in N), 1 << e)
    return Witness(tuple(int(v) << -e for v in N), 1)


def _inside(H, h, w: Witness) -> bool:
    if len(h) == 0:
        return True
    p = np.array(list(w.numerators), dtype=object)
    return bool(np.all(H.dot(p) < h * w.denominator))


def _sign_at(row, const, w: Witness) -> int:
    v = int(np.dot(row, np.array(list(w.numerators), dtype=object))) + int(const) * w.denominator
    return (v > 0) - (v < 0)


def _with_rows(cell_H, cell_h, rows):
    """The rows ``(row, const, tag, exp)`` appended to ``H x < h``."""
    if not rows:
        return cell_H, cell_h
    R = np.array([r[0] for r in rows], dtype=object).reshape(len(rows), -1)
    r = np.array([r[1] for r in rows], dtype=object)
    return np.concatenate([cell_H, R]), np.concatenate([cell_h, r])


@dataclass
class _Partial:
    H: np.ndarray
    h: np.ndarray
    witness: Witness | None
    code: list
    tags: list
    exps: list

    def extended(self, rows, witness):
        H, h = _with_rows(self.H, self.h, rows)
        return _Partial(H, h, witness, list(self.code), self.tags + [r[2] for r in rows],
                        self.exps + [r[3] for r in rows])


def _feasible(part: _Partial, rows, hint):
    """``(part with extra strict rows, None)``, or ``(None, Farkas)`` if that is exactly
    empty."""
    H, h = _with_rows(part.H, part.h, rows)
    if part.witness is not None and _inside(H[len(part.h):], h[len(part.h):], part.witness):
        return part.extended(rows, part.witness), None
    hint_point = part.witness.as_float() if part.witness is not None else hint
    got = strict_point(H, h, hint=hint_point)
    if not isinstance(got, Witness):
        return None, got
    return part.extended(rows, got), None


def _switch_rows(G_k, g_k, active: bool, tag, exp: int):
    """The strict row saying unit k is active (``G x + g > 0``) or inactive (``< 0``)."""
    return (-G_k, g_k, tag, exp) if active else (G_k, -g_k, tag, exp)


def _max_rows(P_k, p_k, r: int, n: int, tag, exp: int):
    """The strict rows saying piece ``r`` wins (ties to the smaller index), or None if a
    constant difference rules it out; identically equal pieces add no row. ``tag``: the
    unit's ``(layer, unit)``."""
    rows = []
    for s in range(n):
        if s == r:
            continue
        D = P_k[s] - P_k[r]
        d = p_k[s] - p_k[r]
        if not any(D):
            if d < 0 or (d == 0 and s > r):
                continue                        # constant: r wins over s everywhere
            return None
        rows.append((D, -d, tag + (r, s), exp))    # value_s - value_r < 0
    return rows


def split_exact(cell: ExactCell, layer, *, fixed=None, hint=None, depth: int = -1,
                log: list | None = None) -> list[ExactCell]:
    """The children of a cell under a layer, in code order, each with an exact witness.

    The layer's units are taken one at a time: every partial cell is cut by the unit's
    hyperplane (or its pieces' comparisons), and each side is kept with a witness or dropped
    with a Farkas certificate (:func:`powercells.lp.exact.strict_point`).

    Parameters
    ----------
    cell : ExactCell
    layer : Layer
    fixed : array of int (K,), optional
        Units whose code is given (>= 0): only children with these codes (-1: free).
    hint : float array (k,), optional
        A point near the children (the first LP's start when the cell's witness is not in
        them).
    depth : int
        The layer's index in the network (0 for the first layer): rows are tagged with it.
    log : list, optional
        Receives ``(prefix, unit, side, certificate)`` for every side dropped: ``prefix`` the
        codes of units ``0..unit-1`` (None: the side is empty on the whole cell, proven from
        the cell's own rows), ``side`` the code ruled out, ``certificate`` a list of
        ``(tag, weight)`` (a Farkas combination of the exact rows, :attr:`ExactCell.tags`), or
        None for a max unit's piece that a constant difference rules out. Only for unfixed
        units.
    """
    ex = _exact(layer)
    K = layer.out_dim
    parts = [_Partial(cell.H, cell.h, cell.witness, [], list(cell.tags), list(cell.exps))]
    values = ex.on(cell)
    if layer.kind == "identity":
        parts[0].code = [0] * K
    elif ex.switch:
        G, g, E = values
        for k in range(K):
            want = None if fixed is None or fixed[k] < 0 else int(fixed[k])
            if not any(G[k]):                       # constant on the cell
                c = 1 if g[k] > 0 else 0
                if want is not None and want != c:
                    return []
                for part in parts:
                    part.code.append(c)
                continue
            sides = (0, 1) if want is None else (want,)
            s0 = _sign_at(G[k], g[k], cell.witness)
            if want is None and s0 != 0:
                # most units miss the cell: one test on the cell rules a side out for every
                # partial cell at once
                other = 0 if s0 > 0 else 1
                row = _switch_rows(G[k], g[k], other == 1, (depth, k), E)
                whole = _Partial(cell.H, cell.h, cell.witness, [], list(cell.tags),
                                 list(cell.exps))
                got, proof = _feasible(whole, [row], hint)
                if got is None:
                    sides = (1 - other,)
                    if log is not None:
                        log.append((None, k, other, _weights(proof, whole.tags + [row[2]],
                                                             whole.exps + [row[3]])))
            nxt = []
            for part in parts:
                s = 0 if part.witness is None else _sign_at(G[k], g[k], part.witness)
                for side in sides:
                    row = _switch_rows(G[k], g[k], side == 1, (depth, k), E)
                    if s == (1 if side == 1 else -1):      # the witness is on this side
                        child, proof = part.extended([row], part.witness), None
                    else:
                        child, proof = _feasible(part, [row], hint)
                    if child is not None:
                        child.code.append(side)
                        nxt.append(child)
                    elif log is not None and want is None:
                        log.append((tuple(part.code), k, side,
                                    _weights(proof, part.tags + [row[2]],
                                             part.exps + [row[3]])))
            parts = nxt
            if not parts:
                return []
    else:
        P, p, E = values
        for k in range(K):
            n = int(ex.n_pieces[k])
            want = None if fixed is None or fixed[k] < 0 else int(fixed[k])
            nxt = []
            for part in parts:
                for r in (range(n) if want is None else (want,)):
                    rows = _max_rows(P[k], p[k], r, n, (depth, k), E)
                    proof = None
                    child = None
                    if rows is not None:
                        child, proof = _feasible(part, rows, hint)
                    if child is not None:
                        child.code.append(r)
                        nxt.append(child)
                    elif log is not None and want is None:
                        log.append((tuple(part.code), k, r, None if rows is None else
                                    _weights(proof, part.tags + [q[2] for q in rows],
                                             part.exps + [q[3] for q in rows])))
            parts = nxt
            if not parts:
                return []
    return [_child(ex, values, part, cell.path) for part in parts]


def empty_sides(cell: ExactCell, layer, units, sides, *, hint=None,
                depth: int = -1) -> list[bool]:
    """Whether each ReLU-type unit ``units[i]`` has no point of side ``sides[i]`` (1: active)
    in the open cell, decided exactly: True with a Farkas certificate (checked), False with a
    witness. One test on the whole cell, as :func:`split_exact` makes for a unit that misses
    it."""
    G, g, E = _exact(layer).on(cell)
    whole = _Partial(cell.H, cell.h, cell.witness, [], list(cell.tags), list(cell.exps))
    out = []
    for k, side in zip(units, sides):
        k, side = int(k), int(side)
        if not any(G[k]):                       # constant on the cell: the pull-back's rule
            out.append((1 if g[k] > 0 else 0) != side)
            continue
        if _sign_at(G[k], g[k], cell.witness) == (1 if side == 1 else -1):
            out.append(False)
            continue
        got, _ = _feasible(whole, [_switch_rows(G[k], g[k], side == 1, (depth, k), E)], hint)
        out.append(got is None)
    return out


def vertices_exact(cell: ExactCell, layer, points, *, eps: float) -> bool:
    """Whether each point is, to within ``eps``, one exact vertex of the arrangement of the
    cell's rows and a ReLU-type layer's hyperplanes on the cell: the hyperplanes within ``eps``
    of the point (a float engine's vertex, taken as on all of them) meet exactly in a single
    point. Then every "on the hyperplane" an engine decided there is exactly true.

    False when some point is not (near-concurrent or near-parallel hyperplanes: a region
    thinner than ``eps`` may hide there), or when the rows are too large for the float screen.
    The screen takes every hyperplane within ``2 eps`` (the engine rounded its own values), and
    only the units it keeps are computed exactly.
    """
    ex = _exact(layer)
    try:
        Hf, hf, MAf, MBf = _float_view(cell)
    except OverflowError:
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        Gf = layer.switch_W @ MAf
        gf = layer.switch_W @ MBf + layer.switch_b
        Af = np.vstack([Hf, -Gf])
        bf = np.concatenate([hf, gf])
        norm = np.linalg.norm(Af, axis=1)
    if not (np.all(np.isfinite(Af)) and np.all(np.isfinite(bf)) and np.all(np.isfinite(norm))):
        return False
    norm = np.where(norm > 0, norm, np.inf)
    m, d = Hf.shape
    V = np.unique(np.asarray(points, dtype=np.float64).reshape(-1, d), axis=0)
    with np.errstate(invalid="ignore"):
        close = np.abs(V @ Af.T - bf) <= 2 * eps * norm
    units = np.flatnonzero(close[:, m:].any(axis=0))
    G, g = _unit_rows(ex, cell, units)
    exact = {int(u): (list(-G[i]), g[i]) for i, u in enumerate(units) if any(G[i])}
    for row in close:
        near = np.flatnonzero(row)
        rows = [(list(cell.H[i]), cell.h[i]) if i < m else exact.get(int(i) - m)
                for i in near]
        rows = [r for r in rows if r is not None]          # exactly constant units: no plane
        if len(rows) < d:
            return False
        if len(rows) == len(near) == d:
            # d hyperplanes meet in one point iff their normals are independent: a float
            # determinant far above its rounding error proves it (Hadamard bound times 1e-9)
            if abs(np.linalg.det(Af[near])) > 1e-9 * np.prod(norm[near]):
                continue
        if not _one_point([a + [c] for a, c in rows], d):
            return False
    return True


def constant_codes(cell: ExactCell, layer, units) -> list:
    """Per ReLU-type unit ``units[i]``: its exact code on the cell if it is exactly constant
    there (1 where its constant is > 0), None if its exact gradient is not 0."""
    G, g = _unit_rows(_exact(layer), cell, np.asarray(units, dtype=np.intp))
    return [None if any(G[i]) else int(g[i] > 0) for i in range(len(g))]


def _float_view(cell: ExactCell):
    """The cell's rows ``H x <= h`` and map ``MA x + MB`` (over ``2**e``) in float64, kept on
    the cell. Raises OverflowError past float64's range."""
    got = cell.memo.get("float")
    if got is None:
        e = cell.e
        got = (np.array([[float(v) for v in r] for r in cell.H], dtype=np.float64)
               .reshape(len(cell.h), -1),
               np.array([float(v) for v in cell.h], dtype=np.float64),
               np.array([[math.ldexp(float(v), -e) for v in r] for r in cell.MA],
                        dtype=np.float64).reshape(cell.MA.shape),
               np.array([math.ldexp(float(v), -e) for v in cell.MB], dtype=np.float64))
        cell.memo["float"] = got
    return got


def _unit_rows(ex: _ExactLayer, cell: ExactCell, units):
    """Rows ``units`` of :meth:`_ExactLayer.on` (switch layers), computed for those alone
    unless the cell keeps them all."""
    got = cell.memo.get(id(ex))
    if got is not None and got[0] is ex:
        G, g, _ = got[1]
        return G[units], g[units]
    E = max(ex.ew + cell.e, ex.eb)
    W = ex.W[units]
    G = _shift(W.dot(cell.MA), E - ex.ew - cell.e)
    g = _shift(W.dot(cell.MB), E - ex.ew - cell.e) + _shift(ex.b[units], E - ex.eb)
    return G, g


def _one_point(rows, d: int) -> bool:
    """Whether the integer system ``[a | b]`` (rows) has exactly one solution: rank ``d`` with
    and without the right-hand side (fraction-free elimination, exact)."""
    M = [[int(v) for v in r] for r in rows]
    rank = 0
    for col in range(d + 1):
        pivot = next((i for i in range(rank, len(M)) if M[i][col]), None)
        if pivot is None:
            if col < d:
                return False            # rank of a below d: not a single point
            continue
        if col == d:
            return False                # b independent of a: no common point
        M[rank], M[pivot] = M[pivot], M[rank]
        p = M[rank]
        for i in range(len(M)):
            if i != rank and M[i][col]:
                f = M[i][col]
                M[i] = [p[col] * x - f * y for x, y in zip(M[i], p)]
                gcd = math.gcd(*M[i])
                if gcd > 1:
                    M[i] = [x // gcd for x in M[i]]
        rank += 1
    return rank == d


def _weights(proof, tags, exps) -> list:
    """A Farkas certificate on engine rows as weights on the exact rows (row ``i`` is
    ``2**exps[i]`` times its exact value)."""
    out = []
    for i, w in zip(proof.rows, proof.weights):
        e = exps[i]
        out.append((tags[i], w * (1 << e) if e >= 0 else w / (1 << -e)))
    return out


def _child(ex: _ExactLayer, values, part: _Partial, path: tuple) -> ExactCell:
    code = np.array(part.code, dtype=np.int16)
    MA, MB, e = _next_map(ex, values, code)
    return ExactCell(part.H, part.h, MA, MB, e, part.witness, code, part.tags, part.exps,
                     path + (tuple(int(c) for c in code),))


def _next_map(ex: _ExactLayer, values, code: np.ndarray):
    """The map into the next layer on the child with this code (``values``: the layer's
    values on the parent, :meth:`_ExactLayer.on`)."""
    if ex.switch:
        G, g, E = values
        kind = ex.kind
        if kind == "relu":
            f = np.array([int(c) for c in code], dtype=object)
            return G * f[:, None], g * f, E
        if kind == "abs":
            f = np.array([1 if c else -1 for c in code], dtype=object)
            return G * f[:, None], g * f, E
        # leaky: active units times 2**es, inactive ones times the slope's numerator
        f = np.array([(1 << ex.es) if c else ex.slope for c in code], dtype=object)
        return G * f[:, None], g * f, E + ex.es
    P, p, E = values
    idx = np.arange(len(code))
    return P[idx, code.astype(np.intp)], p[idx, code.astype(np.intp)], E


def place(cell: ExactCell, layer, point: Witness, *, depth: int = -1) -> ExactCell:
    """The child of ``cell`` under ``layer`` that contains ``point`` (which must lie in
    ``cell``), found by exact evaluation: no LP. ``depth``: the layer's index (row tags).

    Raises
    ------
    Unplaced
        If the point lies on a hyperplane of a unit that is not constant on the cell.
    """
    ex = _exact(layer)
    K = layer.out_dim
    rows, code = [], []
    values = ex.on(cell)
    if layer.kind == "identity":
        code = [0] * K
    elif ex.switch:
        G, g, E = values
        # every unit's value at the point, times its denominator: one object product
        at = G.dot(np.array(list(point.numerators), dtype=object)) + g * point.denominator
        for k in range(K):
            if not any(G[k]):
                code.append(1 if g[k] > 0 else 0)
                continue
            s = (at[k] > 0) - (at[k] < 0)
            if s == 0:
                raise Unplaced(f"{layer.name}: the point lies on unit {k}'s hyperplane")
            code.append(1 if s > 0 else 0)
            rows.append(_switch_rows(G[k], g[k], s > 0, (depth, k), E))
    else:
        P, p, E = values
        for k in range(K):
            n = int(ex.n_pieces[k])
            for r in range(n):
                got = _max_rows(P[k], p[k], r, n, (depth, k), E)
                if got is None:
                    continue
                if all(_sign_at(q[0], -q[1], point) < 0 for q in got):
                    code.append(r)
                    rows.extend(got)
                    break
            else:
                raise Unplaced(f"{layer.name}: the point lies where unit {k}'s pieces tie")
    H, h = _with_rows(cell.H, cell.h, rows)
    code = np.array(code, dtype=np.int16)
    MA, MB, e = _next_map(ex, values, code)
    return ExactCell(H, h, MA, MB, e, point, code, cell.tags + [q[2] for q in rows],
                     cell.exps + [q[3] for q in rows],
                     cell.path + (tuple(int(c) for c in code),))
