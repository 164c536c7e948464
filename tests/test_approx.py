"""Approximate tools against the exact engine: sampling counts, local complexity,
rugosity; compare and the CLI."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from networks import random_network, tent_map
from scipy.optimize import linprog
from strategies import integer_networks

import powercells as pc
from powercells import approx
from powercells.approx.complexity import MAX_LINF_DIRECTIONS
from powercells.cli import main
from powercells.enumerate import region_halfspaces
from powercells.testing import brute_force_regions


# ----------------------------------------------------------------------------- local complexity
def _meeting_by_leaves(net, nb):
    """Independent oracle: per layer, the ReLU-type units whose pre-activation has min <= 0 <= max
    over the neighbourhood, from brute-force leaves and two LPs per (leaf, unit)."""
    folded = nb.network_on(net)
    codes = brute_force_regions(net, nb).codes
    widths = np.cumsum((0,) + net.widths)
    lo = [np.full(w, np.inf) for w in net.widths]
    hi = [np.full(w, -np.inf) for w in net.widths]
    for code in codes:
        path = [np.array(code[widths[i]:widths[i + 1]]) for i in range(net.depth)]
        H, h = region_halfspaces(folded, nb, path)
        for li, layer in enumerate(folded.layers):
            if not layer.is_switch:
                continue
            A, B = folded.affine_map_of_codes(path, layer=li)
            G, c = layer.switch_W @ A, layer.switch_W @ B + layer.switch_b
            for k in range(layer.out_dim):
                for sign, store, pick in ((1, lo, min), (-1, hi, max)):
                    res = linprog(sign * G[k], A_ub=H, b_ub=h, bounds=[(None, None)] * nb.dim,
                                  method="highs")
                    store[li][k] = pick(store[li][k], sign * res.fun + c[k])
    return [int(np.sum((a <= 1e-9) & (b >= -1e-9))) for a, b in zip(lo, hi)]


@pytest.mark.parametrize("P,seed", [(2, 0), (3, 1)])
def test_exact_neurons_against_an_independent_lp_oracle(P, seed):
    net = random_network(64, [10, 10], seed=seed)
    x = np.random.default_rng(seed).normal(size=64)
    V = pc.random_directions(64, P, seed=seed)
    res = approx.compare_local_complexity(net, x, radius=0.7, directions=V)
    oracle = _meeting_by_leaves(net, pc.Neighbourhood(x, V, 0.7))
    assert res.exact.neurons[0].tolist() == oracle
    assert res.exact.crossing[0].tolist() == oracle         # generic: no neuron only touches


@pytest.mark.parametrize("P", [2, 3])
def test_first_layer_lc_is_exact_and_deeper_layers_are_lower_bounds_in_64d(P):
    net = random_network(64, [24, 24, 24], seed=P, head=3)
    X = np.random.default_rng(10 + P).normal(size=(3, 64))
    for radius in (0.3, 1.5):
        res = approx.compare_local_complexity(net, X, radius=radius, n_directions=P, seed=4)
        lc, exact = res.estimate.per_point, res.exact.neurons
        np.testing.assert_array_equal(lc[:, 0], exact[:, 0])
        assert np.all(lc <= exact)
        assert np.all(lc[:, -1] == 0) and np.all(exact[:, -1] == 0)     # the linear head
        assert np.all(res.exact.regions >= 1)
        assert np.all(res.exact.crossing <= exact)
    assert res.exact.neurons[:, 1:].sum() > 0      # the large radius reaches deeper neurons


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(integer_networks(dims=(2, 3), depth=(1, 3), width=(1, 4)), st.integers(-1, 1),
       st.sampled_from(["l1", "linf"]))
def test_lc_never_exceeds_exact_on_degenerate_networks(net_d, shift, norm):
    # integer weights, axis directions, an integer centre and radius: the vertex values are
    # exact, so ties (a pre-activation exactly 0 at a vertex, dead units, duplicates) happen
    net, d = net_d
    x = np.full(d, float(shift))
    res = approx.compare_local_complexity(net, x, radius=1.0, directions=np.eye(d)[:, :2],
                                          norm=norm)
    lc, exact = res.estimate.per_point[0], res.exact.neurons[0]
    assert lc[0] == exact[0]
    assert np.all(lc <= exact)


def test_a_deep_neuron_that_lc_misses():
    # layer 2: h = |x1| + |x2| - 0.5, negative at the centre and +0.5 at all four vertices
    W1 = np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]])
    net = pc.Network.from_weights([(W1, np.zeros(4)), (np.ones((1, 4)), [-0.5])],
                                  ["relu", "relu"])
    res = approx.compare_local_complexity(net, [0.0, 0.0], radius=1.0, directions=np.eye(2))
    assert res.as_dict() == {"lc": [4.0, 0.0], "exact_neurons": [4.0, 1.0],
                             "exact_regions": 8.0, "exact_crossing": [4.0, 1.0],
                             "exact_slivers": 0.0, "points": 1}
    # with ties: the pre-activation of the first layer is exactly 0 at two vertices each
    assert res.exact.crossing[0].tolist() == [4, 1]


def test_touching_neurons_count_as_meeting():
    # layer 2: h = |x1| - 1 touches 0 at the vertices (+-1, 0) and is negative elsewhere
    W1 = np.array([[1.0, 0], [-1, 0]])
    net = pc.Network.from_weights([(W1, np.zeros(2)), (np.ones((1, 2)), [-1.0])],
                                  ["relu", "relu"])
    res = approx.compare_local_complexity(net, [0.0, 0.0], radius=1.0, directions=np.eye(2))
    assert res.estimate.per_point[0].tolist() == [2, 1]      # 0 at a vertex counts as a change
    assert res.exact.neurons[0].tolist() == [2, 1]
    assert res.exact.crossing[0].tolist() == [2, 0]          # it touches, it does not cut
    # the same with the LP engine (minimum over each region by LP, not by polygon vertices)
    lp = approx.exact_local_complexity(net, [0.0, 0.0], radius=1.0, directions=np.eye(2),
                                       engine="lp")
    assert lp.neurons[0].tolist() == [2, 1]


def test_lc_on_maxout_units():
    net = pc.Network([pc.Layer.maxout(np.array([[1.0, 0], [-1, 0], [0, 1], [0, 0]]),
                                      np.array([0.0, 0, 0, 0.6]), pieces=2, name="layer 1"),
                      pc.Layer.dense(np.array([[1.0, 1.0]]), [-1.2], "relu", name="layer 2")])
    res = approx.compare_local_complexity(net, [0.0, 0.0], radius=1.0, directions=np.eye(2))
    # unit 1 = |x1| switches at x1 = 0; unit 2 = max(x2, 0.6) switches at x2 = 0.6
    assert res.estimate.per_point[0, 0] == res.exact.neurons[0, 0] == 2
    assert np.all(res.estimate.per_point <= res.exact.neurons)


def test_local_complexity_errors():
    net = random_network(4, [3])
    with pytest.raises(pc.PointError, match=r"shape \(n, 4\)"):
        approx.local_complexity(net, np.zeros(3), radius=1, n_directions=2)
    with pytest.raises(approx.ApproximationError, match="radius must be a positive"):
        approx.local_complexity(net, np.zeros(4), radius=-1, n_directions=2)
    with pytest.raises(approx.ApproximationError, match="exceeds the input dimension 4"):
        approx.local_complexity(net, np.zeros(4), radius=1, n_directions=5)
    with pytest.raises(approx.ApproximationError, match="give n_directions"):
        approx.local_complexity(net, np.zeros(4), radius=1)
    with pytest.raises(pc.DomainError, match="not orthonormal"):
        approx.local_complexity(net, np.zeros(4), radius=1, directions=np.ones((4, 2)))
    assert issubclass(approx.ApproximationError, pc.PowercellsError)


@pytest.mark.parametrize("directions,match", [
    ([[np.nan, 0.0], [0.0, 1.0]], "NaN or infinite"),      # NaN > 1e-8 is False: once accepted
    ([[np.inf, 0.0], [0.0, 1.0]], "NaN or infinite"),
    (np.zeros((2, 0)), r"P >= 1"),                         # once a bare numpy ValueError
    (np.zeros((1, 2, 0)), r"P >= 1"),
])
@pytest.mark.parametrize("tool", [approx.local_complexity, approx.exact_local_complexity,
                                  approx.compare_local_complexity])
def test_non_finite_or_empty_directions_are_refused(directions, match, tool):
    net = pc.Network.from_weights([(np.eye(2), [0.0, 0.0])], ["relu"])
    with pytest.raises(pc.DomainError, match=match):
        tool(net, [5.0, 5.0], radius=0.1, directions=directions)


def test_linf_local_complexity_caps_the_number_of_directions():
    net = random_network(40, [3], seed=0)
    assert MAX_LINF_DIRECTIONS == 16
    # 2^30 corners once went straight to a MemoryError
    with pytest.raises(approx.ApproximationError, match="limit of 16"):
        approx.local_complexity(net, np.zeros(40), radius=1.0, n_directions=30, norm="linf",
                                seed=0)
    with pytest.raises(approx.ApproximationError, match="limit of 16"):
        approx.compare_local_complexity(net, np.zeros(40), radius=1.0,
                                        directions=np.eye(40)[:, :17], norm="linf")
    # at the cap: 2^16 corners per point, several points (batched); a first-layer unit counts
    # iff its pre-activation w.x + b changes sign on the cube, i.e. |b| <= r ||w restricted||_1
    X = np.random.default_rng(1).normal(size=(3, 40)) * 0.3
    V = np.eye(40)[:, :16]
    lc = approx.local_complexity(net, X, radius=0.2, directions=V, norm="linf")
    W, b = net.layers[0].switch_W, net.layers[0].switch_b
    h = X @ W.T + b
    spread = 0.2 * np.abs(W[:, :16]).sum(axis=1)
    expected = (np.abs(h) <= spread).sum(axis=1)
    assert 0 < expected.sum() < h.size          # both cases occur
    np.testing.assert_array_equal(lc.per_point[:, 0], expected)


# ----------------------------------------------------------------------------- sampling counts
@pytest.mark.parametrize("d,widths,seed", [(2, [8, 8], 0), (3, [6, 6], 1), (4, [5, 5], 2)])
def test_sampling_counts_never_exceed_the_exact_count(d, widths, seed):
    net = random_network(d, widths, seed=seed, head=2)
    box = pc.Box(-1, 1, dim=d)
    tree = pc.subdivide(net, box)
    s = approx.sampling_counts(net, box, n_samples=[10, 100, 1000, 20000], seed=seed)
    assert np.all(np.diff(s.regions) >= 0)
    assert np.all(s.per_layer <= np.array(tree.per_layer))
    assert np.all(s.per_layer[:, -1] == s.regions)
    leaves = {r.tobytes() for r in tree.leaf_codes()}
    assert {r.tobytes() for r in s.patterns} <= leaves


def test_sampling_reaches_the_exact_count_when_every_region_is_large():
    net = pc.Network.from_weights([(np.array([[1.0, 0.2], [-0.3, 1.0], [1.0, 1.0]]),
                                    [0.1, -0.2, 0.3])], ["relu"])
    box = pc.Box(-1, 1, dim=2)
    tree = pc.subdivide(net, box)
    # precondition: every region holds a disc of radius 0.09 (area > 0.63% of the box), so
    # 5000 uniform samples miss one with probability < 7 * (1 - 0.0063)^5000 < 1e-12, and the
    # 71 x 71 grid (spacing 0.029) puts a point in every such disc
    assert tree.levels[-1].inradius.min() > 0.09
    for method, n in (("random", 5000), ("sobol", 4096), ("grid", 71)):
        s = approx.sampling_counts(net, box, n_samples=[n], method=method, seed=1)
        assert s.regions[-1] == tree.n_regions == 7


def test_sampling_counts_in_a_neighbourhood_of_a_64d_input():
    net = random_network(64, [20, 20], seed=3)
    nb = pc.Neighbourhood.random(np.zeros(64), 3, 1.0, seed=2)
    s = approx.sampling_counts(net, nb, n_samples=[100, 10000], seed=0)
    exact = pc.count_regions(net, nb).regions
    assert s.regions[0] <= s.regions[1] <= exact
    T = approx.sample_domain(nb, 5000, seed=1)
    assert np.all(np.abs(T).sum(axis=1) <= 1.0)
    # uniform in the l1 ball: the mass within half the radius is 2^-3
    assert abs(np.mean(np.abs(T).sum(axis=1) <= 0.5) - 0.125) < 0.02


def test_grid_samples_on_the_tent_map_find_spurious_patterns():
    # SPEC §6.1.4: z^(m) touches 0 at dyadic points; a grid through them sees patterns no region
    # has, and compare reports them apart
    L = 4
    res = pc.compare(tent_map(L), pc.Box(0, 1, dim=1), n_samples=[2 ** L + 1, 2 ** (L + 3) + 1],
                     method="grid", rugosity=False)
    assert res.regions == 2 ** L
    assert np.all(res.spurious > 0)
    assert np.all(res.found <= 2 ** L) and res.found[-1] == 2 ** L
    assert res.sampling.regions[-1] > res.regions


def test_grid_patterns_are_the_finest_grids_whatever_the_order():
    net, box = tent_map(4), pc.Box(0, 1, dim=1)
    s = approx.sampling_counts(net, box, n_samples=[129, 17], method="grid")
    finest = approx.sampling_counts(net, box, n_samples=[129], method="grid")
    assert s.largest == 0 and s.regions[0] == finest.regions[0]
    np.testing.assert_array_equal(s.patterns, finest.patterns)
    np.testing.assert_array_equal(s.first_seen, finest.first_seen)
    assert len(s.patterns) == finest.regions[0] > approx.sampling_counts(
        net, box, n_samples=[17], method="grid").regions[0]


def test_sobol_points_without_warnings():
    import warnings

    nb = pc.Neighbourhood.random(np.zeros(6), 3, 1.0, seed=0)
    net = random_network(1, [4], seed=0, head=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # scipy: seed= deprecated, n not a power of 2
        T = approx.sample_domain(nb, 100, method="sobol", seed=0)
        approx.rugosity_estimate(net, pc.Box(-1, 1, dim=1), eps=1e-2, n_samples=1000, seed=0,
                                 sampling="sobol")
    assert T.shape == (100, 3) and np.all(np.abs(T).sum(axis=1) <= 1.0)


def test_sampling_errors():
    net = random_network(2, [3])
    with pytest.raises(approx.ApproximationError, match="unknown sampling method 'lhs'"):
        approx.sampling_counts(net, pc.Box(-1, 1, dim=2), method="lhs")
    with pytest.raises(approx.ApproximationError, match="n_samples must be a positive"):
        approx.sampling_counts(net, pc.Box(-1, 1, dim=2), n_samples=[0])
    with pytest.raises(pc.DomainError, match="R\\^3"):
        approx.sampling_counts(net, pc.Box(-1, 1, dim=3))


# ----------------------------------------------------------------------------- rugosity
def _one_layer_limit(W, b, v, lo, hi, n_grid=200_001):
    """SPEC §5.6: each neuron's line contributes |v_k| ||w_k|| len_k sqrt(2/pi) / area (2-D);
    the lengths are measured by a fine parametrisation of the line, not by the engine."""
    total = 0.0
    for w, c, a in zip(W, b, v):
        # points of {w.x + c = 0}: x = p + s t, t along the line
        p = -c * w / (w @ w)
        t = np.array([-w[1], w[0]]) / np.linalg.norm(w)
        s = np.linspace(-10, 10, n_grid)
        pts = p + s[:, None] * t
        inside = np.all((pts >= lo) & (pts <= hi), axis=1)
        length = inside.sum() * (s[1] - s[0])
        total += abs(a) * np.linalg.norm(w) * length
    return total * np.sqrt(2 / np.pi) / np.prod(hi - lo)


def test_rugosity_limit_of_a_one_layer_network_in_closed_form():
    rng = np.random.default_rng(0)
    W, b, v = rng.normal(size=(6, 2)), rng.normal(size=6) * 0.5, rng.normal(size=(1, 6))
    net = pc.Network.from_weights([(W, b), (v, [0.0])], ["relu", "identity"])
    lo, hi = np.array([-1.0, -1.5]), np.array([1.0, 1.0])
    lim = approx.rugosity_limit(net, pc.Box(lo, hi))
    assert lim.value == pytest.approx(_one_layer_limit(W, b, v[0], lo, hi), rel=1e-4)
    # 1-D: sqrt(2/pi) sum |slope jump| / |X|
    w1, b1 = rng.normal(size=(5, 1)), rng.normal(size=5) * 0.5
    net1 = pc.Network.from_weights([(w1, b1), (v[:, :5], [0.0])], ["relu", "identity"])
    knots = -b1 / w1[:, 0]
    inside = np.abs(knots) < 1
    expected = np.sqrt(2 / np.pi) * np.sum(np.abs(v[0, :5] * w1[:, 0])[inside]) / 2
    assert approx.rugosity_limit(net1, pc.Box(-1, 1, dim=1)).value == pytest.approx(expected)


def _separated_1d_network():
    net = random_network(1, [5, 5], seed=157, head=1)
    tree = pc.subdivide(net, pc.Box(-1, 1, dim=1))
    knots = np.sort(tree.intervals()[0])[1:]
    # precondition of a 0.1% test at eps = 1e-2: knots (and the ends) at least 16 eps apart,
    # so that a perturbation crosses two of them with probability < 1e-50
    assert len(knots) == 6 and np.diff(np.r_[-1, knots, 1]).min() > 0.16
    return net


def test_rugosity_estimate_converges_in_1d():
    net = _separated_1d_network()
    box = pc.Box(-1, 1, dim=1)
    exact = approx.rugosity_limit(net, box).value
    errors = [abs(approx.rugosity_estimate(net, box, eps=eps, n_samples=n, seed=3,
                                           sampling="sobol").value / exact - 1)
              for eps, n in ((0.3, 1 << 12), (0.05, 1 << 16), (1e-2, 1 << 20))]
    assert errors[0] > 0.01               # a large eps is visibly biased (double crossings)
    assert errors[-1] < 1e-3              # 1-D within 0.1%
    assert errors[-1] < errors[0]
    # the authors' i.i.d. Monte Carlo agrees within its standard error
    r = approx.rugosity_estimate(net, box, eps=1e-2, n_samples=1 << 18, seed=5)
    assert abs(r.value - exact) < 4 * r.stderr and r.stderr < 0.03 * exact


def _net_2d():
    net = random_network(2, [6, 6], seed=1, head=1)
    box = pc.Box(-1, 1, dim=2)
    assert pc.subdivide(net, box).levels[-1].inradius.min() > 2e-3
    return net, box


def test_rugosity_estimate_agrees_in_2d_within_its_standard_error():
    net, box = _net_2d()
    exact = approx.rugosity_limit(net, box).value
    r = approx.rugosity_estimate(net, box, eps=1e-3, n_samples=1 << 20, seed=0)
    assert r.crossings > 1000
    assert abs(r.value - exact) < 4 * r.stderr + 0.005 * exact


@pytest.mark.slow
def test_rugosity_estimate_converges_in_2d_within_one_percent():
    net, box = _net_2d()
    exact = approx.rugosity_limit(net, box).value
    r = approx.rugosity_estimate(net, box, eps=1e-3, n_samples=1 << 25, seed=0, sampling="sobol")
    assert abs(r.value / exact - 1) < 0.01


def test_tangent_rugosity_on_a_64d_neighbourhood():
    # SPEC §5.6 item 4 with U = the neighbourhood's orthonormal directions
    net = random_network(64, [8, 8], seed=4, head=2)
    nb = pc.Neighbourhood.random(np.zeros(64), 2, 2.0, norm="linf", seed=1)
    exact = approx.rugosity_limit(net, nb)
    r = approx.rugosity_estimate(net, nb, eps=1e-3, n_samples=1 << 19, seed=2)
    assert exact.value > 0 and exact.facets > 10
    assert abs(r.value - exact.value) < 4 * r.stderr + 0.005 * exact.value


@pytest.mark.parametrize("perturbation", ["gaussian", "sphere"])
def test_rugosity_with_a_tangent_direction_and_sphere_perturbations(perturbation):
    net = _separated_1d_network()
    seg = pc.Slice([0.0], [[1.0]], pc.Box(-1, 1, dim=1))
    box = pc.Box(-1, 1, dim=1)
    # a segment of a 1-input net is the net itself; T = 2 doubles the jump and the crossing rate
    base = approx.rugosity_limit(net, box, perturbation=perturbation).value
    assert approx.rugosity_limit(net, seg, perturbation=perturbation).value == pytest.approx(base)
    assert approx.rugosity_limit(net, box, tangent=[[2.0]],
                                 perturbation=perturbation).value == pytest.approx(4 * base)
    r = approx.rugosity_estimate(net, box, eps=1e-2, n_samples=1 << 18, seed=1,
                                 perturbation=perturbation, tangent=[[2.0]])
    assert abs(r.value - 4 * base) < 4 * r.stderr
    if perturbation == "sphere":   # on the 1-sphere u = +-1: E|u| = 1 against sqrt(2/pi)
        gauss = approx.rugosity_limit(net, box).value
        assert base == pytest.approx(gauss / np.sqrt(2 / np.pi))


def _plane_area_in_box(w, b, lo, hi):
    """Area of {x : w.x + b = 0} inside the 3-D box [lo, hi], from the plane's crossings of
    the box's 12 edges (independent of the engines)."""
    from scipy.spatial import ConvexHull

    corners = np.array([[lo[0], lo[1], lo[2]]]) + np.array(
        [[(i >> j) & 1 for j in range(3)] for i in range(8)]) * (np.asarray(hi) - lo)
    points = []
    for i in range(8):
        for j in range(3):
            if not (i >> j) & 1:
                p, q = corners[i], corners[i | (1 << j)]
                sp, sq = w @ p + b, w @ q + b
                if sp * sq < 0:
                    points.append(p + sp / (sp - sq) * (q - p))
    if len(points) < 3:
        return 0.0
    basis = np.linalg.qr(np.column_stack([w, np.eye(3)]))[0][:, 1:3]
    return ConvexHull(np.array(points) @ basis).volume


def test_rugosity_limit_in_3d_in_closed_form_and_2d_lp_path_equals_the_mesh():
    # one hidden layer: each neuron's plane contributes |v_k| ||w_k|| area_k (SPEC 5.6 item 2)
    rng = np.random.default_rng(4)
    W, b, v = rng.normal(size=(5, 3)), rng.normal(size=5) * 0.4, rng.normal(size=(1, 5))
    net = pc.Network.from_weights([(W, b), (v, [0.0])], ["relu", "identity"])
    lo, hi = np.array([-1.0, -1.0, -0.5]), np.array([1.0, 0.5, 1.0])
    areas = np.array([_plane_area_in_box(W[k], b[k], lo, hi) for k in range(5)])
    assert np.count_nonzero(areas) >= 3
    expected = (np.sqrt(2 / np.pi) * np.sum(np.abs(v[0]) * np.linalg.norm(W, axis=1) * areas)
                / np.prod(hi - lo))
    lim = approx.rugosity_limit(net, pc.Box(lo, hi))
    assert lim.value == pytest.approx(expected, rel=1e-9)
    # a deeper 2-D network: the LP facet path (lp-engine tree) equals the planar mesh path
    deep = random_network(2, [6, 5], seed=8, head=2)
    box2 = pc.Box(-1, 1, dim=2)
    mesh_value = approx.rugosity_limit(deep, box2).value
    lp_tree = pc.subdivide(deep, box2, engine="lp")
    assert approx.rugosity_limit(deep, tree=lp_tree).value == pytest.approx(mesh_value, rel=1e-9)


def test_rugosity_errors():
    net = random_network(3, [4], head=1)
    with pytest.raises(approx.ApproximationError, match="eps must be a positive"):
        approx.rugosity_estimate(net, pc.Box(-1, 1, dim=3), eps=0, n_samples=10)
    with pytest.raises(approx.ApproximationError, match=r"tangent must be .* shape \(3, m\)"):
        approx.rugosity_estimate(net, pc.Box(-1, 1, dim=3), eps=1e-3, n_samples=10,
                                 tangent=np.eye(2))
    with pytest.raises(approx.ApproximationError, match="unknown perturbation 'cauchy'"):
        approx.rugosity_estimate(net, pc.Box(-1, 1, dim=3), eps=1e-3, n_samples=10,
                                 perturbation="cauchy")


def test_rugosity_limit_refuses_a_tree_of_another_network_or_domain():
    net = random_network(2, [5, 5], seed=2, head=1)
    box = pc.Box(-1, 1, dim=2)
    tree = pc.subdivide(net, box)
    value = approx.rugosity_limit(net, box).value
    assert approx.rugosity_limit(net, tree=tree).value == pytest.approx(value, rel=1e-12)
    assert approx.rugosity_limit(net, pc.Box(-1, 1, dim=2), tree=tree).value == \
        pytest.approx(value, rel=1e-12)                      # the same domain, another object
    other = random_network(2, [5, 5], seed=3, head=1)
    assert approx.rugosity_limit(other, box).value != pytest.approx(value)
    with pytest.raises(approx.ApproximationError, match="not a subdivision by this network"):
        approx.rugosity_limit(other, tree=tree)
    with pytest.raises(approx.ApproximationError, match="not the tree's domain"):
        approx.rugosity_limit(net, pc.Box(-0.5, 0.5, dim=2), tree=tree)
    with pytest.raises(approx.ApproximationError, match="not the tree's domain"):
        approx.rugosity_limit(net, (np.vstack([np.eye(2), -np.eye(2)]), np.ones(4)), tree=tree)
    partial = pc.subdivide(net, box, engine="lp", max_regions=3)
    assert partial.partial
    with pytest.raises(approx.ApproximationError, match="tree is partial"):
        approx.rugosity_limit(net, tree=partial)


def test_rugosity_on_a_plane_does_not_depend_on_its_parametrisation():
    # SPEC §5.6 item 4 needs an orthonormal U; Slice.through_points gives neither unit nor
    # orthogonal directions. The slice's default frame is orthonormal (QR), so the value is a
    # property of the plane piece: a 2-input network on the parallelogram p0 + D [0, 1]^2 as a
    # slice equals item 2 on the same parallelogram as a polytope of input space
    net = random_network(2, [6, 6], seed=5, head=2)
    p = np.array([[-0.6, -0.5], [0.9, -0.2], [0.1, 0.8]])
    plane = pc.Slice.through_points(p)
    D = (p[1:] - p[0]).T
    Dinv = np.linalg.inv(D)
    polytope = pc.Polytope(np.vstack([Dinv, -Dinv]), np.r_[1.0 + Dinv @ p[0], -Dinv @ p[0]])
    on_plane = approx.rugosity_limit(net, plane).value
    on_polytope = approx.rugosity_limit(net, polytope).value
    assert on_plane == pytest.approx(on_polytope, rel=1e-9)
    # the same plane piece in 5-D, parametrised twice (scaled directions, scaled extent)
    net5 = random_network(5, [6, 6], seed=3, head=2)
    q = np.random.default_rng(0).normal(size=(3, 5))
    a = pc.Slice.through_points(q)
    b = pc.Slice.through_points([q[0], q[0] + 0.5 * (q[1] - q[0]), q[0] + 0.25 * (q[2] - q[0])],
                                inner=pc.Box([0.0, 0.0], [2.0, 4.0]))
    lim = approx.rugosity_limit(net5, a).value
    assert approx.rugosity_limit(net5, b).value == pytest.approx(lim, rel=1e-9)
    r = approx.rugosity_estimate(net5, b, eps=1e-3, n_samples=1 << 17, seed=0)
    assert abs(r.value - lim) < 4 * r.stderr + 0.005 * lim
    # with the raw slice coordinates as the tangent (T = identity) the value changes with the
    # parametrisation: the documented non-orthonormal case
    raw_a = approx.rugosity_limit(net5, a, tangent=np.eye(2)).value
    raw_b = approx.rugosity_limit(net5, b, tangent=np.eye(2)).value
    assert raw_a != pytest.approx(raw_b, rel=1e-3)


def test_jacobians_match_the_local_affine_maps():
    net = pc.Network([pc.Layer.maxout(np.random.default_rng(0).normal(size=(6, 3)),
                                      np.zeros(6), pieces=3, name="l1"),
                      pc.Layer.dense(np.random.default_rng(1).normal(size=(4, 2)), None,
                                     "leaky_relu:0.1", name="l2"),
                      pc.Layer.dense(np.ones((2, 4)), None, "identity", name="head")])
    X = np.random.default_rng(2).normal(size=(20, 3))
    J = approx.jacobians(net, X)
    for x, j in zip(X, J):
        np.testing.assert_allclose(j, net.affine_map(x)[0], atol=1e-12)


# ----------------------------------------------------------------------------- compare and CLI
def test_compare_report():
    net = random_network(2, [8, 8], seed=1, head=2)
    box = pc.Box(-1, 1, dim=2)
    res = pc.compare(net, box, n_samples=[100, 10000], seed=0, rugosity_n_samples=1 << 16)
    out = res.as_dict()
    brute = brute_force_regions(net, box)                   # independent enumerator
    assert out["exact"]["regions"] == res.regions == brute.regions
    assert out["exact"]["per_layer"] == brute.per_layer
    assert out["sampling"]["found"] == out["sampling"]["regions"]         # generic: no spurious
    assert out["sampling"]["spurious"] == out["sampling"]["in_slivers"] == [0, 0]
    assert all(-1 <= e <= 0 for e in out["sampling"]["relative_error"])
    # the found patterns are regions of the brute-force enumeration
    assert {tuple(int(v) for v in row) for row in res.sampling.patterns} <= brute.codes
    text = str(res)
    assert "exact regions" in text and "rugosity" in text
    res5 = pc.compare(random_network(5, [3], head=1), pc.Box(-1, 1, dim=5), n_samples=[10])
    assert res5.rugosity is None and "dimension 5" in res5.rugosity_note


def test_compare_relative_errors_by_hand():
    # four quadrants of [-1, 1]^2: one sample finds one region, (1 - 4) / 4 per layer
    net = pc.Network.from_weights([(np.eye(2), [0.0, 0.0])], ["relu"])
    res = pc.compare(net, pc.Box(-1, 1, dim=2), n_samples=[1], seed=0, rugosity=False)
    assert res.found.tolist() == [1] and res.regions == 4
    assert res.sampling_relative_error.tolist() == [-0.75]
    assert res.as_dict()["sampling"]["per_layer_relative_error"] == [-0.75]
    # rugosity of relu(x) on [-1, 1]: one knot, slope jump 1, |X| = 2: sqrt(2/pi) / 2
    relu = pc.Network.from_weights([(np.ones((1, 1)), [0.0]), (np.ones((1, 1)), [0.0])],
                                   ["relu", "identity"])
    res = pc.compare(relu, pc.Box(-1, 1, dim=1), n_samples=[10], seed=0, eps=1e-2,
                     rugosity_n_samples=1 << 12)
    hand = 0.3989422804014327
    assert res.rugosity_limit.value == pytest.approx(hand, rel=1e-12)
    # the estimate: a sample contributes |jump| / eps = 1 / eps iff x and x + eps u straddle 0
    assert res.rugosity.value == pytest.approx(res.rugosity.crossings / (1 << 12) / 1e-2)
    assert res.rugosity_relative_error == pytest.approx(res.rugosity.value / hand - 1,
                                                        rel=1e-9)


def test_spurious_patterns_do_not_count_in_the_relative_error():
    # grid points of the tent map sit on boundaries: more patterns than regions, but the
    # relative error is that of the patterns that are regions (a lower bound: <= 0)
    res = pc.compare(tent_map(4), pc.Box(0, 1, dim=1), n_samples=[17, 129], method="grid",
                     rugosity=False)
    assert res.sampling.regions[-1] > res.regions == 16
    assert res.found[-1] == 16
    assert np.all(res.sampling_relative_error <= 0) and res.sampling_relative_error[-1] == 0
    assert res.as_dict()["sampling"]["per_layer_relative_error"][-1] == 0
    np.testing.assert_array_equal(res.found + res.in_slivers + res.spurious,
                                  res.sampling.regions)


def test_compare_on_a_partial_tree_does_not_classify_patterns(tmp_path, capsys):
    net = random_network(3, [10, 10], seed=0)
    box = pc.Box(-1, 1, dim=3)
    res = pc.compare(net, box, n_samples=[100, 1000], seed=0, engine="lp", max_regions=20,
                     rugosity=False)
    assert res.partial
    # the budget stops early: most sampled patterns are regions never reached, not spurious
    assert res.sampling.regions[-1] > res.regions
    assert res.found is None and res.spurious is None and res.in_slivers is None
    assert res.sampling_relative_error is None and res.per_layer_relative_error is None
    out = res.as_dict()["sampling"]
    assert out["found"] is None and out["spurious"] is None and "partial" in out["note"]
    assert "not split into found" in str(res)
    # the complete enumeration: every sampled pattern is a region
    full = pc.compare(net, box, n_samples=[100, 1000], seed=0, engine="lp", rugosity=False)
    assert not full.partial and full.spurious.tolist() == [0, 0]
    np.testing.assert_array_equal(full.found, full.sampling.regions)
    # the CLI: exit code 3, found / spurious null
    path = tmp_path / "net.npz"
    pc.save_npz(net, path)
    assert main(["compare", str(path), "--box", "-1", "1", "--samples", "100", "--engine", "lp",
                 "--max-regions", "20", "--json"]) == 3
    cli = json.loads(capsys.readouterr().out)["sampling"]
    assert cli["found"] is None and cli["spurious"] is None and cli["relative_error"] is None


def _sliver_network():
    # units x and x + 0.001 y - 0.002 bound a strip 0 < x < 0.002 - 0.001 y (width <= 0.003),
    # cut by 0.3 x + y + 0.1; the identity head adds no cut
    W1 = np.array([[1.0, 0.0], [1.0, 0.001], [0.3, 1.0]])
    return pc.Network.from_weights([(W1, [0.0, -0.002, 0.1]), (np.ones((1, 3)), [0.0])],
                                   ["relu", "identity"])


def test_thin_regions_are_regions_for_the_sampler_too():
    # with tol = 0.01 the strip's two cells (inradius <= 0.0015) are thin: regions settled in
    # exact arithmetic, counted, so every sampled pattern is a region and none is "in a sliver"
    net, box = _sliver_network(), pc.Box(-1, 1, dim=2)
    res = pc.compare(net, box, n_samples=[1000, 200_000], seed=0, tol=0.01, rugosity=False)
    assert res.regions == 6 and res.slivers == [0, 0]
    # independent: the sample points in the strip, from the weights
    T = approx.sample_domain(box, 200_000, seed=np.random.default_rng(0))
    strip = (T[:, 0] > 0) & (T[:, 0] + 0.001 * T[:, 1] - 0.002 < 0)
    assert strip.sum() > 100
    codes = np.hstack(net.codes(T))
    in_strip = {tuple(row) for row in codes[strip]}
    outside = {tuple(row) for row in codes[~strip]}
    assert len(in_strip) == 2 and len(outside) == 4
    assert res.in_slivers[-1] == 0 and res.spurious[-1] == 0
    assert res.found[-1] == 6 == res.sampling.regions[-1]
    assert res.sampling_relative_error[-1] == 0


def test_sliver_codes_match_with_undecided_units():
    from powercells.comparison import _in_slivers

    patterns = np.array([[1, 0, 0, 1], [1, 1, 0, 1], [0, 1, 0, 1]], dtype=np.int16)
    assert _in_slivers(patterns, [(3, np.array([[1, -1, 0]]))]).tolist() == [True, True, False]
    assert _in_slivers(patterns, [(3, np.array([[1, 0, 1]]))]).tolist() == [False] * 3
    assert _in_slivers(patterns, [(2, np.array([[0, 1]])),
                                  (4, np.array([[1, 0, 0, 1]]))]).tolist() == [True, False, True]


def test_compare_checks_every_argument_before_enumerating(monkeypatch):
    import powercells.enumerate

    def no_enumeration(*args, **kwargs):
        raise AssertionError("the enumeration ran before the arguments were checked")

    monkeypatch.setattr(powercells.enumerate, "subdivide", no_enumeration)
    net = random_network(2, [4], seed=0, head=1)
    with pytest.raises(approx.ApproximationError, match="unknown rugosity sampling 'lhs'"):
        pc.compare(net, pc.Box(-1, 1, dim=2), n_samples=[10], rugosity_sampling="lhs")
    square = pc.Polytope(np.vstack([np.eye(2), -np.eye(2)]), np.ones(4))
    with pytest.raises(approx.ApproximationError, match="sobol sampling of the rugosity needs"):
        pc.compare(net, square, n_samples=[10], rugosity_sampling="sobol")
    with pytest.raises(approx.ApproximationError, match="eps must be a positive"):
        pc.compare(net, pc.Box(-1, 1, dim=2), n_samples=[10], eps=-1.0)


def test_figures(tmp_path):
    pytest.importorskip("matplotlib")
    from powercells.approx.plot import plot_local_complexity, plot_sampling_convergence

    net = random_network(2, [8, 8], seed=1)
    res = pc.compare(net, pc.Box(-1, 1, dim=2), n_samples=[10, 100, 1000], seed=0, rugosity=False)
    fig = plot_sampling_convergence(res, per_layer=True)
    fig.savefig(tmp_path / "s.png")
    partial = pc.compare(random_network(3, [10, 10], seed=0), pc.Box(-1, 1, dim=3),
                         n_samples=[10, 100], seed=0, engine="lp", max_regions=20, rugosity=False)
    fig = plot_sampling_convergence(partial)
    assert "partial tree" in fig.axes[0].get_legend_handles_labels()[1][0]
    lc = approx.compare_local_complexity(net, np.zeros((2, 2)), radius=0.5, n_directions=2,
                                         seed=0)
    fig = plot_local_complexity(lc)
    fig.savefig(tmp_path / "lc.png")
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "lc.png").stat().st_size > 0


def test_cli_local_complexity(tmp_path, capsys):
    net = random_network(16, [10, 10], seed=2)
    path = tmp_path / "net.npz"
    pc.save_npz(net, path)
    x = np.random.default_rng(0).normal(size=16)
    np.save(tmp_path / "x.npy", x)
    argv = ["local-complexity", str(path), "--point", str(tmp_path / "x.npy"), "--radius", "0.5",
            "--directions", "2", "--seed", "3", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    V = pc.random_directions(16, 2, seed=np.random.default_rng(3))
    expected = approx.compare_local_complexity(net, x, radius=0.5, directions=V).as_dict()
    assert out == expected
    assert {"lc", "exact_neurons", "exact_regions"} <= set(out)          # the documented keys
    assert len(out["exact_crossing"]) == len(out["lc"]) and out["exact_slivers"] == 0.0
    # the engine and the tolerance as for count: the lp engine gives the same exact counts
    assert main(argv + ["--engine", "lp", "--tol", "1e-9"]) == 0
    lp = json.loads(capsys.readouterr().out)
    assert lp == out
    assert main(argv + ["--tol", "-1"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    np.save(tmp_path / "bad.npy", np.zeros(5))
    assert main(argv[:3] + [str(tmp_path / "bad.npy")] + argv[4:]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs 16 values" in err
    assert main(argv[:5] + ["0"] + argv[6:]) == 2
    assert "radius must be a positive" in capsys.readouterr().err


def test_cli_compare(tmp_path, capsys):
    net = random_network(2, [6, 6], seed=0, head=1)
    path = tmp_path / "net.npz"
    pc.save_npz(net, path)
    assert main(["compare", str(path), "--box", "-1", "1", "--samples", "100", "1000",
                 "--rugosity-samples", "4096", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exact"]["regions"] == pc.count_regions(net, pc.Box(-1, 1, dim=2)).regions
    assert out["sampling"]["n_samples"] == [100, 1000]
    assert main(["compare", str(path), "--box", "-1", "1", "--samples", "0"]) == 2
    assert "n_samples must be a positive" in capsys.readouterr().err
    assert main(["compare", str(path), "--box", "-1", "1", "--samples", "50", "--no-rugosity"]) == 0
    assert "rugosity: not requested" in capsys.readouterr().out
    assert main(["compare", str(path), "--box", "-1", "1", "--samples", "50",
                 "--rugosity-samples", "4096", "--rugosity-sampling", "sobol", "--engine",
                 "planar", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rugosity"]["estimate"]["sampling"] == "sobol"
    assert out["exact"]["engine"] == "planar"
