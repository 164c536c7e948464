"""Train a small ReLU MLP on scikit-learn's digits (8x8 images, 10 classes).

Inputs are the 64 pixel intensities divided by 16 (so in [0, 1]); the network is
``MLPClassifier(hidden_layer_sizes=(32,), activation="relu")`` (Adam, seed 0) trained on the
first 1500 images. Weights go to ``digits_mlp.npz`` in powercells' format (``W0 (32, 64), b0,
W1 (10, 32), b1``; activations relu, identity); the held-out accuracy is printed.
Run: ``python data/digits_mlp/train.py``.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main():
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    clf = MLPClassifier(hidden_layer_sizes=(32,), activation="relu", max_iter=2000,
                        random_state=0)
    clf.fit(X[:1500], y[:1500])
    arrays = {}
    for i, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        arrays[f"W{i}"] = W.T.astype(np.float64)
        arrays[f"b{i}"] = b.astype(np.float64)
    np.savez(HERE / "digits_mlp.npz", activations=np.array(["relu", "identity"]), **arrays)
    print(f"held-out accuracy {clf.score(X[1500:], y[1500:]):.3f}")


if __name__ == "__main__":
    main()
