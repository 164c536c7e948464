"""VNN-LIB properties (exact numbers, disjunctions of boxes), `verify`, and the CLI on ONNX."""

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from networks import random_network

import powercells as pc
from powercells.cli import EXIT_ERROR, main

DATA = Path(__file__).resolve().parent.parent / "data"


def test_acas_properties():
    p1 = pc.read_vnnlib(DATA / "acasxu" / "prop_1.vnnlib")
    assert (p1.n_inputs, p1.n_outputs, len(p1)) == (5, 5, 1)
    region = p1.regions[0]
    assert region.domain.hi[0] == 0.679857769 and region.domain.lo[3] == 0.45
    # numbers stay exact until converted
    assert Fraction("0.679857769") in [b for b in region.b_exact]
    (unsafe,) = region.unsafe
    np.testing.assert_array_equal(unsafe.mat, [[-1.0, 0, 0, 0, 0]])       # Y_0 >= 3.99...
    assert unsafe.rhs_exact == [Fraction("-3.991125645861615")]
    p2 = pc.read_vnnlib(DATA / "acasxu" / "prop_2.vnnlib")
    (unsafe,) = p2.regions[0].unsafe                                         # Y_i <= Y_0, i >= 1
    np.testing.assert_array_equal(unsafe.mat, [[-1, 1, 0, 0, 0], [-1, 0, 1, 0, 0],
                                               [-1, 0, 0, 1, 0], [-1, 0, 0, 0, 1]])
    p6 = pc.read_vnnlib(DATA / "acasxu" / "prop_6.vnnlib")
    assert len(p6) == 2                                        # a disjunction of two boxes
    assert p6.regions[0].domain.lo[1] > 0 > p6.regions[1].domain.hi[1]
    assert all(len(r.unsafe) == 4 for r in p6.regions)
    p7 = pc.read_vnnlib(DATA / "acasxu" / "prop_7.vnnlib")
    assert [u.mat.shape for u in p7.regions[0].unsafe] == [(3, 5), (3, 5)]


def test_parser_features_and_errors(tmp_path):
    path = tmp_path / "p.vnnlib"
    path.write_text("""; comment
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (and (>= X_0 -1) (<= X_0 1/2)))
(assert (<= (+ X_1 (* 2 X_0)) 1)) (assert (>= X_1 -1))
(assert (or (>= (- Y_0 Y_1) 0.25) (and (<= Y_0 -3) (< Y_1 0))))
""")
    prop = pc.read_vnnlib(path)
    (region,) = prop.regions
    assert region.bounds is None                          # a coupled constraint: a polytope
    assert isinstance(region.domain, pc.Polytope)
    assert [u.mat.tolist() for u in region.unsafe] == [[[-1.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]
    assert region.unsafe[0].rhs_exact == [Fraction(-1, 4)]
    for text, match in [("(declare-const Z_0 Real)", "not X_i or Y_j"),
                        ("(declare-const X_0 Real)(declare-const Y_0 Real)"
                         "(assert (<= X_0 Y_0))", "mixes inputs and outputs"),
                        ("(declare-const X_0 Real)(assert (<= (* X_0 X_0) 1))", "not linear"),
                        ("(declare-const X_0 Real)(assert (<= X_0 1)", "unbalanced"),
                        ("(declare-const X_0 Real)(assert (<= W_0 1))", "unknown name")]:
        path.write_text(text)
        with pytest.raises(pc.PowercellsError, match=match):
            pc.read_vnnlib(path)
    with pytest.raises(pc.PowercellsError, match="cannot read"):
        pc.read_vnnlib(tmp_path / "missing.vnnlib")


@pytest.mark.parametrize("name", ["test_nano", "test_tiny", "test_small"])
def test_vnncomp_test_properties_hold(name):
    network = pc.load(DATA / "vnncomp-test" / f"{name}.onnx")
    result = pc.verify(network, DATA / "vnncomp-test" / f"{name}.vnnlib")
    assert result.status == "holds" and result.undecided == 0
    # the exact answer agrees with the largest output over the box: Y_0 >= 100 is unreachable
    tree = pc.subdivide(network, pc.Box(-1, 1, dim=1))
    lo, hi = tree.intervals()
    assert network.forward(np.concatenate([lo, hi])[:, None]).max() < 100


def _write_property(path, box, rows, rhs):
    lines = [f"(declare-const X_{i} Real)" for i in range(len(box[0]))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(len(rows[0]))]
    for i, (a, b) in enumerate(zip(*box)):
        lines.append(f"(assert (>= X_{i} {float(a)!r}))")
        lines.append(f"(assert (<= X_{i} {float(b)!r}))")
    for row, r in zip(rows, rhs):
        terms = " ".join(f"(* {float(c)!r} Y_{j})" for j, c in enumerate(row) if c)
        lines.append(f"(assert (<= (+ {terms}) {float(r)!r}))")
    path.write_text("\n".join(lines))


def test_verify_finds_a_checked_counterexample_exactly_at_the_maximum(tmp_path):
    network = random_network(3, [8, 6], seed=4, head=1)
    box = pc.Box(-1, 1, dim=3)
    tree = pc.subdivide(network, box)
    # the exact maximum of the output over the box, from the vertices of every leaf
    from scipy.optimize import linprog

    best = -np.inf
    for i in range(tree.n_regions):
        A, B = tree.affine_map(tree.depth, i)
        H, h = tree.halfspaces(tree.depth, i)
        res = linprog(-A[0], A_ub=H, b_ub=h, bounds=[(None, None)] * 3, method="highs")
        best = max(best, -res.fun + B[0])
    unsafe = tmp_path / "above.vnnlib"
    _write_property(unsafe, ([-1.0] * 3, [1.0] * 3), [[-1.0]], [-(best - 1e-3)])  # y >= max-1e-3
    result = pc.verify(network, unsafe)
    assert result.status == "violated"
    assert network.forward(result.counterexample[None])[0, 0] >= best - 1e-3 - 1e-9
    assert np.all(np.abs(result.counterexample) <= 1 + 1e-9)
    safe = tmp_path / "beyond.vnnlib"
    _write_property(safe, ([-1.0] * 3, [1.0] * 3), [[-1.0]], [-(best + 1e-3)])    # y >= max+1e-3
    result = pc.verify(network, safe)
    assert result.status == "holds" and result.leaves == [tree.n_regions]


def test_verify_errors(tmp_path):
    network = random_network(3, [4], seed=0, head=2)
    path = tmp_path / "p.vnnlib"
    _write_property(path, ([-1.0] * 2, [1.0] * 2), [[1.0, 0.0]], [0.0])
    with pytest.raises(pc.PowercellsError, match="2 inputs, the network 3"):
        pc.verify(network, path)


def test_cli_count_vnnlib_verify_and_info(capsys):
    acas = str(DATA / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    prop6 = str(DATA / "acasxu" / "prop_6.vnnlib")
    assert main(["count", acas, "--vnnlib", prop6, "--max-regions", "20", "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert len(data["boxes"]) == 2 and all(b["partial"] for b in data["boxes"])
    small = str(DATA / "vnncomp-test" / "test_small.onnx")
    assert main(["verify", small, str(DATA / "vnncomp-test" / "test_small.vnnlib"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "holds"
    assert main(["info", acas]) == 0
    out = capsys.readouterr().out
    assert "layer 3 (node Operation_3_Add): relu 50 -> 50" in out
    assert main(["count", acas, "--vnnlib", prop6, "--box", "0", "1"]) == EXIT_ERROR
    assert "do not combine" in capsys.readouterr().err


def test_verify_acas_on_a_small_sub_box(tmp_path):
    network = pc.load(DATA / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    prop = pc.read_vnnlib(DATA / "acasxu" / "prop_1.vnnlib")
    box = prop.regions[0].domain
    (unsafe,) = prop.regions[0].unsafe
    c, h = (box.lo + box.hi) / 2, (box.hi - box.lo) / 2
    lo, hi = c - 0.02 * h, c + 0.02 * h
    # the exact maximum of the unsafe margin rhs - mat @ y ... over the sub-box, leaf by leaf
    from scipy.optimize import linprog

    tree = pc.subdivide(network, pc.Box(lo, hi))
    worst = -np.inf
    for i in range(tree.n_regions):
        A, B = tree.affine_map(tree.depth, i)
        H, hh = tree.halfspaces(tree.depth, i)
        g = -(unsafe.mat @ A)[0]                          # maximise -(mat y) = Y_0
        res = linprog(-g, A_ub=H, b_ub=hh, bounds=[(None, None)] * 5, method="highs")
        worst = max(worst, -res.fun - (unsafe.mat @ B)[0])
    for threshold, expected in [(worst + 1e-6, "holds"), (worst - 1e-6, "violated")]:
        path = tmp_path / f"p{expected}.vnnlib"
        _write_property(path, (lo, hi), [[-1.0, 0, 0, 0, 0]], [-threshold])   # Y_0 >= thr
        result = pc.verify(network, path)
        assert result.status == expected, (threshold, result)
        assert result.leaves[0] <= tree.n_regions
