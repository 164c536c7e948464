"""Make the bundled example networks (deterministic: fixed seeds).

    python data/make_examples.py

example_3d.npz  3 inputs -> 16 -> 16 -> 1, ReLU, He-initialised weights, biases N(0, 0.1^2):
                the network the README's first command counts over [-1, 1]^3.
tent_L6.npz     Telgarsky's tent map composed 6 times (SPEC §6.1.4): exactly 64 regions on
                [0, 1].
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def he_network(d, widths, seed, bias=0.1):
    rng = np.random.default_rng(seed)
    dims = [d] + list(widths)
    arrays = {}
    for i in range(len(widths)):
        arrays[f"W{i}"] = rng.normal(size=(dims[i + 1], dims[i])) * np.sqrt(2.0 / dims[i])
        arrays[f"b{i}"] = rng.normal(size=dims[i + 1]) * bias
    return arrays


def tent(L):
    arrays = {"W0": np.array([[1.0], [1.0]]), "b0": np.array([0.0, -0.5])}
    for i in range(1, L):
        arrays[f"W{i}"] = np.array([[2.0, -4.0], [2.0, -4.0]])
        arrays[f"b{i}"] = np.array([0.0, -0.5])
    arrays[f"W{L}"] = np.array([[2.0, -4.0]])
    arrays[f"b{L}"] = np.array([0.0])
    return arrays


if __name__ == "__main__":
    np.savez(HERE / "example_3d.npz", **he_network(3, [16, 16, 1], seed=0))
    np.savez(HERE / "tent_L6.npz", **tent(6))
    print("wrote example_3d.npz, tent_L6.npz")
