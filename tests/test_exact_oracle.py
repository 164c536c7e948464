"""An exact oracle that shares nothing with the library: Fourier-Motzkin elimination over
``fractions.Fraction`` on the cells of small networks, against every count the library makes.

Every code path is tried layer by layer; a path is a region iff its open cell (every unit strictly
on its coded side, the domain's ``-1 < x_i < 1``) is non-empty, decided by eliminating the
variables one by one (exact for strict inequalities). A unit whose pulled-back pre-activation is
identically zero on a cell is constant: inactive there (SPEC §1.3). Networks have small-integer
or dyadic weights, plus perturbations of 2^-40 to 2^-50 that make cells far thinner than any
float tolerance.
"""

from fractions import Fraction
from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import powercells as pc


def _feasible(rows, k) -> bool:
    """Whether ``a . x < c`` holds for every ``(a, c)`` in rows at some ``x`` (exact)."""
    rows = [(list(a), c) for a, c in rows]
    for var in range(k - 1, -1, -1):
        pos, neg, rest = [], [], []
        for a, c in rows:
            (pos if a[var] > 0 else neg if a[var] < 0 else rest).append((a, c))
        # x_var < (c_p - a_p' x') / a_pv  and  x_var > (c_q - a_q' x') / a_qv: one strict row
        # per pair, in the variables before var
        for (ap, cp), (aq, cq) in product(pos, neg):
            sp, sq = ap[var], -aq[var]
            rest.append(([ap[i] * sq + aq[i] * sp for i in range(var)] + [0] * (k - var),
                         cp * sq + cq * sp))
        rows = [(a[:var] + [0] * (k - var), c) for a, c in rest]
    return all(c > 0 for _, c in rows)


def _exact_counts(layers, d):
    """Per-layer region counts by brute force over code paths (layers: (W, b, kind))."""
    box = []
    for i in range(d):
        e = [Fraction(0)] * d
        e[i] = Fraction(1)
        box.append((e, Fraction(1)))                     # x_i < 1
        box.append(([-v for v in e], Fraction(1)))       # -x_i < 1
    identity = [[Fraction(int(i == j)) for j in range(d)] for i in range(d)]
    nodes = [(identity, [Fraction(0)] * d, box)]
    counts = []
    for W, b, kind in layers:
        K = len(b)
        nxt = []
        for A, B, rows in nodes:
            pre = []
            for k in range(K):
                a = [sum((Fraction(W[k][m]) * A[m][j] for m in range(len(A))), Fraction(0))
                     for j in range(d)]
                c = sum((Fraction(W[k][m]) * B[m] for m in range(len(A))), Fraction(0)) + \
                    Fraction(b[k])
                pre.append((a, c))
            if kind == "identity":
                nxt.append(([a for a, _ in pre], [c for _, c in pre], rows))
                continue
            for code in product((0, 1), repeat=K):
                extra, ok = [], True
                for (a, c), q in zip(pre, code):
                    if not any(a):                       # constant on the cell
                        ok = ok and q == (1 if c > 0 else 0)
                    elif q:
                        extra.append(([-v for v in a], c))        # a x + c > 0
                    else:
                        extra.append((a, -c))                     # a x + c < 0
                if ok and _feasible(rows + extra, d):
                    f = [Fraction(1) if q else Fraction(0) for q in code]
                    if kind == "abs":
                        f = [Fraction(1) if q else Fraction(-1) for q in code]
                    nxt.append(([[fk * v for v in a] for (a, _), fk in zip(pre, f)],
                                [fk * c for (_, c), fk in zip(pre, f)], rows + extra))
        nodes = nxt
        counts.append(len(nodes))
    return counts


@st.composite
def small_networks(draw):
    d = draw(st.integers(1, 2))
    depth = draw(st.integers(1, 2))
    value = st.sampled_from([-2, -1, -0.5, 0, 0.25, 0.5, 1, 2])
    # a perturbation far below every float tolerance, on some entries
    tiny = st.sampled_from([0.0, 0.0, 0.0, 2.0 ** -40, -(2.0 ** -45), 2.0 ** -50])
    layers, fan = [], d
    for _ in range(depth):
        K = draw(st.integers(1, 3))
        W = [[draw(value) + draw(tiny) for _ in range(fan)] for _ in range(K)]
        b = [draw(value) + draw(tiny) for _ in range(K)]
        layers.append((W, b, draw(st.sampled_from(["relu", "relu", "abs"]))))
        fan = K
    return d, layers


def _network(layers):
    return pc.Network.from_weights([(np.array(W, dtype=float), np.array(b, dtype=float))
                                    for W, b, _ in layers], [kind for _, _, kind in layers])


@settings(max_examples=60, deadline=None)
@given(small_networks())
def test_certified_counts_equal_the_exact_oracle(case):
    d, layers = case
    expected = _exact_counts(layers, d)
    got = pc.count_regions(_network(layers), pc.Box(-1, 1, dim=d), certify=True)
    assert got.per_layer == expected


@settings(max_examples=40, deadline=None)
@given(small_networks())
def test_the_lp_engine_equals_the_exact_oracle(case):
    # the lp engine sets aside every side HiGHS cannot resolve and settles it exactly
    d, layers = case
    expected = _exact_counts(layers, d)
    got = pc.count_regions(_network(layers), pc.Box(-1, 1, dim=d), engine="lp")
    assert got.per_layer == expected and got.undecided == [0] * len(layers)


@pytest.mark.parametrize("gap", [2.0 ** -30, 2.0 ** -40, 2.0 ** -50])
def test_parallel_units_a_hair_apart(gap):
    # x > 0 and x > gap: three cells on [-1, 1]^2 whatever the gap, the middle one as thin
    layers = [([[1.0, 0.0], [1.0, 0.0]], [0.0, -gap], "relu")]
    assert _exact_counts(layers, 2) == [3]
    net = _network(layers)
    box = pc.Box(-1, 1, dim=2)
    assert pc.count_regions(net, box, certify=True).per_layer == [3]
    assert pc.count_regions(net, box, engine="lp").per_layer == [3]


def test_the_oracle_itself():
    # Fourier-Motzkin on known systems: an open triangle, an empty pair, a point (not open)
    q = Fraction
    assert _feasible([([q(-1), q(0)], q(0)), ([q(0), q(-1)], q(0)), ([q(1), q(1)], q(1))], 2)
    assert not _feasible([([q(1), q(0)], q(0)), ([q(-1), q(0)], q(0))], 2)
    assert not _feasible([([q(1), q(0)], q(0)), ([q(-1), q(0)], q(0)),
                          ([q(0), q(1)], q(5))], 2)
    assert _feasible([([q(1)], q(1, 10 ** 30)), ([q(-1)], q(0))], 1)
    assert _exact_counts([([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [0.0, 0.0, -1.0], "relu")],
                         2) == [5]         # the line cuts one quadrant


@pytest.mark.parametrize("engine", ["planar", "vertex", "lp"])
def test_float_engines_find_slabs_below_the_empty_tolerance(engine):
    layers = [([[1.0, 0.0], [1.0, 0.0]], [0.0, -(2.0 ** -40)], "relu")]
    assert pc.count_regions(_network(layers), pc.Box(-1, 1, dim=2),
                            engine=engine).per_layer == _exact_counts(layers, 2)
