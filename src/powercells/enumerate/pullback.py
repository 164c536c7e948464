"""The pull-back of a layer's units to cells, and the constant-unit rule (SPEC §1.3, §3.4).

On a cell where the layer's input is ``z = A t + B`` (``t``: engine coordinates), every unit of
the layer switches on hyperplanes of ``t``: a ReLU-type unit on its switch hyperplane
``W_u z + b_u = 0``, a max unit on ``piece s = piece r`` for every pair ``r < s`` of its pieces.
:func:`pull_back` computes all of them for a batch of cells at once; every engine and the
geometry code read a layer's hyperplanes from it, so they agree on what a unit is on a cell.

**The constant-unit rule.** A hyperplane whose pulled-back gradient cancels is no hyperplane:
the unit is constant on the cell (a dead unit, a duplicate, a unit fed only by inactive ones).
"Cancels" is relative: the gradient's norm is at most ``zero`` times the size of the terms that
produced it. The constant's sign then decides the unit on the whole cell, and a constant at most
``zero`` times its own terms is an exact zero: a ReLU-type unit is then inactive (``h > 0``
strictly means active), a max unit's tie goes to the smaller piece index (SPEC §1.3).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Hyperplanes", "coded_rows", "item_index", "pull_back"]


class Hyperplanes(NamedTuple):
    """A layer's hyperplanes on a batch of ``n`` cells: ``M`` items, one per ReLU-type unit, or
    one per pair of pieces ``low < high`` of a max unit.

    ``grad[i, m] @ t + offset[i, m] > 0`` where piece ``high[m]`` of unit ``unit[m]`` beats piece
    ``low[m]`` on cell ``i`` (for a ReLU-type unit: where it is active).

    Attributes
    ----------
    grad : ndarray (n, M, k)
    offset : ndarray (n, M)
    unit, low, high : ndarrays of intp (M,)
    norm : ndarray (n, M)
        ``|grad|``.
    constant : ndarray of bool (n, M)
        The item is constant on the cell (module docstring).
    above : ndarray of bool (n, M)
        On constant items: ``high`` wins on the whole cell (beyond the zero rule); False on the
        other items.
    tie : ndarray of bool (n, M)
        On constant items: the constant is an exact zero (the two pieces are equal on the whole
        cell; the tie goes to ``low``).
    rounded : ndarray of bool (n, M)
        On constant items: the rule fired on a gradient that is not 0.0 or whose terms are not
        all 0 (or, on ties, the same of the constant), so the float result, even an exact
        0.0, may be rounding of a value that is not 0: only exact arithmetic tells
        (:meth:`cancelled`).
    """

    grad: np.ndarray
    offset: np.ndarray
    unit: np.ndarray
    low: np.ndarray
    high: np.ndarray
    norm: np.ndarray
    constant: np.ndarray
    above: np.ndarray
    tie: np.ndarray
    rounded: np.ndarray

    def switch_codes(self) -> np.ndarray:
        """A ReLU-type layer's codes of its constant units: 1 (active) where ``above``, else 0;
        ``(n, K)`` int16."""
        return self.above.astype(np.int16)

    def switch_maps(self, factor: np.ndarray, cell: np.ndarray,
                    code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A ReLU-type layer's output maps ``(A (m, K, k), B (m, K))`` on children of the cells
        ``cell`` with codes ``code``: every unit's pulled-back map times its factor for the
        code (``factor[code]``, :attr:`Layer.switch_factors`). ``A`` is a view of a contiguous
        ``(m, k, K)`` array, the layout the next pull-back's matrix product reads, so that it
        makes no copy."""
        f = factor[code]
        per_input = self.grad.transpose(0, 2, 1)                # (n, k, K)
        return (f[:, None, :] * per_input[cell]).transpose(0, 2, 1), f * self.offset[cell]

    def cancelled(self) -> np.ndarray:
        """Items the rule took as constant although their float gradient is not 0 (a
        cancellation to rounding level, or a gradient that is only small), or as an exact zero
        although their float constant is not 0, or whose 0.0 came from terms that are not all
        0 (rounding can cancel a gradient of 1e-16 to 0.0 as well as a gradient of 0).
        Exact arithmetic tells them apart (:class:`~powercells.enumerate.base.SplitDoubts`).
        Only a gradient (and, on ties, a constant) whose terms are all 0 is exact: dead units,
        units fed only by inactive ones. These are the items :func:`pull_back` marks
        :attr:`rounded`."""
        return self.rounded

    def cancelled_units(self, K: int) -> np.ndarray:
        """:meth:`cancelled` per unit ``(n, K)``: a unit with any such item (a max unit: any
        pair of its pieces)."""
        out = np.zeros((self.constant.shape[0], K), dtype=bool)
        cc, cm = np.nonzero(self.cancelled())
        out[cc, self.unit[cm]] = True
        return out

    def unit_normals(self) -> tuple[np.ndarray, np.ndarray]:
        """``(G, g)``: the hyperplanes scaled to unit normals (``G @ t + g`` is a signed
        distance); zero normals and offsets on constant items."""
        safe = np.where(self.constant, 1.0, self.norm)
        G = np.where(self.constant[..., None], 0.0, self.grad / safe[..., None])
        return G, np.where(self.constant, 0.0, self.offset / safe)


def _items(layer):
    """``(dA (M, D), dB (M,), unit, low, high)``: the rows whose pull-back is a hyperplane."""
    if layer.is_switch:
        K = layer.out_dim
        units = np.arange(K)
        return (layer.switch_W, layer.switch_b, units, np.zeros(K, dtype=np.intp),
                np.ones(K, dtype=np.intp))
    items = [(u, r, s) for u in range(layer.out_dim) for r in range(int(layer.n_pieces[u]))
             for s in range(r + 1, int(layer.n_pieces[u]))]
    u, r, s = (np.array([it[j] for it in items], dtype=np.intp).reshape(-1) for j in range(3))
    D = layer.in_dim
    if not items:
        return np.empty((0, D)), np.empty(0), u, r, s
    return layer.A[u, s] - layer.A[u, r], layer.B[u, s] - layer.B[u, r], u, r, s


def item_index(layer) -> np.ndarray:
    """``index[u, r, s]``: the item of unit ``u``'s pieces ``r < s`` in :func:`pull_back`'s
    order (for a ReLU-type layer, ``index[u, 0, 1] = u``); -1 elsewhere."""
    _, _, unit, low, high = _items(layer)
    R = max(2, layer.max_pieces)
    index = np.full((layer.out_dim, R, R), -1, dtype=np.intp)
    index[unit, low, high] = np.arange(len(unit))
    return index


def pull_back(layer, A: np.ndarray, B: np.ndarray, zero: float, *,
              select: np.ndarray | None = None) -> Hyperplanes:
    """The hyperplanes of ``layer`` on cells whose layer input is ``A[i] t + B[i]``.

    Parameters
    ----------
    layer : Layer
    A : ndarray (n, D, k)
    B : ndarray (n, D)
    zero : float
        The relative tolerance of the constant-unit rule (:class:`Tolerances`).
    select : ndarray of int (n, m), optional
        Only these items on each cell (see :func:`item_index`); then ``unit``, ``low`` and
        ``high`` are ``(n, m)`` too.

    Returns
    -------
    Hyperplanes
    """
    dA, dB, unit, low, high = _items(layer)
    n, D, k = A.shape
    # the maps by input coordinate, (n, k, D): contiguous when A is a transposed view of such an
    # array (the layout switch_maps makes), so the products and norms below read it in place
    A_by_input = np.ascontiguousarray(A.transpose(0, 2, 1))
    if select is None:
        M = len(unit)
        # one matrix product for the whole batch: (n k, D) @ (D, M), read back as (n, M, k)
        grad_by_input = (A_by_input.reshape(n * k, D) @ dA.T).reshape(n, k, M)
        grad = grad_by_input.transpose(0, 2, 1)
        offset = B @ dA.T + dB
        rows_A = dA[None]
        norm = np.sqrt(np.einsum("nkm,nkm->nm", grad_by_input, grad_by_input))
    else:
        select = np.asarray(select, dtype=np.intp).reshape(n, -1)
        M = select.shape[1]
        rows_A = dA[select]                                      # (n, m, D)
        grad = np.einsum("nmd,ndk->nmk", rows_A, A)
        offset = np.einsum("nmd,nd->nm", rows_A, B) + dB[select]
        unit, low, high = unit[select], low[select], high[select]
        norm = np.sqrt(np.einsum("nmk,nmk->nm", grad, grad))
    absA = np.abs(rows_A)
    row_norm = np.sqrt(np.einsum("nkd,nkd->nd", A_by_input, A_by_input))  # the map's rows' sizes
    # a cheap upper bound of the gradients' terms screens out almost every (cell, item) first
    suspect = norm <= zero * (row_norm.max(axis=1, initial=0.0)[:, None] * absA.sum(axis=2))
    constant = np.zeros((n, M), dtype=bool)
    above = np.zeros((n, M), dtype=bool)
    tie = np.zeros((n, M), dtype=bool)
    rounded = np.zeros((n, M), dtype=bool)
    if suspect.any():
        sc, sm = np.nonzero(suspect)
        arow = absA[0, sm] if select is None else absA[sc, sm]
        terms = np.einsum("pd,pd->p", row_norm[sc], arow)
        constant[sc, sm] = norm[sc, sm] <= zero * terms
        rounded[sc, sm] = (terms > 0) | (norm[sc, sm] > 0)
        if constant.any():
            cc, cm = np.nonzero(constant)
            arow = absA[0, cm] if select is None else absA[cc, cm]
            u, lo, hi = ((unit[cm], low[cm], high[cm]) if select is None else
                         (unit[cc, cm], low[cc, cm], high[cc, cm]))
            own = (np.abs(layer.switch_b[u]) if layer.is_switch else
                   np.abs(layer.B[u, hi]) + np.abs(layer.B[u, lo]))
            inputs = np.einsum("pd,pd->p", np.abs(B[cc]), arow)
            scale = zero * (inputs + own)
            above[cc, cm] = offset[cc, cm] > scale
            tie[cc, cm] = np.abs(offset[cc, cm]) <= scale
            # a tie whose constant is 0.0 from input terms that are not all 0 may be rounding
            # too (tested on the input terms alone: beside a large bias they round away)
            rounded[cc, cm] |= tie[cc, cm] & ((inputs > 0) | (offset[cc, cm] != 0))
    rounded &= constant
    return Hyperplanes(grad, offset, unit, low, high, norm, constant, above, tie, rounded)


def coded_rows(planes: Hyperplanes, code: np.ndarray):
    """The rows ``G t <= g`` saying "each unit's coded piece wins" on each cell, with the
    constant items marked (a constant unit adds no constraint).

    Parameters
    ----------
    planes : Hyperplanes
        Of ``n`` cells.
    code : ndarray (n, K)
        The layer's code on each cell.

    Returns
    -------
    G : ndarray (n, m, k)
    g : ndarray (n, m)
    unit : ndarray (m,)
        ``m`` is the number of items that involve a unit's coded piece: ``K`` for a ReLU-type
        layer, ``sum(pieces - 1)`` for a max layer, the same for every cell.
    constant : ndarray of bool (n, m)
    """
    code = np.asarray(code, dtype=np.intp).reshape(len(planes.offset), -1)
    n, M = planes.offset.shape
    if M == 0:
        k = planes.grad.shape[2]
        return (np.empty((n, 0, k)), np.empty((n, 0)), np.empty(0, dtype=np.intp),
                np.empty((n, 0), dtype=bool))
    c = code[:, planes.unit]                                     # (n, M)
    at_low, at_high = c == planes.low, c == planes.high
    # grad t + offset > 0 where high wins: "low wins" is grad t <= -offset, "high wins" the
    # opposite; every cell has exactly pieces - 1 items at its coded piece per unit
    sign = np.where(at_high, -1.0, 1.0)
    _, cols = np.nonzero(at_low | at_high)
    m = len(cols) // max(n, 1)
    cols = cols.reshape(n, m)
    take = (np.arange(n)[:, None], cols)
    G = sign[take][..., None] * planes.grad[take]
    g = -sign[take] * planes.offset[take]
    return G, g, planes.unit[cols[0]] if n else planes.unit[:0], planes.constant[take]
