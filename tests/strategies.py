"""Hypothesis strategies shared by the cross-check tests."""

import numpy as np
from hypothesis import strategies as st

import powercells as pc


@st.composite
def integer_networks(draw, dims=(1, 3), depth=(1, 2), width=(1, 5)):
    """``(network, d)`` with weights and biases in {-1, 0, 1}: duplicates, dead units,
    concurrency, hyperplanes through box corners and along edges, identically-zero
    pre-activations everywhere."""
    d = draw(st.integers(*dims))
    widths = [draw(st.integers(*width)) for _ in range(draw(st.integers(*depth)))]
    sizes = [d] + widths
    small = st.integers(-1, 1)
    pairs = []
    for i in range(len(widths)):
        W = np.array(draw(st.lists(small, min_size=sizes[i + 1] * sizes[i],
                                   max_size=sizes[i + 1] * sizes[i])), float)
        b = np.array(draw(st.lists(small, min_size=sizes[i + 1], max_size=sizes[i + 1])), float)
        pairs.append((W.reshape(sizes[i + 1], sizes[i]), b))
    acts = [draw(st.sampled_from(["relu", "abs", "leaky_relu:0.5"])) for _ in widths]
    return pc.Network.from_weights(pairs, acts), d
