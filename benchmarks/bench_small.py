"""Small jobs as users run them: a fresh ``powercells count`` process per run, against edge
subdivision on the same networks.

    python benchmarks/bench_small.py [--runs 7] [--edge-python PATH --edge-src DIR] [--json OUT]

Networks: He-initialised weights, biases N(0, 0.25^2), box [-1, 1]^4: ``[9, 9]`` seed 21
(1,570 regions) and ``[10, 10]`` seed 0 (1,401), and ``[12, 12]`` seed 0 (5,038), saved as
``.npz`` files.

- **powercells**: ``powercells count NET.npz --box -1 1`` in a fresh process, as a user types
  it (``python -m powercells.cli``, byte-compiled modules: ``PYTHONDONTWRITEBYTECODE`` is
  unset, and one untimed run first writes them). Reported: the ``seconds:`` line (the count,
  whatever it loads on the way: engine modules, compiled code) and the process's wall time
  (interpreter start and imports included). Median of ``--runs``.
- **edge subdivision** (``peers/edge_subdivision_runner.py``; float32, torch, one thread): the
  time its runner reports (the subdivision and the count read off it, not imports), in a fresh
  process, median of ``--runs``.
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

from common import he_network, save_npz

HERE = Path(__file__).resolve().parent
NETS = {"d4_9_s21": (4, [9, 9], 21), "d4_10_s0": (4, [10, 10], 0), "d4_12_s0": (4, [12, 12], 0)}


def _env():
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)    # as installed: modules byte-compiled
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def powercells_run(path: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "powercells.cli", "count", str(path), "--box",
                           "-1", "1"], capture_output=True, text=True, env=_env(), check=True)
    wall = time.perf_counter() - t0
    out = dict(line.split(":", 1) for line in proc.stdout.splitlines() if ":" in line)
    return {"regions": int(out["regions"]), "seconds": float(out["seconds"]),
            "engine": out["engine"].strip(), "wall": wall}


def edge_run(python: str, src: str | None, path: Path, d: int) -> dict:
    cmd = [python, str(HERE / "peers" / "edge_subdivision_runner.py"), str(path), "--box-dim",
           str(d)] + (["--src", src] if src else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--nets", default=",".join(NETS))
    parser.add_argument("--edge-python", default=None)
    parser.add_argument("--edge-src", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.nets.split(","):
            d, widths, seed = NETS[name]
            path = Path(tmp) / f"{name}.npz"
            save_npz(he_network(d, widths, seed=seed, bias=0.25), path)
            powercells_run(path)                # writes the byte-compiled modules
            ours = [powercells_run(path) for _ in range(args.runs)]
            row = {"net": name, "d": d, "widths": widths, "regions": ours[0]["regions"],
                   "engine": ours[0]["engine"],
                   "seconds": statistics.median(r["seconds"] for r in ours),
                   "wall": statistics.median(r["wall"] for r in ours)}
            if args.edge_python:
                theirs = [edge_run(args.edge_python, args.edge_src, path, d)
                          for _ in range(args.runs)]
                row["edge_regions"] = theirs[0]["regions"]
                row["edge_seconds"] = statistics.median(r["seconds"] for r in theirs)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| network | regions | engine | `seconds:` reported | process wall time | "
          "edge subdivision (s) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        edge = f"{r['edge_seconds']:.3f}" if "edge_seconds" in r else "-"
        if "edge_regions" in r and r["edge_regions"] != r["regions"]:
            edge += f" (!= {r['edge_regions']:,} regions)"
        print(f"| d={r['d']} {r['widths']} | {r['regions']:,} | {r['engine']} | "
              f"{r['seconds']:.3f} | {r['wall']:.3f} | {edge} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
