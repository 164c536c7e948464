"""The vertex engine against the lp engine and the brute-force enumerator, on the same networks.

    python benchmarks/bench_vertex.py [--runs 3] [--nets d3,d4,d6,d7,d8] [--no-brute] [--json OUT]

Networks (issue 7): He-initialised weights, biases N(0, 0.5^2), seed 0, box [-1, 1]^d:
d=3 [16,16], d=4 [16,16], d=6 [10,10], d=7 [10,10], d=8 [10,10] (engine="auto" uses the
vertex engine up to d=8, where the two engines are within 1.5x). Both engines count regions ``--runs`` times
(median); the brute-force enumerator (powercells.testing, one scipy LP per candidate pattern)
runs once, as it is slow. The three leaf code sets must be identical (checked on the trees).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import he_network, median_time

import powercells as pc
from powercells.testing import brute_force_regions, leaf_code_set

NETS = {"d2": (2, [32, 32, 32]), "d3": (3, [16, 16]), "d4": (4, [16, 16]),
        "d5": (5, [12, 12]), "d6": (6, [10, 10]), "d7": (7, [10, 10]), "d8": (8, [10, 10])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nets", default="d3,d4,d6,d7,d8")
    parser.add_argument("--no-brute", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    rows = []
    for name in args.nets.split(","):
        d, widths = NETS[name]
        network = he_network(d, widths, bias=0.5)
        box = pc.Box(-1, 1, dim=d)
        row = {"net": f"d={d} {widths}"}
        for engine in ("vertex", "lp"):
            seconds, counts = median_time(
                lambda: pc.count_regions(network, box, engine=engine), args.runs)
            row[engine] = seconds
            row[f"{engine}_regions"] = counts.regions
            print(f"{row['net']}: {engine} {counts.regions} regions {counts.per_layer}, median "
                  f"{seconds:.3f} s of {args.runs}", flush=True)
        row["regions"] = row["vertex_regions"]
        row["lp_over_vertex"] = row["lp"] / row["vertex"]
        vertex_codes = leaf_code_set(pc.subdivide(network, box, engine="vertex"))
        lp_codes = leaf_code_set(pc.subdivide(network, box, engine="lp"))
        row["identical"] = vertex_codes == lp_codes
        if not args.no_brute:
            t0 = time.perf_counter()
            brute = brute_force_regions(network, box)
            row["brute"] = time.perf_counter() - t0
            row["identical"] = row["identical"] and brute.codes == vertex_codes
            row["brute_over_vertex"] = row["brute"] / row["vertex"]
            row["brute_over_lp"] = row["brute"] / row["lp"]
            print(f"  brute force {brute.regions} regions in {row['brute']:.1f} s", flush=True)
        print(f"  identical code sets: {row['identical']}", flush=True)
        rows.append(row)

    print("\n| network | regions | vertex (s) | lp (s) | lp / vertex | brute force (s) | "
          "brute / vertex | brute / lp |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        brute = f"{r['brute']:.1f}" if "brute" in r else "-"
        bv = f"{r['brute_over_vertex']:.0f}x" if "brute" in r else "-"
        bl = f"{r['brute_over_lp']:.0f}x" if "brute" in r else "-"
        print(f"| {r['net']} | {r['regions']:,} | {r['vertex']:.3f} | {r['lp']:.2f} | "
              f"{r['lp_over_vertex']:.1f}x | {brute} | {bv} | {bl} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    bad = [r["net"] for r in rows if not r["identical"] or r["lp_regions"] != r["regions"]]
    if bad:
        print(f"MISMATCH between engines on {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
