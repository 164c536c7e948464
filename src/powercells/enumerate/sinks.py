"""Where finished subtrees go: counted, or kept as a columnar tree (DESIGN §3).

The driver hands each finished depth-1 subtree to a sink as a list of levels (parents indexed
within the subtree). A sink that writes Parquet or forwards to another process fits the same
three calls.
"""

from __future__ import annotations

import numpy as np

from .tree import Level

__all__ = ["Sink", "CountSink", "TreeSink"]


class Sink:
    """Receives the root level, then finished subtrees in tree order."""

    def start(self, root: Level, depth: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def add_subtree(self, levels: list[Level]) -> None:  # pragma: no cover - interface
        """``levels[j]`` holds the subtree's nodes at depth ``j + 1``; the single node of
        ``levels[0]`` is a child of the root."""
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
