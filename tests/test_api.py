"""The public surface: the engine registry and options, modules not shadowed, errors in one
place, options keyword-only, bad arguments as ValueErrors."""

import importlib
import inspect
import pkgutil
from dataclasses import is_dataclass, replace

import numpy as np
import pytest
from networks import random_network

import powercells as pc
from powercells import errors
from powercells.cli import EXIT_ERROR, main
from powercells.enumerate import (
    ENGINES,
    EngineOptions,
    EngineSpec,
    choose_engine,
    engine_defaults,
    engine_names,
    register_engine,
)


# ---------------------------------------------------------------------- engines
@pytest.mark.parametrize("dim, expected", [(1, "interval"), (2, "planar"), (3, "vertex"),
                                           (8, "vertex"), (11, "lp"), (30, "lp")])
def test_auto_chooses_by_capability_and_cost_order(dim, expected):
    assert choose_engine("auto", dim, lp_given=False, options=EngineOptions()).name == expected
    # an LP backend asks for the lp engine at every dimension
    assert choose_engine("auto", dim, lp_given=True, options=EngineOptions()).name == "lp"


def test_vertex_engine_at_9_dimensions_only_compiled():
    numpy_path = EngineOptions(compiled=False)
    assert choose_engine("auto", 9, lp_given=False, options=numpy_path).name == "lp"
    pytest.importorskip("numba")
    assert choose_engine("auto", 9, lp_given=False, options=EngineOptions()).name == "vertex"
    # from 10 dimensions the lp engine on its compiled simplex is the faster one
    assert choose_engine("auto", 10, lp_given=False, options=EngineOptions()).name == "lp"


def test_every_registered_engine_names_its_domains():
    assert engine_names()[:2] == ("auto", "lp")
    assert set(engine_names()[1:]) == set(ENGINES)
    for spec in ENGINES.values():
        assert spec.refusal(spec.min_dim, lp_given=False) is None
        if spec.max_dim is not None:
            reason = spec.refusal(spec.max_dim + 1, lp_given=False)
            assert reason and spec.name in reason and str(spec.max_dim + 1) in reason


@pytest.mark.parametrize("bad", ["fast", "", None, 3])
def test_bad_engine_names_are_value_errors(bad):
    net = random_network(2, [3], seed=0)
    with pytest.raises(ValueError, match="unknown engine"):
        pc.count_regions(net, pc.Box(-1, 1, dim=2), engine=bad)


def test_engine_options_are_checked():
    net = random_network(3, [4], seed=0)
    box = pc.Box(-1, 1, dim=3)
    with pytest.raises(pc.OptionError, match="unknown engine option.*'jit'.*valid: compiled"):
        pc.count_regions(net, box, engine_options={"jit": False})
    for bad in ({"threads": 0}, {"threads": 1.5}, {"threads": True}, {"compiled": "yes"}):
        with pytest.raises(pc.OptionError):
            pc.count_regions(net, box, engine_options=bad)
    with pytest.raises(pc.OptionError, match="dict or EngineOptions"):
        pc.count_regions(net, box, engine_options=[("threads", 1)])


def test_engine_defaults_apply_inside_the_block_and_calls_win():
    assert EngineOptions.coerce(None) == EngineOptions()
    with engine_defaults(threads=3) as opts:
        assert opts.threads == 3
        assert EngineOptions.coerce(None).threads == 3
        assert EngineOptions.coerce({"compiled": False}) == EngineOptions(compiled=False, threads=3)
        assert EngineOptions.coerce(EngineOptions(threads=1)).threads == 1
    assert EngineOptions.coerce(None) == EngineOptions()


def test_engine_options_do_not_change_results():
    net = random_network(4, [8, 6], seed=4)
    box = pc.Box(-1, 1, dim=4)
    counts = {pc.count_regions(net, box, engine="vertex", engine_options=o).per_layer[-1]
              for o in ({"compiled": False}, {"threads": 1}, {"threads": 2}, None)}
    assert len(counts) == 1


def test_a_registered_engine_runs_through_the_driver():
    """A new engine plugs in through its spec alone: here the lp engine under another name,
    for 3-D and 11-D domains, offered to ``auto`` after the engines registered before it."""
    spec = replace(ENGINES["lp"], name="lp_copy", min_dim=3, max_dim=11,
                   auto_max_dim=lambda options: 11, summary="a 3-D to 11-D domain")
    try:
        register_engine(spec)
        assert list(ENGINES)[-1] == "lp"                    # the fallback stays last
        with pytest.raises(pc.OptionError, match="already registered"):
            register_engine(spec)
        net = random_network(3, [5, 4], seed=1)
        box = pc.Box(-1, 1, dim=3)
        ours = pc.count_regions(net, box, engine="lp_copy")
        assert ours.engine == "lp_copy"
        assert ours.per_layer == pc.count_regions(net, box, engine="lp").per_layer
        assert pc.count_regions(net, box).engine == "vertex"        # registered earlier
        net11 = random_network(11, [3], seed=1)
        assert pc.count_regions(net11, pc.Box(-1, 1, dim=11)).engine == "lp_copy"
        with pytest.raises(pc.OptionError, match="lp_copy engine needs a 3-D to 11-D domain"):
            pc.count_regions(random_network(2, [3], seed=1), pc.Box(-1, 1, dim=2),
                             engine="lp_copy")
    finally:
        ENGINES.pop("lp_copy", None)
    with pytest.raises(pc.OptionError, match="EngineSpec"):
        register_engine("lp")


def test_engine_spec_fields_are_what_the_driver_uses():
    for name, spec in ENGINES.items():
        assert isinstance(spec, EngineSpec) and spec.name == name
        assert spec.cells in (None, "polygons", "intervals")


def test_environment_is_read_only_at_the_command_line(monkeypatch, tmp_path, capsys):
    net = random_network(3, [4], seed=0)
    path = str(tmp_path / "n.npz")
    pc.save_npz(net, path)
    monkeypatch.setenv("POWERCELLS_JIT", "maybe")
    # the library ignores the variable ...
    assert pc.count_regions(net, pc.Box(-1, 1, dim=3)).regions > 0
    # ... the command line reads it, and names a bad value
    assert main(["count", path, "--box", "-1", "1", "--no-progress"]) == EXIT_ERROR
    assert "POWERCELLS_JIT must be 0 or 1" in capsys.readouterr().err
    monkeypatch.setenv("POWERCELLS_JIT", "0")
    monkeypatch.setenv("POWERCELLS_THREADS", "two")
    assert main(["count", path, "--box", "-1", "1", "--no-progress"]) == EXIT_ERROR
    assert "POWERCELLS_THREADS must be a whole number" in capsys.readouterr().err
    monkeypatch.setenv("POWERCELLS_THREADS", "1")
    assert main(["count", path, "--box", "-1", "1", "--no-progress"]) == 0


# ---------------------------------------------------------------------- public surface
def _modules():
    for info in pkgutil.walk_packages(pc.__path__, "powercells."):
        if info.name.startswith("powercells.enumerate.vertex.kernel"):
            continue                               # needs numba; covered by its own tests
        yield importlib.import_module(info.name)


def test_no_module_is_shadowed_by_another_attribute():
    for module in _modules():
        parent_name, _, short = module.__name__.rpartition(".")
        parent = importlib.import_module(parent_name)
        assert getattr(parent, short) is module, (
            f"{parent_name}.{short} is {getattr(parent, short)!r}, not the module")


def test_every_error_class_lives_in_errors_and_is_exported():
    classes = {obj for module in _modules() for obj in vars(module).values()
               if inspect.isclass(obj) and issubclass(obj, (pc.PowercellsError, Warning))
               and obj.__module__.startswith("powercells")}
    for cls in classes:
        assert cls.__module__ == "powercells.errors", cls
    for name in errors.__all__:
        assert getattr(pc, name) is getattr(errors, name)
    # every error about a bad argument is a ValueError
    for cls in (pc.NetworkError, pc.DomainError, pc.GeometryError, pc.OptionError,
                pc.PointError, pc.VnnlibError, pc.ApproximationError):
        assert issubclass(cls, ValueError)


#: Parameters that are options, never positional, wherever they appear in a public function.
OPTIONS = {"tol", "eps", "engine", "engine_options", "lp", "tolerances", "max_regions",
           "time_limit", "seed", "method", "n_samples", "temperature", "progress"}


#: Low-level kernels whose tolerances are operands, not options.
KERNELS = {"powercells.enumerate.vertex.polytopes", "powercells.geometry.polygons",
           "powercells.enumerate.planar_kernel", "powercells.enumerate.planar_filtered_kernel",
           "powercells.enumerate.scale", "powercells.enumerate.budget", "powercells.lp",
           "powercells.lp.dense_kernel"}


def test_options_are_keyword_only():
    offenders = []
    for module in _modules():
        if any(part.startswith("_") for part in module.__name__.split(".")) or \
                module.__name__ in KERNELS:
            continue
        for name, fn in vars(module).items():
            if name.startswith("_") or not callable(fn) or is_dataclass(fn) or \
                    getattr(fn, "__module__", None) != module.__name__:
                continue
            members = [fn] + ([m for n, m in vars(fn).items() if not n.startswith("_")
                               and inspect.isfunction(m)] if inspect.isclass(fn) else [])
            for member in members:
                try:
                    params = inspect.signature(member).parameters.values()
                except (TypeError, ValueError):
                    continue
                offenders += [f"{module.__name__}.{member.__qualname__}({p.name})"
                              for p in params if p.name in OPTIONS
                              and p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert not offenders, offenders


def test_one_word_for_a_layer_index():
    """Functions taking a level of the tree call it ``layer`` (``depth`` is a count)."""
    tree = pc.subdivide(random_network(2, [4, 3], seed=0), pc.Box(-1, 1, dim=2))
    for fn in (tree.polygons, tree.affine_maps, tree.volumes, tree.adjacency, tree.lipschitz,
               pc.geometry.facet_adjacency, pc.geometry.region_volumes,
               pc.geometry.monte_carlo_volumes, pc.soft_vq.region_soft_codes):
        assert "layer" in inspect.signature(fn).parameters, fn
        assert "depth" not in inspect.signature(fn).parameters, fn
    assert np.array_equal(tree.affine_maps(layer=1)[0], tree.affine_maps(1)[0])
    with pytest.raises(pc.GeometryError, match="layer must be an integer in 0..2"):
        tree.polygons(3)
