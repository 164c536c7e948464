"""Reading and writing networks."""

from __future__ import annotations

import os

from ..errors import NetworkError
from .leaves import read_leaves, write_leaves
from .npz import load_npz, save_npz

__all__ = ["load", "load_npz", "read_leaves", "save_npz", "write_leaves"]


def load(path):
    """Load a network from a file; the format follows the extension (``.npz``, ``.onnx``).

    Raises
    ------
    NetworkError
        For an unknown extension or an unreadable file.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext == ".npz":
        return load_npz(path)
    if ext == ".onnx":
        from .onnx import from_onnx

        if not os.path.exists(path):
            raise NetworkError(f"{path}: no such file")
        return from_onnx(path)
    raise NetworkError(f"{path}: unknown network format {ext!r}; supported: .npz, .onnx")
