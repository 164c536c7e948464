"""powercells against edge subdivision and nnenum on the same networks, in one run (per core).

    python benchmarks/bench_peers.py [--runs 3] [--nets d4_16,d8_10,...] [--threads 1[,2]]
        [--edge-python PATH [--edge-src DIR] [--edge-all]] [--nnenum-python PATH]
        [--timeout 600] [--mem-limit-gb 16] [--json OUT]

Networks: He-initialised weights (``W ~ N(0, 2/fan_in)``), biases N(0, 0.25^2), seed 0, every
hidden layer ReLU, no head, box [-1, 1]^d: d4 [16,16], d4 [12,12], d6 [10,10], d8 [10,10] (both
peers), d10, d12 and d16 [10,10], d24 [8,8] (nnenum only; ``--edge-all`` runs edge subdivision
on them too: its starting hypercube alone has 2^d vertices and d 2^(d-1) edges).

- **powercells**: ``pc.count_regions(network, pc.Box(-1, 1, dim=d))`` with the default engine
  (``auto``; the engine it chose is printed), in this process, after one warm-up call (cut off
  by ``--warmup-limit`` seconds: it loads the compiled kernels), median of ``--runs``; once per
  thread count in ``--threads`` (engine option ``threads`` and ``numba.set_num_threads``; BLAS on
  one thread, see common.py). One thread runs with ``executor="serial"`` (this process only);
  more with the default executor, which may start worker processes for long jobs.
- **edge subdivision** (Berzins, ICML 2023; float32, PyTorch on one thread; its own environment,
  ``peers/edge_subdivision_runner.py``) when ``--edge-python`` names its interpreter.
- **nnenum** (Bak et al., CAV 2020; exact star enumeration with GLPK in one process; its own
  environment, ``peers/nnenum_runner.py``) when ``--nnenum-python`` names its interpreter.

Every peer run is a fresh process (median of ``--runs`` of the times the runner reports, which
leave out imports), stopped after ``--timeout`` seconds and under an address-space limit
(``--mem-limit-gb``). Ratios are regions per second of powercells (one thread) over the peer's:
the peer's time over powercells' when the counts agree. powercells' count is exact; the peers
compute in float32 (edge subdivision) or with LP tolerances (nnenum), so a count that differs is
flagged (``!=``) and reported, not treated as an error.
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

from common import he_network, median_time, save_npz

import powercells as pc

NETS = {"d4_16": (4, [16, 16]), "d4_12": (4, [12, 12]), "d6_10": (6, [10, 10]),
        "d8_10": (8, [10, 10]), "d10_10": (10, [10, 10]), "d12_10": (12, [10, 10]),
        "d16_10": (16, [10, 10]), "d24_8": (24, [8, 8])}
EDGE_NETS = {"d4_16", "d4_12", "d6_10", "d8_10"}
BIAS = 0.25
HERE = Path(__file__).resolve().parent
PEERS = {"edge": "edge_subdivision_runner.py", "nnenum": "nnenum_runner.py"}


def _peer_env():
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def run_peer(cmd, timeout, mem_limit):
    """One fresh run of a peer runner: its JSON line, {"timeout": T} or {"error": ...}."""
    def limit():
        if mem_limit:
            resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))

    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout,
                              env=_peer_env(), preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit code {proc.returncode}"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_seconds"] = round(wall, 3)
    return out


def time_peer(cmd, runs, timeout, mem_limit):
    """Median over ``runs`` fresh processes; stops at the first run that does not finish."""
    results = []
    for _ in range(runs):
        res = run_peer(cmd, timeout, mem_limit)
        if "seconds" not in res or res.get("result") == "timeout":
            return res
        results.append(res)
    out = dict(results[-1])
    out["seconds"] = statistics.median(r["seconds"] for r in results)
    out["all_seconds"] = [r["seconds"] for r in results]
    out["counts"] = sorted({r["regions"] for r in results})
    return out


def _set_numba_threads(threads):
    try:
        import numba
    except ImportError:
        return
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def _rate_ratio(pc_regions, pc_seconds, peer):
    """powercells' regions per second over the peer's (None when the peer counted nothing)."""
    if not peer.get("regions") or not peer.get("seconds"):
        return None
    return (pc_regions / pc_seconds) / (peer["regions"] / peer["seconds"])


def _peer_cells(r, name):
    """(regions, seconds, ratio) table cells of one peer."""
    peer = r.get(name)
    if peer is None:
        return "-", "-", "-"
    if "timeout" in peer:                     # killed: no count
        return "?", f"> {peer['timeout']:.0f} (killed)", "-"
    if "error" in peer:
        return "error", "-", "-"
    flag = "" if peer["regions"] == r["regions"] else " !="
    ratio = r.get(f"{name}_ratio")
    if peer.get("result") == "timeout":       # nnenum stopped itself: a partial count
        return (f">= {peer['regions']:,} (timeout)", f"{peer['seconds']:.1f}",
                f"~{ratio:.1f}x" if ratio else "-")
    return (f"{peer['regions']:,}{flag}", f"{peer['seconds']:.3f}",
            f"{ratio:.1f}x" if ratio else "-")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nets", default=",".join(NETS))
    parser.add_argument("--threads", default="1",
                        help="comma-separated powercells thread counts (the first one is the "
                             "one the ratios use), e.g. 1,2")
    parser.add_argument("--warmup-limit", type=float, default=10.0,
                        help="seconds after which the warm-up call stops")
    parser.add_argument("--edge-python", default=None)
    parser.add_argument("--edge-src", default=None,
                        help="folder of the edge subdivision reference code (edge_subdivision.py)")
    parser.add_argument("--edge-all", action="store_true",
                        help="run edge subdivision on every network, not only d <= 8")
    parser.add_argument("--nnenum-python", default=None)
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds before a peer run is stopped")
    parser.add_argument("--mem-limit-gb", type=float, default=16.0,
                        help="address-space limit of a peer process (0: none)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    threads = [int(t) for t in args.threads.split(",")]
    names = args.nets.split(",")
    unknown = [n for n in names if n not in NETS]
    if unknown:
        parser.error(f"unknown nets {unknown}; known: {', '.join(NETS)}")
    mem_limit = int(args.mem_limit_gb * 2 ** 30) if args.mem_limit_gb else None

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            d, widths = NETS[name]
            network = he_network(d, widths, seed=0, bias=BIAS)
            box = pc.Box(-1, 1, dim=d)
            row = {"net": name, "d": d, "widths": widths}

            def count(t, network=network, box=box, **kw):
                # one thread: this process alone (the default executor starts worker
                # processes for long jobs); more: the default executor, as users run it
                return pc.count_regions(network, box, executor="serial" if t == 1 else None,
                                        engine_options={"threads": t, **kw.pop("options", {})},
                                        **kw)

            _set_numba_threads(threads[0])
            t0 = time.perf_counter()
            # warm-up, with the compiled kernels loaded (a job loads them only when large)
            count(threads[0], time_limit=args.warmup_limit, options={"compiled": True})
            row["warmup_seconds"] = time.perf_counter() - t0
            for t in threads:
                _set_numba_threads(t)
                seconds, res = median_time(lambda t=t: count(t), args.runs)
                row[f"pc_{t}t"] = seconds
                row[f"pc_{t}t_regions"] = res.regions
                if t == threads[0]:
                    row.update(regions=res.regions, per_layer=res.per_layer, engine=res.engine,
                               pc_seconds=seconds, thin=res.thin, undecided=res.undecided)
                print(f"{name} d={d} {widths}: powercells ({res.engine}, {t} thread(s)) "
                      f"{res.regions:,} regions {res.per_layer}, median {seconds:.3f} s of "
                      f"{args.runs}", flush=True)
            path = Path(tmp) / f"{name}.npz"
            save_npz(network, path)
            peers = []
            if args.edge_python and (name in EDGE_NETS or args.edge_all):
                cmd = [args.edge_python, str(HERE / "peers" / PEERS["edge"]), str(path),
                       "--box-dim", str(d), "--threads", "1"]
                if args.edge_src:
                    cmd += ["--src", args.edge_src]
                peers.append(("edge", cmd, args.timeout))
            if args.nnenum_python:
                # nnenum stops itself at the timeout and reports its partial count
                cmd = [args.nnenum_python, str(HERE / "peers" / PEERS["nnenum"]), str(path),
                       "--box-dim", str(d), "--timeout", str(args.timeout)]
                peers.append(("nnenum", cmd, args.timeout + 120))
            for peer, cmd, timeout in peers:
                res = time_peer(cmd, args.runs, timeout, mem_limit)
                row[peer] = res
                ratio = _rate_ratio(row["regions"], row["pc_seconds"], res)
                if ratio is not None:
                    row[f"{peer}_ratio"] = ratio
                if "seconds" in res:
                    note = ""
                    if res.get("result") == "timeout":
                        note = " (stopped by its timeout: a partial count)"
                    elif res["regions"] != row["regions"]:
                        note = f" MISMATCH (powercells {row['regions']:,})"
                    rate = f"{ratio:.1f}x" if ratio else "-"
                    print(f"  {peer}: {res['regions']:,} regions{note}, median "
                          f"{res['seconds']:.3f} s of {len(res.get('all_seconds', [1]))}; "
                          f"powercells/peer regions per second {rate}", flush=True)
                else:
                    print(f"  {peer}: {res}", flush=True)
            rows.append(row)

    extra = threads[1:]
    head = " | ".join(f"powercells {t}t (s)" for t in extra)
    print(f"\n| network | regions | engine | powercells {threads[0]}t (s) | "
          + (head + " | " if extra else "")
          + "edge subdiv. regions | edge subdiv. (s) | pc / edge | nnenum regions | "
            "nnenum (s) | pc / nnenum |")
    print("|---|---|---|---|" + "---|" * len(extra) + "---|---|---|---|---|---|")
    for r in rows:
        more = "".join(f" {r[f'pc_{t}t']:.3f} |" for t in extra)
        edge, nnenum = _peer_cells(r, "edge"), _peer_cells(r, "nnenum")
        print(f"| d={r['d']} {r['widths']} | {r['regions']:,} | {r['engine']} | "
              f"{r['pc_seconds']:.3f} |{more} {' | '.join(edge)} | {' | '.join(nnenum)} |")
    flagged = [(r["net"], p) for r in rows for p in ("edge", "nnenum")
               if "regions" in r.get(p, {}) and r[p]["regions"] != r["regions"]
               and r[p].get("result") != "timeout"]
    if flagged:
        print(f"\ncounts differing from powercells (!=): {flagged}")
    print(f"\npowercells: median of {args.runs} warm runs in this process; peers: median of "
          f"{args.runs} fresh processes, time as the runner reports it; ratio = powercells "
          f"regions/s ({threads[0]} thread) over the peer's (one core)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
