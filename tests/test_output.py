"""Output folders (exports, leaf folders) are written whole or not at all, under a lock, and never
replace a folder that is not a powercells output."""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from networks import random_network

import powercells as pc
from powercells.cli import EXIT_ERROR, EXIT_INTERRUPTED, main
from powercells.errors import OutputError
from powercells.io.output import MARKER, OutputFolder, is_powercells_output

pytest.importorskip("pyarrow")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture
def netfile(tmp_path):
    path = tmp_path / "net.npz"
    pc.save_npz(random_network(2, [6, 4], seed=3, head=1), path)
    return path


def _tree(path):
    """Every file below ``path`` with its bytes and mode."""
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            st = os.lstat(full)
            out[os.path.relpath(full, path)] = (st.st_mode, None if stat.S_ISDIR(st.st_mode)
                                                else Path(full).read_bytes())
    return out


def test_overwrite_never_replaces_a_folder_that_is_not_an_export(tmp_path, netfile, capsys,
                                                                monkeypatch):
    """The defect that destroyed user files: ``export NET --out . --overwrite`` in the folder
    holding the network removed everything in it and left it at mode 0700."""
    (tmp_path / "notes.txt").write_text("mine")
    before = _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "net.npz", "--box", "-1", "1", "--out", ".", "--overwrite"]) == \
        EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "working folder" in err
    assert _tree(tmp_path) == before                   # every file, byte and mode unchanged
    # the same from the API, for a folder given by its name, from elsewhere
    monkeypatch.chdir(tmp_path.parent)
    with pytest.raises(OutputError, match="not a powercells export"):
        pc.io.export.write_export(pc.subdivide(pc.load(netfile), pc.Box(-1, 1, dim=2)),
                                  tmp_path, overwrite=True)
    assert _tree(tmp_path) == before


def test_an_export_is_replaced_only_with_overwrite_and_gets_normal_permissions(tmp_path, netfile,
                                                                              capsys):
    out = tmp_path / "out"
    assert main(["export", str(netfile), "--box", "-1", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o777 & ~_umask()
    assert is_powercells_output(out, "export")
    assert json.loads((out / MARKER).read_text())["complete"] is True
    first = (out / "summary.json").read_bytes()
    # a second export without --overwrite fails and leaves the first as it was
    assert main(["export", str(netfile), "--box", "-1", "1", "--out", str(out)]) == EXIT_ERROR
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "summary.json").read_bytes() == first
    assert main(["export", str(netfile), "--box", "-1", "1", "--out", str(out), "--overwrite",
                 "--no-ridges"]) == 0
    assert pc.io.export.read_export(out)["ridges"].empty
    assert sorted(os.listdir(tmp_path)) == ["net.npz", "out"]   # no temporary folder or lock


def test_a_legacy_export_without_marker_may_be_overwritten(tmp_path, netfile):
    out = tmp_path / "old"
    tree = pc.subdivide(pc.load(netfile), pc.Box(-1, 1, dim=2))
    pc.io.export.write_export(tree, out)
    os.unlink(out / MARKER)                     # as written before the marker existed
    assert is_powercells_output(out, "export")
    pc.io.export.write_export(tree, out, overwrite=True, ridges=False)
    (out / "extra.txt").write_text("x")         # now it holds something else too
    os.unlink(out / MARKER)
    assert not is_powercells_output(out, "export")
    with pytest.raises(OutputError, match="not a powercells export"):
        pc.io.export.write_export(tree, out, overwrite=True)


def test_a_second_writer_fails_fast_and_the_first_is_untouched(tmp_path, netfile):
    tree = pc.subdivide(pc.load(netfile), pc.Box(-1, 1, dim=2))
    out = tmp_path / "out"
    with OutputFolder(out, kind="export") as first:
        start = time.perf_counter()
        with pytest.raises(OutputError, match="another powercells process is writing"):
            pc.io.export.write_export(tree, out)
        with pytest.raises(OutputError, match="another powercells process is writing"):
            pc.write_leaves(pc.load(netfile), pc.Box(-1, 1, dim=2), out)
        assert time.perf_counter() - start < 5
        (Path(first.tmp) / "data").write_text("first")
        first.commit()
    assert (out / "data").read_text() == "first"
    assert sorted(os.listdir(tmp_path)) == ["net.npz", "out"]


def test_a_folder_that_appears_meanwhile_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    with OutputFolder(out, kind="export") as folder:
        out.mkdir()
        (out / "theirs.txt").write_text("theirs")     # another program made it meanwhile
        with pytest.raises(OutputError, match="not a powercells export"):
            folder.commit()
    assert (out / "theirs.txt").read_text() == "theirs"
    assert sorted(os.listdir(tmp_path)) == ["out"]      # our temporary folder is gone
    # an earlier export that appeared meanwhile is not replaced without overwrite either
    out2 = tmp_path / "out2"
    with OutputFolder(out2, kind="export") as folder:
        with pytest.raises(OutputError, match="another powercells process"):
            OutputFolder(out2, kind="export").__enter__()
        folder.commit()
    assert is_powercells_output(out2, "export")
    with OutputFolder(tmp_path / "out3", kind="export") as late:
        shutil.copytree(out2, tmp_path / "out3")       # an export copied in meanwhile
        with pytest.raises(OutputError, match="already holds a powercells export"):
            late.commit()
    with OutputFolder(out2, kind="export", overwrite=True) as later, \
            OutputFolder(tmp_path / "out4", kind="export") as unrelated:
        unrelated.commit()
        Path(later.tmp, "x").write_text("x")
        later.commit()
    assert (out2 / "x").read_text() == "x"


def test_targets_that_are_not_folders_are_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    os.symlink(tmp_path, tmp_path / "link")
    for target, match in [(tmp_path / "file", "not a folder"), (tmp_path / "link", "symbolic"),
                          (tmp_path / "missing" / "out", "does not exist"),
                          (Path("/"), "root of the file system")]:
        with pytest.raises(OutputError, match=match), OutputFolder(target, kind="export"):
            pass
    assert (tmp_path / "file").read_text() == "x"


def test_stale_temporary_folders_of_a_killed_writer_are_removed(tmp_path):
    out = tmp_path / "out"
    stale = tmp_path / ".out.tmp-killed"
    stale.mkdir()
    (stale / MARKER).write_text(json.dumps({"kind": "export", "complete": False}))
    foreign = tmp_path / ".out.tmp-not-ours"              # no marker: not touched
    foreign.mkdir()
    with OutputFolder(out, kind="export") as folder:
        folder.commit()
    assert not stale.exists() and foreign.exists()


def test_write_leaves_folders(tmp_path):
    network = random_network(2, [8, 6], seed=2)
    box = pc.Box(-1, 1, dim=2)
    out = tmp_path / "leaves"
    result = pc.write_leaves(network, box, out)
    with pytest.raises(OutputError, match="already holds a powercells leaf folder"):
        pc.write_leaves(network, box, out)
    assert sum(len(c) for c in pc.read_leaves(out)) == result.regions
    # an export folder is not a leaf folder: not replaced even with overwrite
    pc.io.export.write_export(pc.subdivide(network, box), tmp_path / "exp")
    with pytest.raises(OutputError, match="not a powercells leaf folder"):
        pc.write_leaves(network, box, tmp_path / "exp", overwrite=True)
    again = pc.write_leaves(network, box, out, overwrite=True, engine="lp")
    assert again.regions == result.regions
    # a damaged folder is reported, never read as fewer or more leaves
    chunks = sorted(out.glob("leaves-*.npz"))
    summary = json.loads((out / "summary.json").read_text())
    summary["chunks"] = summary["chunks"] + [chunks[0].name]
    (out / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(pc.PowercellsError, match="expected"):
        list(pc.read_leaves(out))
    chunks[0].write_bytes(b"garbage")
    with pytest.raises(pc.PowercellsError, match="leaves-00000.npz"):
        list(pc.read_leaves(out))


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    network = random_network(2, [8, 6], seed=2)

    def failing(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", failing)
    with pytest.raises(OutputError, match="No space left"):
        pc.write_leaves(network, pc.Box(-1, 1, dim=2), tmp_path / "leaves")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_export_leaves_nothing_behind(tmp_path, sig):
    """SIGTERM is handled like Ctrl-C: exit code 130, temporary folder and lock removed."""
    net = tmp_path / "net.npz"
    pc.save_npz(random_network(2, [128, 128, 128], seed=0, head=1), net)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "powercells.cli", "export", str(net), "--box",
                             "-1", "1", "--out", str(out)], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    lock = tmp_path / ".out.lock"
    deadline = time.time() + 60
    while not lock.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the export finished before it could be interrupted"
    time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["net.npz"]


def test_an_export_with_anything_added_is_the_users(tmp_path, netfile, capsys, monkeypatch):
    """Regression: ``--overwrite`` deleted a file added to an export folder, the input
    network kept in it, and the working folder when it was an export."""
    out = tmp_path / "exp"
    args = ["export", str(netfile), "--box", "-1", "1", "--out", str(out)]
    assert main(args) == 0
    (out / "notes.txt").write_text("mine")                   # added by hand
    assert main(args + ["--overwrite"]) == EXIT_ERROR
    assert "not a powercells export" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
    os.unlink(out / "notes.txt")
    # a marker written by hand claims nothing it does not list
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / MARKER).write_text(json.dumps({"kind": "export"}))
    (fake / "precious.txt").write_text("x")
    assert main(["export", str(netfile), "--box", "-1", "1", "--out", str(fake),
                 "--overwrite"]) == EXIT_ERROR
    assert (fake / "precious.txt").exists()
    # the run's own input inside the folder
    shutil.copy(netfile, out / "mynet.npz")
    assert main(["export", str(out / "mynet.npz"), "--box", "-1", "1", "--out", str(out),
                 "--overwrite"]) == EXIT_ERROR
    assert "input of this run" in capsys.readouterr().err and (out / "mynet.npz").exists()
    os.unlink(out / "mynet.npz")
    # the working folder, even when it is an export
    monkeypatch.chdir(out)
    assert main(["export", str(netfile), "--box", "-1", "1", "--out", ".",
                 "--overwrite"]) == EXIT_ERROR
    assert "working folder" in capsys.readouterr().err
    assert is_powercells_output(out, "export")


def test_an_interrupt_during_the_commit_waits_for_it(tmp_path, monkeypatch):
    """Regression: SIGTERM landing as the export was renamed into place left the lock
    behind and reported "nothing was written". The CLI's handlers go through
    ``powercells._interrupts.interrupt``, which waits for the rename and the clean-up."""
    from powercells import _interrupts

    out = tmp_path / "out"
    real = os.rename

    def rename_then_signal(src, dst):
        real(src, dst)
        _interrupts.interrupt(KeyboardInterrupt())       # what the handler does meanwhile

    with pytest.raises(KeyboardInterrupt), OutputFolder(out, kind="export") as folder:
        Path(folder.tmp, "data").write_text("done")
        monkeypatch.setattr(os, "rename", rename_then_signal)
        folder.commit()
    monkeypatch.setattr(os, "rename", real)
    assert (out / "data").read_text() == "done"          # committed whole
    assert sorted(os.listdir(tmp_path)) == ["out"]       # no lock, no temporary folder
    # outside a deferred step the interrupt is raised at once
    with pytest.raises(KeyboardInterrupt):
        _interrupts.interrupt(KeyboardInterrupt())
