"""Certificates of a certified count, and a checker that trusts nothing but rationals.

``count_regions(..., certify=True, certificate=FILE)`` (CLI ``powercells count --certify
--certificate FILE``) writes, for every node of the subdivision tree that is split, one JSON
line (:class:`CertificateWriter`):

* ``path``: the node's code path (one list of codes per layer so far);
* ``children``: each child's layer code and a rational ``witness`` (numerators, denominator);
* ``ruled_out``: every sign left out while the layer's units were taken one at a time: the
  codes of the units before (``prefix``), the ``unit``, the ``side`` (0 inactive, 1 active; for
  a max unit the piece), and a Farkas combination ``farkas`` of the cell's strict inequalities
  (row tags and rational weights) that sums to ``0 < 0``; ``null`` for a max unit's piece that
  a constant difference rules out (the checker re-derives it).

:func:`check_certificate` (CLI ``powercells check-certificate NETWORK FILE --box ...``)
re-verifies it in exact rational arithmetic only. It shares no code with the engines: no LP,
no floating-point predicate, its own arithmetic on the stored weights (every float is the
binary rational it denotes). For a network of ReLU, leaky-ReLU, abs, identity and max
(maxout, max-pooling) layers over a box or polytope ``D`` it proves, at every depth ``l``:

1. every listed node is a region: its witness satisfies every inequality of its code path
   strictly (each unit of each layer so far on the coded side of its hyperplane, each max
   unit's coded piece strictly above every other piece whose difference to it is not
   constant, and ``A x < b`` for the domain's rows, i.e. the witness is in the interior of
   ``D``);
2. no region is missing: replaying each split unit by unit from the parent, every sign that
   is not continued by some listed child has a valid Farkas certificate (weights ``y >= 0``,
   not all 0, with ``sum y_i a_i = 0`` and ``sum y_i c_i <= 0`` over the strict rows
   ``a_i x < c_i`` of that partial cell), so its open cell is empty; a unit whose pulled-back
   pre-activation is identically zero on the parent is constant (inactive when the constant is
   <= 0, the convention of SPEC §1.3) and splits nothing; a max unit's piece that another piece
   beats by a constant on the parent, or ties and precedes (ties go to the smaller index),
   wins nowhere there;
3. the codes of a node's children are distinct, and every node above the last layer has its
   own record.

Hence the per-layer counts it prints are the exact numbers of non-empty open cells (linear
regions in the activation-pattern sense) of the network as stored, over the interior of ``D``.
It does not prove anything about float64 evaluation of the network, nor about the engine's
interior points and radii (only the witnesses count).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import CertificateError

__all__ = ["CertificateReport", "CertificateWriter", "check_certificate"]

FORMAT = "powercells-certificate"
VERSION = 1
_SWITCH = ("relu", "leaky_relu", "abs")


# ---------------------------------------------------------------------------------- writing
class CertificateWriter:
    """Writes the certificate of a certified run to ``path`` (a temporary name, renamed when
    the run finishes; removed if it fails).

    Raises
    ------
    OptionError
        For a run that is not certified (the exact engine writes the records).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.tmp = None
        self.lines = 0

    def start(self, network, domain, splitter) -> None:
        from .errors import OptionError

        inner = getattr(splitter, "engine", splitter)
        if not hasattr(inner, "record"):
            raise OptionError("a certificate needs the exact engine (certify=True)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                   dir=self.path.parent)
        self.tmp = Path(tmp)
        self.file = os.fdopen(fd, "w")
        self._write({"format": FORMAT, "version": VERSION, "input_dim": network.input_dim,
                     "widths": list(network.widths),
                     "layers": [layer.kind for layer in network.layers]})
        inner.record = self._record

    def _write(self, obj) -> None:
        self.file.write(json.dumps(obj, separators=(",", ":")))
        self.file.write("\n")
        self.lines += 1

    def _record(self, cell, depth, children, log) -> None:
        self._write({
            "path": [list(code) for code in cell.path],
            "children": [{"code": [int(c) for c in child.code],
                          "witness": [[str(p) for p in child.witness.numerators],
                                      str(child.witness.denominator)]} for child in children],
            "ruled_out": [{"prefix": None if prefix is None else list(prefix),
                           "unit": int(unit), "side": int(side),
                           "farkas": None if proof is None else
                           [[list(tag), str(Fraction(w))] for tag, w in proof]}
                          for prefix, unit, side, proof in log]})

    def finish(self, result) -> None:
        """Write the totals and move the file into place."""
        self._write({"per_layer": list(map(int, result.per_layer)),
                     "regions": int(result.regions), "partial": bool(result.partial)})
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.path)
        self.tmp = None

    def abort(self) -> None:
        if self.tmp is not None:
            self.file.close()
            self.tmp.unlink(missing_ok=True)
            self.tmp = None


# ---------------------------------------------------------------------------------- checking
@dataclass
class CertificateReport:
    """What :func:`check_certificate` verified.

    Attributes
    ----------
    per_layer : list of int
        Regions after each layer, as proven.
    regions : int
    nodes : int
        Split records checked.
    farkas : int
        Emptiness certificates checked.
    """

    per_layer: list
    regions: int
    nodes: int
    farkas: int

    def as_dict(self) -> dict:
        return {"verified": True, "per_layer": self.per_layer, "regions": self.regions,
                "nodes": self.nodes, "farkas": self.farkas}


def _q(x) -> Fraction:
    """A float (or int) as the exact rational it denotes."""
    return Fraction(float(x)) if isinstance(x, (float, np.floating)) else Fraction(x)


class _Layer:
    """A layer in rationals: a ReLU-type or identity layer's pre-activation ``u = W z + b``
    and activation, or a max layer's pieces ``v_kr = A_kr z + B_kr`` (``r < n_k``)."""

    def __init__(self, layer):
        self.kind = layer.kind
        self.is_max = layer.kind not in _SWITCH and layer.kind != "identity"
        if self.is_max:
            A = np.asarray(layer.A, dtype=np.float64)
            B = np.asarray(layer.B, dtype=np.float64)
            self.pieces = [[([_q(v) for v in A[k, r]], _q(B[k, r])) for r in range(int(n))]
                           for k, n in enumerate(layer.n_pieces)]
            return
        if layer.kind == "identity":
            W, b = layer.A[:, 0, :], layer.B[:, 0]
        else:
            W, b = layer.switch_W, layer.switch_b
        self.W = [[_q(v) for v in row] for row in np.asarray(W, dtype=np.float64)]
        self.b = [_q(v) for v in np.asarray(b, dtype=np.float64)]
        self.slope = _q(layer.slope) if layer.kind == "leaky_relu" else None

    def factor(self, code: int) -> Fraction:
        if self.kind == "identity" or code == 1:
            return Fraction(1)
        return {"relu": Fraction(0), "abs": Fraction(-1), "leaky_relu": self.slope}[self.kind]


class _Node:
    """A node being checked: its map ``z = A x + B`` into the next layer, and its strict rows
    by tag (``("d", i)`` and ``(layer, unit)``)."""

    def __init__(self, A, B, rows):
        self.A, self.B, self.rows = A, B, rows


def _affine_on(node: _Node, Wk, bk):
    """``Wk . z + bk`` on a node, as ``(a, c)`` with value ``a . x + c``."""
    k = len(node.A[0]) if node.A else 0
    a = [sum((w * node.A[d][j] for d, w in enumerate(Wk) if w), Fraction(0)) for j in range(k)]
    c = sum((w * node.B[d] for d, w in enumerate(Wk) if w), Fraction(0)) + bk
    return a, c


def _pre(layer: _Layer, node: _Node):
    """The pre-activations on a node: rows ``(a_k, c_k)`` with ``u_k = a_k . x + c_k``; for a
    max layer, per unit the list of its pieces' ``(a_kr, c_kr)``."""
    if layer.is_max:
        return [[_affine_on(node, Ar, Br) for Ar, Br in unit] for unit in layer.pieces]
    return [_affine_on(node, Wk, bk) for Wk, bk in zip(layer.W, layer.b)]


def _wins(pieces, r: int):
    """Piece ``r`` of a max unit on a node: its strict rows ``((a_s - a_r) x < c_r - c_s,
    s)`` against every piece whose difference to it is not constant, or None when a constant
    difference rules it out (another piece is above it, or equal and of smaller index)."""
    ar, cr = pieces[r]
    rows = []
    for s, (a, c) in enumerate(pieces):
        if s == r:
            continue
        D = [x - y for x, y in zip(a, ar)]
        if not any(D):
            if c - cr < 0 or (c == cr and s > r):
                continue                        # r wins over s everywhere
            return None
        rows.append(((D, cr - c), s))
    return rows


def _side_row(a, c, side: int):
    """The strict row of a unit on a side: active ``u > 0`` is ``-a x < c``; inactive
    ``u < 0`` is ``a x < -c``."""
    return ([-v for v in a], c) if side == 1 else (list(a), -c)


def _strictly_inside(rows, x) -> bool:
    return all(sum((ai * xi for ai, xi in zip(a, x)), Fraction(0)) < c for a, c in rows)


def check_certificate(network, domain, path) -> CertificateReport:
    """Verify a certificate written by a certified count (module docstring says what it
    proves).

    Parameters
    ----------
    network : Network
        The network as stored (as loaded from its file).
    domain : Domain or (lo, hi) or (A, b)
        A box or polytope of the input space.
    path : str or path

    Returns
    -------
    CertificateReport

    Raises
    ------
    CertificateError
        Naming the first record that does not verify.
    """
    from .domain import Slice, as_domain

    domain = as_domain(domain, dim=network.input_dim)
    if isinstance(domain, Slice):
        raise CertificateError("certificates are checked over a box or polytope of the input "
                               "space, not a slice")
    layers = [_Layer(layer) for layer in network.layers]
    header, records, footer = _read(Path(path))
    if header.get("widths") != list(network.widths) or \
            header.get("input_dim") != network.input_dim:
        raise CertificateError(f"{path}: written for a network of input dimension "
                               f"{header.get('input_dim')} and widths {header.get('widths')}, "
                               f"not {network.input_dim} and {list(network.widths)}")
    H, h = domain.halfspaces()
    k = network.input_dim
    root_rows = {("d", i): ([_q(v) for v in H[i]], _q(h[i])) for i in range(len(h))}
    identity = [[Fraction(int(i == j)) for j in range(k)] for i in range(k)]
    frontier = {(): _Node(identity, [Fraction(0)] * k, root_rows)}
    L = len(layers)
    counts = [0] * L
    n_nodes = n_farkas = 0
    for depth in range(L):
        layer = layers[depth]
        nxt = {}
        for node_path, node in frontier.items():
            rec = records.pop(node_path, None)
            if rec is None:
                raise CertificateError(f"{path}: no record for the node with code path "
                                       f"{_show(node_path)} (a region of layer {depth})")
            n_nodes += 1
            pre = _pre(layer, node)
            n_farkas += _check_node(layer, depth, node, pre, node_path, rec, path)
            for child in rec["children"]:
                code = tuple(child["code"])
                counts[depth] += 1
                if depth + 1 < L:
                    nxt[node_path + (code,)] = _child_node(layer, depth, node, pre, code)
        frontier = nxt
    if records:
        extra = next(iter(records))
        raise CertificateError(f"{path}: a record for {_show(extra)}, which is not a node of "
                               "the tree the certificate proves")
    if footer is not None and footer.get("per_layer") != counts:
        raise CertificateError(f"{path}: the certificate states per-layer counts "
                               f"{footer.get('per_layer')}, its records prove {counts}")
    return CertificateReport(per_layer=counts, regions=counts[-1] if counts else 0,
                             nodes=n_nodes, farkas=n_farkas)


def _child_node(layer: _Layer, depth: int, node: _Node, pre, code) -> _Node:
    rows = dict(node.rows)
    A, B = [], []
    if layer.is_max:
        for unit, (pieces, r) in enumerate(zip(pre, code)):
            for row, s in _wins(pieces, r) or []:
                rows[(depth, unit, r, s)] = row
            A.append(list(pieces[r][0]))
            B.append(pieces[r][1])
        return _Node(A, B, rows)
    for unit, ((a, c), q) in enumerate(zip(pre, code)):
        if layer.kind != "identity" and any(a):
            rows[(depth, unit)] = _side_row(a, c, q)
        f = layer.factor(q)
        A.append([f * v for v in a])
        B.append(f * c)
    return _Node(A, B, rows)


def _check_node(layer: _Layer, depth: int, node: _Node, pre, node_path, rec, path) -> int:
    """Replay one split (``pre``: the layer's pre-activations on the node); returns the number
    of Farkas certificates checked."""
    where = f"{path}: node {_show(node_path)}"
    K = len(pre)
    children = [tuple(c["code"]) for c in rec.get("children", [])]
    if len(set(children)) != len(children):
        raise CertificateError(f"{where}: two children have the same code")
    if any(len(c) != K for c in children):
        raise CertificateError(f"{where}: a child's code does not have {K} units")
    ruled = {}
    for item in rec.get("ruled_out", []):
        prefix = None if item["prefix"] is None else tuple(item["prefix"])
        key = (prefix, int(item["unit"]), int(item["side"]))
        ruled[key] = item["farkas"]
    partial = [()]
    used = 0
    for unit, values in enumerate(pre):
        if layer.is_max:
            nxt = []
            for p in partial:
                for r in range(len(values)):
                    listed = (p, unit, r) in ruled
                    proof = ruled.pop((p, unit, r), None)
                    if _wins(values, r) is None:         # a constant difference rules it out
                        if proof is not None:
                            raise CertificateError(f"{where}: unit {unit} piece {r}: a Farkas "
                                                   "certificate where none is needed")
                        continue
                    if not listed:
                        nxt.append(p + (r,))
                        continue
                    if proof is None:
                        raise CertificateError(f"{where}: unit {unit} piece {r} after "
                                               f"{list(p)}: ruled out without a certificate")
                    _check_farkas(layer, depth, node, pre, p, unit, r, proof, where)
                    used += 1
            partial = nxt
            continue
        a, c = values
        if layer.kind == "identity":
            partial = [p + (0,) for p in partial]
            continue
        if not any(a):                          # constant on the node: no split
            q = 1 if c > 0 else 0
            partial = [p + (q,) for p in partial]
            continue
        whole = set()                           # sides empty on the whole node
        for side in (0, 1):
            proof = ruled.pop((None, unit, side), None)
            if proof is not None:
                _check_farkas(layer, depth, node, pre, None, unit, side, proof, where)
                used += 1
                whole.add(side)
        nxt = []
        for p in partial:
            for side in (0, 1):
                if side in whole:
                    continue
                proof = ruled.pop((p, unit, side), None)
                if proof is None:
                    nxt.append(p + (side,))
                    continue
                _check_farkas(layer, depth, node, pre, p, unit, side, proof, where)
                used += 1
        partial = nxt
    if ruled:
        key = next(iter(ruled))
        raise CertificateError(f"{where}: a certificate for unit {key[1]} after "
                               f"{'the node' if key[0] is None else list(key[0])}, which the "
                               "replay never reaches or does not need")
    if sorted(partial) != sorted(children):
        missing = sorted(set(partial) - set(children))
        extra = sorted(set(children) - set(partial))
        raise CertificateError(f"{where}: the children do not match the replay: "
                               + (f"missing {list(missing[0])}" if missing else
                                  f"not allowed {list(extra[0])}"))
    for child in rec["children"]:
        code = tuple(child["code"])
        nums, den = child["witness"]
        den = int(den)
        if den <= 0:
            raise CertificateError(f"{where}: child {list(code)}: a witness denominator "
                                   "must be positive")
        x = [Fraction(int(v), den) for v in nums]
        if len(x) != len(node.A[0]):
            raise CertificateError(f"{where}: child {list(code)}: the witness has "
                                   f"{len(x)} coordinates")
        rows = list(node.rows.values())
        if layer.is_max:
            for pieces, r in zip(pre, code):
                wins = _wins(pieces, r) if 0 <= r < len(pieces) else None
                if wins is None:
                    raise CertificateError(f"{where}: child {list(code)}: piece {r} cannot "
                                           "win")
                rows += [row for row, _ in wins]
        elif layer.kind != "identity":
            rows += [_side_row(a, c, q) for (a, c), q in zip(pre, code) if any(a)]
        if not _strictly_inside(rows, x):
            raise CertificateError(f"{where}: the witness of child {list(code)} does not "
                                   "satisfy its inequalities strictly")
    return used


def _check_farkas(layer, depth, node, pre, prefix, unit, side, proof, where) -> None:
    k = len(node.A[0])
    total = [Fraction(0)] * k
    rhs = Fraction(0)
    positive = False
    for tag, weight in proof:
        w = Fraction(weight)
        if w < 0:
            raise CertificateError(f"{where}: unit {unit} side {side}: a negative weight")
        positive = positive or w > 0
        tag = tuple(tag) if isinstance(tag, list) else tag
        if len(tag) == 2 and tag[0] == "d":
            row = node.rows.get(("d", tag[1]))
        elif layer.is_max and len(tag) == 4 and tag[0] == depth:
            row = _max_row(pre, prefix, unit, side, tag, where)
        elif len(tag) == 2 and tag[0] == depth and not layer.is_max:
            j = int(tag[1])
            if prefix is None and j != unit:
                raise CertificateError(f"{where}: unit {unit}: a certificate for the whole "
                                       f"node names unit {j} of this layer")
            if not 0 <= j <= unit:
                raise CertificateError(f"{where}: unit {unit}: a certificate row names unit "
                                       f"{j} of this layer, not yet decided")
            a, c = pre[j]
            if not any(a):
                raise CertificateError(f"{where}: unit {unit}: a certificate row names unit "
                                       f"{j}, which is constant on the node")
            row = _side_row(a, c, side if j == unit else prefix[j])
        elif tag and tag[0] != depth:
            row = node.rows.get(tag)
        else:
            row = None
        if row is None:
            raise CertificateError(f"{where}: unit {unit}: a certificate row {list(tag)} is "
                                   "not a row of the cell")
        a, c = row
        for i in range(k):
            total[i] += w * a[i]
        rhs += w * c
    if not positive or any(total) or rhs > 0:
        raise CertificateError(f"{where}: the certificate that unit {unit} cannot be "
                               f"{'active' if side else 'inactive'} after "
                               f"{'the node' if prefix is None else list(prefix)} "
                               "does not sum to 0 < 0")


def _max_row(pre, prefix, unit: int, side: int, tag, where):
    """The row a Farkas certificate names as ``(layer, j, r, s)`` in a max layer: unit ``j``'s
    piece ``r`` above piece ``s``, where ``r`` is the prefix's piece (``j < unit``) or the
    piece ruled out (``j == unit``)."""
    _, j, r, s = (int(v) for v in tag)
    if not 0 <= j <= unit or r != (side if j == unit else prefix[j]):
        raise CertificateError(f"{where}: unit {unit}: a certificate row {list(tag)} is not a "
                               "row of the partial cell")
    rows = _wins(pre[j], r) if 0 <= r < len(pre[j]) else None
    got = None if rows is None else next((row for row, t in rows if t == s), None)
    if got is None:
        raise CertificateError(f"{where}: unit {unit}: a certificate row {list(tag)} is not a "
                               "row of the partial cell")
    return got


def _read(path: Path):
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise CertificateError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        items = [json.loads(line) for line in lines if line.strip()]
    except ValueError as exc:
        raise CertificateError(f"{path}: not a certificate ({exc})") from None
    if not items or items[0].get("format") != FORMAT:
        raise CertificateError(f"{path}: not a powercells certificate")
    if items[0].get("version") != VERSION:
        raise CertificateError(f"{path}: certificate version {items[0].get('version')}, "
                               f"this checker reads {VERSION}")
    footer = items[-1] if len(items) > 1 and "per_layer" in items[-1] else None
    if footer is not None and footer.get("partial"):
        raise CertificateError(f"{path}: written by a run a budget stopped: it proves lower "
                               "bounds only, and the checker verifies complete runs")
    records = {}
    for rec in items[1:len(items) - (footer is not None)]:
        try:
            key = tuple(tuple(int(c) for c in code) for code in rec["path"])
        except (KeyError, TypeError, ValueError):
            raise CertificateError(f"{path}: a record without a code path") from None
        if key in records:
            raise CertificateError(f"{path}: two records for the node {_show(key)}")
        records[key] = rec
    return items[0], records, footer


def _show(node_path) -> str:
    return "[" + ", ".join("".join(map(str, code)) for code in node_path) + "]"
