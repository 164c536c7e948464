"""Turning a graph of tensor operations into a chain of MASO layers (shared by the ONNX and
PyTorch importers).

Between two non-linearities every operation is affine, so the builder keeps the current tensor
as an *affine tensor*: ``value(z) = M z + c`` in the output ``z`` of the last non-linear layer,
with ``M`` of shape ``(*shape, n_z)`` and ``c`` of shape ``shape``. Linear operations (dense,
convolution, average pooling, batch norm, reshapes, adding constants, ...) act on ``M`` and ``c``
exactly, in float64. A ReLU / leaky ReLU closes a dense layer from the flattened ``(M, c)``; a
max-pool after a ReLU becomes a ReLU-max-pool layer, elsewhere a maxout-style MASO layer; what
is left at the end is the linear head. Tensors are flattened in C order (NCHW for images), so
input coordinate ``i`` is the ``i``-th entry of the flattened input, as in VNN-LIB.

Size limit: no array the builder makes may hold more than :data:`MAX_ELEMENTS` (2**28, i.e.
2 GiB of float64) entries: an affine tensor's ``M`` (its entries times ``n_z``), the identity of
the input or of a layer's output (``n**2``), a padded convolution input, a pooling table. The
check runs on the shapes, in Python integers, before anything is allocated, and raises
:class:`~powercells.errors.NetworkError`; so the input has at most 2**14 = 16384 entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import NetworkError, UnsupportedLayerError
from .layers import Layer
from .network import Network

__all__ = ["MAX_ELEMENTS", "AffineTensor", "NetworkBuilder", "check_elements"]

#: The most entries one array made while building a network may have (2 GiB of float64).
MAX_ELEMENTS = 2**28


def check_elements(count, what: str) -> int:
    """``count`` (an int or a shape) as a number of entries, or a NetworkError naming ``what``
    when it exceeds :data:`MAX_ELEMENTS` (computed in Python integers: no overflow)."""
    n = int(count) if isinstance(count, (int, np.integer)) else math.prod(int(s) for s in count)
    if n > MAX_ELEMENTS:
        raise NetworkError(f"{what} would have {n} entries, more than the limit of "
                           f"{MAX_ELEMENTS} (2**28)")
    return n


@dataclass
class AffineTensor:
    """``M z + c``: ``M`` of shape ``(*shape, n_z)``, ``c`` of shape ``shape``; ``stage`` counts
    the non-linear layers before it (tensors of different stages cannot be combined)."""

    M: np.ndarray
    c: np.ndarray
    stage: int

    @property
    def shape(self) -> tuple:
        return self.c.shape

    def affine(self, fn) -> AffineTensor:
        """Apply an affine map ``fn`` (batched over a leading axis): its offset lands in c.

        ``fn`` first runs on an empty batch, which gives the output shape without allocating
        it; a result past :data:`MAX_ELEMENTS` entries raises NetworkError."""
        out = np.shape(fn(np.zeros((0,) + self.shape)))[1:]
        check_elements(out + (self.M.shape[-1],), f"an affine map to shape {out}")
        zero = fn(np.zeros((1,) + self.shape))[0]
        batch = np.moveaxis(self.M, -1, 0)
        lin = fn(batch) - zero
        return AffineTensor(np.moveaxis(lin, 0, -1), fn(self.c[None])[0], self.stage)

    def reshape(self, shape) -> AffineTensor:
        return AffineTensor(self.M.reshape(tuple(shape) + (self.M.shape[-1],)),
                            self.c.reshape(shape), self.stage)

    def __add__(self, other):
        if isinstance(other, AffineTensor):
            if other.stage != self.stage:
                raise UnsupportedLayerError(
                    "adding two tensors from different non-linear stages (a skip connection "
                    "across an activation) is not a chain of MASO layers")
            self._check_result(other.shape)
            return AffineTensor(self.M + other.M, self.c + other.c, self.stage)
        other = np.asarray(other, dtype=np.float64)
        self._check_result(other.shape)
        c = self.c + other
        M = np.broadcast_to(self.M, c.shape + (self.M.shape[-1],)).copy()
        return AffineTensor(M, c, self.stage)

    def scale(self, factor) -> AffineTensor:
        factor = np.asarray(factor, dtype=np.float64)
        self._check_result(factor.shape)
        c = self.c * factor
        M = np.broadcast_to(self.M, c.shape + (self.M.shape[-1],)) * factor[..., None]
        return AffineTensor(M, c, self.stage)

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        return self.M.reshape(-1, self.M.shape[-1]), self.c.reshape(-1)

    def _check_result(self, other_shape):
        """The broadcast of this tensor with a tensor or constant of ``other_shape`` fits
        (ValueError, naming both shapes, when they do not broadcast)."""
        try:
            shape = np.broadcast_shapes(self.shape, tuple(other_shape))
        except ValueError:
            raise NetworkError(f"shapes {self.shape} and {tuple(other_shape)} do not "
                               "broadcast") from None
        check_elements(shape + (self.M.shape[-1],), f"a tensor of shape {shape}")


class NetworkBuilder:
    """Collects layers while a graph is walked; see the module docstring."""

    def __init__(self, input_shape, label: str = "node"):
        self.label = label          # how a source is named: "node" (ONNX), "module" (torch)
        shape = tuple(int(s) for s in input_shape)
        if not shape or any(s < 1 for s in shape):
            raise NetworkError(f"input shape must have positive sizes, got {input_shape}")
        n = math.prod(shape)
        check_elements(n * n, f"the identity map of the input of shape {shape} ({n} entries)")
        self.input_shape = shape
        self.layers: list[Layer] = []
        self.sources: list[str] = []
        self.input = AffineTensor(np.eye(n).reshape(shape + (n,)), np.zeros(shape), 0)
        self._last_relu: tuple[AffineTensor, int] | None = None   # (pre-activation, layer index)

    def activation(self, x: AffineTensor, kind: str, source: str, *,
                   smooth=None) -> AffineTensor:
        """Close a dense layer ``kind`` (relu, leaky_relu:<a>, abs) on ``x``.

        ``smooth`` (a :class:`~powercells.network.layers.SmoothActivation`) records that the
        layer is the hard limit of a smooth activation; a ReLU limit merges with a following
        max-pool like a ReLU, and the merged layer keeps the record."""
        self._check_stage(x)
        W, b = x.flat()
        index = len(self.layers)
        layer = Layer.dense(W, b, kind, name=self._name(index, source))
        layer.smooth = smooth
        self.layers.append(layer)
        self.sources.append(source)
        self._last_relu = (x, index) if kind == "relu" else None
        return self._output(x.shape, W.shape[0])

    def maxpool(self, x: AffineTensor, groups: list[np.ndarray], out_shape, source: str,
                merge: bool = True, *, smooth=None):
        """Max over ``groups`` of the flattened ``x``: merged into the previous ReLU layer when
        ``x`` is its output, else a MASO layer whose pieces are the group's entries.

        Pass ``merge=False`` when the ReLU's output is used elsewhere too (a graph that fans
        out): merging replaces the ReLU layer's outputs by the pooled ones, so any other use of
        them would silently read the pooled values. A ``smooth`` record (a soft max-pool read
        as its max-pool limit) makes a layer of its own, never merged: its memberships are
        over the window's entries."""
        self._check_stage(x)
        merge = merge and smooth is None
        groups = [np.asarray(g, dtype=np.int64) for g in groups]
        n_out = math.prod(int(s) for s in out_shape)
        if len(groups) != n_out or any(g.ndim != 1 or g.size == 0 for g in groups):
            raise NetworkError(f"max-pooling: {len(groups)} groups (each non-empty) for an "
                               f"output of shape {tuple(out_shape)}")
        if (merge and self._last_relu is not None and self._last_relu[1] == len(self.layers) - 1
                and x.stage == len(self.layers) and _is_identity(x)):
            pre, index = self._last_relu
            W, b = pre.flat()
            name = self._name(index, f"{self.sources[index]} + {source}")
            merged = Layer.relu_maxpool(W, b, groups, name=name)
            merged.smooth = self.layers[index].smooth        # a smooth unit's ReLU limit
            self.layers[index] = merged
            self.sources[index] = f"{self.sources[index]} + {source}"
            self._last_relu = None
            check_elements(n_out * n_out, f"the identity map of a layer of {n_out} units")
            return AffineTensor(np.eye(n_out).reshape(tuple(out_shape) + (n_out,)),
                                np.zeros(out_shape), x.stage)
        W, b = x.flat()
        R = max(len(g) for g in groups)
        check_elements((n_out, R, W.shape[1]), "the max-pooling layer's pieces")
        A = np.empty((n_out, R, W.shape[1]))
        B = np.empty((n_out, R))
        for k, g in enumerate(groups):
            rows = np.concatenate([g, np.repeat(g[-1:], R - len(g))])
            A[k], B[k] = W[rows], b[rows]
        index = len(self.layers)
        layer = Layer(A, B, kind="maso", n_pieces=np.array([len(g) for g in groups]),
                      name=self._name(index, source), smooth=smooth)
        self.layers.append(layer)
        self.sources.append(source)
        self._last_relu = None
        return self._output(tuple(out_shape), n_out)

    def finish(self, x: AffineTensor, source: str) -> Network:
        """The network whose output is ``x`` (a linear head unless ``x`` is the last layer's
        output itself)."""
        self._check_stage(x)
        if not self.layers or not _is_identity(x) or x.stage != len(self.layers):
            W, b = x.flat()
            index = len(self.layers)
            self.layers.append(Layer.dense(W, b, "identity", name=self._name(index, source)))
            self.sources.append(source)
        return Network(self.layers)

    def _name(self, index: int, source: str) -> str:
        return f"layer {index + 1} ({self.label} {source})"

    def _output(self, shape, n) -> AffineTensor:
        check_elements(n * n, f"the identity map of a layer of {n} units")
        return AffineTensor(np.eye(n).reshape(tuple(shape) + (n,)), np.zeros(shape),
                            len(self.layers))

    def _check_stage(self, x: AffineTensor):
        if x.stage != len(self.layers):
            raise UnsupportedLayerError(
                "a tensor from before the last non-linear layer is used again (a skip "
                "connection across an activation): not a chain of MASO layers")


def _is_identity(x: AffineTensor) -> bool:
    W, b = x.flat()
    return W.shape[0] == W.shape[1] and np.array_equal(W, np.eye(W.shape[0])) and not b.any()


# ---------------------------------------------------------------------- tensor operations
def _window_params(kernel, stride, padding, dilation, what):
    """Kernel, stride, padding and dilation as Python ints, or a NetworkError naming the bad
    one (a zero stride would divide by zero, a negative pad would crop)."""
    try:
        kernel = tuple(int(k) for k in kernel)
        stride = tuple(int(s) for s in stride)
        padding = tuple(int(p) for p in padding)
        dilation = tuple(int(d) for d in dilation)
    except (TypeError, ValueError, OverflowError):
        raise NetworkError(f"{what}: kernel, stride, padding and dilation must be integers, "
                           f"got {kernel}, {stride}, {padding}, {dilation}") from None
    for name, values, n, lo in (("kernel", kernel, 2, 1), ("stride", stride, 2, 1),
                                ("padding", padding, 4, 0), ("dilation", dilation, 2, 1)):
        if len(values) != n or any(v < lo for v in values):
            raise NetworkError(f"{what}: {name} must be {n} integers >= {lo}, got {values}")
    return kernel, stride, padding, dilation


def _out_size(size, lo, hi, k, s, d):
    return (size + lo + hi - d * (k - 1) - 1) // s + 1


def conv2d(x: np.ndarray, weight, bias=None, stride=(1, 1), padding=(0, 0, 0, 0),
           dilation=(1, 1), groups: int = 1) -> np.ndarray:
    """2-D convolution (cross-correlation) of a batch ``x`` (N, C, H, W), float64, exact.

    ``padding`` is (top, left, bottom, right).
    """
    weight = np.asarray(weight, dtype=np.float64)
    N, C, H, W_ = x.shape
    F, Cg, kh, kw = weight.shape
    (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = _window_params(
        (kh, kw), stride, padding, dilation, "convolution")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise NetworkError(f"convolution: groups must be a positive integer, got {groups!r}")
    if C != Cg * groups or F % groups:
        raise NetworkError(f"convolution: {C} input channels do not match weight {weight.shape} "
                           f"with {groups} groups")
    Ho = _out_size(H, pt, pb, kh, sh, dh)
    Wo = _out_size(W_, pl, pr, kw, sw, dw)
    if Ho < 1 or Wo < 1:
        raise NetworkError(f"convolution: kernel {kh}x{kw} does not fit input {H}x{W_}")
    check_elements((max(N, 1), C, H + pt + pb, W_ + pl + pr), "the padded convolution input")
    check_elements((max(N, 1), F, Ho, Wo), "the convolution output")
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    out = np.zeros((N, F, Ho, Wo))
    fg = F // groups
    for g in range(groups):
        xs = xp[:, g * Cg:(g + 1) * Cg]
        wg = weight[g * fg:(g + 1) * fg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh: i * dh + sh * (Ho - 1) + 1: sh,
                           j * dw: j * dw + sw * (Wo - 1) + 1: sw]        # (N, Cg, Ho, Wo)
                out[:, g * fg:(g + 1) * fg] += np.einsum("nchw,fc->nfhw", patch, wg[:, :, i, j])
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return out


def pool_windows(shape, kernel, stride, padding=(0, 0, 0, 0), dilation=(1, 1)):
    """For a (C, H, W) tensor, the flat indices of every pooling window (padding excluded) and
    the output shape.

    Raises NetworkError for a non-positive kernel, stride or dilation, a negative pad, a window
    that lies entirely in the padding, or a window table past :data:`MAX_ELEMENTS` entries.
    """
    C, H, W = (int(s) for s in shape)
    (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = _window_params(
        kernel, stride, padding, dilation, "pooling")
    Ho = _out_size(H, pt, pb, kh, sh, dh)
    Wo = _out_size(W, pl, pr, kw, sw, dw)
    if Ho < 1 or Wo < 1:
        raise NetworkError(f"pooling: window {kh}x{kw} does not fit input {H}x{W}")
    check_elements((C, Ho, Wo, kh, kw), f"the pooling table ({C}x{Ho}x{Wo} windows of {kh}x{kw})")
    rows = (np.arange(Ho) * sh - pt)[:, None] + np.arange(kh) * dh          # (Ho, kh)
    cols = (np.arange(Wo) * sw - pl)[:, None] + np.arange(kw) * dw          # (Wo, kw)
    row_ok, col_ok = (rows >= 0) & (rows < H), (cols >= 0) & (cols < W)
    if not (row_ok.any(axis=1).all() and col_ok.any(axis=1).all()):
        raise NetworkError(f"pooling: with padding {(pt, pl, pb, pr)} some {kh}x{kw} windows "
                           "lie entirely in the padding")
    flat = (rows[:, None, :, None] * W + cols[None, :, None, :]).reshape(Ho * Wo, kh * kw)
    ok = (row_ok[:, None, :, None] & col_ok[None, :, None, :]).reshape(Ho * Wo, kh * kw)
    base = [f[m] for f, m in zip(flat, ok, strict=True)]
    windows = [b + c * H * W for c in range(C) for b in base]
    return windows, (C, Ho, Wo)


def average_pool(x: AffineTensor, windows, out_shape, window_size: int,
                 include_pad: bool) -> AffineTensor:
    """Average over each window (flat indices into ``x``); a padded window divides by
    ``window_size`` when ``include_pad``, else by its number of real entries."""
    from scipy import sparse

    n_in = math.prod(x.shape)
    sizes = np.array([len(w) for w in windows], dtype=np.int64)
    if sizes.size == 0 or sizes.min() < 1:
        raise NetworkError("average pooling: every window needs at least one entry")
    cols = np.concatenate(windows).astype(np.int64)
    rows = np.repeat(np.arange(len(windows)), sizes)
    vals = np.repeat(1.0 / (np.full(len(windows), float(window_size)) if include_pad
                            else sizes.astype(np.float64)), sizes)
    P = sparse.csr_matrix((vals, (rows, cols)), shape=(len(windows), n_in))
    out_shape = tuple(out_shape)

    def fn(T):
        n = T.shape[0]
        return np.asarray(P @ T.reshape(n, n_in).T).T.reshape((n,) + out_shape)
    return x.affine(fn)
