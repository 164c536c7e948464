"""The vertex engine against the lp engine and the brute-force enumerator, on the same networks.

    python benchmarks/bench_vertex.py [--runs 3] [--nets d3,d4,d6,d7,d8] [--no-brute]
                                      [--columns compiled_1t,compiled_2t,numpy,lp] [--json OUT]

Networks: He-initialised weights, biases N(0, 0.5^2), seed 0, box [-1, 1]^d:
d=3 [16,16], d=4 [16,16], d=6 [10,10], d=7 [10,10], d=8 [10,10]. The vertex engine runs on its
compiled path (numba) in one thread and in the default thread count (the CPUs available), and
on its numpy path (engine option ``compiled=False``); then the lp engine. Each
counts regions ``--runs`` times (median; the compiled path's one-time load is outside the
timing and printed apart); the brute-force enumerator (powercells.testing, one scipy LP per
candidate pattern) runs once, as it is slow. The leaf code sets of all must be identical
(checked on the trees). ``--nets d9,d10 --no-brute --columns compiled_2t,lp`` measures the
crossover that ``engine="auto"`` uses with the compiled splitter.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import he_network, median_time

import powercells as pc
from powercells.enumerate import EngineOptions, engine_defaults
from powercells.testing import brute_force_regions, leaf_code_set

NETS = {"d2": (2, [32, 32, 32]), "d3": (3, [16, 16]), "d4": (4, [16, 16]),
        "d5": (5, [12, 12]), "d6": (6, [10, 10]), "d7": (7, [10, 10]), "d8": (8, [10, 10]),
        "d9": (9, [10, 10]), "d10": (10, [10, 10])}


def _variants():
    """(column, engine, engine options) for every timed configuration."""
    threads = EngineOptions().resolved_threads
    out = []
    try:
        import numba  # noqa: F401
        out.append(("compiled_1t", "vertex", {"compiled": True, "threads": 1}))
        if threads > 1:
            out.append((f"compiled_{threads}t", "vertex",
                        {"compiled": True, "threads": threads}))
    except ImportError:
        print("numba is not installed: the compiled path is not timed", file=sys.stderr)
    out.append(("numpy", "vertex", {"compiled": False}))
    out.append(("lp", "lp", {}))
    return out


def _with_env(values, fn):
    with engine_defaults(**values):
        return fn()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nets", default="d3,d4,d6,d7,d8")
    parser.add_argument("--no-brute", action="store_true")
    parser.add_argument("--columns", default=None,
                        help="comma-separated subset of the timed configurations")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    variants = _variants()
    if args.columns:
        wanted = args.columns.split(",")
        variants = [v for v in variants if v[0] in wanted]
    rows = []
    for name in args.nets.split(","):
        d, widths = NETS[name]
        network = he_network(d, widths, bias=0.5)
        box = pc.Box(-1, 1, dim=d)
        row = {"net": f"d={d} {widths}"}
        codes = []
        for column, engine, values in variants:
            def count(network=network, box=box, engine=engine):
                return pc.count_regions(network, box, engine=engine)

            def tree(network=network, box=box, engine=engine):
                return leaf_code_set(pc.subdivide(network, box, engine=engine))

            if column.startswith("compiled"):
                t0 = time.perf_counter()
                _with_env(values, count)
                row[f"{column}_first_call"] = time.perf_counter() - t0
            seconds, counts = _with_env(values, lambda count=count: median_time(count, args.runs))
            row[column] = seconds
            row[f"{column}_regions"] = counts.regions
            print(f"{row['net']}: {column} {counts.regions} regions {counts.per_layer}, median "
                  f"{seconds:.3f} s of {args.runs}", flush=True)
            codes.append(_with_env(values, tree))
        row["regions"] = row[f"{variants[0][0]}_regions"]
        row["identical"] = all(c == codes[0] for c in codes) and all(
            row[f"{c}_regions"] == row["regions"] for c, _, _ in variants)
        if not args.no_brute:
            t0 = time.perf_counter()
            brute = brute_force_regions(network, box)
            row["brute"] = time.perf_counter() - t0
            row["identical"] = row["identical"] and brute.codes == codes[0]
            print(f"  brute force {brute.regions} regions in {row['brute']:.1f} s", flush=True)
        print(f"  identical code sets: {row['identical']}", flush=True)
        rows.append(row)

    columns = [c for c, _, _ in variants]
    head = " | ".join(f"{c} (s)" for c in columns)
    ratios = " | ".join(f"brute / {c}" for c in columns)
    print(f"\n| network | regions | {head} | brute force (s) | {ratios} |")
    print("|---|---|" + "---|" * (2 * len(columns) + 1))
    for r in rows:
        times = " | ".join(f"{r[c]:.3f}" for c in columns)
        brute = f"{r['brute']:.1f}" if "brute" in r else "-"
        ratio = " | ".join(f"{r['brute'] / r[c]:,.0f}x" if "brute" in r else "-"
                           for c in columns)
        print(f"| {r['net']} | {r['regions']:,} | {times} | {brute} | {ratio} |")
    firsts = {c: [round(r[f"{c}_first_call"], 2) for r in rows] for c in columns
              if f"{c}_first_call" in rows[0]}
    if firsts:
        print(f"\nfirst call in the process (loads the compiled code), seconds: {firsts}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    bad = [r["net"] for r in rows if not r["identical"]]
    if bad:
        print(f"MISMATCH between engines on {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
