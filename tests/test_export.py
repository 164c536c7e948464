"""Exports: nodes / ridges / adjacency tables, networkx graphs, Parquet round trips,
atomic writing, and the ``powercells export`` command."""

import json
import os

import numpy as np
import pytest
from networks import random_network

import powercells as pc
from powercells.cli import main
from powercells.errors import GeometryError, OutputError
from powercells.geometry.bending import bends, decision_boundary_bends
from powercells.io.export import (
    adjacency_graph,
    adjacency_table,
    node_table,
    read_export,
    ridge_table,
    tree_graph,
    write_export,
)

pytest.importorskip("pyarrow")
pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def tree3():
    return pc.subdivide(random_network(3, [6, 5], seed=1, head=3), pc.Box(-1, 1, dim=3))


def test_node_table_columns_are_the_tree_quantities(tree3):
    nodes = node_table(tree3).to_pandas()
    assert len(nodes) == tree3.n_nodes
    np.testing.assert_array_equal(nodes["id"], np.arange(tree3.n_nodes))
    for depth in range(1, tree3.depth + 1):
        rows = nodes[nodes["depth"] == depth]
        np.testing.assert_array_equal(np.stack(rows["code"]), tree3.path_codes(depth))
        mu, rad = tree3.power_sites(depth)
        np.testing.assert_allclose(np.stack(rows["centroid"]), mu)
        np.testing.assert_allclose(rows["radius"], rad)
        np.testing.assert_allclose(rows["lipschitz"], tree3.lipschitz(depth))
        np.testing.assert_allclose(np.stack(rows["interior_point"]),
                                   tree3.levels[depth].interior_point)
        # children's volumes sum to their parent's
        parent_vol = nodes.set_index("id").loc[rows["parent"], "volume"].to_numpy()
        sums = rows.groupby("parent")["volume"].sum()
        np.testing.assert_allclose(sums.to_numpy(),
                                   nodes.set_index("id").loc[sums.index, "volume"], rtol=1e-9)
        assert np.all(parent_vol > 0)
    assert nodes.loc[0, "volume"] == pytest.approx(8.0) and nodes.loc[0, "parent"] == -1


def test_ridges_and_adjacency_tables(tree3):
    ridges = ridge_table(tree3).to_pandas()
    b2 = bends(tree3, 2)
    db = decision_boundary_bends(tree3)
    assert len(ridges) == len(b2) + len(db) and len(db) > 0
    layer2 = ridges[~ridges["decision_boundary"]]
    np.testing.assert_allclose(np.sort(layer2["bend_oriented"]), np.sort(b2.bend_oriented))
    assert set(ridges["target_layer"]) == {2, 3}
    # region ids are depth-1 (layer 2 targets) and depth-2 (decision boundary) nodes
    nodes = node_table(tree3).to_pandas().set_index("id")
    assert set(nodes.loc[layer2["region_a"], "depth"]) == {1}
    assert set(nodes.loc[ridges[ridges["decision_boundary"]]["region_a"], "depth"]) == {2}
    adj = tree3.adjacency()
    table = adjacency_table(tree3).to_pandas()
    assert len(table) == len(adj.unit)
    assert set(nodes.loc[table["region_a"], "depth"]) == {tree3.depth}
    G = adjacency_graph(tree3, adjacency=adj)
    assert G.number_of_edges() == len(adj) and G.number_of_nodes() == tree3.n_regions
    T = tree_graph(tree3)
    assert T.number_of_nodes() == tree3.n_nodes and T.number_of_edges() == tree3.n_nodes - 1
    leaf = int(tree3.node_id(tree3.depth, 0))
    assert T.nodes[leaf]["code"] == tuple(tree3.leaf_codes()[0])


def test_parquet_round_trip(tmp_path, tree3):
    out = tmp_path / "export"
    summary = write_export(tree3, out)
    back = read_export(out, as_pandas=False)
    assert back["summary"] == json.loads((out / "summary.json").read_text()) 
    assert back["nodes"].equals(node_table(tree3))
    assert back["ridges"].equals(ridge_table(tree3))
    assert back["adjacency"].equals(adjacency_table(tree3))
    assert summary["regions"] == tree3.n_regions and summary["ridges"] == back["ridges"].num_rows
    assert sorted(os.listdir(tmp_path)) == ["export"]          # no temporary folder left
    with pytest.raises(OutputError, match="already holds a powercells export"):
        write_export(tree3, out)
    with pytest.raises(OutputError, match="does not exist"):
        write_export(tree3, tmp_path / "missing" / "export")
    with pytest.raises(GeometryError, match="not an export folder"):
        read_export(tmp_path)
    write_export(tree3, out, overwrite=True, ridges=False)
    assert read_export(out)["ridges"].empty
    assert sorted(os.listdir(tmp_path)) == ["export"]


def test_writing_is_atomic(tmp_path, tree3, monkeypatch):
    import pyarrow.parquet as pq

    calls = []
    real = pq.write_table

    def failing(table, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(table, path, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", failing)
    with pytest.raises(OSError, match="disk full"):
        write_export(tree3, tmp_path / "export")
    assert os.listdir(tmp_path) == []


def test_export_command(tmp_path, capsys):
    net = random_network(2, [6, 4], seed=3, head=4)
    path = tmp_path / "net.npz"
    pc.save_npz(net, path)
    out = tmp_path / "out"
    assert main(["export", str(path), "--box", "-1", "1", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    tables = read_export(out)
    assert summary["engine"] == "planar" and len(tables["nodes"]) == summary["nodes"]
    tree = pc.subdivide(net, pc.Box(-1, 1, dim=2))
    assert summary["regions"] == tree.n_regions
    assert len(tables["adjacency"]) == len(tree.adjacency().unit)
    # bad input: one line on stderr, exit code 2, nothing written
    assert main(["export", str(path), "--box", "-1", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err
    assert main(["export", str(path), "--box", "-1", "1", "--out",
                 str(tmp_path / "missing" / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", str(path), "--box", "-1", "1", "--out", str(tmp_path / "small"),
                 "--max-regions", "2"]) == 2
    assert not (tmp_path / "small").exists()


def test_a_failed_rename_restores_the_previous_export(tmp_path, tree3, monkeypatch):
    """Overwriting moves the old export aside, then renames the new one into place; if that
    second rename fails the old export must be put back, and no hidden folder left behind."""
    out = tmp_path / "export"
    write_export(tree3, out, ridges=False)
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    real = os.rename
    calls = []

    def failing(src, dst, *args, **kwargs):
        calls.append((os.fspath(src), os.fspath(dst)))
        if len(calls) == 2:                   # tmp -> out, after out -> .old
            raise OSError("rename failed")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OSError, match="rename failed"):
        write_export(tree3, out, overwrite=True)
    monkeypatch.setattr(os, "rename", real)
    assert len(calls) == 3                    # out -> .old, tmp -> out (failed), .old -> out
    assert sorted(os.listdir(tmp_path)) == ["export"]
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before


def test_lipschitz_is_in_input_space_on_a_slice(tmp_path):
    """SPEC §5.2: ``lipschitz`` is the spectral norm of the node's map in network-input
    coordinates (for a plane through a 5-D input space, not the plane's coordinates);
    ``lipschitz_domain`` is the engine-coordinate one. Checked against finite differences."""
    net = random_network(5, [6, 4], seed=4, head=2)
    rng = np.random.default_rng(3)
    plane = pc.Slice.through_points(rng.normal(size=(3, 5)) * 3)
    tree = pc.subdivide(net, plane)
    nodes = node_table(tree).to_pandas()
    leaves = nodes[nodes["depth"] == tree.depth]
    A, _ = tree.templates()
    np.testing.assert_allclose(leaves["lipschitz"], np.linalg.norm(A, ord=2, axis=(1, 2)))
    np.testing.assert_allclose(leaves["lipschitz_domain"], tree.lipschitz())
    # the input-space constant bounds every directional slope, and one direction attains it
    X = tree.input_points()
    for i in np.argsort(tree.levels[-1].inradius)[-5:]:
        vt = np.linalg.svd(A[i])[2]
        v = 1e-7 * vt[0]
        slope = np.linalg.norm(net.forward(X[i] + v) - net.forward(X[i])) / 1e-7
        assert slope == pytest.approx(leaves["lipschitz"].iloc[i], rel=1e-5)
    assert not np.allclose(leaves["lipschitz"], leaves["lipschitz_domain"])
    summary = write_export(tree, tmp_path / "slice", ridges=False)
    assert summary["lipschitz"] == pytest.approx(leaves["lipschitz"].max())
    assert summary["lipschitz_domain"] == pytest.approx(leaves["lipschitz_domain"].max())
    assert "input" in summary["lipschitz_coordinates"]
