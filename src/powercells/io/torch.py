"""PyTorch modules in: ``nn.Sequential`` (nested too) of piecewise-affine modules.

Supported: Linear, Conv2d (any stride, padding, dilation, groups; zero padding), BatchNorm1d /
BatchNorm2d in eval mode (folded), ReLU, LeakyReLU, Flatten, AvgPool2d, MaxPool2d (as MASO
pieces), Dropout, Identity. With ``hard_limit=True`` also the smooth activations SiLU, GELU
(both forms), Softplus, Hardswish, Mish and :class:`powercells.soft_vq.BetaVQ`, read as their
ReLU-type limit, and :class:`powercells.soft_vq.SoftMaxPool2d`, read as max-pooling (SPEC §7).
Weights are read in float64; the walk goes through
:class:`~powercells.network.builder.NetworkBuilder`, like the ONNX importer. Anything else (a
sigmoid or tanh, attention, batch norm in training mode, a custom module) raises an error that
names the module and its position.
"""

from __future__ import annotations

import numpy as np

from ..errors import NetworkError, UnsupportedLayerError
from ..network.builder import NetworkBuilder, average_pool, conv2d, pool_windows
from ..network.layers import HARD_LIMIT_HINT, SmoothActivation

__all__ = ["from_torch"]


def from_torch(module, input_shape, *, hard_limit: bool = False):
    """A :class:`~powercells.Network` equal to ``module`` on inputs of ``input_shape``.

    Parameters
    ----------
    module : torch.nn.Module
        An ``nn.Sequential`` (possibly nested) or a single supported module.
    input_shape : tuple of int
        The shape of one input without the batch axis, e.g. ``(784,)`` or ``(1, 28, 28)``. The
        network's input is that tensor flattened in C order.
    hard_limit : bool
        Read smooth activations (SiLU, GELU, Softplus, Hardswish, Mish, BetaVQ) as their
        ReLU-type limit and SoftMaxPool2d as max-pooling, with the same weights; each such
        layer records its smooth activation (:attr:`Network.hard_limit`, SPEC §7).

    Raises
    ------
    UnsupportedLayerError
        Naming the module (``"features.3 (Sigmoid)"``) that is not piecewise affine or not
        supported; for a smooth activation without ``hard_limit`` the message names the option.
    """
    try:
        from torch import nn
    except ImportError as exc:  # pragma: no cover - exercised without torch only
        raise NetworkError("from_torch needs torch") from exc
    builder = NetworkBuilder(input_shape, label="module")
    x = builder.input
    for path, mod in _leaves(module, nn):
        where = f"{path} ({type(mod).__name__})" if path else type(mod).__name__
        try:
            x = _apply(mod, x, builder, where, nn, hard_limit)
        except (UnsupportedLayerError, NetworkError) as exc:
            raise type(exc)(f"module {where}: {exc}") from None
    return builder.finish(x, "(output)")


def _leaves(module, nn, prefix=""):
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _leaves(child, nn, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix, module


def _np(t):
    return t.detach().cpu().double().numpy()


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _smooth(mod, nn):
    """(record, limit activation) of a smooth module with a MASO limit, (None, limit) for one
    that is piecewise-affine as it is (BetaVQ at beta = 1), or None."""
    from ..soft_vq import torch_module_class

    if isinstance(mod, nn.SiLU):
        return SmoothActivation("swish", 1.0), "relu"
    if isinstance(mod, nn.GELU):
        if mod.approximate == "tanh":
            return SmoothActivation("gelu_tanh"), "relu"
        return SmoothActivation("gelu", 1.0), "relu"
    if isinstance(mod, nn.Softplus):
        return SmoothActivation("softplus", float(mod.beta)), "relu"
    if isinstance(mod, nn.Hardswish):
        return SmoothActivation("hardswish", 1.0), "relu"
    if isinstance(mod, nn.Mish):
        return SmoothActivation("mish", 1.0), "relu"
    beta_vq = torch_module_class("BetaVQ")
    if beta_vq is not None and isinstance(mod, beta_vq):
        slope = mod.slope
        limit = "relu" if slope == 0 else "abs" if slope == -1 else f"leaky_relu:{slope!r}"
        return mod.smooth, limit
    return None


# smooth modules without a MASO limit, refused with or without hard_limit
_NO_LIMIT = ("Sigmoid", "Tanh", "Softmax", "Softmin", "LogSoftmax", "Hardsigmoid", "Hardtanh",
             "LogSigmoid", "Softsign", "Tanhshrink")


def _apply(mod, x, builder, where, nn, hard_limit=False):
    smooth = _smooth(mod, nn)
    if smooth is not None:
        record, limit = smooth
        if record is not None and not hard_limit:
            raise UnsupportedLayerError(f"{record.name} is smooth, not piecewise-affine; "
                                        f"{HARD_LIMIT_HINT} to use its {_limit_name(limit)} "
                                        "limit")
        return builder.activation(x, limit, where, smooth=record)
    if type(mod).__name__ == "SoftMaxPool2d":
        from ..soft_vq import torch_module_class

        if isinstance(mod, torch_module_class("SoftMaxPool2d")):
            record = mod.smooth
            if record is not None and not hard_limit:
                raise UnsupportedLayerError(f"{record.name} is smooth, not piecewise-affine; "
                                            f"{HARD_LIMIT_HINT} to use its max-pool limit")
            chw = _image(x)
            windows, out_shape = pool_windows(chw, mod.kernel_size, mod.stride)
            return builder.maxpool(x, windows, out_shape, where, smooth=record)
    if type(mod).__name__ in _NO_LIMIT:
        raise UnsupportedLayerError(f"{type(mod).__name__} is smooth, not piecewise-affine, and "
                                    "has no MASO limit (its sharp limit is not continuous); "
                                    "gated forms such as SiLU (x * sigmoid(x)) have one")
    if isinstance(mod, (nn.Identity, nn.Dropout)):
        return x
    if isinstance(mod, nn.Linear):
        W = _np(mod.weight)
        b = _np(mod.bias) if mod.bias is not None else 0.0
        if x.shape[-1] != W.shape[1]:
            raise NetworkError(f"expects {W.shape[1]} features, gets shape {x.shape}")
        return x.affine(lambda T: np.matmul(T, W.T)) + b
    if isinstance(mod, nn.Flatten):
        shape = x.shape
        start = mod.start_dim - 1 if mod.start_dim > 0 else mod.start_dim  # no batch axis here
        end = mod.end_dim - 1 if mod.end_dim > 0 else mod.end_dim
        start %= len(shape)
        end %= len(shape)
        return x.reshape(shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:])
    if isinstance(mod, nn.ReLU):
        return builder.activation(x, "relu", where)
    if isinstance(mod, nn.LeakyReLU):
        return builder.activation(x, f"leaky_relu:{mod.negative_slope!r}", where)
    if isinstance(mod, nn.Conv2d):
        if mod.padding_mode != "zeros":
            raise UnsupportedLayerError(f"padding_mode {mod.padding_mode!r} (only zeros)")
        if isinstance(mod.padding, str):
            raise UnsupportedLayerError("string padding; give the padding as numbers")
        ph, pw = _pair(mod.padding)
        W = _np(mod.weight)
        b = _np(mod.bias) if mod.bias is not None else None
        _image(x)
        return x.affine(lambda T: conv2d(T, W, b, _pair(mod.stride), (ph, pw, ph, pw),
                                         _pair(mod.dilation), mod.groups))
    if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if mod.training:
            raise UnsupportedLayerError("batch norm in training mode is not affine; call "
                                        "module.eval() first")
        if not mod.track_running_stats or mod.running_mean is None:
            raise UnsupportedLayerError("batch norm without running statistics")
        factor = 1.0 / np.sqrt(_np(mod.running_var) + mod.eps)
        shift = -_np(mod.running_mean) * factor
        if mod.affine:
            factor, shift = factor * _np(mod.weight), shift * _np(mod.weight) + _np(mod.bias)
        shape = (-1,) + (1,) * (len(x.shape) - 1)     # channels first, no batch axis
        return x.scale(factor.reshape(shape)) + shift.reshape(shape)
    if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
        chw = _image(x)
        kernel = _pair(mod.kernel_size)
        stride = _pair(mod.stride if mod.stride is not None else mod.kernel_size)
        ph, pw = _pair(mod.padding)
        if mod.ceil_mode:
            raise UnsupportedLayerError("ceil_mode=True is not supported")
        dilation = _pair(getattr(mod, "dilation", 1))
        windows, out_shape = pool_windows(chw, kernel, stride, (ph, pw, ph, pw), dilation)
        if isinstance(mod, nn.MaxPool2d):
            return builder.maxpool(x, windows, out_shape, where)
        if mod.divisor_override:
            raise UnsupportedLayerError("divisor_override is not supported")
        return average_pool(x, windows, out_shape, kernel[0] * kernel[1],
                            bool(mod.count_include_pad))
    raise UnsupportedLayerError(f"{type(mod).__name__} is not a supported piecewise-affine "
                                "module (Linear, Conv2d, BatchNorm1d/2d, ReLU, LeakyReLU, "
                                "Flatten, AvgPool2d, MaxPool2d, Dropout, Identity; with "
                                "hard_limit=True also SiLU, GELU, Softplus, Hardswish, Mish, "
                                "BetaVQ, SoftMaxPool2d)")


def _limit_name(limit: str) -> str:
    kind, _, slope = limit.partition(":")
    return {"relu": "ReLU", "abs": "abs"}.get(kind, f"leaky-ReLU (slope {slope})")


def _image(x):
    if len(x.shape) != 3:
        raise NetworkError(f"expects an image (C, H, W), gets shape {x.shape}")
    return x.shape
