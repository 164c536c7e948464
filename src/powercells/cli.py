"""The ``powercells`` command line.

Exit codes: 0 success; 2 bad input or an output that cannot be written (one line on stderr, no
traceback); 3 a budget stopped the enumeration (the counts printed are lower bounds); 130 an
interrupt (``Ctrl-C`` or ``SIGTERM``: temporary files are removed); 141 the reader of stdout went
away (``| head``), silently; 1 an internal error (a bug: one line, and the traceback with
``POWERCELLS_TRACEBACK=1``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import sys
import threading
import warnings

import numpy as np

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_ERROR = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

#: Largest image side ``plot --size`` accepts (pixels): a figure is held in memory as RGBA.
MAX_IMAGE_SIDE = 8192

# a negative number, exponent form and inf/nan included: a value, not an option
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$",
                              re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    """argparse with negative numbers in exponent form (``--box -1e-3 1e-3``) read as values,
    and errors on one line."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message):
        self.exit(EXIT_ERROR, f"powercells: error: {message} (see {self.prog} --help)\n")


def _number(text: str) -> float:
    """A finite number (``nan``, ``inf`` and overflowing literals such as ``1e400`` refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _integer(text: str) -> int:
    """An integer of int64's range; ``1e6`` and ``1000000`` alike."""
    try:
        value = int(text)
    except ValueError:
        number = _number(text)
        if not number.is_integer():
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        value = int(number)
    if not -(1 << 63) <= value < (1 << 63):
        raise argparse.ArgumentTypeError(f"{text!r} is out of range (64-bit integers)")
    return value


def _temperature(text: str):
    """``own`` or a number >= 0 (``plot --soft --temperature``)."""
    if text.strip().lower() == "own":
        return "own"
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a temperature is a number >= 0 (or 'own')")
    return value


def _hard_limit_arg(p):
    p.add_argument("--hard-limit", action="store_true",
                   help="read smooth activations (SiLU/swish, GELU, softplus, HardSwish, Mish, "
                        "soft abs) as their MASO limit (ReLU; abs for soft abs), same weights")


def _executor_args(p):
    group = p.add_mutually_exclusive_group()
    group.add_argument("--workers", type=_integer, default=None, metavar="N",
                       help="workers for a long run: this process and N-1 worker processes "
                            "(default: one per CPU, started once the run has lasted half a "
                            "second and still has about 2 s of work; 0 or 1: this process "
                            "only)")
    group.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="run the tasks on an existing Dask cluster (needs powercells[dask])")
    group.add_argument("--dask-local", type=_integer, default=None, metavar="N",
                       help="run the tasks on a Dask LocalCluster of N workers (needs "
                            "powercells[dask]; its dashboard address is on the progress line)")


def _executor(args):
    """The executor named by --workers / --scheduler / --dask-local (None: the default)."""
    from .enumerate.executors import DaskExecutor
    from .errors import OptionError

    if args.scheduler is not None:
        if "://" not in args.scheduler:
            raise OptionError(f"--scheduler {args.scheduler}: give the scheduler's address as "
                              "tcp://HOST:PORT")
        return DaskExecutor(address=args.scheduler)
    if args.dask_local is not None:
        if args.dask_local < 1:
            raise OptionError(f"--dask-local {args.dask_local}: give at least 1 worker")
        return DaskExecutor(local=args.dask_local)
    if args.workers is not None and args.workers < 0:
        raise OptionError(f"--workers {args.workers}: give 0 (this process) or more workers")
    return args.workers


def _pixels(text: str) -> int:
    value = _integer(text)
    if not 50 <= value <= MAX_IMAGE_SIDE:
        raise argparse.ArgumentTypeError(f"{value} pixels: an image side must lie in "
                                         f"50..{MAX_IMAGE_SIDE}")
    return value


def _parser() -> argparse.ArgumentParser:
    from .enumerate.engines import engine_names

    parser = _Parser(
        prog="powercells",
        description="Exact regions of piecewise-affine networks (ReLU, leaky ReLU, abs, maxout, "
                    "max-pool) over an input domain.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    count = sub.add_parser("count", help="count the regions after every layer",
                           description="Enumerate every region of every layer exactly and print "
                                       "the counts.")
    count.add_argument("network", help="network file (.npz: W0, b0, W1, b1, ... [activations])")
    _domain_args(count)
    count.add_argument("--engine", default="auto", choices=list(engine_names()),
                       help="enumeration engine (default: auto: interval for 1-D domains, planar "
                            "for 2-D domains and planes, vertex for 3-8 dimensions, lp otherwise)")
    count.add_argument("--lp", default=None, choices=["dense", "highs", "cvxpy"],
                       help="LP backend of the lp engine (default: dense, a compiled simplex "
                            "with HiGHS behind it, where numba is installed, else highs); "
                            "implies --engine lp under auto")
    count.add_argument("--tol", type=_number, default=None,
                       help="region tolerance: a region has inradius > TOL "
                            "(default 1e-9 x the domain's diameter)")
    count.add_argument("--json", action="store_true",
                       help="print one JSON object on stdout")
    _hard_limit_arg(count)
    count.add_argument("--max-regions", type=_integer, default=None, metavar="N",
                       help="stop after N regions (partial result, exit code 3)")
    count.add_argument("--time-limit", type=_number, default=None, metavar="S",
                       help="stop after S seconds (partial result, exit code 3)")
    count.add_argument("--out", default=None, metavar="DIR",
                       help="keep the run in a store: each finished task's leaves and counts "
                            "as a Parquet part; rerunning on DIR resumes it, and on a finished "
                            "store prints the totals (needs pyarrow)")
    count.add_argument("--no-leaves", dest="leaves", action="store_false",
                       help="with --out: keep each part's counts only, not its leaves (for "
                            "runs of billions of regions; about 60 bytes a region otherwise)")
    count.add_argument("--certify", action="store_true",
                       help="prove every decision for the network as stored: the count is "
                            "exact, no tolerance, nothing undecided (ReLU-type nets in 2-8 "
                            "dimensions: a float engine with a certified filter, about 2x the "
                            "time; otherwise the exact engine, much slower); box or polytope "
                            "domains")
    count.add_argument("--certificate", default=None, metavar="FILE",
                       help="with --certify: write a certificate of the count (witnesses and "
                            "emptiness proofs) that check-certificate verifies")
    count.add_argument("--certify-leaves", action="store_true",
                       help="certify every leaf by its interior point (one exact-bounded "
                            "forward pass each): prints a proven lower bound of the exact "
                            "count; box or polytope domains, no store")
    _executor_args(count)
    progress = count.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show a live progress line on stderr: regions, tasks, regions "
                               "per second (default: when stderr is a tty)")
    progress.add_argument("--no-progress", dest="progress", action="store_false")

    ver = sub.add_parser("verify", help="decide a VNN-LIB property exactly",
                         description="Enumerate every region over each input box of the "
                                     "property and decide, per region, whether the unsafe "
                                     "output set is reachable (one LP per region, stopping at "
                                     "the first counterexample, which is checked by a forward "
                                     "pass).")
    ver.add_argument("network", help="network file (.onnx or .npz)")
    ver.add_argument("property", help="VNN-LIB file")
    ver.add_argument("--engine", default="auto", choices=list(engine_names()))
    ver.add_argument("--json", action="store_true")
    ver.add_argument("--max-regions", type=_integer, default=None, metavar="N",
                     help="stop a box after N regions (partial result, exit code 3)")
    ver.add_argument("--time-limit", type=_number, default=None, metavar="S",
                     help="stop after S seconds, all boxes together (exit code 3)")
    _disjuncts_arg(ver)

    plot = sub.add_parser("plot", help="draw the partition of a 2-D domain or plane",
                          description="Draw the exact partition after a layer (its new edges "
                                      "over the earlier ones, faces coloured, the decision "
                                      "boundary overlaid), or the outputs along a segment.")
    plot.add_argument("network")
    _domain_args(plot)
    plot.add_argument("--out", required=True, metavar="FILE.png", help="image file to write")
    plot.add_argument("--layer", type=_integer, default=None, metavar="L",
                      help="draw the partition after layer L (default: the last); 0 = domain")
    plot.add_argument("--all-layers", action="store_true", help="one panel per layer")
    plot.add_argument("--color-by", default="slope", choices=["slope", "code", "random", "none"],
                      help="face colours (default: slope, the norm of the affine map)")
    plot.add_argument("--boundary", dest="boundary", action="store_true", default=None,
                      help="overlay the decision boundary (default: when the last layer is a "
                           "linear head)")
    plot.add_argument("--no-boundary", dest="boundary", action="store_false")
    plot.add_argument("--size", nargs=2, type=_pixels, default=(800, 800), metavar=("W", "H"),
                      help=f"image size in pixels, 50..{MAX_IMAGE_SIDE} (default 800 800)")
    plot.add_argument("--tol", type=_number, default=None, help="region tolerance, as for count")
    _hard_limit_arg(plot)
    plot.add_argument("--soft", action="store_true",
                      help="colour a 2-D domain by the code entropy of the soft VQ (SPEC §7), "
                           "the hard partition's edges drawn over it")
    plot.add_argument("--temperature", type=_temperature, default=None, metavar="T",
                      help="with --soft: the memberships' temperature, a number >= 0, or 'own' "
                           "for each layer's own smooth activation (default: own for a network "
                           "read with --hard-limit, else 1)")
    plot.add_argument("--membership", type=_integer, default=None, metavar="K",
                      help="with --soft and --layer L: colour by unit K's expected code (the "
                           "membership of its active piece) instead of the entropy")

    export = sub.add_parser("export", help="write the tree, ridges and adjacency as Parquet",
                            description="Enumerate every region, then write DIR/nodes.parquet "
                                        "(one row per tree node), DIR/ridges.parquet (bend "
                                        "angles), DIR/adjacency.parquet (facets between "
                                        "leaves) and DIR/summary.json, atomically.")
    export.add_argument("network")
    _domain_args(export)
    export.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    export.add_argument("--engine", default="auto",
                        choices=list(engine_names()))
    export.add_argument("--tol", type=_number, default=None, help="region tolerance, as for count")
    export.add_argument("--no-ridges", dest="ridges", action="store_false",
                        help="skip the bend angles (ridges.parquet is written empty)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace the contents of an existing folder")
    export.add_argument("--max-regions", type=_integer, default=None, metavar="N",
                        help="refuse networks with more than N regions")
    export.add_argument("--json", action="store_true", help="print the summary as JSON")
    _hard_limit_arg(export)
    _executor_args(export)

    # exact against approximate: compare, local-complexity
    cmp = sub.add_parser("compare", help="exact counts and rugosity against their approximations",
                         description="Enumerate the domain exactly and compare: sampling counts "
                                     "(distinct activation patterns among N samples) for "
                                     "growing N, and on 1-D and 2-D domains the finite-"
                                     "difference rugosity estimate against its exact limit.")
    cmp.add_argument("network", help="network file (.npz or .onnx)")
    _domain_args(cmp)
    cmp.add_argument("--samples", nargs="+", type=_integer, default=[100, 1000, 10000, 100000],
                     metavar="N", help="sample sizes (default 100 1000 10000 100000); with "
                                       "--method grid, grid points per coordinate")
    cmp.add_argument("--method", default="random", choices=["random", "grid", "sobol"],
                     help="how the samples are drawn (default random)")
    cmp.add_argument("--seed", type=_integer, default=0, help="random seed (default 0)")
    cmp.add_argument("--eps", type=_number, default=1e-3,
                     help="perturbation scale of the rugosity estimate (default 1e-3)")
    cmp.add_argument("--rugosity-samples", type=_integer, default=1 << 18, metavar="N",
                     help="samples of the rugosity estimate (default 262144)")
    cmp.add_argument("--rugosity-sampling", default="random", choices=["random", "sobol"],
                     help="random: i.i.d. points and perturbations (the authors' Monte Carlo, "
                          "default); sobol: scrambled Sobol points (boxes and slices of boxes)")
    cmp.add_argument("--no-rugosity", dest="rugosity", action="store_false",
                     help="skip the rugosity comparison")
    cmp.add_argument("--engine", default="auto",
                     choices=list(engine_names()),
                     help="enumeration engine, as for count (default auto)")
    cmp.add_argument("--tol", type=_number, default=None, help="region tolerance, as for count")
    cmp.add_argument("--max-regions", type=_integer, default=None, metavar="N")
    cmp.add_argument("--time-limit", type=_number, default=None, metavar="S",
                     help="stop the exact enumeration after S seconds (partial, exit code 3; "
                          "the sampling and rugosity estimates are not timed)")
    cmp.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    lc = sub.add_parser("local-complexity",
                        help="local complexity at a point against the exact counts",
                        description="Local complexity (Humayun et al.) at a point: per layer, "
                                    "the neurons whose sign is not the same at the 2P vertices "
                                    "x +- R v_p of P random orthonormal directions, beside the "
                                    "exact number of neurons whose zero set meets the "
                                    "neighbourhood and the exact number of regions in it.")
    lc.add_argument("network", help="network file (.npz or .onnx)")
    lc.add_argument("--point", required=True, metavar="X.npy", help="the point x (.npy, d values)")
    lc.add_argument("--radius", required=True, type=_number, metavar="R")
    lc.add_argument("--directions", required=True, type=_integer, metavar="P",
                    help="number of random orthonormal directions")
    lc.add_argument("--seed", type=_integer, default=0, help="seed of the directions (default 0)")
    lc.add_argument("--norm", default="l1", choices=["l1", "linf"],
                    help="l1: the 2P vertices x +- R v_p (default); linf: the cube's corners")
    lc.add_argument("--engine", default="auto",
                    choices=list(engine_names()),
                    help="engine of the exact subdivision of the neighbourhood, as for count "
                         "(default auto)")
    lc.add_argument("--tol", type=_number, default=None, help="region tolerance, as for count")
    lc.add_argument("--json", action="store_true",
                    help='print {"lc": [...], "exact_neurons": [...], "exact_regions": N, '
                         '"exact_crossing": [...], "exact_slivers": S, "points": 1}')

    chk = sub.add_parser("check-certificate",
                         help="verify a certificate of a certified count in exact arithmetic",
                         description="Re-verify a certificate written by count --certify "
                                     "--certificate FILE with exact rational arithmetic only "
                                     "(no LP, no floating point): every region's witness, "
                                     "every emptiness proof, and that no region is missing.")
    chk.add_argument("network", help="the network file the count was made for")
    chk.add_argument("certificate", help="the certificate file")
    chk.add_argument("--box", nargs=2, type=_number, metavar=("LO", "HI"),
                     help="the box [LO, HI]^d the count was made over")
    chk.add_argument("--domain", metavar="FILE.npz",
                     help="a domain file with vectors lo and hi, or A and b (A x <= b)")
    chk.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _hard_limit_arg(chk)

    info = sub.add_parser("info", help="print the network's layers",
                          description="Print the layer summary: kinds, widths, pieces.")
    info.add_argument("network")
    info.add_argument("--json", action="store_true")
    _hard_limit_arg(info)
    return parser


def _domain_args(p):
    p.add_argument("--box", nargs=2, type=_number, metavar=("LO", "HI"),
                   help="the box [LO, HI]^d (every input coordinate); with --plane or "
                        "--segment, the extent of the slice coordinates")
    p.add_argument("--domain", metavar="FILE.npz",
                   help="a domain file with vectors lo and hi, or A and b (A x <= b)")
    p.add_argument("--plane", nargs=3, metavar=("P0", "P1", "P2"),
                   help="the plane through three input points (.npy files): x = P0 + t1 (P1 - "
                        "P0) + t2 (P2 - P0), t in --box (default [0, 1]^2)")
    p.add_argument("--segment", nargs=2, metavar=("P0", "P1"),
                   help="the segment through two input points (.npy files): x = P0 + t (P1 - "
                        "P0), t in --box (default [0, 1])")
    p.add_argument("--vnnlib", metavar="PROP.vnnlib",
                   help="the input boxes of a VNN-LIB property (each box is reported; "
                        "--time-limit holds for all of them together)")
    _disjuncts_arg(p)


def _disjuncts_arg(p):
    from .io.vnnlib import MAX_DISJUNCTS

    p.add_argument("--max-disjuncts", type=_integer, default=MAX_DISJUNCTS, metavar="N",
                   help="refuse a VNN-LIB property whose formula expands to more than N "
                        f"disjuncts (default {MAX_DISJUNCTS})")


def _load_point(path, d):
    from .errors import DomainError
    from .io.arrays import read_npy_array

    p = read_npy_array(path, error=DomainError, what="point file (.npy)")
    if p.ndim > 2 or p.size != d:
        raise DomainError(f"{path}: a point of the network's input space needs {d} values, got "
                          f"an array of shape {p.shape}")
    p = p.astype(np.float64).reshape(-1)
    if not np.all(np.isfinite(p)):
        raise DomainError(f"{path}: the point has non-finite coordinates")
    return p


def _load(args):
    """The network of ``args.network``, its smooth activations read as their MASO limit with
    ``--hard-limit``."""
    from .io import load

    return load(args.network, hard_limit=bool(getattr(args, "hard_limit", False)))


def _hard_limit_line(network) -> str | None:
    """``hard limit: layer 1 SiLU -> relu, ...`` for a network read with --hard-limit."""
    limits = network.hard_limit
    if not limits:
        return None
    return "hard limit: " + ", ".join(f"layer {i} {rec.name} -> {network.layers[i - 1].kind}"
                                      for i, rec in limits.items())


def _domain(args, network):
    from .domain import Box, Polytope, Slice
    from .errors import DomainError
    from .io.arrays import read_npz_arrays

    if getattr(args, "vnnlib", None) is not None:
        raise DomainError("--vnnlib gives several boxes; it is handled by count")
    points = getattr(args, "plane", None) or getattr(args, "segment", None)
    if points is not None:
        if args.plane is not None and args.segment is not None:
            raise DomainError("give either --plane or --segment, not both")
        if args.domain is not None:
            raise DomainError("--domain cannot be combined with --plane or --segment; "
                              "use --box for the extent of the slice coordinates")
        P = np.stack([_load_point(p, network.input_dim) for p in points])
        inner = None if args.box is None else Box(args.box[0], args.box[1], dim=len(P) - 1)
        return Slice.through_points(P, inner=inner)
    if args.box is not None and args.domain is not None:
        raise DomainError("give either --box or --domain, not both")
    if args.box is not None:
        return Box(args.box[0], args.box[1], dim=network.input_dim)
    if args.domain is not None:
        data = read_npz_arrays(args.domain, error=DomainError, what="domain file")
        keys = set(data)
        if keys == {"lo", "hi"}:
            return Box(data["lo"], data["hi"], dim=network.input_dim)
        if keys == {"A", "b"}:
            return Polytope(data["A"], data["b"])
        if {"lo", "hi"} <= keys and {"A", "b"} <= keys:
            raise DomainError(f"{args.domain}: holds both a box (lo, hi) and a polytope (A, b); "
                              "a domain file holds one of them")
        raise DomainError(f"{args.domain}: a domain file holds exactly the arrays lo and hi, or "
                          f"A and b; found {sorted(keys)}")
    raise DomainError("no domain: give --box LO HI, --domain FILE.npz, --plane P0 P1 P2 or "
                      "--segment P0 P1")


def _count(args) -> int:
    from .enumerate import count_regions

    network = _load(args)
    if args.vnnlib is not None:
        return _count_vnnlib(args, network)
    domain = _domain(args, network)
    progress = _stderr_is_tty() if args.progress is None else args.progress
    _check_leaves(args)
    result = count_regions(network, domain, engine=args.engine, lp=args.lp, tol=args.tol,
                           max_regions=args.max_regions, time_limit=args.time_limit,
                           progress=progress, executor=_executor(args), store=args.out,
                           store_leaves=args.leaves, certify=args.certify,
                           certificate=args.certificate, certify_leaves=args.certify_leaves)
    if args.json:
        print(json.dumps(result.as_dict() if args.out is None else
                         {**result.as_dict(), "store": args.out}))
    else:
        print(f"network: {args.network} ({network.input_dim} -> {list(network.widths)})")
        if _hard_limit_line(network):
            print(_hard_limit_line(network))
        print(f"domain:  {domain!r}")
        print(f"engine:  {result.engine}")
        for i, n in enumerate(result.per_layer, 1):
            print(f"regions after layer {i}: {n}")
        print(f"regions: {result.regions}")
        if any(result.thin):
            print(f"thin regions (inradius <= tolerance, certified exactly, counted above), "
                  f"per layer: {result.thin}")
        if any(result.undecided):
            print(f"undecided cells (neither counted nor ruled out), per layer: "
                  f"{result.undecided}")
        if result.certified is not None:
            print(f"certified leaves: {result.certified} (each a region in exact arithmetic: "
                  f"the exact count is at least this)")
        print(f"seconds: {result.seconds:.3f}")
        if args.out is not None:
            print(f"store:   {args.out}" + (" (rerun the same command to resume)"
                                            if result.partial else ""))
        if result.partial:
            print("PARTIAL: a budget stopped the enumeration; the counts are lower bounds")
    if result.partial:
        print("powercells: partial result (budget reached)", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _count_vnnlib(args, network) -> int:
    import time

    from .enumerate import count_regions
    from .enumerate.budget import Budget
    from .errors import DomainError
    from .io.vnnlib import read_vnnlib

    if any(getattr(args, k) is not None for k in ("box", "domain", "plane", "segment")):
        raise DomainError("--vnnlib gives the input boxes; do not combine it with another domain")
    prop = read_vnnlib(args.vnnlib, max_disjuncts=args.max_disjuncts)
    if prop.n_inputs != network.input_dim:
        raise DomainError(f"{args.vnnlib}: the property has {prop.n_inputs} inputs, the network "
                          f"{network.input_dim}")
    progress = _stderr_is_tty() if args.progress is None else args.progress
    _check_leaves(args)
    executor = _executor(args)
    stores = _box_stores(args.out, len(prop.regions))
    certificates = [args.certificate] * len(prop.regions)
    if args.certificate is not None and len(prop.regions) > 1:   # one file per box
        stem, ext = os.path.splitext(args.certificate)
        certificates = [f"{stem}-box-{i:03d}{ext}" for i in range(len(prop.regions))]
    # one time limit for the whole property: each box gets what the earlier ones left
    deadline = None if args.time_limit is None else \
        Budget(time_limit=args.time_limit).deadline
    results, partial, skipped = [], False, 0
    for i, region in enumerate(prop.regions):
        left = None if deadline is None else deadline - time.perf_counter()
        if left is not None and left <= 0:
            partial, skipped = True, len(prop.regions) - i
            break
        r = count_regions(network, region.domain, engine=args.engine, lp=args.lp, tol=args.tol,
                          max_regions=args.max_regions, time_limit=left, progress=progress,
                          executor=executor, store=stores[i], store_leaves=args.leaves,
                          certify=args.certify, certificate=certificates[i],
                          certify_leaves=args.certify_leaves)
        partial |= r.partial
        results.append({"box": i, "lo": region.domain.bounds()[0].tolist(),
                        "hi": region.domain.bounds()[1].tolist(), **r.as_dict()})
    if args.json:
        print(json.dumps({"boxes": results, "boxes_not_started": skipped}))
    else:
        print(f"network: {args.network} ({network.input_dim} -> {list(network.widths)})")
        print(f"property: {args.vnnlib} ({len(prop.regions)} input box(es))")
        for r in results:
            flag = "  PARTIAL (lower bounds)" if r["partial"] else ""
            print(f"box {r['box']}: regions {r['regions']}, per layer {r['per_layer']}, "
                  f"{r['seconds']:.3f} s, engine {r['engine']}{flag}")
        if skipped:
            print(f"PARTIAL: the time limit ran out before the last {skipped} box(es)")
    if partial:
        print("powercells: partial result (budget reached)", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _check_certificate(args) -> int:
    from .certificate import check_certificate

    network = _load(args)
    domain = _domain(args, network)
    report = check_certificate(network, domain, args.certificate)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(f"certificate: {args.certificate}: verified in exact arithmetic")
        for i, n in enumerate(report.per_layer, 1):
            print(f"regions after layer {i}: {n}")
        print(f"regions: {report.regions} (exact, for {args.network} as stored over "
              f"{domain!r})")
        print(f"checked: {report.nodes} splits, {report.farkas} emptiness certificates")
    return EXIT_OK


def _check_leaves(args) -> None:
    if not args.leaves and args.out is None:
        from .errors import OptionError

        raise OptionError("--no-leaves says what a store keeps: give --out DIR too")


def _box_stores(out, n: int) -> list:
    """Store folders of a property's boxes: ``out`` itself for one box, ``out/box-000``, ...
    for several (``out`` is created)."""
    if out is None:
        return [None] * n
    if n == 1:
        return [out]
    from .errors import OutputError

    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create ({exc.strerror or exc})") from None
    names = [f"box-{i:03d}" for i in range(n)]
    strangers = set(os.listdir(out)) - set(names)
    if strangers:
        raise OutputError(f"{out}: holds {sorted(strangers)[0]!r}, which is not a box's store; "
                          "give an empty or new folder")
    return [os.path.join(out, name) for name in names]


def _verify(args) -> int:
    from .io import load
    from .io.vnnlib import read_vnnlib
    from .verification import verify

    network = load(args.network)
    prop = read_vnnlib(args.property, max_disjuncts=args.max_disjuncts)
    result = verify(network, prop, engine=args.engine, max_regions=args.max_regions,
                    time_limit=args.time_limit)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"network: {args.network}")
        print(f"property: {args.property}")
        print(f"result: {result.status}")
        print(f"regions checked per box: {result.leaves}; LPs: {result.lps}")
        if result.counterexample is not None:
            print(f"counterexample (box {result.region}): x = {result.counterexample.tolist()}")
            print(f"output there (forward pass): y = {result.output.tolist()}")
        if result.undecided:
            print(f"undecided regions: {result.undecided}")
    if result.partial:
        print("powercells: partial result (budget reached)", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _plot(args) -> int:
    import tempfile

    from .enumerate import subdivide
    from .errors import OptionError, OutputError
    from .io.output import current_umask
    from .plot import _pyplot, plot_layers, plot_partition, plot_profile, plot_soft

    network = _load(args)
    domain = _domain(args, network)
    if domain.dim not in (1, 2):
        raise OptionError(f"plot draws 1-D and 2-D domains; this one has dimension "
                          f"{domain.dim} (use --plane P0 P1 P2 for a plane through input space)")
    if not args.soft and (args.temperature is not None or args.membership is not None):
        raise OptionError("--temperature and --membership colour the soft VQ: add --soft")
    if args.soft:
        if domain.dim != 2:
            raise OptionError("--soft draws 2-D domains and planes; this domain is 1-D")
        if args.all_layers:
            raise OptionError("--soft draws one layer; drop --all-layers")
        if args.membership is not None and args.layer is None:
            raise OptionError("--membership K needs --layer L, the layer of unit K")
        if args.layer == 0:
            raise OptionError("--soft needs a layer 1..L, not 0 (the domain)")
    out = os.path.abspath(args.out)
    folder = os.path.dirname(out)
    if not out.lower().endswith(".png"):
        raise OutputError(f"{args.out}: the image must be a .png file")
    if os.path.isdir(out):
        raise OutputError(f"{args.out} is a folder; give the image file's name")
    if not os.path.isdir(folder):
        raise OutputError(f"{args.out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{args.out}: the folder {folder} is not writable")
    width, height = args.size
    tree = subdivide(network, domain, tol=args.tol)
    if args.layer is not None and not 0 <= args.layer <= tree.depth:
        raise OptionError(f"--layer {args.layer}: the network has layers 1..{tree.depth} "
                          "(0 = the domain)")
    plt = _pyplot()
    dpi = 100
    if domain.dim == 1:
        fig, ax = plt.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
        plot_profile(tree, ax=ax)
    elif args.soft:
        temperature = args.temperature
        if temperature is None:
            temperature = "own" if network.hard_limit else 1.0
        fig, ax = plt.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
        plot_soft(tree, args.layer, ax=ax, unit=args.membership,
                  temperature=None if temperature == "own" else temperature,
                  resolution=max(16, min(width, height, 600)))
    elif args.all_layers:
        fig = plot_layers(tree, color_by=args.color_by, boundary=args.boundary)
        fig.set_size_inches(width / dpi, height / dpi)
    else:
        fig, ax = plt.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
        plot_partition(tree, args.layer, ax=ax, color_by=args.color_by, boundary=args.boundary)
    # write next to the target and rename: no half-written image is left behind
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(suffix=".png", prefix=".powercells-", dir=folder)
        os.close(fd)
        fig.savefig(tmp, dpi=dpi)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, out)
    except OSError as exc:
        raise OutputError(f"{args.out}: cannot write the image ({exc.strerror or exc})"
                          ) from None
    finally:
        plt.close(fig)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    print(f"{args.out}: {tree.n_regions} regions, {width} x {height} pixels")
    return EXIT_OK


def _export(args) -> int:
    from .enumerate import subdivide
    from .errors import OptionError
    from .io.export import write_export
    from .io.output import OutputFolder

    network = _load(args)
    domain = _domain(args, network)
    # the folder is checked and locked before the enumeration: a bad --out fails at once,
    # and a second export into the same folder fails instead of racing this one
    inputs = [args.network, args.domain, *(args.plane or ()), *(args.segment or ())]
    with OutputFolder(args.out, kind="export", overwrite=args.overwrite,
                      protect=inputs) as folder:
        tree = subdivide(network, domain, engine=args.engine, tol=args.tol,
                         max_regions=args.max_regions, executor=_executor(args))
        if tree.partial:
            raise OptionError(f"--max-regions {args.max_regions}: the network has more regions "
                              "over this domain; nothing written")
        summary = write_export(tree, folder, ridges=args.ridges)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{args.out}: {summary['nodes']} nodes ({summary['regions']} regions), "
              f"{summary['adjacent_pairs']} adjacent pairs, {summary['ridges']} ridges")
    return EXIT_OK


def _compare(args) -> int:
    from .comparison import compare
    from .io import load

    network = load(args.network)
    domain = _domain(args, network)
    result = compare(network, domain, n_samples=args.samples, method=args.method, seed=args.seed,
                     rugosity=args.rugosity, eps=args.eps,
                     rugosity_n_samples=args.rugosity_samples,
                     rugosity_sampling=args.rugosity_sampling, engine=args.engine, tol=args.tol,
                     max_regions=args.max_regions, time_limit=args.time_limit)
    print(json.dumps(result.as_dict()) if args.json else str(result))
    if result.partial:
        print("powercells: partial result (budget reached)", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _local_complexity(args) -> int:
    from .approx import compare_local_complexity
    from .io import load

    network = load(args.network)
    point = _load_point(args.point, network.input_dim)
    result = compare_local_complexity(network, point, radius=args.radius,
                                      n_directions=args.directions, seed=args.seed,
                                      norm=args.norm, engine=args.engine, tol=args.tol)
    out = result.as_dict()
    if args.json:
        print(json.dumps(out))
    else:
        print(f"network: {args.network} ({network.input_dim} -> {list(network.widths)})")
        print(f"neighbourhood: {args.norm} ball of radius {args.radius:g} in the span of "
              f"{args.directions} random orthonormal directions (seed {args.seed})")
        print(f"{'layer':>5} {'LC':>5} {'exact neurons':>13} {'crossing':>8}")
        for i, (a, b, c) in enumerate(zip(out["lc"], out["exact_neurons"],
                                          out["exact_crossing"]), 1):
            print(f"{i:>5} {a:>5g} {b:>13g} {c:>8g}")
        print(f"LC total: {sum(out['lc']):g}; exact neurons: {sum(out['exact_neurons']):g}; "
              f"exact regions: {out['exact_regions']:g}; slivers (not counted): "
              f"{out['exact_slivers']:g}")
    return EXIT_OK


def _info(args) -> int:
    network = _load(args)
    if args.json:
        print(json.dumps({"input_dim": network.input_dim, "layers": [
            {"name": layer.name, "kind": layer.kind, "in": layer.in_dim, "out": layer.out_dim,
             "pieces": int(layer.max_pieces),
             "hard_limit_of": None if layer.smooth is None else layer.smooth.name}
            for layer in network.layers]}))
    else:
        print(f"input dimension: {network.input_dim}")
        print(network.summary())
    return EXIT_OK


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled as an interrupt: ``finally`` blocks run and temporary files go."""


@contextlib.contextmanager
def _signals():
    """SIGTERM raises :class:`_Terminated` and SIGINT :class:`KeyboardInterrupt` in the main
    thread while the command runs, except while an output is being moved into place or cleaned
    up (:mod:`powercells._interrupts`): then they wait for that step to end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    from ._interrupts import interrupt

    def terminate(signum, frame):
        interrupt(_Terminated())

    def ctrl_c(signum, frame):
        interrupt(KeyboardInterrupt())

    previous = (signal.signal(signal.SIGTERM, terminate), signal.signal(signal.SIGINT, ctrl_c))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def _stderr_is_tty() -> bool:
    """Whether to show progress by default (stderr may be closed: ``2>&-``)."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def _one_line(message) -> str:
    return " ".join(str(message).split()) or "(no message)"


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings on one line, without the source line Python would quote."""
    print(f"powercells: warning: {_one_line(message)}", file=sys.stderr)


_COMMANDS = {"count": "_count", "plot": "_plot", "export": "_export", "verify": "_verify",
             "compare": "_compare", "local-complexity": "_local_complexity", "info": "_info",
             "check-certificate": "_check_certificate"}


def main(argv=None) -> int:
    """Entry point of the ``powercells`` console script; returns the exit code.

    Every error becomes one line on stderr and an exit code (module docstring): errors of
    powercells (bad input, options, outputs), of the file system, and running out of memory
    exit with 2; an interrupt with 130; anything else is a bug of powercells, reported on one
    line with exit code 1 (``POWERCELLS_TRACEBACK=1`` prints the traceback).
    """
    from .errors import PowercellsError

    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:              # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    command = globals()[_COMMANDS[args.command]]
    try:
        with _signals(), warnings.catch_warnings(), _engine_environment():
            warnings.showwarning = _show_warning
            return command(args)
    except PowercellsError as exc:
        _error(_one_line(exc))
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, _Terminated) else "interrupted"
        _error(f"{what} (outputs are written whole or not at all; temporary files removed)",
               prefix="")
        return EXIT_INTERRUPTED
    except MemoryError:
        _error("out of memory: the job needs more memory than this machine has (a smaller "
               "domain, --max-regions or a coarser network)")
        return EXIT_ERROR
    except BrokenPipeError:
        # the reader went away (`| head`): nowhere to say anything; the code a tool killed by
        # SIGPIPE reports
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")      # noqa: SIM115 - kept for the exit flush
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        name = f"{exc.filename}: " if exc.filename else ""
        _error(f"{name}{_one_line(exc.strerror or exc)}")
        return EXIT_ERROR
    except Exception as exc:     # the one boundary that turns bugs into a line
        if os.environ.get("POWERCELLS_TRACEBACK"):
            raise
        _error(f"internal error ({type(exc).__name__}: {_one_line(exc)}); this is a bug of "
               "powercells: please report it with the command (POWERCELLS_TRACEBACK=1 prints "
               "the traceback)")
        return EXIT_INTERNAL


def _engine_environment():
    """The engine options the environment sets, for every call of this command: the one place
    powercells reads them (``POWERCELLS_JIT=0``: the vertex engine's numpy path;
    ``POWERCELLS_THREADS=N``: its thread count).

    Raises
    ------
    OptionError
        For a value that is not 0/1 or a whole number >= 1.
    """
    from .enumerate import engine_defaults
    from .errors import OptionError

    options = {}
    jit = os.environ.get("POWERCELLS_JIT", "").strip()
    if jit:
        if jit not in ("0", "1"):
            raise OptionError(f"POWERCELLS_JIT must be 0 or 1, got {jit!r}")
        options["compiled"] = None if jit == "1" else False
    threads = os.environ.get("POWERCELLS_THREADS", "").strip()
    if threads:
        try:
            options["threads"] = int(threads)
        except ValueError:
            raise OptionError(f"POWERCELLS_THREADS must be a whole number >= 1, got "
                              f"{threads!r}") from None
    return engine_defaults(**options)


def _error(message: str, prefix: str = "error: ") -> None:
    with contextlib.suppress(OSError):
        print(f"powercells: {prefix}{message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
