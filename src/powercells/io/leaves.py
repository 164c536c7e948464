"""Leaves streamed to disk: one ``.npz`` file per group of subtrees, and a summary.

``write_leaves(network, domain, directory)`` enumerates with :func:`stream_leaves` and writes
``directory/leaves-00000.npz, ...`` as groups finish (each file written under a temporary name
and renamed, so a reader never sees half a file), then ``directory/summary.json``.
``read_leaves(directory)`` iterates the chunks back in tree order.

Each chunk holds ``first`` (index of its first leaf), ``codes`` (full code paths, int16),
``interior_point``, ``inradius`` and, for the planar engine, ``polygon_xy`` and
``polygon_start`` (CSR: leaf ``i`` has vertices ``polygon_xy[polygon_start[i]:
polygon_start[i+1]]``), or ``intervals`` for the interval engine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..enumerate.driver import stream_leaves
from ..enumerate.sinks import LeafChunk
from ..errors import PowercellsError
from ..geometry.polygons import Polygons

__all__ = ["read_leaves", "write_leaves"]


def write_leaves(network, domain, directory, **options):
    """Enumerate and write the leaves to ``directory`` (created; must be empty if it exists).

    Parameters
    ----------
    options
        As for :func:`powercells.subdivide` (engine, tol, budgets, ...).

    Returns
    -------
    RegionCount
    """
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise PowercellsError(f"{directory}: the folder exists and is not empty")
    directory.mkdir(parents=True, exist_ok=True)
    written = []

    def emit(chunk: LeafChunk):
        arrays = {"first": np.int64(chunk.first), "codes": chunk.codes,
                  "interior_point": chunk.interior_point, "inradius": chunk.inradius}
        if chunk.polygons is not None:
            arrays["polygon_xy"] = chunk.polygons.xy
            arrays["polygon_start"] = chunk.polygons.start
        if chunk.intervals is not None:
            arrays["intervals"] = chunk.intervals
        name = directory / f"leaves-{len(written):05d}.npz"
        tmp = directory / f".{name.name}.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, name)
        written.append(name.name)

    result = stream_leaves(network, domain, emit, **options)
    summary = {**result.as_dict(), "chunks": written, "stats": result.stats}
    (directory / "summary.json").write_text(json.dumps(summary, indent=1))
    return result


def read_leaves(directory):
    """Iterate the chunks written by :func:`write_leaves`, in tree order.

    Yields
    ------
    LeafChunk
    """
    directory = Path(directory)
    summary = directory / "summary.json"
    if not summary.exists():
        raise PowercellsError(f"{directory}: no summary.json; not a finished write_leaves output")
    for name in json.loads(summary.read_text())["chunks"]:
        with np.load(directory / name) as data:
            polygons = None
            if "polygon_xy" in data.files:
                polygons = Polygons(data["polygon_xy"], data["polygon_start"])
            yield LeafChunk(int(data["first"]), data["codes"], data["interior_point"],
                            data["inradius"], polygons,
                            data["intervals"] if "intervals" in data.files else None)
