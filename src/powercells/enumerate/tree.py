"""The subdivision tree as flat columnar tables, one level per depth (SPEC §3.4, DESIGN §1).

Level ``l`` holds every depth-``l`` node: the layer-``l`` code of each (the code path is the chain
of codes through ``parent``), the index of its parent in level ``l-1``, an interior point (the
Chebyshev centre) and the inradius. Levels are in breadth-first order: sorted by parent, then by
code. A node's global id is its level's offset plus its index, so ids are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import GeometryError, PointError

__all__ = ["Level", "SliverTable", "SubdivisionTree"]


@dataclass
class Level:
    """All nodes of one depth.

    Attributes
    ----------
    code : ndarray of int16, shape (n, K_l)
    parent : ndarray of int64, shape (n,)
        Index into the previous level (-1 at the root).
    interior_point : ndarray, shape (n, k)
        Chebyshev centres, in engine coordinates (slice coordinates for a :class:`Slice`).
    inradius : ndarray, shape (n,)
    polygons : Polygons or None
        For 2-D domains subdivided by the planar engine: every node's convex polygon (engine
        coordinates, counter-clockwise).
    intervals : ndarray or None
        For 1-D domains subdivided by the interval engine: every node's ``[lo, hi]``, (n, 2).
    thin : ndarray of bool, shape (n,)
        Thin regions: inradius at or below the region tolerance, their interior certified in
        exact arithmetic (for these, ``inradius`` is the radius of the largest ball about the
        interior point, a lower bound).
    """

    code: np.ndarray
    parent: np.ndarray
    interior_point: np.ndarray
    inradius: np.ndarray
    polygons: object = None
    intervals: object = None
    thin: object = None

    def __post_init__(self):
        if self.thin is None:
            self.thin = np.zeros(len(self.parent), dtype=bool)

    def __len__(self) -> int:
        return len(self.parent)

    @classmethod
    def empty(cls, width: int, dim: int) -> Level:
        return cls(np.empty((0, width), dtype=np.int16), np.empty(0, dtype=np.int64),
                   np.empty((0, dim)), np.empty(0))

    @classmethod
    def concat(cls, levels: list[Level]) -> Level:
        filled = [lv for lv in levels if len(lv)]   # a partial run leaves empty parts
        polygons = None
        if filled and all(lv.polygons is not None for lv in filled):
            from ..geometry.polygons import Polygons

            polygons = Polygons.concat([lv.polygons for lv in filled])
        intervals = None
        if filled and all(lv.intervals is not None for lv in filled):
            intervals = np.concatenate([lv.intervals for lv in filled])
        return cls(np.concatenate([lv.code for lv in levels]),
                   np.concatenate([lv.parent for lv in levels]),
                   np.concatenate([lv.interior_point for lv in levels]),
                   np.concatenate([lv.inradius for lv in levels]), polygons, intervals,
                   np.concatenate([lv.thin for lv in levels]))


@dataclass
class SliverTable:
    """Undecided cells: set aside by an engine below the region tolerance (its *slivers*) and
    not settled by the exact test (:mod:`powercells.enumerate.thin`).

    They are not counted; they are reported so that nothing is silently dropped (normally the
    table is empty: a sliver whose interior is certified is a thin region, one with an
    emptiness certificate is no cell). ``code`` is the layer's code with -1 for units left
    undecided; ``parent`` is the global id of the node that was being split.
    """

    layer: list = field(default_factory=list)
    parent: list = field(default_factory=list)
    code: list = field(default_factory=list)
    interior_point: list = field(default_factory=list)
    inradius: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.layer)

    def per_layer(self, depth: int) -> list[int]:
        counts = [0] * depth
        for layer in self.layer:
            counts[layer - 1] += 1
        return counts


class SubdivisionTree:
    """The exact subdivision of a domain by a network's layers.

    Built by :func:`powercells.subdivide`; not meant to be constructed by hand.

    Attributes
    ----------
    network : Network
        The network as the engine saw it (a slice already folded into layer 1).
    domain : Domain
    levels : list of Level
        ``levels[0]`` is the root (the domain), ``levels[l]`` the regions after layer l.
    slivers : SliverTable
        The undecided cells (``undecided`` in counts and exports).
    partial : bool
        True when a budget stopped the enumeration: the counts are lower bounds.
    seconds : float
    engine : str
    stats : dict
        Counters of the engine's decisions (LPs solved, certificates used, ...).
    tolerances : Tolerances
    """

    def __init__(self, network, domain, levels, slivers, *, partial, seconds, engine, stats,
                 tolerances, source_network=None):
        self.network = network
        self.source_network = source_network if source_network is not None else network
        self.domain = domain
        self.levels = levels
        self.slivers = slivers
        self.partial = partial
        self.seconds = seconds
        self.engine = engine
        self.stats = stats
        self.tolerances = tolerances
        self._offsets = np.concatenate([[0], np.cumsum([len(lv) for lv in levels])])
        self._leaf_index = None

    # ----------------------------------------------------------------- sizes
    @property
    def depth(self) -> int:
        """L, the number of layers (leaves are at depth L)."""
        return len(self.levels) - 1

    @property
    def per_layer(self) -> list[int]:
        """Number of regions after each layer: ``[len(levels[1]), ..., len(levels[L])]``."""
        return [len(lv) for lv in self.levels[1:]]

    @property
    def thin(self) -> list[int]:
        """Thin regions per layer: inradius at or below the region tolerance, the interior
        certified in exact arithmetic (counted in :attr:`per_layer`; ``levels[l].thin``)."""
        return [int(np.count_nonzero(lv.thin)) for lv in self.levels[1:]]

    @property
    def n_regions(self) -> int:
        """Number of leaves: the linear regions of the network (activation-pattern sense)."""
        return len(self.levels[-1])

    @property
    def n_nodes(self) -> int:
        return int(self._offsets[-1])

    def __len__(self) -> int:
        return self.n_nodes

    def __repr__(self) -> str:
        flag = ", partial" if self.partial else ""
        return f"SubdivisionTree(regions={self.n_regions}, per_layer={self.per_layer}{flag})"

    # ----------------------------------------------------------------- ids and codes
    def node_id(self, layer: int, index) -> np.ndarray | int:
        """Global id(s) of the node(s) at ``levels[depth][index]``."""
        return self._offsets[layer] + np.asarray(index)

    def depth_of(self, node_id: int) -> tuple[int, int]:
        """``(depth, index)`` of a global id."""
        if not 0 <= node_id < self.n_nodes:
            raise IndexError(f"node id {node_id} out of range [0, {self.n_nodes})")
        depth = int(np.searchsorted(self._offsets, node_id, side="right") - 1)
        return depth, int(node_id - self._offsets[depth])

    def children(self, layer: int, index: int) -> np.ndarray:
        """Indices in ``levels[depth+1]`` of the children of ``levels[depth][index]``."""
        parent = self.levels[layer + 1].parent
        lo, hi = np.searchsorted(parent, [index, index + 1])
        return np.arange(lo, hi)

    def ancestors(self, layer: int, index: int) -> list[int]:
        """Indices of the node's ancestors, level by level: ``[idx at depth 1, ..., index]``."""
        path = [index]
        for d in range(layer, 1, -1):
            path.append(int(self.levels[d].parent[path[-1]]))
        return path[::-1]

    def code_path(self, layer: int, index: int) -> list[np.ndarray]:
        """The per-layer codes of ``levels[depth][index]``: a region IS its code path."""
        return [self.levels[d + 1].code[i] for d, i in enumerate(self.ancestors(layer, index))]

    def leaf_codes(self) -> np.ndarray:
        """Full code paths of all leaves, concatenated over layers: shape (n_leaves, sum K_l)."""
        return self.path_codes(self.depth)

    def path_codes(self, layer: int) -> np.ndarray:
        """Code paths of every node at ``layer``, layers 1..depth concatenated."""
        idx = np.arange(len(self.levels[layer]))
        cols = []
        for d in range(layer, 0, -1):
            cols.append(self.levels[d].code[idx])
            idx = self.levels[d].parent[idx]
        return np.hstack(cols[::-1]) if cols else np.empty((len(idx), 0), dtype=np.int16)

    def affine_map(self, layer: int, index: int):
        """``(A, B)`` with ``z^(layer) = A t + B`` on the node (SPEC §3.1), engine coordinates."""
        return self.network.affine_map_of_codes(self.code_path(layer, index))

    def affine_maps(self, layer: int | None = None, index=None):
        """``(A, B)`` of many nodes at once: ``z^(layer) = A[i] t + B[i]`` on node ``index[i]``
        of the level (default: every node of the leaves' level), engine coordinates.

        Returns
        -------
        A : ndarray, shape (n, K_layer, k)
        B : ndarray, shape (n, K_layer)
        """
        layer = self.depth if layer is None else layer
        idx = np.arange(len(self.levels[layer])) if index is None else np.asarray(index)
        chain = [idx]
        for d in range(layer, 1, -1):
            chain.append(self.levels[d].parent[chain[-1]])
        chain = chain[::-1]                      # chain[j]: the ancestors at level j + 1
        k = self.domain.dim
        A = np.broadcast_to(np.eye(k), (len(idx), k, k))
        B = np.zeros((len(idx), k))
        for j, step in enumerate(self.network.layers[:layer]):
            A, B = step.compose(A, B, self.levels[j + 1].code[chain[j]])
        return A, B

    def lipschitz(self, layer: int | None = None, ord=2) -> np.ndarray:
        """Per node, the Lipschitz constant of ``z^(layer)`` on it (SPEC §5.2): the operator
        norm of its linear part (``ord=2``: spectral norm, w.r.t. the Euclidean norm of engine
        coordinates). The network's constant over the domain is the leaves' maximum."""
        A, _ = self.affine_maps(layer)
        return np.linalg.norm(A, ord=ord, axis=(1, 2)) if len(A) else np.empty(0)

    def templates(self, index=None):
        """The leaves' templates (SPEC §5.1): the rows of each leaf's output map ``f = A x + B``
        in **network-input** coordinates (for a slice, the full input space, not the slice's),
        i.e. the matched filters ``[A]_c`` and the saliency ``grad_x f_c`` on the leaf.

        Parameters
        ----------
        index : array_like of int, optional
            Leaves (indices in ``levels[-1]``); default every leaf.

        Returns
        -------
        A : ndarray, shape (n, K_L, d)
        B : ndarray, shape (n, K_L)
            ``f(x) = A[i] x + B[i]`` on leaf ``index[i]``; ``A @ A.transpose(0, 2, 1)`` is the
            Gram matrix of the templates.
        """
        idx = np.arange(self.n_regions) if index is None else np.atleast_1d(np.asarray(index))
        chain = [idx]
        for d in range(self.depth, 1, -1):
            chain.append(self.levels[d].parent[chain[-1]])
        chain = chain[::-1]
        d_in = self.source_network.input_dim
        A = np.broadcast_to(np.eye(d_in), (len(idx), d_in, d_in))
        B = np.zeros((len(idx), d_in))
        for j, layer in enumerate(self.source_network.layers):
            A, B = layer.compose(A, B, self.levels[j + 1].code[chain[j]])
        return A, B

    def volumes(self, layer: int | None = None, *, method: str = "auto",
                n_samples: int = 100_000, seed=None):
        """Volumes of a level's nodes (default: the leaves), engine coordinates: exact for
        d <= 3, Monte Carlo with standard errors above (SPEC §5.4); see
        :func:`powercells.geometry.volume.region_volumes`.

        Returns
        -------
        Volumes
            ``volume``, ``stderr``, ``exact``.
        """
        from ..geometry.volume import region_volumes

        return region_volumes(self, layer, method=method, n_samples=n_samples, seed=seed)

    def adjacency(self, layer: int | None = None, *, method: str = "auto", lp=None):
        """Facet adjacency between the nodes of a level (default: the leaves), any dimension;
        see :func:`powercells.geometry.adjacency.facet_adjacency`."""
        from ..geometry.adjacency import facet_adjacency

        return facet_adjacency(self, layer, method=method, lp=lp)

    def power_sites(self, layer: int | None = None):
        """Every node's power-diagram centroid and radius at ``layer`` (default: the leaves),
        SPEC §3.3: ``mu = A^T 1``, ``rad = ||mu||^2 + 2 <1, B>`` from the node's affine map.

        Returns
        -------
        mu : ndarray, shape (n, k)
        rad : ndarray, shape (n,)
        """
        from ..geometry.power import node_sites

        return node_sites(*self.affine_maps(layer))

    def halfspaces(self, layer: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """An H-representation ``H t <= h`` of the node, rebuilt from its code path.

        Rows: the domain's, then for every layer and unit, "the chosen piece is >= every other
        piece" pulled back through the node's ancestors (SPEC §3.4); zero rows are dropped.
        """
        from .regions import region_halfspaces

        return region_halfspaces(self.network, self.domain, self.code_path(layer, index),
                                 zero=self.tolerances.zero)

    # ----------------------------------------------------------------- exports
    def to_networkx(self):
        """The tree as a ``networkx.DiGraph``: nodes are global ids with attributes ``layer``,
        ``code`` (tuple, this layer's code), ``interior_point`` and ``inradius``; edges go from
        parent to child."""
        import networkx as nx

        G = nx.DiGraph()
        for depth, level in enumerate(self.levels):
            base = int(self._offsets[depth])
            for i in range(len(level)):
                G.add_node(base + i, depth=depth, code=tuple(int(c) for c in level.code[i]),
                           interior_point=level.interior_point[i].copy(),
                           inradius=float(level.inradius[i]))
                if depth:
                    G.add_edge(int(self._offsets[depth - 1] + level.parent[i]), base + i)
        return G

    def polygons(self, layer: int | None = None):
        """The convex polygons of a level (default: the leaves) of a 2-D tree (a 2-D domain or a
        plane slice), in engine coordinates. The planar engine keeps them as it splits; for a
        tree another engine built they are rebuilt from the codes on first use
        (:mod:`powercells.enumerate.cell_geometry`).

        Returns
        -------
        Polygons
            ``xy`` (all vertices, counter-clockwise per polygon) and ``start`` (CSR offsets);
            ``polygons.vertices(i)`` is node ``i``'s polygon.

        Raises
        ------
        GeometryError
            If the domain is not 2-D.
        """
        from .cell_geometry import rebuilt_polygons

        return self._cells(layer, "polygons", 2, rebuilt_polygons)

    def intervals(self, layer: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)``: the intervals of a level (default: the leaves) of a 1-D tree, in engine
        coordinates (``t`` along a segment between two points); rebuilt from the codes when
        the interval engine did not build the tree.

        Raises
        ------
        GeometryError
            If the domain is not 1-D.
        """
        intervals = self.intervals_array(layer)
        return intervals[:, 0].copy(), intervals[:, 1].copy()

    def intervals_array(self, layer: int | None = None) -> np.ndarray:
        """:meth:`intervals` as one ``(n, 2)`` array."""
        from .cell_geometry import rebuilt_intervals

        return self._cells(layer, "intervals", 1, rebuilt_intervals)

    def _cells(self, layer, what, dim, rebuild):
        """A level's polygons or intervals: kept by the engine, or rebuilt and kept."""
        layer = self.check_layer(layer)
        if self.domain.dim != dim:
            raise GeometryError(f"{what} exist for {dim}-D domains; this tree's domain has "
                                f"dimension {self.domain.dim}")
        level = self.levels[layer]
        if getattr(level, what) is None:
            setattr(level, what, rebuild(self, layer))
        return getattr(level, what)

    def check_layer(self, layer) -> int:
        """``layer`` as a level index (None: the leaves' level).

        Raises
        ------
        GeometryError
            If it is not an integer in ``0..depth``.
        """
        if layer is None:
            return self.depth
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or \
                not 0 <= layer <= self.depth:
            raise GeometryError(f"layer must be an integer in 0..{self.depth}, got {layer!r}")
        return int(layer)

    def areas(self, layer: int | None = None) -> np.ndarray:
        """Areas of a level's polygons (default: the leaves); see :meth:`polygons`."""
        return self.polygons(layer).area_perimeter()[0]

    def to_shapely(self, layer: int | None = None):
        """The polygons of a level (default: the leaves) as a numpy array of shapely Polygons,
        in tree order (2-D trees of the planar engine; needs shapely >= 2)."""
        try:
            import shapely
        except ImportError as exc:  # pragma: no cover - exercised without shapely only
            from ..errors import PowercellsError

            raise PowercellsError("to_shapely needs shapely: pip install 'powercells[shapely]'"
                                  ) from exc
        polys = self.polygons(layer)
        rings = shapely.linearrings(polys.xy, indices=polys.owner)
        return shapely.polygons(rings)

    def mesh(self, layer: int | None = None, *, tol: float | None = None):
        """The planar mesh of a level (default: the leaves): merged vertices, edges split at
        T-junctions with the unit each lies on, face adjacency (2-D trees of the planar engine).

        Parameters
        ----------
        tol : float, optional
            Vertex-merging distance; default half the region tolerance. SPEC §8 suggests
            ``1e-7 x`` the diameter, but regions can be far thinner than that: a region's
            edges are longer than twice its inradius, so merging below the region tolerance
            never collapses a region, and float64 vertices of neighbouring leaves agree to
            ~1e-15.

        Returns
        -------
        PlanarMesh
            ``mesh.euler_characteristic`` is ``V - E + F``, 1 for every level (SPEC §6.2).
        """
        from ..geometry.mesh import planar_mesh

        layer = self.depth if layer is None else layer
        tol = 0.5 * self.tolerances.region if tol is None else tol
        return planar_mesh(self.polygons(layer), self.path_codes(layer),
                           self.network.widths[:layer], tol=tol)

    def decision_boundary(self):
        """The network output's decision boundary as segments per leaf (2-D trees of the planar
        engine, or rebuilt from the codes): ``{f = 0}`` for one output, the arg-max boundary for several (SPEC §5.3).

        Returns
        -------
        DecisionBoundary
        """
        from ..geometry.boundary import decision_boundary

        A, B = self.affine_maps()
        terms = None
        last = self.network.layers[-1]
        if self.depth >= 1 and (last.is_switch or last.max_pieces == 1):
            # the sizes of the terms behind each output: |W| times the hidden layer's rows (a
            # head whose gradient cancels to rounding is then constant, SPEC §3.4)
            W, b = ((last.switch_W, last.switch_b) if last.is_switch
                    else (last.A[:, 0, :], last.B[:, 0]))
            Ap, Bp = self.affine_maps(self.depth - 1, self.levels[-1].parent)
            absW = np.abs(W)
            terms = (np.linalg.norm(Ap, axis=2) @ absW.T, np.abs(Bp) @ absW.T + np.abs(b))
        return decision_boundary(self.polygons(), A, B, eps=self.tolerances.empty,
                                 zero=self.tolerances.zero, terms=terms)

    def input_points(self, layer: int | None = None) -> np.ndarray:
        """Interior points of a level mapped to network-input coordinates (default: leaves)."""
        level = self.levels[self.depth if layer is None else layer]
        return self.domain.to_input(level.interior_point)

    # ----------------------------------------------------------------- point location
    def locate(self, X, *, tol: float | None = None) -> np.ndarray:
        """Index in ``levels[-1]`` of the leaf containing each point, -1 outside the domain.

        A point on a boundary between leaves gets the leaf its forward-pass code names (ties to
        the smallest piece, SPEC §1.3) when that is a region; otherwise the first leaf, in tree
        order, whose closure contains it.

        Parameters
        ----------
        X : array_like, shape (n, d) or (d,)
            Points in network-input coordinates (on the slice, for a Slice domain).
        tol : float, optional
            Distance within which a point counts as inside a closure; default the region tolerance.

        Raises
        ------
        PointError
            If a point has the wrong dimension or is not finite.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        d_in = self.domain.input_dim
        if X.ndim != 2 or X.shape[1] != d_in:
            raise PointError(f"points must have shape (n, {d_in}), got {X.shape}")
        if not np.all(np.isfinite(X)):
            raise PointError("points contain NaN or infinite values")
        tol = self.tolerances.region if tol is None else tol
        T = self.domain.from_input(X)
        inside = self.domain.contains(T, tol=tol)
        if X.shape[1] != T.shape[1]:  # a slice: the point must lie on it
            inside &= np.linalg.norm(self.domain.to_input(T) - X, axis=1) <= tol * 10
        out = np.full(len(X), -1, dtype=np.int64)
        if self._leaf_index is None:
            codes = self.leaf_codes()
            self._leaf_index = {row.tobytes(): i for i, row in enumerate(codes)}
        if not np.any(inside):
            return out
        codes = np.hstack(self.network.codes(T[inside])).astype(np.int16)
        for row, point, i in zip(codes, T[inside], np.flatnonzero(inside)):
            hit = self._leaf_index.get(row.tobytes())
            out[i] = hit if hit is not None else self._descend(point, tol)
        return out

    def _descend(self, t: np.ndarray, tol: float) -> int:
        """The first leaf whose closure contains t (depth-first in tree order)."""

        def visit(depth, index, A, B):
            if depth == self.depth:
                return index
            layer = self.network.layers[depth]
            z = A @ t + B
            vals = np.einsum("krd,d->kr", layer.A, z) + layer.B
            for child in self.children(depth, index):
                code = self.levels[depth + 1].code[child].astype(np.intp)
                chosen = vals[np.arange(layer.out_dim), code]
                # slack in distance units: value gaps over the pulled-back gradient sizes
                scale = np.linalg.norm(layer.A[np.arange(layer.out_dim), code] @ A, axis=1) + 1.0
                if np.all(chosen >= vals.max(axis=1) - tol * scale):
                    Aq, Bq = layer.selected(code)
                    found = visit(depth + 1, child, Aq @ A, Aq @ B + Bq)
                    if found >= 0:
                        return found
            return -1

        k = self.domain.dim
        return visit(0, 0, np.eye(k), np.zeros(k))
