"""Exact arithmetic for cells too thin for float64 (:mod:`powercells.lp.exact`,
:mod:`powercells.enumerate.exact_cells`, :mod:`powercells.enumerate.thin`).

Every oracle here is written in this file and shares no code with the library:

* :func:`fm_decide` decides a strict system ``H x < h`` by Fourier-Motzkin elimination over
  :class:`fractions.Fraction`, with a witness (back substitution) or a Farkas combination (the
  multipliers carried through the elimination);
* :func:`exact_partition` enumerates a small network's regions layer by layer in rationals,
  deciding every cell with :func:`fm_decide` (the float weights taken as the binary rationals
  they are);
* :func:`polygon` / :func:`inradius_bounds` clip the box by a 2-D cell's rows in rationals and
  bound its inradius by ``A / P <= r <= 2 A / P`` (convex planar sets), to say which regions
  are thin without trusting an engine.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import powercells as pc
from powercells.enumerate.engines import engine_defaults
from powercells.enumerate.exact_cells import (
    Unplaced,
    dyadic,
    exact_root,
    place,
    split_exact,
)
from powercells.lp.exact import (
    Farkas,
    Witness,
    check_farkas,
    check_witness,
    strict_point,
)

F = Fraction

FAST = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
NETS = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ===================================================================== the Fourier-Motzkin oracle
def _normalised(coeffs, c, w):
    """The row scaled by a positive factor so that its largest |coefficient| is 1 (zero rows
    unchanged): the same halfspace, its multipliers scaled alike."""
    top = max((abs(a) for a in coeffs), default=F(0))
    if top == 0:
        return coeffs, c, w
    return (tuple(a / top for a in coeffs), c / top, {i: v / top for i, v in w.items()})


def _reduced(rows):
    """One row per direction, the tightest (a looser parallel row is implied by it)."""
    best = {}
    for coeffs, c, w in rows:
        coeffs, c, w = _normalised(coeffs, c, w)
        if coeffs not in best or c < best[coeffs][1]:
            best[coeffs] = (coeffs, c, w)
    return list(best.values())


def fm_decide(H, h):
    """Decide ``{x : H x < h}`` exactly by Fourier-Motzkin elimination.

    Returns ``(True, x)`` with ``x`` a tuple of Fractions where every row holds strictly, or
    ``(False, y)`` with ``y`` a dict ``row -> weight`` (weights > 0, ``sum y_i H_i = 0``,
    ``sum y_i h_i <= 0``). Both are re-checked here.
    """
    m = len(h)
    k = len(H[0]) if m else 0
    rows = [(tuple(F(a) for a in H[i]), F(h[i]), {i: F(1)}) for i in range(m)]
    levels = {}
    for j in reversed(range(k)):
        rows = _reduced(rows)
        levels[j] = rows            # rows in x_0 .. x_j only
        pos = [r for r in rows if r[0][j] > 0]
        neg = [r for r in rows if r[0][j] < 0]
        new = [r for r in rows if r[0][j] == 0]
        for ap, cp, wp in pos:
            for an, cn, wn in neg:
                lp, ln = -an[j], ap[j]          # positive multipliers: x_j cancels
                coeffs = tuple(lp * a + ln * b for a, b in zip(ap, an))
                assert coeffs[j] == 0
                w = {i: lp * v for i, v in wp.items()}
                for i, v in wn.items():
                    w[i] = w.get(i, F(0)) + ln * v
                new.append((coeffs, lp * cp + ln * cn, w))
        rows = new
    for coeffs, c, w in rows:
        assert not any(coeffs)
        if c <= 0:                              # 0 < c fails: the multipliers are the proof
            assert my_farkas_ok(H, h, list(w), list(w.values()))
            return False, w
    x = [F(0)] * k
    for j in range(k):                          # back substitution, x_0 first
        lo = hi = None
        for coeffs, c, _ in levels[j]:
            a = coeffs[j]
            if a == 0:
                continue
            bound = (c - sum(coeffs[i] * x[i] for i in range(j))) / a
            if a > 0:
                hi = bound if hi is None else min(hi, bound)
            else:
                lo = bound if lo is None else max(lo, bound)
        if lo is not None and hi is not None:
            assert lo < hi
            x[j] = (lo + hi) / 2
        elif lo is not None:
            x[j] = lo + 1
        elif hi is not None:
            x[j] = hi - 1
    x = tuple(x)
    assert my_witness_ok(H, h, x)
    return True, x


def my_witness_ok(H, h, x) -> bool:
    """``H x < h`` row by row, in Fractions."""
    return all(sum(F(a) * v for a, v in zip(row, x)) < F(c) for row, c in zip(H, h))


def my_farkas_ok(H, h, rows, weights) -> bool:
    """Weights >= 0, not all 0, on valid rows, ``sum w_i H_i = 0`` and ``sum w_i h_i <= 0``."""
    rows, weights = list(rows), [F(w) for w in weights]
    if not rows or len(rows) != len(weights):
        return False
    if any(not (isinstance(i, (int, np.integer)) and 0 <= i < len(h)) for i in rows):
        return False
    if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
        return False
    k = len(H[0])
    total = [sum(w * F(H[i][j]) for i, w in zip(rows, weights)) for j in range(k)]
    return all(t == 0 for t in total) and sum(w * F(h[i]) for i, w in zip(rows, weights)) <= 0


def as_witness(x) -> Witness:
    q = math.lcm(*(v.denominator for v in x)) if x else 1
    return Witness(tuple(int(v * q) for v in x), q)


def test_oracle_on_known_systems():
    """The oracle itself, on systems decided by hand."""
    box = [[1, 0], [-1, 0], [0, 1], [0, -1]]
    assert fm_decide(box, [1, 1, 1, 1])[0]
    assert not fm_decide(box, [1, -1, 1, 1])[0]            # x < 1 and x > 1
    assert not fm_decide([[1], [-1]], [0, 0])[0]            # x < 0 < x: strict, empty
    assert fm_decide([[1], [-1]], [F(1, 10 ** 30), 0])[0]   # 0 < x < 1e-30
    assert not fm_decide([[0, 0]], [0])[0]                  # 0 < 0
    assert fm_decide([[0, 0]], [1])[0]                      # 0 < 1
    assert not fm_decide([[1, 1], [-1, 0], [0, -1]], [0, 0, 0])[0]     # a vertex, no interior
    _, y = fm_decide([[1, 1], [-1, 0], [0, -1]], [0, 0, 0])
    assert my_farkas_ok([[1, 1], [-1, 0], [0, -1]], [0, 0, 0], list(y), list(y.values()))
    assert fm_decide([[1, 1, 1], [-1, 0, 0], [0, -1, 0], [0, 0, -1]], [F(1, 10 ** 20), 0, 0, 0])[0]


# ===================================================================== strict systems (hypothesis)
@st.composite
def strict_systems(draw):
    """``(H, h, k)`` small integer strict systems with duplicated, negated, zero and
    near-parallel (scaled by 10**15 .. 10**30, offsets differing by 1) rows."""
    k = draw(st.integers(1, 3))
    small = st.integers(-3, 3)
    m0 = draw(st.integers(0, 5))
    H = [[draw(small) for _ in range(k)] for _ in range(m0)]
    if draw(st.booleans()):
        h = [draw(small) for _ in range(m0)]
    else:                       # about a planted point: slack 0 puts it on the boundary
        x0 = [F(draw(st.integers(-2, 2)), 2) for _ in range(k)]
        h = [math.ceil(sum(a * v for a, v in zip(row, x0))) + draw(st.integers(0, 2))
             for row in H]
    for _ in range(draw(st.integers(0 if m0 else 1, 8 - m0))):
        op = draw(st.sampled_from(["dup", "neg", "zero", "near", "near", "scaled"]))
        if not H:
            op = "zero"
        i = draw(st.integers(0, len(H) - 1)) if H else 0
        if op == "dup":
            H.append(list(H[i]))
            h.append(h[i] + draw(st.integers(-1, 1)))
        elif op == "neg":
            H.append([-a for a in H[i]])
            h.append(-h[i] + draw(st.integers(-1, 1)))
        elif op == "zero":
            H.append([0] * k)
            h.append(draw(st.integers(-1, 1)))
        else:
            S = draw(st.sampled_from([10 ** 15, 2 ** 53 + 1, 10 ** 30]))
            sign = -1 if op == "near" else draw(st.sampled_from([1, -1]))
            delta = draw(st.integers(-1, 1)) if op == "near" else 0
            # near: -S r x < -S c + delta, i.e. c - delta / S < r x: a strip of width ~1/S
            H.append([sign * S * a for a in H[i]])
            h.append(sign * S * h[i] + delta)
    if not H:
        H, h = [[0] * k], [1]
    return H, h, k


def _as_input(H, h, form, dens):
    """The same system as lists of ints, numpy object arrays, or Fractions (row ``i`` divided
    by ``dens[i]``: the same halfspace)."""
    if form == "object":
        A = np.empty((len(H), len(H[0])), dtype=object)
        for i, row in enumerate(H):
            for j, v in enumerate(row):
                A[i, j] = int(v)
        b = np.empty(len(h), dtype=object)
        for i, v in enumerate(h):
            b[i] = int(v)
        return A, b
    if form == "fraction":
        return ([[F(a, d) for a in row] for row, d in zip(H, dens)],
                [F(c, d) for c, d in zip(h, dens)])
    return [list(r) for r in H], list(h)


@FAST
@given(strict_systems(), st.sampled_from(["list", "object", "fraction"]),
       st.lists(st.integers(1, 9), min_size=8, max_size=8),
       st.one_of(st.none(), st.lists(st.floats(-3, 3), min_size=3, max_size=3)))
def test_strict_point_agrees_with_fourier_motzkin(system, form, dens, hint):
    H0, h0, k = system
    H, h = _as_input(H0, h0, form, dens)
    feasible, proof = fm_decide(H0, h0)
    event("feasible" if feasible else "empty")
    got = strict_point(H, h, hint=None if hint is None else hint[:k])
    if feasible:
        assert isinstance(got, Witness), (H0, h0, got)
        assert check_witness(H, h, got) and check_witness(H0, h0, got)
        assert got.denominator > 0 and len(got.numerators) == k
        assert my_witness_ok(H0, h0, got.point)
        # the checker accepts an independent witness too
        assert check_witness(H, h, as_witness(proof))
    else:
        assert isinstance(got, Farkas), (H0, h0, got)
        assert check_farkas(H, h, got)
        assert my_farkas_ok(H, h, got.rows, got.weights)
        # the weights are for the rows as given: on the integer rows they are scaled by dens
        if form == "fraction":
            assert my_farkas_ok(H0, h0, got.rows,
                                [F(w) / dens[i] for i, w in zip(got.rows, got.weights)])
        else:
            assert my_farkas_ok(H0, h0, got.rows, got.weights)
        # the checker accepts an independent certificate too
        assert check_farkas(H0, h0, Farkas(tuple(proof), tuple(proof.values())))


@pytest.mark.parametrize("S", [10 ** 15, 2 ** 60, 10 ** 30, 10 ** 100])
@pytest.mark.parametrize("delta", [-1, 0, 1])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_near_parallel_strip(S, delta, k):
    """``c - delta / S < r x < c`` inside a box: non-empty iff ``delta > 0`` (a strip of width
    ~1/S, far below float64's resolution of its offsets)."""
    r = [3, -2, 1][:k]
    H = [[S * a for a in r], [-S * a for a in r]]
    h = [S * 1, -S * 1 + delta]
    for j in range(k):
        e = [0] * k
        e[j] = 1
        H += [e, [-a for a in e]]
        h += [2, 2]
    got = strict_point(H, h, hint=[0.0] * k)
    assert fm_decide(H, h)[0] == (delta > 0)
    if delta > 0:
        assert isinstance(got, Witness) and my_witness_ok(H, h, got.point)
        value = sum(a * v for a, v in zip(r, got.point))
        assert 1 - F(1, S) < value < 1
    else:
        assert isinstance(got, Farkas) and my_farkas_ok(H, h, got.rows, got.weights)


def test_strict_point_edge_cases():
    """A zero row with ``0 < h`` false, only zero rows, no rows."""
    got = strict_point([[0, 0], [1, 0]], [0, 1])
    assert isinstance(got, Farkas) and my_farkas_ok([[0, 0], [1, 0]], [0, 1], got.rows, got.weights)
    got = strict_point([[0, 0], [0, 0]], [1, 2])
    assert isinstance(got, Witness) and my_witness_ok([[0, 0], [0, 0]], [1, 2], got.point)
    got = strict_point([[0, 0, 0]], [F(-1, 3)])
    assert isinstance(got, Farkas)
    # x < 0 and -x < 0: the weights 1, 1 sum the rows to 0 < 0
    got = strict_point([[1], [-1]], [0, 0])
    assert isinstance(got, Farkas) and check_farkas([[1], [-1]], [0, 0], got)
    got = strict_point([], [], hint=[0.5, 0.5])
    assert isinstance(got, Witness) and len(got.numerators) == 2


# ===================================================================== tampered certificates
@FAST
@given(strict_systems(), st.data())
def test_tampered_witness_is_rejected(system, data):
    H, h, k = system
    got = strict_point(H, h)
    assume(isinstance(got, Witness))
    x = list(got.point)
    # a row with a nonzero coefficient: move one coordinate onto its boundary, then past it
    rows = [i for i in range(len(h)) if any(H[i])]
    assume(rows)
    i = data.draw(st.sampled_from(rows))
    j = data.draw(st.sampled_from([j for j in range(k) if H[i][j]]))
    slack = F(h[i]) - sum(F(a) * v for a, v in zip(H[i], x))
    assert slack > 0
    for extra in (F(0), F(1, 10 ** 20), F(1)):
        y = list(x)
        y[j] += (slack + extra) / H[i][j]
        assert not my_witness_ok(H, h, y)
        assert not check_witness(H, h, as_witness(y))
    # a meaningless denominator
    assert not check_witness(H, h, Witness(got.numerators, 0))


@FAST
@given(strict_systems(), st.data())
def test_tampered_farkas_is_rejected(system, data):
    H, h, _ = system
    got = strict_point(H, h)
    assume(isinstance(got, Farkas))
    rows, weights = list(got.rows), [F(w) for w in got.weights]
    assert check_farkas(H, h, Farkas(tuple(rows), tuple(weights)))
    positive = [n for n, w in enumerate(weights) if w > 0]
    n = data.draw(st.sampled_from(positive))
    # one weight negated
    bad = list(weights)
    bad[n] = -bad[n]
    assert not check_farkas(H, h, Farkas(tuple(rows), tuple(bad)))
    # one weight changed on a nonzero row: sum w_i H_i is no longer 0
    nonzero = [n for n in positive if any(H[rows[n]])]
    if nonzero:
        n = data.draw(st.sampled_from(nonzero))
        factor = data.draw(st.sampled_from([F(2), F(1, 2), F(1) + F(1, 10 ** 20)]))
        bad = list(weights)
        bad[n] *= factor
        assert not my_farkas_ok(H, h, rows, bad)
        assert not check_farkas(H, h, Farkas(tuple(rows), tuple(bad)))
    # all-zero weights
    assert not check_farkas(H, h, Farkas(tuple(rows), tuple(F(0) for _ in rows)))
    # a row index out of range
    for wrong in (len(h), len(h) + 5, -1):
        bad_rows = list(rows)
        bad_rows[n] = wrong
        assert not check_farkas(H, h, Farkas(tuple(bad_rows), tuple(weights)))
    # rows and weights of different lengths, no rows
    assert not check_farkas(H, h, Farkas(tuple(rows), tuple(weights) + (F(1),)))
    assert not check_farkas(H, h, Farkas((), ()))


def test_check_farkas_on_int64_arrays():
    """``x < -2**-62`` and ``x > -1`` is feasible; 4 times row 0 is ``2**64 x < -4``, which
    wraps to ``0 < -4`` in int64."""
    H, h = np.array([[2 ** 62], [-1]]), np.array([-1, 1])
    assert isinstance(strict_point(H, h), Witness)
    assert not my_farkas_ok(H.tolist(), h.tolist(), (0,), (4,))
    with np.errstate(over="ignore"):
        assert not check_farkas(H, h, Farkas((0,), (4,)))


def test_strict_point_on_int64_arrays():
    """``x < -2**62 - 1`` and ``x > 2**62``: empty, weights 1/2, 1/2."""
    H, h = np.array([[1], [-1]]), np.array([-2 ** 62 - 1, -2 ** 62])
    assert isinstance(strict_point(H.tolist(), h.tolist()), Farkas)      # Python ints: fine
    with np.errstate(over="ignore"):
        got = strict_point(H, h)
    assert isinstance(got, Farkas) and my_farkas_ok(H.tolist(), h.tolist(), got.rows,
                                                    got.weights)


def test_check_witness_of_the_wrong_dimension():
    H, h = [[1, 1], [0, -1]], [1, 5]                  # x + y < 1, y > -5
    assert not check_witness(H, h, Witness((0,), 1))            # a point of R^1
    assert not check_witness(H, h, Witness((0, 0, 7), 1))       # a point of R^3


def test_farkas_of_a_feasible_system_is_rejected():
    """``-1 < x < 1``: weights 1, 1 cancel the rows but sum the offsets to 2 > 0."""
    H, h = [[1], [-1]], [1, 1]
    assert not check_farkas(H, h, Farkas((0, 1), (1, 1)))
    assert check_farkas([[1], [-1]], [1, -1], Farkas((0, 1), (1, 1)))       # x < 1 < x
    assert check_farkas([[1], [-1]], [0, 0], Farkas((0, 1), (1, 1)))        # 0 < 0
    assert not check_farkas([[1], [-1]], [0, 0], Farkas((0, 1), (1, 2)))    # x != 0


# ===================================================================== exact network brute force
def _frac_matrix(W):
    return [[F(float(v)) for v in row] for row in np.asarray(W, dtype=np.float64)]


def _act(spec):
    """``(kind, slope)`` of an activation spelling."""
    if spec.startswith("leaky_relu:"):
        return "leaky_relu", F(float(spec.split(":")[1]))
    return spec, None


def _factor(kind, slope, active):
    if kind == "relu":
        return F(1) if active else F(0)
    if kind == "abs":
        return F(1) if active else F(-1)
    return F(1) if active else slope


def exact_partition(weights, activations, d, lo=-1, hi=1):
    """Every region of every layer of the network ``(W, b)``/activations over the open box
    ``lo < x_i < hi``, in rationals.

    Returns ``(per_layer, levels)``: ``levels[l]`` is a list of ``(path, H, h)`` for the
    regions of layer ``l + 1``, ``path`` the tuple of their layer codes (tuples), ``H x < h``
    the region. Codes: a switch unit is active (1) iff its pre-activation is > 0; a unit
    constant on the cell takes the code of its sign (0 when the constant is 0) and adds no
    row; an identity layer's code is all 0.
    """
    H0, h0 = [], []
    for i in range(d):
        e = [F(0)] * d
        e[i] = F(1)
        H0 += [e, [-v for v in e]]
        h0 += [F(hi), F(-lo)]
    ident = [[F(int(i == j)) for j in range(d)] for i in range(d)]
    cells = [((), H0, h0, ident, [F(0)] * d)]
    per_layer, levels = [], []
    for (W, b), spec in zip(weights, activations):
        W = _frac_matrix(np.atleast_2d(W))
        b = [F(float(v)) for v in np.atleast_1d(b)]
        kind, slope = _act(spec)
        new = []
        for path, H, h, A, B in cells:
            G = [[sum(W[u][i] * A[i][j] for i in range(len(A))) for j in range(d)]
                 for u in range(len(W))]
            g = [sum(W[u][i] * B[i] for i in range(len(B))) + b[u] for u in range(len(W))]
            if kind == "identity":
                new.append((path + ((0,) * len(W),), H, h, G, g))
                continue
            if kind.startswith("maxout:"):
                new.extend(_maxout_children(int(kind.split(":")[1]), path, H, h, G, g))
                continue
            parts = [((), H, h)]
            for u in range(len(W)):
                if not any(G[u]):
                    parts = [(code + (int(g[u] > 0),), Hp, hp) for code, Hp, hp in parts]
                    continue
                nxt = []
                for code, Hp, hp in parts:
                    for side in (0, 1):
                        # inactive: G x + g < 0; active: -G x - g < 0
                        row = G[u] if side == 0 else [-v for v in G[u]]
                        c = -g[u] if side == 0 else g[u]
                        if fm_decide(Hp + [row], hp + [c])[0]:
                            nxt.append((code + (side,), Hp + [row], hp + [c]))
                parts = nxt
            for code, Hp, hp in parts:
                f = [_factor(kind, slope, c == 1) for c in code]
                new.append((path + (code,), Hp, hp,
                            [[f[u] * v for v in G[u]] for u in range(len(G))],
                            [f[u] * g[u] for u in range(len(g))]))
        cells = new
        per_layer.append(len(cells))
        levels.append([(path, H, h) for path, H, h, _, _ in cells])
    return per_layer, levels


def _maxout_children(R, path, H, h, G, g):
    """The children of a cell under a maxout layer (rows ``u*R .. u*R+R-1`` of ``G x + g``
    are unit ``u``'s pieces): piece r wins where it is strictly above every other piece, a
    piece identically equal to r yields to the smaller index, a constant difference decides
    without a row."""
    parts = [((), H, h, [], [])]
    for u in range(len(g) // R):
        nxt = []
        for code, Hp, hp, A, B in parts:
            for r in range(R):
                rows, ok = [], True
                for s in range(R):
                    if s == r:
                        continue
                    D = [a - b for a, b in zip(G[u * R + s], G[u * R + r])]
                    c = g[u * R + s] - g[u * R + r]
                    if not any(D):
                        if c < 0 or (c == 0 and s > r):
                            continue
                        ok = False
                        break
                    rows.append((D, -c))                # value_s - value_r < 0
                if not ok:
                    continue
                Hn, hn = Hp + [row for row, _ in rows], hp + [c for _, c in rows]
                if fm_decide(Hn, hn)[0]:
                    nxt.append((code + (r,), Hn, hn, A + [G[u * R + r]], B + [g[u * R + r]]))
        parts = nxt
    return [(path + (code,), Hp, hp, A, B) for code, Hp, hp, A, B in parts]


def exact_codes(weights, activations, x):
    """The code path at a rational point (forward pass in Fractions; ties of max units to the
    smaller piece; ReLU-type units active iff the pre-activation is > 0)."""
    z = [F(v) for v in x]
    out = []
    for (W, b), spec in zip(weights, activations):
        W = _frac_matrix(np.atleast_2d(W))
        b = [F(float(v)) for v in np.atleast_1d(b)]
        pre = [sum(a * v for a, v in zip(row, z)) + c for row, c in zip(W, b)]
        if spec.startswith("maxout:"):
            R = int(spec.split(":")[1])
            code, z = [], []
            for u in range(len(pre) // R):
                vals = pre[u * R:(u + 1) * R]
                r = vals.index(max(vals))               # the first maximum
                code.append(r)
                z.append(vals[r])
            out.append(tuple(code))
            continue
        kind, slope = _act(spec)
        if kind == "identity":
            out.append((0,) * len(pre))
            z = pre
            continue
        code = tuple(int(p > 0) for p in pre)
        out.append(code)
        z = [_factor(kind, slope, c == 1) * p for c, p in zip(code, pre)]
    return out


def test_exact_partition_on_known_networks():
    """The brute force itself: the worked example of SPEC §6.1.5 and an arrangement of three
    lines in general position (7 regions), one through a box corner, one duplicated."""
    per_layer, _ = exact_partition([(np.eye(2), [0.0, -1.0]), ([[1.0, -1.0]], [0.5])],
                                   ["relu", "relu"], 2, lo=-10, hi=10)
    # layer 1: x = 0 and y = 1 split the box into 4; layer 2 cuts (1, 1) along x - y = -1.5
    # and (0, 1) along y = 1.5, and is constant on the other two
    assert per_layer == [4, 6]
    lines = (np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([0.0, 0.0, -0.5]))
    assert exact_partition([lines], ["relu"], 2)[0] == [7]
    corner = (np.array([[1.0, 1.0]]), np.array([-2.0]))           # x + y = 2: a corner only
    assert exact_partition([corner], ["relu"], 2)[0] == [1]
    dup = (np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]]), np.array([0.0, 0.0, 1.0]))
    assert exact_partition([dup], ["relu"], 2)[0] == [2]
    # maxout: max(x, -x) has two regions; identical pieces go to the smaller index; a piece
    # above the other by a constant wins everywhere
    assert exact_partition([(np.array([[1.0], [-1.0]]), np.zeros(2))], ["maxout:2"], 1)[0] == [2]
    _, levels = exact_partition([(np.array([[1.0, 0.0], [1.0, 0.0]]), np.zeros(2))],
                                ["maxout:2"], 2)
    assert [p for p, _, _ in levels[0]] == [((0,),)]
    _, levels = exact_partition([(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([0.0, 1.0]))],
                                ["maxout:2"], 2)
    assert [p for p, _, _ in levels[0]] == [((1,),)]
    # identity head: the same regions, code 0
    per_layer, levels = exact_partition([lines, (np.ones((1, 3)), [0.0])], ["relu", "identity"], 2)
    assert per_layer == [7, 7] and all(p[1] == (0,) for p, _, _ in levels[1])


def tree_paths(tree):
    """Per layer, ``{code path: thin flag}`` of the tree's nodes (paths of tuples)."""
    out, prev = [], [()]
    for depth in range(1, len(tree.levels)):
        lv = tree.levels[depth]
        paths = [prev[int(p)] + (tuple(int(c) for c in code),)
                 for p, code in zip(lv.parent, lv.code)]
        assert len(set(paths)) == len(paths), "two nodes with one code path"
        out.append(dict(zip(paths, (bool(t) for t in lv.thin))))
        prev = paths
    return out


DYADIC = [-2.0, -1.0, -0.5, 0.0, 0.0, 0.5, 1.0, 2.0]


@st.composite
def small_exact_networks(draw):
    """``(weights, activations, d)``: d in {1, 2}, one or two hidden layers of at most 6 units
    in all, small-integer or dyadic weights (exact in float64, so every engine's arithmetic on
    them is exact too), ReLU with at most one leaky-ReLU/abs layer, maybe a linear head."""
    d = draw(st.integers(1, 2))
    depth = draw(st.integers(1, 2))
    total = draw(st.integers(depth, 6))
    first = total if depth == 1 else draw(st.integers(1, total - 1))
    widths = [first] if depth == 1 else [first, total - first]
    values = st.sampled_from(DYADIC) if draw(st.booleans()) else st.sampled_from([-1.0, 0.0, 1.0])
    biases = st.sampled_from([-1.0, -0.5, 0.0, 0.0, 0.5, 1.0])
    sizes = [d] + widths
    weights = []
    for i, w in enumerate(widths):
        W = np.array([[draw(values) for _ in range(sizes[i])] for _ in range(w)])
        b = np.array([draw(biases) for _ in range(w)])
        weights.append((W, b))
    acts = ["relu"] * depth
    special = draw(st.sampled_from([None, None, "leaky_relu:0.5", "leaky_relu:0.25", "abs",
                                    "maxout:2"]))
    if special is not None:
        where = draw(st.integers(0, depth - 1))
        acts[where] = special
        if special == "maxout:2":            # two pieces per unit: twice the rows
            W, b = weights[where]
            weights[where] = (np.vstack([W, np.array([[draw(values) for _ in range(W.shape[1])]
                                                      for _ in range(len(b))])]),
                              np.concatenate([b, [draw(biases) for _ in range(len(b))]]))
    if draw(st.booleans()):
        weights.append((np.array([[draw(values) for _ in range(widths[-1])]]), np.zeros(1)))
        acts.append("identity")
    return weights, acts, d


def _engines(d):
    return (["interval"] if d == 1 else ["planar"]) + ["vertex", "lp"]


@NETS
@given(small_exact_networks())
def test_engines_equal_exact_brute_force(case):
    """Every engine's regions (code paths, per layer) are the exact partition's, and none is
    thin or undecided: with weights this coarse every region is fat."""
    weights, acts, d = case
    net = pc.Network.from_weights(weights, acts)
    box = pc.Box(-1, 1, dim=d)
    per_layer, levels = exact_partition(weights, acts, d)
    want = [{p for p, _, _ in level} for level in levels]
    for engine in _engines(d):
        tree = pc.subdivide(net, box, engine=engine)
        got = tree_paths(tree)
        assert tree.per_layer == per_layer, (engine, tree.per_layer, per_layer)
        assert [set(g) for g in got] == want, engine
        assert tree.thin == [0] * len(per_layer) and len(tree.slivers) == 0
        counted = pc.count_regions(net, box, engine=engine)
        assert counted.per_layer == per_layer, (engine, counted.per_layer, per_layer)
        assert counted.thin == [0] * len(per_layer)
        assert counted.undecided == [0] * len(per_layer)
        if "maxout:2" not in acts:
            # every vertex near a hyperplane here is on it exactly (coarse rationals), so the
            # doubts are cleared by exact incidence, with no exact split
            assert counted.stats.get("doubts", 0) == counted.stats.get("doubts_cleared", 0)


def _cell_for(d, point):
    H = np.vstack([np.eye(d), -np.eye(d)])
    return exact_root(H, np.ones(2 * d), point)


def test_vertices_exact_on_concurrent_and_near_concurrent_lines():
    """Three lines through the origin meet in one point exactly; move one by 1e-13 and the
    point is no single vertex (a triangle 1e-13 across hides there). The screen takes every
    line within eps of the point."""
    from powercells.enumerate.exact_cells import vertices_exact

    cell = _cell_for(2, [0.5, 0.5])
    for offset, want in [(0.0, True), (1e-13, False), (2.0 ** -45, False)]:
        W = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        net = pc.Network.from_weights([(W, np.array([0.0, 0.0, -offset]))], ["relu"])
        layer = net.layers[0]
        assert vertices_exact(cell, layer, np.zeros((1, 2)), eps=1e-12) is want, offset
    # two generic lines: a simple vertex, proven by the float determinant alone
    W = np.array([[1.0, 0.3], [-0.7, 1.0]])
    net = pc.Network.from_weights([(W, np.array([0.1, 0.2]))], ["relu"])
    x = np.linalg.solve(W, -np.array([0.1, 0.2]))
    assert vertices_exact(cell, net.layers[0], x[None], eps=1e-12)
    # a point near a single line is no vertex at all
    assert not vertices_exact(cell, net.layers[0], np.array([[x[0] + 0.3, x[1]]]), eps=1e-12)
    # duplicate units through corners of the box, and a line through a corner: exact
    W = np.array([[1.0, -1.0], [2.0, -2.0], [1.0, 1.0]])
    net = pc.Network.from_weights([(W, np.array([0.0, 0.0, -2.0]))], ["relu"])
    assert vertices_exact(cell, net.layers[0], np.array([[-1.0, -1.0], [1.0, 1.0]]), eps=1e-12)
    # the duplicates cross at no point: the origin is on them but is no vertex
    assert not vertices_exact(cell, net.layers[0], np.zeros((1, 2)), eps=1e-12)


@pytest.mark.parametrize("engine", ["planar", "vertex"])
def test_doubts_of_degenerate_networks_are_cleared_on_both_paths(engine):
    """Integer weights: vertices on several hyperplanes everywhere. Every doubt is cleared by
    exact incidence, on the compiled and the numpy path alike, and the counts are the lp
    engine's (which settles nothing here either)."""
    d = 2 if engine == "planar" else 3
    rng = np.random.default_rng(1)
    dims = [d, 10, 10]
    net = pc.Network.from_weights(
        [(rng.integers(-1, 2, size=(dims[i + 1], dims[i])).astype(float),
          rng.integers(-1, 2, size=dims[i + 1]).astype(float)) for i in range(2)], ["relu"] * 2)
    box = pc.Box(-2, 2, dim=d)
    runs = []
    for compiled in (True, False):
        with engine_defaults(compiled=compiled):
            runs.append(pc.count_regions(net, box, engine=engine, executor="serial"))
    lp = pc.count_regions(net, box, engine="lp")
    for got in runs:
        assert got.per_layer == lp.per_layer and got.thin == [0, 0]
        assert got.stats["doubts"] > 0
        assert got.stats["doubts"] == got.stats["doubts_cleared"]
    assert runs[0].stats["doubts"] == runs[1].stats["doubts"]


# ===================================================================== thin cells
def polygon(H, h):
    """The vertices of ``{x : H x <= h}`` (a 2-D cell inside the box), counter-clockwise, in
    rationals: a big square clipped by every row (Sutherland-Hodgman)."""
    big = F(4)
    poly = [(-big, -big), (big, -big), (big, big), (-big, big)]
    for (a0, a1), c in zip(H, h):
        if a0 == 0 and a1 == 0:
            continue
        out = []
        for i, (x, y) in enumerate(poly):
            nx, ny = poly[(i + 1) % len(poly)]
            fa, fb = a0 * x + a1 * y - c, a0 * nx + a1 * ny - c
            if fa <= 0:
                out.append((x, y))
            if (fa < 0 < fb) or (fb < 0 < fa):
                s = fa / (fa - fb)
                out.append((x + s * (nx - x), y + s * (ny - y)))
        poly = out
        if not poly:
            break
    return poly


def inradius_bounds(H, h):
    """``(A / P, 2 A / P)``: bounds of the inradius of a convex planar cell (``A <= r P`` by its
    inner parallel sets, ``A >= r P / 2`` by the triangles on its edges from the incentre);
    the area is exact, the perimeter rounded."""
    poly = polygon(H, h)
    n = len(poly)
    area = abs(sum(poly[i][0] * poly[(i + 1) % n][1] - poly[(i + 1) % n][0] * poly[i][1]
                   for i in range(n))) / 2
    perimeter = sum(math.hypot(poly[i][0] - poly[(i + 1) % n][0], poly[i][1] - poly[(i + 1) % n][1])
                    for i in range(n))
    return float(area) / perimeter, 2 * float(area) / perimeter


def thin_paths(levels, tau, d):
    """Per layer, the exact regions whose inradius is at or below ``tau`` (the bounds must
    decide it: constructions keep their cells far from ``tau``)."""
    out = []
    for level in levels:
        thin = set()
        for path, H, h in level:
            if d == 1:
                lo = max((c / a for (a,), c in zip(H, h) if a < 0))
                hi = min((c / a for (a,), c in zip(H, h) if a > 0))
                r = float((hi - lo) / 2)
                low, high = r, r
            else:
                low, high = inradius_bounds(H, h)
            assert high <= tau or low > tau, f"cell {path} too close to the tolerance to tell"
            if high <= tau:
                thin.add(path)
        out.append(thin)
    return out


def check_engine(weights, acts, d, engine, tolerances=None):
    """An engine's tree and count against the exact partition: the same code paths per layer,
    thin flags on exactly the exact regions of inradius <= tau, nothing undecided, and every
    thin node's interior point inside its exact cell with an inradius in ``(0, tau]``."""
    net = pc.Network.from_weights(weights, acts)
    box = pc.Box(-1, 1, dim=d)
    tau = 1e-9 * box.diameter
    per_layer, levels = exact_partition(weights, acts, d)
    thin = thin_paths(levels, tau, d)
    tree = pc.subdivide(net, box, engine=engine, tolerances=tolerances)
    assert tree.tolerances.region == pytest.approx(tau)
    got = tree_paths(tree)
    assert tree.per_layer == per_layer, (engine, tree.per_layer, per_layer)
    assert [set(g) for g in got] == [{p for p, _, _ in lv} for lv in levels], engine
    assert [{p for p, t in g.items() if t} for g in got] == thin, engine
    assert len(tree.slivers) == 0
    for depth, level in enumerate(levels, 1):
        lv = tree.levels[depth]
        rows = {p: (H, h) for p, H, h in level}
        paths = list(got[depth - 1])
        # the geometry the engine reports (thin cells' from their exact rows): every node's
        # interval, or its polygon's area, is the exact one up to rounding
        if lv.intervals is not None:
            for path, (lo, hi) in zip(paths, lv.intervals):
                H, h = rows[path]
                want_lo = max(c / a for (a,), c in zip(H, h) if a < 0)
                want_hi = min(c / a for (a,), c in zip(H, h) if a > 0)
                # an end may take in a neighbour shorter than the empty tolerance (see below)
                slack = 1e-15 + tree.tolerances.empty
                assert abs(lo - want_lo) <= slack and abs(hi - want_hi) <= slack, path
        if lv.polygons is not None:
            areas, perimeters = lv.polygons.area_perimeter()
            for path, area, perimeter in zip(paths, areas, perimeters):
                poly = polygon(*rows[path])
                n = len(poly)
                want = abs(sum(poly[i][0] * poly[(i + 1) % n][1] - poly[(i + 1) % n][0] * poly[i][1]
                               for i in range(n))) / 2
                # a region's polygon may take in a neighbour thinner than the empty tolerance
                # along an edge (the neighbour is found exactly; the float polygon is not cut)
                slack = 1e-14 + tree.tolerances.empty * perimeter
                assert abs(area - float(want)) <= slack, (path, area, float(want))
        for i in np.flatnonzero(lv.thin):
            H, h = rows[paths[i]]
            x = [F(float(v)) for v in lv.interior_point[i]]
            if d == 1 and not my_witness_ok(H, h, x):
                # an interval narrower than the float spacing may hold no float64 at all: then
                # the point is a float next to it
                lo = max(c / a for (a,), c in zip(H, h) if a < 0)
                hi = min(c / a for (a,), c in zip(H, h) if a > 0)
                t = float(lv.interior_point[i][0])
                assert F(np.nextafter(t, -np.inf)) <= lo and F(np.nextafter(t, np.inf)) >= hi
                assert not any(lo < F(v) < hi for v in (np.nextafter(t, -np.inf), t,
                                                        np.nextafter(t, np.inf)))
                continue
            assert my_witness_ok(H, h, x), (paths[i], lv.interior_point[i])
            assert 0 < lv.inradius[i] <= tau
            if d == 2:
                assert lv.inradius[i] <= inradius_bounds(H, h)[1] * (1 + 1e-9)
    counted = pc.count_regions(net, box, engine=engine, tolerances=tolerances)
    assert counted.per_layer == per_layer, (engine, counted.per_layer, per_layer)
    assert counted.thin == [len(t) for t in thin], (engine, counted.thin)
    assert counted.undecided == [0] * len(per_layer)
    return thin


def _wedge(a):
    """Two lines through the origin at an angle ``a``: two wedges of inradius ~a/2."""
    return (np.array([[0.0, 1.0], [np.sin(a), np.cos(a)]]), np.zeros(2))


def _strip(eps):
    """Two parallel lines ``y = 0`` and ``y = eps``: a strip of inradius eps/2."""
    return (np.array([[0.0, 1.0], [0.0, 1.0]]), np.array([0.0, -eps]))


def _triangle(eps):
    """``x = 0``, ``y = 0`` and ``x + y = eps``: a vertex eps/sqrt(2) off the third line, a
    triangle of inradius eps / (2 + sqrt(2))."""
    return (np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([0.0, 0.0, -eps]))


def _carry(layer):
    """The layer with two more units ``x + 2`` and ``y + 2`` (active on the box), so the next
    layer can cut its cells by any line."""
    W, b = layer
    return (np.vstack([W, np.eye(2)]), np.concatenate([b, [2.0, 2.0]]))


# cells between the empty tolerance (2.8e-12 here) and the region tolerance (2.8e-9)
THIN = {
    "wedge 1e-10": ([_wedge(1e-10)], ["relu"]),
    "wedge 1e-11": ([_wedge(1e-11)], ["relu"]),
    "strip 1e-10": ([_strip(1e-10)], ["relu"]),
    "strip 1e-11": ([_strip(1e-11)], ["relu"]),
    "triangle 1e-9": ([_triangle(1e-9)], ["relu"]),
    "triangle 3e-11": ([_triangle(3e-11)], ["relu"]),
    "wedge, sum": ([_wedge(1e-10), (np.ones((1, 2)), [0.0])], ["relu", "relu"]),
    "wedge, difference": ([_wedge(1e-10), (np.array([[1.0, -1.0]]), [0.0])], ["relu", "relu"]),
    # layer 2 cuts the thin strip in two at x = 0: exact splits of a thin region
    "strip cut across": ([_carry(_strip(1e-11)), (np.array([[0.0, 0.0, 1.0, 0.0]]), [-2.0])],
                         ["relu", "relu"]),
    # layer 2 makes the thin cells, in fat parents: relu(y) = 1e-11, relu(x) + relu(y) = 1e-10
    "thin in layer 2": ([(np.eye(2), np.zeros(2)), (np.array([[1.0, 0.0]]), [-1e-11])],
                        ["relu", "relu"]),
    "thin triangle in layer 2": ([(np.eye(2), np.zeros(2)), (np.ones((1, 2)), [-1e-10])],
                                 ["relu", "relu"]),
    "triangle, leaky": ([_triangle(1e-10), (np.array([[1.0, -1.0, 0.5]]), [0.0])],
                        ["leaky_relu:0.5", "abs"]),
}


@pytest.mark.parametrize("engine", ["planar", "vertex", "lp"])
@pytest.mark.parametrize("name", list(THIN))
def test_thin_cells_are_exact_thin_regions(name, engine):
    weights, acts = THIN[name]
    thin = check_engine(weights, acts, 2, engine)
    assert any(thin), "the construction has no thin region"


@pytest.mark.parametrize("engine", ["interval", "vertex", "lp"])
@pytest.mark.parametrize("eps", [1e-10, 1e-11])
def test_thin_intervals(eps, engine):
    """1-D: relu(x) and relu(x - eps) leave an interval of length eps (with relu(1/2 - x)
    four intervals); layer 2, relu(z1 - z2 + z3 - 1/4), is the constant 1/4 on the thin one and
    cuts (eps, 1/2) at 1/4 + eps."""
    weights = [(np.array([[1.0], [1.0], [-1.0]]), np.array([0.0, -eps, 0.5])),
               (np.array([[1.0, -1.0, 1.0]]), np.array([-0.25]))]
    thin = check_engine(weights, ["relu", "relu"], 1, engine)
    assert len(thin[0]) == 1


@st.composite
def thin_networks(draw):
    """A thin first layer (wedge, strip or triangle at 1e-10 .. 3e-10, with the carried
    coordinates) and a random second layer of 1-3 units with dyadic weights."""
    scale = draw(st.sampled_from([1e-10, 2e-10, 3e-10]))
    first = draw(st.sampled_from([_wedge, _strip, _triangle]))(scale)
    W1, b1 = _carry(first)
    width = draw(st.integers(1, 3))
    W2 = np.array([[draw(st.sampled_from(DYADIC)) for _ in range(len(b1))] for _ in range(width)])
    b2 = np.array([draw(st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0])) for _ in range(width)])
    act = draw(st.sampled_from(["relu", "relu", "abs", "leaky_relu:0.5"]))
    return [(W1, b1), (W2, b2)], [draw(st.sampled_from(["relu", "abs"])), act]


@NETS
@given(thin_networks(), st.sampled_from(["planar", "vertex", "lp"]))
def test_random_layers_over_thin_regions(case, engine):
    weights, acts = case
    check_engine(weights, acts, 2, engine)


@pytest.mark.parametrize("engine", ["planar", "vertex", "lp"])
def test_maxout_ties_against_the_brute_force(engine):
    """Maxout units with identical pieces, pieces differing by a constant, and pieces tying
    along lines through the box's corners."""
    W = np.array([[1.0, 0.0], [1.0, 0.0],          # identical: piece 0 everywhere
                  [0.0, 1.0], [0.0, 1.0],          # differ by a constant: piece 1
                  [1.0, 1.0], [-1.0, -1.0],        # tie along x + y = 0 (a diagonal)
                  [1.0, -1.0], [0.5, 0.5]])
    b = np.array([0.0, 0.0, -0.5, 0.0, 0.0, 0.0, 0.0, 0.5])
    check_engine([(W, b), (np.ones((1, 4)), [0.0])], ["maxout:2", "relu"], 2, engine)


# cells at or below the default empty tolerance (1e-3 * tau = 2.8e-12 on this box)
SUB_EMPTY = {
    "wedge 1e-12": [_wedge(1e-12)],                 # inradius ~5e-13
    "strip 1e-12": [_strip(1e-12)],                 # 5e-13
    "strip 1e-13": [_strip(1e-13)],                 # 5e-14
    "triangle 1e-12": [_triangle(1e-12)],           # 2.9e-13
}

@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("engine", ["planar", "vertex", "lp"])
@pytest.mark.parametrize("name", list(SUB_EMPTY))
def test_cells_below_the_empty_tolerance(name, engine, compiled):
    """Cells thinner than the empty tolerance are found by every engine: the lp engine sets
    aside every side within tau of empty, planar and vertex report the cells where a vertex
    came within ``empty`` of a hyperplane (SplitDoubts); both are settled exactly. The
    compiled kernels report the same doubts as the numpy paths."""
    with engine_defaults(compiled=compiled):
        check_engine(SUB_EMPTY[name], ["relu"], 2, engine)


@pytest.mark.parametrize("engine", ["planar", "vertex", "lp"])
@pytest.mark.parametrize("eps", [1e-12, 1e-13])
def test_max_unit_pieces_below_the_empty_tolerance(eps, engine):
    """A max unit's piece that wins only on a strip ``|y| < eps`` (inradius eps, below the
    empty tolerance): the engines leave the unit free in their doubts and split it exactly."""
    W = np.array([[0.0, 1.0], [0.0, -1.0], [0.0, 0.0]])
    b = np.array([0.0, 0.0, eps])
    check_engine([(W, b), (np.ones((1, 1)), [0.0])], ["maxout:3", "relu"], 2, engine)


@pytest.mark.parametrize("engine", ["interval", "vertex", "lp"])
@pytest.mark.parametrize("eps", [1e-12, 1e-13])
def test_intervals_below_the_empty_tolerance(eps, engine):
    check_engine([(np.array([[1.0], [1.0]]), np.array([0.0, -eps]))], ["relu"], 1, engine)


ZERO_EMPTY = pc.Tolerances(empty=0.0)


@pytest.mark.parametrize("engine", ["vertex", "lp", "planar"])
@pytest.mark.parametrize("name", ["strip 1e-12", "triangle 1e-12"])
def test_empty_tolerance_zero_finds_every_cell(name, engine):
    """With ``empty=0`` nothing is taken as lower-dimensional: every cell of positive float
    inradius is a region or a sliver settled exactly."""
    check_engine(SUB_EMPTY[name], ["relu"], 2, engine, tolerances=ZERO_EMPTY)


FAR_BELOW = {"wedge 1e-12": [_wedge(1e-12)], "wedge 1e-14": [_wedge(1e-14)],
             "strip 1e-15": [_strip(1e-15)], "triangle 1e-14": [_triangle(1e-14)]}


@pytest.mark.parametrize("name, engine", [(name, engine) for name in FAR_BELOW
                                          for engine in ("vertex", "lp", "planar")])
def test_empty_tolerance_zero_far_below_rounding(name, engine):
    """Cells far thinner than the default empty tolerance, down to 1e-15."""
    check_engine(FAR_BELOW[name], ["relu"], 2, engine, tolerances=ZERO_EMPTY)


@pytest.mark.parametrize("engine", ["interval", "vertex", "lp"])
@pytest.mark.parametrize("eps", [1e-12, 1e-14, 1e-15])
def test_empty_tolerance_zero_intervals(eps, engine):
    check_engine([(np.array([[1.0], [1.0]]), np.array([0.0, -eps]))], ["relu"], 1, engine,
                 tolerances=ZERO_EMPTY)


# ===================================================================== split_exact and place
def _rounded_codes_safe(weights, acts, point, margin=1e-9):
    """Whether every switch pre-activation at the point is at least ``margin`` from 0 and
    every max unit's winner leads by ``margin`` (so float64's forward pass cannot flip)."""
    z = [F(v) for v in point]
    for (W, b), spec in zip(weights, acts):
        W = _frac_matrix(np.atleast_2d(W))
        b = [F(float(v)) for v in np.atleast_1d(b)]
        pre = [sum(a * v for a, v in zip(row, z)) + c for row, c in zip(W, b)]
        if spec.startswith("maxout:"):
            R = int(spec.split(":")[1])
            z = []
            for u in range(len(pre) // R):
                vals = sorted(pre[u * R:(u + 1) * R], reverse=True)
                if vals[0] - vals[1] < margin:
                    return False
                z.append(vals[0])
            continue
        kind, slope = _act(spec)
        if kind != "identity" and any(abs(p) < margin for p in pre):
            return False
        z = pre if kind == "identity" else [_factor(kind, slope, p > 0) * p for p in pre]
    return True


@NETS
@given(small_exact_networks(), st.booleans(), st.data())
def test_split_exact_children_are_the_forward_pass(case, balanced, data):
    """The root (the box's rows) split layer by layer with exact tests: children in code
    order with distinct codes, each witness strictly inside its own rows and inside the
    exact region of its code path (the brute force's rows), the code path equal to the
    forward pass at the witness (in rationals, and in float64 where rounding cannot flip a
    unit), ``place`` of the witness giving the same child, ``fixed`` filtering the children,
    and the children of every layer being the brute force's regions."""
    weights, acts, d = case
    net = pc.Network.from_weights(weights, acts)
    layers = net.balanced().layers if balanced else net.layers
    H, h = pc.Box(-1, 1, dim=d).halfspaces()
    root = exact_root(H, h, np.zeros(d))
    assert check_witness(root.H, root.h, root.witness) and root.path == ()
    per_layer, levels = exact_partition(weights, acts, d)
    cells = [root]
    for depth, layer in enumerate(layers):
        regions = {p: (Hr, hr) for p, Hr, hr in levels[depth]}
        nxt = []
        for cell in cells:
            children = split_exact(cell, layer, depth=depth)
            codes = [tuple(int(c) for c in child.code) for child in children]
            assert codes == sorted(set(codes)), codes
            for child, code in zip(children, codes):
                assert child.path == cell.path + (code,)
                assert check_witness(child.H, child.h, child.witness)
                point = child.witness.point
                assert my_witness_ok(child.H, child.h, point)
                assert my_witness_ok(cell.H, cell.h, point)       # inside its parent
                assert my_witness_ok(*regions[child.path], point)
                assert tuple(exact_codes(weights, acts, point)[:depth + 1]) == child.path
                rounded = child.point()
                if _rounded_codes_safe(weights, acts, [F(float(v)) for v in rounded]):
                    got = [tuple(int(v) for v in c[0]) for c in net.codes(rounded[None, :])]
                    assert tuple(got[:depth + 1]) == child.path
                placed = place(cell, layer, child.witness, depth=depth)
                assert tuple(int(c) for c in placed.code) == code
                assert placed.path == child.path
                assert check_witness(placed.H, placed.h, child.witness)
                # the placed cell is the child: the same maps into the next layer
                assert placed.e == child.e
                assert np.array_equal(placed.MA, child.MA) and np.array_equal(placed.MB, child.MB)
            if children and layer.kind != "identity":
                fixed = np.array([data.draw(st.sampled_from([-1, -1, 0, 1]))
                                  for _ in range(layer.out_dim)])
                if layer.kind.startswith("max"):
                    fixed = np.minimum(fixed, 0)
                want = [c for c in codes if all(f < 0 or f == v for f, v in zip(fixed, c))]
                got = split_exact(cell, layer, fixed=fixed, depth=depth)
                assert [tuple(int(c) for c in g.code) for g in got] == want
            nxt.extend(children)
        cells = nxt
        assert sorted(c.path for c in cells) == sorted(regions), depth
    assert len(cells) == per_layer[-1]


@pytest.mark.parametrize("a", [1e-10, 1e-13, 1e-16])
def test_split_exact_of_thin_wedges(a):
    """The wedges of two lines at an angle ``a`` (far below float64's resolution at 1e-16:
    cos(a) rounds to 1) are found with witnesses inside them."""
    weights = [_wedge(a)]
    net = pc.Network.from_weights(weights, ["relu"])
    H, h = pc.Box(-1, 1, dim=2).halfspaces()
    root = exact_root(H, h, [0.25, 0.5])
    children = split_exact(root, net.layers[0], depth=0)
    _, levels = exact_partition(weights, ["relu"], 2)
    assert sorted(c.path for c in children) == sorted(p for p, _, _ in levels[0])
    assert len(children) == 4
    regions = {p: (Hr, hr) for p, Hr, hr in levels[0]}
    for child in children:
        assert my_witness_ok(*regions[child.path], child.witness.point)
        assert 0 < child.radius()
        assert place(root, net.layers[0], child.witness, depth=0).path == child.path


def test_unplaced_points():
    """A point on a unit's line names no cell; a point outside the domain is no root."""
    net = pc.Network.from_weights([(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([0.0, 1.0]))],
                                  ["relu"])
    H, h = pc.Box(-1, 1, dim=2).halfspaces()
    root = exact_root(H, h, [0.5, 0.5])
    with pytest.raises(Unplaced):
        place(root, net.layers[0], Witness((0, 1), 2), depth=0)          # x = 0
    got = place(root, net.layers[0], Witness((1, 1), 2), depth=0)
    assert got.path == ((1, 1),)        # unit 1 is the constant 1 > 0: active, no row
    assert len(got.h) == len(root.h) + 1
    for outside in ([1.0, 0.0], [2.0, 0.0], [0.0, -1.5]):
        with pytest.raises(Unplaced):
            exact_root(H, h, outside)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1,
                max_size=6))
@settings(max_examples=200, deadline=None)
def test_dyadic_is_exact(values):
    N, e = dyadic(values)
    scale = F(2) ** e
    for n, v in zip(N, values):
        assert type(n) is int
        assert F(n) / scale == F(v)


# ===================================================================== certified mode, cancellation
@NETS
@given(st.one_of(small_exact_networks(), thin_networks().map(lambda c: (c[0], c[1], 2))))
def test_certified_mode_equals_exact_brute_force(case):
    """``certify=True`` (every decision in rationals) against the brute force, thin cells
    included; it has no tolerance, so nothing is thin or undecided."""
    weights, acts, d = case
    net = pc.Network.from_weights(weights, acts)
    box = pc.Box(-1, 1, dim=d)
    per_layer, levels = exact_partition(weights, acts, d)
    tree = pc.subdivide(net, box, certify=True)
    assert [set(g) for g in tree_paths(tree)] == [{p for p, _, _ in lv} for lv in levels]
    counted = pc.count_regions(net, box, certify=True)
    assert counted.per_layer == per_layer and counted.undecided == [0] * len(per_layer)


@pytest.mark.parametrize("name", list(SUB_EMPTY) + list(FAR_BELOW))
def test_certified_mode_on_cells_below_the_empty_tolerance(name):
    layers = {**SUB_EMPTY, **FAR_BELOW}[name]
    per_layer, _ = exact_partition(layers, ["relu"], 2)
    net = pc.Network.from_weights(layers, ["relu"])
    assert pc.count_regions(net, pc.Box(-1, 1, dim=2), certify=True).per_layer == per_layer


def _cancelling(k):
    """Layer 2's pre-activation relu(x + 2) - relu(x + 2 + 2**-k y) = -2**-k y pulls back to a
    gradient 2**-k times the terms that produce it: it splits the box at y = 0."""
    return [(np.array([[1.0, 0.0], [1.0, 2.0 ** -k]]), np.array([2.0, 2.0])),
            (np.array([[1.0, -1.0]]), [0.0])]


@pytest.mark.parametrize("engine", ["planar", "vertex", "lp"])
@pytest.mark.parametrize("k, zero", [(30, None), (38, None), (45, None), (45, 0.0), (50, None),
                                     (50, 0.0)])
def test_near_cancellation(k, zero, engine):
    """From 2**-45 on, the relative zero rule takes the gradient as a cancellation and the unit
    as constant; the engines report it (its float gradient is not 0), exact arithmetic finds
    it is not constant, and the cell's exact children replace the engine's: [1, 2]."""
    tol = None if zero is None else pc.Tolerances(zero=zero)
    assert exact_partition(_cancelling(k), ["relu", "relu"], 2)[0] == [1, 2]
    check_engine(_cancelling(k), ["relu", "relu"], 2, engine, tolerances=tol)


@pytest.mark.parametrize("engine", ["planar", "vertex", "lp"])
def test_a_near_cancellation_cut_again_by_the_next_layer(engine):
    """Layer 3 reads the unit that cancels to 2**-45 (times 2**45): it cuts the half box where
    that unit is active. The engine's child of the whole box (code: inactive) would give layer
    3 nothing to cut; its exact children replace it, so layer 3 is split where it exists."""
    layers = _cancelling(45) + [(np.array([[2.0 ** 45]]), np.array([-1e-3]))]
    assert exact_partition(layers, ["relu"] * 3, 2)[0] == [1, 2, 3]
    check_engine(layers, ["relu"] * 3, 2, engine)
    got = pc.count_regions(pc.Network.from_weights(layers, ["relu"] * 3), pc.Box(-1, 1, dim=2),
                           engine=engine)
    assert got.stats["cells_replaced"] == 1 and got.thin == [0, 0, 0]


@pytest.mark.parametrize("engine", ["planar", "vertex", "lp"])
def test_max_pieces_that_differ_by_a_tiny_gradient(engine):
    """Two pieces of a layer-2 max unit whose difference pulls back to 2**-45 y: the zero rule
    takes one as beating the other everywhere; exactly they tie along y = 0 and each wins a
    half. The engines report the pair, and the cell's exact children replace theirs."""
    layers = [(np.array([[1.0, 0.0], [1.0, 2.0 ** -45]]), np.array([2.0, 2.0])),
              (np.eye(2), np.zeros(2))]
    assert exact_partition(layers, ["relu", "maxout:2"], 2)[0] == [1, 2]
    check_engine(layers, ["relu", "maxout:2"], 2, engine)


def test_planar_labels_near_tied_max_pieces_by_their_lines():
    """A max unit whose two pieces differ by a gradient of 2e-13 (not a cancellation: the
    pieces themselves are that close): their tie line cuts the box, and pieces within 1e-4 of
    it differ in value by ~1e-17, below the values' rounding. The planar engine labels its
    pieces by the signed distances to the pairs' lines, so each gets the piece it was clipped
    for (comparing values gave two pieces the same code and missed three regions)."""
    W = np.array([[-1.0, -2.0], [-1.0, 1.0], [1.0, 0.0], [0.0, -2.0], [-1e-13, -1.0000000000002],
                  [-1.0000000000001, 1.0000000000001], [-0.9999999999999, -2.0],
                  [-1.0, -2.0000000000002]])
    b = np.array([0.0, -1.0, -1.0, -1.0, 1e-13, -1.0, -0.9999999999999, -0.9999999999999])
    per_layer, levels = exact_partition([(W, b)], ["maxout:2"], 2)
    net = pc.Network.from_weights([(W, b)], ["maxout:2"])
    tree = pc.subdivide(net, pc.Box(-1, 1, dim=2), engine="planar")
    assert tree.per_layer == per_layer == [11]
    assert set(tree_paths(tree)[0]) == {p for p, _, _ in levels[0]}


# Max units whose pieces are a few ulps apart (3 * fl(0.1) against fl(0.3), times a row):
# their difference is a tiny affine function with an exact sign, which the pulled-back
# difference keeps and the difference of the pulled-back pieces loses to rounding.
_NEAR_TIED = {
    "maxout-3-layers-1d": (1, ["maxout:2"] * 3, [
        ([[-1.0], [-3.0], [2.0], [0.0]], [1.0, 1.0, 0.0, -1.0]),
        ([[0.0, -1.0], [2.0, 0.0], [-3.0, 0.0], [0.0, -2.0], [2.0, 2.0], [2.0, 2.0],
          [-2.0, -2.0], [1.0, 3.0]], [2.0, -2.0, 2.0, 2.0, 0.0, -2.0, -0.0, 1.0]),
        ([[2.0, 2.0, -1.0, 1.0], [-1.0, 3.0, 3.0, 0.0],
          [0.8999999999999999, -0.6, -0.3, 0.6],
          [0.9000000000000001, -0.6000000000000001, -0.30000000000000004, 0.6000000000000001]],
         [2.0, -1.0, 0.0, 0.0])]),
    "relu-maxout-1d": (1, ["relu", "maxout:2"], [
        ([[-1.9999999999999716], [3.0], [3.0]], [-1.0, -1.0, 1.0]),
        ([[2.0, -3.0, 2.0], [2.0, -3.0, -3.0], [-0.6, 0.0, 0.6],
          [-0.6000000000000001, 0.0, 0.6000000000000001], [3.0, 1.0, -3.0], [-1.0, 0.0, 1.0],
          [0.0, -3.0, 2.0], [-2.0, 0.0, -3.0]],
         [0.0, 1.0, 0.3, 0.30000000000000004, 1.0, -1.0, 1.0, 1.0])]),
    "relu-maxout-abs-2d": (2, ["relu", "maxout:2", "abs"], [
        ([[-2.0, -2.0], [-3.0, 3.0], [-1.0, -2.0], [-6.0, 6.0]], [-1.0, -1.0, 0.0, -2.0]),
        ([[-2.0, 0.0, 2.0, -2.0], [-1.0, 3.0, -1.0, -3.0],
          [0.8999999999999999, -0.3, -0.6, 0.8999999999999999],
          [0.9000000000000001, -0.30000000000000004, -0.6000000000000001, 0.9000000000000001]],
         [1.0, 1.0, 0.3, 0.30000000000000004]),
        ([[1.0, -0.9999999999999716], [2.0, 1.0]], [2.0, 1.0])]),
    # two abs units a few ulps apart: on one cell their difference pulls back to -2^-53 x,
    # which float64 rounds to a gradient of exactly 0.0 (terms that are not all 0)
    "abs-units-round-to-zero-1d": (1, ["maxout:2", "abs", "abs"], [
        ([[-1.0], [-2.0], [2.0], [3.0], [-1.0], [1.0], [3.0], [-1.0]],
         [-1.0, 0.0, -2.0, 2.0, 1.0, -2.0, -1.0, 2.0]),
        ([[-0.8999999999999999, -0.6, -0.6, 0.6],
          [-0.9000000000000001, -0.6000000000000001, -0.6000000000000001, 0.6000000000000001],
          [-2.0, -3.0, 2.0, 3.0], [0.0, -1.0, -1.0, -3.0]], [0.6, 0.6000000000000001, 2.0, 0.0]),
        ([[-3.0, 0.0, -2.0, -3.0], [3.0, -2.0, -1.0, 2.0]], [1e-13, 1.0])]),
}


@pytest.mark.parametrize("name", sorted(_NEAR_TIED))
def test_near_tied_pieces_against_the_brute_force(name):
    """Networks the fuzzer (``benchmarks/fuzz_exact.py``) found: the lp engine and the interval
    engine each miscounted one of them (an extra or a lost region) before the pairs' signs were
    read from the pulled-back differences; the last one was wrong in the lp engine, whose
    rounding gave a cancelling gradient of exactly 0.0, which was then taken as exact."""
    d, acts, layers = _NEAR_TIED[name]
    weights = [(np.array(W), np.array(b)) for W, b in layers]
    for engine in _engines(d):
        check_engine(weights, acts, d, engine)


def test_interval_cells_with_no_winning_piece_are_replaced(monkeypatch):
    """Where the signs of a max unit's pairs leave no piece beating all the others (a cycle,
    possible only at rounding level), the interval engine's children of that cell are replaced
    by its exact split. Forced here by flipping one pair of ``max(x, 0.3, -x)`` in the
    engine's pull-back: on ``x > 0.3`` the pairs then say 1 < 0 < 2 < 1."""
    import powercells.enumerate.interval_engine as interval_engine
    from powercells.enumerate.pullback import pull_back

    def flipped(layer, A, B, zero, **kw):
        planes = pull_back(layer, A, B, zero, **kw)
        m = int(np.flatnonzero((planes.low == 0) & (planes.high == 2))[0])
        planes.grad[:, m] *= -1
        planes.offset[:, m] *= -1
        return planes

    monkeypatch.setattr(interval_engine, "pull_back", flipped)
    weights = [(np.array([[1.0], [0.0], [-1.0]]), np.array([0.0, 0.3, 0.0]))]
    assert exact_partition(weights, ["maxout:3"], 1)[0] == [3]
    check_engine(weights, ["maxout:3"], 1, "interval")
    net = pc.Network.from_weights(weights, ["maxout:3"])
    counted = pc.count_regions(net, pc.Box(-1, 1, dim=1), engine="interval")
    assert counted.stats["cells_replaced"] == 1


@pytest.mark.parametrize("bias", [0.0, 1.0])
def test_a_tie_whose_zero_is_rounding_beside_a_large_bias(bias):
    """Two maxout pieces with equal biases whose difference on the cell is 1e-40 (fed by
    dead units' constants 1e-20, 1e-40, 1e-20): float64 rounds it to an exact 0.0, a tie,
    whatever the bias; next to biases of 1 the input terms are also lost in ``terms + own``,
    so the rounding check must look at the input terms alone. Piece 1 wins exactly."""
    weights = [(np.zeros((3, 1)), np.array([1e-20, 1e-40, 1e-20])),
               (np.array([[0.0, 0.0, 0.0], [1.0, 1.0, -1.0]]), np.array([bias, bias]))]
    acts = ["relu", "maxout:2"]
    per_layer, levels = exact_partition(weights, acts, 1)
    assert [p[-1] for p, _, _ in levels[1]] == [(1,)]
    for engine in _engines(1):
        check_engine(weights, acts, 1, engine)


@pytest.mark.parametrize("engine", ["interval", "vertex", "lp"])
def test_a_near_cancellation_on_a_line(engine):
    """The same in 1-D: the interval engine's children of the segment are replaced too."""
    layers = [(np.array([[1.0], [1.0 + 2.0 ** -45]]), np.array([2.0, 2.0])),
              (np.array([[1.0, -1.0]]), np.array([0.0])),
              (np.array([[2.0 ** 45]]), np.array([-1e-3]))]
    assert exact_partition(layers, ["relu"] * 3, 1)[0] == [1, 2, 3]
    check_engine(layers, ["relu"] * 3, 1, engine)


@pytest.mark.parametrize("engine", ["planar", "vertex", "lp"])
def test_a_tiny_constant_is_not_taken_as_zero(engine):
    """Layer 2 reads two identical units with opposite signs plus a bias of 1e-300: constant
    on the box, and its constant is 1e-300 > 0 (active), which the zero rule takes as an exact
    zero (inactive). The float constant is not 0, so the engines check it exactly, and the code
    paths are the exact ones."""
    layers = [(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([2.0, 2.0])),
              (np.array([[1.0, -1.0]]), np.array([1e-300]))]
    per_layer, levels = exact_partition(layers, ["relu", "relu"], 2)
    assert per_layer == [1, 1] and {p for p, _, _ in levels[1]} == {((1, 1), (1,))}
    check_engine(layers, ["relu", "relu"], 2, engine)


# ===================================================================== near-concurrent lines
@st.composite
def near_concurrent(draw):
    """3-5 lines with small-integer normals and offsets ``eps * {-3..3}`` (eps 2**-33 ..
    2**-40): all within ~1e-9 of the origin, so the cells near it are thin, some below the
    empty tolerance; maybe a second layer with offsets of the same size."""
    n = draw(st.integers(3, 5))
    eps = draw(st.sampled_from([2.0 ** -33, 2.0 ** -36, 2.0 ** -40]))
    W = np.array([[draw(st.integers(-3, 3)) for _ in range(2)] for _ in range(n)], float)
    b = np.array([draw(st.integers(-3, 3)) * eps for _ in range(n)])
    weights, acts = [(W, b)], ["relu"]
    if draw(st.booleans()):
        W2 = np.array([[draw(st.sampled_from(DYADIC)) for _ in range(n)]
                       for _ in range(draw(st.integers(1, 2)))])
        weights.append((W2, np.array([draw(st.integers(-2, 2)) * eps for _ in range(len(W2))])))
        acts.append(draw(st.sampled_from(["relu", "abs"])))
    return weights, acts


@NETS
@given(near_concurrent(), st.sampled_from(["lp", "vertex, empty=0"]))
def test_near_concurrent_lines(case, engine):
    weights, acts = case
    if engine == "lp":
        check_engine(weights, acts, 2, "lp")
    else:
        check_engine(weights, acts, 2, "vertex", tolerances=ZERO_EMPTY)


@NETS
@given(near_concurrent(), st.sampled_from(["planar", "vertex"]))
def test_near_concurrent_lines_lose_nothing(case, engine):
    """With the default tolerances planar and vertex find every exact region, those below the
    empty tolerance too (their doubts are settled exactly), with the exact thin flags."""
    weights, acts = case
    net = pc.Network.from_weights(weights, acts)
    box = pc.Box(-1, 1, dim=2)
    with warnings.catch_warnings():
        # the vertex engine's fragile vertices: counts are checked here against the exact ones
        warnings.simplefilter("ignore", pc.PrecisionWarning)
        tree = pc.subdivide(net, box, engine=engine)
        counted = pc.count_regions(net, box, engine=engine)
    tau = tree.tolerances.region
    per_layer, levels = exact_partition(weights, acts, 2)
    thin = thin_paths(levels, tau, 2)
    got = tree_paths(tree)
    assert len(tree.slivers) == 0
    for g, level, th in zip(got, levels, thin):
        assert set(g) == {p for p, _, _ in level}
        assert {p for p, t in g.items() if t} == th
    assert counted.per_layer == tree.per_layer == per_layer and counted.thin == tree.thin
