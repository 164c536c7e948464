"""Exact strict feasibility: is ``{x : H x < h}`` non-empty? (SPEC §5.5, exact mode)

The answer comes with its proof, in rational arithmetic (Python integers and
:class:`fractions.Fraction`, no floating point anywhere in a decision):

* non-empty: a rational :class:`Witness` ``x`` with ``H x < h`` row by row;
* empty: a :class:`Farkas` certificate (Gordan-Motzkin alternative) ``y >= 0``, ``y != 0`` with
  ``y^T H = 0`` and ``y^T h <= 0``: summing the rows with these weights would give ``0 < 0``.

Farkas certificates are re-checked exactly before they are returned (:func:`check_farkas`;
a witness is checked against every row in integers on the way out). They are found with a small
dense simplex method over the rationals, in integers with integer-preserving (Bareiss) pivots, on
``max t  s.t.  H x + t <= h,  t <= cap`` (``x`` free), whose optimum is positive exactly when the
system is strictly feasible; its dual multipliers are the Farkas weights. Bland's rule makes it
terminate on the degenerate systems of degenerate networks (concurrent hyperplanes, duplicate
rows). Rows enter by constraint generation from a hint point: the LP is solved on the rows
nearest the hint, and rows the candidate violates are added until it satisfies all of them, so a
cell with hundreds of rows costs a few small LPs. Rows are first scaled by powers of two to
about the same norm, which changes no answer and makes the witness nearly a Chebyshev centre.

Meant for the rare cells float64 cannot decide (thin cells, certified mode): it is exact, not
fast (milliseconds to a second per call).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["Farkas", "Witness", "check_farkas", "check_witness", "strict_point"]


@dataclass(frozen=True)
class Witness:
    """``H x < h`` holds at ``x = numerators / denominator`` (exactly)."""

    numerators: tuple
    denominator: int

    @property
    def point(self) -> tuple:
        """The point as Fractions."""
        return tuple(Fraction(p, self.denominator) for p in self.numerators)

    def as_float(self) -> np.ndarray:
        return np.array([float(Fraction(p, self.denominator)) for p in self.numerators])


@dataclass(frozen=True)
class Farkas:
    """Weights ``y[i] >= 0`` on rows ``rows[i]`` (not all zero) with ``sum y_i H_i = 0`` and
    ``sum y_i h_i <= 0``: the strict system has no solution."""

    rows: tuple
    weights: tuple


def _exact(v):
    """A number as a Python int or Fraction: numpy integers would wrap around in products,
    and floats are the binary rationals they denote."""
    if isinstance(v, (int, np.integer)):
        return int(v)
    return Fraction(float(v)) if isinstance(v, (float, np.floating)) else Fraction(v)


def check_witness(H, h, witness: Witness) -> bool:
    """Whether ``H x < h`` holds exactly at the witness (exact arithmetic)."""
    q = int(witness.denominator)
    if q <= 0:
        return False
    p = list(map(int, witness.numerators))
    for row, b in zip(H, h):
        row = [_exact(a) for a in row]
        if len(row) != len(p):              # a point of another dimension
            return False
        if not sum(a * v for a, v in zip(row, p)) < _exact(b) * q:
            return False
    return True


def check_farkas(H, h, cert: Farkas) -> bool:
    """Whether the certificate proves ``H x < h`` infeasible (exact arithmetic)."""
    if len(cert.rows) != len(cert.weights) or not cert.rows:
        return False
    weights = [Fraction(w) for w in cert.weights]
    if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
        return False
    k = len(H[0]) if len(H) else 0
    if any(not 0 <= i < len(H) for i in cert.rows):
        return False
    # the weights times the lcm of their denominators: integers, the same signs
    scale = math.lcm(*(w.denominator for w in weights))
    ints = [w.numerator * (scale // w.denominator) for w in weights]
    total = [0] * k
    rhs = 0
    for i, w in zip(cert.rows, ints):
        row = [_exact(a) for a in H[i]]
        if len(row) != k:
            return False
        for j in range(k):
            total[j] += w * row[j]
        rhs += w * _exact(h[i])
    return bool(all(t == 0 for t in total) and rhs <= 0)


def strict_point(H, h, *, hint=None) -> Witness | Farkas:
    """Decide ``H x < h`` exactly.

    Parameters
    ----------
    H : sequence of rows (m, k) of ints or Fractions (numpy object arrays work)
    h : sequence (m,) of ints or Fractions
    hint : array_like of float (k,), optional
        A point near the cell (an engine's interior point): the rows nearest it are tried first.

    Returns
    -------
    Witness or Farkas
        Checked exactly before returning.
    """
    rows, rhs, unscale = _integer_rows(H, h)
    m = len(rows)
    k = len(rows[0]) if m else (0 if hint is None else len(hint))
    if m == 0:
        return Witness((0,) * k, 1)
    live = []
    for i in range(m):
        if any(rows[i]):
            live.append(i)
        elif rhs[i] <= 0:                           # 0 < h_i fails: one row is the proof
            return _checked(H, h, Farkas((i,), (unscale[i],)))
    if not live:
        return _checked(H, h, Witness((0,) * k, 1))
    # powers of two bring every row to a norm in [1/2, 2) for the LP: the same answer, and
    # its optimum is then nearly a Chebyshev centre
    shift = {i: _norm_bits(rows[i]) for i in live}
    order = _by_slack(rows, rhs, shift, live, hint)
    active = sorted(order[:min(len(order), 3 * (k + 1))])
    A = np.array(rows, dtype=object).reshape(m, k)
    b = np.array(rhs, dtype=object)
    while True:
        # every active row times 2**(top - shift): integers of norms about 2**top
        top = max(shift[i] for i in active)
        status, x, y = _solve([[a << (top - shift[i]) for a in rows[i]] for i in active],
                              [rhs[i] << (top - shift[i]) for i in active], k,
                              1 << max(top, 0))
        scale = {i: Fraction(1 << (top - shift[i])) for i in active}
        if status == "empty":
            pairs = [(active[j], w * scale[active[j]]) for j, w in enumerate(y) if w > 0]
            return _checked(H, h, Farkas(tuple(i for i, _ in pairs),
                                         tuple(w * unscale[i] for i, w in pairs)))
        q = math.lcm(*(v.denominator for v in x)) if x else 1
        p = np.array([int(v * q) for v in x], dtype=object)
        slack = b * q - A.dot(p)                   # exact: integers
        bad = [i for i in live if slack[i] <= 0]
        if not bad:             # every row checked in integers just above (zero rows before)
            return Witness(tuple(int(v) for v in p), q)
        chosen = set(active)
        bad = [i for i in bad if i not in chosen]
        if not bad:             # cannot happen: the active rows hold strictly at x
            raise ArithmeticError("exact LP: the optimum violates its own rows")
        bad.sort(key=lambda i: Fraction(int(slack[i]), 1 << shift[i]))     # no float overflow
        active = sorted(chosen | set(bad[:max(k + 1, len(bad) // 4)]))


def _checked(H, h, result):
    ok = (check_witness(H, h, result) if isinstance(result, Witness)
          else check_farkas(H, h, result))
    if not ok:              # a bug, never an answer: the arithmetic above is exact
        raise ArithmeticError("exact LP produced a certificate that does not check")
    return result


def _integer_rows(H, h):
    """Rows as Python integers: row ``i`` times a positive integer ``unscale[i]`` (the lcm of
    its denominators), so a certificate's weights on these rows times ``unscale`` are weights
    on the given rows."""
    if isinstance(H, np.ndarray) and H.dtype == object and \
            all(type(v) is int for v in H.flat) and all(type(v) is int for v in h):
        return H.tolist(), list(h), [Fraction(1)] * len(h)      # already integers
    rows, rhs, unscale = [], [], []
    for row, c in zip(H, h):
        vals = [*row, c]
        if all(isinstance(v, (int, np.integer)) for v in vals):
            rows.append([int(v) for v in row])
            rhs.append(int(c))
            unscale.append(Fraction(1))
            continue
        vals = [Fraction(v) for v in vals]
        den = math.lcm(*(v.denominator for v in vals))
        rows.append([int(v * den) for v in vals[:-1]])
        rhs.append(int(vals[-1] * den))
        unscale.append(Fraction(den))
    return rows, rhs, unscale


def _norm_bits(row) -> int:
    """About log2 of the row's norm (integers of any size: no float conversion)."""
    return max(abs(int(a)) for a in row).bit_length() - 1


def _by_slack(rows, rhs, shift, live, hint):
    """Live rows ordered by their (normalised, approximate) slack at the hint."""
    if hint is None:
        return list(live)
    hint = np.asarray(hint, dtype=np.float64).reshape(-1)
    try:                        # integers below 2**1024: one conversion in C
        A = np.array([rows[i] for i in live], dtype=np.float64)
        b = np.array([rhs[i] for i in live], dtype=np.float64)
        norm = np.sqrt(np.einsum("ij,ij->i", A, A))
        if np.all(np.isfinite(norm)) and np.all(norm > 0) and np.all(np.isfinite(b)):
            slack = (b - A @ hint) / norm
            return [live[j] for j in np.argsort(slack, kind="stable")]
    except OverflowError:
        pass
    slack = []
    for i in live:
        s = shift[i]
        # scaled to norms about 1 before leaving the integers, so nothing overflows
        a = [math.ldexp(float(v >> max(s - 60, 0)), -min(s, 60)) if abs(v) >> 1000 == 0
             else float(Fraction(v, 1 << s)) for v in rows[i]]
        c = float(Fraction(rhs[i], 1 << s))
        slack.append(c - float(np.dot(a, hint)))
    return [live[j] for j in np.argsort(slack, kind="stable")]


def _row_update(row, pivot_row, c, p, D):
    """One row after a pivot on column ``c`` (pivot ``p``, old denominator ``D``):
    ``(p a - f b) / D``, exact by the integer-preserving (Bareiss) property."""
    f = row[c]
    new = [0] * len(row)
    for j in range(len(row)):
        if j == c:
            new[j] = f
        else:
            q, rem = divmod(p * row[j] - f * pivot_row[j], D)
            if rem:                 # would be a bug: these entries are minors of the data
                raise ArithmeticError("exact LP: a Bareiss division is not exact")
            new[j] = q
    return new


def _solve(H, h, k, cap):
    """``max t  s.t.  H x + t <= h, t <= cap`` (integer data) by the simplex method, exactly.

    Returns ``("point", x, None)`` when the optimum is positive (``H x < h`` at ``x``), else
    ``("empty", None, y)`` with the rows' dual multipliers ``y`` (a Farkas certificate).

    Variables: ``0..k-1`` the free ``x`` (they enter first and never leave); ``k`` is
    ``t' = t - t0 >= 0`` (``t0 = min(h, cap)``, so the origin starts feasible); ``k+1+i`` the
    slack of row ``i`` (row ``m``: ``t <= cap``). Bland's rule. The dictionary is an integer
    matrix over one common denominator ``D`` and every pivot updates it by integer-preserving
    (Bareiss) steps, ``(p a - b c) / D_old``, which divide exactly (the entries are minors of
    the initial matrix): no fraction is formed until the end.
    """
    m = len(H)
    t0 = min(min(h), cap)
    free = set(range(k))
    basis = [k + 1 + i for i in range(m + 1)]
    nonbasic = list(range(k + 1))
    # rows: [const, coef_0, ..., coef_k] of s_i = (h_i - t0) - H_i x - t'; true value = T / D
    T = [[b - t0] + [-a for a in row] + [-1] for row, b in zip(H, h)]
    T.append([cap - t0] + [0] * k + [-1])
    obj = [t0] + [0] * k + [1]                     # z = t0 + t'
    D = 1

    def pivot(r, j):                               # j: nonbasic index; column j + 1
        nonlocal D, obj
        c = j + 1
        p = T[r][c]
        row_r = T[r]
        for i in range(len(T)):
            if i != r:
                T[i] = _row_update(T[i], row_r, c, p, D)
        obj = _row_update(obj, row_r, c, p, D)
        new_r = [-v for v in row_r]
        new_r[c] = D
        T[r] = new_r
        D = p
        if D < 0:                                  # keep the denominator positive
            D = -D
            for i in range(len(T)):
                T[i] = [-v for v in T[i]]
            obj = [-v for v in obj]
        basis[r], nonbasic[j] = nonbasic[j], basis[r]

    def ratio(j, direction):
        best = None                                # (numerator, denominator, var, row)
        for i in range(len(T)):
            if basis[i] in free:
                continue
            a = T[i][j + 1] * direction
            if a < 0:
                num, den = T[i][0], -a             # the ratio num / den (D cancels)
                if best is None or num * best[1] < best[0] * den or \
                        (num * best[1] == best[0] * den and basis[i] < best[2]):
                    best = (num, den, basis[i], i)
        return None if best is None else best[3]

    # free variables enter first and never leave
    for var in range(k):
        j = nonbasic.index(var)
        dirs = (1, -1) if obj[j + 1] >= 0 else (-1, 1)
        for d in dirs:
            r = ratio(j, d)
            if r is not None:
                pivot(r, j)
                break
    while True:
        enter = None
        for j in sorted(range(len(nonbasic)), key=lambda jj: nonbasic[jj]):
            var = nonbasic[j]
            coeff = obj[j + 1]
            if var in free:
                if coeff != 0:
                    enter = (j, 1 if coeff > 0 else -1)
                    break
            elif coeff > 0:
                enter = (j, 1)
                break
        if enter is None:
            break
        j, d = enter
        r = ratio(j, d)
        if r is None:           # cannot happen: t <= cap bounds the objective
            raise ArithmeticError("exact LP unbounded")
        pivot(r, j)
    if obj[0] > 0:
        x = [Fraction(0)] * k
        for i, var in enumerate(basis):
            if var < k:
                x[var] = Fraction(T[i][0], D)
        return "point", x, None
    y = [Fraction(0)] * m
    for j, var in enumerate(nonbasic):
        if var > k and var - k - 1 < m:
            y[var - k - 1] = Fraction(-obj[j + 1], D)
    return "empty", None, y
