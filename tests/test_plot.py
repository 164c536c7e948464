"""Figures and exports of 2-D and 1-D trees: they run headless and draw what the tree holds."""

import numpy as np
import pytest
from networks import random_network

import powercells as pc

mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")
import matplotlib.pyplot as plt

from powercells.plot import face_values, plot_layers, plot_partition, plot_profile

BOX2 = pc.Box(-1, 1, dim=2)


@pytest.fixture(scope="module")
def tree():
    tree = pc.subdivide(random_network(2, [6, 5], seed=3, head=3), pc.Box(-2, 2, dim=2))
    assert len(tree.decision_boundary()) > 0
    return tree


@pytest.mark.parametrize("color_by", ["slope", "code", "random", "none"])
@pytest.mark.parametrize("layer", [0, 1, 2, None])
def test_plot_partition_draws_every_face_and_edge(tree, color_by, layer):
    fig, ax = plt.subplots()
    plot_partition(tree, layer, ax=ax, color_by=color_by)
    depth = tree.depth if layer is None else layer
    fill, old, *rest = ax.collections
    assert len(fill.get_paths()) == len(tree.levels[depth])
    mesh = tree.mesh(depth)
    new = rest[0] if depth else None
    drawn = len(old.get_segments()) + (len(new.get_segments()) if new is not None else 0)
    assert drawn == len(mesh.edges)
    if depth:
        assert len(new.get_segments()) == int(np.sum(mesh.edge_layer == depth))
    if depth == tree.depth:   # the head is linear: the decision boundary is drawn
        assert len(rest) == 3 and len(rest[-1].get_segments()) == len(tree.decision_boundary())
    plt.close(fig)


def test_face_values(tree):
    slope = face_values(tree, 2, "slope")
    A, _ = tree.affine_maps(2)
    np.testing.assert_allclose(slope, np.linalg.norm(A, axis=(1, 2)))
    codes = face_values(tree, 1, "code")
    assert len(np.unique(codes)) == len(tree.levels[1])      # distinct codes, distinct colours
    assert face_values(tree, 1, "none") is None
    np.testing.assert_array_equal(face_values(tree, 1, np.arange(len(tree.levels[1]))),
                                  np.arange(len(tree.levels[1])))
    with pytest.raises(pc.PowercellsError, match="unknown color_by"):
        face_values(tree, 1, "area")
    with pytest.raises(pc.PowercellsError, match="values but layer 1"):
        face_values(tree, 1, [1.0, 2.0])
    with pytest.raises(pc.PowercellsError, match="between 0 and 3"):
        plot_partition(tree, 5)


def test_plot_layers_one_panel_per_layer(tree):
    fig = plot_layers(tree)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == tree.depth
    plt.close(fig)


def test_plot_profile_of_a_segment():
    network = random_network(8, [6, 6], seed=4, head=2)
    rng = np.random.default_rng(4)
    tree = pc.subdivide(network, pc.Slice.through_points(rng.normal(size=(2, 8))))
    fig, ax = plt.subplots()
    plot_profile(tree, ax=ax)
    assert len(ax.lines) >= 2        # one curve per output (+ breakpoint markers)
    # the drawn curves pass through the network's outputs at the interval ends
    lo, hi = tree.intervals()
    x = np.sort(np.concatenate([lo, hi]))
    line = ax.lines[0]
    xs, ys = line.get_data()
    X = tree.domain.to_input(np.asarray(xs)[:, None])
    np.testing.assert_allclose(ys, network.forward(X)[:, 0], atol=1e-9)
    assert set(np.round(xs, 12)) <= set(np.round(x, 12))
    plt.close(fig)
    with pytest.raises(pc.PowercellsError, match="1-D domain"):
        plot_profile(pc.subdivide(random_network(2, [3]), BOX2))


def test_shapely_export_tiles_the_domain(tree):
    shapely = pytest.importorskip("shapely")
    polys = tree.to_shapely()
    assert len(polys) == tree.n_regions and all(p.is_valid for p in polys)
    union = shapely.union_all(polys)
    assert union.area == pytest.approx(16.0)
    assert sum(p.area for p in polys) == pytest.approx(16.0)
    np.testing.assert_allclose([p.area for p in polys], tree.areas())
    inside = shapely.contains_xy(polys, tree.levels[-1].interior_point[:, 0],
                                 tree.levels[-1].interior_point[:, 1])
    assert inside.all()
