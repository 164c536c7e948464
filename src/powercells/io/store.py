"""A run that survives faults: every finished task is one Parquet file in a store (DESIGN §7).

``count_regions(..., store=DIR)`` and ``powercells count --out DIR`` keep their run in ``DIR``::

    DIR/manifest.json          what the run is: network digest, domain, options, version; the
                               totals once it is complete
    DIR/parts/part-H.parquet   one finished task: its leaves, one row each, in tree order (code
                               path, interior point, inradius), and in the file's metadata its
                               key, counts per layer, slivers and subtasks (H: a digest of the key)
    DIR/tasks/task-H.pickle    a task handed on but not finished yet (its nodes)
    DIR/.lock                  held while a run writes the store

Every file is written under a temporary name and renamed, and a finished task's subtasks are
filed before its part, which is filed before the task's own file is removed: at any instant
(``SIGKILL``, power cut) a part is whole or absent, and every task is either finished (its part
exists) or waiting (its file exists and its parent's part does). Rerunning on the same folder
reads the parts back, runs the waiting tasks and nothing else, so no region is lost or counted
twice. A store made for another network, domain or options is refused with a line naming what
differs; a complete store gives its totals without enumerating.

:func:`read_store` gives the leaves of every finished part as one pyarrow dataset (or a pandas
frame), in tree order: the order and ids are functions of the code paths, the same for every
executor and worker count. Task files are pickles of the engine's batches: open only stores
you made.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from ..enumerate.driver import CountSink, _counted
from ..enumerate.spool import TaskRef, TaskSpool, key_name, write_atomic
from ..errors import OutputError, PowercellsError

__all__ = ["Store", "count_with_store", "read_store", "store_summary"]

FORMAT = "powercells-store"
FORMAT_VERSION = 1
_PARTS, _TASKS = "parts", "tasks"


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise OutputError("a store needs pyarrow: pip install 'powercells[export]'") from None
    return pa, pq


def network_digest(network) -> str:
    """SHA-256 of a network's layers as stored (kinds, pieces, switch weights; float bits)."""
    h = hashlib.sha256()
    for layer in network.layers:
        h.update(layer.kind.encode())
        for arr in (layer.A, layer.B, layer.n_pieces, layer.slope, layer.switch_W,
                    layer.switch_b):
            if arr is None:
                h.update(b"-")
                continue
            a = np.ascontiguousarray(arr)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def run_fields(net, domain, *, engine: str, tolerances, lp) -> dict:
    """What makes two runs the same run: the network on the domain (a slice folded in), the
    domain's halfspaces, the engine, the resolved tolerances and the LP backend."""
    H, h = domain.halfspaces()
    dom = hashlib.sha256(np.ascontiguousarray(H).tobytes() + np.ascontiguousarray(h).tobytes())
    return {"network": network_digest(net), "domain": f"{domain!r} [{dom.hexdigest()[:16]}]",
            "engine": engine,
            "tolerances": {k: float(v) for k, v in sorted(vars(tolerances).items())
                           if isinstance(v, (int, float))},
            "lp": lp if lp is None or isinstance(lp, str) else type(lp).__name__}


class Store:
    """One run's folder (module docstring). Use as a context manager: it holds the folder's
    lock while open.

    Parameters
    ----------
    path : str or path
        Created if missing (its parent must exist); an existing folder must be empty or hold a
        store.

    Raises
    ------
    OutputError
        If the folder cannot be made a store, or another run holds it.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.manifest = None
        self._lock = None

    # ------------------------------------------------------------------ opening
    def __enter__(self) -> Store:
        p = self.path
        if p.is_symlink() or (p.exists() and not p.is_dir()):
            raise OutputError(f"{p}: not a folder; a store is a folder")
        if p.exists():
            names = set(os.listdir(p)) - {".lock"}
            if names and "manifest.json" not in names:
                raise OutputError(f"{p}: the folder holds files and no manifest.json: not a "
                                  "powercells store; give an empty or new folder")
        else:
            if not p.parent.is_dir():
                raise OutputError(f"{p}: the parent folder {p.parent} does not exist")
            try:
                p.mkdir()
            except OSError as exc:
                raise OutputError(f"{p}: cannot create ({exc.strerror or exc})") from None
        try:
            self._lock = open(p / ".lock", "a")
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise OutputError(f"{p}: another run is writing this store") from None
        except OSError as exc:
            raise OutputError(f"{p}: cannot lock ({exc.strerror or exc})") from None
        for sub in (_PARTS, _TASKS):
            (p / sub).mkdir(exist_ok=True)
        for stale in list((p / _PARTS).glob(".*.tmp-*")) + list((p / _TASKS).glob(".*.tmp-*")):
            stale.unlink()              # a killed run's unfinished file
        if (p / "manifest.json").exists():
            self.manifest = read_manifest(p, OutputError)
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def bind(self, fields: dict, widths, dim: int) -> None:
        """Check the run against the store's manifest (or write a new manifest).

        Raises
        ------
        OutputError
            Naming the first field that differs.
        """
        if self.manifest is not None:
            for name, value in fields.items():
                have = self.manifest.get("run", {}).get(name)
                if have != value:
                    raise OutputError(
                        f"{self.path}: this store was made with a different {name} "
                        f"({_short(have)}, this run: {_short(value)}); give another folder")
            return
        from .. import __version__

        self.manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                         "version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                         "run": fields, "widths": list(map(int, widths)), "dim": int(dim),
                         "complete": False, "seconds": 0.0}
        self._write_manifest()

    def _write_manifest(self) -> None:
        text = json.dumps(self.manifest, indent=1)
        write_atomic(self.path / "manifest.json", lambda tmp: tmp.write_text(text))

    @property
    def complete(self) -> bool:
        return bool(self.manifest and self.manifest.get("complete"))

    # ------------------------------------------------------------------ reading back
    def _parts(self) -> dict:
        """``{key: (metadata, file)}`` of every finished part."""
        out = {}
        for f in (self.path / _PARTS).glob("part-*.parquet"):
            meta = _part_meta(f)
            out[tuple(meta["key"])] = (meta, f)
        return out

    def resume(self, fresh: list, sink) -> tuple[list, list | None]:
        """The tasks left to run and the nodes per depth already finished (given to ``sink``
        too); ``fresh`` (the root task) when nothing was finished."""
        parts = self._parts()
        waiting = {f.name[len("task-"):-len(".pickle")]: f
                   for f in (self.path / _TASKS).glob("task-*.pickle")}
        if not parts:
            for f in waiting.values():
                f.unlink()                  # handed on by a root task that never finished
            return fresh, None
        L = len(sink.counts)
        known = [0] * L
        listed = set()
        for key, (meta, f) in parts.items():
            self._absorb(meta, sink)
            for d in range(L):
                known[d] += meta["counts"][d]
            listed.update(tuple(k) for k in meta["subtasks"])
        tasks, keep = [], set()
        for key in sorted(listed):
            if key + (0,) in parts:
                continue
            if key_name(key) not in waiting:
                raise PowercellsError(f"{self.path}: task {key} was handed on but its file is "
                                      "missing: the store was changed by hand")
            keep.add(key_name(key))
            tasks.append(TaskRef(key, None, None))      # read back when it runs
        for stem, f in waiting.items():
            if stem not in keep:
                f.unlink()                  # finished, or its parent never was
        if (0,) not in parts:          # pragma: no cover - parts exist only after root's
            return fresh, None
        return tasks, known

    @staticmethod
    def _absorb(meta: dict, sink) -> None:
        for d, n in enumerate(meta["counts"]):
            sink.counts[d] += n
        for d, n in enumerate(meta.get("thin") or []):
            sink.thin[d] += n
        for layer, code, point, radius in meta["slivers"]:
            sink.slivers.layer.append(layer)
            sink.slivers.parent.append((layer - 1, -1))
            sink.slivers.code.append(np.asarray(code, dtype=np.int16))
            sink.slivers.interior_point.append(np.asarray(point))
            sink.slivers.inradius.append(radius)

    def totals(self, sink) -> None:
        """A complete store's counts and slivers, into ``sink``."""
        for meta, _ in self._parts().values():
            self._absorb(meta, sink)

    # ------------------------------------------------------------------ writing
    @property
    def spool(self) -> TaskSpool:
        """The waiting tasks, one durable file each (they make the run resumable)."""
        return TaskSpool(self.path / _TASKS)

    def add(self, part) -> None:
        """File a finished task: its subtasks (those a worker has not filed itself), then its
        part, then forget its own file. A subtask file counts only once the part that lists it
        is filed (:meth:`resume`), so a crash before that leaves a stray file, not a task."""
        for sub in part.subtasks:
            if not isinstance(sub, TaskRef):
                self.spool.file(sub)
        pa, pq = _pyarrow()
        table = _leaf_table(pa, part, self.manifest["widths"], self.manifest["dim"])
        meta = {"key": list(part.key), "depth": part.depth, "counts": part.counts,
                "thin": list(part.thin),
                "slivers": [(layer, np.asarray(code).tolist(), np.asarray(point).tolist(),
                             float(radius))
                            for layer, _, _, code, point, radius in part.sliver_rows],
                "subtasks": [list(s.key) for s in part.subtasks], "stats": part.stats,
                "stopped": part.stopped, "seconds": part.seconds}
        table = table.replace_schema_metadata({"powercells": json.dumps(meta)})
        write_atomic(self.path / _PARTS / f"part-{key_name(part.key)}.parquet",
                      lambda tmp: pq.write_table(table, tmp, compression="zstd"))
        self.spool.forget(part.task_key)

    def finish(self, *, complete: bool, counts, thin, slivers, seconds: float,
               stats: dict) -> None:
        """Record this session: time spent and, once complete, the totals."""
        self.manifest["seconds"] = float(self.manifest.get("seconds", 0.0)) + float(seconds)
        if complete:
            self.manifest.update(complete=True, per_layer=list(map(int, counts)),
                                 regions=int(counts[-1]), thin=list(map(int, thin)),
                                 undecided=list(map(int, slivers)),
                                 stats={k: v for k, v in stats.items()
                                        if isinstance(v, (int, float, str))})
        self._write_manifest()


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def _leaf_table(pa, part, widths, dim: int):
    """A part's leaves as an Arrow table: ``code`` (the full code path), ``interior_point``,
    ``inradius`` and ``thin``."""
    W = int(sum(widths))
    if part.leaves is None or part.leaves[0] is None:
        paths = np.empty((0, W), dtype=np.int16)
        point = np.empty((0, dim))
        radius = np.empty(0)
        thin = np.empty(0, dtype=bool)
    else:
        paths, point, radius, thin, _ = part.leaves
    code = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(paths).ravel(),
                                                      type=pa.int16()), W)
    pts = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(point).ravel(),
                                                     type=pa.float64()), dim)
    return pa.table({"code": code, "interior_point": pts,
                     "inradius": pa.array(np.asarray(radius, dtype=np.float64)),
                     "thin": pa.array(np.asarray(thin, dtype=bool))})


def count_with_store(network, domain, directory, *, leaves: bool = True, **options):
    """:func:`powercells.count_regions` keeping its run in a store (resumed if it exists);
    ``leaves=False`` writes the parts' counts only."""
    _pyarrow()
    with Store(directory) as store:
        return _counted(CountSink(), network, domain, store=store, store_leaves=leaves,
                        **options)


def _part_meta(file) -> dict:
    _, pq = _pyarrow()
    try:
        meta = pq.read_schema(file).metadata or {}
        return json.loads(meta[b"powercells"])
    except (OSError, KeyError, ValueError) as exc:
        raise PowercellsError(f"{file}: not a store part ({exc})") from None


def _parts_in_order(directory) -> list:
    directory = Path(directory)
    read_manifest(directory)
    files = {tuple(_part_meta(f)["key"]): f for f in (directory / _PARTS).glob("part-*.parquet")}
    return [str(files[k]) for k in sorted(files)]


def read_store(directory, *, as_pandas: bool = False):
    """The leaves of a store's finished parts, in tree order.

    Parameters
    ----------
    directory : str or path
    as_pandas : bool
        A pandas DataFrame instead of a pyarrow dataset.

    Returns
    -------
    pyarrow.dataset.Dataset or pandas.DataFrame
        Columns ``code`` (the full code path, int16), ``interior_point`` and ``inradius``;
        rows in tree order (a complete store holds every region once).

    Raises
    ------
    PowercellsError
        If the folder is not a store.
    """
    _pyarrow()
    import pyarrow.dataset as ds

    dataset = ds.dataset(_parts_in_order(directory), format="parquet")
    if as_pandas:
        return dataset.to_table().to_pandas()
    return dataset


def store_summary(directory) -> dict:
    """A store's manifest: the run's fields, whether it is complete, and its totals."""
    return read_manifest(Path(directory))


def read_manifest(directory: Path, error=PowercellsError) -> dict:
    """A store's manifest, checked to be one this version reads.

    Raises
    ------
    error (PowercellsError by default)
        If the folder has no readable manifest, the manifest is not a powercells store's, or
        its store format is one this version does not read (a store written by a newer
        powercells: its parts or tasks may be laid out otherwise, and reading them as this
        version's would miscount).
    """
    path = directory / "manifest.json"
    if not path.is_file():
        raise error(f"{directory}: no manifest.json; not a powercells store")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise error(f"{path}: unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise error(f"{path}: not a powercells store manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise error(f"{path}: store format version {version!r}, written by powercells "
                    f"{manifest.get('version', '(unknown)')}; this powercells reads version "
                    f"{FORMAT_VERSION} only: use the version that wrote it, or a new folder")
    return manifest
