"""The certified mode (``certify=True``: the exact engine) and its certificates.

Counts are checked against the float engines, an exact brute force and closed forms; the
certificate checker (``powercells.certificate``) must accept what the certified mode writes
and reject every kind of tampering.
"""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from networks import (
    maxout_network,
    maxpool_network,
    near_coincident_network,
    random_network,
    tent_map,
)
from strategies import integer_networks

import powercells as pc
from powercells.certificate import check_certificate
from powercells.cli import EXIT_ERROR, EXIT_OK, main
from powercells.errors import CertificateError, OptionError
from powercells.testing import assert_partitions_equal, brute_force_regions

BOX1, BOX2, BOX3 = (pc.Box(-1, 1, dim=d) for d in (1, 2, 3))


@pytest.mark.parametrize("d,widths,acts", [
    (1, [4, 3], ["relu", "abs"]),
    (2, [6, 5], ["relu", "relu"]),
    (2, [5, 4], ["leaky_relu:0.1", "relu"]),
    (3, [6, 4], ["relu", "abs"]),
])
def test_certified_counts_equal_the_float_engines_on_generic_networks(d, widths, acts):
    net = random_network(d, widths, seed=d, activations=acts, head=1)
    box = pc.Box(-1, 1, dim=d)
    float_count = pc.count_regions(net, box)
    exact = pc.count_regions(net, box, certify=True, engine="exact")
    certified = pc.count_regions(net, box, certify=True)
    # in 2 to 8 dimensions ``auto`` certifies with a float engine's filter
    assert exact.engine == "exact"
    assert certified.engine == {1: "exact", 2: "planar (certified)", 3: "vertex (certified)"}[d]
    for run in (exact, certified):
        assert not run.partial and run.per_layer == float_count.per_layer
        assert run.undecided == [0] * len(widths + [1])


def test_certified_maxout_equals_the_vertex_engine():
    net = maxout_network(2, [3, 2], 3, seed=1)
    assert pc.count_regions(net, BOX2, certify=True).per_layer == \
        pc.count_regions(net, BOX2, engine="vertex").per_layer


def test_certified_tent_map_has_two_to_the_l_pieces():
    # SPEC §6.1: the L-fold tent map has 2^L linear pieces on [0, 1]
    for L in (1, 3, 5):
        got = pc.count_regions(tent_map(L), pc.Box(0, 1, dim=1), certify=True)
        assert got.regions == 2 ** L


def test_certified_arrangement_is_zaslavsky():
    # n lines in general position in a box containing every vertex: sum_{i<=2} C(n, i)
    rng = np.random.default_rng(3)
    n = 6
    angles = np.sort(rng.uniform(0, np.pi, n))
    W = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    b = rng.uniform(-0.3, 0.3, n)
    net = pc.Network.from_weights([(W, b)], ["relu"])
    box = pc.Box(-50, 50, dim=2)
    assert pc.count_regions(net, box, certify=True).regions == sum(math.comb(n, i)
                                                                   for i in range(3))


@settings(max_examples=25, deadline=None)
@given(integer_networks(dims=(1, 2), width=(1, 4)))
def test_certified_counts_equal_brute_force_on_degenerate_integer_networks(case):
    network, d = case
    box = pc.Box(-1, 1, dim=d)
    # small integer weights: the float brute force is exact on them (every value is an
    # integer far below 2^53), so the leaves must be the same code paths
    assert_partitions_equal(pc.subdivide(network, box, certify=True),
                            brute_force_regions(network, box))


def test_certified_mode_finds_wedges_thinner_than_any_lp_tolerance():
    # two lines at an angle of 1e-13: HiGHS (tolerance ~1e-9) cannot resolve the two wedges,
    # exact arithmetic can; the lp engine sets such sides aside and settles them exactly
    a = 1e-13
    net = pc.Network.from_weights([(np.array([[0.0, 1.0], [np.sin(a), np.cos(a)]]), np.zeros(2)),
                                   (np.ones((1, 2)), [0.0])])
    certified = pc.count_regions(net, BOX2, certify=True)
    assert certified.per_layer == [4, 4]
    lp = pc.count_regions(net, BOX2, engine="lp")
    assert lp.per_layer == [4, 4] and lp.thin == [2, 2]
    tree = pc.subdivide(net, BOX2, certify=True)
    # every interior point is a witness of its code (rounded to float64, still inside here)
    for depth in (1, 2):
        level = tree.levels[depth]
        assert len(level) == 4
        assert np.all(level.inradius > 0)


def test_parallel_lines_1e_minus_15_apart():
    # x = 0 and x = 2^-50: a slab of width ~8.9e-16, below every float tolerance
    net = pc.Network.from_weights([(np.array([[1.0, 0.0], [1.0, 0.0]]),
                                    np.array([0.0, -2.0 ** -50]))], ["relu"])
    assert pc.count_regions(net, BOX2, certify=True).per_layer == [3]


# ------------------------------------------------------------------------------ certificates
def _certified_network(kind):
    if kind == "maxout":
        return maxout_network(2, [3, 2], 3, seed=1)
    if kind == "maxpool":
        return maxpool_network(2, 6, [np.array([0, 1, 2]), np.array([3, 4]), np.array([5])],
                               seed=3, second=3)
    return random_network(2, [5, 4], seed=7, head=1)


@pytest.fixture(params=["relu", "maxout", "maxpool"])
def certified(tmp_path, request):
    net = _certified_network(request.param)
    path = tmp_path / "count.cert"
    result = pc.count_regions(net, BOX2, certify=True, certificate=path)
    return net, path, result


def test_certificate_verifies_and_states_the_counts(certified):
    net, path, result = certified
    report = check_certificate(net, BOX2, path)
    assert report.per_layer == result.per_layer == pc.count_regions(net, BOX2).per_layer
    assert report.farkas > 0 and report.nodes == 1 + sum(result.per_layer[:-1])
    assert not list(path.parent.glob(".*.tmp"))           # written atomically


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path, items):
    path.write_text("".join(json.dumps(item) + "\n" for item in items))


def _tampered(path, change):
    items = _lines(path)
    change(items)
    out = path.with_name("tampered.cert")
    _write(out, items)
    return out


def _first(items, pred):
    return next(item for item in items[1:-1] if pred(item))


def test_a_witness_moved_out_of_its_region_is_rejected(certified):
    net, path, _ = certified

    def move(items):
        rec = _first(items, lambda r: len(r["children"]) > 1)
        child = rec["children"][0]
        nums, den = child["witness"]
        child["witness"] = [[str(int(v) + 3 * int(den)) for v in nums], den]   # +3 per axis
    with pytest.raises(CertificateError, match="witness"):
        check_certificate(net, BOX2, _tampered(path, move))


def test_a_deleted_region_is_caught(certified):
    net, path, _ = certified

    def delete(items):
        rec = _first(items, lambda r: len(r["children"]) > 1 and len(r["path"]) == 1)
        rec["children"].pop()
    with pytest.raises(CertificateError, match="do not match|no record|not a node"):
        check_certificate(net, BOX2, _tampered(path, delete))


def test_a_region_deleted_with_a_forged_certificate_is_caught(certified):
    # deleting a child and claiming its last sign is empty needs a Farkas combination: reusing
    # another one does not sum to 0 < 0
    net, path, _ = certified

    def forge(items):
        rec = _first(items, lambda r: len(r["children"]) > 1 and r["ruled_out"])
        gone = rec["children"].pop()
        code = gone["code"]
        unit = len(code) - 1
        rec["ruled_out"].append({"prefix": code[:unit], "unit": unit, "side": code[unit],
                                 "farkas": rec["ruled_out"][0]["farkas"]})
    with pytest.raises(CertificateError):
        check_certificate(net, BOX2, _tampered(path, forge))


def test_a_max_piece_ruled_out_without_a_certificate_is_caught(tmp_path):
    """A max unit's piece may be left out with no certificate only where a constant difference
    rules it out; the checker re-derives that, so a deleted region cannot hide behind null."""
    net = _certified_network("maxout")
    path = tmp_path / "count.cert"
    pc.count_regions(net, BOX2, certify=True, certificate=path)
    assert check_certificate(net, BOX2, path).regions > 0

    def hide(items):
        rec = _first(items, lambda r: len(r["children"]) > 1)
        code = rec["children"].pop()["code"]
        unit = len(code) - 1
        rec["ruled_out"].append({"prefix": code[:unit], "unit": unit, "side": code[unit],
                                 "farkas": None})
    with pytest.raises(CertificateError, match="without a certificate"):
        check_certificate(net, BOX2, _tampered(path, hide))


@pytest.mark.parametrize("how", ["negate", "scale_one", "zero", "bad_row"])
def test_an_altered_emptiness_certificate_is_rejected(certified, how):
    net, path, _ = certified

    def alter(items):
        def long(x):
            return x["farkas"] is not None and len(x["farkas"]) > 1

        rec = _first(items, lambda r: any(long(x) for x in r["ruled_out"]))
        proof = next(x for x in rec["ruled_out"] if long(x))["farkas"]
        if how == "negate":
            proof[0][1] = "-" + proof[0][1]
        elif how == "scale_one":
            from fractions import Fraction

            proof[0][1] = str(2 * Fraction(proof[0][1]))
        elif how == "zero":
            for term in proof:
                term[1] = "0"
        else:
            proof[0][0] = ["d", 99]
    with pytest.raises(CertificateError):
        check_certificate(net, BOX2, _tampered(path, alter))


def test_a_missing_record_and_wrong_totals_are_rejected(certified):
    net, path, _ = certified

    def drop(items):
        items.pop(2)
    with pytest.raises(CertificateError, match="no record"):
        check_certificate(net, BOX2, _tampered(path, drop))

    def total(items):
        items[-1]["per_layer"][-1] += 1
    with pytest.raises(CertificateError, match="states per-layer counts"):
        check_certificate(net, BOX2, _tampered(path, total))


def test_a_certificate_does_not_verify_another_network_or_domain(certified):
    net, path, _ = certified
    other = random_network(2, [5, 4], seed=8, head=1)
    with pytest.raises(CertificateError):
        check_certificate(other, BOX2, path)
    with pytest.raises(CertificateError):
        check_certificate(net, pc.Box(-0.5, 0.5, dim=2), path)
    with pytest.raises(CertificateError, match="widths"):
        check_certificate(random_network(2, [5, 3], seed=7, head=1), BOX2, path)


def test_cli_certify_and_check(tmp_path, capsys):
    net = random_network(2, [4, 3], seed=2)
    pc.save_npz(net, tmp_path / "net.npz")
    cert = tmp_path / "c.cert"
    assert main(["count", str(tmp_path / "net.npz"), "--box", "-1", "1", "--certify",
                 "--certificate", str(cert), "--json"]) == EXIT_OK
    counted = json.loads(capsys.readouterr().out)
    assert counted["engine"] == "exact" and counted["undecided"] == [0, 0]
    assert main(["check-certificate", str(tmp_path / "net.npz"), str(cert), "--box", "-1", "1",
                 "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] and report["per_layer"] == counted["per_layer"]
    bad = _tampered(cert, lambda items: items[1]["children"].pop())
    assert main(["check-certificate", str(tmp_path / "net.npz"), str(bad), "--box", "-1",
                 "1"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("powercells: error:") and len(err.strip().splitlines()) == 1


def test_certify_options_are_checked(tmp_path):
    net = random_network(2, [3], seed=0)
    with pytest.raises(OptionError, match="exact engine"):
        pc.count_regions(net, BOX2, certify=True, engine="interval")
    with pytest.raises(OptionError, match="no certificate"):
        pc.count_regions(net, BOX2, certify=True, engine="planar", certificate=tmp_path / "c")
    with pytest.raises(OptionError, match="certify=True"):
        pc.count_regions(net, BOX2, certificate=tmp_path / "c")
    with pytest.raises(OptionError, match="slice"):
        plane = pc.Slice.through_points(np.eye(3), pc.Box(0, 1, dim=2))
        pc.count_regions(random_network(3, [3], seed=0), plane, certify=True)
    assert not list(tmp_path.iterdir())                      # nothing half-written


# ------------------------------------------------------------------ codes certified at points
def test_certified_codes_at_interior_points_of_every_leaf():
    from powercells.network.certified import certified_codes

    for net, box in [(random_network(2, [8, 6], seed=3, head=1), BOX2),
                     (random_network(3, [6, 5], seed=4, activations=["leaky_relu:0.2", "abs"]),
                      BOX3),
                     (maxout_network(2, [3, 2], 3, seed=2), BOX2)]:
        tree = pc.subdivide(net, box)
        X = tree.levels[-1].interior_point
        codes, status = certified_codes(net, X)
        assert np.all(status > 0)
        np.testing.assert_array_equal(np.hstack(codes), tree.path_codes(tree.depth))


def test_points_on_a_hyperplane_are_not_certified_and_near_ones_go_exact():
    from powercells.network.certified import certified_codes

    # the unit switches on x = 1; one float step away the filter's bound (~1e-15) cannot
    # decide, exact arithmetic can; on the hyperplane nothing can
    net = pc.Network.from_weights([(np.array([[1.0, 0.0]]), np.array([-1.0]))], ["relu"])
    X = np.array([[1.0, 0.3], [1.0 + 2.0 ** -52, 0.3], [1.0 - 2.0 ** -53, 0.3], [0.5, 0.3]])
    codes, status = certified_codes(net, X)
    assert status.tolist() == [0, 2, 2, 1]
    assert codes[0][1:, 0].tolist() == [1, 0, 0]


def test_dead_and_duplicate_units_do_not_block_certification():
    from powercells.network.certified import certified_codes

    W = np.array([[1.0, 2.0], [0.0, 0.0], [1.0, 2.0]])      # a dead unit, a duplicate
    net = pc.Network.from_weights([(W, np.array([0.1, 0.0, 0.1])),
                                   (np.array([[0.0, 3.0, 0.0]]), np.array([0.0]))],
                                  ["relu", "relu"])
    X = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    X = X[np.abs(X @ W[0] + 0.1) > 1e-6]
    codes, status = certified_codes(net, X)
    # layer 2 reads only the dead unit: identically zero, inactive, certified by the filter
    assert np.all(status == 1) and np.all(codes[1] == 0) and np.all(codes[0][:, 1] == 0)


@pytest.mark.parametrize("eps,regions", [(0.0, 6), (2.0 ** -50, 7), (-(2.0 ** -50), 7)])
def test_a_vertex_a_hair_off_a_line(eps, regions):
    # x = 0, y = 0 and x + y = eps: concurrent at eps = 0 (6 regions); 1e-15 off, a triangle of
    # inradius ~2.6e-16 appears (7 regions), below every float tolerance
    net = pc.Network.from_weights([(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
                                    np.array([0.0, 0.0, -eps]))], ["relu"])
    got = pc.count_regions(net, BOX2, certify=True)
    assert got.per_layer == [regions]
    tree = pc.subdivide(net, BOX2, certify=True)
    codes = {tuple(c) for c in tree.levels[1].code.tolist()}
    # the extra region is the triangle: x, y on the side the third line excludes elsewhere
    assert len(codes) == regions
    if eps > 0:
        assert (1, 1, 0) in codes           # x > 0, y > 0, x + y < eps
    elif eps < 0:
        assert (0, 0, 1) in codes           # x < 0, y < 0, x + y > eps


def test_certify_leaves_gives_a_proven_lower_bound(tmp_path, capsys):
    a = 1e-10
    wedges = pc.Network.from_weights([(np.array([[0.0, 1.0], [np.sin(a), np.cos(a)]]),
                                       np.zeros(2)), (np.ones((1, 2)), [0.0])])
    got = pc.count_regions(wedges, BOX2, certify_leaves=True)
    assert got.regions == got.certified == 4 and got.as_dict()["certified_leaves"] == 4
    assert pc.count_regions(wedges, BOX2).certified is None
    # {-1, 0, 1} weights plus noise: auto's vertex run is redone with the lp engine, and the
    # certifying sink is redone with it
    noisy = near_coincident_network()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")              # no PrecisionWarning: the lp rerun ran
        got = pc.count_regions(noisy, pc.Box(-1, 1, dim=4), certify_leaves=True)
    assert got.engine == "lp" and got.certified == got.regions
    with pytest.raises(OptionError, match="store"):
        pc.count_regions(wedges, BOX2, certify_leaves=True, store=tmp_path / "s")
    with pytest.raises(OptionError, match="slice"):
        plane = pc.Slice.through_points(np.eye(3), pc.Box(0, 1, dim=2))
        pc.count_regions(random_network(3, [3], seed=0), plane, certify_leaves=True)
    pc.save_npz(wedges, tmp_path / "w.npz")
    assert main(["count", str(tmp_path / "w.npz"), "--box", "-1", "1", "--certify-leaves",
                 "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["certified_leaves"] == 4
