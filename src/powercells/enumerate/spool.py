"""Waiting tasks on this machine's disk, one file each, so that workers pass them on by key.

A task a worker hands on holds its nodes' batches (megabytes: the vertex engine's 5-D cells
with their affine maps take about 2 KB a node). Sent back to the coordinator and on to the
next worker, every such batch crossed two pipes and was pickled four times, and the
coordinator, a third process on a machine whose cores the workers already fill, had to be
scheduled to pass it along: on ACAS Xu 3_3 over prop_9 the workers of a 2-core pool sat idle
a sixth of the time. A worker on the coordinator's machine instead files its subtasks in a
:class:`TaskSpool` and hands back :class:`TaskRef` keys; the worker that runs one reads it from
the spool. The coordinator's memory then holds keys, not the batches of every task waiting.

The spool is the run's store's task folder when there is a store (:mod:`powercells.io.store`,
where the files make the run resumable), else a temporary folder removed when the run ends.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
from pathlib import Path

from ..errors import OutputError, PowercellsError

__all__ = ["TaskRef", "TaskSpool", "key_name", "write_atomic"]


class TaskRef:
    """A task waiting in a spool, by key (read back when it runs); depth and size None when
    unknown (a resumed store's), ``pieces`` as :attr:`Task.pieces
    <powercells.enumerate.tasks.Task.pieces>`."""

    __slots__ = ("key", "depth", "size", "pieces")

    def __init__(self, key, depth, size, pieces=False):
        self.key, self.depth, self.size, self.pieces = key, depth, size, pieces

    @classmethod
    def of(cls, task) -> TaskRef:
        """The reference to a task (or a copy of a reference)."""
        return cls(task.key, task.depth, task.size, getattr(task, "pieces", False))


def key_name(key: tuple) -> str:
    """A key as a file-name stem of bounded length (keys grow by one number per generation of
    tasks, to hundreds on long runs): a digest of the key, which the file itself records."""
    if not key:
        return "root"
    return hashlib.sha256(".".join(map(str, key)).encode()).hexdigest()[:40]


def write_atomic(path: Path, write, *, durable: bool = True) -> None:
    """``write(tmp_path)``, then rename onto ``path``: the file is whole or absent, and with
    ``durable`` on the disk before it has its name (a power cut cannot leave it half written).

    Raises
    ------
    OutputError
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass


class TaskSpool:
    """A folder of waiting tasks: ``task-H.pickle`` per task (``H``: :func:`key_name` of its
    key), each written under a temporary name and renamed, so a file is whole or absent.

    Parameters
    ----------
    directory : str or path
        An existing folder.
    owned : bool
        The folder was made for this run (:meth:`temporary`) and :meth:`remove` deletes it.
    durable : bool
        Each file reaches the disk before it has its name (a store's: the run must survive a
        power cut); a temporary spool dies with its run and skips that.
    """

    def __init__(self, directory, *, owned: bool = False, durable: bool = True):
        self.directory = Path(directory)
        self.owned = owned
        self.durable = durable

    @classmethod
    def temporary(cls) -> TaskSpool:
        """A new folder in the system's temporary directory, for a run without a store."""
        return cls(tempfile.mkdtemp(prefix="powercells-tasks-"), owned=True, durable=False)

    def path(self, key: tuple) -> Path:
        return self.directory / f"task-{key_name(key)}.pickle"

    def file(self, task) -> TaskRef:
        """Write ``task`` into the spool; its reference."""
        data = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
        write_atomic(self.path(task.key), lambda tmp: tmp.write_bytes(data),
                     durable=self.durable)
        return TaskRef.of(task)

    def load(self, key: tuple):
        """A waiting task, read back from its file."""
        f = self.path(key)
        try:
            with open(f, "rb") as fh:
                return pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            raise PowercellsError(f"{f}: cannot read the waiting task ({exc})") from None

    def forget(self, key: tuple) -> None:
        """Remove a task's file once its part is safe (no file: nothing to do)."""
        self.path(key).unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete a temporary spool with everything in it (a spool not owned stays)."""
        if self.owned:
            shutil.rmtree(self.directory, ignore_errors=True)
