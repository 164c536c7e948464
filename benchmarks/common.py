"""Shared pieces of the benchmarks: the seeded networks and timing helpers."""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # tiny matrices: BLAS threads only spin

import numpy as np

import powercells as pc


def he_network(d, widths, seed=0, bias=0.1):
    """He-initialised ReLU network (W ~ N(0, 2/fan_in)), biases N(0, bias^2), no head."""
    rng = np.random.default_rng(seed)
    dims = [d] + list(widths)
    pairs = [(rng.normal(size=(dims[i + 1], dims[i])) * np.sqrt(2.0 / dims[i]),
              rng.normal(size=dims[i + 1]) * bias) for i in range(len(widths))]
    return pc.Network.from_weights(pairs, ["relu"] * len(widths))


def save_npz(network, path):
    arrays = {"activations": np.array([layer.kind for layer in network.layers])}
    for i, layer in enumerate(network.layers):
        arrays[f"W{i}"] = layer.weight
        arrays[f"b{i}"] = layer.bias
    np.savez(path, **arrays)


def median_time(fn, runs):
    """(median seconds, last result) over ``runs`` calls."""
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result
