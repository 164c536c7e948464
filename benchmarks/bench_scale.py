"""Scaling past one process: executors, their overhead, and peak memory, in one run.

    python benchmarks/bench_scale.py [--runs 3] [--cases workers,overhead,memory]
        [--baseline-src PATH] [--json OUT]

Cases (every measurement is a fresh ``powercells count`` process, as users run it; the time is
the one the command reports for its enumeration, the wall time of the process beside it; peak
RSS is the largest of the process and its workers):

* ``workers``: ACAS Xu 3_3 over the whole prop_9 box (338,599 regions) with ``--workers 0``
  (this process only), ``--workers 1`` (with its kernel threads on every CPU, and with
  ``POWERCELLS_THREADS=1``: one CPU's worth), ``--workers 2`` and ``--dask-local 2``; the counts
  must agree, and the ratios one worker / two workers are printed. Configurations compared by a ratio
  (here and in ``overhead``) take turns, run after run, rather than run back to back.
* ``overhead``: ACAS Xu 1_1 over prop_1 (39,835 regions), ``--workers 1`` against the engine
  before tasks existed: ``--baseline-src`` names the ``src`` folder of an older checkout (e.g.
  ``git worktree add /tmp/before d775286``), run with the same interpreter (with
  ``--workers 0`` where that checkout has the option).
* ``memory``: peak RSS in count mode for ~1M-region runs: ACAS Xu 1_9 over prop_7 shrunk to 0.2x
  its box about the centre, and a He-initialised 2 -> [512]x3 net over [-1, 1]^2.

ACAS Xu files are read from ``../shared/data/acasxu`` (or ``data/acasxu``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


def acas_dir() -> Path:
    for cand in (ROOT.parent / "shared" / "data" / "acasxu", ROOT / "data" / "acasxu"):
        if (cand / "ACASXU_run2a_3_3_batch_2000.onnx").exists():
            return cand
    raise SystemExit("ACAS Xu files not found (../shared/data/acasxu)")


_MEASURE = ("import resource, subprocess, sys\n"
            "rc = subprocess.run(sys.argv[1:]).returncode\n"
            "sys.stderr.write(f'\\nPEAK_RSS_KB {resource.getrusage(resource.RUSAGE_CHILDREN)"
            ".ru_maxrss}\\n')\n"
            "sys.exit(rc)")


def run(args, src=None, timeout=7200, env_extra=None):
    """One fresh ``powercells count ... --json`` process: (json, wall seconds, peak RSS MB of
    the largest process of its tree, measured by a parent of its own)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src or ROOT / "src")
    env.update(env_extra or {})
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, "-m",
                           "powercells.cli", "count", *map(str, args), "--json",
                           "--no-progress"], env=env, capture_output=True, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"{args}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    peak = int(proc.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0]) / 1024
    out = json.loads(proc.stdout)
    if "boxes" in out:
        out = out["boxes"][0]
    return out, wall, peak


def median_runs(args, runs, src=None):
    outs = [run(args, src) for _ in range(runs)]
    return (outs[0][0], statistics.median(o[0]["seconds"] for o in outs),
            statistics.median(o[1] for o in outs))


def interleaved_runs(configs, runs):
    """``{label: (json, median seconds, median wall)}`` for ``configs`` (label -> (args,
    src) or (args, src, environment variables)), run round-robin: this machine's speed drifts
    by up to 25% over minutes, so configurations compared by a ratio take turns rather than
    run back to back."""
    outs = {label: [] for label in configs}
    for _ in range(runs):
        for label, (args, src, *env) in configs.items():
            outs[label].append(run(args, src, env_extra=env[0] if env else None))
    return {label: (o[0][0], statistics.median(x[0]["seconds"] for x in o),
                    statistics.median(x[1] for x in o)) for label, o in outs.items()}


def case_workers(runs, report):
    D = acas_dir()
    base = [D / "ACASXU_run2a_3_3_batch_2000.onnx", "--vnnlib", D / "prop_9.vnnlib"]
    configs = {}
    # "1 worker, 1 thread" is one CPU's worth (POWERCELLS_THREADS=1), what two workers of one
    # thread each are twice of; plain "--workers 1" also runs its kernel threads on every CPU
    one_thread = {"POWERCELLS_THREADS": "1"}
    for label, extra, env in [("this process (--workers 0)", ["--workers", "0"], None),
                              ("1 worker", ["--workers", "1"], None),
                              ("1 worker, 1 thread", ["--workers", "1"], one_thread),
                              ("2 workers", ["--workers", "2"], None),
                              ("Dask LocalCluster, 2 workers", ["--dask-local", "2"], None)]:
        if "Dask" in label:
            try:
                import distributed  # noqa: F401
            except ImportError:
                print(f"  {label}: skipped (dask.distributed not installed)")
                continue
        configs[label] = (base + extra, None, env)
    rows = {}
    for label, (out, secs, wall) in interleaved_runs(configs, runs).items():
        rows[label] = (out["regions"], secs, wall)
        print(f"  {label:32s} regions {out['regions']:>9,}  {secs:7.2f} s  (process {wall:.2f} s)",
              flush=True)
    counts = {r[0] for r in rows.values()}
    print(f"  counts agree: {len(counts) == 1}")
    one, two = rows["1 worker, 1 thread"][1], rows["2 workers"][1]
    print(f"  1 worker of 1 thread / 2 workers: {one / two:.2f}x (target >= 1.8x)")
    print(f"  1 worker (kernel threads on every CPU) / 2 workers: "
          f"{rows['1 worker'][1] / two:.2f}x")
    report["workers"] = {k: {"regions": v[0], "seconds": v[1], "wall": v[2]}
                         for k, v in rows.items()}


def case_overhead(runs, report, baseline_src):
    D = acas_dir()
    args = [D / "ACASXU_run2a_1_1_batch_2000.onnx", "--vnnlib", D / "prop_1.vnnlib"]
    configs = {"today (--workers 1)": (args + ["--workers", "1"], None),
               "today (--workers 0)": (args + ["--workers", "0"], None)}
    if baseline_src is not None:
        # a baseline that has tasks already would start its default pool: keep it in one
        # process too, so the row compares like with like
        cli = Path(baseline_src) / "powercells" / "cli.py"
        one = ["--workers", "0"] if cli.exists() and "--workers" in cli.read_text() else []
        configs["before tasks"] = (args + one, baseline_src)
    rows = {}
    for label, (out, secs, wall) in interleaved_runs(configs, runs).items():
        rows[label] = (out["regions"], secs, wall)
        print(f"  {label:24s} regions {out['regions']:>7,}  {secs:6.3f} s  (process {wall:.2f} s)",
              flush=True)
    if "before tasks" in rows:
        r = rows["today (--workers 1)"][1] / rows["before tasks"][1]
        print(f"  one worker / before: {r:.3f} (target <= 1.10)")
    report["overhead"] = {k: {"regions": v[0], "seconds": v[1], "wall": v[2]}
                          for k, v in rows.items()}


def case_memory(report):
    from common import he_network, save_npz

    from powercells.io.vnnlib import read_vnnlib

    D = acas_dir()
    box = read_vnnlib(D / "prop_7.vnnlib").regions[0].domain
    lo, hi = box.bounds()
    c, h = (lo + hi) / 2, (hi - lo) / 2 * 0.2
    with tempfile.TemporaryDirectory() as tmp:
        dom = Path(tmp) / "prop7_02.npz"
        np.savez(dom, lo=c - h, hi=c + h)
        net2 = Path(tmp) / "w512.npz"
        save_npz(he_network(2, [512] * 3), net2)
        rows = {}
        for label, args in [
                ("ACAS 1_9 prop_7 at 0.2x", [D / "ACASXU_run2a_1_9_batch_2000.onnx",
                                             "--domain", dom]),
                ("2-D [512]x3", [net2, "--box", "-1", "1"])]:
            out, wall, peak = run(args)
            rows[label] = (out["regions"], out["seconds"], peak)
            shown = f"{peak:.0f} MB"
            print(f"  {label:26s} regions {out['regions']:>10,}  {out['seconds']:7.1f} s  "
                  f"peak RSS {shown} (target <= 600 MB)", flush=True)
    report["memory"] = {k: {"regions": v[0], "seconds": v[1], "peak_rss_mb": v[2]}
                        for k, v in rows.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", default="workers,overhead,memory")
    parser.add_argument("--baseline-src", default=None,
                        help="src folder of a checkout from before tasks, for 'overhead'")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    report = {"cpus": os.cpu_count()}
    cases = args.cases.split(",")
    if "memory" in cases:
        print("memory (count mode, one run each)")
        case_memory(report)
    if "workers" in cases:
        print(f"workers: ACAS Xu 3_3 prop_9, median of {args.runs}, interleaved")
        case_workers(args.runs, report)
    if "overhead" in cases:
        print(f"overhead: ACAS Xu 1_1 prop_1, median of {args.runs}, interleaved")
        case_overhead(args.runs, report, args.baseline_src)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
