"""Numbers float64 cannot hold are refused by name, and a unit's scale never changes a count
(no silent wrong answers)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from networks import random_network

import powercells as pc
from powercells.cli import EXIT_ERROR, main
from powercells.errors import DomainError, OptionError


def _rescaled(network: pc.Network, layer: int, factors) -> pc.Network:
    """Unit i of ReLU layer ``layer`` times ``factors[i] > 0``, the next layer's input column i
    divided by it: the same function, so the same regions at every layer."""
    pairs, acts = [], []
    for j, lay in enumerate(network.layers):
        W, b = lay.weight.copy(), lay.bias.copy()
        if j == layer:
            W, b = W * factors[:, None], b * factors
        if j == layer + 1:
            W = W / factors[None, :]
        pairs.append((W, b))
        acts.append(lay.kind)
    return pc.Network.from_weights(pairs, acts)


@pytest.mark.parametrize("engine,d", [("vertex", 3), ("lp", 3), ("planar", 2),
                                      ("interval", 1)])
@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e150, 1e300])
def test_scaling_a_layer_changes_no_count(engine, d, scale):
    network = random_network(d, [8, 8], seed=11)
    box = pc.Box(-1, 1, dim=d)
    expected = pc.count_regions(network, box, engine=engine)
    factors = np.full(8, scale)
    for layer in (0, 1):
        scaled = pc.count_regions(_rescaled(network, layer, factors), box, engine=engine)
        assert scaled.per_layer == expected.per_layer
        assert (scaled.thin, scaled.undecided) == (expected.thin, expected.undecided)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(-1000, 1000), min_size=6, max_size=6), st.integers(0, 10**6))
def test_scaling_units_by_any_powers_changes_no_count(exponents, seed):
    network = random_network(3, [6, 6], seed=seed % 50)
    box = pc.Box(-1, 1, dim=3)
    factors = np.ldexp(1.0, np.array(exponents))
    expected = pc.count_regions(network, box)
    assert pc.count_regions(_rescaled(network, 0, factors), box).per_layer == \
        expected.per_layer


def test_first_layer_scaled_by_1e300_is_not_one_region():
    """Regression: W0 * 1e300 (b0 as it was) gave ``regions: 1``. At float64's resolution
    the hyperplanes are those of the bias-free layer, and layer 2 sees its bias vanish next to
    1e300. In exact arithmetic the hyperplanes are 1e-300 apart and bound tiny regions about
    the origin: the lp engine sets those cells aside, the vertex engine reports the cells where
    vertices came that near a hyperplane, and both settle them exactly (thin regions): the
    certified count, above the count of the network with b0 = 0 and b1 = 0."""
    network = random_network(3, [5, 5], seed=1, head=1)
    W0, b0 = network.layers[0].weight, network.layers[0].bias
    W1, b1 = network.layers[1].weight, network.layers[1].bias
    W2, b2 = network.layers[2].weight, network.layers[2].bias
    huge = pc.Network.from_weights([(W0 * 1e300, b0), (W1, b1), (W2, b2)])
    free = pc.Network.from_weights([(W0, 0 * b0), (W1, 0 * b1), (W2, b2)])
    box = pc.Box(-1, 1, dim=3)
    got = pc.count_regions(huge, box)
    assert got.engine == "vertex" and got.thin[0] > 0
    lp = pc.count_regions(huge, box, engine="lp")
    assert got.per_layer == lp.per_layer == pc.count_regions(huge, box, certify=True).per_layer
    assert all(a < b for a, b in zip(pc.count_regions(free, box).per_layer, lp.per_layer))


def test_balanced_network_has_the_same_codes():
    rng = np.random.default_rng(0)
    network = pc.Network.from_weights(
        [(rng.normal(size=(6, 3)) * 1e200, rng.normal(size=6) * 1e200),
         (rng.normal(size=(4, 6)) * 1e-250, rng.normal(size=4) * 1e-50),
         (rng.normal(size=(6, 4)), rng.normal(size=6))], ["relu", "abs", "maxout:3"])
    balanced = network.balanced()
    X = rng.uniform(-1, 1, size=(2000, 3))
    for a, b in zip(network.codes(X), balanced.codes(X)):
        np.testing.assert_array_equal(a, b)
    for layer in balanced.layers:
        top = np.abs(np.concatenate([layer.A.reshape(layer.out_dim, -1), layer.B], axis=1))
        assert np.all(top.max(axis=1) < 1) and np.all(top.max(axis=1) >= 0.5)


@pytest.mark.parametrize("tol", [float("nan"), float("inf"), -1.0, 0.0, 1e300, 1e-30, "small"])
def test_tolerances_float64_cannot_honour_are_refused(tol):
    network = random_network(3, [4], seed=0)
    with pytest.raises(OptionError):
        pc.count_regions(network, pc.Box(-1, 1, dim=3), tol=tol)


@pytest.mark.parametrize("lo,hi,match", [
    (1e300, 1.7e308, "reaches"), (-1e-310, 1e-310, "wide"),
    (1e6, 1e6 + 1e-3, "resolution"), (1e14, 1e14 + 10, "resolution"),
])
def test_domains_float64_cannot_resolve_are_refused(lo, hi, match):
    network = random_network(3, [4], seed=0)
    with pytest.raises((DomainError, OptionError), match=match):
        pc.count_regions(network, pc.Box(lo, hi, dim=3))


@pytest.mark.parametrize("lo,hi", [(-1e-3, 1e-3), (-1e-300, 1e-300), (-1e15, 1e15),
                                   (1e299, 1e300), (1e6, 1e6 + 1000.0),
                                   # 720 thin regions in 1000-bit integers, ~80 s
                                   pytest.param(-1e300, 1e300, marks=pytest.mark.slow)])
def test_small_and_large_domains_that_float64_resolves_are_counted(lo, hi):
    """Engines work at the domain's own scale (a power of two), so the old failure (``--box
    1e299 1e300`` gave 0 regions) and LP failures on boxes past ~1e5 are gone, and a box's
    count does not change when box and first layer are scaled together.

    In a box 1e15 or 1e300 wide around the origin, the arrangement's 35 bounded regions (and
    their children) are ~1e-15 of the domain: the lp engine sets them aside, the vertex engine
    reports the cells where they hide (vertices within its empty tolerance of a hyperplane),
    and both settle them exactly (thin regions, the certified count)."""
    network = random_network(3, [8, 8], seed=2)
    box = pc.Box(lo, hi, dim=3)
    lp, vertex = (pc.count_regions(network, box, engine=e) for e in ("lp", "vertex"))
    assert min(lp.per_layer) >= 1
    assert vertex.per_layer == lp.per_layer
    if (lo, hi) == (-1e15, 1e15):
        assert lp.per_layer == pc.count_regions(network, box, certify=True).per_layer
        assert lp.thin[0] == vertex.thin[0] == 35 and lp.per_layer[0] == 93
    tree = pc.subdivide(network, box)
    assert tree.per_layer == vertex.per_layer
    assert np.all(box.contains(tree.levels[-1].interior_point))
    # the same question in unit coordinates: x = 2**e t, first layer's weights times 2**e
    e = int(np.frexp(box.diameter)[1])
    first, *rest = network.layers
    unit = pc.Network([first.with_input_map(np.ldexp(np.eye(3), e), np.zeros(3)), *rest])
    small = pc.Box(np.ldexp(box.lo, -e), np.ldexp(box.hi, -e))
    assert pc.count_regions(unit, small, engine="lp").per_layer == lp.per_layer


def test_cli_never_prints_zero_regions(tmp_path, capsys):
    """Regression: ``--box 1e299 1e300`` and ``--tol`` nan / inf / 1e300 printed 0
    regions, ``local-complexity --radius 1e300`` an exact 0 beside an estimate of 11."""
    path = tmp_path / "net.npz"
    pc.save_npz(random_network(3, [8], seed=0, head=1), path)
    np.save(tmp_path / "x.npy", np.zeros(3))
    for argv in (["count", str(path), "--box", "1e300", "1.7e308"],
                 ["count", str(path), "--box", "-1", "1", "--tol", "1e300"],
                 ["count", str(path), "--box", "-1", "1", "--tol", "nan"],
                 ["count", str(path), "--box", "-1", "1", "--tol", "inf"]):
        assert main(argv) == EXIT_ERROR
        out = capsys.readouterr()
        assert out.err.count("\n") == 1 and out.out == ""
    for box in (["1e299", "1e300"], ["-1e-3", "1e-3"]):
        assert main(["count", str(path), "--box", *box, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["regions"] >= 1
    assert main(["local-complexity", str(path), "--point", str(tmp_path / "x.npy"), "--radius",
                 "1e300", "--directions", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exact_regions"] >= 1
    # every neuron the estimate sees changing sign does meet the neighbourhood
    assert all(lc <= exact for lc, exact in zip(out["lc"], out["exact_neurons"]))


def test_values_float64_cannot_hold_are_refused_not_printed(tmp_path):
    """Regression: at extreme scales, exports printed 0 ridges or other adjacent pairs,
    compare a wrong rugosity, plots and volumes crashed. Counts and codes use the balanced
    network and hold; whatever needs the network's own values is refused by name."""
    pytest.importorskip("pyarrow")
    from powercells.io.export import node_table, write_export

    network = random_network(2, [8, 8], seed=0, head=1)
    box = pc.Box(-1, 1, dim=2)
    scaled = _rescaled(network, 0, np.full(8, 1e300))
    tree = pc.subdivide(scaled, box)
    assert tree.per_layer == pc.subdivide(network, box).per_layer
    with pytest.raises(pc.GeometryError, match="cannot compute facet adjacency"):
        write_export(tree, tmp_path / "out")
    with pytest.raises(pc.GeometryError, match="cannot compute the rugosity"):
        pc.approx.rugosity_limit(scaled, box)
    far = pc.subdivide(network, pc.Box(-1e154, 1e154, dim=2))
    with pytest.raises(pc.GeometryError, match="domain's coordinates"):
        node_table(far)
    # codes, sampling counts and local complexity need signs only: they hold at any scale
    X = np.random.default_rng(0).uniform(-1, 1, size=(500, 2))
    for a, b in zip(network.codes(X), scaled.codes(X)):
        np.testing.assert_array_equal(a, b)
    huge = pc.Network.from_weights([(lay.weight * 1e300, lay.bias * 1e300)
                                    for lay in network.layers],
                                   [lay.kind for lay in network.layers])
    counts = pc.approx.sampling_counts(huge, box, n_samples=[2000], seed=0)
    reference = pc.Network.from_weights(
        [(lay.weight, lay.bias * 1e-300 ** j) for j, lay in enumerate(network.layers)],
        [lay.kind for lay in network.layers])      # the same codes, values in range
    assert counts.regions.tolist() == pc.approx.sampling_counts(reference, box, n_samples=[2000],
                                                                seed=0).regions.tolist()
    lc = pc.approx.compare_local_complexity(huge, np.zeros(2), radius=0.5, n_directions=2,
                                            seed=0).as_dict()
    ref = pc.approx.compare_local_complexity(reference, np.zeros(2), radius=0.5,
                                             n_directions=2, seed=0).as_dict()
    assert lc == ref
