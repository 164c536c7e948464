"""Deciding a VNN-LIB property exactly from the enumeration.

On every leaf ``omega`` of the subdivision of an input region the network is affine,
``y = A x + B``, so the unsafe set ``mat @ y <= rhs`` is reachable from the leaf iff the LP
``{x in omega, mat (A x + B) <= rhs}`` is feasible. The leaves are streamed (memory bounded by
a group of subtrees) and checked one by one; the first feasible leaf gives a counterexample,
which is accepted only if the network's forward pass at it satisfies the unsafe constraints
within ``tol``. A leaf whose LP is feasible but whose witness fails the forward check is
*undecided* and makes the answer "unknown": nothing is silently dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .enumerate.budget import Budget
from .enumerate.driver import stream_leaves
from .enumerate.regions import region_halfspaces
from .errors import BudgetExceeded, PowercellsError

__all__ = ["VerifyResult", "verify"]


class _Found(Exception):
    def __init__(self, x):
        self.x = x


@dataclass
class VerifyResult:
    """The answer for a property.

    Attributes
    ----------
    status : str
        ``"holds"`` (no leaf of any region reaches the unsafe set), ``"violated"`` (a checked
        counterexample) or ``"unknown"`` (a budget stopped the enumeration, or a leaf could not
        be decided).
    counterexample : ndarray or None
        An input in the region whose output satisfies an unsafe conjunction.
    output : ndarray or None
        The network's output there (forward pass).
    region : int or None
        Index of the input region of the counterexample.
    leaves : list of int
        Leaves checked per region.
    lps : int
    undecided : int
    partial : bool
    """

    status: str
    counterexample: np.ndarray | None = None
    output: np.ndarray | None = None
    region: int | None = None
    leaves: list = field(default_factory=list)
    lps: int = 0
    undecided: int = 0
    partial: bool = False

    def as_dict(self) -> dict:
        return {"status": self.status, "region": self.region, "leaves": self.leaves,
                "lps": self.lps, "undecided": self.undecided, "partial": self.partial,
                "counterexample": None if self.counterexample is None
                else self.counterexample.tolist(),
                "output": None if self.output is None else self.output.tolist()}


def verify(network, prop, *, tol: float = 1e-9, **options) -> VerifyResult:
    """Decide ``prop`` (a :class:`~powercells.io.vnnlib.VnnlibProperty` or a path) exactly.

    Parameters
    ----------
    tol : float
        Slack of the forward-pass check of a counterexample (relative to the size of the
        constraint's terms).
    options
        Passed to the enumeration (engine, tol for regions as ``region_tol``, budgets).
        ``time_limit`` holds for the whole property (each box gets what the earlier ones
        left); ``max_regions`` for each box.

    Raises
    ------
    PowercellsError
        If the property's sizes do not match the network.
    """
    from .io.vnnlib import read_vnnlib

    if not hasattr(prop, "regions"):
        prop = read_vnnlib(prop)
    if prop.n_inputs != network.input_dim:
        raise PowercellsError(f"the property has {prop.n_inputs} inputs, the network "
                              f"{network.input_dim}")
    if prop.n_outputs != network.output_dim:
        raise PowercellsError(f"the property has {prop.n_outputs} outputs, the network "
                              f"{network.output_dim}")
    region_tol = options.pop("region_tol", None)
    # one time limit for the whole property: each box gets what the earlier ones left
    time_limit = options.pop("time_limit", None)
    deadline = None if time_limit is None else Budget(time_limit=time_limit).deadline
    result = VerifyResult(status="holds")
    from scipy.optimize import linprog

    for r, region in enumerate(prop.regions):
        if deadline is not None:
            left = deadline - time.perf_counter()
            if left <= 0:
                result.partial = True
                break
            options["time_limit"] = left
        domain = region.domain
        net = domain.network_on(network)
        constraints = [(c.mat, c.rhs) for c in region.unsafe]
        count = [0]

        def check(chunk):
            for i in range(len(chunk)):
                if deadline is not None and time.perf_counter() > deadline:
                    # the LPs below run outside the enumeration's own checks
                    raise BudgetExceeded("time limit reached")
                count[0] += 1
                path = _split_path(chunk.codes[i], net.widths)
                A, B = net.affine_map_of_codes(path)
                x0 = chunk.interior_point[i]
                H = h = None
                y0 = A @ x0 + B
                for mat, rhs in constraints:
                    # the leaf's interior point first: often a counterexample without an LP
                    if np.all(mat @ y0 <= rhs) and _confirmed(network, domain, x0, mat, rhs, tol):
                        raise _Found(x0)
                    if H is None:
                        H, h = region_halfspaces(net, domain, path)
                    res = linprog(np.zeros(len(x0)), A_ub=np.vstack([H, mat @ A]),
                                  b_ub=np.concatenate([h, rhs - mat @ B]),
                                  bounds=[(None, None)] * len(x0), method="highs")
                    result.lps += 1
                    if res.status == 0:
                        if _confirmed(network, domain, res.x, mat, rhs, tol):
                            raise _Found(res.x)
                        result.undecided += 1
                    elif res.status != 2:
                        result.undecided += 1

        try:
            counts = stream_leaves(network, domain, check, tol=region_tol, **options)
            result.partial |= counts.partial
        except _Found as found:
            result.status = "violated"
            result.region = r
            result.counterexample = domain.to_input(found.x[None])[0]
            result.output = network.forward(result.counterexample[None])[0]
            result.leaves.append(count[0])
            return result
        result.leaves.append(count[0])
    if result.partial or result.undecided:
        result.status = "unknown"
    return result


def _split_path(code, widths):
    out, pos = [], 0
    for w in widths:
        out.append(np.asarray(code[pos:pos + w]))
        pos += w
    return out


def _confirmed(network, domain, t, mat, rhs, tol) -> bool:
    """Whether ``t`` (engine coordinates) lies in the domain and the forward pass there is in
    the unsafe set, within ``tol`` relative to the terms of each constraint."""
    t = np.asarray(t, dtype=np.float64)
    if not domain.contains(t[None], tol=1e-9 * domain.diameter)[0]:
        return False
    y = network.forward(domain.to_input(t[None]))[0]
    scale = np.abs(mat) @ np.abs(y) + np.abs(rhs) + 1.0
    return bool(np.all(mat @ y <= rhs + tol * scale))
