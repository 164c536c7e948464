"""Train the toy network of the power-diagram talk: 2 inputs -> 45 -> 3 -> 4 classes (ReLU).

The data: four classes in the plane, two interleaved half-moon pairs rotated by 90 degrees
(``make_dataset``), 2000 points in [-1, 1]^2, seed 0. The network: scikit-learn's
``MLPClassifier(hidden_layer_sizes=(45, 3), activation="relu")`` (softmax output, Adam, seed 0).
Its weights are written in powercells' ``.npz`` format (``W0, b0, W1, b1, W2, b2`` with W of
shape (out, in); activations relu, relu, identity: the logits) to ``toy4.npz``, the data to
``data.npz``. Run from anywhere: ``python data/toy4/train.py``.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_dataset(n: int = 2000, seed: int = 0):
    """Four classes: two pairs of interleaved half moons, the second pair rotated by 90°."""
    from sklearn.datasets import make_moons

    rng = np.random.default_rng(seed)
    Xa, ya = make_moons(n // 2, noise=0.08, random_state=seed)
    Xb, yb = make_moons(n // 2, noise=0.08, random_state=seed + 1)
    Xa = (Xa - [0.5, 0.25]) * 0.45 + [-0.1, 0.5]
    Xb = ((Xb - [0.5, 0.25]) * 0.45) @ np.array([[0.0, -1.0], [1.0, 0.0]]) + [0.0, -0.45]
    X = np.vstack([Xa, Xb])
    y = np.concatenate([ya, yb + 2])
    order = rng.permutation(len(y))
    return np.clip(X[order], -1, 1), y[order]


def main():
    from sklearn.neural_network import MLPClassifier

    X, y = make_dataset()
    clf = MLPClassifier(hidden_layer_sizes=(45, 3), activation="relu", max_iter=3000,
                        learning_rate_init=0.01, random_state=0, tol=1e-6)
    clf.fit(X, y)
    arrays = {}
    for i, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        arrays[f"W{i}"] = W.T.astype(np.float64)
        arrays[f"b{i}"] = b.astype(np.float64)
    np.savez(HERE / "toy4.npz", activations=np.array(["relu", "relu", "identity"]), **arrays)
    np.savez(HERE / "data.npz", X=X, y=y)
    print(f"training accuracy {clf.score(X, y):.3f}")


if __name__ == "__main__":
    main()
