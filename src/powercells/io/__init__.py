"""Reading and writing networks."""

from __future__ import annotations

import os

from ..errors import NetworkError
from .leaves import read_leaves, write_leaves
from .npz import load_npz, save_npz
from .store import read_store, store_summary

__all__ = ["load", "load_npz", "read_leaves", "read_store", "save_npz", "store_summary",
           "write_leaves"]


def load(path, *, hard_limit: bool = False):
    """Load a network from a file; the format follows the extension (``.npz``, ``.onnx``).

    ``hard_limit=True`` reads smooth activations (SiLU, GELU, softplus, ...) as their MASO
    limit, same weights (:mod:`powercells.soft_vq`); without it they are refused.

    Raises
    ------
    NetworkError
        For an unknown extension or an unreadable file.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext == ".npz":
        return load_npz(path, hard_limit=hard_limit)
    if ext == ".onnx":
        from .onnx import from_onnx

        if not os.path.exists(path):
            raise NetworkError(f"{path}: no such file")
        return from_onnx(path, hard_limit=hard_limit)
    raise NetworkError(f"{path}: unknown network format {ext!r}; supported: .npz, .onnx")
