"""The ``powercells`` command line.

Exit codes: 0 success; 2 bad input (one line on stderr, no traceback); 3 a budget stopped the
enumeration (the counts printed are lower bounds).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_PARTIAL = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="powercells",
        description="Exact regions of piecewise-affine networks (ReLU, leaky ReLU, abs, maxout, "
                    "max-pool) over an input domain.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    count = sub.add_parser("count", help="count the regions after every layer",
                           description="Enumerate every region of every layer exactly and print "
                                       "the counts.")
    count.add_argument("network", help="network file (.npz: W0, b0, W1, b1, ... [activations])")
    where = count.add_mutually_exclusive_group()
    where.add_argument("--box", nargs=2, type=float, metavar=("LO", "HI"),
                       help="the box [LO, HI]^d (every input coordinate)")
    where.add_argument("--domain", metavar="FILE.npz",
                       help="a domain file with vectors lo and hi, or A and b (A x <= b)")
    count.add_argument("--engine", default="auto", choices=["auto", "lp"],
                       help="enumeration engine (default: auto)")
    count.add_argument("--lp", default="highs", choices=["highs", "cvxpy"],
                       help="LP backend of the lp engine (default: highs)")
    count.add_argument("--tol", type=float, default=None,
                       help="region tolerance: a region has inradius > TOL "
                            "(default 1e-9 x the domain's diameter)")
    count.add_argument("--json", action="store_true",
                       help="print one JSON object on stdout")
    count.add_argument("--max-regions", type=int, default=None, metavar="N",
                       help="stop after N regions (partial result, exit code 3)")
    count.add_argument("--time-limit", type=float, default=None, metavar="S",
                       help="stop after S seconds (partial result, exit code 3)")
    progress = count.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show a progress line on stderr (default: when stderr is a tty)")
    progress.add_argument("--no-progress", dest="progress", action="store_false")

    info = sub.add_parser("info", help="print the network's layers",
                          description="Print the layer summary: kinds, widths, pieces.")
    info.add_argument("network")
    info.add_argument("--json", action="store_true")
    return parser


def _domain(args, network):
    from .domain import Box, Polytope
    from .errors import DomainError

    if args.box is not None:
        return Box(args.box[0], args.box[1], dim=network.input_dim)
    if args.domain is not None:
        try:
            data = np.load(args.domain, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DomainError(f"{args.domain}: cannot read domain file ({exc})") from None
        with data:
            keys = set(data.files)
            if {"lo", "hi"} <= keys:
                return Box(data["lo"], data["hi"], dim=network.input_dim)
            if {"A", "b"} <= keys:
                return Polytope(data["A"], data["b"])
        raise DomainError(f"{args.domain}: a domain file needs arrays lo and hi, or A and b; "
                          f"found {sorted(keys)}")
    raise DomainError("no domain: give --box LO HI or --domain FILE.npz")


def _count(args) -> int:
    from .enumerate import count_regions
    from .io import load

    network = load(args.network)
    domain = _domain(args, network)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    result = count_regions(network, domain, engine=args.engine, lp=args.lp, tol=args.tol,
                           max_regions=args.max_regions, time_limit=args.time_limit,
                           progress=progress)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"network: {args.network} ({network.input_dim} -> {list(network.widths)})")
        print(f"domain:  {domain!r}")
        print(f"engine:  {result.engine}")
        for i, n in enumerate(result.per_layer, 1):
            print(f"regions after layer {i}: {n}")
        print(f"regions: {result.regions}")
        if any(result.slivers):
            print(f"slivers (inradius <= tolerance, not counted), per layer: {result.slivers}")
        print(f"seconds: {result.seconds:.3f}")
        if result.partial:
            print("PARTIAL: a budget stopped the enumeration; the counts are lower bounds")
    if result.partial:
        print("powercells: partial result (budget reached)", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _info(args) -> int:
    from .io import load

    network = load(args.network)
    if args.json:
        print(json.dumps({"input_dim": network.input_dim, "layers": [
            {"name": layer.name, "kind": layer.kind, "in": layer.in_dim, "out": layer.out_dim,
             "pieces": int(layer.max_pieces)} for layer in network.layers]}))
    else:
        print(f"input dimension: {network.input_dim}")
        print(network.summary())
    return EXIT_OK


def main(argv=None) -> int:
    """Entry point of the ``powercells`` console script; returns the exit code."""
    from .errors import PowercellsError

    args = _parser().parse_args(argv)
    try:
        if args.command == "count":
            return _count(args)
        return _info(args)
    except PowercellsError as exc:
        print(f"powercells: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("powercells: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
