"""Count the linear regions of a ReLU MLP over [-1, 1]^d with nnenum (peer for benchmarks).

Usage (in the peer's environment, see benchmarks/README.md):

    python nnenum_runner.py NET.npz [--box-dim D] [--timeout SECONDS]

nnenum (Bak et al., CAV 2020; github stanleybak/nnenum) enumerates star sets: its exact mode
(``Settings.BRANCH_MODE = BRANCH_EXACT``) with no specification splits a star on every unit whose
LP bounds over the star straddle zero, so its finished stars are the activation regions of the
box. Run here in one process (``NUM_PROCESSES = 1``, no parallel root LPs, BLAS on one thread),
with no overapproximation (``TRY_QUICK_OVERAPPROX = False``, ``OVERAPPROX_TYPES = []``); LPs are
GLPK's, in float64. The count is ``Result.total_stars``.

NET.npz holds W0, b0, W1, b1, ... (W of shape (out, in)), every layer followed by a ReLU and no
head. Prints one JSON line {"regions": N, "seconds": T, "lps": L, "result": R}: T covers
``enumerate_network`` (not imports, building the network, or the multiprocessing manager nnenum
starts for its result object); R is nnenum's result string ("none" when it finished, "timeout"
when ``--timeout`` stopped it: then N is a lower bound).
"""

import argparse
import contextlib
import json
import multiprocessing
import os
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
from relu_npz import load_relu_layers


def load(path):
    return load_relu_layers(path, np.float64, "nnenum runner")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("net")
    parser.add_argument("--box-dim", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=np.inf)
    args = parser.parse_args()

    from nnenum.enumerate import enumerate_network
    from nnenum.network import FullyConnectedLayer, NeuralNetwork, ReluLayer
    from nnenum.result import Result
    from nnenum.settings import Settings
    from threadpoolctl import threadpool_limits

    layers = load(args.net)
    d = layers[0][0].shape[1]
    if args.box_dim is not None and args.box_dim != d:
        sys.exit(f"--box-dim {args.box_dim} but the network has {d} inputs")
    nn_layers = []
    for W, b in layers:
        nn_layers.append(FullyConnectedLayer(len(nn_layers), W, b))
        nn_layers.append(ReluLayer(len(nn_layers), (W.shape[0],)))
    network = NeuralNetwork(nn_layers)
    init_box = np.array([[-1.0, 1.0]] * d, dtype=np.float64)

    Settings.NUM_PROCESSES = 1
    Settings.PARALLEL_ROOT_LP = False
    Settings.NUM_LP_PROCESSES = 1
    Settings.BRANCH_MODE = Settings.BRANCH_EXACT
    Settings.TRY_QUICK_OVERAPPROX = False
    Settings.SINGLE_SET = False
    Settings.OVERAPPROX_TYPES = []
    Settings.OVERAPPROX_TYPES_NEAR_ROOT = []
    Settings.RESULT_SAVE_STARS = False
    Settings.RESULT_SAVE_POLYS = False
    Settings.TIMING_STATS = False
    Settings.PRINT_PROGRESS = False
    Settings.PRINT_OUTPUT = False
    Settings.TIMEOUT = args.timeout

    if Result.manager is None:            # a server process nnenum starts on its first Result
        Result.manager = multiprocessing.Manager()
    with threadpool_limits(limits=1), contextlib.redirect_stdout(sys.stderr):
        t0 = time.perf_counter()
        res = enumerate_network(init_box, network, spec=None)
        seconds = time.perf_counter() - t0
    print(json.dumps({"regions": int(res.total_stars), "seconds": round(seconds, 4),
                      "lps": int(res.total_lps), "result": res.result_str}), flush=True)


if __name__ == "__main__":
    main()
