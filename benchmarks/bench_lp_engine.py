"""The lp engine against the brute-force enumerator and relucent, on the same networks, in one run.

    python benchmarks/bench_lp_engine.py [--runs 3] [--nets d4,d8,d2] [--no-brute]
                                         [--relucent-python PATH] [--json OUT]

Networks: He-initialised weights, biases N(0, 0.1^2), seed 0, box [-1, 1]^d:
d=4 [16,16], d=8 [10,10], d=2 [32,32,32]. The lp engine runs ``--runs`` times (median); the
brute-force enumerator (powercells.testing, one scipy LP per candidate pattern) runs once, as it
is slow, and its leaf code set must equal the engine's. relucent runs in its own environment
(benchmarks/peers/relucent_runner.py) when ``--relucent-python`` names its interpreter.
``engine="auto"`` (what ``powercells count`` uses: planar in 2-D, vertex in 3-9-D) is timed
too, after one warm-up call (the compiled splitter's load), with its code set checked.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import he_network, median_time, save_npz

import powercells as pc
from powercells.testing import brute_force_regions, leaf_code_set

NETS = {"d4": (4, [16, 16]), "d8": (8, [10, 10]), "d2": (2, [32, 32, 32])}
HERE = Path(__file__).resolve().parent


def run_relucent(python, network, tmp, timeout):
    path = Path(tmp) / "net.npz"
    save_npz(network, path)
    # one worker process: every tool here runs on one core
    try:
        proc = subprocess.run([python, str(HERE / "peers" / "relucent_runner.py"), str(path),
                               "-1", "1", "1"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nets", default="d4,d8,d2")
    parser.add_argument("--no-brute", action="store_true")
    parser.add_argument("--relucent-python", default=None)
    parser.add_argument("--relucent-timeout", type=float, default=3600.0,
                        help="seconds before relucent is stopped and reported as '> T'")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    rows = []
    for name in args.nets.split(","):
        d, widths = NETS[name]
        network = he_network(d, widths)
        box = pc.Box(-1, 1, dim=d)
        def count(engine, network=network, box=box):
            return pc.count_regions(network, box, engine=engine)

        seconds, counts = median_time(lambda: count("lp"), args.runs)
        row = {"net": f"d={d} {widths}", "regions": counts.regions, "per_layer": counts.per_layer,
               "lp_seconds": seconds, "lps": counts.stats["lps"],
               "lps_per_region": counts.stats["lps"] / max(counts.regions, 1)}
        print(f"{row['net']}: lp engine {counts.regions} regions, median {seconds:.2f} s of "
              f"{args.runs}, {row['lps_per_region']:.2f} LPs/region", flush=True)
        count("auto")                                        # warm-up (compiled code load)
        auto_seconds, auto = median_time(lambda: count("auto"), args.runs)
        row.update(auto_seconds=auto_seconds, auto_engine=auto.engine,
                   auto_same=auto.per_layer == counts.per_layer)
        print(f"  auto ({auto.engine}) {auto.regions} regions, median {auto_seconds:.3f} s",
              flush=True)
        if not args.no_brute:
            tree = pc.subdivide(network, box, engine="lp")
            t0 = time.perf_counter()
            brute = brute_force_regions(network, box)
            row["brute_seconds"] = time.perf_counter() - t0
            row["brute_regions"] = brute.regions
            row["brute_lps_per_region"] = brute.lps / max(brute.regions, 1)
            row["identical"] = (leaf_code_set(tree) == brute.codes
                                and leaf_code_set(pc.subdivide(network, box)) == brute.codes)
            row["brute_ratio"] = row["brute_seconds"] / seconds
            row["brute_auto_ratio"] = row["brute_seconds"] / auto_seconds
            print(f"  brute force {brute.regions} regions in {row['brute_seconds']:.1f} s "
                  f"(identical code sets: {row['identical']}); ratio {row['brute_ratio']:.0f}x",
                  flush=True)
        if args.relucent_python:
            with tempfile.TemporaryDirectory() as tmp:
                rel = run_relucent(args.relucent_python, network, tmp, args.relucent_timeout)
            row["relucent"] = rel
            if "seconds" in rel:
                row["relucent_ratio"] = rel["seconds"] / seconds
                print(f"  relucent {rel['regions']} regions in {rel['seconds']:.1f} s; ratio "
                      f"{row['relucent_ratio']:.1f}x", flush=True)
            elif "timeout" in rel:
                row["relucent_ratio_lower"] = rel["timeout"] / seconds
                print(f"  relucent did not finish in {rel['timeout']:.0f} s; ratio > "
                      f"{row['relucent_ratio_lower']:.0f}x", flush=True)
            else:
                print(f"  relucent: {rel}", flush=True)
        rows.append(row)

    print("\n| network | regions | lp engine (s, median) | LPs/region | auto (s, median) | "
          "brute force (s) | brute / lp | brute / auto | relucent (s) | relucent / lp |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        brute = (f"{r['brute_seconds']:.1f}" if "brute_seconds" in r else "-")
        ratio = (f"{r['brute_ratio']:.0f}x" if "brute_ratio" in r else "-")
        rel = r.get("relucent", {})
        rel_s, rel_r = "-", "-"
        if "seconds" in rel:
            rel_s, rel_r = f"{rel['seconds']:.1f} ({rel['regions']})", f"{r['relucent_ratio']:.1f}x"
        elif "timeout" in rel:
            rel_s, rel_r = f"> {rel['timeout']:.0f}", f"> {r['relucent_ratio_lower']:.0f}x"
        auto_ratio = f"{r['brute_auto_ratio']:,.0f}x" if "brute_auto_ratio" in r else "-"
        print(f"| {r['net']} | {r['regions']} | {r['lp_seconds']:.2f} | "
              f"{r['lps_per_region']:.2f} | {r['auto_seconds']:.3f} ({r['auto_engine']}) | "
              f"{brute} | {ratio} | {auto_ratio} | {rel_s} | {rel_r} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    bad = [r["net"] for r in rows if r.get("identical") is False or not r["auto_same"]]
    if bad:
        print(f"MISMATCH with the brute-force enumerator on {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
