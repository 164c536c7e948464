"""Soft VQ (SPEC §7): the identities of smooth activations as soft codes, the hard (MASO) limit
of smooth networks read by every importer, its record through save / load / info, the CLI
flags, and the errors for bad arguments."""

import itertools
import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, ndtr
from strategies import integer_networks

import powercells as pc
from powercells import soft_vq as sv
from powercells.cli import EXIT_ERROR, main
from powercells.io.npz import load_npz
from powercells.network.layers import SmoothActivation

TOL = 1e-12


def weights(seed=0, dims=(2, 6, 5, 3)):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(dims[i + 1], dims[i])), rng.normal(size=dims[i + 1]))
            for i in range(len(dims) - 1)]


def points(n=200, d=2, seed=1, scale=3.0):
    return np.random.default_rng(seed).normal(size=(n, d)) * scale


def dense_forward(pairs, acts, X):
    """A float64 reference forward pass with numpy activations."""
    Z = X
    for (W, b), act in zip(pairs, acts):
        Z = act(Z @ W.T + b)
    return Z


def same_layers(a, b):
    """Two networks are the same chain of MASOs: identical kinds and pieces, bit for bit."""
    assert [layer.kind for layer in a.layers] == [layer.kind for layer in b.layers]
    for la, lb in zip(a.layers, b.layers):
        assert np.array_equal(la.A, lb.A) and np.array_equal(la.B, lb.B)
        assert np.array_equal(la.n_pieces, lb.n_pieces)


def silu(h):
    return h * expit(h)


def gelu(h):
    return h * ndtr(h)


def identity(h):
    return h


# ---------------------------------------------------------------------- identities
def test_sigmoid_is_the_expected_code_and_silu_the_soft_output():
    pairs = weights()
    relu = pc.Network.from_weights(pairs)
    X = points()
    sc = sv.soft_codes(relu, X, temperature=1.0)
    h1 = X @ pairs[0][0].T + pairs[0][1]
    np.testing.assert_allclose(sc.expected_code[0], expit(h1), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(sc.memberships[0][:, :, 1], expit(h1), rtol=TOL, atol=TOL)
    ref = dense_forward(pairs, [silu, silu, identity], X)
    np.testing.assert_allclose(sc.output, ref, rtol=TOL, atol=TOL)
    # a SiLU network read as its hard limit evaluates to the same smooth network
    limit = pc.Network.from_weights(pairs, ["silu", "silu", "identity"], hard_limit=True)
    np.testing.assert_allclose(sv.soft_forward(limit, X), ref, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(sv.deviation(limit, X),
                               np.linalg.norm(ref - relu.forward(X), axis=1), rtol=TOL, atol=TOL)


def test_abs_soft_vq_is_h_tanh_h_with_expected_slope_tanh():
    pairs = weights(seed=2)
    net = pc.Network.from_weights(pairs, ["abs", "abs", "identity"])
    X = points(seed=3)
    sc = sv.soft_codes(net, X, temperature=1.0)
    h1 = X @ pairs[0][0].T + pairs[0][1]
    np.testing.assert_allclose(2 * sc.expected_code[0] - 1, np.tanh(h1), rtol=TOL, atol=TOL)
    ref = dense_forward(pairs, [lambda h: h * np.tanh(h)] * 2 + [identity], X)
    np.testing.assert_allclose(sc.output, ref, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("slope", [0.0, 0.2, -1.0])
@pytest.mark.parametrize("beta", [0.0, 0.25, 0.5, 0.9])
def test_beta_vq_is_the_soft_vq_at_temperature_one_minus_beta_over_beta(beta, slope):
    act = "relu" if slope == 0 else "abs" if slope == -1 else f"leaky_relu:{slope}"
    pairs = weights(seed=4, dims=(3, 5, 2))
    net = pc.Network.from_weights(pairs, [act, "identity"])
    X = points(d=3, seed=5)
    T = np.inf if beta == 0 else (1 - beta) / beta
    ref = dense_forward(pairs, [lambda h: sv.beta_vq(h, beta, slope=slope), identity], X)
    np.testing.assert_allclose(sv.soft_forward(net, X, temperature=T), ref, rtol=TOL, atol=TOL)
    # the authors' leaky_relu(alpha, beta): h (a e^{a c h} + e^{c h}) / (e^{a c h} + e^{c h})
    h = np.linspace(-4, 4, 81)
    c = beta / (1 - beta)
    authors = h * (slope * np.exp(slope * c * h) + np.exp(c * h)) / (
        np.exp(slope * c * h) + np.exp(c * h))
    np.testing.assert_allclose(sv.beta_vq(h, beta, slope=slope), authors, rtol=TOL, atol=TOL)


def test_beta_vq_family_runs_from_linear_through_silu_to_relu():
    h = np.linspace(-6, 6, 1201)
    np.testing.assert_allclose(sv.beta_vq(h, 0.0), h / 2, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(sv.beta_vq(h, 0.5), silu(h), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(sv.beta_vq(h, 0.5, slope=-1), h * np.tanh(h), rtol=TOL, atol=TOL)
    assert np.array_equal(sv.beta_vq(h, 1.0), np.maximum(h, 0))
    assert np.array_equal(sv.beta_vq(h, 1.0, slope=-1), np.abs(h))
    # beta -> 1: sup |h| sigmoid(-c |h|) < 0.2785 / c, c = beta / (1 - beta)
    for beta in (0.9, 0.99, 0.999, 1 - 1e-6):
        c = beta / (1 - beta)
        assert np.abs(sv.beta_vq(h, beta) - np.maximum(h, 0)).max() <= 0.2785 / c
    assert np.abs(sv.beta_vq(h[np.abs(h) > 1e-3], 1 - 1e-12)
                  - np.maximum(h[np.abs(h) > 1e-3], 0)).max() <= TOL


def test_memberships_factorise_over_units_as_the_soft_power_diagram():
    """p(r|x) = softmax_r(-(||x - mu_r||^2 - rad_r) / (2T)) over every code r of the layer
    (SPEC §2.3 sites) is the product of the units' memberships (SPEC §7)."""
    rng = np.random.default_rng(6)
    W, b = rng.normal(size=(4, 3)), rng.normal(size=4)
    net = pc.Network.from_weights([(W, b)], ["leaky_relu:0.3"])
    layer = net.layers[0]
    X = rng.normal(size=(40, 3))
    T = 0.7
    P = sv.memberships(net, X, temperature=T, layer=1)
    codes = np.array(list(itertools.product(range(2), repeat=4)))
    mu = np.stack([layer.selected(r)[0].sum(axis=0) for r in codes])        # A_r^T 1
    rad = np.array([2 * layer.selected(r)[1].sum() for r in codes]) + (mu ** 2).sum(axis=1)
    power = ((X[:, None, :] - mu[None]) ** 2).sum(axis=2) - rad
    logits = -power / (2 * T)
    joint = np.exp(logits - logits.max(axis=1, keepdims=True))
    joint /= joint.sum(axis=1, keepdims=True)
    product = np.prod(P[:, np.arange(4), codes], axis=2)                  # (n, 16)
    np.testing.assert_allclose(product, joint, rtol=1e-10, atol=TOL)
    # the layer's code entropy is the entropy of that joint distribution
    joint_entropy = -(joint * np.log(joint)).sum(axis=1)
    np.testing.assert_allclose(sv.code_entropy(net, X, temperature=T, layer=1), joint_entropy,
                               rtol=1e-10, atol=TOL)


def test_temperature_zero_is_the_hard_code_and_infinity_uniform():
    net = pc.Network.from_weights(weights(seed=7), ["relu", "abs", "identity"])
    X = points(seed=8)
    codes = net.codes(X)
    for T in (0.0, 1e-300):
        sc = sv.soft_codes(net, X, temperature=T)
        for P, q in zip(sc.memberships, codes):
            assert np.array_equal(P.argmax(axis=2), q)
            assert np.array_equal(P.max(axis=2), np.ones(q.shape))
        assert np.all(sc.total_entropy == 0)
        if T == 0:          # the hard network itself, bit for bit
            assert np.array_equal(sc.output, net.forward(X)) and np.all(sc.deviation == 0)
        else:               # the same pieces, summed in another order
            np.testing.assert_allclose(sc.output, net.forward(X), rtol=TOL, atol=TOL)
    sc = sv.soft_codes(net, X, temperature=np.inf)
    np.testing.assert_allclose(sc.layer_entropy, np.tile([6 * np.log(2), 5 * np.log(2), 0],
                                                         (len(X), 1)), rtol=TOL)
    # without smooth records, the network as given is the hard network
    assert np.array_equal(sv.soft_forward(net, X), net.forward(X))


def test_entropy_falls_as_the_temperature_falls():
    net = pc.Network.from_weights(weights(seed=9))
    X = points(seed=10)
    H = [sv.code_entropy(net, X, temperature=T).mean() for T in (8.0, 2.0, 1.0, 0.5, 0.1)]
    assert all(a > b for a, b in itertools.pairwise(H))


def test_ragged_max_pool_memberships_skip_the_padding():
    rng = np.random.default_rng(11)
    W, b = rng.normal(size=(5, 2)), rng.normal(size=5)
    layer = pc.Layer.relu_maxpool(W, b, [[0, 1, 2], [3], [3, 4]], name="pool")
    net = pc.Network([layer])
    X = rng.normal(size=(30, 2))
    P = sv.memberships(net, X, temperature=0.5, layer=1)
    np.testing.assert_allclose(P.sum(axis=2), 1.0, rtol=TOL)
    assert np.all(P[:, 1, 2:] == 0) and np.all(P[:, 2, 3:] == 0)   # padded pieces
    h = X @ W.T + b
    ell = np.stack([np.zeros(len(X)), h[:, 3], h[:, 4]], axis=1)
    w = np.exp((ell - ell.max(axis=1, keepdims=True)) / 0.5)
    w /= w.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(sv.soft_forward(net, X, temperature=0.5)[:, 2],
                               (w * ell).sum(axis=1), rtol=TOL, atol=TOL)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), T=st.floats(0.05, 20.0), n=st.integers(1, 20),
       act=st.sampled_from(["relu", "abs", "leaky_relu:0.5", "maxout:3"]))
def test_soft_codes_are_distributions_whose_argmax_is_the_code(seed, T, n, act):
    rng = np.random.default_rng(seed)
    rows = 12 if act == "maxout:3" else 4
    net = pc.Network.from_weights([(rng.normal(size=(rows, 3)), rng.normal(size=rows)),
                                   (rng.normal(size=(2, 4)), rng.normal(size=2))],
                                  [act, "identity"])
    X = rng.normal(size=(n, 3))
    sc = sv.soft_codes(net, X, temperature=T)
    for P in sc.memberships:
        np.testing.assert_allclose(P.sum(axis=2), 1.0, rtol=1e-12)
        assert np.all(P >= 0)
    vals = np.einsum("krd,nd->nkr", net.layers[0].A, X) + net.layers[0].B
    gaps = np.sort(vals, axis=2)
    clear = gaps[:, :, -1] - gaps[:, :, -2] > 1e-9
    assert np.array_equal(sc.memberships[0].argmax(axis=2)[clear], net.codes(X)[0][clear])
    assert np.all(sc.entropy[0] <= np.log(vals.shape[2]) + 1e-12)


@settings(max_examples=40, deadline=None)
@given(case=integer_networks(), seed=st.integers(0, 1000))
def test_temperature_zero_is_the_hard_network_on_degenerate_networks(case, seed):
    """Integer weights put points on ties and units identically zero: T = 0 still gives the
    codes of SPEC §1.3 (ties to the smallest piece) and the network itself, bit for bit."""
    net, d = case
    X = np.random.default_rng(seed).integers(-2, 3, size=(12, d)).astype(float)
    sc = sv.soft_codes(net, X, temperature=0.0)
    for P, q in zip(sc.memberships, net.codes(X)):
        assert np.array_equal(P.argmax(axis=2), q) and np.all(P.sum(axis=2) == 1)
    assert np.array_equal(sc.output, net.forward(X))
    assert np.array_equal(sv.soft_forward(net, X), net.forward(X))     # no smooth records


# ---------------------------------------------------------------------- the hard limit
@pytest.mark.parametrize("smooth,hard", [("silu", "relu"), ("gelu", "relu"),
                                         ("swish:2.5", "relu"), ("softplus", "relu"),
                                         ("soft_abs", "abs"), ("beta_vq:0.5:0.25",
                                                              "leaky_relu:0.25")])
def test_npz_hard_limit_is_the_maso_of_the_same_weights(smooth, hard, tmp_path):
    pairs = weights(seed=12)
    path = tmp_path / "smooth.npz"
    np.savez(path, W0=pairs[0][0], b0=pairs[0][1], W1=pairs[1][0], b1=pairs[1][1],
             W2=pairs[2][0], b2=pairs[2][1], activations=np.array([smooth, smooth, "identity"]))
    with pytest.raises(pc.UnsupportedLayerError, match=r"layer 1: .* is smooth, not "
                       r"piecewise-affine; pass hard_limit=True \(CLI: --hard-limit\)"):
        load_npz(path)
    net = load_npz(path, hard_limit=True)
    maso = pc.Network.from_weights(pairs, [hard, hard, "identity"])
    same_layers(net, maso)
    box = pc.Box(-3, 3, dim=2)
    assert pc.count_regions(net, box).per_layer == pc.count_regions(maso, box).per_layer
    assert set(net.hard_limit) == {1, 2}
    # save and load again: the file keeps the smooth activation, the limit comes back
    pc.save_npz(net, tmp_path / "again.npz")
    again = load_npz(tmp_path / "again.npz", hard_limit=True)
    same_layers(again, maso)
    assert again.hard_limit == net.hard_limit
    X = points(seed=13)
    assert np.array_equal(sv.soft_forward(again, X), sv.soft_forward(net, X))


def test_gelu_npz_soft_forward_is_gelu():
    pairs = weights(seed=14)
    net = pc.Network.from_weights(pairs, ["gelu", "gelu", "identity"], hard_limit=True)
    X = points(seed=15)
    np.testing.assert_allclose(sv.soft_forward(net, X),
                               dense_forward(pairs, [gelu, gelu, identity], X),
                               rtol=TOL, atol=TOL)
    assert net.hard_limit == {1: SmoothActivation("gelu"), 2: SmoothActivation("gelu")}


def test_records_survive_slices_pickles_and_summaries():
    pairs = weights(seed=16, dims=(3, 4, 1))
    net = pc.Network.from_weights(pairs, ["mish:2", "identity"], hard_limit=True)
    assert "relu 3 -> 4 (hard limit of Mish (s=2))" in net.summary()
    assert pickle.loads(pickle.dumps(net)).hard_limit == net.hard_limit
    plane = pc.Slice.through_points(np.eye(3), inner=pc.Box(-1, 1, dim=2))
    tree = pc.subdivide(net, plane)
    assert tree.network.hard_limit == net.hard_limit
    T = tree.levels[1].interior_point
    np.testing.assert_allclose(sv.soft_forward(tree.network, T),
                               sv.soft_forward(net, plane.to_input(T)), rtol=1e-12, atol=TOL)
    sc = sv.region_soft_codes(tree, 1, temperature=0.0)
    assert np.array_equal(sc.memberships[0].argmax(axis=2), tree.levels[1].code)
    assert sv.region_soft_codes(tree).total_entropy.shape == (tree.n_regions,)


def test_no_limit_activations_are_refused_with_and_without_the_option():
    pairs = weights(seed=17, dims=(2, 3, 1))
    for act in ("sigmoid", "tanh", "softmax"):
        for hard_limit in (False, True):
            with pytest.raises(pc.UnsupportedLayerError, match=f"{act} is smooth.*no MASO "
                               "limit"):
                pc.Network.from_weights(pairs, [act, "identity"], hard_limit=hard_limit)
        with pytest.raises(pc.UnsupportedLayerError, match="no MASO limit"):
            sv.limit_of(act)
    assert sv.limit_of("silu") == "relu" and sv.limit_of("soft_abs") == "abs"
    assert sv.HARD_LIMITS["gelu"] == "relu" and sv.HARD_LIMITS["soft_maxpool"] == "max-pool"
    assert sv.limit_of("beta_vq:0.5:0.1") == "leaky_relu:0.1"
    with pytest.raises(pc.NetworkError, match="scale must be positive"):
        pc.Network.from_weights(pairs, ["swish:-1", "identity"], hard_limit=True)


# ---------------------------------------------------------------------- torch
def torch_pair(act, seed=0, dims=(2, 6, 5, 1)):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(seed)
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(act())
    smooth = nn.Sequential(*layers).double().eval()
    relu = nn.Sequential(*[nn.ReLU() if not isinstance(m, nn.Linear) else m
                           for m in smooth]).double().eval()
    return torch, smooth, relu


@pytest.mark.parametrize("name", ["SiLU", "GELU", "GELU_tanh", "Softplus", "Hardswish", "Mish",
                                  "BetaVQ"])
def test_torch_hard_limit_counts_equal_relu(name):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    act = {"SiLU": nn.SiLU, "GELU": nn.GELU, "GELU_tanh": lambda: nn.GELU(approximate="tanh"),
           "Softplus": lambda: nn.Softplus(beta=1.5, threshold=60), "Hardswish": nn.Hardswish,
           "Mish": nn.Mish, "BetaVQ": lambda: sv.BetaVQ(0.7)}[name]
    torch, smooth, relu = torch_pair(act, seed=3)
    with pytest.raises(pc.UnsupportedLayerError, match=r"module 1 \(.*\): .* is smooth.*"
                       r"hard_limit=True \(CLI: --hard-limit\) to use its ReLU limit"):
        pc.from_torch(smooth, (2,))
    net = pc.from_torch(smooth, (2,), hard_limit=True)
    ref = pc.from_torch(relu, (2,))
    same_layers(net, ref)
    box = pc.Box(-2, 2, dim=2)
    assert pc.count_regions(net, box).per_layer == pc.count_regions(ref, box).per_layer
    X = points(seed=4)
    with torch.no_grad():
        out = smooth(torch.from_numpy(X)).numpy()
    tol = 1e-10 if name == "Mish" else TOL    # torch's Mish thresholds its softplus at 20
    np.testing.assert_allclose(sv.soft_forward(net, X), out, rtol=tol, atol=tol)


def test_torch_beta_vq_module_is_the_family():
    torch = pytest.importorskip("torch")
    x = torch.linspace(-6, 6, 601, dtype=torch.float64)
    np.testing.assert_allclose(sv.BetaVQ(0.5)(x).numpy(), torch.nn.functional.silu(x).numpy(),
                               rtol=TOL, atol=TOL)
    np.testing.assert_allclose(sv.BetaVQ(0.0)(x).numpy(), x.numpy() / 2, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(sv.BetaVQ(0.5, slope=-1)(x).numpy(),
                               (x * torch.tanh(x)).numpy(), rtol=TOL, atol=TOL)
    assert torch.equal(sv.BetaVQ(1.0)(x), torch.relu(x))
    module = sv.BetaVQ(0.3, slope=0.1)
    module.beta = 0.8
    np.testing.assert_allclose(module(x).numpy(), sv.beta_vq(x.numpy(), 0.8, slope=0.1),
                               rtol=TOL, atol=TOL)
    again = pickle.loads(pickle.dumps(torch.nn.Sequential(module)))
    assert again[0].beta == 0.8 and again[0].slope == 0.1
    # beta = 1 is piecewise-affine: no option needed, no record
    net = pc.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 3), sv.BetaVQ(1.0, slope=-1),
                                            torch.nn.Linear(3, 1)).double(), (2,))
    assert net.layers[0].kind == "abs" and not net.hard_limit
    with pytest.raises(pc.OptionError, match=r"beta must lie in \[0, 1\]"):
        sv.BetaVQ(1.5)
    with pytest.raises(pc.OptionError, match="beta must lie"):
        module.beta = -0.1
    with pytest.raises(pc.OptionError, match="slope must be -1"):
        sv.BetaVQ(0.5, slope=1.5)


def test_torch_silu_then_max_pool_is_the_relu_max_pool_layer():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(5)
    smooth = nn.Sequential(nn.Conv2d(1, 2, 3), nn.SiLU(), nn.MaxPool2d(2), nn.Flatten(),
                           nn.Linear(8, 2)).double().eval()
    relu = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8, 2)).double().eval()
    relu.load_state_dict(smooth.state_dict())
    net = pc.from_torch(smooth, (1, 6, 6), hard_limit=True)
    same_layers(net, pc.from_torch(relu, (1, 6, 6)))
    assert net.layers[0].kind == "relu_maxpool" and net.hard_limit[1].name == "SiLU"
    X = np.random.default_rng(6).normal(size=(40, 36))
    with torch.no_grad():
        out = smooth(torch.from_numpy(X).reshape(40, 1, 6, 6)).numpy()
    np.testing.assert_allclose(sv.soft_forward(net, X), out, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(sv.memberships(net, X, layer=1).sum(axis=2), 1.0, rtol=TOL)


def test_torch_soft_max_pool_limit_is_max_pooling():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(7)
    pool = sv.SoftMaxPool2d(2, temperature=0.5)
    smooth = nn.Sequential(nn.Conv2d(1, 2, 3), pool, nn.Flatten(), nn.Linear(8, 2)).double()
    hard = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8, 2)).double()
    hard.load_state_dict(smooth.state_dict())
    with pytest.raises(pc.UnsupportedLayerError, match=r"soft max-pool \(s=2\) is smooth"):
        pc.from_torch(smooth, (1, 6, 6))
    net = pc.from_torch(smooth, (1, 6, 6), hard_limit=True)
    same_layers(net, pc.from_torch(hard, (1, 6, 6)))
    assert net.layers[0].smooth == SmoothActivation("soft_maxpool", 2.0)
    X = np.random.default_rng(8).normal(size=(40, 36))
    with torch.no_grad():
        out = smooth(torch.from_numpy(X).reshape(40, 1, 6, 6)).numpy()
        tiny = smooth[1]
        tiny.temperature = 0.0
        hard_out = smooth(torch.from_numpy(X).reshape(40, 1, 6, 6)).numpy()
    np.testing.assert_allclose(sv.soft_forward(net, X), out, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(net.forward(X), hard_out, rtol=TOL, atol=TOL)


def test_torch_sigmoid_and_tanh_have_no_limit():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    for act in (nn.Sigmoid(), nn.Tanh()):
        with pytest.raises(pc.UnsupportedLayerError, match="no MASO limit"):
            pc.from_torch(nn.Sequential(nn.Linear(2, 2), act), (2,), hard_limit=True)


# ---------------------------------------------------------------------- ONNX
def onnx_model(act_nodes, inits=(), opset=13, seed=0, tmp_path=None, name="m.onnx"):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    W1, b1, W2, b2 = rng.normal(size=(2, 5)), rng.normal(size=5), rng.normal(size=(5, 2)), \
        rng.normal(size=2)
    values = {"W1": W1, "b1": b1, "W2": W2, "b2": b2, **dict(inits)}
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["m"], name="mm1"),
             helper.make_node("Add", ["m", "b1"], ["h"], name="add1"), *nodes_of(act_nodes),
             helper.make_node("MatMul", ["a", "W2"], ["m2"], name="mm2"),
             helper.make_node("Add", ["m2", "b2"], ["y"], name="add2")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float64), k) for k, v in values.items()])
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path, (W1.T, b1), (W2.T, b2)


def N(op, inputs, output, **attrs):
    """An ONNX node, as a spec (made into a NodeProto when a model is built: onnx is
    optional)."""
    return (op, inputs, output, attrs)


def nodes_of(specs):
    from onnx import helper

    return [helper.make_node(op, inputs, [output], name=output + "_node", **attrs)
            for op, inputs, output, attrs in specs]


ONNX_CASES = {
    # name: (nodes, constants, opset, numpy activation, limit, record)
    "silu": ([N("Sigmoid", ["h"], "s"), N("Mul", ["h", "s"], "a")], {}, 13, silu, "relu",
             SmoothActivation("swish")),
    "swish_scaled": ([N("Mul", ["h", "k"], "hk"), N("Sigmoid", ["hk"], "s"),
                      N("Mul", ["s", "h"], "a")], {"k": 1.702}, 13,
                     lambda h: h * expit(1.702 * h), "relu", SmoothActivation("swish", 1.702)),
    "gelu_erf": ([N("Div", ["h", "sq"], "hd"), N("Erf", ["hd"], "e"), N("Add", ["e", "one"], "e1"),
                  N("Mul", ["h", "e1"], "he"), N("Mul", ["he", "half"], "a")],
                 {"sq": np.sqrt(2.0), "one": 1.0, "half": 0.5}, 13, gelu, "relu", None),
    "gelu_op": ([N("Gelu", ["h"], "a")], {}, 20, gelu, "relu", SmoothActivation("gelu")),
    "softplus": ([N("Softplus", ["h"], "a")], {}, 13, lambda h: np.logaddexp(0, h), "relu",
                 SmoothActivation("softplus")),
    "hardswish": ([N("HardSwish", ["h"], "a")], {}, 14,
                  lambda h: h * np.clip(h / 6 + 0.5, 0, 1), "relu",
                  SmoothActivation("hardswish")),
    "hardsigmoid_gate": ([N("HardSigmoid", ["h"], "g", alpha=0.25, beta=0.5),
                          N("Mul", ["h", "g"], "a")], {}, 13,
                         lambda h: h * np.clip(h / 4 + 0.5, 0, 1), "relu",
                         SmoothActivation("hardswish", 1.5)),
    "swish_op": ([N("Swish", ["h"], "a", alpha=2.0)], {}, 24, lambda h: h * expit(2 * h),
                 "relu", SmoothActivation("swish", 2.0)),
    "mish": ([N("Mish", ["h"], "a")], {}, 18, lambda h: h * np.tanh(np.logaddexp(0, h)),
             "relu", SmoothActivation("mish")),
    "soft_abs": ([N("Tanh", ["h"], "t"), N("Mul", ["t", "h"], "a")], {}, 13,
                 lambda h: h * np.tanh(h), "abs", SmoothActivation("soft_abs")),
}


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_onnx_hard_limit_is_the_maso_of_the_same_weights(case, tmp_path):
    nodes, consts, opset, act, limit, record = ONNX_CASES[case]
    path, (W1, b1), (W2, b2) = onnx_model(nodes, consts, opset, tmp_path=tmp_path)
    with pytest.raises(pc.UnsupportedLayerError, match=r"hard_limit=True \(CLI: --hard-limit\)"):
        pc.from_onnx(path)
    net = pc.from_onnx(path, hard_limit=True)
    maso = pc.Network.from_weights([(W1, b1), (W2, b2)], [limit, "identity"])
    same_layers(net, maso)
    if record is not None:
        assert net.hard_limit == {1: record}
    else:
        assert net.hard_limit[1].kind == "gelu"
        assert net.hard_limit[1].param == pytest.approx(1.0, rel=1e-15)
    X = points(seed=9)
    np.testing.assert_allclose(sv.soft_forward(net, X),
                               dense_forward([(W1, b1), (W2, b2)], [act, identity], X),
                               rtol=TOL, atol=TOL)
    box = pc.Box(-3, 3, dim=2)
    assert pc.count_regions(net, box).per_layer == pc.count_regions(maso, box).per_layer


@pytest.mark.parametrize("nodes,consts,match", [
    ([N("Sigmoid", ["h"], "a")], {}, "Sigmoid of node 'a_node' is read by MatMul.*no MASO limit"),
    ([N("Sigmoid", ["h"], "s"), N("Relu", ["s"], "a")], {}, "is read by Relu"),
    ([N("Neg", ["h"], "n"), N("Sigmoid", ["n"], "s"), N("Mul", ["h", "s"], "a")], {},
     "not a positive multiple"),
    ([N("Add", ["h", "c"], "hc"), N("Sigmoid", ["hc"], "s"), N("Mul", ["h", "s"], "a")],
     {"c": 0.1}, "not a positive multiple"),
    ([N("Sigmoid", ["h"], "s"), N("Sub", ["s", "one"], "s1"), N("Mul", ["h", "s1"], "a")],
     {"one": 1.0}, "tends to -1 x for x < 0 and 0 x for x > 0"),
    ([N("Erf", ["h"], "e"), N("Mul", ["h", "e"], "a")], {}, "not a ReLU or abs shape"),
    ([N("HardSigmoid", ["h"], "g", alpha=0.2, beta=0.6), N("Mul", ["h", "g"], "a")], {},
     "not centred"),
    ([N("Softmax", ["h"], "a")], {}, "softmax is smooth.*no MASO limit"),
])
def test_onnx_gates_without_a_limit_are_refused(nodes, consts, match, tmp_path):
    path, _, _ = onnx_model(nodes, consts, tmp_path=tmp_path)
    with pytest.raises(pc.UnsupportedLayerError, match=match):
        pc.from_onnx(path, hard_limit=True)


def test_onnx_gelu_then_max_pool_merges_like_relu(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(10)
    w = rng.normal(size=(2, 1, 3, 3))
    lin = rng.normal(size=(8, 2))

    def model(acts, name):
        nodes = nodes_of([N("Conv", ["x", "w"], "h"), *acts,
                          N("MaxPool", ["a"], "p", kernel_shape=[2, 2], strides=[2, 2]),
                          N("Flatten", ["p"], "f"), N("MatMul", ["f", "lin"], "y")])
        graph = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 1, 6, 6])],
            [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)],
            [numpy_helper.from_array(v, k) for k, v in
             {"w": w, "lin": lin, "sq": np.array(np.sqrt(2.0)), "one": np.array(1.0),
              "half": np.array(0.5)}.items()])
        path = tmp_path / name
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
        return path

    gelu_path = model([N("Div", ["h", "sq"], "hd"), N("Erf", ["hd"], "e"),
                       N("Add", ["e", "one"], "e1"), N("Mul", ["h", "e1"], "he"),
                       N("Mul", ["he", "half"], "a")], "gelu.onnx")
    relu_path = model([N("Relu", ["h"], "a")], "relu.onnx")
    net = pc.from_onnx(gelu_path, hard_limit=True)
    same_layers(net, pc.from_onnx(relu_path))
    assert net.layers[0].kind == "relu_maxpool" and net.hard_limit[1].kind == "gelu"


# ---------------------------------------------------------------------- arguments
def test_bad_arguments_raise_clear_errors():
    net = pc.Network.from_weights(weights(seed=18))
    X = points(seed=19)
    for T in (-1.0, np.nan, "hot", True):
        with pytest.raises(pc.OptionError, match="temperature must be a number"):
            sv.soft_codes(net, X, temperature=T)
    with pytest.raises(pc.PointError, match=r"shape \(n, 2\)"):
        sv.memberships(net, np.zeros((4, 3)))
    with pytest.raises(pc.PointError, match="NaN"):
        sv.expected_code(net, [[np.nan, 0.0]])
    for layer in (0, 4, 1.5, True):
        with pytest.raises(pc.OptionError, match="layer"):
            sv.code_entropy(net, X, layer=layer)
    with pytest.raises(pc.OptionError, match="expected a Network"):
        sv.soft_forward("net.npz", X)
    with pytest.raises(pc.OptionError, match="ord must be"):
        sv.deviation(net, X, ord=3)
    with pytest.raises(pc.OptionError, match="n_samples must be a positive integer"):
        sv.sampled_deviation(net, pc.Box(-1, 1, dim=2), n_samples=0)
    with pytest.raises(pc.DomainError):
        sv.sampled_deviation(net, pc.Box(-1, 1, dim=3))
    for beta in (-0.1, 1.1, np.nan, "half"):
        with pytest.raises(pc.OptionError, match="beta must"):
            sv.beta_vq(np.zeros(3), beta)
    with pytest.raises(pc.OptionError, match="slope must be -1"):
        sv.beta_vq(np.zeros(3), 0.5, slope=-0.5)
    with pytest.raises(pc.NetworkError, match="unknown smooth activation"):
        SmoothActivation("sigmoid")
    with pytest.raises(pc.NetworkError, match=r"beta must lie in \[0, 1\)"):
        SmoothActivation("beta_vq", 1.0)
    with pytest.raises(pc.NetworkError, match="swish: the scale must be positive"):
        SmoothActivation("swish", 0.0)
    tree = pc.subdivide(net, pc.Box(-1, 1, dim=2))
    with pytest.raises(pc.OptionError, match="layer must be an integer 0..3"):
        sv.region_soft_codes(tree, 4)
    # all of them are ValueErrors, as the package's argument errors are
    assert issubclass(pc.OptionError, ValueError) and issubclass(pc.PointError, ValueError)


def test_sampled_deviation_shrinks_with_the_temperature():
    net = pc.Network.from_weights(weights(seed=20))
    box = pc.Box(-2, 2, dim=2)
    devs = [sv.sampled_deviation(net, box, n_samples=500, seed=0, temperature=T).max
            for T in (1.0, 0.1, 0.01, 0.0)]
    assert devs[0] > devs[1] > devs[2] > devs[3] == 0.0
    d = sv.sampled_deviation(net, box, n_samples=300, seed=1, temperature=0.5)
    assert d.points.shape == (300, 2) and d.values.shape == (300,)
    assert d.mean <= d.rms <= d.max


# ---------------------------------------------------------------------- command line
@pytest.fixture
def smooth_files(tmp_path):
    pairs = weights(seed=21, dims=(2, 6, 4, 1))
    arrays = {f"{k}{i}": v for i, (W, b) in enumerate(pairs) for k, v in (("W", W), ("b", b))}
    smooth = tmp_path / "smooth.npz"
    np.savez(smooth, activations=np.array(["silu", "gelu", "identity"]), **arrays)
    relu = tmp_path / "relu.npz"
    np.savez(relu, activations=np.array(["relu", "relu", "identity"]), **arrays)
    return str(smooth), str(relu), tmp_path


@pytest.mark.parametrize("command", [["count", "--box", "-1", "1"], ["info"],
                                     ["plot", "--box", "-1", "1", "--out", "{png}"],
                                     ["export", "--box", "-1", "1", "--out", "{dir}"]])
def test_cli_refuses_smooth_networks_naming_the_flag(command, smooth_files, capsys):
    smooth, _, tmp = smooth_files
    argv = [command[0], smooth] + [a.format(png=tmp / "x.png", dir=tmp / "out")
                                   for a in command[1:]]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--hard-limit" in err and "SiLU is smooth" in err
    assert main(argv + ["--hard-limit"]) == 0


def test_cli_hard_limit_counts_and_info(smooth_files, capsys):
    smooth, relu, _ = smooth_files
    assert main(["count", smooth, "--box", "-1", "1", "--json", "--hard-limit"]) == 0
    ours = json.loads(capsys.readouterr().out)
    assert main(["count", relu, "--box", "-1", "1", "--json"]) == 0
    assert ours["per_layer"] == json.loads(capsys.readouterr().out)["per_layer"]
    assert main(["count", smooth, "--box", "-1", "1", "--hard-limit"]) == 0
    assert "hard limit: layer 1 SiLU -> relu, layer 2 GELU -> relu" in capsys.readouterr().out
    assert main(["info", smooth, "--hard-limit"]) == 0
    out = capsys.readouterr().out
    assert "(hard limit of SiLU)" in out and "(hard limit of GELU)" in out
    assert main(["info", smooth, "--hard-limit", "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert [layer["hard_limit_of"] for layer in layers] == ["SiLU", "GELU", None]


def test_cli_plot_soft_writes_a_file(smooth_files, capsys):
    pytest.importorskip("matplotlib")
    smooth, relu, tmp = smooth_files
    for argv in (["plot", smooth, "--box", "-1", "1", "--hard-limit", "--soft"],
                 ["plot", relu, "--box", "-1", "1", "--soft", "--temperature", "0.5"],
                 ["plot", smooth, "--box", "-1", "1", "--hard-limit", "--soft", "--layer", "1",
                  "--membership", "2", "--temperature", "own", "--size", "200", "200"]):
        out = tmp / "soft.png"
        if out.exists():
            out.unlink()
        assert main(argv + ["--out", str(out)]) == 0, capsys.readouterr().err
        assert out.stat().st_size > 1000
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("extra,match", [
    (["--temperature", "0.5"], "add --soft"),
    (["--soft", "--membership", "1"], "needs --layer"),
    (["--soft", "--all-layers"], "drop --all-layers"),
    (["--soft", "--layer", "1", "--membership", "9"], "units 0..5"),
    (["--soft", "--temperature", "-2"], "a temperature is a number >= 0"),
])
def test_cli_plot_soft_bad_options(extra, match, smooth_files, capsys):
    pytest.importorskip("matplotlib")
    _, relu, tmp = smooth_files
    argv = ["plot", relu, "--box", "-1", "1", "--out", str(tmp / "y.png"), *extra]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err
    assert not (tmp / "y.png").exists()


def test_plot_soft_draws_the_entropy_under_the_edges():
    pytest.importorskip("matplotlib")
    from powercells.plot import _pyplot, plot_soft

    net = pc.Network.from_weights(weights(seed=22), ["silu", "silu", "identity"],
                                  hard_limit=True)
    tree = pc.subdivide(net, pc.Box(-1, 1, dim=2))
    ax = plot_soft(tree, resolution=32)
    image = np.asarray(ax.images[0].get_array())
    xs = np.linspace(-1, 1, 32)
    corners = [(0, 0), (0, 31), (31, 0), (17, 5)]
    expected = sv.code_entropy(net, [[xs[j], xs[i]] for i, j in corners])
    np.testing.assert_allclose([image[i, j] for i, j in corners], expected, rtol=1e-12)
    assert len(ax.collections) == 1                      # the hard edges, drawn over
    ax = plot_soft(tree, 1, temperature=0.0, unit=2, resolution=16)
    codes = net.codes([[x, y] for y in np.linspace(-1, 1, 16) for x in np.linspace(-1, 1, 16)])
    assert np.array_equal(np.asarray(ax.images[0].get_array()).reshape(-1), codes[0][:, 2])
    _pyplot().close("all")
    for kwargs, match in [({"unit": 0}, "unit needs its layer"), ({"layer": 4}, "1..3"),
                          ({"layer": 1, "unit": 6}, "units 0..5"), ({"resolution": 8}, "16..4096"),
                          ({"temperature": -1.0}, "temperature")]:
        with pytest.raises(pc.OptionError, match=match):
            plot_soft(tree, **kwargs)
    line = pc.subdivide(net, pc.Slice.through_points([[0, 0], [1, 1]]))
    with pytest.raises(pc.OptionError, match="2-D domains"):
        plot_soft(line)
