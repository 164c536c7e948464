"""The whole command line under hostile input: no traceback, no hang, one line per error.
Every case runs ``powercells.cli.main`` in this process, bounded in time.

The contract checked on every case: the exit code is 0, 2 (one line on stderr, starting
``powercells: error:``) or 3 (a budget; the counts are lower bounds), never 1 (an internal
error, i.e. a bug) or an exception; nothing on stderr looks like a traceback; the case
finishes within :data:`CASE_SECONDS`. The inputs are valid network, domain, point and VNN-LIB
files corrupted by hypothesis (bytes flipped, truncated, spliced; arrays swapped for hostile
ones), and every numeric option at its boundaries. The API-level fuzzing of the ONNX and
VNN-LIB readers is in ``test_onnx_hostile.py`` and ``test_vnnlib_hostile.py``.
"""

import contextlib
import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from networks import random_network

import powercells as pc
from powercells.cli import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, main

#: Wall-clock bound of one case (generous for a shared CI machine: every case is small, and a
#: hang or an unbounded expansion takes far longer).
CASE_SECONDS = 20.0

DATA = Path(__file__).resolve().parent.parent / "data"
ALLOWED = {EXIT_OK, EXIT_ERROR, EXIT_PARTIAL}
FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def run(argv) -> tuple[int, str, str]:
    """``main(argv)`` with its output captured; asserts the contract."""
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    seconds = time.perf_counter() - start
    text = err.getvalue()
    assert code in ALLOWED, f"{argv}: exit code {code}: {text}"
    assert "Traceback" not in text and "internal error" not in text, f"{argv}: {text}"
    if code == EXIT_ERROR:
        lines = [line for line in text.splitlines() if not line.startswith("powercells: warn")]
        assert len(lines) == 1 and lines[0].startswith("powercells: error:"), f"{argv}: {text}"
    assert seconds < CASE_SECONDS, f"{argv}: {seconds:.1f} s"
    return code, out.getvalue(), text


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Valid inputs that the cases corrupt: a 2-D and a 3-D network, a domain file, points,
    a VNN-LIB property for the 3-D network."""
    base = tmp_path_factory.mktemp("valid")
    pc.save_npz(random_network(2, [6, 5], seed=1, head=1), base / "net2.npz")
    pc.save_npz(random_network(3, [6, 5], seed=2, head=2), base / "net3.npz")
    np.savez(base / "box.npz", lo=-np.ones(3), hi=np.ones(3))
    for i, p in enumerate(np.eye(3)):
        np.save(base / f"p{i}.npy", p)
    (base / "prop.vnnlib").write_text(
        "; a box and an output constraint\n"
        + "".join(f"(declare-const X_{i} Real)\n" for i in range(3))
        + "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
        + "".join(f"(assert (<= X_{i} 0.5))\n(assert (>= X_{i} -0.5))\n" for i in range(3))
        + "(assert (or (and (>= Y_0 1.0)) (and (<= Y_1 -2) (>= Y_0 Y_1))))\n")
    return base


def corrupt(data: bytes, draw_ops) -> bytes:
    out = bytearray(data)
    for op, pos, value in draw_ops:
        if not out:
            break
        i = pos % len(out)
        if op == "flip":
            out[i] ^= 1 << (value % 8)
        elif op == "set":
            out[i] = value % 256
        elif op == "cut":
            del out[i:]
        elif op == "dup":
            out[i:i] = out[i:i + 1 + value % 64]
        else:                                   # drop a span
            del out[i:i + 1 + value % 64]
    return bytes(out)


OPS = st.lists(st.tuples(st.sampled_from(["flip", "set", "cut", "dup", "drop"]),
                         st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=6)


# ---------------------------------------------------------------------- the reported examples
def test_reported_examples(files, tmp_path):
    """Malformed files and option values of every kind exit 2 on one line."""
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    np.savez(tmp_path / "noarrays.npz")
    np.savez(tmp_path / "object.npz", W0=np.array([[1, 2]], dtype=object), b0=np.zeros(1))
    np.save(tmp_path / "renamed.npy", np.zeros(3))
    os.rename(tmp_path / "renamed.npy", tmp_path / "renamed.npz")
    d = dict(np.load(files / "net3.npz"))
    np.savez(tmp_path / "complex.npz", **{**d, "W0": d["W0"] + 1j})
    np.savez(tmp_path / "stray.npz", **d, b7=np.zeros(2))
    np.savez(tmp_path / "both.npz", lo=-np.ones(3), hi=np.ones(3), A=np.eye(3), b=np.ones(3))
    (tmp_path / "plane.npy").write_bytes(b"")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'}")
    for name, text in [("declare", "(declare-const)"), ("assert", "(assert)"),
                       ("huge", "(declare-const X_0 Real)(assert (<= X_0 1e400))"),
                       ("bomb", "(declare-const X_0 Real)(assert (<= X_0 1e99999999))"),
                       ("deep", "(" * 100_000 + ")" * 100_000)]:
        (tmp_path / f"{name}.vnnlib").write_text(text)
    (tmp_path / "binary.vnnlib").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "or40.vnnlib").write_text(
        "(declare-const X_0 Real)(declare-const Y_0 Real)"
        + "(assert (or (<= X_0 1) (>= X_0 0)))" * 40)
    net, net3 = files / "net2.npz", files / "net3.npz"
    cases = [
        ["info", empty], ["info", tmp_path / "noarrays.npz"], ["info", tmp_path / "object.npz"],
        ["info", tmp_path / "renamed.npz"], ["info", tmp_path / "complex.npz"],
        ["info", tmp_path / "stray.npz"], ["info", tmp_path], ["info", tmp_path / "missing.npz"],
        ["count", net3, "--domain", tmp_path / "both.npz"],
        ["count", net3, "--plane", tmp_path / "plane.npy", files / "p1.npy", files / "p2.npy"],
        ["count", net3, "--plane", tmp_path / "bad.npy", files / "p1.npy", files / "p2.npy"],
        ["count", net3, "--plane", net3, files / "p1.npy", files / "p2.npy"],
        *[["count", net3, "--vnnlib", tmp_path / f"{n}.vnnlib"]
          for n in ("declare", "assert", "huge", "bomb", "deep", "binary", "or40")],
        ["plot", net, "--box", "-1", "1", "--out", tmp_path],
        ["plot", net, "--box", "-1", "1", "--out", tmp_path / "x.png", "--size", "100000",
         "100000"],
        ["plot", net, "--box", "-1", "1", "--out", tmp_path / "missing" / "x.png"],
        ["compare", net, "--box", "-1", "1", "--samples", "1e10", "--no-rugosity"],
        ["compare", net, "--box", "-1", "1", "--samples", "10000000000", "--no-rugosity"],
        ["compare", net, "--box", "-1", "1", "--samples", "100", "--seed", "-1"],
        ["count", net, "--box", "-1", "1", "--tol", "nan"],
        ["count", net, "--box", "-1", "1", "--tol", "inf"],
        ["count", net, "--box", "-1", "1", "--tol", "1e300"],
        ["count", net, "--box", "-1", "1", "--max-regions", "0"],
        ["export", net, "--box", "-1", "1", "--out", net],
    ]
    for argv in cases:
        code, _, err = run(argv)
        assert code == EXIT_ERROR, (argv, err)
    # negative numbers in exponent form are values, not options
    code, out, _ = run(["count", net, "--box", "-1e-3", "1e-3", "--json"])
    assert code == EXIT_OK and '"regions": ' in out


# ---------------------------------------------------------------------- corrupted files
@FUZZ
@given(ops=OPS)
def test_corrupted_network_files(files, tmp_path, ops):
    path = tmp_path / "net.npz"
    path.write_bytes(corrupt((files / "net2.npz").read_bytes(), ops))
    run(["info", path])
    run(["count", path, "--box", "-1", "1", "--max-regions", "500", "--time-limit", "5"])


def test_zip_member_without_a_name(files, tmp_path):
    """Found by the fuzzer: a spliced central directory left a member named "" (zipfile's
    ``is_dir`` then raised IndexError)."""
    path = tmp_path / "net.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo(""), b"x")
    code, _, err = run(["info", path])
    assert code == EXIT_ERROR and "member has no name" in err


HOSTILE_ARRAYS = st.sampled_from([
    np.array([]), np.zeros((0, 2)), np.zeros((2, 0)), np.zeros((3, 3, 3)), np.float64(1.0),
    np.array([[np.nan, 1.0]]), np.array([[np.inf, 1.0]]), np.full((4, 2), 1e308),
    np.full((4, 2), 5e-324), np.array([[1, 2]], dtype=np.int8), np.ones((2, 2), dtype=bool),
    np.ones((2, 2), dtype=np.float16), np.array(["relu", "abs"]), np.array([b"x"]),
    np.ones((2, 2), dtype=np.complex64), np.zeros((1, 2), dtype=[("a", "f8"), ("b", "f8")]),
    np.array(["sigmoid"]), np.array(["leaky_relu:2"]), np.array(["maxout:0"]),
    np.array(["leaky_relu:nan"]), np.array(["maxout:99999999999999999999"]),
    np.array(["relu"] * 50), np.ones((2000, 2)), np.array("relu"),
])


@FUZZ
@given(key=st.sampled_from(["W0", "b0", "W1", "b1", "W2", "b2", "activations", "W3", "b3",
                            "x"]),
       value=HOSTILE_ARRAYS, drop=st.sampled_from([None, "W0", "b1", "W2"]))
def test_hostile_network_arrays(files, tmp_path, key, value, drop):
    arrays = dict(np.load(files / "net2.npz"))
    arrays[key] = value
    if drop is not None and drop != key:
        arrays.pop(drop, None)
    path = tmp_path / "net.npz"
    np.savez(path, **arrays)
    run(["info", path])
    run(["count", path, "--box", "-1", "1", "--max-regions", "500", "--time-limit", "5"])


@FUZZ
@given(lo=HOSTILE_ARRAYS, hi=HOSTILE_ARRAYS, keys=st.sampled_from([("lo", "hi"), ("A", "b"),
                                                                     ("lo", "b"), ("lo",)]))
def test_hostile_domain_and_point_files(files, tmp_path, lo, hi, keys):
    domain = tmp_path / "dom.npz"
    np.savez(domain, **dict(zip(keys, (lo, hi))))
    run(["count", files / "net3.npz", "--domain", domain, "--max-regions", "500",
         "--time-limit", "5"])
    point = tmp_path / "p.npy"
    np.save(point, lo)
    run(["count", files / "net3.npz", "--plane", point, files / "p1.npy", files / "p2.npy",
         "--max-regions", "500", "--time-limit", "5"])
    run(["local-complexity", files / "net3.npz", "--point", point, "--radius", "0.1",
         "--directions", "2"])


@FUZZ
@given(ops=OPS)
def test_corrupted_vnnlib_files(files, tmp_path, ops):
    path = tmp_path / "prop.vnnlib"
    path.write_bytes(corrupt((files / "prop.vnnlib").read_bytes(), ops))
    run(["count", files / "net3.npz", "--vnnlib", path, "--max-regions", "500",
         "--time-limit", "5"])
    run(["verify", files / "net3.npz", path, "--max-regions", "500", "--time-limit", "5"])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
def test_corrupted_onnx_files(tmp_path, ops):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    W0, W1 = rng.normal(size=(2, 6)).astype(np.float32), rng.normal(size=(6, 1))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W0"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "W1"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        [numpy_helper.from_array(W0, "W0"), numpy_helper.from_array(W1.astype(np.float32),
                                                                    "W1")])
    model = helper.make_model(graph)
    path = tmp_path / "net.onnx"
    path.write_bytes(corrupt(model.SerializeToString(), ops))
    onnx.checker.check_model(model)             # the uncorrupted model is valid
    run(["info", path])
    run(["count", path, "--box", "-1", "1", "--max-regions", "500", "--time-limit", "5"])


# ---------------------------------------------------------------------- options at their bounds
NUMBERS = ["0", "-1", "-0", "1e-320", "1e400", "-1e400", "nan", "inf", "-inf", "-1e-3",
           "1e300", "abc", "", "1e6", "9" * 40, "0x10", "1_000", "2.5"]


@pytest.mark.parametrize("option,base", [
    ("--tol", ["count", "{net}", "--box", "-1", "1"]),
    ("--max-regions", ["count", "{net}", "--box", "-1", "1"]),
    ("--time-limit", ["count", "{net}", "--box", "-1", "1"]),
    ("--box", ["count", "{net}", "--box", "-1"]),
    ("--layer", ["plot", "{net}", "--box", "-1", "1", "--out", "{png}"]),
    ("--size", ["plot", "{net}", "--box", "-1", "1", "--out", "{png}", "--size", "100"]),
    ("--samples", ["compare", "{net}", "--box", "-1", "1", "--no-rugosity"]),
    ("--seed", ["compare", "{net}", "--box", "-1", "1", "--no-rugosity", "--samples", "50"]),
    ("--eps", ["compare", "{net}", "--box", "-1", "1", "--samples", "50",
               "--rugosity-samples", "100"]),
    ("--rugosity-samples", ["compare", "{net}", "--box", "-1", "1", "--samples", "50"]),
    ("--radius", ["local-complexity", "{net}", "--point", "{point}", "--directions", "2"]),
    ("--directions", ["local-complexity", "{net}", "--point", "{point}", "--radius", "0.5"]),
    ("--max-disjuncts", ["count", "{net3}", "--vnnlib", "{prop}"]),
])
def test_options_at_their_bounds(files, tmp_path, option, base):
    np.save(tmp_path / "pt.npy", np.zeros(2))
    names = {"net": files / "net2.npz", "net3": files / "net3.npz", "png": tmp_path / "x.png",
             "point": tmp_path / "pt.npy", "prop": files / "prop.vnnlib"}
    for value in NUMBERS:
        argv = [a.format(**names) for a in base]
        run(argv + ([value] if option in ("--box", "--size") else [option, value]))


def test_names_of_outputs(files, tmp_path):
    net = files / "net2.npz"
    (tmp_path / "file").write_text("x")
    odd = tmp_path / "a b\u00e9\nc"
    for out in [tmp_path / "file", odd, tmp_path / "file" / "sub", "/"]:
        code, _, _ = run(["export", net, "--box", "-1", "1", "--out", out, "--overwrite"])
        assert (code == EXIT_OK) == (out == odd)
    assert (tmp_path / "file").read_text() == "x"
    assert pc.io.export.read_export(odd)["summary"]["regions"] >= 1
    with zipfile.ZipFile(tmp_path / "z.npz", "w") as z:      # an npz with a folder inside
        z.writestr("W0/", "")
    assert run(["info", tmp_path / "z.npz"])[0] == EXIT_ERROR


def _npy_header(shape) -> bytes:
    """An .npy header declaring ``shape`` of float64, with no data after it."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                                "shape": tuple(shape)})
    return buf.getvalue()


def test_special_files_and_declared_sizes_are_refused_before_reading(files, tmp_path,
                                                                     monkeypatch):
    """Regression: a network path linked to /dev/zero was read until the machine ran out
    of memory; an 8 MB file of compressed zeros declared 4 GB of weights."""
    os.symlink("/dev/zero", tmp_path / "zero.npz")
    os.mkfifo(tmp_path / "fifo.npz")
    for path in ("zero.npz", "fifo.npz"):
        code, _, err = run(["info", tmp_path / path])
        assert code == EXIT_ERROR and "not a regular file" in err
    from powercells.io import arrays

    code, _, err = run(["info", files / "net2.npz"])
    assert code == EXIT_OK
    # the limit holds for a file's arrays together, checked from the headers: each array
    # below fits, both do not (the limit made small so that the file can be)
    monkeypatch.setattr(arrays, "MAX_ARRAY_ELEMENTS", 100)
    np.savez(tmp_path / "big.npz", W0=np.ones((30, 2)), b0=np.ones(30), W1=np.ones((1, 30)),
             b1=np.ones(1))
    code, _, err = run(["info", tmp_path / "big.npz"])
    assert code == EXIT_ERROR and "elements together" in err
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:      # 2^60 elements declared
        z.writestr("W0.npy", _npy_header((1 << 30, 1 << 30)))
    code, _, err = run(["info", tmp_path / "huge.npz"])
    assert code == EXIT_ERROR and "elements together" in err
    with zipfile.ZipFile(tmp_path / "short.npz", "w") as z:
        z.writestr("W0.npy", _npy_header((4, 2)))
        z.writestr("b0.npy", _npy_header((4,)))
    code, _, err = run(["info", tmp_path / "short.npz"])
    assert code == EXIT_ERROR and "truncated" in err
