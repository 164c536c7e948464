"""Leaves streamed to disk: one ``.npz`` file per group of subtrees, and a summary.

``write_leaves(network, domain, directory)`` enumerates with :func:`stream_leaves` and writes
``leaves-00000.npz, ...`` as groups finish, then ``summary.json``, into a temporary sibling of
``directory`` that is renamed into place at the end (:class:`~powercells.io.output.OutputFolder`:
atomic, locked, never replacing a folder that is not a powercells output).
``read_leaves(directory)`` iterates the chunks back in tree order and checks they add up to the
summary's count.

Each chunk holds ``first`` (index of its first leaf), ``codes`` (full code paths, int16),
``interior_point``, ``inradius``, ``thin`` (bool: a thin region, settled exactly) and, for the
planar engine, ``polygon_xy`` and
``polygon_start`` (CSR: leaf ``i`` has vertices ``polygon_xy[polygon_start[i]:
polygon_start[i+1]]``), or ``intervals`` for the interval engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..enumerate.driver import stream_leaves
from ..enumerate.sinks import LeafChunk
from ..errors import OutputError, PowercellsError
from ..geometry.polygons import Polygons
from .arrays import read_npz_arrays
from .output import OutputFolder

__all__ = ["read_leaves", "write_leaves"]


def write_leaves(network, domain, directory, *, overwrite: bool = False, **options):
    """Enumerate and write the leaves to ``directory``.

    The folder is written by :class:`~powercells.io.output.OutputFolder`: chunks go into a
    temporary sibling as groups finish and the folder is renamed into place at the end, under a
    lock, so an error or an interrupt leaves nothing behind and two writers of one folder fail
    instead of mixing their chunks.

    Parameters
    ----------
    directory : str or path
        Created; it must not exist or be empty, unless ``overwrite`` and it holds an earlier
        ``write_leaves`` output.
    overwrite : bool
        Replace an earlier ``write_leaves`` output (never a folder holding anything else).
    options
        As for :func:`powercells.subdivide` (engine, tol, budgets, ...).

    Returns
    -------
    RegionCount

    Raises
    ------
    OutputError
        If the folder may not be written (see :class:`OutputFolder`).
    """
    with OutputFolder(directory, kind="leaves", overwrite=overwrite) as folder:
        tmp = Path(folder.tmp)
        written = []

        def emit(chunk: LeafChunk):
            arrays = {"first": np.int64(chunk.first), "codes": chunk.codes,
                      "interior_point": chunk.interior_point, "inradius": chunk.inradius,
                      "thin": np.asarray(chunk.thin if chunk.thin is not None
                                         else np.zeros(len(chunk), dtype=bool), dtype=bool)}
            if chunk.polygons is not None:
                arrays["polygon_xy"] = chunk.polygons.xy
                arrays["polygon_start"] = chunk.polygons.start
            if chunk.intervals is not None:
                arrays["intervals"] = chunk.intervals
            name = f"leaves-{len(written):05d}.npz"
            try:
                np.savez(tmp / name, **arrays)
            except OSError as exc:
                raise OutputError(f"{folder.given}: cannot write {name} "
                                  f"({exc.strerror or exc})") from None
            written.append(name)

        result = stream_leaves(network, domain, emit, **options)
        summary = {**result.as_dict(), "chunks": written, "stats": result.stats}
        try:
            (tmp / "summary.json").write_text(json.dumps(summary, indent=1))
        except OSError as exc:
            raise OutputError(f"{folder.given}: cannot write summary.json "
                              f"({exc.strerror or exc})") from None
        folder.commit()
    return result


def read_leaves(directory):
    """Iterate the chunks written by :func:`write_leaves`, in tree order.

    Yields
    ------
    LeafChunk

    Raises
    ------
    PowercellsError
        If the folder is not a finished ``write_leaves`` output, a chunk is missing or
        unreadable, or the chunks do not add up to the summary's count.
    """
    directory = Path(directory)
    summary_path = directory / "summary.json"
    if not summary_path.exists():
        raise PowercellsError(f"{directory}: no summary.json; not a finished write_leaves output")
    try:
        summary = json.loads(summary_path.read_text())
        chunks, total = list(summary["chunks"]), int(summary["regions"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PowercellsError(f"{summary_path}: not a write_leaves summary ({exc})") from None
    seen = 0
    for name in chunks:
        data = read_npz_arrays(directory / str(name), error=PowercellsError, what="leaf chunk")
        try:
            polygons = None
            if "polygon_xy" in data:
                polygons = Polygons(data["polygon_xy"], data["polygon_start"])
            thin = data.get("thin")         # absent in chunks written before thin regions
            chunk = LeafChunk(int(data["first"]), data["codes"], data["interior_point"],
                              data["inradius"], polygons, data.get("intervals"),
                              np.zeros(len(data["inradius"]), dtype=bool) if thin is None
                              else np.asarray(thin, dtype=bool))
        except (KeyError, TypeError, ValueError) as exc:
            raise PowercellsError(f"{directory / str(name)}: not a leaf chunk ({exc})") from None
        if chunk.first != seen:
            raise PowercellsError(f"{directory / str(name)}: starts at leaf {chunk.first}, "
                                  f"expected {seen} (chunks missing or out of order)")
        seen += len(chunk)
        yield chunk
    if seen != total:
        raise PowercellsError(f"{directory}: the chunks hold {seen} leaves, summary.json says "
                              f"{total}")
