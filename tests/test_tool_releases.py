"""Tool discovery against stub executables: the supported release range 2022.1 - 2024.x (a warning outside
it), Vitis HLS found as vitis_hls or vitis-run --mode hls --tcl, and run_hls.tcl's arguments reaching the
script through the argument file either way (the script runs in tclsh with the Vitis commands recorded)."""

from __future__ import annotations

import shutil
import warnings

import pytest
import tool_stubs

from resilq.boards import load_board
from resilq.hls import TCL_DIR
from resilq.hls.config import AccelConfig
from resilq.hls.project import ARGS_FILE, build_ip
from resilq.hls.tools import Release, ToolVersionWarning, find_vitis_hls, supported
from resilq.overlays.tools import TOOLS, ToolError, check_tools

needs_tclsh = pytest.mark.skipif(shutil.which("tclsh") is None, reason="needs tclsh (apt-get install tcl)")


def test_release_range():
    assert [str(Release.parse(t)) for t in ("vivado v2022.1 (64-bit)", "v2024.2", "/opt/Xilinx/Vitis/2023.2/bin")] == \
        ["2022.1", "2024.2", "2023.2"]
    assert Release.parse("no version here") is None and Release.parse("build 12022.15") is None
    assert all(supported(Release(*r)) for r in ((2022, 1), (2022, 2), (2023, 1), (2023, 2), (2024, 1), (2024, 2)))
    assert not any(supported(Release(*r)) for r in ((2021, 2), (2025, 1), (2020, 1)))


@pytest.mark.parametrize("release", ["2022.1", "2022.2", "2023.2", "2024.1", "2024.2"])
def test_supported_releases_pass_quietly(release, tmp_path, monkeypatch):
    env = tool_stubs.install(tmp_path / "bin", {"vivado": release, "vitis_hls": release})
    monkeypatch.setenv("PATH", env["PATH"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ToolVersionWarning)
        found = check_tools(load_board("pynq-z2"))
    assert [(t.command, str(t.release)) for t in found] == [("vitis_hls", release), ("vivado", release)]


@pytest.mark.parametrize("release", ["2021.2", "2025.1"])
def test_other_releases_warn_and_run(release, tmp_path, monkeypatch):
    env = tool_stubs.install(tmp_path / "bin", {"vivado": release, "vitis_hls": "2023.1"})
    monkeypatch.setenv("PATH", env["PATH"])
    with pytest.warns(ToolVersionWarning, match=rf"is AMD Vivado {release}; the flow is written and checked for "
                                                r"2022\.1 - 2024\.x"):
        found = check_tools(load_board("pynq-z2"))
    assert [str(t.release) for t in found] == ["2023.1", release]


def test_vitis_run_is_found_when_vitis_hls_is_not(tmp_path, monkeypatch):
    """2023.2+ installs: vitis-run --mode hls --tcl, its release from the install path."""
    root = tmp_path / "Xilinx" / "Vitis" / "2024.2" / "bin"
    env = tool_stubs.install(root, {"vitis-run": "2024.2", "vivado": "2024.2"})
    monkeypatch.setenv("PATH", env["PATH"])
    hls = find_vitis_hls()
    assert hls is not None and hls.command == "vitis-run" and str(hls.release) == "2024.2" and hls.supported
    assert hls.tcl_command(TCL_DIR / "run_hls.tcl") == [str(root / "vitis-run"), "--mode", "hls", "--tcl",
                                                       str(TCL_DIR / "run_hls.tcl")]
    nowhere = tmp_path / "plain"
    env = tool_stubs.install(nowhere, {"vitis-run": ""})
    monkeypatch.setenv("PATH", env["PATH"])
    with pytest.warns(ToolVersionWarning, match="cannot tell which AMD Vitis HLS release"):
        check_tools(load_board("pynq-z2"), tools=tuple(t for t in TOOLS if t.product == "AMD Vitis HLS"))


def test_missing_tools_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match=r"vitis_hls \(or vitis-run\) is not on PATH.*2022\.1 - 2024\.x.*\n.*vivado is "
                                        r"not on PATH"):
        check_tools(load_board("pynq-z2"))


@needs_tclsh
@pytest.mark.parametrize("command", ["vitis_hls", "vitis-run"])
def test_build_ip_runs_run_hls_tcl_with_its_arguments(command, tmp_path, monkeypatch):
    """build_ip -> <tool> ... run_hls.tcl, the arguments in hls_args.txt; the script's Vitis HLS commands."""
    bin_dir = tmp_path / "Xilinx" / "2023.2" / "bin"
    env = tool_stubs.install(bin_dir, {command: "2023.2"})
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setenv("RESILQ_STUB_LOG", str(log))
    board = load_board("pynq-z2")
    build = tmp_path / "build"
    build_ip(AccelConfig(), board, build, steps=("csim", "csynth", "cosim", "export"),
             vlnv="resilq.org:hls:resilq_accel:2.0")
    stub_line = next(line for line in log.read_text().splitlines() if line.startswith("STUB "))
    assert stub_line.startswith(f"STUB {command} script={TCL_DIR / 'run_hls.tcl'} args_file={build / ARGS_FILE}")
    words = dict(w.split("=", 1) for w in (build / ARGS_FILE).read_text().split())
    assert (words["part"], words["period"], words["vlnv"]) == ("xc7z020clg400-1", "10", "resilq.org:hls:resilq_accel:2.0")
    calls = tool_stubs.calls(log)
    vectors = " ".join(words["vectors"].split(","))
    assert calls[:2] == ["open_project -reset resilq_accel_prj", "set_top resilq_accel"]
    assert "set_part xc7z020clg400-1" in calls and "create_clock -period 10 -name default" in calls
    assert f"csim_design -argv {{{vectors}}}" in calls and f"cosim_design -argv {{{vectors}}}" in calls
    assert calls[-1] == ("export_design -format ip_catalog -vendor resilq.org -library hls -ipname resilq_accel "
                         "-version 2.0 -description {resilq int8 PE-array accelerator with LCU and fault-injection "
                         "registers}")
