"""Codes certified at points: a float64 forward pass with a rigorous error bound (the filter),
and exact rational arithmetic for the points it cannot decide (SPEC §5.5, DESIGN §6).

A point whose every code-deciding quantity (a ReLU-type unit's pre-activation, the margin of a
max unit's winning piece over each other piece) is nonzero in exact arithmetic lies in the
*open* cell of its code path: that code path is a region of the network as stored (its floats
taken as the binary rationals they are). Distinct certified code paths are distinct regions, so
certifying the interior points of a run's leaves proves its count is a lower bound of the exact
count, whatever engine found them.

The filter evaluates the network in float64 and carries, per unit, a bound on the difference
between the computed and the exact value: for ``z = W a + b`` with ``a`` known to within
``e_a``, ``|fl(z) - z| <= |W| e_a + gamma_{n+1} (|W| |fl(a)| + |b|)``, ``gamma_m = m u / (1 - m u)``,
``u = 2**-53`` (any summation order, FMA included), doubled to cover the rounding of the bound
itself. A sign is certified when ``|fl(z)|`` exceeds the bound. A unit whose pre-activation is
zero on a neighbourhood (its bias is 0 and it reads only units certified to be exactly zero
there) is constant, inactive by the convention of SPEC §1.3. Points the filter leaves open go
through the exact forward pass of :func:`powercells.enumerate.exact_cells.place`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["certified_codes"]

U = 2.0 ** -53


def _gamma(n: int) -> float:
    return n * U / (1 - n * U)


def certified_codes(network, X) -> tuple[list, np.ndarray]:
    """The codes at each point and whether they are certified.

    Parameters
    ----------
    network : Network
    X : array_like, shape (n, d)
        Points in the network's input space.

    Returns
    -------
    codes : list of ndarray of int16
        Per layer, ``(n, K_l)``, as :meth:`Network.codes` (exact where ``status == 2``).
    status : ndarray of int8, shape (n,)
        1: certified by the float filter; 2: certified by exact arithmetic; 0: the point lies
        on a boundary (some code-deciding quantity is exactly zero), its codes name no region.
    """
    X = network._points(X)
    # the same codes, values in float64's range (cached with the network, as Network.codes)
    if network._balanced_codes is None:
        network._balanced_codes = network.balanced().layers
    layers = network._balanced_codes
    n = len(X)
    A = X.copy()
    err = np.zeros_like(A)
    zero = np.zeros(A.shape, dtype=bool)        # exactly zero on a neighbourhood of the point
    ok = np.ones(n, dtype=bool)
    codes = []
    for layer in layers:
        code, A, err, zero, sure = _layer(layer, A, err, zero)
        codes.append(code)
        ok &= sure
    status = ok.astype(np.int8)
    for i in np.flatnonzero(~ok):
        exact = _exact_codes(layers, X[i])
        if exact is not None:
            for layer_codes, c in zip(codes, exact):
                layer_codes[i] = c
            status[i] = 2
    return codes, status


def _layer(layer, A, err, zero):
    """One layer of the filter: codes, outputs, their error bounds, the exact-zero mask and
    whether every code is certified."""
    absA = np.abs(A)
    if layer.is_switch or layer.kind == "identity":
        W = layer.switch_W if layer.is_switch else layer.A[:, 0, :]
        b = layer.switch_b if layer.is_switch else layer.B[:, 0]
        Z = A @ W.T + b
        absW = np.abs(W)
        bound = 2.0 * (err @ absW.T + _gamma(W.shape[1] + 1) * (absA @ absW.T + np.abs(b))) \
            + 1e-300
        # exactly zero nearby: a zero bias, and only inputs exactly zero nearby
        reads = (absW > 0).astype(np.float64)
        local_zero = ((~zero).astype(np.float64) @ reads.T == 0) & (b == 0)
        if layer.kind == "identity":
            return (np.zeros(Z.shape, dtype=np.int16), Z, bound, local_zero,
                    np.ones(len(Z), dtype=bool))
        decided = (np.abs(Z) > bound) | local_zero
        active = (Z > 0) & ~local_zero
        code = active.astype(np.int16)
        if layer.kind == "relu":
            out, out_err = np.where(active, Z, 0.0), np.where(active, bound, 0.0)
            out_zero = local_zero | ~active
        elif layer.kind == "abs":
            out, out_err, out_zero = np.abs(Z), bound, local_zero
        else:                                   # leaky ReLU
            s = float(layer.slope)
            low = s * Z
            out = np.where(active, Z, low)
            out_err = np.where(active, bound, abs(s) * bound + 2 * U * np.abs(low))
            out_zero = local_zero | (~active & (s == 0))
        # an inactive unit is exactly zero nearby only when its sign is certified
        out_zero = out_zero & (decided | local_zero)
        return code, out, out_err, out_zero, decided.all(axis=1)
    # max units: the winner must beat every other piece by more than both bounds
    K, R, _ = layer.A.shape
    V = np.einsum("krd,nd->nkr", layer.A, A) + layer.B
    absP = np.abs(layer.A)
    bound = 2.0 * (np.einsum("krd,nd->nkr", absP, err)
                   + _gamma(layer.A.shape[2] + 1) * (np.einsum("krd,nd->nkr", absP, absA)
                                                     + np.abs(layer.B))) + 1e-300
    code = np.argmax(V, axis=2)
    win = np.take_along_axis(V, code[..., None], axis=2)
    win_err = np.take_along_axis(bound, code[..., None], axis=2)
    same = np.all(layer.A[:, :, None, :] == layer.A[:, None, :, :], axis=3) & \
        (layer.B[:, :, None] == layer.B[:, None, :])          # identical pieces (K, R, R)
    r = np.arange(R)
    tied_ok = same[np.arange(K)[None, :, None], code[..., None], r[None, None, :]] & \
        (r[None, None, :] > code[..., None])
    beaten = (win - V > win_err + bound) | (r[None, None, :] == code[..., None]) | tied_ok
    valid = r[None, None, :] < layer.n_pieces[None, :, None]
    sure = np.all(beaten | ~valid, axis=(1, 2))
    out = win[..., 0]
    return (code.astype(np.int16), out, win_err[..., 0], np.zeros(out.shape, dtype=bool), sure)


def _exact_codes(layers, x):
    """The exact codes at ``x``, or None if it lies on a boundary."""
    from ..enumerate.exact_cells import Unplaced, exact_root, place

    cell = exact_root(np.empty((0, len(x))), np.empty(0), x)
    out = []
    try:
        for d, layer in enumerate(layers):
            cell = place(cell, layer, cell.witness, depth=d)
            out.append(cell.code.copy())
    except Unplaced:
        return None
    return out
