"""``resilq package``: what goes in, what is checked, what is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from deploy_support import write_hwh
from hls_support import calibrated_model

from resilq.boards import load_board
from resilq.cli import main
from resilq.deploy.build import PackageRequest, build_package
from resilq.deploy.hwh import VLNV
from resilq.deploy.package import load_package
from resilq.errors import FormatError, MismatchError, ParameterError, UnsupportedModelError
from resilq.ir import save_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    rng = np.random.default_rng(3)
    model = calibrated_model(rng, (1, 28, 28), [("conv", 4, 5, 1, 0), ("pool", 2, 2), ("flatten",), ("fc", 16),
                                                ("head", 10)], name="tiny")
    path = tmp_path_factory.mktemp("models") / "tiny.rq"
    save_model(model, path)
    return path


def test_package_with_an_overlay(model_file, tmp_path):
    overlay = tmp_path / "overlay_src"
    overlay.mkdir()
    (overlay / "resilq.bit").write_bytes(b"\x00\x09bitstream bytes")
    write_hwh(overlay / "resilq.hwh")
    out = build_package(PackageRequest(model_file, load_board("pynq-z2"), tmp_path / "pkg", overlay_dir=overlay))
    pkg = load_package(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["overlay"]["vlnv"] == VLNV and pkg.bitfile.name == "resilq.bit"
    assert pkg.overlay_ip().base_address == 0x4000_0000
    assert manifest["requirements"] == {"python": "3.10", "numpy": "1.21", "pynq": "3.0.1"}
    assert (out / "lib" / "resilq" / "boards" / "pynq-z2" / "board.json").is_file()
    assert "lib/resilq/hls/regmap.py" in manifest["lib"] and not (out / "lib" / "resilq" / "train").exists()
    (out / "overlay" / "resilq.bit").write_bytes(b"another bitstream")
    with pytest.raises(MismatchError, match="not the file the package was built with"):
        load_package(out)


def test_package_without_an_overlay_says_so(model_file, tmp_path, capsys):
    out = tmp_path / "pkg"
    assert main(["package", str(model_file), "--out", str(out), "--overlay-dir", str(tmp_path / "none")]) == 0
    assert "only --target emulator works" in capsys.readouterr().out
    assert "make -C overlays BOARD=pynq-z2" in (out / "overlay" / "NOT_BUILT.txt").read_text()
    with pytest.raises(ParameterError, match="has no overlay"):
        load_package(out).overlay_ip()
    assert main(["run", str(out), "--target", "board", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 2
    assert "has no overlay" in capsys.readouterr().err


def test_package_prints_commands_that_run(model_file, tmp_path, capsys):
    """The printed commands name the real folder (not a placeholder ``PACKAGE``), and the emulator one runs as
    printed, from the folder that holds the package."""
    out = tmp_path / "tiny-pkg"
    assert main(["package", str(model_file), "--out", str(out), "--dataset", "digits", "--images", "6"]) == 0
    text = capsys.readouterr().out
    assert "PACKAGE" not in text and "python3 tiny-pkg info" in text
    here = f"On this machine: resilq run {out} --target emulator --verify".split()
    assert text.split()[-len(here):] == here
    printed = next(line.split() for line in text.splitlines() if line.strip().startswith("python3 tiny-pkg run")
                   and "--target emulator" in line)
    proc = subprocess.run([sys.executable, *printed[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "equal the bit-true executor" in proc.stdout
    assert "python3 tiny-pkg" in subprocess.run([sys.executable, "tiny-pkg", "--help"], cwd=tmp_path,
                                                capture_output=True, text=True, timeout=120).stdout


def test_refusals(model_file, tmp_path, capsys):
    overlay = tmp_path / "v2"
    overlay.mkdir()
    (overlay / "resilq.bit").write_bytes(b"bits")
    write_hwh(overlay / "resilq.hwh", vlnv="resilq.org:hls:resilq_accel:1.0")
    with pytest.raises(MismatchError, match="register map v1"):
        build_package(PackageRequest(model_file, load_board("pynq-z2"), tmp_path / "p1", overlay_dir=overlay))
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "notes.txt").write_text("mine")
    with pytest.raises(ParameterError, match="is not a resilq package"):
        build_package(PackageRequest(model_file, load_board("pynq-z2"), tmp_path / "occupied"))
    rng = np.random.default_rng(0)
    wide = calibrated_model(rng, (1, 28, 28), [("conv", 2, 13, 1, 0), ("flatten",), ("head", 3)], name="wide")
    save_model(wide, tmp_path / "wide.rq")
    with pytest.raises(UnsupportedModelError, match="kernel size 13 exceeds the accelerator limit 11"):
        build_package(PackageRequest(tmp_path / "wide.rq", load_board("pynq-z2"), tmp_path / "p2"))
    with pytest.raises(FormatError, match="not a resilq deployment package"):
        load_package(tmp_path)
    assert main(["run", str(tmp_path / "nowhere"), "--target", "emulator"]) == 2
    assert "not a resilq deployment package" in capsys.readouterr().err
