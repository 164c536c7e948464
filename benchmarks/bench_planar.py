"""The planar engine against regioncam on the same 2-D networks, in one run.

    python benchmarks/bench_planar.py [--runs 3] [--nets w64,w128,w256,w512,slice] [--warm]
        [--regioncam-python benchmarks/.venv-regioncam/bin/python] [--mem-limit-gb 16]
        [--json OUT]

Networks: He-initialised weights, biases N(0, 0.1^2), seed 0, every hidden layer ReLU, box
[-1, 1]^2: widths [64]x3, [128]x3, [256]x3, [512]x3 (and [48]x3, 9,636 regions, with
--nets w48); and a plane through three seeded random points of a 64-input [100, 100] network,
slice coordinates in [-1, 1]^2 (regioncam gets the same plane folded into the first layer).

Every measurement runs in a fresh process so that its peak resident memory (maxrss) is its own;
times cover the enumeration only; each tool runs ``--runs`` times and the median is reported.
Both tools run in one thread (``OPENBLAS_NUM_THREADS=1``, ``RAYON_NUM_THREADS=1``; powercells
with ``executor="serial"``). Without ``--warm`` powercells' time is a new process's first count
(what ``powercells count`` does: compiled code is loaded only for large jobs); with ``--warm`` it
is a second count after one with the compiled kernel loaded (what an API user's later calls do).
regioncam runs under an address-space limit (``--mem-limit-gb``) so that running out of memory
is reported instead of taking the machine down.

Counts are compared, and up to [256]x3 so are the activation patterns: regioncam's faces (float32)
against powercells' leaves (float64). Patterns found by only one tool are checked independently
with a float64 Chebyshev LP on the region's polytope (``powercells.testing``), which says which
tool is right.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# one thread per tool (set before numpy loads, inherited by every child): BLAS for powercells'
# matrix products, rayon for regioncam's Rust core
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
NETS = {"w48": 48, "w64": 64, "w128": 128, "w256": 256, "w512": 512, "slice": None}
COMPARE_UP_TO = 256


def build(name):
    """(network, domain, folded 2-D network for peers) for a benchmark name."""
    from common import he_network

    import powercells as pc

    if name == "slice":
        network = he_network(64, [100, 100])
        points = np.random.default_rng(1).normal(size=(3, 64))
        domain = pc.Slice.through_points(points, inner=pc.Box(-1, 1, dim=2))
        return network, domain, domain.network_on(network)
    network = he_network(2, [NETS[name]] * 3)
    return network, pc.Box(-1, 1, dim=2), network


def child(name, warm=False):
    """One powercells count in this process (after an untimed one when ``warm``, as an API
    user's later calls run: compiled kernels loaded): prints JSON."""
    import powercells as pc

    network, domain, _ = build(name)
    if warm:
        pc.count_regions(network, domain, engine="planar", engine_options={"compiled": True},
                         executor="serial")
    t0 = time.perf_counter()
    counts = pc.count_regions(network, domain, engine="planar", executor="serial")
    seconds = time.perf_counter() - t0
    print(json.dumps({"regions": counts.regions, "per_layer": counts.per_layer,
                      "thin": counts.thin, "undecided": counts.undecided,
                      "seconds": round(seconds, 4), "maxrss_mb": peak_rss_mb()}), flush=True)


def peak_rss_mb():
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it does not inherit the
    high-water mark of the process that forked us)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_json(cmd, mem_limit=None, timeout=3600):
    def limit():
        if mem_limit:
            resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))

    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout} s"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:200]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_of(results):
    ok = [r for r in results if "seconds" in r]
    if not ok:
        return results[-1]
    out = dict(ok[-1])
    out["seconds"] = statistics.median(r["seconds"] for r in ok)
    out["maxrss_mb"] = statistics.median(r["maxrss_mb"] for r in ok)
    return out


def save_peer_npz(network, path):
    arrays = {}
    for i, layer in enumerate(network.layers):
        arrays[f"W{i}"] = layer.switch_W
        arrays[f"b{i}"] = layer.switch_b
    np.savez(path, **arrays)


def compare_codes(name, codes_path):
    """Leaf patterns of powercells vs regioncam's faces; disputed patterns settled by an LP."""
    import powercells as pc
    from powercells.testing import _chebyshev, _rows_of_pattern

    network, domain, folded = build(name)
    tree = pc.subdivide(network, domain, engine="planar")
    ours = {tuple(r) for r in tree.leaf_codes().tolist()}
    data = np.load(codes_path)
    # the runner packs each layer's bits separately
    widths = [int(w) for w in data["widths"]]
    per = [np.unpackbits(data["codes"][:, sum((w + 7) // 8 for w in widths[:i]):
                                        sum((w + 7) // 8 for w in widths[:i + 1])],
                         axis=1)[:, :w] for i, w in enumerate(widths)]
    theirs_rows = np.hstack(per)
    theirs = [tuple(int(v) for v in r) for r in theirs_rows]
    distinct = set(theirs)
    only_ours = ours - distinct
    only_theirs = distinct - ours
    box = pc.Box(-1, 1, dim=2)
    tau = 1e-9 * box.diameter

    def genuine(code):
        H, h, _, valid = _rows_of_pattern(folded, box, code)
        if not valid:
            return False, 0.0
        _, r = _chebyshev(H, h, 10.0)
        return bool(r > tau), float(r)

    checked_ours = [genuine(c) for c in list(only_ours)[:50]]
    checked_theirs = [genuine(c) for c in list(only_theirs)[:50]]
    return {
        "powercells_leaves": len(ours), "regioncam_faces": len(theirs),
        "regioncam_distinct_patterns": len(distinct),
        "faces_repeating_a_pattern": len(theirs) - len(distinct),
        "only_powercells": len(only_ours), "only_regioncam": len(only_theirs),
        "only_powercells_genuine": sum(g for g, _ in checked_ours),
        "only_powercells_checked": len(checked_ours),
        "only_powercells_min_inradius": min((r for _, r in checked_ours), default=None),
        "only_regioncam_genuine": sum(g for g, _ in checked_theirs),
        "only_regioncam_checked": len(checked_theirs),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nets", default="w64,w128,w256,w512,slice")
    parser.add_argument("--regioncam-python", default=None)
    parser.add_argument("--mem-limit-gb", type=float, default=16.0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--warm", action="store_true",
                        help="time a second count in each powercells process (compiled "
                             "kernels loaded, as an API user's later calls), not the first")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--compare", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.warm)
        return 0
    if args.compare:
        print(json.dumps(compare_codes(*args.compare)), flush=True)
        return 0

    rows = []
    for name in args.nets.split(","):
        row = {"net": name}
        cmd = [sys.executable, __file__, "--child", name] + (["--warm"] if args.warm else [])
        ours = [run_json(cmd) for _ in range(args.runs)]
        row["powercells"] = median_of(ours)
        print(f"{name}: powercells {row['powercells']}", flush=True)
        if args.regioncam_python:
            _, _, folded = build(name)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "net.npz"
                save_peer_npz(folded, path)
                cmd = [args.regioncam_python, str(HERE / "peers" / "regioncam_runner.py"),
                       str(path)]
                limit = int(args.mem_limit_gb * 2 ** 30)
                theirs = [run_json(cmd, limit) for _ in range(args.runs)]
                row["regioncam"] = median_of(theirs)
                print(f"  regioncam {row['regioncam']}", flush=True)
                width = NETS[name] or 100
                if "seconds" in row["regioncam"] and width <= COMPARE_UP_TO:
                    codes = Path(tmp) / "codes.npz"
                    run_json(cmd + [str(codes)], limit)
                    # in a child too: the parent stays small (children inherit nothing)
                    row["patterns"] = run_json([sys.executable, __file__, "--compare", name,
                                                str(codes)])
                    print(f"  patterns {row['patterns']}", flush=True)
        rows.append(row)

    print("\n| network | powercells regions | regioncam faces | powercells s | regioncam s | "
          "time ratio | powercells MB | regioncam MB | memory ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ours, theirs = r["powercells"], r.get("regioncam", {})
        label = "plane of 64 -> [100, 100]" if r["net"] == "slice" else f"[{NETS[r['net']]}]x3"
        if "seconds" in theirs:
            t_ratio = f"{theirs['seconds'] / ours['seconds']:.2f}x"
            m_ratio = f"{ours['maxrss_mb'] / theirs['maxrss_mb']:.2f}"
            cols = (theirs["regions"], f"{theirs['seconds']:.2f}", t_ratio,
                    theirs["maxrss_mb"], m_ratio)
        else:
            cols = (theirs.get("error", "-"), "-", "-", "-", "-")
        print(f"| {label} | {ours.get('regions')} | {cols[0]} | {ours.get('seconds', 0):.2f} | "
              f"{cols[1]} | {cols[2]} | {ours.get('maxrss_mb')} | {cols[3]} | {cols[4]} |")
    print("\ntime ratio = regioncam seconds / powercells seconds (> 1: powercells faster); "
          "memory ratio = powercells peak / regioncam peak")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
