"""Streaming leaves: group by group to a callback or to disk, identical to the tree."""

import json

import numpy as np
import pytest
from networks import random_network

import powercells as pc


@pytest.mark.parametrize("d,engine", [(2, "planar"), (1, "interval"), (3, "lp")])
def test_stream_leaves_equal_the_tree(d, engine):
    network = random_network(d, [7, 6], seed=d)
    box = pc.Box(-1, 1, dim=d)
    tree = pc.subdivide(network, box, engine=engine)
    chunks = []
    result = pc.stream_leaves(network, box, chunks.append, engine=engine)
    assert result.per_layer == tree.per_layer and result.engine == engine
    assert len(chunks) >= 1
    assert [c.first for c in chunks] == list(np.cumsum([0] + [len(c) for c in chunks[:-1]]))
    np.testing.assert_array_equal(np.vstack([c.codes for c in chunks]), tree.leaf_codes())
    np.testing.assert_allclose(np.vstack([c.interior_point for c in chunks]),
                               tree.levels[-1].interior_point)
    if engine == "planar":
        polys = pc.geometry.polygons.Polygons.concat([c.polygons for c in chunks])
        np.testing.assert_array_equal(polys.xy, tree.polygons().xy)
    if engine == "interval":
        np.testing.assert_array_equal(np.vstack([c.intervals for c in chunks]),
                                      np.stack(tree.intervals(), axis=1))


def test_write_and_read_leaves(tmp_path):
    network = random_network(2, [12, 12], seed=1)
    box = pc.Box(-1, 1, dim=2)
    out = tmp_path / "leaves"
    result = pc.write_leaves(network, box, out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["regions"] == result.regions and summary["engine"] == "planar"
    chunks = list(pc.read_leaves(out))
    assert sum(len(c) for c in chunks) == result.regions
    tree = pc.subdivide(network, box)
    np.testing.assert_array_equal(np.vstack([c.codes for c in chunks]), tree.leaf_codes())
    area = sum(c.polygons.area_perimeter()[0].sum() for c in chunks)
    assert area == pytest.approx(4.0)
    assert not list(out.glob(".*tmp*"))                 # no temporary file left
    with pytest.raises(pc.OutputError, match="already holds a powercells leaf folder"):
        pc.write_leaves(network, box, out)
    with pytest.raises(pc.PowercellsError, match="no summary.json"):
        list(pc.read_leaves(tmp_path))
