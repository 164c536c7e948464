"""VNN-LIB properties: input regions and the unsafe output set, numbers kept exact.

A VNN-LIB file declares inputs ``X_i`` and outputs ``Y_j`` and asserts a formula; the property
*holds* when no input in the input region maps to an output satisfying the assertions (the
assertions describe the unsafe set). The formula (a conjunction of the asserts, with ``and`` /
``or`` nested freely) is brought to disjunctive normal form; each disjunct is an input part
(bounds or linear constraints on ``X`` only) and an output part (linear constraints on ``Y``
only). Disjuncts are grouped by input part, so ACAS Xu's prop_6 gives two boxes, each with its
unsafe output set ``OR_k (mat_k @ y <= rhs_k)``.

Numbers are parsed as :class:`fractions.Fraction` and converted to float64 only in
:attr:`InputRegion.domain` and :attr:`OutputConstraint.mat` / ``rhs``; the exact values stay in
``*_exact``. Strict inequalities are read as non-strict (a verifier working on closed sets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import VnnlibError

__all__ = ["InputRegion", "OutputConstraint", "VnnlibError", "VnnlibProperty", "read_vnnlib"]


@dataclass
class OutputConstraint:
    """One conjunction of the unsafe set: ``mat @ y <= rhs``."""

    mat_exact: list
    rhs_exact: list

    @property
    def mat(self) -> np.ndarray:
        return np.array([[float(v) for v in row] for row in self.mat_exact], dtype=np.float64)

    @property
    def rhs(self) -> np.ndarray:
        return np.array([float(v) for v in self.rhs_exact], dtype=np.float64)


@dataclass
class InputRegion:
    """An input region (a box, or a polytope when a constraint couples inputs) and the unsafe
    output set that goes with it (a disjunction of :class:`OutputConstraint`)."""

    A_exact: list
    b_exact: list
    unsafe: list = field(default_factory=list)
    n_inputs: int = 0

    @property
    def bounds(self):
        """``(lo, hi)`` float arrays when every constraint bounds one input, else None."""
        lo = np.full(self.n_inputs, -np.inf)
        hi = np.full(self.n_inputs, np.inf)
        for row, b in zip(self.A_exact, self.b_exact):
            nz = [i for i, v in enumerate(row) if v != 0]
            if len(nz) != 1:
                return None
            i = nz[0]
            bound = b / row[i]
            if row[i] > 0:
                hi[i] = min(hi[i], float(bound))
            else:
                lo[i] = max(lo[i], float(bound))
        return lo, hi

    @property
    def domain(self):
        """A :class:`~powercells.Box` (or :class:`~powercells.Polytope`)."""
        from ..domain import Box, Polytope

        bounds = self.bounds
        if bounds is not None:
            lo, hi = bounds
            if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
                missing = [i for i in range(self.n_inputs)
                           if not (np.isfinite(lo[i]) and np.isfinite(hi[i]))]
                raise VnnlibError(f"inputs {['X_%d' % i for i in missing]} are not bounded")
            return Box(lo, hi)
        A = np.array([[float(v) for v in row] for row in self.A_exact])
        return Polytope(A, np.array([float(v) for v in self.b_exact]))


@dataclass
class VnnlibProperty:
    """A parsed property: ``regions[i].domain`` and ``regions[i].unsafe``."""

    n_inputs: int
    n_outputs: int
    regions: list

    def __len__(self) -> int:
        return len(self.regions)


# ---------------------------------------------------------------------- parsing
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def _parse_sexprs(text: str):
    text = "\n".join(line.split(";", 1)[0] for line in text.splitlines())
    stack: list = [[]]
    for tok in _TOKEN.findall(text):
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if len(stack) == 1:
                raise VnnlibError("unbalanced ')'")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    if len(stack) != 1:
        raise VnnlibError("unbalanced '('")
    return stack[0]


def _number(tok: str):
    try:
        return Fraction(tok)
    except (ValueError, ZeroDivisionError):
        return None


def _linear(expr, names):
    """A linear expression as ({var: coef}, const)."""
    if isinstance(expr, str):
        num = _number(expr)
        if num is not None:
            return {}, num
        if expr not in names:
            raise VnnlibError(f"unknown name {expr!r}")
        return {expr: Fraction(1)}, Fraction(0)
    if not expr:
        raise VnnlibError("empty expression")
    op, *rest = expr
    terms = [_linear(e, names) for e in rest]
    if op == "+":
        return _sum(terms)
    if op == "-":
        if len(terms) == 1:
            return _scaled(terms[0], -1)
        return _sum([terms[0]] + [_scaled(t, -1) for t in terms[1:]])
    if op == "*":
        out = ({}, Fraction(1))
        for t in terms:
            if not out[0]:
                out = _scaled(t, out[1])
            elif not t[0]:
                out = _scaled(out, t[1])
            else:
                raise VnnlibError("a product of two variables is not linear")
        return out
    raise VnnlibError(f"unsupported expression operator {op!r}")


def _sum(terms):
    coef: dict = {}
    const = Fraction(0)
    for c, k in terms:
        for v, a in c.items():
            coef[v] = coef.get(v, 0) + a
        const += k
    return coef, const


def _scaled(term, factor):
    c, k = term
    return {v: a * factor for v, a in c.items()}, k * factor


def _dnf(formula, names):
    """The formula as a list of conjunctions, each a list of atoms (coef, rhs): coef @ v <= rhs."""
    if isinstance(formula, str) or not formula:
        raise VnnlibError(f"expected a formula, got {formula!r}")
    op, *rest = formula
    if op == "and":
        result = [[]]
        for part in rest:
            result = [a + b for a in result for b in _dnf(part, names)]
        return result
    if op == "or":
        return [conj for part in rest for conj in _dnf(part, names)]
    if op in ("<=", "<", ">=", ">", "="):
        if len(rest) != 2:
            raise VnnlibError(f"({op} ...) needs two operands")
        (ca, ka), (cb, kb) = _linear(rest[0], names), _linear(rest[1], names)
        lhs, const = _sum([(ca, ka), _scaled((cb, kb), -1)])       # lhs + const  op  0
        atoms = []
        if op in ("<=", "<", "="):
            atoms.append((lhs, -const))
        if op in (">=", ">", "="):
            atoms.append(({v: -a for v, a in lhs.items()}, const))
        return [atoms]
    raise VnnlibError(f"unsupported formula operator {op!r}")


def read_vnnlib(path) -> VnnlibProperty:
    """Read a VNN-LIB property (see the module docstring).

    Raises
    ------
    PowercellsError
        For unreadable files, unknown names, non-linear terms, or constraints mixing inputs
        and outputs.
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise VnnlibError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return _read(_parse_sexprs(text))
    except VnnlibError as exc:
        raise VnnlibError(f"{path}: {exc}") from None


def _read(exprs) -> VnnlibProperty:
    names: dict = {}
    asserts = []
    for e in exprs:
        if not isinstance(e, list) or not e:
            raise VnnlibError(f"unexpected top-level token {e!r}")
        if e[0] == "declare-const":
            m = re.fullmatch(r"([XY])_(\d+)", e[1])
            if not m:
                raise VnnlibError(f"declared name {e[1]!r} is not X_i or Y_j")
            names[e[1]] = (m.group(1), int(m.group(2)))
        elif e[0] == "assert":
            asserts.append(e[1])
        else:
            raise VnnlibError(f"unsupported command {e[0]!r}")
    n_in = 1 + max((i for k, i in names.values() if k == "X"), default=-1)
    n_out = 1 + max((i for k, i in names.values() if k == "Y"), default=-1)
    if n_in == 0:
        raise VnnlibError("no input declared")
    disjuncts = _dnf(["and"] + asserts, names)
    regions: dict = {}
    for conj in disjuncts:
        ins, outs = [], []
        for coef, rhs in conj:
            kinds = {names[v][0] for v, a in coef.items() if a != 0}
            if not kinds:
                if rhs < 0:
                    break           # 0 <= negative: this disjunct is empty
                continue
            if kinds == {"X"}:
                ins.append((coef, rhs))
            elif kinds == {"Y"}:
                outs.append((coef, rhs))
            else:
                raise VnnlibError("a constraint mixes inputs and outputs")
        else:
            key = tuple(sorted((tuple(sorted((names[v][1], a) for v, a in c.items())), r)
                               for c, r in ins))
            region = regions.get(key)
            if region is None:
                A = [[Fraction(0)] * n_in for _ in ins]
                for row, (c, _) in zip(A, ins):
                    for v, a in c.items():
                        row[names[v][1]] = a
                region = regions[key] = InputRegion(A, [r for _, r in ins], [], n_in)
            mat = [[Fraction(0)] * n_out for _ in outs]
            for row, (c, _) in zip(mat, outs):
                for v, a in c.items():
                    row[names[v][1]] = a
            region.unsafe.append(OutputConstraint(mat, [r for _, r in outs]))
    return VnnlibProperty(n_in, n_out, list(regions.values()))
