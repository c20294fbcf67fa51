"""The build around the sources: board file, resource budget, Tcl scripts, make targets, the testbench."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resilq.boards import available_boards, load_board
from resilq.errors import FormatError, ParameterError
from resilq.hls import HLS_DIR, TCL_DIR
from resilq.hls.config import AccelConfig
from resilq.hls.project import DEFAULT_VLNV, vitis_missing_message
from resilq.hls.resources import INDEX_MULTIPLIERS, bram18_for, check_budget, estimate

HAVE_TCLSH = shutil.which("tclsh") is not None
HAVE_VITIS = shutil.which("vitis_hls") is not None or shutil.which("vitis-run") is not None


def test_board_file():
    board = load_board("pynq-z2")
    assert "pynq-z2" in available_boards()
    assert (board.part, board.pl_mhz, board.clock_period_ns) == ("xc7z020clg400-1", 100.0, 10.0)
    assert board.budget.as_dict() == {"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM36": 140}
    assert board.hp_port_bits == 64 and board.software.pynq_image == "3.0.1"


def test_board_errors(tmp_path):
    with pytest.raises(ParameterError, match="unknown board 'zedboard'"):
        load_board("zedboard")
    bad = tmp_path / "board.toml"
    bad.write_text((HLS_DIR.parent / "boards" / "pynq-z2" / "board.toml").read_text().replace("dsp = 220", "dsp = -1"))
    with pytest.raises(FormatError, match=r"\[budget\] dsp must lie in \[1, "):
        load_board(bad)


def test_resource_estimate_and_budget():
    board = load_board()
    est = check_budget(AccelConfig(), board)  # the default build fits
    assert est.dsp == 8 * 8 // 2 + 4 * 8 + INDEX_MULTIPLIERS and 0 < est.bram36 <= 140  # two MACs per DSP48E1
    # (the array's pairs), one per product on the 4 shadow lanes
    assert bram18_for(8192, 8) == 4 and bram18_for(512, 64) == 2 and bram18_for(64, 8) == 0
    assert estimate(AccelConfig(pe=16)).bram18 > est.bram18 and estimate(AccelConfig(pe=16)).dsp > est.dsp
    with pytest.raises(ParameterError, match=rf"PE=32 x SIMD=16 does not fit the pynq-z2.*DSP: {32 * 16 // 2 + 4 * 16 + INDEX_MULTIPLIERS} estimated > 220"):
        check_budget(AccelConfig(pe=32, simd=16), board)
    assert check_budget(AccelConfig(pe=16, simd=16), board).dsp == 16 * 16 // 2 + 4 * 16 + INDEX_MULTIPLIERS
    assert check_budget(AccelConfig(pe=16, simd=16, shadow_units=0), board).dsp == 16 * 16 // 2 + INDEX_MULTIPLIERS
    with pytest.raises(ParameterError, match=r"BRAM36: \d+ estimated > 140"):
        check_budget(AccelConfig(max_in=262144, max_out=262144), board)


@pytest.mark.skipif(not HAVE_TCLSH, reason="needs tclsh")
@pytest.mark.parametrize("script", sorted(TCL_DIR.glob("*.tcl")), ids=lambda p: p.name)
def test_tcl_scripts_are_complete(script):
    out = subprocess.run(["tclsh"], input=f"puts [info complete [read [open {{{script}}}]]]", capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "1"


def _tcl(body: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run a script with tclsh (from a file: tclsh reading stdin keeps going after an error)."""
    script = tmp_path / "check.tcl"
    script.write_text(f"source {{{TCL_DIR / 'args.tcl'}}}\n{body}\n")
    return subprocess.run(["tclsh", str(script)], capture_output=True, text=True, check=False)


@pytest.mark.skipif(not HAVE_TCLSH, reason="needs tclsh")
def test_tcl_argument_parsing(tmp_path):
    ok = _tcl("set a [::resilq::parse_args {src=s include=i config=c vectors=a,b steps=csim,export "
              "vlnv=acme:ip:accel:2.1 period=5}]\n"
              "puts [list [dict get $a vendor] [dict get $a ipname] [dict get $a version] [dict get $a steps] "
              "[dict get $a vectors] [dict get $a part] [dict get $a period]]", tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["acme", "accel", "2.1", "{csim", "export}", "{a", "b}", "xc7z020clg400-1", "5"]
    for words, needle in [("src=s include=i config=c vlnv=a:b:c", "vendor:library:name:version"),
                          ("src=s include=i config=c steps=csim,place", "unknown step 'place'"),
                          ("src=s include=i config=c period=-3", "period must be a positive"),
                          ("src=s include=i", "missing argument 'config'"),
                          ("src=s include=i config=c turbo=1", "unknown argument 'turbo'")]:
        bad = _tcl(f"::resilq::parse_args {{{words}}}", tmp_path)
        assert bad.returncode != 0 and needle in bad.stderr


def test_default_vlnv_carries_the_register_map_version():
    from resilq.hls import regmap

    assert DEFAULT_VLNV == f"resilq.org:hls:resilq_accel:{regmap.VERSION}.0"
    assert f"VLNV ?= {DEFAULT_VLNV}" in (HLS_DIR / "Makefile").read_text()
    assert f"vlnv {DEFAULT_VLNV} " in (TCL_DIR / "args.tcl").read_text()  # run_hls.tcl's default too


@pytest.mark.skipif(HAVE_VITIS, reason="Vitis HLS is installed here: `make ip` would really run")
def test_make_ip_explains_what_is_missing(tmp_path):
    env = {**os.environ, "PATH": os.environ["PATH"]}
    proc = subprocess.run(["make", "-C", str(HLS_DIR), "ip", f"PYTHON={sys.executable}", f"BUILD={tmp_path}"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode != 0
    assert "neither vitis_hls nor vitis-run is on PATH" in proc.stderr and "Vitis HLS 2022.1 - 2024.x" in proc.stderr
    assert vitis_missing_message(load_board()) in proc.stderr.replace("\n", " ").replace("resilq hls: error: ", "")


def test_make_ip_refuses_an_oversized_build_first(tmp_path):
    proc = subprocess.run(["make", "-C", str(HLS_DIR), "ip", f"PYTHON={sys.executable}", "PE=64", "SIMD=16",
                           f"BUILD={tmp_path}"], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "does not fit the pynq-z2" in proc.stderr and "DSP" in proc.stderr
    assert not any(Path(tmp_path).iterdir()), "nothing is generated for a build that does not fit"


@pytest.mark.vitis
@pytest.mark.skipif(not HAVE_VITIS, reason="needs vitis_hls on PATH")
def test_make_ip_with_vitis(tmp_path):  # pragma: no cover - needs the vendor tool
    proc = subprocess.run(["make", "-C", str(HLS_DIR), "ip", f"PYTHON={sys.executable}", f"BUILD={tmp_path}"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_estimate_and_codegen_check(tmp_path, capsys):
    import numpy as np
    from hls_support import calibrated_model

    from resilq.cli import main
    from resilq.ir import save_model

    model = calibrated_model(np.random.default_rng(0), (1, 8, 8), [("conv", 3, 3, 1, 0), ("flatten",), ("head", 4)],
                             "tiny")
    path = save_model(model, tmp_path / "tiny.rq")
    assert main(["hls", "estimate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "DSP" in out and "tiny:" in out and "cycles/inference" in out
    assert main(["hls", "estimate", "--pe", "64", "--simd", "16"]) == 2
    assert f"DSP: {64 * 16 // 2 + 4 * 16 + INDEX_MULTIPLIERS:,} estimated > 220 available" in capsys.readouterr().err
    assert main(["hls", "codegen", "--check"]) == 0


def test_missing_compiler_is_a_clear_error(monkeypatch):
    from resilq.hls.csim import CompilerNotFoundError, build_library

    monkeypatch.setenv("CXX", "no-such-g++")
    with pytest.raises(CompilerNotFoundError, match=r"'no-such-g\+\+' is not on PATH: install g\+\+"):
        build_library(AccelConfig(pe=2))
