"""The overlay build without Vivado: generated parameters, Tcl that parses and runs, Makefile (the PS7, the
tool releases and the implementation checks have their own test modules)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resilq.boards import load_board
from resilq.deploy.hwh import VLNV
from resilq.hls import SRC_DIR
from resilq.hls import regmap as rm
from resilq.hls.config import DEFAULT_CONFIG
from resilq.overlays import OVERLAYS_DIR, TCL_DIR
from resilq.overlays.params import LITE_BUNDLE, MASTER_BUNDLES, overlay_params, render_params_tcl, tcl_word

needs_tclsh = pytest.mark.skipif(shutil.which("tclsh") is None, reason="needs tclsh (apt-get install tcl)")


@pytest.fixture
def params(tmp_path):
    return overlay_params(load_board("pynq-z2"), DEFAULT_CONFIG, tmp_path / "ip", tmp_path / "out", tmp_path / "build")


def tcl(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "check.tcl"
    path.write_text(script)
    return subprocess.run(["tclsh", str(path)], capture_output=True, text=True, check=False)


def test_parameters_come_from_the_board_file_and_register_map(params):
    assert (params.part, params.board_part) == ("xc7z020clg400-1", "tul.com.tw:pynq-z2:part0:1.0")
    assert (params.ip_vlnv, params.ip_instance, params.lite_interface) == (VLNV, "resilq_accel_0", "s_axi_control")
    assert (params.lite_port_index, params.lite_base, params.lite_range) == (0, 0x4000_0000, "64K")
    assert int(params.lite_range[:-1]) * 1024 == rm.ADDRESS_SPACE
    assert (params.hp_port_index, params.hp_width, params.ddr_range) == (0, 64, "512M")
    assert (params.pl_clock_index, params.pl_mhz, params.vivado_version) == (0, 100.0, "2022.1")
    assert params.masters == ("m_axi_gmem_ctrl", "m_axi_gmem_w", "m_axi_gmem_a")


def test_interface_bundles_match_the_hls_top_function():
    source = (SRC_DIR / "accel_top.cpp").read_text()
    masters = re.findall(r"#pragma HLS INTERFACE mode=m_axi port=\w+ bundle=(\w+)", source)
    lites = set(re.findall(r"#pragma HLS INTERFACE mode=s_axilite port=\w+ bundle=(\w+)", source))
    assert tuple(masters) == MASTER_BUNDLES and lites == {LITE_BUNDLE}


@needs_tclsh
@pytest.mark.parametrize("script", sorted(TCL_DIR.glob("*.tcl")), ids=lambda p: p.name)
def test_tcl_scripts_are_complete(script):
    out = subprocess.run(["tclsh"], input=f"puts [info complete [read [open {{{script}}}]]]", capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "1"


@needs_tclsh
def test_generated_parameters_read_back_in_tcl(params, tmp_path):
    path = tmp_path / "overlay_params.tcl"
    path.write_text(render_params_tcl(params, "test"))
    out = tcl(f"source {{{TCL_DIR / 'args.tcl'}}}\nset p [::resilq::overlay::load_params [list params={path}]]\n"
              "dict for {k v} $p { puts \"$k=$v\" }\n"
              "dict for {k v} [::resilq::overlay::ps_names $p] { puts \"ps.$k=$v\" }\n", tmp_path)
    assert out.returncode == 0, out.stderr
    got = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert got["part"] == params.part and got["ip_vlnv"] == VLNV and int(got["lite_base"], 16) == 0x4000_0000
    assert got["masters"].split() == list(params.masters) and got["ip_repo"] == params.ip_repo
    assert (got["ps.hp"], got["ps.hp_segment"], got["ps.hp_width"]) == ("S_AXI_HP0", "HP0_DDR_LOWOCM",
                                                                        "CONFIG.PCW_S_AXI_HP0_DATA_WIDTH")
    assert (got["ps.gp"], got["ps.fclk"], got["ps.fclk_reset"]) == ("M_AXI_GP0", "FCLK_CLK0", "FCLK_RESET0_N")


@needs_tclsh
def test_bad_parameters_and_arguments_are_refused_in_tcl(params, tmp_path):
    path = tmp_path / "p.tcl"
    load = f"source {{{TCL_DIR / 'args.tcl'}}}\n::resilq::overlay::load_params [list params={path}]\n"
    for field, value, message in (("hp_width", 48, "hp_width must be 32 or 64"),
                                  ("lite_base", 0x1000, "lite_base must lie in M_AXI_GP's range"),
                                  ("ddr_range", "lots", "ddr_range must be a size"),
                                  ("ip_vlnv", "resilq_accel", "ip_vlnv must be vendor:library:name:version")):
        path.write_text(render_params_tcl(params, "test").replace(
            f"params {field} {tcl_word(_hexed(getattr(params, field)))}", f"params {field} {tcl_word(value)}"))
        out = tcl(load, tmp_path)
        assert out.returncode != 0 and message in out.stderr, (field, out.stderr)
    out = tcl(f"source {{{TCL_DIR / 'args.tcl'}}}\n::resilq::overlay::load_params [list part=x]\n", tmp_path)
    assert "unknown argument 'part=x'" in out.stderr


def _hexed(value):
    return f"0x{value:08X}" if isinstance(value, int) and value >= 0x1000 else value


@needs_tclsh
def test_block_design_issues_the_expected_vivado_commands(params, tmp_path):
    """Run create_design in tclsh with every Vivado command recorded (not executed): the Tcl logic runs and
    asks Vivado for the board's PS configuration, the IP, the connections and the address map."""
    path = tmp_path / "p.tcl"
    path.write_text(render_params_tcl(params, "test"))
    out = tcl(f"source {{{TCL_DIR / 'args.tcl'}}}\nsource {{{TCL_DIR / 'block_design.tcl'}}}\n"
              "proc unknown {args} { puts \"CALL $args\"; return [lindex $args end] }\n"
              f"::resilq::overlay::create_design [::resilq::overlay::load_params [list params={path}]]\n", tmp_path)
    assert out.returncode == 0, out.stderr
    calls = [line[5:] for line in out.stdout.splitlines() if line.startswith("CALL ")]
    text = "\n".join(calls)
    assert f"create_bd_cell -type ip -vlnv {VLNV} resilq_accel_0" in text
    assert "apply_board_preset" in text and "CONFIG.PCW_S_AXI_HP0_DATA_WIDTH 64" in text
    assert "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ 100.0" in text and "CONFIG.PCW_USE_M_AXI_GP0 1" in text
    assert "assign_bd_address -offset 0x40000000 -range 64K -target_address_space processing_system7_0/Data " \
           "resilq_accel_0/s_axi_control/Reg -force" in text
    for k, m in enumerate(params.masters):
        assert f"connect_bd_intf_net resilq_accel_0/{m} axi_mem_interconnect/S{k:02d}_AXI" in text
        assert (f"assign_bd_address -offset 0x00000000 -range 512M -target_address_space resilq_accel_0/Data_{m} "
                "processing_system7_0/S_AXI_HP0/HP0_DDR_LOWOCM -force") in text
    assert "connect_bd_intf_net axi_mem_interconnect/M00_AXI processing_system7_0/S_AXI_HP0" in text
    assert calls[-2:] == ["validate_bd_design", "save_bd_design"]


@needs_tclsh
@pytest.mark.parametrize("text", ["plain", "two words", "brace{d}", "unbalanced}{", "dollar $x [cmd]", "back\\slash",
                                  'quote " mark', "", "trailing\\", "semi;colon\ttab"])
def test_tcl_word_reads_back_exactly(text, tmp_path):
    out = tcl(f"set v {tcl_word(text)}\nputs -nonewline $v\n", tmp_path)
    assert out.returncode == 0 and out.stdout == text, out.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_fails_clearly_without_the_tools(tmp_path):
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if not any((Path(p) / tool).exists() for tool in ("vivado", "vitis_hls", "vitis-run")))
    proc = subprocess.run(["make", "-C", str(OVERLAYS_DIR), "BOARD=pynq-z2", f"PYTHON={sys.executable}",
                           f"BUILD={tmp_path / 'build'}"], capture_output=True, text=True, env={**os.environ, "PATH": path})
    assert proc.returncode != 0
    assert "vivado is not on PATH" in proc.stderr and "vitis_hls (or vitis-run) is not on PATH" in proc.stderr
    assert "AMD Vivado 2022.1 - 2024.x" in proc.stderr and not (OVERLAYS_DIR / "pynq-z2" / "resilq.bit").exists()
