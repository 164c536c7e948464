"""The networks the peer runners read: ``NET.npz`` with W0, b0, W1, b1, ... (W of shape
(out, in)) and every layer a ReLU (an optional ``activations`` array must say so). Imported by
the runners from their own folder, in the peers' environments (numpy only)."""

import sys

import numpy as np


def load_relu_layers(path, dtype, runner: str):
    """``[(W, b), ...]`` in ``dtype``; exits naming ``runner`` when a layer is not a ReLU."""
    data = np.load(path, allow_pickle=False)
    n = len([k for k in data.files if k.startswith("W")])
    if "activations" in data.files:
        acts = [str(a) for a in data["activations"]]
        if any(a != "relu" for a in acts):
            sys.exit(f"{runner}: every layer must be relu, got {acts}")
    return [(np.asarray(data[f"W{i}"], dtype=dtype),
             np.asarray(data[f"b{i}"], dtype=dtype).reshape(-1)) for i in range(n)]
