"""Where finished parts go: counted, kept as a columnar tree, or streamed (DESIGN §3).

The coordinator (:mod:`.schedule`) hands every finished task's :class:`~.tasks.Part` to a sink
in key order, which is tree order: a depth's nodes arrive parents first, codes in order. A sink
that writes files or forwards to another process fits the same two calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tree import Level, SliverTable

__all__ = ["CertifyingSink", "CountSink", "LeafChunk", "LeafSink", "Sink", "TreeSink"]


class Sink:
    """Receives the root level, then finished parts in key (tree) order; keeps the counts per
    depth and the slivers set aside. ``keeps_rows``: whether it reads the parts' nodes (else
    the coordinator drops them as soon as they are filed)."""

    keeps_rows = True

    def start(self, root: Level, depth: int) -> None:
        self.root = root
        self.counts = [0] * depth
        self.thin = [0] * depth
        self.slivers = SliverTable()

    def add_part(self, part) -> None:
        for d in range(len(self.counts)):
            self.counts[d] += part.counts[d]
            self.thin[d] += part.thin[d] if part.thin else 0
        for layer, depth, row, code, point, radius in part.sliver_rows:
            self.slivers.layer.append(layer)
            self.slivers.parent.append(self._sliver_parent(part, depth, row))
            self.slivers.code.append(code)
            self.slivers.interior_point.append(point)
            self.slivers.inradius.append(radius)
        self._take(part)

    def _take(self, part) -> None:
        """What the sink keeps of a part beside its counts."""

    def _sliver_parent(self, part, depth: int, row: int):
        """``(depth, index)`` of the node a sliver was cut from (index -1: not kept)."""
        return (depth, -1)


class CountSink(Sink):
    """Keeps only the number of nodes per depth: memory independent of the region count."""

    keeps_rows = False


class TreeSink(Sink):
    """Keeps every level, giving each part's rows their place in the tree: a part's rows follow
    those of the parts before it (key order), and its first depth's parents are rows of the part
    it came from (its task's origin)."""

    def start(self, root, depth):
        super().start(root, depth)
        self.parts: list[list] = [[] for _ in range(depth)]
        self.sizes = [0] * (depth + 1)
        self.sizes[0] = 1
        self.offsets = {(): [0] * (depth + 1)}

    def _global(self, part, depth: int, rows):
        """Global indices at ``depth`` of rows referred to by ``part``."""
        if depth == part.depth:
            key, first = part.origin
            return self.offsets[key][depth] + first + rows
        return self.offsets[part.key][depth] + rows

    def add_part(self, part):
        # the part's rows follow those of every part before it (depth 0 is the root's alone)
        self.offsets[part.key] = list(self.sizes)
        super().add_part(part)

    def _sliver_parent(self, part, depth, row):
        return (depth, int(self._global(part, depth, row)))

    def _take(self, part):
        for dd, arrays in enumerate(part.levels or []):
            if arrays is None:
                continue
            code, parent, point, radius, thin, cells = arrays
            columns = {}
            if cells is not None:
                columns["intervals" if isinstance(cells, np.ndarray) else "polygons"] = cells
            self.parts[dd].append(Level(code, self._global(part, dd, parent), point, radius,
                                        thin=thin, **columns))
            self.sizes[dd + 1] += len(parent)

    def levels(self, widths: list[int], dim: int) -> list[Level]:
        out = [self.root]
        for j, parts in enumerate(self.parts):
            out.append(Level.concat(parts) if parts else Level.empty(widths[j], dim))
        return out


@dataclass
class LeafChunk:
    """The leaves of one finished group of subtrees (consecutive in tree order).

    Attributes
    ----------
    first : int
        Index (in the tree's last level) of the chunk's first leaf.
    codes : ndarray of int16, shape (n, sum of widths)
        Full code paths.
    interior_point : ndarray, shape (n, k)
    inradius : ndarray, shape (n,)
    polygons : Polygons or None
        The leaves' polygons (planar engine).
    intervals : ndarray or None
        The leaves' intervals (interval engine).
    thin : ndarray of bool or None
        Which leaves are thin regions (inradius at or below the region tolerance, settled
        exactly).
    """

    first: int
    codes: np.ndarray
    interior_point: np.ndarray
    inradius: np.ndarray
    polygons: object = None
    intervals: object = None
    thin: object = None

    def __len__(self) -> int:
        return len(self.inradius)


class LeafSink(Sink):
    """Hands every part's leaves to ``emit`` and keeps only counts: memory stays bounded by
    one part, whatever the number of regions."""

    def __init__(self, emit):
        self.emit = emit
        self.emitted = 0

    def _take(self, part):
        if part.leaves is None or not len(part.leaves[1]):
            return
        paths, point, radius, thin, cells = part.leaves
        polygons = intervals = None
        if isinstance(cells, np.ndarray):
            intervals = cells
        elif cells is not None:
            polygons = cells
        self.emit(LeafChunk(self.emitted, paths, point, radius, polygons, intervals, thin))
        self.emitted += len(radius)


class CertifyingSink(LeafSink):
    """Counts, and certifies every leaf by its interior point: the forward pass of the network
    as given, with a rigorous error bound and exact fallback
    (:func:`powercells.network.certified.certified_codes`), must put the point strictly inside
    the open cell of the leaf's code path. The leaves' code paths are distinct (a node's
    children have distinct codes), so :attr:`certified` is a proven lower bound of the exact
    count. Memory stays bounded by one part."""

    #: the driver may throw the sink away and run again (nothing was handed out)
    restartable = True

    def __init__(self, network, domain):
        self.network, self.domain = network, domain
        self.certified = 0
        super().__init__(self._certify)

    def _certify(self, chunk: LeafChunk) -> None:
        from ..network.certified import certified_codes

        codes, status = certified_codes(self.network, self.domain.to_input(chunk.interior_point))
        same = np.all(np.hstack(codes) == chunk.codes, axis=1)
        self.certified += int(np.count_nonzero((status > 0) & same))

    def fresh(self) -> CertifyingSink:
        return CertifyingSink(self.network, self.domain)
