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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NetworkError, UnsupportedLayerError
from .layers import Layer
from .network import Network

__all__ = ["AffineTensor", "NetworkBuilder"]


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
        """Apply an affine map ``fn`` (batched over a leading axis): its offset lands in c."""
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
            return AffineTensor(self.M + other.M, self.c + other.c, self.stage)
        c = self.c + np.asarray(other, dtype=np.float64)
        M = np.broadcast_to(self.M, c.shape + (self.M.shape[-1],)).copy()
        return AffineTensor(M, c, self.stage)

    def scale(self, factor) -> AffineTensor:
        factor = np.asarray(factor, dtype=np.float64)
        c = self.c * factor
        M = np.broadcast_to(self.M, c.shape + (self.M.shape[-1],)) * factor[..., None]
        return AffineTensor(M, c, self.stage)

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        return self.M.reshape(-1, self.M.shape[-1]), self.c.reshape(-1)


class NetworkBuilder:
    """Collects layers while a graph is walked; see the module docstring."""

    def __init__(self, input_shape, label: str = "node"):
        self.label = label          # how a source is named: "node" (ONNX), "module" (torch)
        shape = tuple(int(s) for s in input_shape)
        if not shape or any(s < 1 for s in shape):
            raise NetworkError(f"input shape must have positive sizes, got {input_shape}")
        n = int(np.prod(shape))
        self.input_shape = shape
        self.layers: list[Layer] = []
        self.sources: list[str] = []
        self.input = AffineTensor(np.eye(n).reshape(shape + (n,)), np.zeros(shape), 0)
        self._last_relu: tuple[AffineTensor, int] | None = None   # (pre-activation, layer index)

    def activation(self, x: AffineTensor, kind: str, source: str) -> AffineTensor:
        """Close a dense layer ``kind`` (relu, leaky_relu:<a>, abs) on ``x``."""
        self._check_stage(x)
        W, b = x.flat()
        index = len(self.layers)
        self.layers.append(Layer.dense(W, b, kind, name=self._name(index, source)))
        self.sources.append(source)
        self._last_relu = (x, index) if kind == "relu" else None
        return self._output(x.shape, W.shape[0])

    def maxpool(self, x: AffineTensor, groups: list[np.ndarray], out_shape, source: str):
        """Max over ``groups`` of the flattened ``x``: merged into the previous ReLU layer when
        ``x`` is its output, else a MASO layer whose pieces are the group's entries."""
        self._check_stage(x)
        groups = [np.asarray(g, dtype=np.int64) for g in groups]
        n_out = int(np.prod(out_shape))
        if (self._last_relu is not None and self._last_relu[1] == len(self.layers) - 1
                and x.stage == len(self.layers) and _is_identity(x)):
            pre, index = self._last_relu
            W, b = pre.flat()
            name = self._name(index, f"{self.sources[index]} + {source}")
            self.layers[index] = Layer.relu_maxpool(W, b, groups, name=name)
            self.sources[index] = f"{self.sources[index]} + {source}"
            self._last_relu = None
            return AffineTensor(np.eye(n_out).reshape(tuple(out_shape) + (n_out,)),
                                np.zeros(out_shape), x.stage)
        W, b = x.flat()
        R = max(len(g) for g in groups)
        A = np.empty((n_out, R, W.shape[1]))
        B = np.empty((n_out, R))
        for k, g in enumerate(groups):
            rows = np.concatenate([g, np.repeat(g[-1:], R - len(g))])
            A[k], B[k] = W[rows], b[rows]
        index = len(self.layers)
        layer = Layer(A, B, kind="maso", n_pieces=np.array([len(g) for g in groups]),
                      name=self._name(index, source))
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
def conv2d(x: np.ndarray, weight, bias=None, stride=(1, 1), padding=(0, 0, 0, 0),
           dilation=(1, 1), groups: int = 1) -> np.ndarray:
    """2-D convolution (cross-correlation) of a batch ``x`` (N, C, H, W), float64, exact.

    ``padding`` is (top, left, bottom, right).
    """
    weight = np.asarray(weight, dtype=np.float64)
    N, C, H, W_ = x.shape
    F, Cg, kh, kw = weight.shape
    if C != Cg * groups or F % groups:
        raise NetworkError(f"convolution: {C} input channels do not match weight {weight.shape} "
                           f"with {groups} groups")
    pt, pl, pb, pr = padding
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    sh, sw = stride
    dh, dw = dilation
    Ho = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
    Wo = (W_ + pl + pr - dw * (kw - 1) - 1) // sw + 1
    if Ho < 1 or Wo < 1:
        raise NetworkError(f"convolution: kernel {kh}x{kw} does not fit input {H}x{W_}")
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
    the output shape."""
    C, H, W = shape
    kh, kw = kernel
    sh, sw = stride
    pt, pl, pb, pr = padding
    dh, dw = dilation
    Ho = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
    if Ho < 1 or Wo < 1:
        raise NetworkError(f"pooling: window {kh}x{kw} does not fit input {H}x{W}")
    windows = []
    for c in range(C):
        for oh in range(Ho):
            for ow in range(Wo):
                idx = []
                for i in range(kh):
                    for j in range(kw):
                        h = oh * sh - pt + i * dh
                        w = ow * sw - pl + j * dw
                        if 0 <= h < H and 0 <= w < W:
                            idx.append((c * H + h) * W + w)
                windows.append(np.array(idx, dtype=np.int64))
    return windows, (C, Ho, Wo)


def average_pool(x: AffineTensor, windows, out_shape, window_size: int,
                 include_pad: bool) -> AffineTensor:
    """Average over each window (flat indices into ``x``); a padded window divides by
    ``window_size`` when ``include_pad``, else by its number of real entries."""
    n_in = int(np.prod(x.shape))
    P = np.zeros((len(windows), n_in))
    for k, w in enumerate(windows):
        P[k, w] = 1.0 / (window_size if include_pad else len(w))
    out_shape = tuple(out_shape)
    return x.affine(lambda T: (T.reshape(T.shape[0], -1) @ P.T).reshape((T.shape[0],)
                                                                         + out_shape))
