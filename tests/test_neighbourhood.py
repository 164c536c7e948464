"""Neighbourhood domains: cross-polytopes and cubes in a slice of a large input space."""

import numpy as np
import pytest
from networks import random_network

import powercells as pc
from powercells.testing import brute_force_regions


def test_random_directions_are_orthonormal_and_seeded():
    V = pc.random_directions(64, 3, seed=7)
    assert V.shape == (64, 3)
    np.testing.assert_allclose(V.T @ V, np.eye(3), atol=1e-12)
    np.testing.assert_array_equal(V, pc.random_directions(64, 3, seed=7))
    assert not np.allclose(V, pc.random_directions(64, 3, seed=8))
    with pytest.raises(pc.DomainError, match="n_directions must be an integer in 1..4"):
        pc.random_directions(4, 5)


def test_l1_neighbourhood_is_the_hull_of_the_2p_vertices():
    rng = np.random.default_rng(0)
    x = rng.normal(size=64)
    nb = pc.Neighbourhood.random(x, 3, 0.2, seed=1)
    V = nb.directions
    np.testing.assert_allclose(nb.vertices(), np.concatenate(
        [[x + 0.2 * V[:, p], x - 0.2 * V[:, p]] for p in range(3)]))
    T = rng.uniform(-0.2, 0.2, size=(2000, 3))
    inside = np.abs(T).sum(axis=1) <= 0.2
    np.testing.assert_array_equal(nb.contains(T), inside)
    _, radius = nb.chebyshev
    assert radius == pytest.approx(0.2 / np.sqrt(3))
    assert nb.dim == 3 and nb.input_dim == 64
    cube = pc.Neighbourhood(x, V, 0.2, norm="linf")
    assert len(cube.vertices()) == 8
    np.testing.assert_array_equal(cube.contains(T), np.ones(len(T), dtype=bool))
    g = rng.normal(size=(5, 3))
    np.testing.assert_allclose(nb.support(g), (nb.slice_vertices() @ g.T).max(axis=0))
    np.testing.assert_allclose(cube.support(g), (cube.slice_vertices() @ g.T).max(axis=0))


@pytest.mark.parametrize("kwargs,match", [
    ({"directions": np.ones((4, 2))}, "orthonormal"),
    ({"directions": np.eye(4)[:, :2], "radius": 0.0}, "radius must be a positive"),
    ({"directions": np.eye(4)[:, :2], "radius": np.inf}, "radius must be a positive"),
    ({"directions": np.eye(4)[:, :2], "norm": "l2"}, "unknown norm 'l2'"),
    ({"directions": np.eye(3)[:, :2]}, r"directions must have shape \(4, P\)"),
])
def test_bad_neighbourhoods(kwargs, match):
    args = {"center": np.zeros(4), "radius": 1.0, **kwargs}
    with pytest.raises(pc.DomainError, match=match):
        pc.Neighbourhood(args.pop("center"), args.pop("directions"), args.pop("radius"), **args)


@pytest.mark.parametrize("P", [2, 3])
def test_neighbourhood_in_64_dimensions_against_brute_force(P):
    net = random_network(64, [12, 12], seed=P)
    x = np.random.default_rng(P).normal(size=64)
    nb = pc.Neighbourhood.random(x, P, 0.8, seed=11)
    tree = pc.subdivide(net, nb)
    assert tree.domain.dim == P and tree.domain.input_dim == 64   # engines see R^P
    brute = brute_force_regions(net, nb)
    assert {tuple(int(v) for v in row) for row in tree.leaf_codes()} == brute.codes
    assert tree.per_layer == brute.per_layer
    # every sampled pattern of the slice is a region (generic network)
    T = pc.approx.sample_domain(nb, 3000, seed=0)
    sampled = {tuple(int(v) for v in row) for row in np.hstack(net.codes(nb.to_input(T)))}
    assert sampled <= brute.codes


def test_lp_and_planar_engines_agree_on_a_neighbourhood():
    net = random_network(64, [16, 16], seed=5)
    nb = pc.Neighbourhood.random(np.zeros(64), 2, 1.0, norm="linf", seed=3)
    a = pc.subdivide(net, nb)
    b = pc.subdivide(net, nb, engine="lp")
    assert a.per_layer == b.per_layer
    assert {r.tobytes() for r in a.leaf_codes()} == {r.tobytes() for r in b.leaf_codes()}
    np.testing.assert_allclose(a.areas().sum(), 4.0)
