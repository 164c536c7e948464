"""Exact region counts of ACAS Xu networks over shrunk VNN-LIB input boxes.

    python benchmarks/bench_acasxu.py [--budget 600] [--factors 0.02,0.05,0.1,0.25,0.5,1]
        [--data ../shared/data/acasxu] [--json OUT]

For each (network, property) pair of the issue -- 1_1 with prop_1, 1_9 with prop_7, 3_3 with
prop_9 -- the property's input box is shrunk around its centre by each factor in turn and its
regions are counted exactly (engine="auto": the vertex engine for these 5 inputs); a pair
stops once its ``--budget`` seconds are spent, the interrupted count being reported as a lower
bound.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import common  # noqa: F401  (one BLAS thread)

import powercells as pc

PAIRS = [("ACASXU_run2a_1_1_batch_2000.onnx", "prop_1.vnnlib"),
         ("ACASXU_run2a_1_9_batch_2000.onnx", "prop_7.vnnlib"),
         ("ACASXU_run2a_3_3_batch_2000.onnx", "prop_9.vnnlib")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per pair")
    parser.add_argument("--factors", default="0.02,0.05,0.1,0.25,0.5,1")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared"
                                              / "data" / "acasxu"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    factors = [float(f) for f in args.factors.split(",")]
    rows = []
    for net_name, prop_name in PAIRS:
        network = pc.load(Path(args.data) / net_name)
        box = pc.read_vnnlib(Path(args.data) / prop_name).regions[0].domain
        centre, half = (box.lo + box.hi) / 2, (box.hi - box.lo) / 2
        spent = 0.0
        for f in factors:
            left = args.budget - spent
            if left <= 0:
                break
            sub = pc.Box(centre - f * half, centre + f * half)
            t0 = time.perf_counter()
            counts = pc.count_regions(network, sub, time_limit=left)
            seconds = time.perf_counter() - t0
            spent += seconds
            row = {"network": net_name.split("_batch")[0], "property": prop_name, "factor": f,
                   "regions": counts.regions, "per_layer": counts.per_layer,
                   "seconds": round(seconds, 2), "partial": counts.partial}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| network | property | box factor | regions | seconds |")
    print("|---|---|---|---|---|")
    for r in rows:
        regions = f">= {r['regions']:,} (budget)" if r["partial"] else f"{r['regions']:,}"
        print(f"| {r['network']} | {r['property']} | {r['factor']} | {regions} | "
              f"{r['seconds']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
