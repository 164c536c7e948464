"""Train a deeper ReLU MLP on scikit-learn's digits for notebooks/exact_vs_approximate.ipynb.

Same data and split as ``train.py`` beside it (pixels / 16, first 1500 images for training), but
two hidden layers: ``MLPClassifier(hidden_layer_sizes=(32, 16), activation="relu")`` (Adam,
seed 0), so that local complexity has deeper layers to miss neurons in. Weights go to
``digits_mlp_deep.npz`` in powercells' format (``W0 (32, 64), b0, W1 (16, 32), b1, W2 (10, 16),
b2``; activations relu, relu, identity); the held-out accuracy is printed.
Run: ``python data/digits_mlp/train_deep.py``.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main():
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    clf = MLPClassifier(hidden_layer_sizes=(32, 16), activation="relu", max_iter=2000,
                        random_state=0)
    clf.fit(X[:1500], y[:1500])
    arrays = {}
    for i, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        arrays[f"W{i}"] = W.T.astype(np.float64)
        arrays[f"b{i}"] = b.astype(np.float64)
    np.savez(HERE / "digits_mlp_deep.npz", activations=np.array(["relu", "relu", "identity"]),
             **arrays)
    print(f"held-out accuracy {clf.score(X[1500:], y[1500:]):.3f}")


if __name__ == "__main__":
    main()
