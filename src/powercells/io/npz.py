"""Networks in ``.npz`` files: ``W0, b0, W1, b1, ...`` and an optional ``activations`` array.

A network file is untrusted input; it is read by :func:`powercells.io.arrays.read_npz_arrays`
(headers checked before any data is decompressed, one error naming the file and the member).
"""

from __future__ import annotations

import os
import re

import numpy as np

from ..errors import NetworkError
from ..network import Network
from .arrays import read_npz_arrays

__all__ = ["load_npz", "save_npz"]

_KEY = re.compile(r"([Wb])(\d+)")

def load_npz(path, *, hard_limit: bool = False) -> Network:
    """Read a network from an ``.npz`` file.

    Keys ``W0, b0, W1, b1, ...`` (W of shape (out, in)); ReLU after every layer except the last,
    which is linear, unless a string array ``activations`` gives one entry per layer
    (``relu``, ``leaky_relu:<slope>``, ``abs``, ``identity``, ``maxout:<R>``, and the smooth
    ``silu`` (also ``swish``), ``swish:<s>``, ``gelu``, ``gelu_tanh``, ``softplus``,
    ``soft_abs``, ``hardswish``, ``mish``, ``beta_vq:<beta>[:<slope>]``). No other key is
    accepted: a stray ``b3`` without ``W3`` or a misspelt key is an error, not ignored.

    Parameters
    ----------
    path : str or path-like
    hard_limit : bool
        Read smooth activations as their MASO limit (ReLU; abs for ``soft_abs``), same
        weights, recorded per layer (:attr:`Network.hard_limit`, SPEC §7). Without it a smooth
        activation raises UnsupportedLayerError naming the option.

    Raises
    ------
    NetworkError
        If the file cannot be read, keys are missing, unknown or do not pair up, or the weights
        are invalid.
    UnsupportedLayerError
        For an activation that is not piecewise-affine (a smooth one without ``hard_limit``).
    """
    data = read_npz_arrays(path, error=NetworkError, text_keys=("activations",))
    keys = set(data)
    unknown = sorted(k for k in keys if k != "activations" and not _KEY.fullmatch(k))
    if unknown:
        raise NetworkError(f"{path}: unknown arrays {unknown}; a network file holds W0, b0, "
                           "W1, b1, ... and optionally activations")
    idx = sorted(int(m.group(2)) for k in keys if (m := _KEY.fullmatch(k)) and m.group(1) == "W")
    if not idx:
        raise NetworkError(f"{path}: no weight arrays W0, W1, ... (keys: {sorted(keys)})")
    if idx != list(range(len(idx))):
        raise NetworkError(f"{path}: weight keys must be W0..W{len(idx) - 1} without gaps, "
                           f"got {['W%d' % i for i in idx]}")
    for k in sorted(keys):
        m = _KEY.fullmatch(k)
        if m and m.group(1) == "b" and f"W{m.group(2)}" not in keys:
            raise NetworkError(f"{path}: bias {k} has no weight W{m.group(2)}")
    pairs = []
    for i in idx:
        if f"b{i}" not in keys:
            raise NetworkError(f"{path}: W{i} has no bias b{i}")
        pairs.append((data[f"W{i}"], data[f"b{i}"]))
    activations = None
    if "activations" in keys:
        acts = data["activations"]
        if acts.dtype.kind not in "US" or acts.ndim > 1:
            raise NetworkError(f"{path}: activations must be a 1-D array of strings, got "
                               f"dtype {acts.dtype} and shape {acts.shape}")
        activations = [a.decode("ascii", "replace") if isinstance(a, bytes) else str(a)
                       for a in np.atleast_1d(acts)]
    try:
        return Network.from_weights(pairs, activations, hard_limit=hard_limit)
    except NetworkError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def save_npz(network: Network, path) -> None:
    """Write a network of dense layers (relu, leaky_relu, abs, identity, maxout) to ``.npz``.

    A layer that is the hard limit of a smooth activation (:attr:`Layer.smooth`) is written
    with the smooth activation's spelling (``silu``, ``gelu``, ...): the file keeps the smooth
    network, and ``load_npz(path, hard_limit=True)`` reads the same hard limit back.

    Raises
    ------
    NetworkError
        For layers with no dense spelling (pooling, general MASO).
    """
    arrays = {}
    acts = []
    for i, layer in enumerate(network.layers):
        if layer.smooth is not None and layer.is_switch:
            limit = layer.smooth.limit
            if not (layer.kind == limit or (limit == "relu-type" and layer.is_switch)):
                raise NetworkError(f"{layer.name}: a {layer.kind} layer cannot be the hard "
                                   f"limit of {layer.smooth.name} ({limit}); not saved")
            slope = {"relu": 0.0, "abs": -1.0}.get(layer.kind, layer.slope)
            acts.append(layer.smooth.spelling(slope))
        elif layer.kind in ("relu", "abs", "identity"):
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
