"""Arrays from untrusted ``.npy`` / ``.npz`` files (networks, domains, points).

Each array's ``.npy`` header is read first: pickled objects, complex, string (unless asked for)
and structured dtypes, and shapes past :data:`MAX_ARRAY_ELEMENTS` are refused before any data is
read or decompressed. Every failure of numpy, zipfile and zlib becomes one error, of the type the
caller names, that names the file and the member.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib

import numpy as np

__all__ = ["MAX_ARRAY_ELEMENTS", "read_npy_array", "read_npz_arrays"]

#: The most elements the arrays of one network, domain or point file may declare together
#: (1 GiB of float64): more is refused from the headers, before anything is decompressed.
MAX_ARRAY_ELEMENTS = 1 << 27

def read_npz_arrays(path, *, error, what: str = "network file", text_keys=()) -> dict:
    """Every array of an ``.npz`` file, checked from its header before it is read.

    Parameters
    ----------
    error : type
        The exception raised for every problem (a :class:`PowercellsError` subclass).
    text_keys : iterable of str
        Members that may hold strings (e.g. ``activations``); every other member must be a
        real numeric array.

    Raises
    ------
    error
        If the file is missing, not a zip of ``.npy`` members, a member is pickled, truncated,
        corrupt, complex, not numeric, or declares more than :data:`MAX_ARRAY_ELEMENTS`.
    """
    path = os.fspath(path)
    _regular_file(path, error, what)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except PermissionError:
        raise error(f"{path}: permission denied") from None
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, NotImplementedError,
            RuntimeError) as exc:
        # NotImplementedError: a zip version or feature zipfile lacks; RuntimeError: encrypted
        kind = "an .npy file (one array)" if _starts_with(path, b"\x93NUMPY") else str(exc)
        raise error(f"{path}: not a readable .npz {what} (a zip of .npy arrays): {kind}"
                    ) from None
    arrays = {}
    budget = [MAX_ARRAY_ELEMENTS]               # elements the remaining members may declare
    with archive:
        for info in archive.infolist():
            if not info.filename:           # a corrupted directory entry (zipfile indexes it)
                raise error(f"{path}: not a readable .npz {what}: a member has no name")
            if info.is_dir():
                raise error(f"{path}: holds a folder {info.filename!r}; an .npz file holds "
                            ".npy arrays")
            name = info.filename
            key = name[:-4] if name.endswith(".npy") else name
            arrays[key] = _member(archive, info, key, path, error, key in text_keys, budget)
    return arrays


def _regular_file(path: str, error, what: str) -> None:
    """Refuse folders, devices and pipes (``/dev/zero`` would be read forever) by name."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise error(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(mode):
        raise error(f"{path}: is not a regular file (a device, pipe or socket), not a {what}")


def _starts_with(path, prefix: bytes) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(prefix)) == prefix
    except OSError:
        return False


def _member(archive, info, key, path, error, text_ok, budget) -> np.ndarray:
    try:
        fh = archive.open(info)
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError, NotImplementedError) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression
        raise error(f"{path}: array {key!r} cannot be read ({exc})") from None
    with fh:
        return _read_npy(fh, info.file_size, path, error, text_ok, what=f"array {key!r}",
                         budget=budget)


def _read_npy(fh, size, path, error, text_ok, what, budget=None) -> np.ndarray:
    where = f"{path}: {what}"
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise error(f"{where}: unsupported .npy version {version}")
        if dtype.hasobject:
            raise error(f"{where}: holds Python objects (pickled); only numeric arrays are read")
        if dtype.kind == "c":
            raise error(f"{where}: is complex ({dtype}); only real numbers are read")
        if dtype.kind not in ("biufUS" if text_ok else "biuf") or dtype.fields is not None:
            raise error(f"{where}: has dtype {dtype}, not a real numeric type")
        n = 1
        for s in shape:
            n *= int(s)
        budget = [MAX_ARRAY_ELEMENTS] if budget is None else budget
        if n > budget[0]:
            raise error(f"{where}: declares shape {shape} ({n} elements): the arrays of a "
                        f"file may hold {MAX_ARRAY_ELEMENTS} elements together")
        budget[0] -= n
        if n * dtype.itemsize > size:
            raise error(f"{where}: is truncated (shape {shape} needs {n * dtype.itemsize} "
                        f"bytes, the file holds {size})")
        nbytes = n * dtype.itemsize
        raw = bytearray(nbytes)                 # read in place: no second copy of the data
        view, got = memoryview(raw), 0
        while got < nbytes:
            k = fh.readinto(view[got:])
            if not k:
                raise error(f"{where}: is truncated ({got} of {nbytes} bytes)")
            got += k
        data = np.frombuffer(raw, dtype=dtype)
        return data.reshape(shape[::-1]).T if fortran else data.reshape(shape)
    except error:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError,
            SyntaxError, TypeError, RuntimeError, NotImplementedError) as exc:
        # read_magic / the header readers raise ValueError or SyntaxError on a mangled header
        # (an .npz given where an .npy is expected too); zipfile raises BadZipFile on a CRC
        # mismatch, zlib.error on bad deflate data
        raise error(f"{where}: cannot be read ({type(exc).__name__}: {exc})") from None


def read_npy_array(path, *, error, what: str = "array file") -> np.ndarray:
    """One real numeric array from a ``.npy`` file, checked as :func:`read_npz_arrays` checks
    each member.

    Raises
    ------
    error
        If the file is missing, not a ``.npy`` file (an ``.npz`` included), or its array is
        refused.
    """
    path = os.fspath(path)
    _regular_file(path, error, what)
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot be opened ({exc.strerror or exc})") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        return _read_npy(fh, size, path, error, text_ok=False, what=what)
