"""The network model: layers as MASO pieces, forward pass, codes, affine maps, loading, errors."""

import numpy as np
import pytest
from networks import random_network

import powercells as pc
from powercells.network import parse_activation


def reference_forward(pairs, acts, X):
    Z = X
    for (W, b), act in zip(pairs, acts):
        H = Z @ W.T + b
        if act == "relu":
            Z = np.maximum(H, 0)
        elif act.startswith("leaky_relu"):
            s = float(act.split(":")[1])
            Z = np.where(H > 0, H, s * H)
        elif act == "abs":
            Z = np.abs(H)
        elif act == "identity":
            Z = H
        elif act.startswith("maxout"):
            R = int(act.split(":")[1])
            Z = H.reshape(len(H), -1, R).max(axis=2)
    return Z


@pytest.mark.parametrize("acts", [["relu", "relu", "identity"],
                                  ["leaky_relu:0.1", "abs", "identity"],
                                  ["maxout:3", "relu", "identity"]])
def test_forward_matches_numpy(acts):
    rng = np.random.default_rng(0)
    dims = [3, 4 * (3 if acts[0].startswith("maxout") else 1), 5, 2]
    pairs = [(rng.normal(size=(dims[1], 3)), rng.normal(size=dims[1])),
             (rng.normal(size=(5, 4)), rng.normal(size=5)),
             (rng.normal(size=(2, 5)), rng.normal(size=2))]
    net = pc.Network.from_weights(pairs, acts)
    X = rng.normal(size=(50, 3))
    np.testing.assert_allclose(net.forward(X), reference_forward(pairs, acts, X), rtol=1e-12)


def test_codes_and_local_affine_map():
    net = random_network(3, [6, 5], 1, activations=["leaky_relu:0.3", "abs"], head=2)
    rng = np.random.default_rng(2)
    for x in rng.normal(size=(20, 3)):
        A, B = net.affine_map(x)
        np.testing.assert_allclose(A @ x + B, net.forward(x)[0], rtol=1e-10, atol=1e-12)
        # the map holds in a small neighbourhood (x is generic)
        y = x + 1e-7 * rng.normal(size=3)
        np.testing.assert_allclose(A @ y + B, net.forward(y)[0], rtol=1e-8, atol=1e-10)
        codes = net.codes(x)
        assert [c.shape for c in codes] == [(1, 6), (1, 5), (1, 2)]


def test_tie_breaking_inactive_at_zero():
    net = pc.Network.from_weights([(np.eye(2), np.zeros(2))], ["relu"])
    assert net.codes(np.array([[0.0, 1.0]]))[0].tolist() == [[0, 1]]
    pool = pc.Layer.relu_maxpool(np.array([[1.0, 0.0], [1.0, 0.0]]), np.zeros(2), [[0, 1]])
    # both pool rows tie at 1 > 0: the smaller piece index (1) wins; at x = 0 the zero piece
    assert pc.Network([pool]).codes(np.array([[1.0, 0.0], [0.0, 0.0]]))[0].tolist() == [[1], [0]]


def test_relu_maxpool_pieces_and_forward():
    rng = np.random.default_rng(3)
    W, b = rng.normal(size=(5, 2)), rng.normal(size=5)
    groups = [[0, 1], [2, 3, 4]]
    net = pc.Network([pc.Layer.relu_maxpool(W, b, groups)])
    X = rng.normal(size=(40, 2))
    H = np.maximum(X @ W.T + b, 0)
    expected = np.stack([H[:, g].max(axis=1) for g in groups], axis=1)
    np.testing.assert_allclose(net.forward(X), expected, rtol=1e-12)
    assert net.layers[0].n_pieces.tolist() == [3, 4]


def test_with_input_map_folds_a_slice():
    net = random_network(4, [5, 3], 4, head=1)
    M = np.random.default_rng(5).normal(size=(4, 2))
    c = np.ones(4)
    folded = net.with_input_map(M, c)
    T = np.random.default_rng(6).normal(size=(10, 2))
    np.testing.assert_allclose(folded.forward(T), net.forward(T @ M.T + c), rtol=1e-12)


def test_npz_roundtrip_and_defaults(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "net.npz"
    np.savez(path, W0=rng.normal(size=(4, 2)), b0=rng.normal(size=4), W1=rng.normal(size=(1, 4)),
             b1=rng.normal(size=1))
    net = pc.load(path)
    assert [l.kind for l in net.layers] == ["relu", "identity"]
    np.savez(path, W0=rng.normal(size=(6, 2)), b0=rng.normal(size=6), W1=rng.normal(size=(2, 3)),
             b1=rng.normal(size=2), activations=np.array(["maxout:2", "leaky_relu:0.25"]))
    net = pc.load(path)
    assert [l.kind for l in net.layers] == ["maxout", "leaky_relu"]
    assert net.layers[1].slope == 0.25
    out = tmp_path / "copy.npz"
    pc.save_npz(net, out)
    again = pc.load(out)
    X = rng.normal(size=(5, 2))
    np.testing.assert_array_equal(again.forward(X), net.forward(X))


# ------------------------------------------------------------------ bad input
def test_non_finite_weights_name_the_layer():
    W = np.ones((2, 3))
    W[1, 0] = np.nan
    with pytest.raises(pc.NetworkError, match=r"layer 2: W\[1, 0\] = nan"):
        pc.Network.from_weights([(np.ones((3, 2)), np.zeros(3)), (W, np.zeros(2))])
    with pytest.raises(pc.NetworkError, match="layer 1: b"):
        pc.Network.from_weights([(np.ones((3, 2)), [0, np.inf, 0])])


def test_shape_mismatch_names_both_layers():
    with pytest.raises(pc.NetworkError, match="layer 2 .* takes 4 inputs but layer 1 .* outputs 3"):
        pc.Network.from_weights([(np.ones((3, 2)), np.zeros(3)), (np.ones((1, 4)), np.zeros(1))])
    with pytest.raises(pc.NetworkError, match=r"b must have shape \(3,\)"):
        pc.Network.from_weights([(np.ones((3, 2)), np.zeros(2))])


@pytest.mark.parametrize("act,match", [("sigmoid", "sigmoid is smooth"),
                                       ("gelu", "GELU"),
                                       ("leaky_relu:1.5", "concave"),
                                       ("leaky_relu:-0.2", r"\[0, 1\)"),
                                       ("tanh", "tanh")])
def test_non_maso_activations_are_rejected(act, match):
    with pytest.raises(pc.UnsupportedLayerError, match=match):
        pc.Network.from_weights([(np.ones((2, 2)), np.zeros(2))], [act])


def test_unknown_activation_and_bad_maxout():
    with pytest.raises(pc.NetworkError, match="unknown activation 'swishy'"):
        parse_activation("swishy")
    with pytest.raises(pc.NetworkError, match="multiple of 3 rows"):
        pc.Network.from_weights([(np.ones((4, 2)), np.zeros(4))], ["maxout:3"])


def test_points_of_the_wrong_dimension():
    net = random_network(3, [4], 0)
    with pytest.raises(pc.PointError, match=r"shape \(n, 3\)"):
        net.forward(np.zeros((2, 4)))
    with pytest.raises(pc.PointError, match="NaN"):
        net.codes(np.array([[0.0, np.nan, 0.0]]))


def test_npz_errors(tmp_path):
    with pytest.raises(pc.NetworkError, match="no such file"):
        pc.load(tmp_path / "missing.npz")
    path = tmp_path / "gap.npz"
    np.savez(path, W0=np.ones((2, 2)), b0=np.zeros(2), W2=np.ones((1, 2)), b2=np.zeros(1))
    with pytest.raises(pc.NetworkError, match="without gaps"):
        pc.load(path)
    path = tmp_path / "nobias.npz"
    np.savez(path, W0=np.ones((2, 2)))
    with pytest.raises(pc.NetworkError, match="W0 has no bias b0"):
        pc.load(path)
    with pytest.raises(pc.NetworkError, match="unknown network format"):
        pc.load(tmp_path / "net.pt")
