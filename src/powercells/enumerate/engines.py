"""The engine boundary: what an engine is, the engines there are, and how ``auto`` picks one.

An engine splits batches of cells of one depth by the next layer (:class:`Engine`); the driver
walks the tree and owns everything else (budgets, coordinates, sinks, ids). Every engine is made
the same way, from an :class:`EngineSetup`, and described by an :class:`EngineSpec` in the
registry :data:`ENGINES`. A task of the walk is (engine spec, setup, node, remaining layers).

``engine="auto"`` takes the first engine of the registry that accepts the domain and prefers
it at that dimension: the registry is in the measured cost order (``benchmarks/bench_vertex.py``, ``bench_planar.py``,
``bench_lp_engine.py``): the LP-free engines where they apply, the ``lp`` engine otherwise.

=========  ===============================  ======  ==============================================
engine     domains                          LP      where ``auto`` uses it
=========  ===============================  ======  ==============================================
interval   1-D (segments)                   no      every 1-D domain
planar     2-D (planes, slices)             no      every 2-D domain
vertex     2-D to 12-D                      balls   3-D to 8-D (9-D with the compiled kernel)
lp         any dimension                    yes     above that, or when an LP backend is given
exact      any dimension                    exact   never: ``certify=True`` (rational arithmetic)
=========  ===============================  ======  ==============================================
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

from ..errors import OptionError
from ..network.layers import Layer
from .base import Split
from .budget import Budget
from .tolerances import Tolerances

__all__ = ["ENGINES", "Engine", "EngineOptions", "EngineSetup", "EngineSpec",
           "choose_engine", "engine_defaults", "engine_names", "register_engine"]


@dataclass(frozen=True)
class EngineOptions:
    """Options of the engines, given as arguments (``engine_options=``); the library reads no
    environment variable (the command line does, at its edge).

    Attributes
    ----------
    compiled : bool or None
        The compiled kernels (numba) of the vertex and planar engines, and the lp engine's
        compiled simplex (when no LP backend is given): True requires them, False takes the
        numpy path (HiGHS), None uses them when numba is installed, loaded once a job proves
        large (:mod:`powercells.enumerate.kernels`).
    threads : int or None
        Threads of the vertex engine's compiled splitter; None: the CPUs this process may use
        (at most 8). Results do not depend on it.
    """

    compiled: bool | None = None
    threads: int | None = None

    def __post_init__(self):
        if self.compiled not in (None, True, False):
            raise OptionError(f"engine option compiled must be True, False or None, got "
                              f"{self.compiled!r}")
        if self.threads is not None and (isinstance(self.threads, bool)
                                         or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise OptionError(f"engine option threads must be a whole number >= 1, got "
                              f"{self.threads!r}")

    @classmethod
    def coerce(cls, value) -> EngineOptions:
        """``engine_options`` as given: None (the defaults, see :func:`engine_defaults`), a
        mapping of option names (over the defaults), or EngineOptions.

        Raises
        ------
        OptionError
            For an unknown option name (the message lists the valid ones) or a bad value.
        """
        if value is None:
            return _DEFAULTS.get()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            names = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - names)
            if unknown:
                raise OptionError(f"unknown engine option(s) {', '.join(map(repr, unknown))}; "
                                  f"valid: {', '.join(sorted(names))}")
            return replace(_DEFAULTS.get(), **value)
        raise OptionError(f"engine_options must be a dict or EngineOptions, got "
                          f"{type(value).__name__}")

    @property
    def resolved_threads(self) -> int:
        """The thread count: :attr:`threads`, or the CPUs available (at most 8)."""
        if self.threads is not None:
            return self.threads
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:                      # not on every platform
            cpus = os.cpu_count() or 1
        return max(1, min(cpus, 8))


_DEFAULTS: contextvars.ContextVar[EngineOptions] = contextvars.ContextVar(
    "powercells_engine_options", default=EngineOptions())  # noqa: B039 (frozen)


@contextlib.contextmanager
def engine_defaults(**options):
    """Default engine options for the calls made inside a ``with`` block (in this thread or
    task), e.g. ``with engine_defaults(compiled=False): ...``; options a call passes win.

    Raises
    ------
    OptionError
        For an unknown option name or a bad value.
    """
    token = _DEFAULTS.set(EngineOptions.coerce(options))
    try:
        yield _DEFAULTS.get()
    finally:
        _DEFAULTS.reset(token)


@dataclass(frozen=True)
class EngineSetup:
    """Everything an engine is made from (one run, engine coordinates).

    Attributes
    ----------
    tolerances : Tolerances
        Resolved to absolute values.
    cap : float
        A bound above every inradius (twice the domain's diameter).
    lp : LPBackend or None
        The LP backend, for the engines that solve LPs.
    options : EngineOptions
    exact_balls : bool
        Every child needs its exact Chebyshev ball (a tree); False when counting, where a
        bound that decides the region test is enough.
    final_layer : Layer or None
        The run's last layer (engines may keep less of its children).
    outputs_points : bool
        The run hands out its cells' interior points (a tree, leaves); False for a plain
        count, whose output is counts only, so that an engine may change its arithmetic path
        midway (the vertex engine loads its compiled splitter once a job proves large).
    dim : int
        The domain's dimension (0: known only from :meth:`Engine.root`). Engines in worker
        processes never see the root, so whatever depends on the dimension (batch sizes)
        comes from here.
    certified : bool
        The certified mode on a float engine: every decision proven by a rigorous float
        filter or settled exactly (the vertex engine, :mod:`.vertex.filtered`).
    """

    tolerances: Tolerances
    cap: float
    lp: Any = None
    options: EngineOptions = EngineOptions()
    exact_balls: bool = True
    final_layer: Layer | None = None
    dim: int = 0
    outputs_points: bool = True
    certified: bool = False


class Engine(Protocol):
    """What the driver asks of an engine (see :mod:`.base` for the batch contract)."""

    name: str
    stats: Any
    budget: Budget

    def root(self, domain) -> Any:
        """The domain as a batch of one cell."""

    def batch_size(self, layer: Layer) -> int:
        """How many cells to split per call for this layer."""

    def take(self, batch, lo: int, hi: int) -> Any:
        """Cells ``lo:hi`` of a batch."""

    def split(self, batch, layer: Layer) -> Split:
        """Every child of every cell of the batch, in tree order, and the slivers."""


@dataclass(frozen=True)
class EngineSpec:
    """An engine in the registry.

    Attributes
    ----------
    name : str
    make : callable ``EngineSetup -> Engine``
    min_dim, max_dim : int
        The domain dimensions it accepts.
    uses_lp : bool
        Whether it takes an LP backend (``lp=``).
    auto_max_dim : callable ``EngineOptions -> int``
        Up to which dimension ``auto`` prefers it.
    cells : str or None
        The cell geometry its batches carry into the tree: ``"polygons"``, ``"intervals"``,
        or None (the tree rebuilds polygons of 2-D trees from the codes).
    summary : str
        One line for error messages and docs.
    task_cap : int or None
        New nodes per task before a task hands the rest on (None: the driver's default), for
        engines whose nodes cost far more than the float engines' (so that tasks still fan
        out over the workers).
    """

    name: str
    make: Callable[[EngineSetup], Engine]
    min_dim: int
    max_dim: int | None
    uses_lp: bool
    auto_max_dim: Callable[[EngineOptions], int]
    cells: str | None = None
    summary: str = ""
    task_cap: int | None = None

    def refusal(self, dim: int, lp_given: bool) -> str | None:
        """Why the engine cannot run on a ``dim``-dimensional domain (None: it can)."""
        if dim < self.min_dim or (self.max_dim is not None and dim > self.max_dim):
            top = "any dimension" if self.max_dim is None else (
                f"dimension {self.min_dim}" if self.min_dim == self.max_dim
                else f"dimensions {self.min_dim} to {self.max_dim}")
            return (f"the {self.name} engine needs {self.summary or top}; this domain has "
                    f"dimension {dim} (use engine='lp' or 'auto')")
        if lp_given and not self.uses_lp:
            return f"the {self.name} engine solves no LP; do not give an lp backend"
        return None


#: The registry: engine name -> spec, in ``auto``'s cost order.
ENGINES: dict[str, EngineSpec] = {}


def register_engine(spec: EngineSpec) -> EngineSpec:
    """Add an engine to the registry (its name must be new; ``auto`` tries it before ``lp``)."""
    if not isinstance(spec, EngineSpec):
        raise OptionError(f"register_engine takes an EngineSpec, got {type(spec).__name__}")
    if spec.name in ENGINES or spec.name == "auto":
        raise OptionError(f"an engine named {spec.name!r} is already registered")
    ENGINES[spec.name] = spec
    if "lp" in ENGINES and spec.name != "lp":
        ENGINES["lp"] = ENGINES.pop("lp")           # the fallback stays last
    return spec


def engine_names() -> tuple[str, ...]:
    """``("auto", "lp", ...)``: the names ``engine=`` accepts."""
    return ("auto", "lp", *(name for name in ENGINES if name != "lp"))


def choose_engine(name, dim: int, *, lp_given: bool, options: EngineOptions) -> EngineSpec:
    """The engine ``name`` names, or ``auto``'s choice, checked against the domain.

    Raises
    ------
    OptionError
        For an unknown name or an engine that cannot run on the domain.
    """
    if not isinstance(name, str) or (name != "auto" and name not in ENGINES):
        raise OptionError(f"unknown engine {name!r}; choose one of "
                          f"{', '.join(engine_names())}")
    if name == "auto":
        # an explicit LP backend asks for the lp engine
        for spec in ([] if lp_given else ENGINES.values()):
            if spec.refusal(dim, lp_given) is None and dim <= spec.auto_max_dim(options):
                return spec
        return ENGINES["lp"]
    spec = ENGINES[name]
    reason = spec.refusal(dim, lp_given)
    if reason:
        raise OptionError(reason)
    return spec


def _make_lp(setup: EngineSetup):
    from .lp_engine import LPEngine

    return LPEngine(setup)


def _make_planar(setup: EngineSetup):
    from .planar_engine import PlanarEngine

    return PlanarEngine(setup)


def _make_interval(setup: EngineSetup):
    from .interval_engine import IntervalEngine

    return IntervalEngine(setup)


def _make_exact(setup: EngineSetup):
    from .exact_engine import ExactEngine

    return ExactEngine(setup)


def _make_vertex(setup: EngineSetup):
    from .vertex import VertexEngine

    return VertexEngine(setup)


#: Highest dimension for which ``auto`` picks the vertex engine ...
VERTEX_AUTO_MAX_DIM = 8
#: ... and with its compiled splitter. Against the lp engine on its compiled simplex (one thread,
#: [10, 10] networks, benchmarks/bench_vertex.py): at d = 9 vertex 2.9 s / lp 7.4 s (biases
#: N(0, 0.5^2)) and 9.1 s / 11.3 s (N(0, 0.25^2)); at d = 10 6.6 s / 4.7 s and 28.6 s / 13.5 s,
#: the vertex engine also holding about 1 GB there
VERTEX_AUTO_MAX_DIM_COMPILED = 9


def _vertex_auto_max_dim(options: EngineOptions) -> int:
    from .kernels import numba_installed

    if options.compiled is False or not numba_installed():
        return VERTEX_AUTO_MAX_DIM
    return VERTEX_AUTO_MAX_DIM_COMPILED


def _up_to(dim: int):
    """``auto_max_dim`` of an engine ``auto`` picks up to ``dim`` dimensions whatever the
    options (a picklable callable: specs travel to worker processes)."""
    return functools.partial(_constant, dim)


def _constant(value, options):
    return value


register_engine(EngineSpec("interval", _make_interval, 1, 1, False, _up_to(1), "intervals",
                           "a 1-D domain or a segment between two points"))
register_engine(EngineSpec("planar", _make_planar, 2, 2, False, _up_to(2), "polygons",
                           "a 2-D domain or plane slice"))
register_engine(EngineSpec("vertex", _make_vertex, 1, 12, True, _vertex_auto_max_dim, None,
                           "a domain of dimension up to 12 (a box has 2^d vertices)"))
register_engine(EngineSpec("lp", _make_lp, 1, None, True, _up_to(1 << 30), None,
                           "any dimension"))
# exact rational arithmetic, the certified mode (certify=True); auto never picks it
register_engine(EngineSpec("exact", _make_exact, 1, None, False, _up_to(0), None,
                           "any dimension (exact rational arithmetic, slow)",
                           task_cap=128))   # a node costs ~10^3 x a float engine's
