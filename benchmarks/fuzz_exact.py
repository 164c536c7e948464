"""Fuzz every float engine against the certified mode on small near-degenerate networks.

    python benchmarks/fuzz_exact.py [--seed 1] [--seconds 60] [--maxout] [--save DIR]
        [--recipe {integer,near-copies}]
    python benchmarks/fuzz_exact.py --check DIR/case.npz

Not a benchmark: a search for networks where an engine's per-layer count differs from
``certify=True`` (exact rational arithmetic, which agrees with the Fourier-Motzkin brute force of
``tests/test_exact.py`` on every case checked so far). The networks are what breaks float
predicates: d = 1..3, one to three layers of two to four units, integer weights and biases, some
of them moved by 1e-13 or 2^-45, some units duplicated or scaled by fl(0.1) so that their rows
cancel to a few ulps. ``--maxout`` mixes maxout layers (two and three pieces) in.

``--recipe near-copies`` breaks LP solvers instead: d = 2..5, a first layer of three units each
with two or three near-copies (weights and bias moved by noise 1e-10..1e-6), a second layer of
near-copies of two units, then three random units; the lp engine runs on both LP backends
(``lp:highs``, ``lp:dense``). It found regions dropped behind LP verdicts of "empty" and
solver failures that aborted counts (tests in ``tests/test_crosscheck.py``).

Each disagreement is printed and saved as an ``.npz`` (weights, activations) in ``--save``; the
summary line gives the runs and disagreements per engine. ``--check FILE`` reruns one saved case
and prints every engine's per-layer count beside the certified one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import powercells as pc
from powercells.testing import near_copies_weights

ACTIVATIONS = ["relu", "abs", "leaky_relu:0.5"]


def random_network(rng, *, maxout=False):
    """``(weights, activations, d)`` of a small network built to sit near degeneracy."""
    d = int(rng.integers(1, 4))
    depth = int(rng.integers(1, 4))
    weights, acts, width = [], [], d
    for _ in range(depth):
        units = int(rng.integers(2, 5))
        act = str(rng.choice(ACTIVATIONS + (["maxout:2", "maxout:3"] if maxout else [])))
        rows = units * (int(act.split(":")[1]) if act.startswith("maxout") else 1)
        W = rng.integers(-3, 4, size=(rows, width)).astype(float)
        b = rng.integers(-2, 3, size=rows).astype(float)
        trick = rng.integers(0, 5)
        if trick == 1:                        # a hyperplane moved by a hair
            i = rng.integers(rows)
            b[i] += float(rng.choice([1e-13, -1e-13, 2.0 ** -45, -(2.0 ** -45)]))
        elif trick == 2 and rows > 1:         # a duplicated (or negated) row
            i, j = rng.choice(rows, 2, replace=False)
            s = float(rng.choice([1.0, -1.0, 2.0]))
            W[j], b[j] = s * W[i], s * b[i]
        elif trick == 3 and rows > 1:         # 3 * fl(0.1) against fl(0.3): a few ulps apart
            i, j = rng.choice(rows, 2, replace=False)
            W[i], b[i] = 0.1 * W[j], 0.1 * b[j]
            W[i] *= 3.0
            b[i] *= 3.0
            W[j] *= 0.3
            b[j] *= 0.3
        elif trick == 4:                      # a weight moved by a hair
            i, k = rng.integers(rows), rng.integers(width)
            W[i, k] += float(rng.choice([1e-13, 2.0 ** -45]))
        weights.append((W, b))
        acts.append(act)
        width = units
    return weights, acts, d


def near_copies_network(rng, *, maxout=False):
    """``(weights, activations, d)``: nearly parallel hyperplanes (see the module docstring)."""
    d = int(rng.integers(2, 6))
    noise = float(rng.choice([1e-10, 1e-9, 1e-8, 1e-7, 1e-6]))
    act = str(rng.choice(ACTIVATIONS))
    return near_copies_weights(rng, d, noise), [act] * 3, d


RECIPES = {"integer": random_network, "near-copies": near_copies_network}


def engines_for(d):
    lps = ["lp:highs"] + (["lp:dense"] if importlib.util.find_spec("numba") else [])
    return {1: ["interval"], 2: ["planar"]}.get(d, []) + ["vertex"] + lps


def counts(weights, acts, d):
    """``{engine: per_layer}`` for every float engine and ``"certify"``; an exception is kept
    as its message."""
    net = pc.Network.from_weights(weights, acts)
    box = pc.Box(-1, 1, dim=d)
    out = {}
    for engine in ["certify"] + engines_for(d):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if engine == "certify":
                    r = pc.count_regions(net, box, certify=True, executor="serial")
                elif engine.startswith("lp:"):
                    r = pc.count_regions(net, box, engine="lp", lp=engine[3:],
                                         executor="serial")
                else:
                    r = pc.count_regions(net, box, engine=engine, executor="serial")
            out[engine] = list(r.per_layer)
        except pc.PowercellsError as exc:
            out[engine] = f"{type(exc).__name__}: {exc}"
    return out


def save_case(folder, name, weights, acts, d):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {f"W{i}": W for i, (W, _) in enumerate(weights)}
    arrays.update({f"b{i}": b for i, (_, b) in enumerate(weights)})
    np.savez(folder / f"{name}.npz", acts=np.array(acts), d=d, **arrays)


def load_case(path):
    data = np.load(path)
    acts = [str(a) for a in data["acts"]]
    weights = [(data[f"W{i}"], data[f"b{i}"]) for i in range(len(acts))]
    return weights, acts, int(data["d"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--maxout", action="store_true", help="mix maxout layers in")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="integer",
                        help="which networks (see the module docstring)")
    parser.add_argument("--save", type=Path, default=Path("fuzz_cases"))
    parser.add_argument("--check", type=Path, help="rerun one saved case")
    args = parser.parse_args(argv)

    if args.check:
        weights, acts, d = load_case(args.check)
        print(f"d={d} activations={acts}")
        for i, (W, b) in enumerate(weights):
            print(f"layer {i + 1}: W={W.tolist()} b={b.tolist()}")
        print(json.dumps(counts(weights, acts, d), indent=1))
        return 0

    rng = np.random.default_rng(args.seed)
    runs, wrong = {}, {}
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < args.seconds:
        weights, acts, d = RECIPES[args.recipe](rng, maxout=args.maxout)
        got = counts(weights, acts, d)
        n += 1
        want = got.pop("certify")
        if isinstance(want, str):
            print(f"case {n}: certify failed: {want}")
            continue
        bad = []
        for engine, per_layer in got.items():
            runs[engine] = runs.get(engine, 0) + 1
            if per_layer != want:
                wrong[engine] = wrong.get(engine, 0) + 1
                bad.append(f"{engine} {per_layer}")
        if bad:
            name = f"s{args.seed}_{n}"
            save_case(args.save, name, weights, acts, d)
            print(f"{name}: d={d} {acts} certify {want}; " + "; ".join(bad), flush=True)
    total = sum(runs.values())
    print(f"{n} networks, {total} engine runs, {sum(wrong.values())} disagree: "
          + ", ".join(f"{e} {wrong.get(e, 0)}/{runs[e]}" for e in sorted(runs)))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
