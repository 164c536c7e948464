"""The exact-count oracles of SPEC §6.1, on both LP backends."""

import numpy as np
import pytest
from networks import engine_for, general_position_layer, tent_map, worked_example

import powercells as pc
from powercells.testing import serra_bound, zaslavsky


@pytest.mark.parametrize("d,n,expected", [(1, 5, 6), (2, 6, 22), (2, 9, 46), (3, 7, 64),
                                          (4, 7, 99), (5, 8, 219), (6, 8, 247)])
def test_zaslavsky_general_position(d, n, expected, engine):
    assert zaslavsky(n, d) == expected
    net, box = general_position_layer(n, d, seed=d * 10 + n)
    tree = pc.subdivide(net, box, **engine_for(engine, d))
    assert tree.per_layer == [expected]
    assert len(tree.slivers) == 0


def test_zaslavsky_bounded_regions():
    # 7 lines in general position in the plane: C(6, 2) = 15 bounded regions; a region is
    # bounded iff it does not touch the enclosing box
    net, box = general_position_layer(7, 2, seed=3)
    tree = pc.subdivide(net, box)
    H0, h0 = box.halfspaces()
    bounded = 0
    for i in range(tree.n_regions):
        H, h = tree.halfspaces(1, i)
        # the region touches the box iff some box face is a facet: maximise along it
        from scipy.optimize import linprog
        touches = False
        for a, c in zip(H0, h0):
            res = linprog(-a, A_ub=H, b_ub=h, bounds=[(None, None)] * 2, method="highs")
            if -res.fun > c - 1e-9:
                touches = True
                break
        bounded += not touches
    assert tree.n_regions == 29
    assert bounded == 15


@pytest.mark.parametrize("d,K", [(2, 2), (3, 2), (3, 3), (5, 4), (6, 6), (6, 3)])
def test_full_row_rank_gives_2_to_K(d, K):
    rng = np.random.default_rng(K + d)
    W = rng.normal(size=(K, d))
    b = rng.normal(size=K)
    x0 = np.linalg.lstsq(W, -b, rcond=None)[0]   # a point on all K hyperplanes
    net = pc.Network.from_weights([(W, b)], ["relu"])
    tree = pc.subdivide(net, pc.Box(x0 - 1, x0 + 1))
    assert tree.per_layer == [2 ** K]


def test_one_dimensional_single_layer():
    W = np.array([[1.0], [-2.0], [0.5], [3.0], [-1.0]])
    t = np.array([-0.7, -0.2, 0.1, 0.4, 2.5])     # breakpoints, one outside [a, b]
    b = -W[:, 0] * t
    net = pc.Network.from_weights([(W, b)], ["relu"])
    a, c = -1.0, 1.0
    assert pc.subdivide(net, pc.Box(a, c, dim=1)).per_layer == [1 + int(np.sum((t > a) & (t < c)))]


def test_one_dimensional_deep_bound_and_width_one():
    # widths [1, 1]: the inactive half-line is constant, so 3 regions, not 4
    net = pc.Network.from_weights([(np.array([[1.0]]), np.array([0.0])),
                                   (np.array([[1.0]]), np.array([-1.0]))], ["relu", "relu"])
    assert pc.subdivide(net, pc.Box(-5, 5, dim=1)).per_layer == [2, 3]
    rng = np.random.default_rng(0)
    for seed in range(5):
        widths = [3, 4, 3]
        dims = [1] + widths
        pairs = [(rng.normal(size=(dims[i + 1], dims[i])), rng.normal(size=dims[i + 1]))
                 for i in range(3)]
        net = pc.Network.from_weights(pairs, ["relu"] * 3)
        n = pc.count_regions(net, pc.Box(-10, 10, dim=1)).regions
        assert n <= np.prod([w + 1 for w in widths]) and n <= serra_bound(1, widths)


@pytest.mark.parametrize("L", range(1, 9))
def test_tent_map_exactly_2_to_L(L, engine):
    if engine.get("lp") == "cvxpy" and L > 5:
        pytest.skip("cvxpy is slow; HiGHS covers the deeper maps")
    tree = pc.subdivide(tent_map(L), pc.Box(0, 1, dim=1), **engine_for(engine, 1))
    assert tree.per_layer == [2 ** l for l in range(1, L + 1)] + [2 ** L]
    assert tree.n_regions == 2 ** L          # never 2^L + 1: touchings are not regions
    assert len(tree.slivers) == 0


def test_tent_map_linear_pieces_are_the_regions():
    L = 5
    tree = pc.subdivide(tent_map(L), pc.Box(0, 1, dim=1))
    x = np.sort(tree.levels[-1].interior_point[:, 0])
    slopes = [tree.network.affine_map(np.array([v]))[0][0, 0] for v in x]
    # adjacent leaves have different slopes: 2^L linear pieces
    assert all(abs(s1 - s2) > 1e-9 for s1, s2 in zip(slopes, slopes[1:]))
    assert set(np.abs(slopes)) == {2.0 ** L}


def test_worked_example(engine):
    net = worked_example()
    tree = pc.subdivide(net, pc.Box(-10, 10, dim=2), **engine_for(engine, 2))
    assert tree.per_layer == [4, 6]
    # layer 2 cuts only the regions q1 = (1, 1) (along x1 - x2 = -1.5) and (0, 1) (x2 = 1.5)
    level1 = tree.levels[1]
    cut = {tuple(level1.code[i]) for i in range(4) if len(tree.children(1, i)) == 2}
    assert cut == {(1, 1), (0, 1)}
    # the layer-2 boundary in region (1, 1) is x1 - x2 = -1.5: its children straddle it
    i11 = [i for i in range(4) if tuple(level1.code[i]) == (1, 1)][0]
    pts = tree.levels[2].interior_point[tree.children(1, i11)]
    vals = pts[:, 0] - pts[:, 1] + 1.5
    assert np.sign(vals).tolist() in ([-1.0, 1.0], [1.0, -1.0])


@pytest.mark.parametrize("n0,widths", [(2, [4, 4]), (3, [5, 5]), (2, [5, 5, 4]), (1, [3, 4, 3])])
def test_counts_never_exceed_serra(n0, widths):
    from networks import random_network

    for seed in range(3):
        net = random_network(n0, widths, seed=seed)
        r = pc.count_regions(net, pc.Box(-3, 3, dim=n0))
        assert r.regions <= serra_bound(n0, widths)
        for l in range(1, len(widths) + 1):
            assert r.per_layer[l - 1] <= serra_bound(n0, widths[:l])


def test_serra_reference_values_and_montufar_consistency():
    assert serra_bound(2, [4, 4]) == 121
    assert serra_bound(3, [5, 5, 5]) == 11776
    assert serra_bound(1, [3, 4, 3]) == 80
    assert serra_bound(2, [5, 5, 4]) == 2816
    montufar = (4 // 2) ** 2 * sum(__import__("math").comb(4, j) for j in range(3))
    assert montufar == 44 <= serra_bound(2, [4, 4])
