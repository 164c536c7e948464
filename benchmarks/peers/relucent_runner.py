"""Count the linear regions of a ReLU MLP over the box [LO, HI]^d with relucent (peer for benchmarks).

Usage (in benchmarks/.venv-relucent):  python relucent_runner.py NET.npz LO HI [NWORKERS] [--verify]
NWORKERS: worker processes (default: all CPUs). --verify: also run relucent's certification of
the finished complex (dual-graph invariants; slow: +2-3 min on 25k regions), timed with the search.

NET.npz holds W0, b0, W1, b1, ... (W of shape (out, in)). Every layer is followed by a ReLU,
unless the file has an ``activations`` array (powercells' format), where ``identity``/``linear``
marks a layer without ReLU; such a layer (normally the last) adds no hyperplanes, so it never
changes the count. Prints one JSON line {"regions": N, "seconds": T}; T covers the search only.

relucent has no general input box, only the cube [-r, r]^d, so the box is mapped onto [-1, 1]^d
by folding x = c + s*u into the first layer. ``cube_mode="intersect"`` keeps the cells whose
interior meets the cube (a Chebyshev ball of positive radius inside cell ∩ cube), i.e. the
activation regions of the box. relucent solves its LPs with Gurobi (gurobipy's bundled
size-limited license is enough for LPs under 2000 rows/columns).
"""

import json
import os
import sys
import time

import numpy as np

# Gurobi may print a license banner on stdout: send fd 1 to stderr until the result is ready.
_stdout = os.dup(1)
os.dup2(2, 1)

import relucent
from relucent.model.model import LinearLayer, ReLULayer, ReLUNetwork

relucent.update_settings(VERBOSE=0)  # no progress bars


def load(path, lo, hi):
    """ReLUNetwork on u in [-1, 1]^d equal to the file's network on x = c + s*u in [lo, hi]^d."""
    data = np.load(path, allow_pickle=False)
    n = len([k for k in data.files if k.startswith("W")])
    acts = [str(a) for a in data["activations"]] if "activations" in data.files else ["relu"] * n
    c, s = (lo + hi) / 2.0, (hi - lo) / 2.0
    layers = {}
    for i in range(n):
        W = np.asarray(data[f"W{i}"], dtype=np.float64)
        b = np.asarray(data[f"b{i}"], dtype=np.float64).reshape(-1)
        if i == 0:  # W (c + s u) + b = (s W) u + (W c + b)
            W, b = s * W, W.sum(axis=1) * c + b
        layers[f"fc{i}"] = LinearLayer(weight=W, bias=b.reshape(1, -1))  # relucent wants bias (1, out)
        if acts[i] == "relu":
            layers[f"relu{i}"] = ReLULayer()
        elif acts[i] not in ("identity", "linear"):
            sys.exit(f"relucent handles relu/identity layers only, not {acts[i]!r}")
    return ReLUNetwork(layers, input_shape=(data["W0"].shape[1],))


def main():
    verify = "--verify" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--verify"]
    path, lo, hi = args[0], float(args[1]), float(args[2])
    nworkers = int(args[3]) if len(args) > 3 else None  # None: all CPUs
    cplx = relucent.Complex(load(path, lo, hi))
    t0 = time.perf_counter()
    # BFS over the dual graph from the box centre (u = 0), crossing facets; cells whose interior
    # misses the cube are dropped. The search is complete when its frontier empties with no
    # failed LP; verify=True would add relucent's certification pass on top.
    res = cplx.bfs(cube_radius=1.0, cube_mode="intersect", nworkers=nworkers, verify=verify)
    seconds = time.perf_counter() - t0
    if not res.complete:
        sys.exit(f"relucent search incomplete: {res}")
    os.dup2(_stdout, 1)
    print(json.dumps({"regions": len(cplx), "seconds": round(seconds, 4)}), flush=True)


if __name__ == "__main__":
    main()
