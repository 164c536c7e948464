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

The accepted language: ``(declare-const X_i Real)`` / ``(declare-const Y_j Real)`` (each name
once, before its first use; the inputs must be ``X_0 .. X_{n-1}`` without gaps, likewise the
outputs) and ``(assert F)`` with one formula ``F`` built from ``and``, ``or`` and the comparisons
``<= < >= > =`` (two operands each) of linear terms in ``+ - * /``. Numbers are decimals with an
optional sign, fraction and exponent (``-1.5``, ``.5``, ``3e-05``) or ratios ``p/q``. A
comparison of two constants is evaluated: a false one empties its disjunct, and a property
whose every disjunct is empty reads as a property with no regions (its unsafe set is empty, so
it holds). ``;`` starts a comment that runs to the end of the line.

Hostile input is refused with a :class:`~powercells.errors.VnnlibError` naming the file, the
line (where there is one) and the problem; reading takes time and memory linear in the file's
size (about 1-3 MB/s, and up to ~30 bytes of memory per byte of a file of tiny constraints).
Whatever the file, no other exception escapes :func:`read_vnnlib`; taking a region's
``.domain`` raises VnnlibError (an unbounded input, a bound beyond float64) or
:class:`~powercells.errors.DomainError` (an empty or flat region). The limits, module constants:

* :data:`MAX_FILE_BYTES` (64 MiB; real properties are a few MB at most): larger files are
  refused before they are read. The file must be UTF-8 text (a byte order mark is skipped)
  without NUL bytes.
* :data:`MAX_DEPTH` (1000): parentheses nested deeper are refused (real properties nest < 10).
  The reader is iterative, so no nesting reaches Python's recursion limit.
* Every literal must be finite in float64 (magnitude at most about 1.8e308) and, unless zero, at
  least ``10**MIN_MAGNITUDE_EXP`` (1e-400: smaller values underflow to 0.0 or a subnormal, which
  is fine, but an absurd exponent such as ``1e-99999999`` or ``1e99999999`` is refused before
  any big integer is built); at most :data:`MAX_NUMBER_CHARS` (1000) characters. ``nan``,
  ``inf``, hex and underscores are refused. The results of the arithmetic (coefficients,
  right-hand sides) must also stay within float64's range, and every exact value within
  :data:`MAX_BITS` (20000) bits, so no sum of many fractions grows without bound.
* ``max_disjuncts`` (default :data:`MAX_DISJUNCTS`, 100000): the most disjuncts that any
  ``and`` / ``or``, and the conjunction of the asserts, may expand to. The counts are computed
  before anything is expanded, so ``(or A B)`` asserted 40 times is refused at once rather than
  expanded to 2^40 disjuncts. Subformulas that are false (``(or)``, a false constant
  comparison) are dropped first; the limit holds for each subformula, even one that a false
  sibling would empty.
* :data:`MAX_DNF_ATOMS` (4 million): the most atoms the disjunctive normal form may hold in all
  (the sum of its disjuncts' lengths), and :data:`MAX_MATRIX_ENTRIES` (50 million): the most
  entries of the dense matrices ``A_exact`` / ``mat_exact`` of all regions together (a CIFAR
  box, 3072 inputs and 6144 bounds, needs 19 million).
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import product
from pathlib import Path

import numpy as np

from ..errors import OptionError, VnnlibError

__all__ = ["InputRegion", "OutputConstraint", "VnnlibError", "VnnlibProperty", "read_vnnlib"]

#: Files larger than this (bytes) are refused before being read.
MAX_FILE_BYTES = 64 * 2**20
#: Deepest nesting of parentheses accepted.
MAX_DEPTH = 1000
#: Default of ``read_vnnlib(..., max_disjuncts=)``: disjuncts any subformula may expand to.
MAX_DISJUNCTS = 100_000
#: Atom references the whole DNF may hold (the sum of the disjuncts' lengths).
MAX_DNF_ATOMS = 4_000_000
#: Entries of the dense matrices ``A_exact`` and ``mat_exact`` of all regions together.
MAX_MATRIX_ENTRIES = 50_000_000
#: Longest number literal accepted (characters).
MAX_NUMBER_CHARS = 1000
#: Smallest nonzero magnitude of a literal (its decimal exponent).
MIN_MAGNITUDE_EXP = -400
#: Largest denominator (in bits) of an exact value; numerators may have twice as many.
MAX_BITS = 20_000

_NUMBER_CACHE = 4096                     # literals remembered (repeated bounds such as 0.5)
_FMAX = int(sys.float_info.max)          # an integer: 2**1024 - 2**971
_ZERO = Fraction(0)
_ONE = Fraction(1)


def _show(tok: str, width: int = 40) -> str:
    """A token for a one-line message: quoted, escaped, shortened."""
    return repr(tok if len(tok) <= width else tok[:width] + "...")


def _magnitude(q: Fraction) -> str:
    """``10^k`` roughly, without printing a huge number."""
    return f"10^{round((abs(q.numerator).bit_length() - q.denominator.bit_length()) * 0.30103)}"


def _to_float(q: Fraction, what: str) -> float:
    """``float(q)``, or a :class:`VnnlibError` naming ``what`` when float64 cannot hold it."""
    if abs(q.numerator) > _FMAX * q.denominator:
        raise VnnlibError(f"{what} (about {_magnitude(q)}) is beyond float64's range")
    return float(q)


@dataclass
class OutputConstraint:
    """One conjunction of the unsafe set: ``mat @ y <= rhs``."""

    mat_exact: list
    rhs_exact: list
    n_outputs: int = 0

    @property
    def mat(self) -> np.ndarray:
        """Shape ``(len(rhs), n_outputs)``; ``(0, n_outputs)`` when the conjunction constrains
        no output (then every output is unsafe)."""
        if not self.mat_exact:
            return np.zeros((0, self.n_outputs), dtype=np.float64)
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
        """``(lo, hi)`` float arrays when every constraint bounds one input, else None.

        Raises
        ------
        VnnlibError
            If a bound (``b / a``) is beyond float64's range.
        """
        lo = np.full(self.n_inputs, -np.inf)
        hi = np.full(self.n_inputs, np.inf)
        for row, b in zip(self.A_exact, self.b_exact):
            nz = [i for i, v in enumerate(row) if v != 0]
            if len(nz) != 1:
                return None
            i = nz[0]
            bound = _to_float(b / row[i], f"the bound on X_{i}")
            if row[i] > 0:
                hi[i] = min(hi[i], bound)
            else:
                lo[i] = max(lo[i], bound)
        return lo, hi

    @property
    def domain(self):
        """A :class:`~powercells.Box` (or :class:`~powercells.Polytope`).

        Raises
        ------
        VnnlibError
            If an input is not bounded, or a bound is beyond float64's range.
        DomainError
            If the region is empty or flat (e.g. ``lo > hi``) or otherwise not a valid domain.
        """
        from ..domain import Box, Polytope

        bounds = self.bounds
        if bounds is not None:
            lo, hi = bounds
            if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
                missing = [i for i in range(self.n_inputs)
                           if not (np.isfinite(lo[i]) and np.isfinite(hi[i]))]
                names = [f"X_{i}" for i in missing]
                raise VnnlibError(f"inputs {names} are not bounded")
            return Box(lo, hi)
        A = np.array([[float(v) for v in row] for row in self.A_exact])
        b = np.array([float(v) for v in self.b_exact])
        if not self._floats_faithful(A):
            A, b = self._scaled_rows()
        return Polytope(A.reshape(len(b), self.n_inputs), b)

    def _floats_faithful(self, A: np.ndarray) -> bool:
        """Whether float64 keeps every nonzero coefficient nonzero and every row norm finite and
        not underflowed (then the rows go to :class:`Polytope` as they are)."""
        if A.size == 0:
            return True
        with np.errstate(over="ignore", under="ignore"):
            norms = np.sqrt(np.einsum("ij,ij->i", A, A))
        exact_nonzero = np.array([[v != 0 for v in row] for row in self.A_exact], dtype=bool)
        if np.any(exact_nonzero & (A == 0)):
            return False
        rows = exact_nonzero.any(axis=1)
        return bool(np.all(np.isfinite(norms)) and np.all(norms[rows] >= 1e-150))

    def _scaled_rows(self):
        """The rows divided (exactly) by their largest coefficient, then rounded to float64."""
        A, b = [], []
        for i, (row, rhs) in enumerate(zip(self.A_exact, self.b_exact)):
            scale = max((abs(v) for v in row), default=_ZERO)
            if scale == 0:
                A.append([0.0] * len(row))
                b.append(float(rhs))
                continue
            A.append([float(v / scale) for v in row])
            b.append(_to_float(rhs / scale, f"the right-hand side of input constraint {i} "
                                            "relative to its coefficients"))
        return np.array(A, dtype=np.float64), np.array(b, dtype=np.float64)


@dataclass
class VnnlibProperty:
    """A parsed property: ``regions[i].domain`` and ``regions[i].unsafe``."""

    n_inputs: int
    n_outputs: int
    regions: list

    def __len__(self) -> int:
        return len(self.regions)


# ---------------------------------------------------------------------- reading
def read_vnnlib(path, *, max_disjuncts: int = MAX_DISJUNCTS) -> VnnlibProperty:
    """Read a VNN-LIB property (see the module docstring for the language and the limits).

    Parameters
    ----------
    max_disjuncts : int
        The most disjuncts any subformula (and the whole property) may expand to in disjunctive
        normal form; counted before anything is expanded.

    Raises
    ------
    VnnlibError
        For unreadable, oversized or binary files, bad syntax, unknown or undeclared names,
        non-linear terms, numbers float64 cannot hold, constraints mixing inputs and outputs,
        and expansions past the limits. The message names the file and, where it can, the line.
    OptionError
        If ``max_disjuncts`` is not a positive integer.
    """
    if isinstance(max_disjuncts, bool) or not isinstance(max_disjuncts, (int, np.integer)):
        raise OptionError(f"max_disjuncts must be an integer, got {max_disjuncts!r}")
    if max_disjuncts < 1:
        raise OptionError(f"max_disjuncts must be at least 1, got {max_disjuncts}")
    text = _read_text(Path(path), path)
    try:
        return _Reader(text, int(max_disjuncts)).run()
    except VnnlibError as exc:
        raise VnnlibError(f"{path}: {exc}") from None
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as exc:
        # a safety net: every input should be refused above with a precise message
        detail = " ".join(str(exc).split())[:200]
        raise VnnlibError(f"{path}: internal error while reading the property "
                          f"({type(exc).__name__}: {detail})") from None


def _read_text(file: Path, path) -> str:
    """The file's text; ``path`` (as the caller gave it) names it in messages."""
    try:
        with open(file, "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISREG(st.st_mode) and st.st_size > MAX_FILE_BYTES:
                raise VnnlibError(f"{path}: the file has {st.st_size} bytes, more than the "
                                  f"{MAX_FILE_BYTES} a property may have")
            chunks, total = [], 0
            while True:                     # in chunks: read(MAX_FILE_BYTES) would allocate it
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                if total > MAX_FILE_BYTES:
                    raise VnnlibError(f"{path}: the file has more than the {MAX_FILE_BYTES} bytes "
                                      "a property may have")
                chunks.append(chunk)
    except OSError as exc:
        raise VnnlibError(f"{path}: cannot read ({exc.strerror or exc})") from None
    data = b"".join(chunks)
    del chunks
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise VnnlibError(f"{path}: not a text file (a NUL byte at offset {nul}, line {line})")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise VnnlibError(f"{path}: not a text file (invalid UTF-8 at offset {exc.start}, line "
                          f"{line})") from None


# the line breaks of str.splitlines end a comment
_TOKEN = re.compile(r";[^\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]*|\(|\)|[^\s();]+")
_NAME = re.compile(r"([XY])_(0|[1-9][0-9]{0,17})", re.ASCII)
_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?", re.ASCII)
_RATIO = re.compile(r"([+-]?)([0-9]+)/([0-9]+)", re.ASCII)
_COMPARISONS = ("<=", "<", ">=", ">", "=")
_TERM_OPS = ("+", "-", "*", "/")


def _number(tok: str):
    """The exact value of a literal, None when ``tok`` does not look like a number.

    Raises VnnlibError for a malformed or out-of-range literal before any big integer is built.
    """
    c = tok[0]
    if not (c in "0123456789." or (c in "+-" and len(tok) > 1 and tok[1] in "0123456789.")):
        if tok.lstrip("+-").lower() in ("nan", "inf", "infinity"):
            raise VnnlibError(f"{_show(tok)} is not a finite number")
        return None
    if len(tok) > MAX_NUMBER_CHARS:
        raise VnnlibError(f"the number {_show(tok)} has more than {MAX_NUMBER_CHARS} characters")
    m = _DECIMAL.fullmatch(tok)
    if m:
        frac = m.group(3) or ""
        if not (m.group(2) or frac):
            raise VnnlibError(f"malformed number {_show(tok)}")
        digits = (m.group(2) + frac).lstrip("0")
        if not digits:
            return _ZERO
        scale = int(m.group(4) or 0) - len(frac)          # value = int(digits) * 10**scale
        lead = len(digits) - 1 + scale                     # 10**lead <= |value| < 10**(lead+1)
        if lead > 308:
            raise VnnlibError(f"the number {_show(tok)} is beyond float64's range")
        if lead < MIN_MAGNITUDE_EXP:
            raise VnnlibError(f"the number {_show(tok)} is too small (its magnitude is below "
                              f"1e{MIN_MAGNITUDE_EXP}; write 0)")
        n = -int(digits) if m.group(1) == "-" else int(digits)
        q = Fraction(n * 10**scale) if scale >= 0 else Fraction(n, 10**-scale)
        if lead == 308 and abs(q.numerator) > _FMAX * q.denominator:
            raise VnnlibError(f"the number {_show(tok)} is beyond float64's range")
        return q
    m = _RATIO.fullmatch(tok)
    if not m:
        raise VnnlibError(f"malformed number {_show(tok)} (expected a decimal such as -1.5e-3 "
                          "or a ratio such as 1/3)")
    num, den = int(m.group(2)), int(m.group(3))
    if den == 0:
        raise VnnlibError(f"division by zero in the number {_show(tok)}")
    if num > _FMAX * den:
        raise VnnlibError(f"the number {_show(tok)} is beyond float64's range")
    if num and num * 10**-MIN_MAGNITUDE_EXP < den:
        raise VnnlibError(f"the number {_show(tok)} is too small (its magnitude is below "
                          f"1e{MIN_MAGNITUDE_EXP}; write 0)")
    return Fraction(-num if m.group(1) == "-" else num, den)


class _Atom:
    """``items @ v <= rhs`` over inputs (kind ``"X"``) or outputs (``"Y"``): ``items`` is
    ``((index, coef), ...)`` with the indices sorted and no zero coefficient. Equal atoms get
    the same ``ident``, a small integer, when disjuncts are grouped (hashing and comparing
    fractions is slow)."""

    __slots__ = ("ident", "items", "kind", "rhs")
    count = 1
    size = 1

    def __init__(self, kind, items, rhs):
        self.kind, self.items, self.rhs, self.ident = kind, items, rhs, None


class _Node:
    """An ``and`` / ``or`` of atoms and nodes, with the number of disjuncts of its DNF
    (``count``) and the total length of those disjuncts (``size``)."""

    __slots__ = ("count", "kids", "op", "size")

    def __init__(self, op, kids, count, size):
        self.op, self.kids, self.count, self.size = op, kids, count, size


_TRUE = _Node("and", (), 1, 0)
_FALSE = _Node("or", (), 0, 0)


class _Term:
    """A linear term ``scale * sum(coef[v] * v) + const``; ``coef`` maps ``(kind, index)`` to a
    fraction. Each term is an operand of exactly one operator, which may update it in place."""

    __slots__ = ("coef", "const", "scale")

    def __init__(self, coef, const):
        self.coef, self.const, self.scale = coef, const, _ONE


class _Frame:
    """An open parenthesis: its offset, operator, operands so far and what the operands are
    (``"formula"``, ``"term"``, ``"raw"`` tokens of a declaration)."""

    __slots__ = ("args", "child", "ctx", "op", "pos")

    def __init__(self, pos, ctx):
        self.pos, self.ctx, self.op, self.args, self.child = pos, ctx, None, [], None


class _Reader:
    def __init__(self, text: str, max_disjuncts: int):
        self.text = text
        self.max_disjuncts = max_disjuncts
        self.names: dict = {}               # "X_3" -> ("X", 3)
        self.numbers: dict = {}             # literal -> Fraction
        self.asserts: list = []
        self.atom_ids: dict = {}            # exact atom -> small integer

    # ---------------------------------------------------------------- errors
    def line(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def error(self, pos, msg: str):
        if pos is None:
            return VnnlibError(msg)
        return VnnlibError(f"line {self.line(pos)}: {msg}")

    # ---------------------------------------------------------------- main loop
    def run(self) -> VnnlibProperty:
        root = _Frame(0, "top")
        stack = [root]
        push, pop = stack.append, stack.pop
        leaf, reduce = self.leaf, self.reduce
        for m in _TOKEN.finditer(self.text):
            tok = m[0]
            if tok == "(":
                parent = stack[-1]
                if parent is root:
                    ctx = "cmd"
                elif parent.op is None:
                    raise self.error(m.start(), "expected an operator after '(', got '('")
                else:
                    ctx = parent.child
                    if ctx == "raw":
                        raise self.error(m.start(), "(declare-const NAME Real) takes a name and "
                                                    "a sort, not a parenthesised expression")
                if len(stack) > MAX_DEPTH:
                    raise self.error(m.start(), f"parentheses nested deeper than {MAX_DEPTH} "
                                                "levels")
                push(_Frame(m.start(), ctx))
            elif tok == ")":
                if len(stack) == 1:
                    raise self.error(m.start(), "unbalanced ')'")
                frame = pop()
                if frame.op is None:
                    raise self.error(frame.pos, "empty expression '()'")
                value = reduce(frame)
                if value is not None:
                    stack[-1].args.append(value)
            elif tok[0] == ";":
                continue
            else:
                frame = stack[-1]
                child = frame.child
                if child == "term":
                    frame.args.append(leaf(tok, m))
                elif frame is root:
                    raise self.error(m.start(), f"unexpected top-level token {_show(tok)} "
                                                "(expected '(declare-const ...)' or '(assert ...)')")
                elif frame.op is None:
                    self.set_operator(frame, tok)
                elif child == "raw":
                    frame.args.append(tok)
                else:
                    raise self.error(m.start(), f"expected a formula in ({frame.op} ...), got "
                                                f"{_show(tok)}")
        if len(stack) > 1:
            raise self.error(stack[1].pos, "unbalanced '(': this expression is not closed")
        return self.finish()

    def set_operator(self, frame, tok):
        ctx = frame.ctx
        if ctx == "cmd":
            if tok == "declare-const":
                frame.child = "raw"
            elif tok == "assert":
                frame.child = "formula"
            else:
                raise self.error(frame.pos, f"unsupported command {_show(tok)} (a property has "
                                            "declare-const and assert)")
        elif ctx == "formula":
            if tok in ("and", "or"):
                frame.child = "formula"
            elif tok in _COMPARISONS:
                frame.child = "term"
            else:
                raise self.error(frame.pos, f"unsupported formula operator {_show(tok)}")
        elif tok in _TERM_OPS:
            frame.child = "term"
        else:
            raise self.error(frame.pos, f"unsupported expression operator {_show(tok)}")
        frame.op = tok

    def reduce(self, frame):
        op, args = frame.op, frame.args
        if frame.ctx == "cmd":
            if op == "declare-const":
                self.declare(frame)
            else:
                if len(args) != 1:
                    raise self.error(frame.pos, f"(assert F) takes one formula, got {len(args)}")
                self.asserts.append(args[0])
            return None
        if frame.ctx == "formula":
            if op == "and":
                return self.conjunction(args, frame.pos)
            if op == "or":
                return self.disjunction(args, frame.pos)
            return self.comparison(frame)
        return self.term(frame)

    def declare(self, frame):
        args = frame.args
        if len(args) != 2:
            raise self.error(frame.pos, f"(declare-const NAME Real) takes a name and a sort, got "
                                        f"{len(args)} operand(s)")
        name, sort = args
        m = _NAME.fullmatch(name)
        if not m:
            raise self.error(frame.pos, f"declared name {_show(name)} is not X_i or Y_j (an "
                                        "index of at most 18 digits, no leading zero)")
        if sort != "Real":
            raise self.error(frame.pos, f"{name} is declared with sort {_show(sort)}; only Real "
                                        "is supported")
        if name in self.names:
            raise self.error(frame.pos, f"{name} is declared twice")
        self.names[name] = (m.group(1), int(m.group(2)))

    # ---------------------------------------------------------------- terms
    def leaf(self, tok, m):
        v = self.names.get(tok)
        if v is not None:
            return _Term({v: _ONE}, _ZERO)
        q = self.numbers.get(tok)
        if q is None:
            try:
                q = _number(tok)
            except VnnlibError as exc:
                raise self.error(m.start(), str(exc)) from None
            if q is None:
                raise self.error(m.start(), f"unknown name {_show(tok)} (not declared before "
                                            "its use)")
            if len(self.numbers) < _NUMBER_CACHE:
                self.numbers[tok] = q
        return _Term({}, q)

    def check(self, q, frame, in_range=True):
        """``q`` if its exact form stays small and (``in_range``) float64 can hold it."""
        d = q.denominator
        if d.bit_length() > MAX_BITS or abs(q.numerator).bit_length() > 2 * MAX_BITS:
            raise self.error(frame.pos, f"({frame.op} ...): an exact value needs more than "
                                        f"{MAX_BITS} bits")
        if in_range and abs(q.numerator) > _FMAX * d:
            raise self.error(frame.pos, f"({frame.op} ...): a value (about {_magnitude(q)}) is "
                                        "beyond float64's range")
        return q

    def merge(self, base, other, sign, frame):
        """``base.coef += sign * other``'s coefficients, in ``base``'s units; consumes both."""
        coef = base.coef
        f = other.scale / base.scale if other.scale != base.scale else _ONE
        if sign < 0:
            f = -f
        for v, a in other.coef.items():
            if f != 1:
                a = self.check(a * f, frame, False)
            old = coef.get(v)
            coef[v] = a if old is None else self.check(old + a, frame, False)

    def add(self, terms, frame, signs=None):
        """The sum of ``terms`` (each ``signs[i]`` times); the operands are consumed. The
        coefficients of the smaller terms go into the largest one's dict, so nested sums cost
        O(n log n) for n variables in all, not O(depth * n)."""
        if signs is None:
            signs = [1] * len(terms)
        base = max(range(len(terms)), key=lambda i: len(terms[i].coef))
        out = terms[base]
        if signs[base] < 0:
            out.scale = -out.scale
            out.const = -out.const
        for i, (t, sign) in enumerate(zip(terms, signs)):
            if i == base:
                continue
            if t.coef:
                self.merge(out, t, sign, frame)
            if t.const:
                out.const = self.check(out.const + t.const if sign > 0 else out.const - t.const,
                                       frame)
        return out

    def scaled(self, t, factor, frame):
        """``t * factor`` in O(1): the coefficients are scaled lazily (``t.scale``)."""
        if not factor:
            return _Term({}, _ZERO)
        if t.coef:
            t.scale = self.check(t.scale * factor, frame)
        if t.const:
            t.const = self.check(t.const * factor, frame)
        return t

    def term(self, frame):
        op, args = frame.op, frame.args
        need = 2 if op == "/" else 1
        if len(args) < need:
            raise self.error(frame.pos, f"({op} ...) needs at least {need} operand(s), got "
                                        f"{len(args)}")
        if op == "+":
            return self.add(args, frame)
        if op == "-":
            if len(args) == 1:
                return self.scaled(args[0], -1, frame)
            return self.add(args, frame, [1] + [-1] * (len(args) - 1))
        out = args[0]
        for t in args[1:]:
            if op == "*":
                if not out.coef:
                    out = self.scaled(t, out.const, frame)
                elif not t.coef:
                    out = self.scaled(out, t.const, frame)
                else:
                    raise self.error(frame.pos, "a product of two variables is not linear")
            else:
                if t.coef:
                    raise self.error(frame.pos, "division by a variable is not linear")
                if not t.const:
                    raise self.error(frame.pos, "division by zero")
                out = self.scaled(out, 1 / t.const, frame)
        return out

    # ---------------------------------------------------------------- formulas
    def comparison(self, frame):
        op, args = frame.op, frame.args
        if len(args) != 2:
            raise self.error(frame.pos, f"({op} ...) needs two operands, got {len(args)}")
        a, b = args                                         # a - b  op  0
        if not b.coef:
            rhs = self.check(b.const - a.const, frame) if a.const else b.const
            lhs = a
        else:
            lhs = self.add([a, b], frame, [1, -1])
            rhs = -lhs.const
        items, kind = self.items(lhs, frame)
        if not items:                                       # a constant comparison
            le = _TRUE if rhs >= 0 else _FALSE
            ge = _TRUE if rhs <= 0 else _FALSE
            if op in ("<=", "<"):
                return le
            return ge if op in (">=", ">") else self.conjunction([le, ge], frame.pos)
        if op in ("<=", "<"):
            return _Atom(kind, items, rhs)
        neg = _Atom(kind, tuple((i, -c) for i, c in items), -rhs)
        if op in (">=", ">"):
            return neg
        return self.conjunction([_Atom(kind, items, rhs), neg], frame.pos)

    def items(self, t, frame):
        """The coefficients of ``t`` as ``((index, coef), ...)`` sorted by index, without zeros,
        and their kind (``"X"`` or ``"Y"``)."""
        scale = t.scale
        if len(t.coef) == 1:                                # the common case: a bound
            ((kind, idx), a), = t.coef.items()
            if scale != 1:
                a = self.check(a * scale, frame)
            else:
                self.check(a, frame)
            return (((idx, a),), kind) if a else ((), None)
        kinds = set()
        items = []
        for (kind, idx), a in t.coef.items():
            a = self.check(a * scale if scale != 1 else a, frame)
            if a:
                items.append((idx, a))
                kinds.add(kind)
        if len(kinds) > 1:
            raise self.error(frame.pos, "a constraint mixes inputs and outputs")
        items.sort()
        return tuple(items), (kinds.pop() if kinds else None)

    def conjunction(self, kids, pos, what="this formula"):
        kids = [k for k in kids if k is not _TRUE]
        if any(k.count == 0 for k in kids):
            return _FALSE
        if len(kids) <= 1:
            return kids[0] if kids else _TRUE
        count = 1
        for k in kids:
            count *= k.count
            if count > self.max_disjuncts:
                raise self.error(pos, f"{what} expands to more than max_disjuncts="
                                      f"{self.max_disjuncts} disjuncts in disjunctive normal form")
        size = sum(k.size * (count // k.count) for k in kids)
        self.check_size(size, pos, what)
        return _Node("and", kids, count, size)

    def disjunction(self, kids, pos):
        kids = [k for k in kids if k.count]
        if len(kids) <= 1:
            return kids[0] if kids else _FALSE
        count = sum(k.count for k in kids)
        if count > self.max_disjuncts:
            raise self.error(pos, f"this formula expands to {count} disjuncts, more than "
                                  f"max_disjuncts={self.max_disjuncts}")
        size = sum(k.size for k in kids)
        self.check_size(size, pos, "this formula")
        return _Node("or", kids, count, size)

    def check_size(self, size, pos, what):
        if size > MAX_DNF_ATOMS:
            raise self.error(pos, f"{what} expands to a disjunctive normal form of {size} atoms, "
                                  f"more than {MAX_DNF_ATOMS}")

    # ---------------------------------------------------------------- the property
    def finish(self) -> VnnlibProperty:
        n_in = self.count_declared("X", "input")
        n_out = self.count_declared("Y", "output")
        if n_in == 0:
            raise VnnlibError("no input declared")
        root = self.conjunction(self.asserts, None, "the conjunction of the asserts")
        regions: dict = {}
        entries = 0
        disjuncts = _expand(root)
        for rope in disjuncts:
            conj = _flatten(rope)
            ins = [a for a in conj if a.kind == "X"]
            outs = [a for a in conj if a.kind == "Y"]
            key = tuple(sorted(map(self.ident, ins))) if len(disjuncts) > 1 else ()
            region = regions.get(key)
            if region is None:
                entries += len(ins) * n_in
                self.check_entries(entries)
                region = regions[key] = InputRegion(_dense(ins, n_in), [a.rhs for a in ins],
                                                    [], n_in)
            entries += len(outs) * n_out
            self.check_entries(entries)
            region.unsafe.append(OutputConstraint(_dense(outs, n_out), [a.rhs for a in outs],
                                                  n_out))
        return VnnlibProperty(n_in, n_out, list(regions.values()))

    def ident(self, atom) -> int:
        if atom.ident is None:
            exact = (atom.kind, tuple((i, a.numerator, a.denominator) for i, a in atom.items),
                     atom.rhs.numerator, atom.rhs.denominator)
            atom.ident = self.atom_ids.setdefault(exact, len(self.atom_ids))
        return atom.ident

    def count_declared(self, kind, what) -> int:
        indices = sorted(i for k, i in self.names.values() if k == kind)
        for expected, i in enumerate(indices):
            if i != expected:
                raise VnnlibError(f"{kind}_{expected} is not declared but {kind}_{i} is (the "
                                  f"{what}s must be {kind}_0, {kind}_1, ... without gaps)")
        return len(indices)

    @staticmethod
    def check_entries(entries):
        if entries > MAX_MATRIX_ENTRIES:
            raise VnnlibError(f"the regions' dense constraint matrices would hold more than "
                              f"{MAX_MATRIX_ENTRIES} entries")


def _dense(atoms, n: int) -> list:
    """The atoms' coefficients as dense rows of ``n`` exact numbers."""
    rows = [[_ZERO] * n for _ in atoms]
    for row, a in zip(rows, atoms):
        for i, c in a.items:
            row[i] = c
    return rows


def _expand(root) -> list:
    """The disjuncts of ``root`` as ropes: an atom, or a tuple of ropes (one disjunct of each
    operand of an ``and``). Iterative; the work is linear in the size of the result."""
    if root.count == 0:
        return []
    if type(root) is _Atom:
        return [root]
    stack = [[root, 0, []]]
    while True:
        top = stack[-1]
        node, i, parts = top
        kids = node.kids
        while i < len(kids) and type(kids[i]) is _Atom:     # atoms need no frame
            parts.append([kids[i]])
            i += 1
        if i < len(kids):
            top[1] = i + 1
            kid = kids[i]
            stack.append([kid, 0, []])
            continue
        if node.op == "and":
            dnf = list(product(*parts))
        else:
            dnf = [d for part in parts for d in part]
        stack.pop()
        if not stack:
            return dnf
        stack[-1][2].append(dnf)


def _flatten(rope) -> list:
    """The atoms of a rope, left to right."""
    if type(rope) is _Atom:
        return [rope]
    out = []
    stack = [rope]
    while stack:
        r = stack.pop()
        if type(r) is _Atom:
            out.append(r)
        else:
            stack.extend(reversed(r))
    return out
