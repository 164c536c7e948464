"""The arrays the vertex engine's compiled kernel (:mod:`.kernel`) takes and returns, as
NamedTuples (no numba needed to build or read them)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Candidates", "Pieces", "PolytopeArrays"]


class PolytopeArrays(NamedTuple):
    """A batch of polytopes as CSR arrays, in the layout of
    :class:`~powercells.enumerate.vertex.polytopes.Polytopes` (``Polytopes(*arrays)``):
    vertices ``X[vstart[c]:vstart[c+1]]`` with their incidence bit sets ``inc``, edges
    ``E[estart[c]:estart[c+1]]`` (local vertex indices), constraints ``N x <= h`` in
    ``cstart`` rows with their bit ``slot``."""

    X: np.ndarray
    inc: np.ndarray
    vstart: np.ndarray
    E: np.ndarray
    estart: np.ndarray
    N: np.ndarray
    h: np.ndarray
    slot: np.ndarray
    cstart: np.ndarray


class Candidates(NamedTuple):
    """Each cell's candidate hyperplanes ``G[p] . x + g[p] = 0`` (unit normals), ``p`` in
    ``first[c]:first[c+1]`` in the order they are applied; cell ``c``'s ``t``-th takes
    constraint slot ``bases[c] + t`` (``bases[c] < 0``: above the cell's own slots)."""

    first: np.ndarray
    G: np.ndarray
    g: np.ndarray
    bases: np.ndarray


class Pieces(NamedTuple):
    """What :func:`split_cells` returns: the final pieces' cells, their sides (``1``: ``+``)
    for every candidate of their cell (flat, the cell's candidates in order), vertex means, the
    radius of the largest ball around the vertex mean inside the piece (a lower bound on the
    inradius), the count of fragile vertices, (asked for) the pieces' polytopes, and per cell
    of the batch its doubt flags (bit 1: a candidate that cuts no piece came within ``eps`` of
    a vertex of the cell; bit 2: of a piece; see :class:`~powercells.enumerate.base.SplitDoubts`)."""

    cell: np.ndarray
    sides: np.ndarray
    center: np.ndarray
    radius: np.ndarray
    fragile: int
    geometry: PolytopeArrays
    flags: np.ndarray
