"""Figures of 2-D subdivisions and 1-D profiles (matplotlib, an optional dependency).

* :func:`plot_partition`: the partition after one layer, its new edges drawn over the previous
  layer's, faces coloured by a per-node quantity, the decision boundary overlaid.
* :func:`plot_layers`: one panel per layer.
* :func:`plot_profile`: the network's outputs along a 1-D domain with the breakpoints marked.

Every function draws on a given matplotlib ``Axes`` or makes a new figure, and runs headless.
Coordinates are the engine's: the input plane for 2-input networks, the slice coordinates
``(t1, t2)`` for a plane through input space.
"""

from __future__ import annotations

import numpy as np

from .errors import PowercellsError

__all__ = ["COLOR_BY", "face_values", "plot_layers", "plot_partition", "plot_profile"]

#: Named per-face quantities for ``color_by``.
COLOR_BY = ("slope", "code", "random", "none")


def _check_scale(tree) -> None:
    from .enumerate.scale import check_value_scale

    check_value_scale(tree.network, tree.domain, "a plot (meshes, slopes, outputs)")


def _pyplot():
    try:
        import matplotlib.pyplot as plt  # falls back to the Agg backend without a display
    except ImportError as exc:  # pragma: no cover - exercised without matplotlib only
        raise PowercellsError("plotting needs matplotlib: pip install 'powercells[plot]'") from exc
    return plt


def face_values(tree, depth: int, color_by="slope") -> np.ndarray | None:
    """The per-face quantity ``color_by`` names, for the nodes at ``depth``.

    ``"slope"``: Frobenius norm of the node's affine map (of layer ``depth``'s output; at the
    leaves, the network's output). ``"code"``: a colour index per distinct layer-``depth`` code.
    ``"random"``: a random colour per face. ``"none"``: no fill (returns None). An array of
    length ``len(tree.levels[depth])`` is used as given.
    """
    n = len(tree.levels[depth])
    if isinstance(color_by, str):
        if color_by == "none":
            return None
        if color_by == "slope":
            if depth == 0:
                return np.ones(n)
            A, _ = tree.affine_maps(depth)
            return np.sqrt(np.einsum("nij,nij->n", A, A))
        if color_by == "code":
            if depth == 0:
                return np.zeros(n)
            _, inverse = np.unique(tree.levels[depth].code, axis=0, return_inverse=True)
            return inverse.reshape(-1).astype(float)
        if color_by == "random":
            return np.random.default_rng(0).random(n)
        raise PowercellsError(f"unknown color_by {color_by!r}; choose one of "
                              f"{', '.join(COLOR_BY)} or give one value per face")
    values = np.asarray(color_by, dtype=np.float64).reshape(-1)
    if values.size != n:
        raise PowercellsError(f"color_by has {values.size} values but depth {depth} has {n} "
                              "faces")
    return values


def plot_partition(tree, layer: int | None = None, *, ax=None, color_by="slope", cmap=None,
                   boundary: bool | None = None, old_edges="0.15", new_edges="crimson",
                   linewidth: float = 0.6, colorbar: bool = False, title: str | None = None):
    """Draw the partition after ``layer`` (default: the last layer).

    Parameters
    ----------
    tree : SubdivisionTree
        A 2-D tree from the planar engine.
    layer : int, optional
        Depth to draw, 0 (the domain) to ``tree.depth``.
    ax : matplotlib Axes, optional
    color_by : str or array_like
        See :func:`face_values`.
    boundary : bool, optional
        Overlay the decision boundary at the last layer; default: when the network ends with a
        linear head (an ``identity`` layer), whose outputs are logits.
    old_edges, new_edges : colours
        Edges made by earlier layers, and by ``layer`` itself.
    colorbar : bool
        Add a colour bar for a numeric ``color_by``.

    Returns
    -------
    matplotlib Axes
    """
    _check_scale(tree)
    from matplotlib.collections import LineCollection, PolyCollection

    depth = tree.depth if layer is None else int(layer)
    if not 0 <= depth <= tree.depth:
        raise PowercellsError(f"layer must be between 0 and {tree.depth}, got {layer}")
    polys = tree.polygons(depth)
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(6, 6))
    faces = [polys.vertices(i) for i in range(len(polys))]
    values = face_values(tree, depth, color_by)
    fill = PolyCollection(faces, edgecolors="none", linewidths=0)
    if values is None:
        fill.set_facecolor("none")
    else:
        if isinstance(color_by, str) and color_by in ("code", "random"):
            cmap = cmap or "tab20"
        fill.set_array(values)
        fill.set_cmap(cmap or "viridis")
    ax.add_collection(fill)
    mesh = tree.mesh(depth)
    seg = mesh.vertices[mesh.edges]
    new = mesh.edge_layer == depth
    ax.add_collection(LineCollection(seg[~new], colors=old_edges, linewidths=linewidth))
    if depth > 0:
        ax.add_collection(LineCollection(seg[new], colors=new_edges, linewidths=linewidth * 1.5))
    if boundary is None:
        boundary = tree.network.layers[-1].kind == "identity"
    if boundary and depth == tree.depth:
        db = tree.decision_boundary()
        if len(db):
            ax.add_collection(LineCollection(db.segments, colors="white",
                                             linewidths=linewidth * 5))
            ax.add_collection(LineCollection(db.segments, colors="black",
                                             linewidths=linewidth * 2.5))
    lo, hi = polys.xy.min(axis=0), polys.xy.max(axis=0)
    pad = 0.02 * (hi - lo)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ax.set_aspect("equal")
    names = ("t1", "t2") if tree.domain.input_dim != 2 else ("x1", "x2")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    if title is None:
        title = (f"layer {depth}: {len(polys)} regions" if depth else "domain")
    ax.set_title(title)
    if colorbar and values is not None:
        ax.figure.colorbar(fill, ax=ax, shrink=0.8, label=str(color_by))
    return ax


def plot_layers(tree, *, color_by="code", boundary: bool | None = None,
                ncols: int | None = None):
    """One panel per layer (1..L): each layer's new edges over the earlier ones.

    Returns
    -------
    matplotlib Figure
    """
    _check_scale(tree)
    plt = _pyplot()
    L = tree.depth
    ncols = ncols or min(L, 3)
    nrows = -(-L // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 4.5 * nrows), squeeze=False)
    for depth in range(1, L + 1):
        plot_partition(tree, depth, ax=axes.flat[depth - 1], color_by=color_by,
                       boundary=boundary)
    for ax in list(axes.flat)[L:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_profile(tree, *, ax=None, outputs=None):
    """The network's outputs along a 1-D domain, breakpoints marked (a 1-D tree).

    Parameters
    ----------
    tree : SubdivisionTree
        A tree over a 1-D domain (a Box in R^1 or a segment between two input points).
    outputs : list of int, optional
        Output indices to draw (default all).

    Returns
    -------
    matplotlib Axes
    """
    _check_scale(tree)
    if tree.domain.dim != 1:
        raise PowercellsError(f"plot_profile needs a 1-D domain, this one has dimension "
                              f"{tree.domain.dim}")
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(7, 3.5))
    lo, hi = tree.intervals()
    breaks = np.unique(np.concatenate([lo, hi]))
    A, B = tree.affine_maps()
    idx = range(B.shape[1]) if outputs is None else outputs
    for j in idx:
        # exact: affine on every interval, so the end values draw the graph
        xs = np.stack([lo, hi], axis=1)
        ys = A[:, j, 0][:, None] * xs + B[:, j][:, None]
        order = np.argsort(lo)
        ax.plot(xs[order].reshape(-1), ys[order].reshape(-1), lw=1.2, label=f"output {j}")
    for b in breaks[1:-1]:
        ax.axvline(b, color="0.7", lw=0.5, zorder=0)
    ax.set_xlim(breaks[0], breaks[-1])
    ax.set_xlabel("t" if tree.domain.input_dim != 1 else "x")
    ax.set_title(f"{len(lo)} regions, {len(breaks) - 2} breakpoints")
    if 1 < len(list(idx)) <= 10:
        ax.legend(fontsize="small")
    return ax
