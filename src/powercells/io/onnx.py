"""ONNX models in: a graph of affine operations and piecewise-affine activations becomes a chain
of MASO layers (see :mod:`powercells.network.builder`).

Supported operators: Gemm (transA/transB, alpha/beta), MatMul in both orientations (``x @ W``
and ``W @ x``), Add / Sub / Mul / Div with constants (and Add / Sub of two tensors between the
same activations), Neg, Relu, LeakyRelu, Conv, MaxPool, AveragePool, GlobalAveragePool,
BatchNormalization (inference form), Flatten, Reshape, Squeeze / Unsqueeze, Identity, Dropout,
Constant. IR-3 files whose ``graph.input`` also lists the weights are read (the real input is
the one that is not an initializer). Anything else raises an error naming the node and its op.
"""

from __future__ import annotations

import numpy as np

from ..errors import NetworkError, UnsupportedLayerError
from ..network.builder import (
    AffineTensor,
    NetworkBuilder,
    average_pool,
    conv2d,
    pool_windows,
)

__all__ = ["from_onnx"]


def from_onnx(path):
    """Load an ONNX model as a :class:`~powercells.Network` (float64).

    The network's input is the model's input flattened in C order (batch dimension of size 1
    dropped from the count); its layers are named after the ONNX nodes that produced their
    pre-activations, e.g. ``"layer 3 (node Operation_3_Add)"``.

    Raises
    ------
    NetworkError
        For an unreadable file, several inputs or outputs, or inconsistent shapes.
    UnsupportedLayerError
        For an operator that is not piecewise affine or not supported, naming the node.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:  # pragma: no cover - exercised without onnx only
        raise NetworkError("reading ONNX needs the onnx package: pip install 'powercells[onnx]'"
                           ) from exc
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises several types for bad files
        raise NetworkError(f"{path}: cannot read ONNX model ({exc})") from None
    graph = model.graph
    const = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in const]
    if len(inputs) != 1:
        raise NetworkError(f"{path}: expected one input, found {[i.name for i in inputs]}")
    if len(graph.output) != 1:
        raise NetworkError(f"{path}: expected one output, found {[o.name for o in graph.output]}")
    dims = [d.dim_value if d.dim_value > 0 else 1 for d in inputs[0].type.tensor_type.shape.dim]
    builder = NetworkBuilder(dims or [1])
    env: dict[str, AffineTensor] = {inputs[0].name: builder.input}
    producer = {inputs[0].name: inputs[0].name}
    for node in graph.node:
        name = node.name or (node.output[0] if node.output else node.op_type)
        if node.op_type in _FOLD and not any(i in env for i in node.input):
            # weights computed inside the graph: evaluate on the constants
            try:
                const[node.output[0]] = np.asarray(_FOLD[node.op_type](
                    *[const[i] for i in node.input if i]), dtype=np.float64)
            except KeyError as exc:
                raise NetworkError(f"ONNX node {name!r}: input {exc} is not produced before it"
                                   ) from None
            continue
        handler = _OPS.get(node.op_type)
        if handler is None:
            raise UnsupportedLayerError(
                f"ONNX node {name!r}: operator {node.op_type} is not supported (piecewise-affine "
                f"operators: {', '.join(sorted(_OPS))})")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        args = []
        for i in node.input:
            if i == "":
                args.append(None)
            elif i in env:
                args.append(env[i])
            elif i in const:
                args.append(const[i])
            else:
                raise NetworkError(f"ONNX node {name!r}: input {i!r} is not produced before it")
        try:
            out = handler(args, attrs, builder, lambda t: producer.get(_input_name(node, t), name),
                          name)
        except (UnsupportedLayerError, NetworkError) as exc:
            raise type(exc)(f"ONNX node {name!r} ({node.op_type}): {exc}") from None
        except (ValueError, IndexError) as exc:
            raise NetworkError(f"ONNX node {name!r} ({node.op_type}): {exc}") from None
        if isinstance(out, AffineTensor):
            env[node.output[0]] = out
            producer[node.output[0]] = name
        else:
            const[node.output[0]] = np.asarray(out, dtype=np.float64)
    out_name = graph.output[0].name
    if out_name not in env:
        raise NetworkError(f"{path}: the output {out_name!r} does not depend on the input")
    return builder.finish(env[out_name], producer[out_name])


def _input_name(node, k):
    return node.input[k] if k < len(node.input) else None


# ---------------------------------------------------------------------- operators
def _tensor_and_const(args):
    a, b = args[0], args[1]
    if isinstance(a, AffineTensor) and not isinstance(b, AffineTensor):
        return a, b, False
    if isinstance(b, AffineTensor) and not isinstance(a, AffineTensor):
        return b, a, True
    if isinstance(a, AffineTensor):
        return a, b, None
    raise NetworkError("no input depends on the network input")


def _add(args, attrs, builder, src, name):
    x, other, _ = _tensor_and_const(args)
    return x + other


def _sub(args, attrs, builder, src, name):
    x, other, swapped = _tensor_and_const(args)
    if swapped is None:                 # tensor - tensor
        return x + other.scale(-1.0)
    if swapped:                         # constant - tensor
        return x.scale(-1.0) + other
    return x + (-np.asarray(other))     # tensor - constant


def _mul(args, attrs, builder, src, name):
    x, other, swapped = _tensor_and_const(args)
    if swapped is None:
        raise UnsupportedLayerError("a product of two tensors is not affine")
    return x.scale(other)


def _div(args, attrs, builder, src, name):
    x, other, swapped = _tensor_and_const(args)
    if swapped is not False:
        raise UnsupportedLayerError("dividing by a tensor is not affine")
    return x.scale(1.0 / np.asarray(other))


def _neg(args, attrs, builder, src, name):
    return args[0].scale(-1.0)


def _matmul(args, attrs, builder, src, name):
    x, W, swapped = _tensor_and_const(args)
    if swapped is None:
        raise UnsupportedLayerError("a product of two tensors is not affine")
    W = np.asarray(W)
    if not swapped:                                   # x @ W
        return x.affine(lambda T: np.matmul(T, W))
    if len(x.shape) == 1:                             # W @ x with x a vector
        return x.affine(lambda T: T @ W.T)
    return x.affine(lambda T: np.matmul(W, T))        # W @ x, batched over the leading axis


def _gemm(args, attrs, builder, src, name):
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    ta, tb = attrs.get("transA", 0), attrs.get("transB", 0)
    a, b = args[0], args[1]
    c = args[2] if len(args) > 2 and args[2] is not None else 0.0
    if isinstance(c, AffineTensor):
        raise UnsupportedLayerError("Gemm with a tensor as C is not supported")
    if isinstance(a, AffineTensor) and not isinstance(b, AffineTensor):
        B = np.asarray(b).T if tb else np.asarray(b)

        def fn(T):
            A = np.swapaxes(T, -1, -2) if ta else T
            return alpha * np.matmul(A, B)
        return a.affine(fn) + beta * np.asarray(c)
    if isinstance(b, AffineTensor) and not isinstance(a, AffineTensor):
        A = np.asarray(a).T if ta else np.asarray(a)

        def fn(T):
            Bm = np.swapaxes(T, -1, -2) if tb else T
            return alpha * np.matmul(A, Bm)
        return b.affine(fn) + beta * np.asarray(c)
    raise UnsupportedLayerError("Gemm needs exactly one tensor operand")


def _relu(args, attrs, builder, src, name):
    return builder.activation(args[0], "relu", src(0))


def _leaky(args, attrs, builder, src, name):
    return builder.activation(args[0], f"leaky_relu:{attrs.get('alpha', 0.01)!r}", src(0))


def _identity(args, attrs, builder, src, name):
    return args[0]


def _flatten(args, attrs, builder, src, name):
    x = args[0]
    axis = attrs.get("axis", 1)
    shape = x.shape
    axis = axis + len(shape) if axis < 0 else axis
    return x.reshape((int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))))


def _reshape(args, attrs, builder, src, name):
    x, target = args[0], np.asarray(args[1]).astype(np.int64)
    shape = [x.shape[i] if (t == 0 and not attrs.get("allowzero", 0)) else int(t)
             for i, t in enumerate(target)]
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1]))
        shape[shape.index(-1)] = int(np.prod(x.shape)) // max(known, 1)
    if int(np.prod(shape)) != int(np.prod(x.shape)):
        raise NetworkError(f"cannot reshape {x.shape} to {tuple(shape)}")
    return x.reshape(tuple(shape))


def _squeeze(args, attrs, builder, src, name):
    x = args[0]
    axes = attrs.get("axes")
    if axes is None and len(args) > 1 and args[1] is not None:
        axes = np.asarray(args[1]).astype(int).tolist()
    shape = list(x.shape)
    if axes is None:
        shape = [s for s in shape if s != 1]
    else:
        axes = sorted(a % len(shape) for a in axes)
        shape = [s for i, s in enumerate(shape) if i not in axes]
    return x.reshape(tuple(shape))


def _unsqueeze(args, attrs, builder, src, name):
    x = args[0]
    axes = attrs.get("axes")
    if axes is None:
        axes = np.asarray(args[1]).astype(int).tolist()
    shape = list(x.shape)
    for a in sorted(a % (len(shape) + len(axes)) for a in axes):
        shape.insert(a, 1)
    return x.reshape(tuple(shape))


def _image(x: AffineTensor):
    """(N=1, C, H, W) or (C, H, W) -> (C, H, W) and a function restoring the batch axis."""
    if len(x.shape) == 4 and x.shape[0] == 1:
        return x.shape[1:], True
    if len(x.shape) == 3:
        return x.shape, False
    raise NetworkError(f"expected an image tensor (1, C, H, W), got shape {x.shape}")


def _pads(attrs, chw, kernel, stride, dilation):
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        p = list(attrs.get("pads", [0, 0, 0, 0]))
        return (p[0], p[1], p[2], p[3])
    if auto == "VALID":
        return (0, 0, 0, 0)
    pads = []
    for size, k, s, d in zip(chw[1:], kernel, stride, dilation):
        out = -(-size // s)
        total = max(0, (out - 1) * s + d * (k - 1) + 1 - size)
        lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
        pads.append((lo, total - lo))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def _conv(args, attrs, builder, src, name):
    x, weight = args[0], np.asarray(args[1])
    bias = None if len(args) < 3 or args[2] is None else np.asarray(args[2])
    if weight.ndim != 4:
        raise UnsupportedLayerError(f"only 2-D convolutions are supported (weight {weight.shape})")
    chw, batched = _image(x)
    kernel = weight.shape[2:]
    stride = tuple(attrs.get("strides", [1, 1]))
    dilation = tuple(attrs.get("dilations", [1, 1]))
    pads = _pads(attrs, chw, kernel, stride, dilation)
    group = attrs.get("group", 1)

    def fn(T):
        n = T.shape[0]
        out = conv2d(T.reshape((n,) + tuple(chw)), weight, bias, stride, pads, dilation, group)
        return out.reshape((n, 1) + out.shape[1:]) if batched else out
    return x.affine(fn)


def _batchnorm(args, attrs, builder, src, name):
    x, scale, bias, mean, var = args[:5]
    eps = attrs.get("epsilon", 1e-5)
    if attrs.get("training_mode", 0):
        raise UnsupportedLayerError("batch normalisation in training mode is not affine")
    factor = np.asarray(scale) / np.sqrt(np.asarray(var) + eps)
    shift = np.asarray(bias) - np.asarray(mean) * factor
    shape = [1] * len(x.shape)
    shape[1 if len(x.shape) > 1 else 0] = -1
    return x.scale(factor.reshape(shape)) + shift.reshape(shape)


def _pool_setup(x, attrs):
    chw, batched = _image(x)
    kernel = tuple(attrs["kernel_shape"])
    stride = tuple(attrs.get("strides", [1, 1]))
    dilation = tuple(attrs.get("dilations", [1, 1]))
    if attrs.get("ceil_mode", 0):
        raise UnsupportedLayerError("pooling with ceil_mode=1 is not supported")
    pads = _pads(attrs, chw, kernel, stride, dilation)
    windows, out_chw = pool_windows(chw, kernel, stride, pads, dilation)
    out_shape = ((1,) + out_chw) if batched else out_chw
    return windows, out_shape, kernel


def _maxpool(args, attrs, builder, src, name):
    windows, out_shape, _ = _pool_setup(args[0], attrs)
    return builder.maxpool(args[0], windows, out_shape, name)


def _avgpool(args, attrs, builder, src, name):
    x = args[0]
    windows, out_shape, kernel = _pool_setup(x, attrs)
    return average_pool(x, windows, out_shape, kernel[0] * kernel[1],
                        bool(attrs.get("count_include_pad", 0)))


def _global_avgpool(args, attrs, builder, src, name):
    x = args[0]
    chw, batched = _image(x)
    C = chw[0]
    out = ((1,) if batched else ()) + (C, 1, 1)
    return x.affine(lambda T: T.reshape((T.shape[0], C, -1)).mean(axis=2).reshape(
        (T.shape[0],) + out))


def _constant(args, attrs, builder, src, name):
    from onnx import numpy_helper

    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"]).astype(np.float64)
    for key in ("value_float", "value_int"):
        if key in attrs:
            return np.asarray(attrs[key], dtype=np.float64)
    for key in ("value_floats", "value_ints"):
        if key in attrs:
            return np.asarray(list(attrs[key]), dtype=np.float64)
    raise UnsupportedLayerError("Constant without a numeric value")


_OPS = {
    "Add": _add, "Sub": _sub, "Mul": _mul, "Div": _div, "Neg": _neg,
    "MatMul": _matmul, "Gemm": _gemm, "Relu": _relu, "LeakyRelu": _leaky,
    "Identity": _identity, "Dropout": _identity, "Flatten": _flatten, "Reshape": _reshape,
    "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Conv": _conv,
    "BatchNormalization": _batchnorm, "MaxPool": _maxpool, "AveragePool": _avgpool,
    "GlobalAveragePool": _global_avgpool, "Constant": _constant,
}

# operators evaluated on constants when no input depends on the network input
_FOLD = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
    "Neg": np.negative, "MatMul": np.matmul, "Identity": lambda a: a,
    "Transpose": np.transpose, "Sqrt": np.sqrt,
}
