"""The planar engine's compiled rounds (numba): the numpy path's pieces, codes, balls and
polygons to the bit, on generic and degenerate networks, in trees and counts; loaded lazily;
stopped by budgets."""

import numpy as np
import pytest
from environment import both_paths, counted_kernel_loads, engine_defaults
from hypothesis import HealthCheck, given, settings
from networks import maxout_network, near_coincident_network, random_network
from strategies import integer_networks

import powercells as pc

numba = pytest.importorskip("numba")

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_identical_trees(a, b):
    assert a.per_layer == b.per_layer
    for la, lb in zip(a.levels, b.levels):
        for field in ("code", "parent", "thin", "interior_point", "inradius"):
            assert np.array_equal(getattr(la, field), getattr(lb, field)), field
    for depth in range(1, len(a.levels)):
        pa, pb = a.polygons(depth), b.polygons(depth)
        assert np.array_equal(pa.start, pb.start) and np.array_equal(pa.xy, pb.xy)
    sa, sb = a.slivers, b.slivers
    assert len(sa) == len(sb)
    assert np.array_equal(np.asarray(sa.code), np.asarray(sb.code))
    assert np.array_equal(np.asarray(sa.interior_point), np.asarray(sb.interior_point))


def assert_paths_identical(network, domain):
    trees = both_paths(lambda: pc.subdivide(network, domain, engine="planar"))
    assert_identical_trees(*trees)
    counts = both_paths(lambda: pc.count_regions(network, domain, engine="planar"))
    for c in counts:
        assert c.per_layer == trees[0].per_layer
        assert (c.thin, c.undecided) == (counts[1].thin, counts[1].undecided)


@pytest.mark.parametrize("widths,seed,bias", [([12, 10, 8], 0, 0.5), ([24, 24], 1, 0.1),
                                              ([16, 16, 16], 2, 0.0)])
def test_compiled_rounds_equal_the_numpy_path_to_the_bit(widths, seed, bias):
    # bias 0: every first-layer line through the origin (a vertex of many pieces)
    assert_paths_identical(random_network(2, widths, seed, bias=bias), pc.Box(-1, 1, dim=2))


@SETTINGS
@given(integer_networks(dims=(2, 2), depth=(1, 3), width=(1, 6)))
def test_compiled_rounds_equal_the_numpy_path_on_degenerate_networks(case):
    # {-1, 0, 1} weights: lines through corners and along edges, duplicates, dead units
    network, _ = case
    assert_paths_identical(network, pc.Box(-1, 1, dim=2))


def test_compiled_rounds_on_near_coincident_lines_and_slices():
    # thin cells settled exactly, on a plane slice of a 4-input network
    net = near_coincident_network()
    plane = pc.Slice.through_points(np.array([[0.3, -0.2, 0.1, 0.0], [-0.5, 0.4, 0.2, 0.1],
                                              [0.1, 0.1, -0.6, 0.3]]),
                                    inner=pc.Box(-1, 1, dim=2))
    assert_paths_identical(net, plane)
    # a polygon domain, and lines 1e-10 apart (the strip between them a thin region)
    pairs = [(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([0.0, -1e-10]))]
    two_lines = pc.Network.from_weights(pairs, ["relu"])
    triangle = pc.Polytope(np.array([[-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]]),
                           np.array([1.0, 1.0, 1.0]))
    assert_paths_identical(two_lines, triangle)
    count = pc.count_regions(two_lines, triangle, engine="planar",
                             engine_options={"compiled": True})
    assert count.per_layer == [3] and count.thin == [1]


def test_max_layers_keep_the_numpy_path_with_the_kernel_loaded():
    # the compiled rounds cut by lines; maxout clipping stays in numpy whatever the option
    assert_paths_identical(maxout_network(2, [4, 3], 3, seed=5), pc.Box(-1, 1, dim=2))


def test_the_planar_kernel_is_loaded_once_a_job_proves_large(monkeypatch):
    import powercells.enumerate.kernels as kernels
    import powercells.enumerate.planar_engine as planar_engine
    from powercells.enumerate import planar_kernel

    net, box = random_network(2, [20, 20, 20], 4, bias=0.2), pc.Box(-1, 1, dim=2)
    with engine_defaults(compiled=False):
        plain = pc.subdivide(net, box, engine="planar")
    loads = counted_kernel_loads(monkeypatch, planar_engine,
                                 "powercells.enumerate.planar_kernel", planar_kernel)
    monkeypatch.setitem(kernels.KERNEL_AFTER, "planar", 1e9)
    small = pc.subdivide(net, box, engine="planar", executor="serial")
    assert loads == []
    # loaded after the first split; the tree does not show where the path changed
    monkeypatch.setitem(kernels.KERNEL_AFTER, "planar", 0.0)
    switched = pc.subdivide(net, box, engine="planar", executor="serial")
    assert loads == [True]
    assert_identical_trees(plain, small)
    assert_identical_trees(plain, switched)


def test_compiled_true_without_numba_names_what_needs_it(monkeypatch):
    import sys

    import powercells.enumerate.planar_engine as planar_engine

    def missing():
        raise ImportError("No module named 'numba'")

    monkeypatch.setattr(planar_engine, "_load_kernel", missing)
    monkeypatch.delitem(sys.modules, "powercells.enumerate.planar_kernel")
    net = random_network(2, [4], 0)
    with pytest.raises(pc.OptionError, match="planar engine's compiled rounds needs numba"):
        pc.count_regions(net, pc.Box(-1, 1, dim=2), engine="planar",
                         engine_options={"compiled": True})
    # not asked for explicitly: the numpy path, silently
    count = pc.count_regions(net, pc.Box(-1, 1, dim=2), engine="planar")
    assert count.regions > 1


def test_a_budget_stops_the_compiled_rounds():
    net = random_network(2, [64, 64], 3, bias=0.1)
    full = pc.count_regions(net, pc.Box(-1, 1, dim=2), engine="planar",
                            engine_options={"compiled": True})
    part = pc.count_regions(net, pc.Box(-1, 1, dim=2), engine="planar",
                            engine_options={"compiled": True}, max_regions=500)
    assert part.partial and part.regions < full.regions


def test_a_time_limit_stops_a_long_kernel_call():
    # one layer of 3000 lines: the root alone makes ~4.5 million pieces, in one kernel call
    # (without codes: they are read afterwards in slices); the watchdog stops it
    import time

    rng = np.random.default_rng(0)
    net = pc.Network.from_weights([(rng.normal(size=(3000, 2)), 0.5 * rng.normal(size=3000))],
                                  ["relu"])
    t0 = time.perf_counter()
    result = pc.count_regions(net, pc.Box(-1, 1, dim=2), engine="planar",
                              engine_options={"compiled": True}, time_limit=0.3)
    assert result.partial and time.perf_counter() - t0 < 0.3 + 2.0
