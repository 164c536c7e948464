"""The subdivision tree: structure, ids, networkx view, point location, budgets, streaming."""

import networkx as nx
import numpy as np
import pytest
from networks import random_network, worked_example

import powercells as pc


@pytest.fixture(scope="module")
def tree():
    return pc.subdivide(random_network(2, [5, 4, 3], 0), pc.Box(-1, 1, dim=2))


def test_levels_are_breadth_first_and_children_sorted(tree):
    for depth in range(1, tree.depth + 1):
        level = tree.levels[depth]
        assert np.all(np.diff(level.parent) >= 0)
        for p in range(len(tree.levels[depth - 1])):
            kids = tree.children(depth - 1, p)
            keys = [level.code[k].tolist() for k in kids]
            assert keys == sorted(keys)
            assert len(kids) >= 1        # every node has a child (a layer may not cut it)


def test_ids_and_code_paths(tree):
    assert tree.n_nodes == 1 + sum(tree.per_layer)
    depth, index = tree.depth_of(int(tree.node_id(2, 3)))
    assert (depth, index) == (2, 3)
    path = tree.code_path(3, 5)
    assert [p.shape for p in path] == [(5,), (4,), (3,)]
    np.testing.assert_array_equal(np.concatenate(path), tree.leaf_codes()[5])


def test_networkx_view(tree):
    G = tree.to_networkx()
    assert nx.is_tree(G.to_undirected())
    assert G.number_of_nodes() == tree.n_nodes
    leaves = [n for n in G if G.out_degree(n) == 0]
    assert len(leaves) == tree.n_regions
    node = int(tree.node_id(1, 0))
    assert G.nodes[node]["depth"] == 1 and G.nodes[node]["inradius"] > 0


def test_deterministic(tree):
    again = pc.subdivide(random_network(2, [5, 4, 3], 0), pc.Box(-1, 1, dim=2))
    for a, b in zip(tree.levels, again.levels):
        np.testing.assert_array_equal(a.code, b.code)
        np.testing.assert_array_equal(a.parent, b.parent)
        np.testing.assert_array_equal(a.interior_point, b.interior_point)


def test_count_regions_equals_subdivide(tree):
    counts = pc.count_regions(random_network(2, [5, 4, 3], 0), pc.Box(-1, 1, dim=2))
    assert counts.per_layer == tree.per_layer and counts.regions == tree.n_regions
    assert not counts.partial
    assert set(counts.as_dict()) == {"regions", "per_layer", "seconds", "engine", "partial",
                                     "thin", "undecided"}


def test_locate_on_boundaries():
    tree = pc.subdivide(worked_example(), pc.Box(-10, 10, dim=2))
    # on the layer-1 boundary x1 = 0 the tie goes to the inactive side (SPEC §1.3)
    leaf = tree.locate([0.0, 5.0])[0]
    assert tree.leaf_codes()[leaf][0] == 0
    # the corner of the domain is located, a point outside is not
    assert tree.locate([10.0, 10.0])[0] >= 0
    assert tree.locate([10.5, 0.0])[0] == -1
    with pytest.raises(pc.PointError):
        tree.locate([0.0, 0.0, 0.0])


def test_budget_max_regions_gives_a_partial_tree():
    network = random_network(3, [8, 8], 1)
    full = pc.count_regions(network, pc.Box(-1, 1, dim=3))
    # the budget is checked inside a split: the run stops as soon as a split would make one
    # region too many after some layer, dropping that split's unfinished children
    budget = full.per_layer[0] + 20
    part = pc.subdivide(network, pc.Box(-1, 1, dim=3), engine="lp", max_regions=budget)
    assert part.partial
    assert part.per_layer[0] == full.per_layer[0]
    assert 0 < part.n_regions <= budget < full.regions
    # a budget below the first layer's count stops inside the root's split: nothing finished
    first = pc.count_regions(network, pc.Box(-1, 1, dim=3), engine="lp", max_regions=5)
    assert first.partial and first.per_layer == [0, 0]
    # what was found is a consistent prefix: every node's parent exists
    for depth in range(1, part.depth + 1):
        assert np.all(part.levels[depth].parent < len(part.levels[depth - 1]))


def test_budget_time_limit():
    network = random_network(4, [12, 12], 2)
    part = pc.count_regions(network, pc.Box(-1, 1, dim=4), engine="lp", time_limit=0.2)
    assert part.partial and part.seconds < 5


def test_bad_options():
    network = random_network(2, [3], 0)
    with pytest.raises(pc.PowercellsError, match="unknown engine 'fast'; choose one of auto, lp"):
        pc.subdivide(network, pc.Box(-1, 1, dim=2), engine="fast")
    with pytest.raises(pc.PowercellsError, match="unknown LP backend 'glpk'"):
        pc.subdivide(network, pc.Box(-1, 1, dim=2), lp="glpk")
    with pytest.raises(pc.PowercellsError, match="time_limit"):
        pc.subdivide(network, pc.Box(-1, 1, dim=2), time_limit=0)


def test_tolerance_sets_what_is_thin():
    # two parallel lines 2e-6 apart make a slab of inradius 1e-6; tau above it makes it thin:
    # still a region (its interior is certified exactly), marked thin
    network = pc.Network.from_weights([(np.array([[1.0, 0.0], [1.0, 0.0]]),
                                        np.array([0.0, -2e-6]))], ["relu"])
    box = pc.Box(-1, 1, dim=2)
    fine = pc.subdivide(network, box)
    assert fine.per_layer == [3] and len(fine.slivers) == 0 and not fine.levels[1].thin.any()
    coarse = pc.subdivide(network, box, tol=1e-5)
    assert coarse.per_layer == [3] and len(coarse.slivers) == 0
    level = coarse.levels[1]
    assert level.thin.sum() == 1
    assert 0 < level.interior_point[level.thin][0, 0] < 2e-6
    # the radius of the ball about the exact witness: a lower bound of the inradius 1e-6
    assert 0 < level.inradius[level.thin][0] <= 1e-6 * (1 + 1e-9)
    counted = pc.count_regions(network, box, tol=1e-5)
    assert (counted.per_layer, counted.thin, counted.undecided) == ([3], [1], [0])
