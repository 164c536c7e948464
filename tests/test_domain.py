"""Domains: boxes, polytopes, slices; validation and folding."""

import numpy as np
import pytest
from networks import random_network

import powercells as pc
from powercells.testing import assert_partitions_equal, brute_force_regions


def test_box_broadcast_and_halfspaces():
    box = pc.Box(-1, [1, 2, 3])
    assert box.dim == 3
    A, b = box.halfspaces()
    assert np.all(A @ np.array([0.5, 1.5, 2.5]) <= b)
    assert box.diameter == pytest.approx(np.linalg.norm([2, 3, 4]))


@pytest.mark.parametrize("lo,hi,match", [(1, -1, "lo > hi"), (0, 0, "flat"),
                                         ([0, np.nan], [1, 1], "NaN"),
                                         ([0, 0], [1, 1, 1], "same length")])
def test_bad_boxes(lo, hi, match):
    with pytest.raises(pc.DomainError, match=match):
        pc.Box(lo, hi, dim=None if np.ndim(lo) else 2)


def test_polytope_validation():
    tri = pc.Polytope([[-1, 0], [0, -1], [1, 1]], [0, 0, 1])
    assert tri.dim == 2
    assert tri.chebyshev[1] == pytest.approx(1 / (2 + np.sqrt(2)))
    with pytest.raises(pc.DomainError, match="empty"):
        pc.Polytope([[1.0], [-1.0]], [0.0, -1.0])          # x <= 0 and x >= 1
    with pytest.raises(pc.DomainError, match="lower-dimensional"):
        pc.Polytope([[1, 0], [-1, 0], [0, 1], [0, -1]], [0, 0, 1, 1])   # x1 = 0
    with pytest.raises(pc.DomainError, match="unbounded"):
        pc.Polytope([[1, 0]], [1])
    with pytest.raises(pc.DomainError, match="shape"):
        pc.Polytope(np.ones((3, 2)), np.ones(2))


def test_polytope_domain_equals_brute_force():
    network = random_network(2, [5, 4], 3)
    tri = pc.Polytope([[-1, 0], [0, -1], [1, 1]], [1, 1, 1])
    tree = pc.subdivide(network, tri)
    assert_partitions_equal(tree, brute_force_regions(network, tri))
    assert np.all(tri.contains(tree.levels[-1].interior_point))


def test_domain_dimension_must_match_the_network():
    with pytest.raises(pc.DomainError, match="R\\^2 but the network takes 3"):
        pc.subdivide(random_network(3, [4], 0), pc.Box(-1, 1, dim=2))


def test_slice_through_three_points():
    network = random_network(6, [8, 6], 4, head=1)
    rng = np.random.default_rng(0)
    P = rng.normal(size=(3, 6))
    plane = pc.Slice.through_points(P)
    assert plane.dim == 2 and plane.input_dim == 6
    tree = pc.subdivide(network, plane)
    # the slice's engine sees the folded network; its regions are the network's regions on the
    # plane, so the forward pass at the mapped interior points gives back the leaf codes
    X = tree.input_points()
    codes = np.hstack(network.codes(X)).astype(np.int16)
    np.testing.assert_array_equal(codes, tree.leaf_codes())
    assert_partitions_equal(tree, brute_force_regions(network, plane))
    # the three points lie in the slice and are located in it
    assert np.all(tree.locate(P) >= 0)
    assert tree.locate(P[0] + 5.0)[0] == -1       # off the plane


def test_slice_errors():
    with pytest.raises(pc.DomainError, match="collinear"):
        pc.Slice.through_points([[0, 0, 0], [1, 1, 1], [2, 2, 2]])
    with pytest.raises(pc.DomainError, match="two or three points"):
        pc.Slice.through_points(np.zeros((4, 3)))
    with pytest.raises(pc.DomainError, match="inner domain has dimension 1"):
        pc.Slice(np.zeros(3), np.eye(3)[:, :2], pc.Box(0, 1, dim=1))


def test_segment_slice_counts_breakpoints():
    # a single ReLU layer along a segment: regions = 1 + number of crossings inside
    W = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = np.array([-0.5, -0.25, 0.0])
    network = pc.Network.from_weights([(W, b)], ["relu"])
    seg = pc.Slice.through_points([[0.0, 0.0], [1.0, 1.0]])   # t in [0, 1]
    # x1 = 0.5 at t = 0.5, x2 = 0.25 at t = 0.25, x1 + x2 = 0 at t = 0 (an endpoint)
    assert pc.subdivide(network, seg).per_layer == [3]
