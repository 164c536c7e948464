"""The ``exact`` engine: every decision in exact rational arithmetic (certified mode).

Each node is an :class:`~.exact_cells.ExactCell` (integer rows, exact affine map, rational
witness) and is split unit by unit by :func:`~.exact_cells.split_exact`: every child comes with
an exact interior witness and every sign combination left out with an exact Farkas
certificate of emptiness, so nothing depends on a tolerance and nothing is undecided. The
count is the exact count of the network as given (its float weights and the domain's bounds
taken as the binary rationals they are), degenerate networks included.

It is the reference, not the fast path: rational arithmetic costs milliseconds per decision.
``certify=True`` (CLI ``--certify``) runs it, and with a certificate sink it records every
witness and every emptiness certificate (:mod:`powercells.certificate`).
"""

from __future__ import annotations

import numpy as np

from ..network.layers import Layer
from .base import Split, SplitSlivers
from .budget import Budget
from .engines import EngineSetup
from .exact_cells import ExactCell, Unplaced, exact_root, split_exact

__all__ = ["ExactEngine"]


class ExactEngine:
    """Splits batches (lists) of exact cells (module docstring)."""

    name = "exact"

    def __init__(self, setup: EngineSetup):
        self.stats = {"cells_split": 0, "sides_ruled_out": 0}
        self.budget = Budget()
        self.layers: list = []
        self.depth_of: dict = {}
        #: Called with ``(cell, depth, children, log)`` after every split (certificates).
        self.record = None

    def bind(self, layers) -> None:
        """The layers ``split`` is given, by identity (see :meth:`.thin.ThinSplitter.bind`)."""
        self.layers = list(layers)
        self.depth_of = {id(layer): d for d, layer in enumerate(self.layers)}

    def root(self, domain) -> list[ExactCell]:
        H, h = domain.halfspaces()
        center = np.asarray(domain.chebyshev[0], dtype=np.float64)
        try:
            return [exact_root(H, h, center)]
        except Unplaced:
            from ..errors import DomainError

            raise DomainError("the domain's Chebyshev centre is not strictly inside it in "
                              "exact arithmetic: the domain has no interior") from None

    @staticmethod
    def batch_size(layer: Layer) -> int:
        # a cell takes milliseconds to seconds: small batches let tasks cut finely and fan out
        return 4

    @staticmethod
    def take(cells: list, lo: int, hi: int) -> list:
        return cells[lo:hi]

    @staticmethod
    def points(cells: list) -> np.ndarray:
        return np.array([cell.point() for cell in cells])

    @staticmethod
    def cells(batch):
        return None

    def split(self, cells: list, layer: Layer) -> Split:
        depth = self.depth_of.get(id(layer), -1)
        children, parent = [], []
        for i, cell in enumerate(cells):
            log = [] if self.record is not None else None
            got = split_exact(cell, layer, depth=depth, log=log)
            self.stats["cells_split"] += 1
            if log is not None:
                self.stats["sides_ruled_out"] += len(log)
                self.record(cell, depth, got, log)
            children.extend(got)
            parent.extend([i] * len(got))
            self.budget.poll()
        k = cells[0].dim if cells else 0
        K = layer.out_dim
        return Split(children=children, parent=np.array(parent, dtype=np.int64),
                     code=np.array([c.code for c in children], dtype=np.int16).reshape(-1, K),
                     center=np.array([c.point() for c in children]).reshape(-1, k),
                     radius=np.array([c.radius() for c in children]),
                     slivers=SplitSlivers(np.empty(0, dtype=np.int64),
                                          np.empty((0, K), dtype=np.int16), np.empty((0, k)),
                                          np.empty(0)))
