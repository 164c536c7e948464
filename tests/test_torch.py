"""PyTorch import: forward passes equal torch's in float64 for every supported module; clear
errors for the others."""

import numpy as np
import pytest

import powercells as pc
from powercells.testing import assert_partitions_equal, brute_force_regions

torch = pytest.importorskip("torch")
nn = torch.nn


def max_error(module, network, input_shape, n=30, seed=0):
    module = module.double().eval()
    X = np.random.default_rng(seed).normal(size=(n, int(np.prod(input_shape))))
    with torch.no_grad():
        ref = module(torch.from_numpy(X).reshape((n,) + tuple(input_shape))).reshape(n, -1)
    return float(np.abs(network.forward(X) - ref.numpy()).max())


def randomise_bn(bn):
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.normal_()
    return bn


def test_mlp_with_every_dense_module():
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Linear(4, 8), randomise_bn(nn.BatchNorm1d(8)), nn.ReLU(), nn.Dropout(0.3),
        nn.Sequential(nn.Linear(8, 6), nn.LeakyReLU(0.1), nn.Identity()),
        nn.Linear(6, 3))
    network = pc.from_torch(module.eval(), (4,))
    assert [layer.kind for layer in network.layers] == ["relu", "leaky_relu", "identity"]
    assert network.layers[1].name == "layer 2 (module 4.1 (LeakyReLU))"
    assert max_error(module, network, (4,)) < 1e-12


@pytest.mark.parametrize("conv", [dict(), dict(stride=2, padding=1), dict(dilation=2, padding=2),
                                  dict(groups=2, padding=(1, 0))])
@pytest.mark.parametrize("pool", ["max", "avg", "avg_pad"])
def test_cnn(conv, pool):
    torch.manual_seed(1)
    pooling = {"max": nn.MaxPool2d(2), "avg": nn.AvgPool2d(2, stride=1),
               "avg_pad": nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)}[pool]
    features = nn.Sequential(nn.Conv2d(2, 4, 3, **conv), randomise_bn(nn.BatchNorm2d(4)),
                             nn.ReLU(), pooling, nn.Flatten())
    with torch.no_grad():
        size = features.eval()(torch.zeros(1, 2, 8, 7)).shape[1]
    module = nn.Sequential(features, nn.Linear(size, 5), nn.ReLU(), nn.Linear(5, 2))
    network = pc.from_torch(module.eval(), (2, 8, 7))
    assert network.input_dim == 112
    if pool == "max":
        assert network.layers[0].kind == "relu_maxpool"
    assert max_error(module, network, (2, 8, 7)) < 1e-10


def test_maxpool_without_relu_is_a_maso_layer():
    torch.manual_seed(2)
    module = nn.Sequential(nn.Conv2d(1, 2, 2), nn.MaxPool2d(2, stride=1), nn.Flatten(),
                           nn.Linear(2 * 3 * 3, 1))
    network = pc.from_torch(module, (1, 5, 5))
    assert network.layers[0].kind == "maso"
    assert max_error(module, network, (1, 5, 5)) < 1e-12


def test_region_count_of_a_torch_mlp_equals_brute_force():
    torch.manual_seed(3)
    module = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 5), nn.LeakyReLU(0.2),
                           nn.Linear(5, 1))
    network = pc.from_torch(module, (3,))
    box = pc.Box(-1, 1, dim=3)
    assert_partitions_equal(pc.subdivide(network, box), brute_force_regions(network, box))


def test_errors_name_the_module():
    with pytest.raises(pc.UnsupportedLayerError, match=r"module 1 \(Sigmoid\)"):
        pc.from_torch(nn.Sequential(nn.Linear(2, 2), nn.Sigmoid()), (2,))
    with pytest.raises(pc.UnsupportedLayerError, match=r"0\.1 \(GELU\)"):
        pc.from_torch(nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.GELU())), (2,))
    bn = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    with pytest.raises(pc.UnsupportedLayerError, match="training mode"):
        pc.from_torch(bn.train(), (2,))
    with pytest.raises(pc.NetworkError, match="expects 3 features"):
        pc.from_torch(nn.Sequential(nn.Linear(3, 2)), (4,))
