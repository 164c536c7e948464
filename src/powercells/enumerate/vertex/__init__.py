"""The ``vertex`` engine: exact subdivision in low input dimension by edge subdivision, no LP.

* :mod:`.engine`: the engine (pull-back, rounds of cuts, balls) and the threads that run the
  compiled kernel;
* :mod:`.polytopes`: cells as vertices, edges and facets, cut by hyperplanes (numpy);
* :mod:`.kernel`: the same cuts compiled with numba (optional).
"""

from .engine import VertexCells, VertexEngine

__all__ = ["VertexCells", "VertexEngine"]
