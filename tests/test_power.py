"""Power-diagram identities of SPEC §2-3 and §6.2.4, and the worked example of §6.1.5."""

import itertools

import numpy as np
import pytest
from networks import maxout_network, random_network, worked_example

import powercells as pc
from powercells.geometry.power import layer_sites, node_sites, power, pulled_back_sites


def test_worked_example_sites_and_powers():
    net = worked_example()
    codes = np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
    mu, rad = layer_sites(net.layers[0], codes)
    np.testing.assert_array_equal(mu, [[0, 0], [1, 0], [0, 1], [1, 1]])
    np.testing.assert_array_equal(rad, [0, 1, -1, 0])
    x = np.array([[2.0, 3.0]])
    np.testing.assert_array_equal(power(x, mu, rad), [[13, 9, 9, 5]])
    z = net.layers[0].codes_and_outputs(x)[1]
    assert power(x, mu, rad).min() == (x ** 2).sum() - 2 * z.sum() == 5   # lifting identity
    # layer 2 inside q1 = (1, 1): A = I, B = (0, -1)
    mu2, rad2 = pulled_back_sites(net.layers[1], np.array([[1], [0]]), np.eye(2),
                                  np.array([0.0, -1.0]))
    np.testing.assert_array_equal(mu2, [[1, -1], [0, 0]])
    np.testing.assert_array_equal(rad2, [5, 0])
    # their tie is the layer-2 boundary x1 - x2 = -1.5
    p = np.array([[0.0, 1.5], [1.0, 2.5]])
    diff = power(p, mu2, rad2)
    np.testing.assert_allclose(diff[:, 0], diff[:, 1])


NETS = [random_network(2, [5, 4], seed=0, activations=["relu", "leaky_relu:0.2"]),
        random_network(3, [4, 3], seed=1, activations=["abs", "relu"]),
        maxout_network(2, [3, 2], 3, seed=2)]


@pytest.mark.parametrize("network", NETS)
def test_argmin_of_the_layer_diagram_is_the_code_and_lifting(network):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1.5, 1.5, (200, network.input_dim))
    Z = X
    for layer in network.layers:
        all_codes = np.array(list(itertools.product(*[range(int(n)) for n in layer.n_pieces])))
        mu, rad = layer_sites(layer, all_codes)
        P = power(Z, mu, rad)
        code, out = layer.codes_and_outputs(Z)
        best = all_codes[np.argmin(P, axis=1)]
        np.testing.assert_array_equal(best, code)
        np.testing.assert_allclose(P.min(axis=1), (Z ** 2).sum(1) - 2 * out.sum(1), atol=1e-9)
        Z = out


@pytest.mark.parametrize("network", NETS)
def test_node_sites_equal_the_parent_diagram_sites(network):
    d = network.input_dim
    tree = pc.subdivide(network, pc.Box(-1, 1, dim=d))
    for depth in range(1, tree.depth + 1):
        A, B = tree.affine_maps(depth)
        mu, rad = node_sites(A, B)
        np.testing.assert_array_equal(np.hstack([mu, rad[:, None]]),
                                      np.hstack(tree.power_sites(depth)[:1] +
                                                (tree.power_sites(depth)[1][:, None],)))
        level = tree.levels[depth]
        if depth == 1:
            A_w = np.broadcast_to(np.eye(d), (len(level), d, d))
            B_w = np.zeros((len(level), d))
        else:
            A_w, B_w = tree.affine_maps(depth - 1, level.parent)
        layer = network.layers[depth - 1]
        for i in range(len(level)):
            m, r = pulled_back_sites(layer, level.code[i][None], A_w[i], B_w[i])
            np.testing.assert_allclose(mu[i], m[0], atol=1e-10)
            np.testing.assert_allclose(rad[i], r[0], atol=1e-9)
            # inside the parent, the node's interior point has the node's site as its argmin
            # among all the parent-diagram sites
            if layer.max_pieces ** layer.out_dim <= 4096:
                codes = np.array(list(itertools.product(*[range(int(n))
                                                          for n in layer.n_pieces])))
                M, R = pulled_back_sites(layer, codes, A_w[i], B_w[i])
                best = codes[np.argmin(power(level.interior_point[i][None], M, R)[0])]
                np.testing.assert_array_equal(best, level.code[i])


def test_bad_codes():
    layer = worked_example().layers[0]
    with pytest.raises(ValueError, match="2 entries"):
        layer_sites(layer, np.array([[1, 0, 1]]))
    with pytest.raises(ValueError, match="piece the unit does not have"):
        layer_sites(layer, np.array([[2, 0]]))


@pytest.mark.parametrize("network", NETS[:2])
def test_lipschitz_bounds_every_sampled_slope(network):
    d = network.input_dim
    tree = pc.subdivide(network, pc.Box(-1, 1, dim=d))
    lip = tree.lipschitz()
    A, _ = tree.affine_maps()
    np.testing.assert_allclose(lip, [np.linalg.svd(a, compute_uv=False)[0] for a in A])
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (300, d))
    Y = X + rng.normal(size=X.shape) * 1e-3
    Y = np.clip(Y, -1, 1)
    ratio = (np.linalg.norm(network.forward(X) - network.forward(Y), axis=1)
             / np.linalg.norm(X - Y, axis=1))
    assert ratio.max() <= lip.max() * (1 + 1e-9)
    # inside one leaf the slope along the top singular direction attains its constant
    i = int(np.argmax(lip))
    _, s, Vt = np.linalg.svd(A[i])
    x0 = tree.levels[-1].interior_point[i]
    step = 0.5 * tree.levels[-1].inradius[i] * Vt[0]
    slope = np.linalg.norm(network.forward((x0 + step)[None]) - network.forward(x0[None]))
    assert slope / np.linalg.norm(step) == pytest.approx(lip[i], rel=1e-9)
