"""The command line: output, JSON, budgets, and one-line errors with non-zero exit codes."""

import json
import subprocess
import sys

import numpy as np
import pytest
from networks import random_network

from powercells.cli import EXIT_ERROR, EXIT_PARTIAL, main


@pytest.fixture
def netfile(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "net.npz"
    np.savez(path, W0=rng.normal(size=(6, 2)), b0=rng.normal(size=6) * 0.3,
             W1=rng.normal(size=(4, 6)), b1=rng.normal(size=4) * 0.3,
             W2=rng.normal(size=(1, 4)), b2=rng.normal(size=1))
    return str(path)


def test_count_json(netfile, capsys):
    assert main(["count", netfile, "--box", "-1", "1", "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert set(data) >= {"regions", "per_layer", "seconds", "engine"}
    assert data["engine"] == "planar" and not data["partial"]
    assert data["regions"] == data["per_layer"][-1] == data["per_layer"][-2]
    assert out.count("\n") == 1
    assert main(["count", netfile, "--box", "-1", "1", "--json", "--engine", "lp"]) == 0
    lp = json.loads(capsys.readouterr().out)
    assert lp["engine"] == "lp" and lp["per_layer"] == data["per_layer"]


def test_count_human_and_domain_file(netfile, tmp_path, capsys):
    dom = tmp_path / "dom.npz"
    np.savez(dom, lo=np.array([-1.0, -0.5]), hi=np.array([1.0, 0.5]))
    assert main(["count", netfile, "--domain", str(dom)]) == 0
    out = capsys.readouterr().out
    assert "regions after layer 1:" in out and "regions:" in out
    poly = tmp_path / "poly.npz"
    np.savez(poly, A=np.array([[-1.0, 0], [0, -1], [1, 1]]), b=np.array([0.0, 0, 1]))
    assert main(["count", netfile, "--domain", str(poly), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["regions"] >= 1


def test_budget_stop_is_partial_with_its_own_exit_code(netfile, capsys):
    code = main(["count", netfile, "--box", "-1", "1", "--json", "--max-regions", "3"])
    assert code == EXIT_PARTIAL
    captured = capsys.readouterr()
    assert json.loads(captured.out)["partial"] is True
    assert "partial" in captured.err


@pytest.mark.parametrize("args,match", [
    (["count", "{net}"], "no domain"),
    (["count", "{net}", "--box", "1", "-1"], "lo > hi"),
    (["count", "{missing}", "--box", "-1", "1"], "no such file"),
    (["count", "{bad}", "--box", "-1", "1"], "not finite"),
    (["count", "{sig}", "--box", "-1", "1"], "sigmoid"),
    (["count", "{net}", "--domain", "{net}"], "lo and hi, or A and b"),
    (["info", "{missing}"], "no such file"),
    (["count", "{net}", "--box", "-1", "1", "--plane", "{p0}", "{p1}", "{p2}", "--domain",
      "{net}"], "cannot be combined"),
    (["count", "{net}", "--plane", "{p0}", "{p1}", "{short}"], "needs 2 values"),
    (["count", "{net}", "--plane", "{p0}", "{p1}", "{missing}"], "no such file"),
    (["count", "{net3}", "--box", "-1", "1", "--engine", "planar"], "2-D domain"),
    (["count", "{net}", "--box", "-1", "1", "--engine", "planar", "--lp", "cvxpy"], "no LP"),
    (["plot", "{net}", "--box", "-1", "1", "--out", "{nodir}"], "does not exist"),
    (["plot", "{net}", "--box", "-1", "1", "--out", "{jpg}"], ".png"),
    (["plot", "{net}", "--box", "-1", "1", "--out", "{png}", "--layer", "7"], "layers 1..3"),
    (["plot", "{net3}", "--box", "-1", "1", "--out", "{png}"], "1-D and 2-D"),
    (["plot", "{net}", "--box", "-1", "1", "--out", "{png}", "--size", "10", "10"], "50..8192"),
])
def test_errors_are_one_line_without_traceback(args, match, netfile, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, W0=np.array([[np.nan, 1.0]]), b0=np.zeros(1))
    sig = tmp_path / "sig.npz"
    np.savez(sig, W0=np.ones((2, 2)), b0=np.zeros(2), activations=np.array(["sigmoid"]))
    for i in range(3):
        np.save(tmp_path / f"p{i}.npy", np.full(2, float(i)))
    np.save(tmp_path / "short.npy", np.zeros(3))
    net3 = tmp_path / "net3.npz"
    np.savez(net3, W0=np.ones((2, 3)), b0=np.zeros(2))
    names = {"net": netfile, "missing": str(tmp_path / "nope.npz"), "bad": str(bad),
             "sig": str(sig), "net3": str(net3), "short": str(tmp_path / "short.npy"),
             "nodir": str(tmp_path / "no" / "x.png"), "jpg": str(tmp_path / "x.jpg"),
             "png": str(tmp_path / "x.png"),
             **{f"p{i}": str(tmp_path / f"p{i}.npy") for i in range(3)}}
    argv = [a.format(**names) for a in args]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("powercells: error:")
    assert match in err and "Traceback" not in err


def test_info(netfile, capsys):
    assert main(["info", netfile]) == 0
    out = capsys.readouterr().out
    assert "relu 2 -> 6" in out and "identity 4 -> 1" in out
    assert main(["info", netfile, "--json"]) == 0
    assert [l["kind"] for l in json.loads(capsys.readouterr().out)["layers"]] == \
        ["relu", "relu", "identity"]


def test_console_script_runs(netfile):
    proc = subprocess.run([sys.executable, "-m", "powercells.cli", "count", netfile, "--box", "-1",
                           "1", "--json", "--no-progress"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["regions"] > 1
    proc = subprocess.run([sys.executable, "-m", "powercells.cli", "count", netfile],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_ERROR and "Traceback" not in proc.stderr


def _png_size(path):
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture
def wide(tmp_path):
    """A 64-input network and three input points."""
    network = random_network(64, [12, 10], seed=3, bias=0.1)
    path = tmp_path / "wide.npz"
    arrays = {}
    for i, layer in enumerate(network.layers):
        arrays[f"W{i}"], arrays[f"b{i}"] = layer.switch_W, layer.switch_b
    np.savez(path, **arrays, activations=np.array(["relu", "relu"]))
    rng = np.random.default_rng(3)
    points = []
    for i in range(3):
        points.append(str(tmp_path / f"q{i}.npy"))
        np.save(points[-1], rng.normal(size=64))
    return network, str(path), points


def test_count_on_a_plane_and_a_segment(wide, capsys):
    import powercells as pc

    network, path, points = wide
    assert main(["count", path, "--plane", *points, "--box", "-1", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    P = np.stack([np.load(p) for p in points])
    plane = pc.Slice.through_points(P, inner=pc.Box(-1, 1, dim=2))
    assert data["engine"] == "planar"
    assert data["per_layer"] == pc.count_regions(network, plane, engine="lp").per_layer
    assert main(["count", path, "--segment", *points[:2], "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    segment = pc.Slice.through_points(P[:2])
    assert data["engine"] == "interval"
    assert data["per_layer"] == pc.count_regions(network, segment, engine="lp").per_layer


@pytest.mark.parametrize("extra,size", [
    ([], (800, 800)),
    (["--layer", "1", "--color-by", "code", "--size", "640", "480"], (640, 480)),
    (["--layer", "0", "--color-by", "none"], (800, 800)),
    (["--all-layers", "--boundary", "--size", "900", "450"], (900, 450)),
])
def test_plot_writes_a_png_of_the_requested_size(netfile, tmp_path, extra, size, capsys):
    out = tmp_path / "fig.png"
    assert main(["plot", netfile, "--box", "-1", "1", "--out", str(out), *extra]) == 0
    assert out.stat().st_size > 5000
    assert _png_size(out) == size
    assert "regions" in capsys.readouterr().out
    assert [p.name for p in tmp_path.glob("*.png")] == ["fig.png"]   # no temporary left


def test_plot_plane_and_segment(wide, tmp_path):
    _, path, points = wide
    a, b = tmp_path / "plane.png", tmp_path / "segment.png"
    assert main(["plot", path, "--plane", *points, "--box", "-1", "1", "--out", str(a)]) == 0
    assert main(["plot", path, "--segment", *points[:2], "--out", str(b),
                 "--size", "700", "350"]) == 0
    assert _png_size(a) == (800, 800) and _png_size(b) == (700, 350)
