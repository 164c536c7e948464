"""ONNX import of hostile and malformed files: every file either loads as a Network or raises
NetworkError (UnsupportedLayerError) with one line naming the file and the node, initializer or
attribute; nothing else escapes, nothing hangs, nothing allocates absurd memory, and external
data outside the model's folder is never read."""

import builtins
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import powercells as pc
from powercells.errors import NetworkError, UnsupportedLayerError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper

import powercells.io.onnx as onnx_io

H = helper.make_node
RNG = np.random.default_rng(11)
W1 = RNG.normal(size=(4, 6))          # x (1, 4) @ W1 -> (1, 6)
B1 = RNG.normal(size=6)
W2 = RNG.normal(size=(6, 3))


# ---------------------------------------------------------------------- helpers
def init(name, value):
    value = np.asarray(value)
    if value.dtype.kind not in "iu":
        value = value.astype(np.float64)
    return numpy_helper.from_array(value, name)


def model_of(nodes, inits=(), in_shape=(1, 4), out_name="y", opset=13, elem=TensorProto.DOUBLE,
             inputs=None, outputs=None, opsets=None):
    inputs = inputs if inputs is not None else [
        helper.make_tensor_value_info("x", elem, list(in_shape))]
    outputs = outputs if outputs is not None else [
        helper.make_tensor_value_info(out_name, TensorProto.DOUBLE, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    opsets = opsets if opsets is not None else [helper.make_opsetid("", opset)]
    return helper.make_model(graph, opset_imports=opsets)


def dense_model():
    return model_of([H("MatMul", ["x", "W1"], ["h"], name="mm1"), H("Add", ["h", "B1"], ["a"]),
                     H("Relu", ["a"], ["r"], name="relu1"),
                     H("MatMul", ["r", "W2"], ["y"], name="mm2")],
                    [init("W1", W1), init("B1", B1), init("W2", W2)])


def conv_nodes(**conv):
    return [H("Conv", ["x", "Wc", "Bc"], ["c"], name="conv", kernel_shape=[3, 3], **conv),
            H("Relu", ["c"], ["r"]), H("Flatten", ["r"], ["y"])]


def conv_model(**conv):
    return model_of(conv_nodes(**conv), [init("Wc", RNG.normal(size=(4, 2, 3, 3))),
                                         init("Bc", RNG.normal(size=4))], in_shape=(1, 2, 6, 5))


def pool_model(op="MaxPool", **pool):
    return model_of([H("Conv", ["x", "Wc"], ["c"], name="conv"), H("Relu", ["c"], ["r"]),
                     H(op, ["r"], ["p"], name="pool", **pool), H("Flatten", ["p"], ["y"])],
                    [init("Wc", RNG.normal(size=(2, 2, 1, 1)))], in_shape=(1, 2, 6, 5))


def write(model_or_bytes, folder, name="m.onnx"):
    path = Path(folder) / name
    data = model_or_bytes if isinstance(model_or_bytes, bytes) else \
        model_or_bytes.SerializeToString()
    path.write_bytes(data)
    return path


def refuses(path, match, cls=NetworkError):
    """The load raises ``cls`` with one line that names the file and matches ``match``."""
    with pytest.raises(cls, match=match) as info:
        pc.load(path)
    msg = str(info.value)
    assert "\n" not in msg and "\r" not in msg, msg
    shown = str(path) if str(path).isprintable() else repr(str(path))
    assert msg.startswith(shown + ": "), msg
    assert len(msg) < 2100
    return msg


def raw_tensor(name, data_type, dims, raw=None, **fields):
    t = TensorProto()
    t.name, t.data_type = name, data_type
    t.dims.extend(dims)
    if raw is not None:
        t.raw_data = raw
    for field, values in fields.items():
        getattr(t, field).extend(values)
    return t


def test_valid_models_still_load(tmp_path):
    for k, model in enumerate([dense_model(), conv_model(), pool_model(kernel_shape=[2, 2]),
                               pool_model("AveragePool", kernel_shape=[2, 2], pads=[1, 1, 1, 1],
                                          count_include_pad=1)]):
        net = pc.load(write(model, tmp_path, f"ok{k}.onnx"))
        assert np.all(np.isfinite(net.forward(np.zeros((1, net.input_dim)))))


# ---------------------------------------------------------------------- 1. initializers
def _init_case(case):
    """A model whose initializer W (x @ W, W of shape (4, 3)) is hostile."""
    raw12 = np.ones(12, dtype=np.float32).tobytes()
    if case == "dims_vs_raw":
        t = raw_tensor("W", TensorProto.FLOAT, [1000, 5], raw=np.ones(10, np.float32).tobytes())
    elif case == "dims_vs_typed":
        t = raw_tensor("W", TensorProto.FLOAT, [4, 3], float_data=[1.0, 2.0, 3.0])
    elif case == "huge_dims":
        t = raw_tensor("W", TensorProto.FLOAT, [2**31, 2**31], raw=raw12)
    elif case == "huge_dims_no_data":
        t = raw_tensor("W", TensorProto.DOUBLE, [2**40])
    elif case == "negative_dims":
        t = raw_tensor("W", TensorProto.FLOAT, [-4, -3], raw=raw12)
    elif case == "rank_20":
        t = raw_tensor("W", TensorProto.FLOAT, [1] * 20, raw=raw12[:4])
    elif case == "string":
        t = raw_tensor("W", TensorProto.STRING, [4, 3], string_data=[b"a"] * 12)
    elif case == "complex64":
        t = raw_tensor("W", TensorProto.COMPLEX64, [4, 3], raw=b"\0" * 96)
    elif case == "complex128":
        t = numpy_helper.from_array(np.ones((4, 3), dtype=np.complex128) * 1j, "W")
    elif case == "float8":
        t = raw_tensor("W", TensorProto.FLOAT8E4M3FN, [4, 3], raw=b"\1" * 12)
    elif case == "int4":
        t = raw_tensor("W", TensorProto.INT4, [4, 3], raw=b"\1" * 6)
    elif case == "undefined":
        t = raw_tensor("W", TensorProto.UNDEFINED, [4, 3], raw=raw12)
    elif case == "unknown_type":
        t = raw_tensor("W", 99, [4, 3], raw=raw12)
    elif case == "no_data":
        t = raw_tensor("W", TensorProto.FLOAT, [4, 3])
    elif case == "two_fields":
        t = raw_tensor("W", TensorProto.FLOAT, [4, 3], raw=raw12, float_data=[1.0] * 12)
    elif case == "wrong_field":
        t = raw_tensor("W", TensorProto.FLOAT, [4, 3], int64_data=[1] * 12)
    elif case == "segment":
        t = raw_tensor("W", TensorProto.FLOAT, [4, 3], raw=raw12)
        t.segment.begin, t.segment.end = 0, 12
    elif case == "nan":
        t = init("W", np.where(np.eye(4, 3) > 0, np.nan, 1.0))
    elif case == "inf":
        t = init("W", np.full((4, 3), -np.inf))
    else:
        raise AssertionError(case)
    return model_of([H("MatMul", ["x", "W"], ["y"], name="mm")], [t])


INIT_CASES = {
    "dims_vs_raw": "initializer 'W'.*need 20000 bytes, raw_data holds 40",
    "dims_vs_typed": "initializer 'W'.*12 elements, float_data holds 3",
    "huge_dims": "initializer 'W'.*more than the limit",
    "huge_dims_no_data": "initializer 'W'.*more than the limit",
    "negative_dims": "initializer 'W'.*negative dimension",
    "rank_20": "initializer 'W'.*20 dimensions",
    "string": "initializer 'W'.*STRING is not supported",
    "complex64": "initializer 'W'.*COMPLEX64 is not supported",
    "complex128": "initializer 'W'.*COMPLEX128 is not supported",
    "float8": "initializer 'W'.*FLOAT8E4M3FN is not supported",
    "int4": "initializer 'W'.*INT4 is not supported",
    "undefined": "initializer 'W'.*UNDEFINED is not supported",
    "unknown_type": "initializer 'W'.*unknown data type 99",
    "no_data": "initializer 'W'.*holds no data",
    "two_fields": "initializer 'W'.*several fields",
    "wrong_field": "initializer 'W'.*FLOAT values stored in int64_data",
    "segment": "initializer 'W'.*segmented",
    "nan": r"initializer 'W'.*entry \(0, 0\) is nan",
    "inf": r"initializer 'W'.*is -inf",
}


@pytest.mark.parametrize("case", sorted(INIT_CASES))
def test_hostile_initializers(case, tmp_path):
    refuses(write(_init_case(case), tmp_path), INIT_CASES[case])


def test_complex_weights_refused_without_a_cast_warning(tmp_path, recwarn):
    refuses(write(_init_case("complex128"), tmp_path), "COMPLEX128")
    assert not [w for w in recwarn if "Complex" in type(w.message).__name__]


def test_small_float_types_load(tmp_path):
    """float16 / bfloat16 / integer initializers are real numbers: they load."""
    for k, dt in enumerate([TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.INT8]):
        t = helper.make_tensor("W", dt, [4, 3], [1, 2, 3, 4] * 3)
        net = pc.load(write(model_of([H("MatMul", ["x", "W"], ["y"])], [t]), tmp_path,
                            f"t{k}.onnx"))
        assert np.allclose(net.forward(np.eye(4))[:, 0], [1, 4, 3, 2])


HUGE_CASES = {
    # Constant nodes with hostile tensors
    "constant_huge": ([H("Constant", [], ["W"], name="cst",
                         value=raw_tensor("v", TensorProto.FLOAT, [2**20, 2**20])),
                       H("MatMul", ["x", "W"], ["y"])], {}, (1, 4),
                      "node 'cst'.*attribute 'value'.*more than the limit"),
    "constant_short": ([H("Constant", [], ["W"], name="cst",
                          value=raw_tensor("v", TensorProto.DOUBLE, [4, 3], raw=b"\0" * 8)),
                        H("MatMul", ["x", "W"], ["y"])], {}, (1, 4),
                       "node 'cst'.*attribute 'value'.*need 96 bytes, raw_data holds 8"),
    # folding two constants into a 2**30-entry product
    "fold_broadcast": ([H("Add", ["a", "b"], ["W"], name="fold"),
                        H("MatMul", ["x", "W"], ["y"])],
                       {"a": np.zeros((2**15, 1)), "b": np.zeros((1, 2**15))}, (1, 4),
                       "node 'fold'.*more than the limit"),
    # broadcasting the tensor against a tall constant: (2**17, 64) entries x 64
    "add_broadcast": ([H("Add", ["x", "c"], ["y"], name="bcast")],
                      {"c": np.zeros((2**17, 1))}, (1, 64),
                      "node 'bcast'.*more than the limit"),
    # an outer product: (1024, 1) @ (1, 1024) for each of 1024 input coordinates
    "matmul_outer": ([H("MatMul", ["x", "W"], ["y"], name="outer")],
                     {"W": np.ones((1, 1024))}, (1024, 1),
                     "node 'outer'.*more than the limit"),
    # a layer of 2**15 units from one input: its identity map would be 2**30 entries
    "wide_layer": ([H("MatMul", ["x", "W"], ["h"]), H("Relu", ["h"], ["y"], name="wide")],
                   {"W": np.ones((1, 2**15))}, (1, 1),
                   "node 'wide'.*identity map of a layer of 32768 units"),
    # a Reshape to a huge shape from a small tensor
    "reshape_huge": ([H("Reshape", ["x", "s"], ["y"], name="rs")],
                     {"s": np.array([2**31, 2**31])}, (1, 4), "node 'rs'.*cannot reshape"),
}


@pytest.mark.parametrize("case", sorted(HUGE_CASES))
def test_huge_tensors_refused_before_allocating(case, tmp_path):
    nodes, inits, shape, match = HUGE_CASES[case]
    model = model_of(nodes, [init(k, v) for k, v in inits.items()], in_shape=shape)
    start = time.perf_counter()
    refuses(write(model, tmp_path), match)
    assert time.perf_counter() - start < 10


# ---------------------------------------------------------------------- 2. conv / pooling
CONV_CASES = {
    "strides_zero": (dict(strides=[0, 0]), "node 'conv'.*'strides' must be integers >= 1"),
    "strides_negative": (dict(strides=[-1, 1]), "'strides' must be integers >= 1"),
    "strides_length": (dict(strides=[1]), "'strides' must have 2 entries"),
    "dilations_zero": (dict(dilations=[0, 1]), "'dilations' must be integers >= 1"),
    "dilations_length": (dict(dilations=[1, 1, 1]), "'dilations' must have 2 entries"),
    "pads_negative": (dict(pads=[-1, 0, 0, 0]), "'pads' must be integers >= 0"),
    "pads_length": (dict(pads=[1, 1]), "'pads' must have 4 entries"),
    "pads_huge": (dict(pads=[2**40, 0, 2**40, 0]), "node 'conv'.*more than the limit"),
    "group_not_dividing": (dict(group=3), "'group' 3"),
    "group_zero": (dict(group=0), "'group' must be >= 1"),
    "group_negative": (dict(group=-2), "'group' must be >= 1"),
    "auto_pad_junk": (dict(auto_pad="JUNK"), "'auto_pad' must be one of"),
    "kernel_zero": (dict(kernel_shape=[0, 0]), "'kernel_shape' must be integers >= 1"),
    "kernel_length": (dict(kernel_shape=[3]), "'kernel_shape' must have 2 entries"),
    "kernel_mismatch": (dict(kernel_shape=[2, 2]), "'kernel_shape' .* does not match"),
    "kernel_too_big": (dict(dilations=[9, 9]), "node 'conv'.*does not fit"),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_hostile_conv_attributes(case, tmp_path):
    conv, match = CONV_CASES[case]
    kernel = conv.pop("kernel_shape", [3, 3])
    model = conv_model(**conv)
    attrs = model.graph.node[0].attribute
    for a in attrs:
        if a.name == "kernel_shape":
            del a.ints[:]
            a.ints.extend(kernel)
    refuses(write(model, tmp_path), match)


POOL_CASES = {
    "no_kernel": ("MaxPool", dict(), "checker.*'kernel_shape' is missing.*node 'pool'"),
    "kernel_zero": ("MaxPool", dict(kernel_shape=[0, 2]), "'kernel_shape' must be integers"),
    "kernel_3d": ("MaxPool", dict(kernel_shape=[2, 2, 2]), "only 2-D pooling"),
    "strides_zero": ("MaxPool", dict(kernel_shape=[2, 2], strides=[0, 0]), "'strides'"),
    "avg_strides_zero": ("AveragePool", dict(kernel_shape=[2, 2], strides=[1, 0]),
                         "node 'pool'.*'strides'"),
    "dilations_zero": ("MaxPool", dict(kernel_shape=[2, 2], dilations=[0, 0]), "'dilations'"),
    "pads_negative": ("MaxPool", dict(kernel_shape=[2, 2], pads=[0, -1, 0, 0]), "'pads'"),
    "pads_length": ("AveragePool", dict(kernel_shape=[2, 2], pads=[0, 0, 0]), "'pads'"),
    "pads_all_padding": ("MaxPool", dict(kernel_shape=[2, 2], pads=[5, 5, 5, 5]),
                         "entirely in the padding"),
    "avg_all_padding": ("AveragePool", dict(kernel_shape=[2, 2], pads=[3, 0, 3, 0],
                                            count_include_pad=1), "entirely in the padding"),
    "auto_pad_junk": ("MaxPool", dict(kernel_shape=[2, 2], auto_pad="SAME"), "'auto_pad'"),
    "ceil_mode": ("MaxPool", dict(kernel_shape=[2, 2], ceil_mode=1), "ceil_mode"),
    "ceil_mode_junk": ("MaxPool", dict(kernel_shape=[2, 2], ceil_mode=7),
                       r"'ceil_mode' must be in \[0, 1\]"),
    "count_include_pad_junk": ("AveragePool", dict(kernel_shape=[2, 2], count_include_pad=-1),
                               "'count_include_pad'"),
    "kernel_huge": ("MaxPool", dict(kernel_shape=[2**40, 2**40]), "does not fit"),
    "window_table_huge": ("MaxPool", dict(kernel_shape=[2**13, 2**13],
                                          pads=[2**13 - 1] * 4), "more than the limit"),
    "dilation_huge": ("MaxPool", dict(kernel_shape=[2, 2], dilations=[2**40, 2**40],
                                      pads=[2**40] * 4), "more than the limit"),
}


@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_hostile_pool_attributes(case, tmp_path):
    op, pool, match = POOL_CASES[case]
    cls = UnsupportedLayerError if case in ("kernel_3d", "ceil_mode") else NetworkError
    start = time.perf_counter()
    refuses(write(pool_model(op, **pool), tmp_path), match, cls)
    assert time.perf_counter() - start < 10


def test_maxpool_does_not_merge_into_a_relu_read_elsewhere(tmp_path):
    """Merging the max-pool into the ReLU layer replaces the ReLU's outputs by the pooled ones;
    with a second reader of the ReLU (here an Add) that used to give a wrong network silently
    (the Add read the pooled values). Now the pool is its own MASO layer and the Add, which
    mixes values from both sides of it, is refused by name."""
    model = model_of([H("Conv", ["x", "Wc"], ["c"]), H("Relu", ["c"], ["r"]),
                      H("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], pads=[0, 0, 1, 1]),
                      H("Add", ["r", "p"], ["s"], name="fanout"), H("Flatten", ["s"], ["y"])],
                     [init("Wc", RNG.normal(size=(2, 1, 1, 1)))], in_shape=(1, 1, 3, 3))
    refuses(write(model, tmp_path), "node 'fanout'.*skip connection", UnsupportedLayerError)
    # a sole reader still merges
    single = model_of([H("Conv", ["x", "Wc"], ["c"]), H("Relu", ["c"], ["r"]),
                       H("MaxPool", ["r"], ["p"], kernel_shape=[2, 2]), H("Flatten", ["p"], ["y"])],
                      [init("Wc", RNG.normal(size=(2, 1, 1, 1)))], in_shape=(1, 1, 3, 3))
    assert [la.kind for la in pc.load(write(single, tmp_path, "s.onnx")).layers] == [
        "relu_maxpool"]


@pytest.mark.parametrize("xs,ws,order", [
    ((4,), (3, 4, 2), "xW"), ((2, 4), (3, 4, 5), "xW"), ((4,), (3, 2, 4), "Wx"),
    ((4, 2), (3, 5, 4), "Wx"), ((4,), (2, 4), "Wx"), ((1, 4, 2), (3, 5, 4), "Wx")])
def test_matmul_with_a_constant_of_higher_rank(xs, ws, order, tmp_path):
    """The batch axis goes in front of W's extra axes, as numpy's broadcasting wants (these
    were refused with confusing errors); the network equals numpy's product on every sample."""
    W = RNG.normal(size=ws)
    model = model_of([H("MatMul", ["x", "W"] if order == "xW" else ["W", "x"], ["y"])],
                     [init("W", W)], in_shape=xs)
    net = pc.load(write(model, tmp_path))
    X = RNG.normal(size=(3, int(np.prod(xs))))
    ref = np.stack([(x.reshape(xs) @ W if order == "xW" else W @ x.reshape(xs)).ravel()
                    for x in X])
    assert np.abs(net.forward(X) - ref).max() < 1e-12


def test_pooling_windows_unchanged():
    """The vectorised window table equals the plain loop it replaced."""
    from powercells.network.builder import pool_windows

    def loop(C, H, W, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw):
        Ho = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
        Wo = (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
        return [[(c * H + oh * sh - pt + i * dh) * W + ow * sw - pl + j * dw
                 for i in range(kh) for j in range(kw)
                 if 0 <= oh * sh - pt + i * dh < H and 0 <= ow * sw - pl + j * dw < W]
                for c in range(C) for oh in range(Ho) for ow in range(Wo)], (C, Ho, Wo)

    for args in [(2, 6, 5, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1), (1, 7, 4, 3, 2, 1, 2, 1, 1, 1, 0, 2, 1),
                 (3, 5, 5, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1)]:
        C, H, W, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw = args
        windows, shape = pool_windows((C, H, W), (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw))
        expected, eshape = loop(*args)
        assert shape == eshape
        assert [w.tolist() for w in windows] == expected


# ---------------------------------------------------------------------- 3. trust
def test_custom_domain_relu_is_refused(tmp_path):
    for k, imports in enumerate([[], [helper.make_opsetid("com.evil", 1)]]):
        model = model_of([H("Relu", ["x"], ["y"], name="x", domain="com.evil")],
                         opsets=[helper.make_opsetid("", 13)] + imports)
        refuses(write(model, tmp_path, f"evil{k}.onnx"),
                "ONNX node 'x': operator com.evil.Relu is not supported", UnsupportedLayerError)


def test_ai_onnx_domain_is_the_default_domain(tmp_path):
    model = model_of([H("Relu", ["x"], ["y"], domain="ai.onnx")])
    assert pc.load(write(model, tmp_path)).input_dim == 4


OPSET_CASES = {
    "future": ([("", 999)], "opset 999 is not supported"),
    "negative": ([("", -3)], "opset -3 is not supported"),
    "zero": ([("", 0)], "opset 0 is not supported"),
    "too_old": ([("", 6)], "opset 6 is not supported"),
    "no_default": ([("com.evil", 1)], "no opset of the default ONNX domain"),
    "conflicting": ([("", 13), ("ai.onnx", 11)], "imports opset 'ai.onnx' twice"),
}


@pytest.mark.parametrize("case", sorted(OPSET_CASES))
def test_opset_imports(case, tmp_path):
    opsets, match = OPSET_CASES[case]
    model = model_of([H("Relu", ["x"], ["y"])],
                     opsets=[helper.make_opsetid(d, v) for d, v in opsets])
    refuses(write(model, tmp_path), match)


CHECKER_CASES = {
    "ir_version_0": (lambda m: setattr(m, "ir_version", 0), "checker.*ir_version"),
    "ir_version_future": (lambda m: setattr(m, "ir_version", 99), "checker.*ir_version 99"),
    "attribute_type": (lambda m: m.graph.node.extend(
        [H("Gemm", ["r", "W2"], ["z"], name="g", alpha=2)]), "checker.*alpha"),
    "unknown_attribute": (lambda m: m.graph.node[2].attribute.extend(
        [helper.make_attribute("foo", 3)]), "checker.*foo.*'relu1'"),
}


@pytest.mark.parametrize("case", sorted(CHECKER_CASES))
def test_checker_runs(case, tmp_path):
    model = dense_model()
    CHECKER_CASES[case][0](model)
    refuses(write(model, tmp_path), CHECKER_CASES[case][1])


# ---------------------------------------------------------------------- 4. external data
def external_model(folder, location, offset=None, length=None, extra=()):
    t = raw_tensor("W", TensorProto.DOUBLE, [4, 6])
    t.data_location = TensorProto.EXTERNAL
    entries = [("location", location)] + \
        ([("offset", str(offset))] if offset is not None else []) + \
        ([("length", str(length))] if length is not None else []) + list(extra)
    for k, v in entries:
        e = t.external_data.add()
        e.key, e.value = k, v
    model = model_of([H("MatMul", ["x", "W"], ["y"], name="mm")], [t])
    return write(model, folder)


@pytest.fixture
def folders(tmp_path):
    """(model folder, secret file outside it), the secret holding 192 bytes of 7.0."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.full(24, 7.0).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    return folder, secret


@pytest.fixture
def opened(monkeypatch):
    """The real paths of every file opened during the test (os.open and open)."""
    seen = []
    real_os_open, real_open = os.open, builtins.open

    def os_open(path, *a, **k):
        seen.append(os.path.realpath(path))
        return real_os_open(path, *a, **k)

    def b_open(path, *a, **k):
        if isinstance(path, (str, bytes, os.PathLike)):
            seen.append(os.path.realpath(path))
        return real_open(path, *a, **k)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", b_open)
    return seen


def test_external_data_loads(folders):
    folder, _ = folders
    (folder / "w.bin").write_bytes(b"\0" * 16 + W1.astype("<f8").tobytes())
    net = pc.load(external_model(folder, "w.bin", offset=16, length=192))
    assert np.array_equal(net.layers[0].weight, W1.T)


def test_external_symlink_to_outside_secret_is_never_read(folders, opened):
    folder, secret = folders
    os.symlink(secret, folder / "w.bin")
    path = external_model(folder, "w.bin")
    refuses(path, "initializer 'W'.*'w.bin' is a symbolic link")
    assert str(secret.resolve()) not in opened
    assert str(path.resolve()) in opened          # the spy works


def test_external_symlinked_folder_to_outside_is_refused(folders, opened):
    folder, secret = folders
    os.symlink(secret.parent, folder / "sub")
    refuses(external_model(folder, "sub/secret.bin"), "'sub/secret.bin' resolves outside")
    assert str(secret.resolve()) not in opened


def test_external_hard_link_is_refused(folders, opened):
    folder, secret = folders
    try:
        os.link(secret, folder / "w.bin")
    except OSError:
        pytest.skip("no hard links here")
    refuses(external_model(folder, "w.bin"), "'w.bin' has 2 hard links")
    assert str(secret.resolve()) not in opened
    assert str((folder / "w.bin").resolve()) not in opened


def test_external_symlink_inside_folder_is_refused(folders):
    folder, _ = folders
    (folder / "real.bin").write_bytes(W1.astype("<f8").tobytes())
    os.symlink(folder / "real.bin", folder / "w.bin")
    refuses(external_model(folder, "w.bin"), "is a symbolic link")


EXTERNAL_CASES = {
    "absolute": (lambda f, s: str(s), {}, "is an absolute path"),
    "dotdot": (lambda f, s: "../secret.bin", {}, "contains '..'"),
    "nested_dotdot": (lambda f, s: "a/../../secret.bin", {}, "contains '..'"),
    "backslash_dotdot": (lambda f, s: "..\\secret.bin", {}, "contains '..'"),
    "empty": (lambda f, s: "", {}, "without a location"),
    "control": (lambda f, s: "w\n.bin", {}, "control characters"),
    "missing": (lambda f, s: "nope.bin", {}, "'nope.bin' cannot be opened"),
    "directory": (lambda f, s: "d", {}, "'d' is not a regular file"),
    "fifo": (lambda f, s: "fifo", {}, "'fifo' is not a regular file"),
    "offset_past_end": (lambda f, s: "w.bin", dict(offset=100), "needs bytes 100..292"),
    "length_wrong": (lambda f, s: "w.bin", dict(length=8), "length 8 does not match"),
    "offset_text": (lambda f, s: "w.bin", dict(offset="abc"), "offset 'abc' is not"),
    "offset_negative": (lambda f, s: "w.bin", dict(offset="-8"), "offset '-8' is not"),
    "offset_underscore": (lambda f, s: "w.bin", dict(offset="1_0"), "offset '1_0' is not"),
    "offset_huge": (lambda f, s: "w.bin", dict(offset=str(10**30)), "offset '1000.* is not"),
    "duplicate_key": (lambda f, s: "w.bin", dict(extra=[("location", "x.bin")]),
                      "key 'location' is given twice"),
}


@pytest.mark.parametrize("case", sorted(EXTERNAL_CASES))
def test_hostile_external_data(case, folders, opened):
    folder, secret = folders
    (folder / "w.bin").write_bytes(W1.astype("<f8").tobytes())
    (folder / "d").mkdir()
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "fifo")
    elif case == "fifo":
        pytest.skip("no FIFOs here")
    location, kw, match = EXTERNAL_CASES[case]
    kw = dict(kw)
    path = external_model(folder, location(folder, secret), kw.pop("offset", None),
                          kw.pop("length", None), kw.pop("extra", ()))
    start = time.perf_counter()
    refuses(path, "initializer 'W'.*" + match)
    assert time.perf_counter() - start < 10
    assert str(secret.resolve()) not in opened
    assert str((folder / "fifo").resolve()) not in opened


def test_external_data_with_inline_data_is_refused(folders):
    folder, _ = folders
    (folder / "w.bin").write_bytes(W1.astype("<f8").tobytes())
    path = external_model(folder, "w.bin")
    model = onnx.load(str(path), load_external_data=False)
    model.graph.initializer[0].raw_data = b"\0" * 192
    refuses(write(model, folder), "stored externally but also holds raw_data")


# ---------------------------------------------------------------------- 5. file level
def _graph_case(case):
    """A model with a structural defect."""
    Wi = [init("W1", W1)]
    if case == "no_inputs":
        return model_of([H("Relu", ["W1"], ["y"])], Wi, inputs=[])
    if case == "two_inputs":
        return model_of([H("Relu", ["x"], ["y"])], inputs=[
            helper.make_tensor_value_info(n, TensorProto.DOUBLE, [1, 4]) for n in "xz"])
    if case == "input_no_type":
        return model_of([H("Relu", ["x"], ["y"])], inputs=[helper.make_value_info(
            "x", onnx.TypeProto())])
    if case == "input_sequence":
        return model_of([H("Relu", ["x"], ["y"])], inputs=[helper.make_value_info(
            "x", helper.make_sequence_type_proto(
                helper.make_tensor_type_proto(TensorProto.DOUBLE, [4])))])
    if case == "input_string":
        return model_of([H("Relu", ["x"], ["y"])], elem=TensorProto.STRING)
    if case == "input_undefined_type":
        return model_of([H("Relu", ["x"], ["y"])], elem=TensorProto.UNDEFINED)
    if case == "input_no_shape":
        return model_of([H("Relu", ["x"], ["y"])], in_shape=None, inputs=[
            helper.make_tensor_value_info("x", TensorProto.DOUBLE, None)])
    if case in ("input_zero_dim", "input_negative_dim", "input_huge", "input_too_big",
                "input_rank_20"):
        shape = {"input_zero_dim": [1, 0], "input_negative_dim": [1, -3],
                 "input_huge": [10**6, 10**6], "input_too_big": [1, 2**14 + 1],
                 "input_rank_20": [1] * 20}[case]
        return model_of([H("Relu", ["x"], ["y"])], in_shape=shape)
    if case == "two_outputs":
        return model_of([H("Relu", ["x"], ["y"])], outputs=[
            helper.make_tensor_value_info(n, TensorProto.DOUBLE, None) for n in ("y", "x")])
    if case == "undefined_input":
        return model_of([H("Relu", ["q"], ["y"], name="r")])
    if case == "cycle":
        return model_of([H("Add", ["x", "b"], ["a"], name="first"), H("Relu", ["a"], ["b"]),
                         H("Relu", ["b"], ["y"])])
    if case == "out_of_order":
        return model_of([H("Relu", ["a"], ["y"], name="late"), H("Relu", ["x"], ["a"])])
    if case == "duplicate_output":
        return model_of([H("Relu", ["x"], ["y"]), H("Relu", ["x"], ["y"], name="again")])
    if case == "output_shadows_input":
        return model_of([H("Relu", ["x"], ["x"], name="shadow"), H("Relu", ["x"], ["y"])])
    if case == "duplicate_initializer":
        return model_of([H("MatMul", ["x", "W1"], ["y"])], Wi + [init("W1", W1)])
    if case == "no_output":
        return model_of([H("Relu", ["x"], [], name="mute"), H("Relu", ["x"], ["y"])])
    if case == "sparse_initializer":
        m = model_of([H("MatMul", ["x", "W1"], ["y"])], Wi)
        m.graph.sparse_initializer.add().values.CopyFrom(init("S", [1.0]))
        return m
    if case == "output_constant":
        return model_of([H("Identity", ["W1"], ["y"])], Wi)
    raise AssertionError(case)


GRAPH_CASES = {
    "no_inputs": "expected one input, found \\[\\]",
    "two_inputs": "expected one input, found \\['x', 'z'\\]",
    "input_no_type": "input 'x': expected a tensor, got no type",
    "input_sequence": "input 'x': expected a tensor, got sequence_type",
    "input_string": "input 'x': element type STRING",
    "input_undefined_type": "input 'x': element type UNDEFINED",
    "input_no_shape": "input 'x': no shape declared",
    "input_zero_dim": "input 'x': dimension 1 is 0",
    "input_negative_dim": "input 'x': dimension 1 is -3",
    "input_huge": "input 'x'.*1000000000000 entries, more than the limit of 16384",
    "input_too_big": "input 'x'.*16385 entries",
    "input_rank_20": "input 'x': 20 dimensions",
    "two_outputs": "expected one output",
    "undefined_input": "node 'r': input 'q' is not produced before it",
    "cycle": "node 'first': input 'b' is not produced before it",
    "out_of_order": "node 'late': input 'a' is not produced before it",
    "duplicate_output": "node 'again': output 'y' is already defined",
    "output_shadows_input": "node 'shadow': output 'x' is already defined",
    "duplicate_initializer": "initializer 'W1' is defined twice",
    "no_output": "node 'mute': has no output",
    "sparse_initializer": "sparse initializer",
    "output_constant": "output 'y' does not depend on the input",
}


@pytest.mark.parametrize("case", sorted(GRAPH_CASES))
def test_hostile_graphs(case, tmp_path):
    start = time.perf_counter()
    refuses(write(_graph_case(case), tmp_path), GRAPH_CASES[case])
    assert time.perf_counter() - start < 10


def _node(op, inputs, attrs=None, name="n"):
    return H(op, inputs, ["y"], name=name, **(attrs or {}))


NODE_CASES = {
    # Constant
    "constant_sparse": ([H("Constant", [], ["c"], name="n", sparse_value=helper.make_sparse_tensor(
        init("v", [1.0]), init("i", np.array([0])), [4])), _node("Add", ["x", "c"], name="a")],
        {}, (1, 4), "node 'n'.*'sparse_value' is not supported", UnsupportedLayerError),
    "constant_string": ([H("Constant", [], ["c"], name="n", value_string="abc"),
                         _node("Add", ["x", "c"], name="a")], {}, (1, 4),
                        "node 'n'.*'value_string' is not supported", UnsupportedLayerError),
    "constant_strings_tensor": ([H("Constant", [], ["c"], name="n", value=helper.make_tensor(
        "v", TensorProto.STRING, [1], [b"a"])), _node("Add", ["x", "c"], name="a")], {}, (1, 4),
        "node 'n'.*attribute 'value'.*STRING", NetworkError),
    "constant_two_values": ([H("Constant", [], ["c"], name="n", value_ints=[1], value_float=2.0),
                             _node("Add", ["x", "c"], name="a")], {}, (1, 4),
                            "node 'n'.*exactly one value", NetworkError),
    "constant_nan": ([H("Constant", [], ["c"], name="n", value_floats=[1.0, float("nan")]),
                      _node("Add", ["x", "c"], name="a")], {}, (1, 2),
                     "node 'n'.*'value_floats'.*nan", NetworkError),
    # Reshape
    "reshape_two_minus_one": ([_node("Reshape", ["x", "s"])], {"s": np.array([-1, -1])}, (1, 4),
                              "node 'n'.*several -1", NetworkError),
    "reshape_minus_two": ([_node("Reshape", ["x", "s"])], {"s": np.array([-2, -2])}, (1, 4),
                          "node 'n'.*entry 0 is -2", NetworkError),
    "reshape_zero_past_rank": ([_node("Reshape", ["x", "s"])], {"s": np.array([4, 1, 0])},
                               (1, 4), "node 'n'.*has no axis 2", NetworkError),
    "reshape_minus_one_and_zero": ([_node("Reshape", ["x", "s"], dict(allowzero=1))],
                                   {"s": np.array([0, -1])}, (1, 4),
                                   "node 'n'.*cannot reshape", NetworkError),
    "reshape_fraction": ([_node("Reshape", ["x", "s"])], {"s": np.array([2.5, 1.6])}, (1, 4),
                         "node 'n'.*must be integers", NetworkError),
    "reshape_mismatch": ([_node("Reshape", ["x", "s"])], {"s": np.array([3, 3])}, (1, 4),
                         r"node 'n'.*cannot reshape \(1, 4\) to \(3, 3\)", NetworkError),
    "reshape_2d_target": ([_node("Reshape", ["x", "s"])], {"s": np.array([[2, 2]])}, (1, 4),
                          "node 'n'.*must be 1-D", NetworkError),
    "reshape_by_tensor": ([_node("Reshape", ["x", "x"])], {}, (1, 4),
                          "node 'n'.*the shape .* depends on the network input",
                          UnsupportedLayerError),
    # Flatten / Squeeze / Unsqueeze
    "flatten_axis": ([_node("Flatten", ["x"], dict(axis=5))], {}, (1, 4),
                     r"node 'n'.*'axis' must be in \[-2, 2\], got 5", NetworkError),
    "flatten_axis_negative": ([_node("Flatten", ["x"], dict(axis=-7))], {}, (1, 4),
                              "node 'n'.*'axis'", NetworkError),
    "squeeze_axis": ([_node("Squeeze", ["x", "ax"])], {"ax": np.array([4])}, (1, 4),
                     "node 'n'.*axis 4 is out of range", NetworkError),
    "squeeze_not_one": ([_node("Squeeze", ["x", "ax"])], {"ax": np.array([1])}, (1, 4),
                        "node 'n'.*cannot squeeze axis 1 of size 4", NetworkError),
    "squeeze_repeat": ([_node("Squeeze", ["x", "ax"])], {"ax": np.array([0, -2])}, (1, 4),
                       "node 'n'.*repeat", NetworkError),
    "squeeze_attr_opset11": ([_node("Squeeze", ["x"], dict(axes=[9]))], {}, (1, 4),
                             "node 'n'.*axis 9 is out of range", NetworkError),
    "unsqueeze_axis": ([_node("Unsqueeze", ["x", "ax"])], {"ax": np.array([-9])}, (1, 4),
                       "node 'n'.*axis -9 is out of range", NetworkError),
    "unsqueeze_many": ([_node("Unsqueeze", ["x", "ax"])], {"ax": np.arange(30)}, (1, 4),
                       "node 'n'.*32 dimensions", NetworkError),
    "unsqueeze_no_axes": ([_node("Unsqueeze", ["x"])], {}, (1, 4), "node 'n'", NetworkError),
    # Gemm / MatMul
    "gemm_mismatch": ([_node("Gemm", ["x", "W"])], {"W": np.ones((5, 3))}, (1, 4),
                      r"node 'n'.*A \(1, 4\) \(transA=0\) and B \(5, 3\) \(transB=0\) do not match",
                      NetworkError),
    "gemm_rank": ([_node("Gemm", ["x", "W"])], {"W": np.ones((4, 3))}, (4,),
                  "node 'n'.*needs 2-D A and B", NetworkError),
    "gemm_bad_c": ([_node("Gemm", ["x", "W", "C"])], {"W": np.ones((4, 3)), "C": np.ones(5)},
                   (1, 4), "node 'n'.*C of shape \\(5,\\)", NetworkError),
    "gemm_trans_junk": ([_node("Gemm", ["x", "W"], dict(transB=7))], {"W": np.ones((3, 4))},
                        (1, 4), r"node 'n'.*'transB' must be in \[0, 1\]", NetworkError),
    "gemm_alpha_nan": ([_node("Gemm", ["x", "W"], dict(alpha=float("nan")))],
                       {"W": np.ones((4, 3))}, (1, 4), "node 'n'.*'alpha' must be finite",
                       NetworkError),
    "gemm_two_consts": ([_node("Gemm", ["W", "W"])], {"W": np.ones((4, 4))}, (1, 4),
                        "node 'n'.*exactly one tensor", UnsupportedLayerError),
    "gemm_missing_b": ([_node("Gemm", ["x", ""])], {}, (1, 4), "node 'n'", NetworkError),
    "matmul_mismatch": ([_node("MatMul", ["x", "W"])], {"W": np.ones((5, 3))}, (1, 4),
                        r"node 'n'.*shapes \(1, 4\) and \(5, 3\) do not match", NetworkError),
    "matmul_scalar": ([_node("MatMul", ["x", "W"])], {"W": np.float64(2.0)}, (1, 4),
                      "node 'n'.*rank >= 1", NetworkError),
    # arithmetic
    "div_by_zero": ([_node("Div", ["x", "z"])], {"z": np.array([1.0, 0.0, 1.0, 1.0])}, (1, 4),
                    "node 'n'.*divides by a constant that has zero entries", NetworkError),
    "add_no_broadcast": ([_node("Add", ["x", "c"])], {"c": np.ones(3)}, (1, 4),
                         r"node 'n'.*shapes \(1, 4\) and \(3,\) do not broadcast",
                         NetworkError),
    "mul_overflow_2": ([H("Mul", ["x", "c"], ["m"]), _node("Mul", ["m", "c"])],
                       {"c": np.full(4, 1e200)}, (1, 4), "node 'n'.*not finite",
                       NetworkError),
    "sqrt_negative": ([H("Sqrt", ["c"], ["s"], name="root"), _node("Add", ["x", "s"])],
                      {"c": -np.ones(4)}, (1, 4), "node 'root'.*nan", NetworkError),
    "transpose_perm": ([H("Transpose", ["c"], ["t"], name="tr", perm=[0, 0]),
                        _node("MatMul", ["x", "t"])], {"c": np.ones((4, 4))}, (1, 4),
                       "node 'tr'.*'perm'", NetworkError),
    "fold_arity": ([H("Add", ["c"], ["t"], name="f"), _node("Add", ["x", "t"])],
                   {"c": np.ones(4)}, (1, 4), "node 'f'", NetworkError),
    # activations, batch norm, dropout
    "relu_of_constant": ([_node("Relu", ["c"])], {"c": np.ones(4)}, (1, 4),
                         "node 'n'.*must depend on the network input", NetworkError),
    "leaky_alpha_inf": ([_node("LeakyRelu", ["x"], dict(alpha=float("inf")))], {}, (1, 4),
                        "node 'n'.*'alpha' must be finite", NetworkError),
    "leaky_alpha_big": ([_node("LeakyRelu", ["x"], dict(alpha=3.0))], {}, (1, 4),
                        "node 'n'", UnsupportedLayerError),
    "batchnorm_negative_var": ([_node("BatchNormalization", ["x", "g", "b", "m", "v"],
                                      dict(training_mode=0))],
                               {"g": np.ones(4), "b": np.ones(4), "m": np.ones(4),
                                "v": -np.ones(4)}, (1, 4),
                               "node 'n'.*var \\+ epsilon is not positive", NetworkError),
    "batchnorm_size": ([_node("BatchNormalization", ["x", "g", "b", "m", "v"],
                              dict(training_mode=0))],
                       {"g": np.ones(3), "b": np.ones(4), "m": np.ones(4), "v": np.ones(4)},
                       (1, 4), "node 'n'.*scale has 3 entries for 4 channels", NetworkError),
    "batchnorm_training": ([_node("BatchNormalization", ["x", "g", "b", "m", "v"],
                                  dict(training_mode=1))],
                           {"g": np.ones(4), "b": np.ones(4), "m": np.ones(4),
                            "v": np.ones(4)}, (1, 4), "node 'n'.*training mode",
                           UnsupportedLayerError),
    "dropout_training": ([_node("Dropout", ["x", "r", "t"])],
                         {"r": np.float64(0.5), "t": np.array(True)}, (1, 4),
                         "node 'n'.*training mode", UnsupportedLayerError),
    "secondary_output": ([H("Dropout", ["x"], ["d", "mask"], name="drop"),
                          _node("Add", ["x", "mask"])], {}, (1, 4),
                         "node 'n'.*'mask' is not available", NetworkError),
    "unsupported_op": ([_node("Sigmoid", ["x"])], {}, (1, 4),
                       "node 'n'.*operator Sigmoid is not supported", UnsupportedLayerError),
    "conv_1d_weight": ([_node("Conv", ["x", "w"])], {"w": np.ones((1, 1, 2))}, (1, 1, 4),
                       "node 'n'.*only 2-D convolutions", UnsupportedLayerError),
    "conv_not_image": ([_node("Conv", ["x", "w"])], {"w": np.ones((1, 1, 2, 2))}, (1, 4),
                       "node 'n'.*expected an image tensor", NetworkError),
    "conv_bias_shape": ([_node("Conv", ["x", "w", "b"])],
                        {"w": np.ones((1, 1, 2, 2)), "b": np.ones(3)}, (1, 1, 3, 3),
                        r"node 'n'.*bias has shape \(3,\)", NetworkError),
    "conv_weight_tensor": ([_node("Conv", ["x", "x"])], {}, (1, 1, 3, 3),
                           "node 'n'.*weight .* depends on the network input",
                           UnsupportedLayerError),
}


@pytest.mark.parametrize("case", sorted(NODE_CASES))
def test_hostile_nodes(case, tmp_path):
    nodes, inits, shape, match, cls = NODE_CASES[case]
    opset = {"squeeze_attr_opset11": 11, "reshape_minus_one_and_zero": 14}.get(case, 13)
    opset = 15 if case.startswith("batchnorm") else opset
    model = model_of(nodes, [init(k, v) for k, v in inits.items()], in_shape=shape,
                     opset=opset)
    msg = refuses(write(model, tmp_path), match, cls)
    assert "Traceback" not in msg


def test_long_and_odd_names_stay_on_one_line(tmp_path):
    model = model_of([H("Sigmoid", ["x"], ["y"], name="bad\nname" + "x" * 5000)])
    msg = refuses(write(model, tmp_path), r"node 'bad\\nnamexxx.*\.\.\.'.*Sigmoid",
                  UnsupportedLayerError)
    assert len(msg) < 600


FILE_CASES = {
    "empty": (lambda m: b"", "the file is empty"),
    "truncated": (lambda m: m[: len(m) // 2], "cannot read ONNX model"),
    "random": (lambda m: np.random.default_rng(3).bytes(4000), "cannot read ONNX model"),
    "text": (lambda m: b"not a model", "cannot read ONNX model"),
    "tensor_proto": (lambda m: init("W", W1).SerializeToString(), "cannot read ONNX model"),
    "graph_proto": (lambda m: dense_model().graph.SerializeToString(), "has no graph"),
    "nested": (lambda m: b"\x3a\x02" * 2 + b"\x0a\xff\xff\xff\x0f" * 200,
               "cannot read ONNX model"),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_hostile_files(case, tmp_path):
    data = FILE_CASES[case][0](dense_model().SerializeToString())
    refuses(write(data, tmp_path), FILE_CASES[case][1])


def test_model_without_graph(tmp_path):
    model = onnx.ModelProto()
    model.ir_version = 8
    model.opset_import.add().version = 13
    refuses(write(model, tmp_path), "has no graph")


def test_paths(tmp_path, monkeypatch):
    folder = tmp_path / "dir.onnx"
    folder.mkdir()
    refuses(folder, "is a directory")
    refuses(tmp_path / "missing.onnx", "no such file")
    odd = write(dense_model(), tmp_path, "odd\nname ü'\".onnx")
    assert pc.load(odd).input_dim == 4
    bad_odd = write(b"junk", tmp_path, "bad\nname.onnx")
    refuses(bad_odd, "cannot read ONNX model")
    locked = write(dense_model(), tmp_path, "locked.onnx")
    if os.geteuid() != 0:
        locked.chmod(0)
    else:   # root reads anything: have the open fail as it would for a user
        real_open = os.open

        def deny(path, *a, **k):
            if os.fspath(path) == str(locked):
                raise PermissionError(13, "Permission denied", str(locked))
            return real_open(path, *a, **k)
        monkeypatch.setattr(os, "open", deny)
    refuses(locked, "permission denied")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_and_devices_do_not_block(tmp_path):
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    start = time.perf_counter()
    refuses(fifo, "not a regular file")
    if os.path.exists("/dev/zero"):
        with pytest.raises(NetworkError, match="/dev/zero: cannot read ONNX model: not a regular"):
            onnx_io.from_onnx("/dev/zero")
    assert time.perf_counter() - start < 5


# ---------------------------------------------------------------------- 6. size
def test_oversized_files_are_refused_before_reading(tmp_path, monkeypatch):
    big = tmp_path / "big.onnx"
    with open(big, "wb") as f:          # sparse: takes no disk space
        f.truncate(onnx_io.MAX_FILE_BYTES + 1)
    start = time.perf_counter()
    refuses(big, "2147483648 bytes, more than the 2147483647 bytes")
    assert time.perf_counter() - start < 2
    small = write(dense_model(), tmp_path)
    monkeypatch.setattr(onnx_io, "MAX_FILE_BYTES", 100)
    refuses(small, "more than the 100 bytes")


# ---------------------------------------------------------------------- property tests
def _valid_models():
    return {
        "dense": dense_model(),
        "conv": model_of(conv_nodes(strides=[2, 1], pads=[1, 0, 1, 1]) + [],
                         [init("Wc", RNG.normal(size=(4, 2, 3, 3))),
                          init("Bc", RNG.normal(size=4))], in_shape=(1, 2, 6, 5)),
        "pool": pool_model("MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        "avg": pool_model("AveragePool", kernel_shape=[2, 2], pads=[0, 0, 1, 1]),
        "shapes": model_of([H("Reshape", ["x", "s"], ["a"]), H("Flatten", ["a"], ["b"]),
                            H("Unsqueeze", ["b", "ax"], ["u"]), H("Squeeze", ["u", "ax"], ["q"]),
                            H("Gemm", ["q", "Wg", "Bg"], ["g"], transB=1, alpha=0.5),
                            H("LeakyRelu", ["g"], ["l"], alpha=0.1),
                            H("Sub", ["l", "Bg"], ["y"])],
                           [init("s", np.array([1, 2, 2])), init("ax", np.array([0])),
                            init("Wg", RNG.normal(size=(3, 4))), init("Bg", RNG.normal(size=3))]),
    }


VALID = {k: m.SerializeToString() for k, m in _valid_models().items()}
SECONDS_PER_LOAD = 5.0


def _load_bytes(data: bytes):
    """Load ``data`` from a file; the load returns a network whose forward pass at 0 is finite,
    or raises NetworkError, within the time bound."""
    with tempfile.TemporaryDirectory() as folder:
        path = write(data, folder)
        start = time.perf_counter()
        try:
            net = pc.load(path)
        except NetworkError as exc:
            msg = str(exc)
            assert "\n" not in msg and msg.startswith(str(path) + ": "), msg
            net = None
        elapsed = time.perf_counter() - start
        assert elapsed < SECONDS_PER_LOAD, f"load took {elapsed:.1f} s"
    if net is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            out = net.forward(np.zeros((1, net.input_dim)))
        assert out.shape == (1, net.output_dim)
        # finite, unless the weights themselves reach past float64 when multiplied (a bias of
        # 1e270 into a weight of 1e111, from flipped bytes): values are then out of range by
        # the documented rule (check_value_scale), while counts stay exact
        from powercells.enumerate.scale import VALUE_MAX_EXPONENT

        assert np.all(np.isfinite(out)) or net.magnitude() > VALUE_MAX_EXPONENT
    return net


def test_valid_models_for_the_properties_load():
    for data in VALID.values():
        assert _load_bytes(data) is not None


@st.composite
def corrupted(draw):
    data = bytearray(VALID[draw(st.sampled_from(sorted(VALID)))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "insert", "delete"]))
        n = len(data)
        if n == 0:
            break
        i = draw(st.integers(0, n - 1))
        if kind == "flip":
            data[i] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[i:]
        elif kind == "splice":        # copy a chunk of the file over another place
            j = draw(st.integers(0, n - 1))
            k = draw(st.integers(1, 64))
            data[i:i + k] = data[j:j + k]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[i:i + draw(st.integers(1, 32))]
    return bytes(data)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted())
def test_corrupted_bytes_load_or_raise(data):
    _load_bytes(data)


HOSTILE_INTS = [0, -1, 1, 2, 3, 2**31, 2**40, -2**40]
HOSTILE_INT_LISTS = [[], [0], [0, 0], [1, 1], [-1, -1], [2**40, 2**40], [0, 0, 0, 0],
                     [-1, 0, -1, 0], [1, 1, 1, 1], [2**40] * 4, [1, 2, 3], [3, 3], [2, 2, 1, 1]]
HOSTILE_FLOATS = [0.0, -1.0, 0.5, 2.0, 1e38, -1e38, float("nan"), float("inf")]
HOSTILE_STRINGS = ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "junk", ""]
HOSTILE_VALUES = HOSTILE_INTS + HOSTILE_INT_LISTS + HOSTILE_FLOATS + HOSTILE_STRINGS + [
    [0.5, 0.5], b"\xff\xfe", ["a", "b"]]
ATTR_NAMES = ["strides", "pads", "kernel_shape", "dilations", "group", "axis", "alpha", "beta",
              "transA", "transB", "auto_pad", "axes", "perm", "allowzero", "epsilon",
              "training_mode", "ceil_mode", "count_include_pad", "storage_order", "value",
              "value_ints", "value_float"]
# attributes each operator's schema knows, with their type: the checker lets hostile values of
# the right type through, so these reach the importer's own checks
SCHEMA_ATTRS = {
    "Conv": {"strides": "ints", "pads": "ints", "dilations": "ints", "kernel_shape": "ints",
             "group": "int", "auto_pad": "str"},
    "MaxPool": {"strides": "ints", "pads": "ints", "dilations": "ints", "kernel_shape": "ints",
                "ceil_mode": "int", "auto_pad": "str", "storage_order": "int"},
    "AveragePool": {"strides": "ints", "pads": "ints", "kernel_shape": "ints",
                    "ceil_mode": "int", "auto_pad": "str", "count_include_pad": "int"},
    "Gemm": {"alpha": "float", "beta": "float", "transA": "int", "transB": "int"},
    "LeakyRelu": {"alpha": "float"}, "Flatten": {"axis": "int"},
}
HOSTILE_ARRAYS = [np.array([-1, -1]), np.array([0, 0, 0]), np.array([2**40]), np.array([5]),
                  np.array([-7]), np.array([2.5]), np.array([]), np.ones((2, 2)),
                  np.full(3, np.nan), np.zeros(4), np.ones((3, 4, 1, 1)), np.ones((4, 2, 9, 9)),
                  np.ones(7), np.array(1e300)]
OPS = ["Relu", "Sigmoid", "Conv", "MaxPool", "AveragePool", "Reshape", "Add", "Sub", "Mul",
       "Div", "MatMul", "Gemm", "Constant", "Flatten", "Squeeze", "Unsqueeze", "Identity",
       "Dropout", "BatchNormalization", "GlobalAveragePool", "Transpose", "Sqrt", "Loop", "",
       "Foo"]
DOMAINS = ["", "ai.onnx", "com.evil", "ai.onnx.ml", "com.microsoft"]
DTYPES = [0, 1, 2, 7, 8, 9, 10, 11, 14, 15, 16, 17, 22, 99, -1]


def _attribute(name, value):
    if isinstance(value, list) and not value:
        return helper.make_attribute(name, value, attr_type=onnx.AttributeProto.INTS)
    return helper.make_attribute(name, value)


@st.composite
def mutated(draw):
    model = onnx.ModelProto.FromString(VALID[draw(st.sampled_from(sorted(VALID)))])
    g = model.graph
    names = [i.name for i in g.input] + [t.name for t in g.initializer] + \
        [o for n in g.node for o in n.output] + ["", "nope"]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["attr", "dims", "op", "domain", "input", "output",
                                     "opset", "dtype", "in_dim", "drop_node", "typed_attr",
                                     "typed_attr", "typed_attr", "values", "values"]))
        node = g.node[draw(st.integers(0, len(g.node) - 1))] if g.node else None
        if kind == "typed_attr" and node is not None and node.op_type in SCHEMA_ATTRS:
            name, kind = draw(st.sampled_from(sorted(SCHEMA_ATTRS[node.op_type].items())))
            value = draw(st.sampled_from({"ints": HOSTILE_INT_LISTS, "int": HOSTILE_INTS,
                                          "float": HOSTILE_FLOATS,
                                          "str": HOSTILE_STRINGS}[kind]))
            attr = helper.make_attribute(name, value, attr_type={
                "ints": onnx.AttributeProto.INTS, "int": onnx.AttributeProto.INT,
                "float": onnx.AttributeProto.FLOAT, "str": onnx.AttributeProto.STRING}[kind])
            kept = [a for a in node.attribute if a.name != name]
            del node.attribute[:]
            node.attribute.extend(kept + [attr])
        elif kind == "values" and g.initializer:
            k = draw(st.integers(0, len(g.initializer) - 1))
            g.initializer[k].CopyFrom(init(g.initializer[k].name,
                                           draw(st.sampled_from(HOSTILE_ARRAYS))))
        elif kind == "attr" and node is not None:
            name = draw(st.sampled_from(ATTR_NAMES))
            value = draw(st.sampled_from(HOSTILE_VALUES))
            kept = [a for a in node.attribute if a.name != name]
            del node.attribute[:]
            node.attribute.extend(kept + [_attribute(name, value)])
        elif kind == "dims" and g.initializer:
            t = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
            del t.dims[:]
            t.dims.extend(draw(st.lists(st.sampled_from([0, 1, 2, 3, 4, 6, -1, 2**31, 2**62]),
                                        max_size=4)))
        elif kind == "op" and node is not None:
            node.op_type = draw(st.sampled_from(OPS))
        elif kind == "domain" and node is not None:
            node.domain = draw(st.sampled_from(DOMAINS))
        elif kind == "input" and node is not None:
            if node.input and draw(st.booleans()):
                node.input[draw(st.integers(0, len(node.input) - 1))] = \
                    draw(st.sampled_from(names))
            else:
                node.input.append(draw(st.sampled_from(names)))
        elif kind == "output" and node is not None and node.output:
            node.output[0] = draw(st.sampled_from(names))
        elif kind == "opset":
            model.opset_import[0].version = draw(st.sampled_from([-1, 0, 1, 6, 7, 11, 13, 21,
                                                                  999]))
        elif kind == "dtype" and g.initializer:
            t = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
            t.data_type = draw(st.sampled_from(DTYPES))
        elif kind == "in_dim":
            dims = g.input[0].type.tensor_type.shape.dim
            d = dims[draw(st.integers(0, len(dims) - 1))]
            d.dim_value = draw(st.sampled_from([0, -1, 1, 2, 5, 10**12, 2**62]))
        elif kind == "drop_node" and node is not None:
            g.node.remove(node)
    return model.SerializeToString()


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_models_load_or_raise(data):
    _load_bytes(data)


def test_a_model_whose_values_overflow_loads_and_is_out_of_value_range(tmp_path):
    """Found by the fuzzer: flipped bytes made a bias 1e270 feeding a weight 1e111. The model is
    well formed; its outputs overflow float64, and the network's magnitude says so."""
    from powercells.enumerate.scale import VALUE_MAX_EXPONENT

    net = pc.Network.from_weights([(np.eye(2), np.array([1e270, 0.0])),
                                   (np.full((1, 2), 1e111), np.zeros(1))], ["relu", "identity"])
    assert net.magnitude() > VALUE_MAX_EXPONENT
    assert pc.count_regions(net, pc.Box(-1, 1, dim=2)).regions >= 1
