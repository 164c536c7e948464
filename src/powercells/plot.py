"""Figures of 2-D subdivisions and 1-D profiles (matplotlib, an optional dependency).

* :func:`plot_partition`: the partition after one layer, its new edges drawn over the previous
  layer's, faces coloured by a per-node quantity, the decision boundary overlaid.
* :func:`plot_layers`: one panel per layer.
* :func:`plot_profile`: the network's outputs along a 1-D domain with the breakpoints marked.
* :func:`plot_soft`: a 2-D domain coloured by the soft VQ's code entropy (or one unit's expected
  code), the hard partition's edges drawn over it (SPEC §7, :mod:`powercells.soft_vq`).

Every function draws on a given matplotlib ``Axes`` or makes a new figure, and runs headless.
Coordinates are the engine's: the input plane for 2-input networks, the slice coordinates
``(t1, t2)`` for a plane through input space.
"""

from __future__ import annotations

import numpy as np

from .errors import OptionError, PowercellsError

__all__ = ["COLOR_BY", "face_values", "plot_layers", "plot_partition", "plot_profile",
           "plot_soft"]

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


def face_values(tree, layer: int, color_by="slope") -> np.ndarray | None:
    """The per-face quantity ``color_by`` names, for the nodes at ``layer``.

    ``"slope"``: Frobenius norm of the node's affine map (of layer ``layer``'s output; at the
    leaves, the network's output). ``"code"``: a colour index per distinct layer-``layer`` code.
    ``"random"``: a random colour per face. ``"none"``: no fill (returns None). An array of
    length ``len(tree.levels[layer])`` is used as given.
    """
    n = len(tree.levels[layer])
    if isinstance(color_by, str):
        if color_by == "none":
            return None
        if color_by == "slope":
            if layer == 0:
                return np.ones(n)
            A, _ = tree.affine_maps(layer)
            return np.sqrt(np.einsum("nij,nij->n", A, A))
        if color_by == "code":
            if layer == 0:
                return np.zeros(n)
            _, inverse = np.unique(tree.levels[layer].code, axis=0, return_inverse=True)
            return inverse.reshape(-1).astype(float)
        if color_by == "random":
            return np.random.default_rng(0).random(n)
        raise PowercellsError(f"unknown color_by {color_by!r}; choose one of "
                              f"{', '.join(COLOR_BY)} or give one value per face")
    values = np.asarray(color_by, dtype=np.float64).reshape(-1)
    if values.size != n:
        raise PowercellsError(f"color_by has {values.size} values but layer {layer} has {n} "
                              "faces")
    return values


def plot_partition(tree, layer: int | None = None, *, ax=None, color_by="slope", cmap=None,
                   boundary: bool | None = None, old_edges="0.15", new_edges="crimson",
                   linewidth: float = 0.6, colorbar: bool = False, title: str | None = None):
    """Draw the partition after ``layer`` (default: the last layer).

    Parameters
    ----------
    tree : SubdivisionTree
        A 2-D tree (a 2-D domain or a plane slice), from any engine.
    layer : int, optional
        The layer to draw, 0 (the domain) to ``tree.depth``.
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
    if title is None:
        title = (f"layer {depth}: {len(polys)} regions" if depth else "domain")
    _frame(ax, tree, polys.xy.min(axis=0), polys.xy.max(axis=0), title)
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


def plot_soft(tree, layer: int | None = None, *, ax=None, temperature=None, unit=None,
              resolution: int = 300, cmap=None, edges="white", linewidth: float = 0.6,
              colorbar: bool = True, title: str | None = None):
    """A 2-D domain coloured by the soft VQ of the network (SPEC §7), with the hard partition
    after ``layer`` drawn over it.

    The colour is the code entropy summed over every unit of layers ``1..layer`` (nats), or with
    ``unit`` the expected code of that unit of ``layer`` (for a ReLU-type unit: the membership
    of its active piece, e.g. ``sigmoid(h / T)``), sampled on a ``resolution`` x
    ``resolution`` grid of the domain's bounding box. The exact edges show where the soft
    memberships are most uncertain: the entropy peaks on them.

    Parameters
    ----------
    tree : SubdivisionTree
        A 2-D tree (a 2-D domain or a plane through input space).
    layer : int, optional
        The layer of the partition drawn, 1 to ``tree.depth`` (default: the last); required with
        ``unit``.
    ax : matplotlib Axes, optional
    temperature : float or None
        See :func:`powercells.soft_vq.soft_codes`: None uses each layer's own activation (the
        smooth network a hard-limit network came from), a number ``T >= 0`` the soft VQ of the
        MASO at temperature ``T`` in every layer.
    unit : int, optional
        Colour by this unit's expected code instead of the entropy.
    resolution : int
        Grid points per axis, 16 to 4096.
    edges : colour
        Colour of the partition's edges.

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    OptionError
        For a tree that is not 2-D, a layer or unit that does not exist, a bad resolution or
        temperature.
    """
    from matplotlib.collections import LineCollection

    from .soft_vq import soft_codes

    _check_scale(tree)
    if tree.domain.dim != 2:
        raise OptionError(f"plot_soft draws 2-D domains; this one has dimension "
                          f"{tree.domain.dim}")
    depth = tree.depth if layer is None else layer
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or \
            not 1 <= depth <= tree.depth:
        raise OptionError(f"layer must be an integer 1..{tree.depth}, got {layer!r}")
    depth = int(depth)
    if unit is not None:
        if layer is None:
            raise OptionError("unit needs its layer: give layer= too")
        width = tree.network.layers[depth - 1].out_dim
        if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)) or \
                not 0 <= unit < width:
            raise OptionError(f"layer {depth} has units 0..{width - 1}, not {unit!r}")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or \
            not 16 <= resolution <= 4096:
        raise OptionError(f"resolution must be an integer 16..4096, got {resolution!r}")
    polys = tree.polygons(depth)
    lo, hi = polys.xy.min(axis=0), polys.xy.max(axis=0)
    xs = np.linspace(lo[0], hi[0], int(resolution))
    ys = np.linspace(lo[1], hi[1], int(resolution))
    T = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    inside = tree.domain.contains(T, tol=1e-12 * tree.domain.diameter)
    sc = soft_codes(tree.network, T[inside], temperature=temperature)
    if unit is None:
        values = sc.layer_entropy[:, :depth].sum(axis=1)
        label = "code entropy (nats)"
    else:
        values = sc.expected_code[depth - 1][:, unit]
        label = f"expected code, layer {depth} unit {unit}"
    image = np.full(T.shape[0], np.nan)
    image[inside] = values
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(6, 6))
    shown = ax.imshow(image.reshape(len(ys), len(xs)), origin="lower", cmap=cmap or "magma",
                      extent=(lo[0], hi[0], lo[1], hi[1]), interpolation="nearest",
                      aspect="auto")
    mesh = tree.mesh(depth)
    ax.add_collection(LineCollection(mesh.vertices[mesh.edges], colors=edges,
                                     linewidths=linewidth))
    if title is None:
        temp = "own activations" if sc.temperature is None else f"T = {sc.temperature:g}"
        title = f"layer {depth}: {len(polys)} regions; soft VQ, {temp}"
    _frame(ax, tree, lo, hi, title)
    if colorbar:
        ax.figure.colorbar(shown, ax=ax, shrink=0.8, label=label)
    return ax


def _frame(ax, tree, lo, hi, title: str) -> None:
    """Limits (the box ``lo, hi`` with a margin), equal aspect, axis names, title."""
    pad = 0.02 * (hi - lo)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ax.set_aspect("equal")
    names = ("t1", "t2") if tree.domain.input_dim != 2 else ("x1", "x2")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title)
