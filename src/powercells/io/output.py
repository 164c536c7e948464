"""Output folders that are written whole or not at all, and never replace what is not ours.

:class:`OutputFolder` is the one way powercells writes a folder (exports, streamed leaves):

* the files are written into a temporary sibling ``.NAME.tmp-XXXX`` and the folder is renamed
  into place by :meth:`OutputFolder.commit`, so a reader never sees half an output and an error,
  ``Ctrl-C`` or ``SIGTERM`` (the CLI turns it into an interrupt) leaves nothing behind;
* an existing folder is replaced only when ``overwrite`` is given **and** it holds a powercells
  output: its marker file ``.powercells`` (or, for exports written before the marker existed,
  nothing but the export's own files). A folder with anything else in it (the working folder,
  a home folder, the input network's folder) is refused, whatever the flags;
* a lock file ``.NAME.lock`` beside the folder (``flock``; released by the kernel if the process
  dies) makes a second writer to the same folder fail at once with a clear error instead of
  mixing its files with the first one's or silently replacing its finished output;
* the target is checked again at commit time, under the lock, so an output that appeared while
  the enumeration ran is not replaced without ``overwrite``;
* temporary siblings left by a killed process (``SIGKILL``, power loss) are recognised by their
  marker and removed by the next writer of the same folder.

The folder gets the permissions a plain ``mkdir`` would give (``0777 & ~umask``), not the
``0700`` of a temporary folder.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile

from .._interrupts import deferred
from ..errors import OutputError

__all__ = ["MARKER", "OutputFolder", "is_powercells_output"]

#: The marker file inside every folder powercells writes (JSON: kind, version, complete).
MARKER = ".powercells"

#: How messages name each kind of output.
_KIND_NAMES = {"export": "export", "leaves": "leaf folder (write_leaves)"}

#: Files of an export written before the marker existed: such a folder may be overwritten.
_LEGACY_FILES = {"export": {"nodes.parquet", "ridges.parquet", "adjacency.parquet",
                            "summary.json"}}


def _version() -> str:
    from .. import __version__

    return __version__


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_powercells_output(path, kind: str | None = None) -> bool:
    """Whether ``path`` is a folder written by powercells (of ``kind``, if given): it holds the
    marker file, or (exports from before the marker) nothing but an export's files."""
    path = os.fspath(path)
    if not os.path.isdir(path) or os.path.islink(path):
        return False
    marker = os.path.join(path, MARKER)
    if os.path.isfile(marker) and not os.path.islink(marker):
        try:
            with open(marker) as fh:
                info = json.load(fh)
        except (OSError, ValueError):
            return False
        if not isinstance(info, dict) or (kind is not None and info.get("kind") != kind):
            return False
        # the folder holds exactly what powercells wrote there: a file added by hand (notes,
        # the input network) makes it the user's, and it is not replaced
        files = info.get("files")
        return isinstance(files, list) and set(os.listdir(path)) <= set(map(str, files)) | {
            MARKER}
    names = set(os.listdir(path))
    kinds = [kind] if kind is not None else list(_LEGACY_FILES)
    return any(names and names <= _LEGACY_FILES.get(k, set()) for k in kinds)


class OutputFolder:
    """A folder written atomically under a lock (see the module docstring).

    Use as a context manager; write files into :attr:`tmp`, then call :meth:`commit`. Leaving
    the block without a commit (an error, an interrupt) removes the temporary folder.

    Parameters
    ----------
    path : str or path
        The folder to write. Its parent must exist.
    kind : str
        What is written (``"export"``, ``"leaves"``); recorded in the marker, and an existing
        folder of another kind is not replaced.
    overwrite : bool
        Replace an existing powercells output of the same kind: a folder holding nothing but
        the files its marker lists (never the working folder or one holding ``protect``).
    protect : iterable of paths
        Files that must survive (the run's inputs): a folder holding one is not replaced.

    Raises
    ------
    OutputError
        On entering: the parent is missing or not writable, the path is a file or a symbolic
        link, it is a non-empty folder and ``overwrite`` is not given, it holds anything but a
        powercells output, or another process is writing it. On commit: the same, checked again.

    Examples
    --------
    >>> import os, tempfile
    >>> base = tempfile.mkdtemp()
    >>> with OutputFolder(os.path.join(base, "out"), kind="example") as out:
    ...     with open(os.path.join(out.tmp, "data.txt"), "w") as fh:
    ...         _ = fh.write("hello")
    ...     out.commit()
    >>> sorted(os.listdir(os.path.join(base, "out")))
    ['.powercells', 'data.txt']
    """

    def __init__(self, path, *, kind: str, overwrite: bool = False, protect=()):
        self.given = os.fspath(path)
        self.path = os.path.abspath(self.given)
        self.parent, self.name = os.path.split(self.path)
        self.kind = kind
        self.what = _KIND_NAMES.get(kind, f"{kind} output")
        self.overwrite = bool(overwrite)
        self.protect = [os.fspath(p) for p in protect if p is not None]
        self.tmp: str | None = None
        self.committed = False
        self._lock_fd: int | None = None
        self._lock_path = os.path.join(self.parent, f".{self.name}.lock")

    # ------------------------------------------------------------------ checks
    def _check_target(self) -> None:
        where = self.given
        if not self.name or self.path == os.path.dirname(self.path):
            raise OutputError(f"{where}: cannot write into the root of the file system")
        if not os.path.isdir(self.parent):
            raise OutputError(f"{where}: the folder {self.parent} does not exist")
        if not os.access(self.parent, os.W_OK | os.X_OK):
            raise OutputError(f"{where}: the folder {self.parent} is not writable")
        if os.path.islink(self.path):
            raise OutputError(f"{where} is a symbolic link; give the folder itself")
        if not os.path.lexists(self.path):
            return
        if not os.path.isdir(self.path):
            raise OutputError(f"{where} exists and is not a folder")
        try:
            names = os.listdir(self.path)
        except OSError as exc:
            raise OutputError(f"{where}: cannot list the folder ({exc.strerror})") from None
        if not names:
            return
        here = os.path.realpath(os.getcwd())
        target = os.path.realpath(self.path)
        if here == target or here.startswith(target + os.sep):
            raise OutputError(f"{where} is (or holds) the working folder; powercells does not "
                              "replace the folder it runs in: choose another output folder")
        for keep in self.protect:
            if os.path.realpath(keep).startswith(target + os.sep):
                raise OutputError(f"{where} holds {keep}, an input of this run: choose "
                                  "another output folder")
        if not is_powercells_output(self.path, self.kind):
            raise OutputError(
                f"{where} exists and holds files that are not a powercells {self.what} (no "
                f"{MARKER} marker); powercells replaces only its own output folders: choose "
                "a new or empty folder")
        if not self.overwrite:
            raise OutputError(f"{where} already holds a powercells {self.what}; use "
                              "--overwrite (overwrite=True) to replace it")

    def _lock(self) -> None:
        """Take the writer's lock beside the folder, failing at once if another holds it."""
        for _ in range(10):
            try:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(f"{self.given}: cannot create the lock file "
                                  f"{self._lock_path} ({exc.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise OutputError(f"{self.given}: another powercells process is writing "
                                      f"this folder (lock {self._lock_path}); wait for it or "
                                      "choose another folder") from None
                raise OutputError(f"{self.given}: cannot lock {self._lock_path} "
                                  f"({exc.strerror})") from None
            # the holder before us may have removed the file between our open and our lock:
            # the lock counts only if the path still names the file we locked
            try:
                same = os.stat(self._lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._lock_fd = fd
                return
            os.close(fd)
        raise OutputError(f"{self.given}: could not take the lock {self._lock_path}")

    def _unlock(self) -> None:
        if self._lock_fd is None:
            return
        try:
            os.unlink(self._lock_path)
        except OSError:
            pass
        os.close(self._lock_fd)
        self._lock_fd = None

    def _remove_stale(self) -> None:
        """Temporary siblings of this folder left by a killed writer (we hold the lock, so no
        live writer owns them); only folders carrying our marker are touched."""
        prefixes = (f".{self.name}.tmp-", f".{self.name}.old-")
        for entry in os.listdir(self.parent):
            if not entry.startswith(prefixes):
                continue
            full = os.path.join(self.parent, entry)
            if os.path.isdir(full) and not os.path.islink(full) and \
                    os.path.isfile(os.path.join(full, MARKER)):
                shutil.rmtree(full, ignore_errors=True)

    def _write_marker(self, folder: str, complete: bool) -> None:
        files = sorted(name for name in os.listdir(folder) if name != MARKER)
        with open(os.path.join(folder, MARKER), "w") as fh:
            json.dump({"kind": self.kind, "powercells": _version(), "complete": complete,
                       "files": files}, fh)

    # ------------------------------------------------------------------ protocol
    def __enter__(self) -> OutputFolder:
        self._check_target()
        with deferred():
            self._lock()
            self._start()
        return self

    def _start(self) -> None:
        try:
            self._check_target()            # again, now that no other writer can change it
            self._remove_stale()
            self.tmp = tempfile.mkdtemp(prefix=f".{self.name}.tmp-", dir=self.parent)
            os.chmod(self.tmp, 0o777 & ~current_umask())
            self._write_marker(self.tmp, complete=False)
        except OSError as exc:
            self._abandon()
            if isinstance(exc, OutputError):
                raise
            raise OutputError(f"{self.given}: cannot write in {self.parent} "
                              f"({exc.strerror or exc})") from None
        except BaseException:
            self._abandon()
            raise

    def commit(self) -> None:
        """Rename the temporary folder into place (replacing an earlier output when allowed).

        Raises
        ------
        OutputError
            If the target changed meanwhile into something that may not be replaced, or the
            rename fails.
        """
        if self.tmp is None or self.committed:
            raise OutputError(f"{self.given}: nothing to commit")
        with deferred():                # an interrupt waits until the output is in place
            self._commit()

    def _commit(self) -> None:
        self._check_target()
        try:
            self._write_marker(self.tmp, complete=True)
        except OSError as exc:
            raise OutputError(f"{self.given}: cannot write the marker "
                              f"({exc.strerror or exc})") from None
        old = None
        try:
            if os.path.lexists(self.path):
                old = tempfile.mkdtemp(prefix=f".{self.name}.old-", dir=self.parent)
                os.rmdir(old)
                os.rename(self.path, old)
            try:
                os.rename(self.tmp, self.path)
            except BaseException:
                if old is not None:
                    os.rename(old, self.path)          # put the earlier output back
                    old = None
                raise
        except OSError as exc:
            raise OutputError(f"{self.given}: cannot move the finished output into place "
                              f"({exc.strerror or exc})") from None
        self.committed = True
        self.tmp = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _abandon(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        self._unlock()

    def __exit__(self, exc_type, exc, tb) -> None:
        with deferred():
            self._abandon()
