"""Bend angles in 2-D (SPEC §4): the worked example's 45 degrees, the 143-degree fold of §4.2,
the refraction invariant and the rank-one update of §4.3 on random networks."""

import numpy as np
import pytest

import powercells as pc
from powercells.geometry.bends import planar_bends
from networks import random_network, worked_example


def test_worked_example_45_degrees():
    tree = pc.subdivide(worked_example(), pc.Box(-10, 10, dim=2))
    bends = planar_bends(tree, 2)
    assert len(bends) == 1
    codes = {tuple(tree.levels[1].code[i]) for i in (bends.region_a[0], bends.region_b[0])}
    assert codes == {(1, 1), (0, 1)}
    np.testing.assert_allclose(bends.point[0], [0.0, 1.5], atol=1e-12)
    assert (bends.crossing_layer[0], bends.crossing_unit[0]) == (1, 0)
    assert (bends.target_layer[0], bends.target_unit[0]) == (2, 0)
    assert np.degrees(bends.bend_oriented[0]) == pytest.approx(45.0)


def test_oriented_and_unsigned_forms_differ_on_a_fold():
    # h = y + 3x - 6 relu(x): level set y = 3|x|, oriented bend 143.13 deg, unsigned 36.87 deg
    W1 = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    b1 = np.array([0.0, 0.0, 10.0])
    W2 = np.array([[-3.0, -3.0, 1.0]])
    net = pc.Network.from_weights([(W1, b1), (W2, np.array([-10.0]))], ["relu", "relu"])
    tree = pc.subdivide(net, pc.Box(-2, 2, dim=2))
    bends = planar_bends(tree, 2)
    assert len(bends) == 1
    np.testing.assert_allclose(bends.point[0], [0.0, 0.0], atol=1e-12)
    assert np.degrees(bends.bend_oriented[0]) == pytest.approx(np.degrees(np.arccos(-0.8)))
    assert np.degrees(bends.bend_unsigned[0]) == pytest.approx(np.degrees(np.arccos(0.8)))


@pytest.mark.parametrize("acts", [["relu", "relu", "relu"], ["leaky_relu:0.2", "abs", "relu"]])
def test_refraction_invariant_and_rank_one_update(acts):
    network = random_network(2, [6, 6, 5], seed=3, activations=acts)
    tree = pc.subdivide(network, pc.Box(-1, 1, dim=2))
    total = 0
    for layer in (2, 3):
        bends = planar_bends(tree, layer)
        total += len(bends)
        mesh = tree.mesh(layer - 1)
        for i in range(len(bends)):
            # the edge between the two regions: its direction d
            e = np.flatnonzero(((mesh.edge_faces[:, 0] == bends.region_a[i]) &
                                (mesh.edge_faces[:, 1] == bends.region_b[i])))
            ends = mesh.vertices[mesh.edges[e]]
            d = ends[:, 1] - ends[:, 0]
            rel = bends.point[i] - ends[:, 0]
            on_edge = np.abs(d[:, 0] * rel[:, 1] - d[:, 1] * rel[:, 0]) <= 1e-9
            d = d[np.flatnonzero(on_edge)[0]]
            na, nb = bends.normal_a[i], bends.normal_b[i]
            # tangential components agree (continuity of h_k across the edge) ...
            assert abs((na - nb) @ d) <= 1e-9 * (np.linalg.norm(na) + np.linalg.norm(nb))
            # ... so the update is along the edge's normal: rank one
            if bends.crossing_layer[i] == layer - 1:
                # immediate predecessor: n' - n = (s' - s) W_kj u_j, u_j the crossing unit's
                # gradient on the regions' common parent
                j, k = bends.crossing_unit[i], bends.target_unit[i]
                Wkj = network.layers[layer - 1].switch_W[k, j]
                parent = tree.levels[layer - 1].parent[bends.region_a[i]]
                if layer - 2 >= 1:
                    A, _ = tree.affine_maps(layer - 2, [parent])
                    u = network.layers[layer - 2].switch_W[j] @ A[0]
                else:
                    u = network.layers[0].switch_W[j]
                f = network.layers[layer - 2].switch_factors
                np.testing.assert_allclose(np.linalg.norm(nb - na),
                                           abs(f[1] - f[0]) * abs(Wkj) * np.linalg.norm(u),
                                           rtol=1e-9, atol=1e-12)
            # the unsigned form folds the oriented one onto [0, pi/2]
            assert bends.bend_unsigned[i] == pytest.approx(
                min(bends.bend_oriented[i], np.pi - bends.bend_oriented[i]), abs=1e-9)
    assert total > 0
