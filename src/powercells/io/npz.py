"""Networks in ``.npz`` files: ``W0, b0, W1, b1, ...`` and an optional ``activations`` array."""

from __future__ import annotations

import os
import re
import zipfile

import numpy as np

from ..errors import NetworkError
from ..network import Network

__all__ = ["load_npz", "save_npz"]


def load_npz(path) -> Network:
    """Read a network from an ``.npz`` file.

    Keys ``W0, b0, W1, b1, ...`` (W of shape (out, in)); ReLU after every layer except the last,
    which is linear, unless a string array ``activations`` gives one entry per layer
    (``relu``, ``leaky_relu:<slope>``, ``abs``, ``identity``, ``maxout:<R>``).

    Raises
    ------
    NetworkError
        If the file cannot be read, keys are missing or do not pair up, or the weights are invalid.
    """
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise NetworkError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise NetworkError(f"{path}: not a readable .npz file ({exc})") from None
    with data:
        keys = set(data.files)
        idx = sorted(int(m.group(1)) for k in keys if (m := re.fullmatch(r"W(\d+)", k)))
        if not idx:
            raise NetworkError(f"{path}: no weight arrays W0, W1, ... (keys: {sorted(keys)})")
        if idx != list(range(len(idx))):
            raise NetworkError(f"{path}: weight keys must be W0..W{len(idx) - 1} without gaps, "
                               f"got {['W%d' % i for i in idx]}")
        pairs = []
        for i in idx:
            if f"b{i}" not in keys:
                raise NetworkError(f"{path}: W{i} has no bias b{i}")
            pairs.append((data[f"W{i}"], data[f"b{i}"]))
        activations = None
        if "activations" in keys:
            acts = data["activations"]
            activations = [str(a) for a in np.atleast_1d(acts)]
    return Network.from_weights(pairs, activations)


def save_npz(network: Network, path) -> None:
    """Write a network of dense layers (relu, leaky_relu, abs, identity, maxout) to ``.npz``.

    Raises
    ------
    NetworkError
        For layers with no dense spelling (pooling, general MASO).
    """
    arrays = {}
    acts = []
    for i, layer in enumerate(network.layers):
        if layer.kind in ("relu", "abs", "identity"):
            acts.append(layer.kind)
        elif layer.kind == "leaky_relu":
            acts.append(f"leaky_relu:{layer.slope!r}")
        elif layer.kind == "maxout":
            acts.append(f"maxout:{layer.max_pieces}")
        else:
            raise NetworkError(f"{layer.name}: {layer.kind} layers cannot be saved to .npz")
        arrays[f"W{i}"] = layer.weight
        arrays[f"b{i}"] = layer.bias
    np.savez(os.fspath(path), activations=np.array(acts), **arrays)
