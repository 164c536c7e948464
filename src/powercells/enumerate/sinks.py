"""Where finished subtrees go: counted, or kept as a columnar tree (DESIGN §3).

The driver hands each finished depth-1 subtree to a sink as a list of levels (parents indexed
within the subtree). A sink that writes Parquet or forwards to another process fits the same
three calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tree import Level

__all__ = ["CountSink", "LeafChunk", "LeafSink", "Sink", "TreeSink"]


class Sink:
    """Receives the root level, then finished subtrees in tree order."""

    def start(self, root: Level, depth: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def add_subtree(self, levels: list[Level]) -> None:  # pragma: no cover - interface
        """``levels[j]`` holds a group of consecutive subtrees' nodes at depth ``j + 1`` (parents
        indexed within the group); the nodes of ``levels[0]`` are children of the root."""
        raise NotImplementedError


class CountSink(Sink):
    """Keeps only the number of nodes per depth: memory independent of the region count."""

    def start(self, root, depth):
        self.counts = [0] * depth

    def add_subtree(self, levels):
        for j, level in enumerate(levels):
            self.counts[j] += len(level)


class TreeSink(Sink):
    """Keeps every level in memory, re-indexing parents as subtrees arrive."""

    def start(self, root, depth):
        self.root = root
        self.parts: list[list[Level]] = [[] for _ in range(depth)]
        self.sizes = [0] * depth

    def add_subtree(self, levels):
        for j, level in enumerate(levels):
            offset = 0 if j == 0 else self.sizes[j - 1]
            if j == 0:
                level.parent = np.zeros(len(level), dtype=np.int64)
            else:
                level.parent = level.parent + offset
            self.parts[j].append(level)
        for j, level in enumerate(levels):
            self.sizes[j] += len(level)

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
    """

    first: int
    codes: np.ndarray
    interior_point: np.ndarray
    inradius: np.ndarray
    polygons: object = None
    intervals: object = None

    def __len__(self) -> int:
        return len(self.inradius)


class LeafSink(Sink):
    """Hands every finished group's leaves to ``emit`` and keeps only counts: memory stays
    bounded by one group, whatever the number of regions."""

    def __init__(self, emit):
        self.emit = emit

    def start(self, root, depth):
        self.counts = [0] * depth

    def add_subtree(self, levels):
        for j, level in enumerate(levels):
            self.counts[j] += len(level)
        leaves = levels[-1]
        if not len(leaves):
            return
        # code paths within the group: walk the parents up to depth 1
        idx = np.arange(len(leaves))
        cols = []
        for level in levels[::-1]:
            cols.append(level.code[idx])
            idx = level.parent[idx]
        codes = np.hstack(cols[::-1])
        self.emit(LeafChunk(self.counts[-1] - len(leaves), codes, leaves.interior_point,
                            leaves.inradius, leaves.polygons, leaves.intervals))
