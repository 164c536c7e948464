"""ONNX import: every supported operator, the ACAS Xu and VNN-COMP test files, forward passes
equal onnx.reference run in float64; unsupported operators are named."""

from pathlib import Path

import numpy as np
import pytest

import powercells as pc
from powercells.testing import assert_partitions_equal, brute_force_regions

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

DATA = Path(__file__).resolve().parent.parent / "data"
ACAS = DATA / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx"


def to_double(model):
    """The same model computing in float64 (initializers, constants, inputs and outputs)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for t in model.graph.initializer:
        arr = numpy_helper.to_array(t)
        if arr.dtype == np.float32:
            t.CopyFrom(numpy_helper.from_array(arr.astype(np.float64), t.name))
    for v in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            v.type.tensor_type.elem_type = TensorProto.DOUBLE
    return model


def max_forward_error(model, network, n=25, scale=1.0, seed=0):
    model = to_double(model)
    ref = ReferenceEvaluator(model)
    inits = {t.name for t in model.graph.initializer}
    inp = [i for i in model.graph.input if i.name not in inits][0]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    X = np.random.default_rng(seed).uniform(-scale, scale, (n, network.input_dim))
    ours = network.forward(X)
    theirs = np.stack([ref.run(None, {inp.name: x.reshape(shape)})[0].reshape(-1) for x in X])
    return float(np.abs(ours - theirs).max())


def build(nodes, inits, in_shape, out_name="y", opset=13):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, in_shape)],
        [helper.make_tensor_value_info(out_name, TensorProto.DOUBLE, None)],
        [numpy_helper.from_array(np.asarray(v) if np.asarray(v).dtype.kind == "i"
                                 else np.asarray(v, dtype=np.float64), k)
         for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def save(model, tmp_path, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("path", [ACAS] + sorted((DATA / "vnncomp-test").glob("*.onnx")),
                         ids=lambda p: p.stem)
def test_real_files_forward_equals_reference(path):
    network = pc.load(path)
    err = max_forward_error(onnx.load(str(path)), network, scale=0.5)
    assert err < 1e-12, f"max abs difference {err}"


def test_acas_structure_and_source_names():
    network = pc.load(ACAS)
    assert network.input_dim == 5 and network.output_dim == 5
    assert list(network.widths) == [50] * 6 + [5]
    assert [layer.kind for layer in network.layers] == ["relu"] * 6 + ["identity"]
    assert network.layers[2].name == "layer 3 (node Operation_3_Add)"
    assert network.layers[-1].name == "layer 7 (node linear_7_Add)"
    assert network.unit_name(3, 17) == "layer 3 (node Operation_3_Add), unit 17"
    with pytest.raises(pc.NetworkError, match="units 0..49, not 50"):
        network.unit_name(3, 50)


@pytest.mark.parametrize("factor,lo,hi", [
    (0.01, 2, 10),                                           # 3 regions, ~7 s
    pytest.param(0.05, 100, 1000, marks=pytest.mark.slow),   # 145 regions, ~10 min
])
def test_acas_sub_box_count_equals_brute_force(factor, lo, hi):
    network = pc.load(ACAS)
    box = pc.read_vnnlib(DATA / "acasxu" / "prop_1.vnnlib").regions[0].domain
    c, h = (box.lo + box.hi) / 2, (box.hi - box.lo) / 2
    sub = pc.Box(c - factor * h, c + factor * h)
    tree = pc.subdivide(network, sub)
    assert lo <= tree.n_regions <= hi
    assert_partitions_equal(tree, brute_force_regions(network, sub))


RNG = np.random.default_rng(7)
W1, B1 = RNG.normal(size=(6, 4)), RNG.normal(size=6)
W2, B2 = RNG.normal(size=(3, 6)), RNG.normal(size=3)


@pytest.mark.parametrize("case", ["gemm", "gemm_transA", "matmul_xW", "matmul_Wx", "sub_mul_div",
                                  "leaky", "dropout_identity_reshape", "bn1d"])
def test_dense_operators(case, tmp_path):
    H = helper.make_node
    if case == "gemm":
        nodes = [H("Gemm", ["x", "W1", "B1"], ["h"], transB=1, alpha=0.5, beta=2.0),
                 H("Relu", ["h"], ["r"]), H("Gemm", ["r", "W2", "B2"], ["y"], transB=1)]
        inits, shape = {"W1": W1, "B1": B1, "W2": W2, "B2": B2}, [1, 4]
    elif case == "gemm_transA":
        nodes = [H("Gemm", ["W1", "x", "B1c"], ["h"], transB=1), H("Relu", ["h"], ["y"])]
        inits, shape = {"W1": W1, "B1c": B1[:, None]}, [1, 4]
    elif case == "matmul_xW":
        nodes = [H("MatMul", ["x", "W1t"], ["m"]), H("Add", ["m", "B1"], ["h"]),
                 H("Relu", ["h"], ["r"]), H("MatMul", ["r", "W2t"], ["y"])]
        inits, shape = {"W1t": W1.T, "B1": B1, "W2t": W2.T}, [1, 4]
    elif case == "matmul_Wx":
        nodes = [H("MatMul", ["W1", "x"], ["m"]), H("Add", ["B1", "m"], ["h"]),
                 H("Relu", ["h"], ["r"]), H("MatMul", ["W2", "r"], ["y"])]
        inits, shape = {"W1": W1, "B1": B1, "W2": W2}, [4]
    elif case == "sub_mul_div":
        nodes = [H("Sub", ["x", "mu"], ["a"]), H("Div", ["a", "sd"], ["b"]),
                 H("Mul", ["two", "b"], ["c"]), H("Sub", ["one", "c"], ["d"]),
                 H("MatMul", ["d", "W1t"], ["h"]), H("Relu", ["h"], ["r"]),
                 H("Neg", ["r"], ["y"])]
        inits = {"mu": RNG.normal(size=4), "sd": RNG.uniform(1, 2, 4), "two": 2.0, "one": 1.0,
                 "W1t": W1.T}
        shape = [1, 4]
    elif case == "leaky":
        nodes = [H("MatMul", ["x", "W1t"], ["h"]), H("LeakyRelu", ["h"], ["y"], alpha=0.2)]
        inits, shape = {"W1t": W1.T}, [1, 4]
    elif case == "dropout_identity_reshape":
        nodes = [H("Reshape", ["x", "s"], ["a"]), H("Identity", ["a"], ["b"]),
                 H("Dropout", ["b"], ["c"]), H("Flatten", ["c"], ["d"], axis=1),
                 H("MatMul", ["d", "W1t"], ["h"]), H("Relu", ["h"], ["y"])]
        inits, shape = {"s": np.array([1, 2, 2]), "W1t": W1.T}, [1, 4]
    else:  # bn1d
        nodes = [H("MatMul", ["x", "W1t"], ["h"]),
                 # opset 15, training_mode=0 explicit: onnx.reference reads a missing
                 # training_mode (and opset 9-13's default momentum) as training
                 H("BatchNormalization", ["h", "g", "b", "m", "v"], ["n"], epsilon=1e-3,
                   training_mode=0),
                 H("Relu", ["n"], ["y"])]
        inits = {"W1t": W1.T, "g": RNG.uniform(0.5, 2, 6), "b": RNG.normal(size=6),
                 "m": RNG.normal(size=6), "v": RNG.uniform(0.5, 2, 6)}
        shape = [1, 4]
    model = build(nodes, inits, shape, opset=15 if case == "bn1d" else 13)
    network = pc.load(save(model, tmp_path))
    assert max_forward_error(model, network) < 1e-12


@pytest.mark.parametrize("conv", [dict(), dict(strides=[2, 1], pads=[1, 0, 1, 1]),
                                  dict(dilations=[2, 2], pads=[2, 2, 2, 2]),
                                  dict(group=2), dict(auto_pad="SAME_UPPER")])
@pytest.mark.parametrize("pool", ["max_after_relu", "avg", "max_no_relu", "global"])
def test_conv_and_pooling(conv, pool, tmp_path):
    H = helper.make_node
    group = conv.get("group", 1)
    Wc = RNG.normal(size=(4, 2 // group, 3, 3))
    nodes = [H("Conv", ["x", "Wc", "Bc"], ["c"], kernel_shape=[3, 3], **conv)]
    inits = {"Wc": Wc, "Bc": RNG.normal(size=4)}
    if pool == "max_after_relu":
        nodes += [H("Relu", ["c"], ["r"]), H("MaxPool", ["r"], ["p"], kernel_shape=[2, 2],
                                             strides=[2, 2])]
    elif pool == "avg":
        nodes += [H("AveragePool", ["c"], ["a"], kernel_shape=[2, 2], pads=[0, 0, 1, 1]),
                  H("Relu", ["a"], ["p"])]
    elif pool == "max_no_relu":
        nodes += [H("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[1, 1])]
    else:
        nodes += [H("Relu", ["c"], ["r"]), H("GlobalAveragePool", ["r"], ["p"])]
    nodes += [H("Flatten", ["p"], ["f"]), H("MatMul", ["f", "Wo"], ["y"])]
    # the flattened size after the pooling, from the reference run
    probe = build(nodes[:-1], inits, [1, 2, 6, 5], out_name="f")
    size = ReferenceEvaluator(probe).run(None, {"x": np.zeros((1, 2, 6, 5))})[0].shape[1]
    inits["Wo"] = RNG.normal(size=(size, 3))
    model = build(nodes, inits, [1, 2, 6, 5])
    network = pc.load(save(model, tmp_path))
    assert network.input_dim == 60
    if pool == "max_after_relu":
        assert network.layers[0].kind == "relu_maxpool"
    if pool == "max_no_relu":
        assert network.layers[0].kind == "maso"
    assert max_forward_error(model, network) < 1e-10


def test_unsupported_operator_is_named(tmp_path):
    H = helper.make_node
    model = build([H("MatMul", ["x", "W"], ["h"], name="dense_1"),
                   H("Sigmoid", ["h"], ["y"], name="act_1")], {"W": W1.T}, [1, 4])
    with pytest.raises(pc.UnsupportedLayerError, match="'act_1'.*Sigmoid"):
        pc.load(save(model, tmp_path))
    skip = build([H("MatMul", ["x", "W"], ["h"]), H("Relu", ["h"], ["r"]),
                  H("Add", ["r", "h"], ["y"], name="skip")], {"W": W1.T}, [1, 4])
    with pytest.raises(pc.UnsupportedLayerError, match="skip"):
        pc.load(save(skip, tmp_path, "skip.onnx"))
    with pytest.raises(pc.NetworkError, match="cannot read ONNX"):
        bad = tmp_path / "bad.onnx"
        bad.write_bytes(b"not a model")
        pc.load(bad)
    with pytest.raises(pc.NetworkError, match="no such file"):
        pc.load(tmp_path / "missing.onnx")
