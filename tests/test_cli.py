"""The command line: output, JSON, budgets, and one-line errors with non-zero exit codes."""

import json
import subprocess
import sys

import numpy as np
import pytest

from powercells.cli import EXIT_ERROR, EXIT_PARTIAL, main
from networks import random_network


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
    assert data["engine"] == "lp" and not data["partial"]
    assert data["regions"] == data["per_layer"][-1] == data["per_layer"][-2]
    assert out.count("\n") == 1


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
])
def test_errors_are_one_line_without_traceback(args, match, netfile, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, W0=np.array([[np.nan, 1.0]]), b0=np.zeros(1))
    sig = tmp_path / "sig.npz"
    np.savez(sig, W0=np.ones((2, 2)), b0=np.zeros(2), activations=np.array(["sigmoid"]))
    names = {"net": netfile, "missing": str(tmp_path / "nope.npz"), "bad": str(bad),
             "sig": str(sig)}
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
