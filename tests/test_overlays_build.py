"""The overlay build end to end against a Vivado stub (tool_stubs): the PS7 configured from the part alone with
the cited PYNQ-Z2 values (or the board preset), the post-route timing check that keeps a failing bitstream in
the build folder, and the overlay metadata that `resilq hls estimate` shows beside its estimate."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tool_stubs
from deploy_support import write_hwh

from resilq.boards import load_board
from resilq.errors import FormatError
from resilq.hls.config import DEFAULT_CONFIG, AccelConfig
from resilq.hls.resources import estimate
from resilq.overlays import TCL_DIR
from resilq.overlays.build import build_overlay
from resilq.overlays.implementation import METADATA_FILE, OverlayMetadata, TimingError, parse_utilization
from resilq.overlays.params import overlay_params, render_params_tcl
from resilq.overlays.ps7 import Ps7Mode, load_ps7

needs_tclsh = pytest.mark.skipif(shutil.which("tclsh") is None, reason="needs tclsh (apt-get install tcl)")
DOC = Path(__file__).resolve().parents[1] / "docs" / "accelerator.md"
BOARD = load_board("pynq-z2")


def _design_calls(params, tmp_path) -> list[str]:
    path = tmp_path / "p.tcl"
    path.write_text(render_params_tcl(params, "test"))
    script = tmp_path / "run.tcl"
    script.write_text(f"source {{{TCL_DIR / 'args.tcl'}}}\nsource {{{TCL_DIR / 'block_design.tcl'}}}\n"
                      "proc unknown {args} { puts \"CALL $args\"; return [lindex $args end] }\n"
                      f"::resilq::overlay::create_design [::resilq::overlay::load_params [list params={path}]]\n")
    out = subprocess.run(["tclsh", str(script)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return [line[5:] for line in out.stdout.splitlines() if line.startswith("CALL ")]


def _set_properties(calls: list[str]) -> dict[str, str]:
    """CONFIG.* values of every `set_property -dict {...} processing_system7_0` call, parsed as a Tcl list."""
    values = {}
    for call in calls:
        if call.startswith("set_property -dict") and call.endswith("processing_system7_0"):
            words = subprocess.run(["tclsh"], input=f"puts [join [lindex {{{call}}} 2] \\n]", capture_output=True,
                                   text=True, check=True).stdout.splitlines()
            values.update(zip(words[0::2], words[1::2]))
    return values


@needs_tclsh
def test_ps7_is_configured_from_the_part_with_the_base_design_values(tmp_path):
    params = overlay_params(BOARD, DEFAULT_CONFIG, tmp_path / "ip", tmp_path / "out", tmp_path / "build")
    assert params.ps7_mode == "explicit"
    calls = _design_calls(params, tmp_path)
    automation = next(c for c in calls if c.startswith("apply_bd_automation"))
    assert "apply_board_preset 0" in automation and "make_external {FIXED_IO, DDR}" in automation
    props = _set_properties(calls)
    preset = load_ps7(BOARD)
    assert {f"CONFIG.{k}": v for k, v in preset.properties} | {
        "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ": "100.0", "CONFIG.PCW_USE_M_AXI_GP0": "1",
        "CONFIG.PCW_USE_S_AXI_HP0": "1", "CONFIG.PCW_S_AXI_HP0_DATA_WIDTH": "64"} == props
    assert props["CONFIG.PCW_UIPARAM_DDR_FREQ_MHZ"] == "525" and props["CONFIG.PCW_PRESET_BANK1_VOLTAGE"] == "LVCMOS 1.8V"


@needs_tclsh
def test_board_preset_is_kept_as_an_option(tmp_path):
    params = overlay_params(BOARD, DEFAULT_CONFIG, tmp_path / "ip", tmp_path / "out", tmp_path / "build",
                            ps7=Ps7Mode.BOARD_PRESET)
    assert params.ps7_config == ()
    calls = _design_calls(params, tmp_path)
    assert "apply_board_preset 1" in next(c for c in calls if c.startswith("apply_bd_automation"))
    assert not any(k.startswith("CONFIG.PCW_UIPARAM") for k in _set_properties(calls))


def test_the_documented_ps7_table_is_the_configuration():
    """docs/accelerator.md lists every explicit PS7 property with its value and source, and the board-derived ones."""
    found = re.findall(r"^\| `(PCW_[A-Z0-9_]+)` \| ([^|]+?) \| ([^|]+?) \|$", DOC.read_text(), re.M)
    assert all("base.tcl" in source for _, _, source in found)
    rows = {name: value for name, value, _ in found}
    preset = load_ps7(BOARD)
    assert preset.source.commit in DOC.read_text() and preset.source.path in DOC.read_text()
    derived = {"PCW_FPGA0_PERIPHERAL_FREQMHZ": f"{BOARD.pl_mhz:g}", "PCW_USE_M_AXI_GP0": "1", "PCW_USE_S_AXI_HP0": "1",
               "PCW_S_AXI_HP0_DATA_WIDTH": str(BOARD.hp_port_bits)}
    assert {k: v.strip() for k, v in rows.items()} == {**dict(preset.properties), **derived}


def test_a_bad_ps7_file_is_refused(tmp_path):
    board_dir = tmp_path / "board"
    board_dir.mkdir()
    shutil.copy(BOARD.path, board_dir / "board.toml")
    text = load_ps7(BOARD).path.read_text()
    (board_dir / "ps7.toml").write_text(text.replace('PCW_UIPARAM_DDR_CL = "7"', 'PCW_UIPARAM_DDR_CL = "7 [exit]"'))
    with pytest.raises(FormatError, match=r"\[ddr\] PCW_UIPARAM_DDR_CL = '7 \[exit\]' is not a PCW_\* property"):
        load_ps7(load_board(board_dir / "board.toml"))
    (board_dir / "ps7.toml").unlink()
    with pytest.raises(Exception, match="has no ps7.toml"):
        overlay_params(load_board(board_dir / "board.toml"), DEFAULT_CONFIG, tmp_path, tmp_path, tmp_path)


def test_utilization_reports_are_parsed_by_column():
    for prohibited in (True, False):
        text = tool_stubs.utilization_report(9876, 12345, 40.5, 79, prohibited)
        u = parse_utilization(text)
        assert (u.LUT, u.FF, u.BRAM36, u.DSP) == (9876, 12345, 40.5, 79)
    with pytest.raises(FormatError, match="no DSP row"):
        parse_utilization(text.replace("| DSPs |", "| Nothing |"))


def _stub_build(tmp_path, monkeypatch, release="2022.1", wns="0.250", whs="0.030", board_parts="",
                ps7=Ps7Mode.EXPLICIT, config=DEFAULT_CONFIG):
    env = tool_stubs.install(tmp_path / "bin", {"vivado": release, "vitis_hls": release})
    build, out, ip = tmp_path / "build", tmp_path / "out", tmp_path / "ip"
    build.mkdir()
    ip.mkdir()
    (ip / "component.xml").write_text("<component/>")
    for key, value in {"PATH": env["PATH"], "RESILQ_STUB_LOG": str(tmp_path / "calls.log"),
                       "RESILQ_STUB_BUILD": str(build.resolve()), "RESILQ_STUB_VERSION": release,
                       "RESILQ_STUB_WNS": wns, "RESILQ_STUB_WHS": whs, "RESILQ_STUB_BOARD_PARTS": board_parts,
                       "RESILQ_STUB_HWH": str(write_hwh(tmp_path / "handoff.hwh")),
                       "RESILQ_STUB_UTIL": tool_stubs.utilization_report(14000, 17000, 66.5, 80),
                       "RESILQ_STUB_UTIL_ACCEL": tool_stubs.utilization_report(10100, 11900, 64.0, 79)}.items():
        monkeypatch.setenv(key, value)
    return build_overlay(BOARD, config, ip, out, build, ps7=ps7), build, out


@needs_tclsh
def test_a_build_that_meets_timing_writes_the_overlay_and_its_metadata(tmp_path, monkeypatch):
    result, build, out = _stub_build(tmp_path, monkeypatch)
    assert result.bit.read_text() == "bitstream\n" and result.hwh.is_file()
    meta = OverlayMetadata.read(out / METADATA_FILE)
    assert meta == result.metadata and meta.meets_timing and (meta.wns_ns, meta.whs_ns) == (0.25, 0.03)
    assert (meta.pe, meta.simd, meta.config_id, meta.vivado) == (8, 8, DEFAULT_CONFIG.config_id, "2022.1")
    assert meta.accelerator.as_dict() == {"LUT": 10100, "FF": 11900, "DSP": 79, "BRAM36": 64.0}
    assert meta.design.DSP == 80 and meta.timing_report == str(build.resolve() / "reports" / "timing_summary.rpt")
    calls = tool_stubs.calls(tmp_path / "calls.log")
    assert "open_run impl_1" in calls and not any(c.startswith("set_property board_part") for c in calls)
    assert "get_cells -quiet -hierarchical resilq_accel_0" in calls


@needs_tclsh
@pytest.mark.parametrize("wns,whs,failing", [("-0.412", "0.020", "setup slack (WNS) -0.412 ns"),
                                             ("0.100", "-0.050", "hold slack (WHS) -0.05 ns")])
def test_negative_slack_fails_the_build_naming_the_timing_report(tmp_path, monkeypatch, wns, whs, failing):
    with pytest.raises(TimingError, match=re.escape(failing)) as err:
        _stub_build(tmp_path, monkeypatch, wns=wns, whs=whs)
    assert str(tmp_path / "build" / "reports" / "timing_summary.rpt") in str(err.value)
    assert not (tmp_path / "out" / "resilq.bit").exists(), "a bitstream with negative slack is not copied out"
    log = (tmp_path / "calls.log").read_text()
    assert "launch_runs impl_1" in log


@needs_tclsh
def test_old_release_warns_in_tcl_and_the_board_preset_needs_the_board_files(tmp_path, monkeypatch, capfd):
    with pytest.warns(Warning):
        _stub_build(tmp_path, monkeypatch, release="2021.2")
    assert "resilq: WARNING: this is Vivado 2021.2; the overlay flow is written and checked for 2022.1 - 2024.x" in \
        capfd.readouterr().out
    with pytest.raises(Exception, match="vivado failed"):
        _stub_build(tmp_path / "preset", monkeypatch, ps7=Ps7Mode.BOARD_PRESET)
    assert "board part tul.com.tw:pynq-z2:part0:1.0 is not installed" in capfd.readouterr().err
    result, _, _ = _stub_build(tmp_path / "preset2", monkeypatch, ps7=Ps7Mode.BOARD_PRESET,
                               board_parts="tul.com.tw:pynq-z2:part0:1.0")
    assert "set_property board_part tul.com.tw:pynq-z2:part0:1.0 current_project" in tool_stubs.calls(
        tmp_path / "preset2" / "calls.log") and result.metadata.meets_timing


@needs_tclsh
def test_estimate_is_shown_beside_the_implementation(tmp_path, monkeypatch, capsys):
    from resilq.cli import main

    _, _, out = _stub_build(tmp_path, monkeypatch)
    assert main(["hls", "estimate", "--overlay", str(out)]) == 0
    text = capsys.readouterr().out
    assert "analytic estimate vs the implemented overlay" in text and "WNS 0.25 ns" in text
    row = next(line for line in text.splitlines() if "DSP" in line)
    assert re.search(rf"\b{estimate(DEFAULT_CONFIG).dsp}\b.*\b79\b.*\b80\b.*\b220\b", row), row
    assert main(["hls", "estimate", "--overlay", str(out), "--pe", "16"]) == 0
    assert "is the overlay of PE=8 x SIMD=8" in capsys.readouterr().out
    assert AccelConfig(pe=16).config_id != DEFAULT_CONFIG.config_id
