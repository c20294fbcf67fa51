"""Class 8: no ``resilq`` command ends in a Python traceback on bad input or a bad disk.

The top-level rule (:func:`resilq.errors.run_command`): a resilq error or an OS error (EACCES, ENOSPC,
EROFS, ...) is one line ``resilq CMD: error: ...`` and exit 2; only a genuine bug shows a traceback.
Disk full and read-only file systems are real where the test may mount a tmpfs (root in a container);
elsewhere those tests skip and the unit tests of the rule still run.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, edit_manifest, run_resilq

from resilq.errors import FormatError, run_command, user_error_message
from resilq.nvf import load_nvf
from resilq.nvf.result import NVFResult, save_nvf


# ------------------------------------------------------------------------------------- the rule itself
@pytest.mark.parametrize(("code", "text"), [(errno.EACCES, "Permission denied (EACCES)"),
                                            (errno.ENOSPC, "No space left on device (ENOSPC)"),
                                            (errno.EROFS, "Read-only file system (EROFS)")])
def test_os_errors_are_one_line_naming_the_file(code, text, capsys):
    def fail():
        raise OSError(code, __import__("os").strerror(code), "/out/model.rq")

    assert run_command("harden", fail) == 2
    assert capsys.readouterr().err == f"resilq harden: error: {text}: /out/model.rq\n"


def test_sqlite_disk_errors_are_one_line(capsys):
    def fail():
        raise sqlite3.OperationalError("database or disk is full")

    assert run_command("campaign", fail) == 2
    assert capsys.readouterr().err == "resilq campaign: error: database: database or disk is full\n"


def test_a_genuine_bug_keeps_its_traceback():
    def bug():
        return {}["missing"]

    with pytest.raises(KeyError):
        run_command("info", bug)
    assert user_error_message(sqlite3.OperationalError("no such column: x")) is None  # a bug, not the disk
    assert user_error_message(FormatError("x.rq: truncated")) == "x.rq: truncated"


def test_a_bug_prints_a_traceback_in_a_real_process():
    code = ("from resilq.errors import run_command\n"
            "import sys\nsys.exit(run_command('x', lambda: [][1]))\n")
    proc = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "IndexError" in proc.stderr


# ------------------------------------------------------------------------------- real full / read-only disks
@pytest.fixture
def mount_tmpfs(tmp_path):
    """``mount(options) -> folder``: a fresh tmpfs (e.g. ``size=64k`` or ``ro``); skipped where mounting is refused."""
    mounted = []

    def mount(options: str) -> Path:
        where = tmp_path / f"fs{len(mounted)}"
        where.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()[:80]})")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False)


def fill(folder: Path) -> None:
    """Fill a file system so that the next write fails with ENOSPC."""
    import os

    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def nvf_file(tiny_model_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nvf") / "tiny.nvf"
    assert run_resilq("analyze", str(tiny_model_file), "--dataset", "digits", "--inputs", "4",
                      "--out", str(out)).returncode == 0
    return out


def test_package_on_a_full_disk(tiny_model_file, mount_tmpfs):
    fs = mount_tmpfs("size=64k")  # the package's lib/ alone is larger
    proc = run_resilq("package", str(tiny_model_file), "--out", str(fs / "pkg"), "--overlay-dir", str(fs / "none"))
    assert_one_line_error(proc, "No space left on device (ENOSPC)")
    assert list(fs.iterdir()) == [], "the partial package (a temporary sibling) is removed"


def test_analyze_and_harden_on_a_full_disk(tiny_model_file, nvf_file, mount_tmpfs):
    fs = mount_tmpfs("size=256k")
    fill(fs)
    assert_one_line_error(run_resilq("analyze", str(tiny_model_file), "--dataset", "digits", "--inputs", "2",
                                     "--out", str(fs / "x.nvf")), "No space left on device (ENOSPC)")
    assert_one_line_error(run_resilq("harden", str(tiny_model_file), "--nvf", str(nvf_file), "--scheme", "tmr",
                                     "--top-k", "3", "--no-agreement", "--out", str(fs / "h.rq")),
                          "No space left on device (ENOSPC)")
    # x.nvf.parts/ holds the finished work units for a resume (docs/security.md); no partial file anywhere
    assert sorted(p.name for p in fs.iterdir()) == ["filler", "x.nvf.parts"], "a partial file was left behind"
    assert not [p for p in fs.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]


def test_campaign_on_a_full_disk(tiny_model_file, mount_tmpfs):
    fs = mount_tmpfs("size=256k")
    fill(fs)
    proc = run_resilq("campaign", str(tiny_model_file), "--dataset", "digits", "--images", "8", "--faults", "4",
                      "--out", str(fs / "c.db"))
    assert_one_line_error(proc)
    assert "disk is full" in proc.stderr or "ENOSPC" in proc.stderr or "unable to open database" in proc.stderr


def test_read_only_file_system(tiny_model_file, mount_tmpfs):
    fs = mount_tmpfs("ro,size=64k")
    assert_one_line_error(run_resilq("package", str(tiny_model_file), "--out", str(fs / "pkg")),
                          "Read-only file system (EROFS)")
    proc = run_resilq("campaign", str(tiny_model_file), "--dataset", "digits", "--images", "8", "--faults", "4",
                      "--out", str(fs / "c.db"))
    assert_one_line_error(proc)
    assert "EROFS" in proc.stderr or "readonly" in proc.stderr or "unable to open database" in proc.stderr


# --------------------------------------------------------------------------------------- package manifests
def _set(path, value):
    def change(m):
        node = m
        for key in path[:-1]:
            node = node[key]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return change


@pytest.mark.parametrize(("path", "value", "message"), [
    (("batch",), KeyError, "manifest.json lacks 'batch'"),
    (("model",), KeyError, "manifest.json lacks 'model'"),
    (("requirements", "numpy"), KeyError, "requirements lacks 'numpy'"),
    (("batch",), "8", "batch must be an integer, got '8' (str)"),
    (("batch",), 8.5, "batch must be an integer, got 8.5 (float)"),
    (("batch",), 10 ** 12, "batch must lie in [1, 4096]"),
    (("batch",), 0, "batch must lie in [1, 4096]"),
    (("config_id",), "0x1", "config_id must be an integer"),
    (("board", "ps_mhz"), float("nan"), "board.ps_mhz must be a finite number"),
    (("board", "pl_mhz"), "fast", "board.pl_mhz must be a number"),
    (("model", "file"), "../tiny.rq", "model.file '../tiny.rq' is not a plain relative file name"),
    (("model", "file"), "/etc/passwd", "is not a plain relative file name"),
    (("model", "hash"), None, "model.hash must be a string"),
    (("data", "file"), "../../data.npz", "not a plain relative file name"),
    (("overlay",), {"bit": "x"}, "overlay lacks"),
    (("lib",), "everything", "lib must be a list"),
])
def test_crafted_manifests_are_one_line_errors(package_copy, path, value, message):
    edit_manifest(package_copy, _set(path, value))
    proc = run_resilq("run", str(package_copy))
    assert_one_line_error(proc, message)


def test_manifest_not_an_object_and_not_json(package_copy):
    (package_copy / "manifest.json").write_text("[1, 2, 3]")
    assert_one_line_error(run_resilq("run", str(package_copy)), "package format 'list'")
    (package_copy / "manifest.json").write_text('{"format": 2, ')
    assert_one_line_error(run_resilq("run", str(package_copy)), "not valid JSON")


def test_board_entry_of_a_crafted_package_is_one_line(package_copy):
    import sys

    edit_manifest(package_copy, _set(("requirements",), KeyError))
    proc = subprocess.run([sys.executable, str(package_copy), "info"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "lacks 'requirements'" in proc.stderr


def test_model_symlink_leading_outside_the_package(package_copy, tiny_model_file):
    (package_copy / "model.rq").unlink()
    (package_copy / "model.rq").symlink_to(tiny_model_file)
    assert_one_line_error(run_resilq("run", str(package_copy)), "leads outside the package")


def _rewrite_data(package: Path, labels: np.ndarray | None = None, x: np.ndarray | None = None) -> None:
    with np.load(package / "data.npz") as npz:
        old_x, old_labels = npz["x"], npz["labels"]
    buf = io.BytesIO()
    np.savez(buf, x=old_x if x is None else x, labels=old_labels if labels is None else labels)
    (package / "data.npz").write_bytes(buf.getvalue())
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    edit_manifest(package, _set(("data", "sha256"), digest))  # an attacker keeps the checksum consistent


@pytest.mark.parametrize(("labels", "message"), [
    (np.full(16, 10), "16 labels lie outside the model's classes 0..9"),
    (np.r_[np.zeros(15, np.int64), -1], "1 labels lie outside the model's classes 0..9"),
    (np.zeros(16, np.float64), "labels must be integers"),
])
def test_labels_outside_the_class_range(package_copy, labels, message):
    _rewrite_data(package_copy, labels=labels)
    assert_one_line_error(run_resilq("run", str(package_copy)), message)


# ------------------------------------------------------------------------------------------- NVF metadata
@pytest.mark.parametrize(("metadata", "message"), [
    ({"layers": "conv"}, "metadata.layers must be a table/object"),
    ({"layers": {"0": {"name": ["x"]}}}, "metadata.layers.0.name must be a string"),
    ({"layers": {"0": {"shape": [4, 13, 14]}}}, "does not hold the layer's 676 values"),
    ({"layers": {"0": {"shape": "4x13x13"}}}, "metadata.layers.0.shape must be a list"),
    ({"bit_critical": {"0": [0.1] * 7}}, "metadata.bit_critical.0 must list 8 fractions"),
    ({"bit_critical": {"0": ["a"] * 8, "3": [0.0] * 8}}, "metadata.bit_critical.0 must be a number"),
    ({"sample": "half"}, "metadata.sample must be a number"),
    ({"model": {"name": "x"}}, "metadata.model must be a string"),
])
def test_malformed_nvf_metadata(nvf_file, tmp_path, metadata, message):
    good = load_nvf(nvf_file)
    bad = save_nvf(NVFResult(good.network_hash, good.values, good.method, good.inputs,
                             {**good.metadata, **metadata}), tmp_path / "bad.nvf")
    plots = tmp_path / "plots"
    assert_one_line_error(run_resilq("table", str(bad), "--plots", str(plots)), message)
    assert_one_line_error(run_resilq("nvf-compare", str(nvf_file), str(bad)), message)
    assert not plots.exists() or list(plots.iterdir()) == []


def test_wellformed_nvf_metadata_still_plots(nvf_file, tmp_path):
    proc = run_resilq("table", str(nvf_file), "--plots", str(tmp_path / "plots"))
    assert proc.returncode == 0, proc.stderr
    assert any(p.suffix == ".png" for p in (tmp_path / "plots").iterdir())
    assert json.loads(json.dumps(load_nvf(nvf_file).metadata))  # the metadata the analysis writes is plain JSON


# ---------------------------------------------------------------------------------------- output file names
def test_a_folder_as_out_is_one_line_and_leaves_nothing(tiny_model_file, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    proc = run_resilq("analyze", str(tiny_model_file), "--dataset", "digits", "--inputs", "2", "--out", str(folder))
    assert_one_line_error(proc, f"--out {folder} is a folder; give a file name for the nvf file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"], "no temporary file left behind"
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


def test_archive_writer_never_follows_a_planted_temporary_name(tiny_model_file, tmp_path):
    from resilq.ir import load_model, save_model

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out.rq.tmp").symlink_to(victim)  # the name an older writer used for its temporary file
    save_model(load_model(tiny_model_file), tmp_path / "out.rq")
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.rq", "out.rq.tmp", "victim.txt"]
    assert load_model(tmp_path / "out.rq").name == "tiny"


@pytest.mark.parametrize(("content", "message"), [
    (b"garbage", "not an ONNX model (Error parsing message"),
    (b"", "not an ONNX model (it holds no graph nodes)"),
])
def test_import_qonnx_of_a_non_onnx_file(tmp_path, content, message):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(content)
    proc = run_resilq("import-qonnx", str(bad), "--out", str(tmp_path / "m.rq"))
    assert_one_line_error(proc, f"{bad}: {message}")
    assert not (tmp_path / "m.rq").exists()
