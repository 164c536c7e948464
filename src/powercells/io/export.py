"""Tables and graphs of a subdivision tree: nodes, ridges (bends), facet adjacency.

* :func:`node_table`: one row per tree node (root included): ``id``, ``parent``, ``depth``,
  ``code`` (the code path, every layer so far, concatenated), ``interior_point``, ``inradius``,
  ``thin`` (a region at or below the region tolerance, its interior certified exactly),
  ``centroid`` and ``radius`` (SPEC §3.3), ``lipschitz`` (SPEC §5.2: the spectral norm of the
  node's map in **network-input** coordinates, also for a slice), ``lipschitz_domain`` (the same
  in engine coordinates: along the slice for a plane through input space, equal to
  ``lipschitz`` otherwise), ``volume`` (exact, d <= 3; null above; engine coordinates).
* :func:`ridge_table`: one row per ridge where a layer's boundary (or the decision boundary)
  bends across a facet (SPEC §4): the two regions, the crossing and target units, the target's
  two tied pieces, both angles.
* :func:`adjacency_table`: one row per (adjacent pair of leaves, unit the facet lies on).
* :func:`tree_graph`, :func:`adjacency_graph`: the same as networkx graphs.
* :func:`write_export` / :func:`read_export`: Parquet files plus ``summary.json`` in a folder,
  written atomically (a temporary folder renamed at the end).

Ids are global node ids (``tree.node_id``); points are in engine coordinates (the slice's
coordinates for a plane through input space). ``summary.json`` gives the leaves' maximum of both
Lipschitz columns (``lipschitz``: input space, the network's constant on the domain;
``lipschitz_domain``: engine coordinates) and the counts of what is reported but not counted:
undecided adjacent pairs, undecided ridges, and target hyperplanes containing a whole facet
(``coincident_ridges``, SPEC §4.3). pyarrow and pandas are imported when used
(``pip install 'powercells[export]'``).
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..errors import GeometryError, OutputError, PowercellsError

__all__ = ["adjacency_graph", "adjacency_table", "node_table", "read_export", "ridge_table",
           "tree_graph", "write_export"]

FILES = ("nodes.parquet", "ridges.parquet", "adjacency.parquet", "summary.json")


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - exercised without pyarrow only
        raise PowercellsError("exports need pyarrow: pip install 'powercells[export]'") from exc
    return pa, pq


def _lists(values: np.ndarray, pa, type_):
    """A fixed-width 2-D array as a pyarrow list column (no Python lists in between)."""
    values = np.ascontiguousarray(values)
    n, width = values.shape
    offsets = (np.arange(n + 1, dtype=np.int32) * width).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.reshape(-1), type=type_))


def node_table(tree):
    """Every node of the tree as a ``pyarrow.Table`` (see the module docstring).

    Returns
    -------
    pyarrow.Table
        Sorted by ``id``; ``parent`` is -1 at the root. Call ``.to_pandas()`` for a DataFrame.
    """
    pa, _ = _pyarrow()
    from ..enumerate.scale import check_value_scale
    from ..geometry.power import node_sites

    check_value_scale(tree.network, tree.domain, "the node table (maps, centroids, volumes)")

    exact = tree.domain.dim <= 3 and not tree.partial
    columns = {k: [] for k in ("id", "parent", "depth", "code", "interior_point", "inradius",
                               "thin", "centroid", "radius", "lipschitz", "lipschitz_domain", "volume")}
    for depth, level in enumerate(tree.levels):
        n = len(level)
        ids = tree.node_id(depth, np.arange(n)).astype(np.int64)
        parent = (tree.node_id(depth - 1, level.parent).astype(np.int64) if depth
                  else np.full(n, -1, np.int64))
        if depth:
            A, B = tree.affine_maps(depth)
        else:
            A = np.broadcast_to(np.eye(tree.domain.dim), (n,) + (tree.domain.dim,) * 2)
            B = np.zeros((n, tree.domain.dim))
        mu, rad = node_sites(A, B)
        columns["id"].append(pa.array(ids))
        columns["parent"].append(pa.array(parent))
        columns["depth"].append(pa.array(np.full(n, depth, np.int64)))
        codes = tree.path_codes(depth).astype(np.int16) if depth else np.empty((n, 0), np.int16)
        columns["code"].append(_lists(codes, pa, pa.int16()))
        columns["interior_point"].append(_lists(level.interior_point, pa, pa.float64()))
        columns["inradius"].append(pa.array(level.inradius.astype(np.float64)))
        columns["thin"].append(pa.array(np.asarray(level.thin, dtype=bool)))
        columns["centroid"].append(_lists(mu, pa, pa.float64()))
        columns["radius"].append(pa.array(rad))
        A_in = _input_maps(tree, depth)
        columns["lipschitz"].append(pa.array(np.linalg.norm(A_in, ord=2, axis=(1, 2))
                                             if n else np.empty(0)))
        columns["lipschitz_domain"].append(pa.array(np.linalg.norm(A, ord=2, axis=(1, 2))
                                                    if n else np.empty(0)))
        if exact:
            columns["volume"].append(pa.array(tree.volumes(depth).volume))
        else:
            columns["volume"].append(pa.nulls(n, type=pa.float64()))
    return pa.table({k: pa.concat_arrays(v) for k, v in columns.items()})


def _input_maps(tree, depth) -> np.ndarray:
    """The linear parts of the nodes' maps at ``depth`` in network-input coordinates
    ``(n, width, input_dim)`` (SPEC §5.2), composed through ``tree.source_network``."""
    n = len(tree.levels[depth])
    d_in = tree.source_network.input_dim
    A = np.broadcast_to(np.eye(d_in), (n, d_in, d_in))
    if depth == 0:
        return A
    chain = [np.arange(n)]
    for d in range(depth, 1, -1):
        chain.append(tree.levels[d].parent[chain[-1]])
    chain = chain[::-1]
    B = np.zeros((n, d_in))
    for j, layer in enumerate(tree.source_network.layers[:depth]):
        A, B = layer.compose(A, B, tree.levels[j + 1].code[chain[j]])
    return A


def _adjacency_levels(tree, lp=None) -> list:
    """The facet adjacency of every depth ``1 .. L`` (index ``depth - 1``)."""
    from ..enumerate.scale import check_value_scale
    from ..geometry.adjacency import _LPAdjacency, facet_adjacency

    check_value_scale(tree.network, tree.domain, "facet adjacency and bends")
    if tree.partial:
        raise GeometryError("the tree is partial (a budget stopped the enumeration): "
                            "adjacency and ridges need every region")
    if tree.levels[-1].polygons is not None:
        return [facet_adjacency(tree, d, method="mesh") for d in range(1, tree.depth + 1)]
    return _LPAdjacency(tree, lp).run_all(tree.depth)


def adjacency_table(tree, *, adjacency=None, lp=None):
    """One row per (adjacent pair of leaves, unit whose code differs across their facet):
    ``region_a``, ``region_b`` (global ids), ``layer`` (1-based), ``unit``.

    Parameters
    ----------
    adjacency : Adjacency, optional
        The leaves' adjacency, if already computed.

    Returns
    -------
    pyarrow.Table
    """
    pa, _ = _pyarrow()
    adj = adjacency if adjacency is not None else tree.adjacency(lp=lp)
    t = adj.table()
    return pa.table({"region_a": pa.array(tree.node_id(adj.depth, t["region_a"]).astype(np.int64)),
                     "region_b": pa.array(tree.node_id(adj.depth, t["region_b"]).astype(np.int64)),
                     "layer": pa.array(t["layer"].astype(np.int64)),
                     "unit": pa.array(t["unit"].astype(np.int64))})


def ridge_table(tree, *, levels=None, lp=None, decision_boundary: bool = True, _counts=None):
    """Every ridge of every layer ``2 .. L`` that has boundaries, and of the decision boundary
    when the network ends with a linear head and has a hidden layer.

    Columns: ``region_a``, ``region_b`` (global ids of the two depth ``target_layer - 1``
    regions), ``crossing_layer``, ``crossing_unit`` (the first unit whose code differs across
    the facet), ``target_layer``, ``target_unit``, ``target_piece_1``, ``target_piece_2`` (the
    tied pieces of a maxout / max-pool target or the two classes of the decision boundary; -1
    for ReLU-type targets and a one-logit head), ``bend_oriented``, ``bend_unsigned``
    (radians), ``decision_boundary`` (bool), ``point`` (a point of the ridge). Targets whose
    hyperplane contains a whole facet (``Bends.coincident``, bend 0 or pi) and undecided ridges
    (``Bends.undecided``) are not rows; :func:`write_export` counts them in the summary.

    Parameters
    ----------
    levels : list of Adjacency, optional
        The adjacency of depths ``1 .. L`` (as computed by :func:`write_export`).

    Returns
    -------
    pyarrow.Table
    """
    pa, _ = _pyarrow()
    from ..geometry.bending import bends, decision_boundary_bends

    levels = levels if levels is not None else _adjacency_levels(tree, lp)
    parts = []
    for layer in range(2, tree.depth + 1):
        target = tree.network.layers[layer - 1]
        if target.kind == "identity" or target.max_pieces == 1:
            continue
        parts.append((layer - 1, bends(tree, layer, adjacency=levels[layer - 2], lp=lp), False))
    if (decision_boundary and tree.depth >= 2 and tree.network.layers[-1].kind == "identity"):
        parts.append((tree.depth - 1, decision_boundary_bends(
            tree, adjacency=levels[tree.depth - 2], lp=lp), True))
    k = tree.domain.dim
    cols = {c: [] for c in ("region_a", "region_b", "crossing_layer", "crossing_unit",
                            "target_layer", "target_unit", "target_piece_1", "target_piece_2",
                            "bend_oriented", "bend_unsigned", "decision_boundary", "point")}
    for depth, b, is_db in parts:
        if _counts is not None:
            _counts["undecided"] += len(b.undecided)
            _counts["coincident"] += len(b.coincident)
        cols["region_a"].append(tree.node_id(depth, b.region_a).astype(np.int64))
        cols["region_b"].append(tree.node_id(depth, b.region_b).astype(np.int64))
        for name in ("crossing_layer", "crossing_unit", "target_layer", "target_unit"):
            cols[name].append(np.asarray(getattr(b, name), dtype=np.int64))
        cols["target_piece_1"].append(np.asarray(b.piece_1, dtype=np.int64))
        cols["target_piece_2"].append(np.asarray(b.piece_2, dtype=np.int64))
        cols["bend_oriented"].append(np.asarray(b.bend_oriented, dtype=np.float64))
        cols["bend_unsigned"].append(np.asarray(b.bend_unsigned, dtype=np.float64))
        cols["decision_boundary"].append(np.full(len(b), is_db))
        cols["point"].append(np.asarray(b.point, dtype=np.float64).reshape(-1, k))
    out = {}
    for name, values in cols.items():
        if name == "point":
            out[name] = _lists(np.concatenate(values) if values else np.empty((0, k)), pa,
                               pa.float64())
        elif name == "decision_boundary":
            out[name] = pa.array(np.concatenate(values) if values else np.empty(0, bool))
        else:
            dtype = np.float64 if name.startswith("bend") else np.int64
            out[name] = pa.array(np.concatenate(values).astype(dtype) if values
                                 else np.empty(0, dtype))
    return pa.table(out)


def tree_graph(tree):
    """The tree as a ``networkx.DiGraph`` (parent -> child) whose nodes carry every column of
    :func:`node_table` (arrays as numpy arrays, ``code`` as a tuple)."""
    import networkx as nx

    table = node_table(tree).to_pydict()
    G = nx.DiGraph()
    for row in range(len(table["id"])):
        attrs = {k: table[k][row] for k in table if k not in ("id",)}
        attrs["code"] = tuple(attrs["code"])
        for k in ("interior_point", "centroid"):
            attrs[k] = np.asarray(attrs[k])
        G.add_node(table["id"][row], **attrs)
        if attrs["parent"] >= 0:
            G.add_edge(attrs["parent"], table["id"][row])
    return G


def adjacency_graph(tree, *, adjacency=None, lp=None):
    """The leaves' facet adjacency as a ``networkx.Graph``: nodes are the leaves' global ids;
    an edge per adjacent pair carries ``units`` (list of ``(layer, unit)``), ``normal``
    (pointing from the smaller id to the larger), ``offset``, ``center`` and ``radius`` of the
    common facet."""
    import networkx as nx

    adj = adjacency if adjacency is not None else tree.adjacency(lp=lp)
    G = nx.Graph()
    G.add_nodes_from(int(i) for i in tree.node_id(adj.depth, np.arange(len(tree.levels[adj.depth]))))
    ids_a = tree.node_id(adj.depth, adj.region_a)
    ids_b = tree.node_id(adj.depth, adj.region_b)
    for i in range(len(adj)):
        G.add_edge(int(ids_a[i]), int(ids_b[i]), units=adj.units_of(i),
                   normal=adj.normal[i].copy(), offset=float(adj.offset[i]),
                   center=adj.center[i].copy(), radius=float(adj.radius[i]))
    return G


def write_export(tree, directory, *, overwrite: bool = False, lp=None,
                 ridges: bool = True) -> dict:
    """Write ``nodes.parquet``, ``ridges.parquet``, ``adjacency.parquet`` and ``summary.json``
    into ``directory``.

    The folder is written by :class:`~powercells.io.output.OutputFolder`: into a temporary
    sibling renamed into place at the end, under a lock, so an error or an interrupt leaves
    nothing half-written and two writers of one folder cannot mix their files.

    Parameters
    ----------
    directory : str, path or OutputFolder
        Created; it must not exist or be empty, unless ``overwrite`` and it holds an earlier
        powercells export. An :class:`OutputFolder` already entered (the CLI takes the folder
        before it enumerates, so a bad ``--out`` fails at once) is written and committed.
    overwrite : bool
        Replace an earlier export in the folder (never a folder holding anything else).
    ridges : bool
        Compute the ridges (bends); otherwise ``ridges.parquet`` is written empty.

    Returns
    -------
    dict
        The summary written to ``summary.json``.

    Raises
    ------
    OutputError
        If the folder may not be written (see :class:`OutputFolder`).
    GeometryError
        If the tree is partial.
    """
    from .output import OutputFolder

    _pyarrow()
    if isinstance(directory, OutputFolder):
        return _write_export_files(tree, directory, lp, ridges)
    with OutputFolder(directory, kind="export", overwrite=overwrite) as folder:
        return _write_export_files(tree, folder, lp, ridges)


def _write_export_files(tree, folder, lp, ridges) -> dict:
    """Compute the tables, write them into the folder's temporary copy, commit."""
    _, pq = _pyarrow()
    import time

    start = time.perf_counter()
    levels = _adjacency_levels(tree, lp)
    nodes = node_table(tree)
    counts = {"undecided": 0, "coincident": 0}
    ridge = (ridge_table(tree, levels=levels, lp=lp, _counts=counts) if ridges
             else _empty_ridges(tree))
    adjacency = adjacency_table(tree, adjacency=levels[-1])
    undecided = int(sum(len(lv.undecided) for lv in levels))
    leaves = np.asarray(nodes.column("depth")) == tree.depth
    lip = np.asarray(nodes.column("lipschitz"))[leaves]
    lip_domain = np.asarray(nodes.column("lipschitz_domain"))[leaves]
    summary = {
        "network": {"input_dim": tree.source_network.input_dim,
                    "widths": list(tree.network.widths),
                    "layers": [layer.kind for layer in tree.network.layers]},
        "domain": repr(tree.domain), "dim": tree.domain.dim, "engine": tree.engine,
        "per_layer": tree.per_layer, "regions": tree.n_regions, "nodes": tree.n_nodes,
        "thin": tree.thin,
        "undecided_cells": [int(np.sum(np.asarray(tree.slivers.layer) == i + 1))
                            for i in range(tree.depth)],
        "adjacent_pairs": len(levels[-1]), "adjacency_rows": adjacency.num_rows,
        "undecided_pairs": undecided, "ridges": ridge.num_rows,
        "undecided_ridges": counts["undecided"] if ridges else None,
        "coincident_ridges": counts["coincident"] if ridges else None,
        "lipschitz": float(lip.max()) if len(lip) else None,
        "lipschitz_coordinates": "network input (SPEC §5.2)",
        "lipschitz_domain": float(lip_domain.max()) if len(lip_domain) else None,
        "volumes": "exact" if tree.domain.dim <= 3 else "omitted (d > 3)",
        "seconds": round(time.perf_counter() - start, 6),
        "files": list(FILES),
    }
    try:
        pq.write_table(nodes, os.path.join(folder.tmp, "nodes.parquet"))
        pq.write_table(ridge, os.path.join(folder.tmp, "ridges.parquet"))
        pq.write_table(adjacency, os.path.join(folder.tmp, "adjacency.parquet"))
        with open(os.path.join(folder.tmp, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=2)
    except OSError as exc:
        raise OutputError(f"{folder.given}: cannot write the export "
                          f"({exc.strerror or exc})") from None
    folder.commit()
    return summary


def _empty_ridges(tree):
    pa, _ = _pyarrow()
    ints = {c: pa.array(np.empty(0, np.int64)) for c in (
        "region_a", "region_b", "crossing_layer", "crossing_unit", "target_layer", "target_unit",
        "target_piece_1", "target_piece_2")}
    return pa.table({**ints, "bend_oriented": pa.array(np.empty(0)),
                     "bend_unsigned": pa.array(np.empty(0)),
                     "decision_boundary": pa.array(np.empty(0, bool)),
                     "point": _lists(np.empty((0, tree.domain.dim)), pa, pa.float64())})


def read_export(directory, *, as_pandas: bool = True) -> dict:
    """Read a folder written by :func:`write_export`.

    Returns
    -------
    dict
        ``nodes``, ``ridges``, ``adjacency`` (pandas DataFrames, or pyarrow Tables with
        ``as_pandas=False``) and ``summary`` (dict).

    Raises
    ------
    GeometryError
        If a file is missing.
    """
    _, pq = _pyarrow()
    directory = os.fspath(directory)
    missing = [f for f in FILES if not os.path.exists(os.path.join(directory, f))]
    if missing:
        raise GeometryError(f"{directory}: not an export folder (missing {', '.join(missing)})")
    out = {}
    for name in ("nodes", "ridges", "adjacency"):
        path = os.path.join(directory, f"{name}.parquet")
        try:
            table = pq.read_table(path)
        except Exception as exc:    # pyarrow raises ArrowInvalid, OSError, ... on bad files
            raise GeometryError(f"{path}: cannot read the table ({exc})") from None
        out[name] = table.to_pandas() if as_pandas else table
    path = os.path.join(directory, "summary.json")
    try:
        with open(path) as fh:
            out["summary"] = json.load(fh)
    except (OSError, ValueError) as exc:
        raise GeometryError(f"{path}: cannot read the summary ({exc})") from None
    return out
