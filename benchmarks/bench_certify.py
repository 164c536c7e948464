"""Exact means exact: thin regions in the default path, and the certified mode's cost, in one run.

    python benchmarks/bench_certify.py [--runs 3] [--cases thin,default,degenerate,certify,settle,lower]
        [--baseline-src PATH] [--certify-limit 300] [--json OUT]

Cases (every measurement is a fresh ``powercells count`` process, as users run it; the time is
the one the command reports):

* ``thin``: the default path on a He-initialised 2 -> [256]x3 net (biases N(0, 0.1^2), seed 0)
  over [-1, 1]^2 and ACAS Xu 1_9 over prop_7 shrunk to 0.2x its box: counts, thin regions and
  undecided cells (the cells float64 cannot settle are settled exactly and counted).
* ``default``: the default path against an older checkout (``--baseline-src``, the ``src``
  folder of e.g. ``git worktree add /tmp/before b10c1db``) on the 2-D net above and ACAS Xu 1_1
  prop_1 (39,835 regions): the exact settling of thin cells must cost (almost) nothing where
  there are none. Target: no more than 5% slower.
* ``degenerate``: integer networks (weights and biases in {-1, 0, 1}) over [-2, 2]^d with the
  planar and vertex engines in this process, against the baseline: the engines report the cells
  where a vertex came within their ``empty`` tolerance of a hyperplane, which is everywhere
  here, and each is cleared by exact incidence. The counts must not change; the time is what
  that check costs.
* ``certify``: ``--certify`` against the default on 2-D nets of growing width and on ACAS Xu 1_1
  prop_1 under ``--time-limit`` (``--certify-limit`` seconds), taking turns, medians of
  ``--runs``: the counts where it finishes, the engine it took, the regions per second of both,
  the ratio. Target: ``--certify`` <= 2x the default.
* ``settle``: ACAS Xu 1_9 over prop_7 shrunk to 0.2x with ``--certify`` (one run): the exact
  count of the stored network, which nnenum reports as 863,542.

* ``lower``: ACAS Xu 1_9 over prop_7 shrunk to 0.2x: every leaf's interior point certified in
  its code path's open cell (``powercells.network.certified``: float64 with a rigorous error
  bound, exact rationals where it cannot decide), and the code paths checked distinct: a proof
  that the exact count is at least the number of certified leaves (nnenum reports 863,542).

ACAS Xu files are read from ``../shared/data/acasxu`` (or ``data/acasxu``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_scale import acas_dir, interleaved_runs, median_runs, run  # noqa: E402
from common import he_network, save_npz  # noqa: E402


def _net_file(width, folder, seed=0):
    path = Path(folder) / f"he2_w{width}.npz"
    if not path.exists():
        save_npz(he_network(2, [width] * 3, seed=seed), path)
    return path


def _shrunk_prop7(folder):
    """ACAS Xu prop_7's box shrunk to 0.2x about its centre, as a domain file."""
    import numpy as np

    from powercells.io.vnnlib import read_vnnlib

    box = read_vnnlib(acas_dir() / "prop_7.vnnlib").regions[0].domain
    lo, hi = box.bounds()
    c, r = (lo + hi) / 2, (hi - lo) / 2 * 0.2
    path = Path(folder) / "prop7_0.2.npz"
    np.savez(path, lo=c - r, hi=c + r)
    return path


def case_thin(runs, report, folder):
    D = acas_dir()
    rows = {}
    for label, args in [
        ("2-D [256]x3", [_net_file(256, folder), "--box", "-1", "1"]),
        ("ACAS 1_9 prop_7 x0.2", [D / "ACASXU_run2a_1_9_batch_2000.onnx", "--domain",
                                  _shrunk_prop7(folder)]),
    ]:
        out, secs, _ = median_runs(args, runs)
        rows[label] = {"regions": out["regions"], "thin": out["thin"],
                       "undecided": out["undecided"], "seconds": secs}
        print(f"  {label:24s} regions {out['regions']:>9,}  thin {out['thin']}  undecided "
              f"{out['undecided']}  {secs:.2f} s", flush=True)
    report["thin"] = rows


def case_default(runs, report, folder, baseline_src):
    if baseline_src is None:
        print("  skipped: give --baseline-src (the src folder of an older checkout)")
        return
    D = acas_dir()
    rows = {}
    for label, args in [
        ("2-D [256]x3", [_net_file(256, folder), "--box", "-1", "1"]),
        ("ACAS 1_1 prop_1", [D / "ACASXU_run2a_1_1_batch_2000.onnx", "--vnnlib",
                             D / "prop_1.vnnlib"]),
    ]:
        # the two take turns (this machine's speed drifts over minutes)
        timed = interleaved_runs({"now": (args + ["--workers", "1"], None),
                                  "before": (args + ["--workers", "1"], baseline_src)}, runs)
        now, before = timed["now"], timed["before"]
        ratio = now[1] / before[1]
        rows[label] = {"now": now[1], "before": before[1], "ratio": ratio,
                       "regions_now": now[0]["regions"], "regions_before": before[0]["regions"]}
        print(f"  {label:18s} now {now[1]:.3f} s ({now[0]['regions']:,} regions), before "
              f"{before[1]:.3f} s ({before[0]['regions']:,}): {ratio:.3f}x (target <= 1.05x)",
              flush=True)
    report["default"] = rows


def _integer_net_file(d, widths, folder, seed=0):
    """A network with weights and biases in {-1, 0, 1}: vertices on several hyperplanes
    everywhere (the engines' doubts, all cleared by exact incidence)."""
    import numpy as np

    import powercells as pc

    path = Path(folder) / f"int_d{d}_{'x'.join(map(str, widths))}_{seed}.npz"
    if not path.exists():
        rng = np.random.default_rng(seed)
        dims = [d] + list(widths)
        save_npz(pc.Network.from_weights(
            [(rng.integers(-1, 2, size=(dims[i + 1], dims[i])).astype(float),
              rng.integers(-1, 2, size=dims[i + 1]).astype(float))
             for i in range(len(widths))], ["relu"] * len(widths)), path)
    return path


def case_degenerate(runs, report, folder, baseline_src):
    """Integer networks over [-2, 2]^d: what the doubts cost where they are everywhere."""
    if baseline_src is None:
        print("  skipped: give --baseline-src (the src folder of an older checkout)")
        return
    rows = {}
    for d, widths, engine in [(2, [32, 32, 32], "planar"), (2, [64, 64, 64], "planar"),
                              (3, [12, 12], "vertex"), (4, [10, 10], "vertex")]:
        label = f"{d}-D {widths} {engine}"
        args = [_integer_net_file(d, widths, folder), "--box", "-2", "2", "--engine", engine,
                "--workers", "0"]
        now = median_runs(args, runs)
        before = median_runs(args, runs, src=baseline_src)
        ratio = now[1] / before[1]
        rows[label] = {"now": now[1], "before": before[1], "ratio": ratio,
                       "per_layer_now": now[0]["per_layer"],
                       "per_layer_before": before[0]["per_layer"]}
        print(f"  {label:26s} now {now[1]:.3f} s {now[0]['per_layer']}, before "
              f"{before[1]:.3f} s {before[0]['per_layer']}: {ratio:.2f}x", flush=True)
    report["degenerate"] = rows


def case_certify(runs, report, folder, limit):
    D = acas_dir()
    rows = {}
    cases = [(f"2-D [{w}]x3", [_net_file(w, folder), "--box", "-1", "1"])
             for w in (16, 32, 64, 128, 160)]
    cases.append(("ACAS 1_1 prop_1", [D / "ACASXU_run2a_1_1_batch_2000.onnx", "--vnnlib",
                                      D / "prop_1.vnnlib"]))
    for label, args in cases:
        # the two take turns (this machine's speed drifts over minutes)
        timed = interleaved_runs({
            "default": (args + ["--workers", "1"], None),
            "certify": (args + ["--certify", "--workers", "1", "--time-limit", str(limit)],
                        None)}, runs)
        (default, d_secs, _), (certified, c_secs, _) = timed["default"], timed["certify"]
        d_rate = default["regions"] / max(d_secs, 1e-9)
        c_rate = certified["regions"] / max(c_secs, 1e-9)
        done = not certified["partial"]
        same = done and certified["per_layer"] == default["per_layer"]
        rows[label] = {"default_seconds": d_secs, "default_regions": default["regions"],
                       "certify_seconds": c_secs, "certify_engine": certified["engine"],
                       "certify_regions": certified["regions"], "finished": done,
                       "same_count": same, "rate_ratio": d_rate / c_rate if c_rate else None}
        status = (f"{c_secs:.2f} s ({certified['engine']}), counts "
                  f"{'agree' if same else 'DIFFER'}"
                  if done else f"stopped at {limit} s with {certified['regions']:,} regions")
        print(f"  {label:18s} default {d_secs:.3f} s ({default['regions']:,} regions); "
              f"--certify {status}; regions/s {d_rate:,.0f} vs {c_rate:,.0f}: "
              f"{d_rate / c_rate if c_rate else float('inf'):.2f}x (target <= 2x)", flush=True)
    report["certify"] = rows


def case_settle(report, folder):
    """ACAS Xu 1_9 over prop_7 shrunk to 0.2x, with ``--certify`` (one run)."""
    D = acas_dir()
    args = [D / "ACASXU_run2a_1_9_batch_2000.onnx", "--domain", _shrunk_prop7(folder)]
    out, wall, peak = run(args + ["--certify"])
    print(f"  ACAS 1_9 prop_7 x0.2 --certify: {out['regions']:,} regions ({out['engine']}), "
          f"per layer {out['per_layer']}, thin {out['thin']}, undecided {out['undecided']}, "
          f"{out['seconds']:.1f} s, peak {peak:.0f} MB", flush=True)
    report["settle"] = {**out, "wall": wall, "peak_mb": peak}


def case_lower(report):
    import time

    import numpy as np

    import powercells as pc
    from powercells.io.vnnlib import read_vnnlib
    from powercells.network.certified import certified_codes

    D = acas_dir()
    net = pc.load(D / "ACASXU_run2a_1_9_batch_2000.onnx")
    box = read_vnnlib(D / "prop_7.vnnlib").regions[0].domain
    lo, hi = box.bounds()
    c, r = (lo + hi) / 2, (hi - lo) / 2 * 0.2
    domain = pc.Box(c - r, c + r)
    tally = {"leaves": 0, "filter": 0, "exact": 0, "boundary": 0, "mismatch": 0}
    paths = set()
    t0 = time.perf_counter()

    def emit(chunk):
        codes, status = certified_codes(net, domain.to_input(chunk.interior_point))
        tally["leaves"] += len(status)
        tally["filter"] += int(np.sum(status == 1))
        tally["exact"] += int(np.sum(status == 2))
        tally["boundary"] += int(np.sum(status == 0))
        tally["mismatch"] += int(np.sum(np.any(np.hstack(codes) != chunk.codes, axis=1)
                                        & (status > 0)))
        paths.update(row.tobytes() for row in np.ascontiguousarray(chunk.codes))

    result = pc.stream_leaves(net, domain, emit)
    proven = tally["filter"] + tally["exact"] - tally["mismatch"]
    distinct = len(paths) == tally["leaves"]
    print(f"  ACAS 1_9 prop_7 x0.2: {result.regions:,} leaves, {tally['filter']:,} certified by "
          f"the filter, {tally['exact']:,} exactly, {tally['boundary']} on a boundary, "
          f"{tally['mismatch']} codes differ; paths distinct: {distinct}; exact count >= "
          f"{proven if distinct else 'n/a'} ({time.perf_counter() - t0:.0f} s)", flush=True)
    report["lower"] = {**tally, "regions": result.regions, "distinct": distinct,
                       "proven_lower_bound": proven if distinct else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", default="thin,default,certify,lower")
    parser.add_argument("--baseline-src", default=None)
    parser.add_argument("--certify-limit", type=float, default=300.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    report = {}
    cases = args.cases.split(",")
    with tempfile.TemporaryDirectory() as folder:
        if "thin" in cases:
            print("thin regions in the default path:")
            case_thin(args.runs, report, folder)
        if "default" in cases:
            print("the default path against the baseline (one process):")
            case_default(args.runs, report, folder, args.baseline_src)
        if "degenerate" in cases:
            print("integer networks, the default path against the baseline (this process):")
            case_degenerate(args.runs, report, folder, args.baseline_src)
        if "certify" in cases:
            print("--certify against the default (one process):")
            case_certify(args.runs, report, folder, args.certify_limit)
        if "settle" in cases:
            print("ACAS Xu 1_9 prop_7 at 0.2x, certified:")
            case_settle(report, folder)
        if "lower" in cases:
            print("a certified lower bound from the leaves' interior points:")
            case_lower(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
