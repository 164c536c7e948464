"""Count the linear regions of a ReLU MLP over [-1, 1]^d by edge subdivision (benchmark peer).

Usage (in the peer's environment, see benchmarks/README.md):

    python edge_subdivision_runner.py NET.npz [--box-dim D] [--src DIR] [--threads 1]

Edge subdivision (Berzins, ICML 2023; github arturs-berzins/relu_edge_subdivision) computes the
vertices and edges of the polyhedral complex of a ReLU network in float32 with PyTorch; it
assumes general position. ``--src`` is the folder holding the reference code
(``edge_subdivision.py``, ``NN.py``, ``utils.py``; default: $EDGE_SUBDIVISION_SRC, else whatever
the environment imports). ``--threads`` sets torch's intra-op threads (default 1: one core).

NET.npz holds W0, b0, W1, b1, ... (W of shape (out, in)), every layer followed by a ReLU and no
head. The reference ``Net(ks=[d, n1, ..., nL])`` subdivides by the pre-activations of all its
layers, which are exactly the ReLU units here.

The reference code returns the 1-skeleton (vertices, edges, sign vectors), not a region count;
the count is read off it here (O(edges)): in general position every vertex v lies on exactly d
of the surfaces (units or box facets) and each region R is a simple polytope, so for a generic
direction c, R has exactly one c-lowest vertex, the vertex where all d edges of R go upward. At v,
the edges leaving surface j towards side s (one per j and s) are R's edges for the regions on side
s of j, so the regions whose lowest vertex is v number prod_j #{s : that edge goes upward}; the
count is the sum over vertices. Prints one JSON line {"regions": N, "seconds": T,
"subdivision_seconds": S, "vertices": V, "edges": E}: T covers the subdivision and the count
(not imports or building the torch module), S the subdivision alone.
"""

import argparse
import contextlib
import json
import os
import sys
import time

import numpy as np
from relu_npz import load_relu_layers


def load(path):
    return load_relu_layers(path, np.float32, "edge subdivision runner")


def count_regions(vs, edges, v_sv, seed=12345):
    """Regions of the complex from its 1-skeleton (see the module docstring)."""
    vs = np.asarray(vs, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.int64)
    zero = np.asarray(v_sv) == 0                          # (V, columns): surfaces through v
    d = vs.shape[1]
    c = np.random.default_rng(seed).normal(size=d)
    height = vs @ c
    # each edge goes upward from its lower end (a tie, off general position, counts nowhere)
    flip = height[edges[:, 0]] > height[edges[:, 1]]
    tail = np.where(flip, edges[:, 1], edges[:, 0])
    head = np.where(flip, edges[:, 0], edges[:, 1])
    keep = height[head] > height[tail]
    tail, head = tail[keep], head[keep]
    # the surface the edge leaves at its tail: a zero of the tail's sign vector, not the head's
    # (none only off general position)
    if zero.shape[1] <= 63:
        bits = (zero.astype(np.int64) << np.arange(zero.shape[1], dtype=np.int64)).sum(axis=1)
        leaves = bits[tail] & ~bits[head]
        ok = leaves != 0
        j = np.log2(leaves[ok] & -leaves[ok]).astype(np.int64)   # its lowest set bit
        tail = tail[ok]
    else:
        leaves = zero[tail] & ~zero[head]
        ok = leaves.any(axis=1)
        j, tail = leaves[ok].argmax(axis=1), tail[ok]
    up = np.bincount(tail * zero.shape[1] + j, minlength=zero.size).reshape(zero.shape)
    per_vertex = np.where(zero, up, 1).prod(axis=1)
    return int(per_vertex.sum())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("net")
    parser.add_argument("--box-dim", type=int, default=None)
    parser.add_argument("--src", default=os.environ.get("EDGE_SUBDIVISION_SRC"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, os.path.abspath(args.src))
    import torch
    from edge_subdivision import skeletal_subdivision
    from NN import Net

    torch.set_num_threads(args.threads)
    layers = load(args.net)
    d = layers[0][0].shape[1]
    if args.box_dim is not None and args.box_dim != d:
        sys.exit(f"--box-dim {args.box_dim} but the network has {d} inputs")
    f = Net(ks=[d] + [W.shape[0] for W, _ in layers])
    with torch.no_grad():
        for fc, (W, b) in zip(f.fcs, layers):
            fc.weight.copy_(torch.from_numpy(W))
            fc.bias.copy_(torch.from_numpy(b))
        # its per-layer progress and general-position warnings go to stderr
        with contextlib.redirect_stdout(sys.stderr):
            t0 = time.perf_counter()
            vs, edges, v_sv = skeletal_subdivision(f, bbox=(-1, 1), device=torch.device("cpu"),
                                                   verbose=False)
            t1 = time.perf_counter()
    regions = count_regions(vs.numpy(), edges.numpy(), v_sv.numpy())
    t2 = time.perf_counter()
    print(json.dumps({"regions": regions, "seconds": round(t2 - t0, 4),
                      "subdivision_seconds": round(t1 - t0, 4), "vertices": len(vs),
                      "edges": len(edges)}), flush=True)


if __name__ == "__main__":
    main()
