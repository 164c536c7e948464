"""Test networks shared by the suite: oracles of SPEC §6 and degenerate constructions."""

from __future__ import annotations

import itertools

import numpy as np

from powercells import Box, Layer, Network


def engine_for(engine, dim):
    """The ``engine`` fixture's keywords, skipping the planar engine off 2-D domains."""
    import pytest

    if engine["engine"] == "planar" and dim != 2:
        pytest.skip("the planar engine handles 2-D domains only")
    if engine["engine"] == "interval" and dim != 1:
        pytest.skip("the interval engine handles 1-D domains only")
    if engine["engine"] == "vertex" and dim > 8:
        pytest.skip("the vertex engine is for low dimensions (its box has 2^d vertices)")
    return engine


def random_network(d, widths, seed=0, *, activations=None, bias=0.5, head=None):
    """He-initialised dense network; ``activations`` one per hidden layer (default ReLU)."""
    rng = np.random.default_rng(seed)
    dims = [d] + list(widths)
    pairs = [(rng.normal(size=(dims[i + 1], dims[i])) * np.sqrt(2.0 / dims[i]),
              rng.normal(size=dims[i + 1]) * bias) for i in range(len(widths))]
    acts = list(activations) if activations is not None else ["relu"] * len(widths)
    if head is not None:
        pairs.append((rng.normal(size=(head, dims[-1])), rng.normal(size=head)))
        acts.append("identity")
    return Network.from_weights(pairs, acts)


def near_coincident_network(seed=903578):
    """A 4-input ReLU network of {-1, 0, 1} weights and {-0.5, 0, 0.5} biases plus N(0, 3e-12)
    noise: near-duplicate units whose thin cells only exact arithmetic resolves (the vertex
    engine flags fragile vertices; the lp engine and the certified mode count [52, 225])."""
    r = np.random.default_rng(seed)
    widths = [int(r.integers(2, 7)) for _ in range(int(r.integers(1, 3)))]
    dims = [4] + widths
    pairs = [(r.integers(-1, 2, (dims[i + 1], dims[i])) + 3e-12 * r.normal(size=(dims[i + 1],
                                                                               dims[i])),
              r.integers(-1, 2, dims[i + 1]) * 0.5 + 3e-12 * r.normal(size=dims[i + 1]))
             for i in range(len(widths))]
    return Network.from_weights(pairs, ["relu"] * len(widths))


def general_position_layer(n, d, seed=0):
    """One ReLU layer of n random hyperplanes and a box containing all C(n, d) vertices."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, d))
    b = rng.normal(size=n)
    pts = [np.linalg.solve(W[list(c)], -b[list(c)]) for c in itertools.combinations(range(n), d)]
    pts = np.array(pts) if pts else np.zeros((1, d))
    lo = pts.min(axis=0) - 1.0
    hi = pts.max(axis=0) + 1.0
    return Network.from_weights([(W, b)], ["relu"]), Box(lo, hi)


def tent_map(L):
    """Telgarsky's tent map composed L times, plus the linear head (SPEC §6.1.4)."""
    pairs = [(np.array([[1.0], [1.0]]), np.array([0.0, -0.5]))]
    for _ in range(1, L):
        pairs.append((np.array([[2.0, -4.0], [2.0, -4.0]]), np.array([0.0, -0.5])))
    pairs.append((np.array([[2.0, -4.0]]), np.array([0.0])))
    return Network.from_weights(pairs, ["relu"] * L + ["identity"])


def worked_example():
    """SPEC §6.1.5: W1 = I, b1 = (0, -1); W2 = [1, -1], b2 = 0.5; ReLU both."""
    return Network.from_weights([(np.eye(2), np.array([0.0, -1.0])),
                                 (np.array([[1.0, -1.0]]), np.array([0.5]))], ["relu", "relu"])


def maxout_network(d, widths, pieces, seed=0):
    rng = np.random.default_rng(seed)
    dims = [d] + list(widths)
    layers = [Layer.maxout(rng.normal(size=(dims[i + 1] * pieces, dims[i])),
                           rng.normal(size=dims[i + 1] * pieces) * 0.5, pieces=pieces,
                           name=f"layer {i + 1}") for i in range(len(widths))]
    return Network(layers)


def maxpool_network(d, width, groups, seed=0, *, second=None):
    """Dense -> ReLU -> max-pool over ``groups``, optionally followed by a ReLU layer."""
    rng = np.random.default_rng(seed)
    layers = [Layer.relu_maxpool(rng.normal(size=(width, d)), rng.normal(size=width) * 0.5,
                                 groups, name="layer 1")]
    if second is not None:
        layers.append(Layer.dense(rng.normal(size=(second, len(groups))),
                                  rng.normal(size=second) * 0.5, "relu", name="layer 2"))
    return Network(layers)
