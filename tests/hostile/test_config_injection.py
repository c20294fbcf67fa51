"""Class 1: no value from a file reaches generated C++, Tcl or a shell unchecked; the C-sim cache cannot be
poisoned. A package manifest, a board file, a ps7.toml and a pipeline TOML are crafted the way an attacker
would, and each is refused where it is read, naming the bad value, before g++ (or Vivado) could see it."""

from __future__ import annotations

import dataclasses
import math
import stat
from pathlib import Path

import pytest
from conftest import assert_one_line_error, edit_manifest, run_resilq

from resilq.boards import BOARDS_DIR, load_board
from resilq.errors import FormatError, ParameterError
from resilq.hls import csim
from resilq.hls.config import AccelConfig, Latency
from resilq.pipeline.config import from_dict

INJECTION = '72u; } int pwned() { return system("touch /tmp/resilq-pwned"); } namespace x { unsigned y = 1'


def recording_compiler(tmp_path: Path) -> tuple[Path, Path]:
    """A $CXX that records every invocation (and compiles nothing): proves whether g++ was reached."""
    log = tmp_path / "cxx-calls.log"
    cxx = tmp_path / "fake-cxx"
    cxx.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nexit 1\n")
    cxx.chmod(cxx.stat().st_mode | stat.S_IXUSR)
    return cxx, log


@pytest.mark.parametrize("command", ["run", "campaign"])
def test_string_in_latency_is_refused_before_gxx_and_leaves_no_cache(package_copy, tmp_path, command):
    edit_manifest(package_copy, lambda m: m["accelerator"]["latency"].update(run=INJECTION), fix_config_id=True)
    cxx, log = recording_compiler(tmp_path)
    cache = tmp_path / "cache"
    argv = ["run", str(package_copy), "--target", "csim"] if command == "run" else \
        ["campaign", str(package_copy), "--target", "csim", "--faults", "2", "--out", str(tmp_path / "c.db")]
    proc = run_resilq(*argv, env={"CXX": str(cxx), "RESILQ_CACHE": str(cache)})
    assert_one_line_error(proc, "accelerator.latency.run must be an integer", "(str)")
    assert not log.exists(), "the compiler was invoked"
    assert not (cache / "csim").exists() or not any((cache / "csim").iterdir())
    assert not (tmp_path / "c.db").exists()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("pe", True, "accelerator.pe must be an integer, got True (bool)"),
    ("simd", 8.0, "accelerator.simd must be an integer, got 8.0 (float)"),
    ("max_in", "65536", "accelerator.max_in must be an integer"),
    ("max_layers", -1, "accelerator.max_layers must lie in"),
    ("max_raw", 1 << 40, "accelerator.max_raw must lie in"),
    ("latency", [1, 2], "accelerator.latency must be a table/object"),
    ("evil", 1, "accelerator has unknown keys ['evil']"),
])
def test_accelerator_fields_are_typed(package_copy, field, value, message):
    from resilq.deploy.package import load_package

    edit_manifest(package_copy, lambda m: m["accelerator"].__setitem__(field, value), fix_config_id=True)
    with pytest.raises(ParameterError) as info:
        load_package(package_copy)
    assert message in str(info.value) and "manifest.json" in str(info.value)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("mac", "12", "latency.mac must be an integer, got '12' (str)"),
    ("store", False, "latency.store must be an integer, got False (bool)"),
    ("pool", -4, "latency.pool must lie in"),
    ("lcu", 1 << 20, "latency.lcu must lie in"),
])
def test_latency_fields_are_typed(key, value, message):
    with pytest.raises(ParameterError, match="accelerator." + message.replace("(", r"\(").replace(")", r"\)")):
        AccelConfig.from_dict({"latency": {key: value}})
    with pytest.raises(ParameterError):
        Latency(**{key: value})


def test_cache_key_covers_every_value_and_the_flags(monkeypatch):
    cxx = csim.compiler() if csim.shutil.which("g++") else "/bin/true"
    base = csim.cache_key(AccelConfig(), cxx)
    assert csim.cache_key(AccelConfig(), cxx) == base
    assert csim.cache_key(AccelConfig(latency=Latency(run=73)), cxx) != base
    assert csim.cache_key(AccelConfig(shadow_lane=1024), cxx) != base
    monkeypatch.setenv(csim.EXTRA_FLAGS_ENV, "-DRESILQ_SOMETHING")
    assert csim.cache_key(AccelConfig(), cxx) != base
    monkeypatch.delenv(csim.EXTRA_FLAGS_ENV)
    monkeypatch.setattr(csim, "CACHE_FORMAT", csim.CACHE_FORMAT + 1)
    assert csim.cache_key(AccelConfig(), cxx) != base


def test_build_library_revalidates_a_config_altered_after_construction(tmp_path, monkeypatch):
    cxx, log = recording_compiler(tmp_path)
    monkeypatch.setenv("CXX", str(cxx))
    config = AccelConfig()
    object.__setattr__(config.latency, "run", INJECTION)  # a frozen dataclass altered behind its back
    with pytest.raises(ParameterError, match="latency.run must be an integer"):
        csim.build_library(config, cache=tmp_path / "cache")
    assert not log.exists() and not (tmp_path / "cache").exists()


# ------------------------------------------------------------------------------------------- board files
def board_file(tmp_path: Path, section: str, key: str, value: str) -> Path:
    """A copy of the PYNQ-Z2 board.toml with ``[section] key`` set to the TOML text ``value``."""
    lines, current = [], None
    for line in (BOARDS_DIR / "pynq-z2" / "board.toml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped.split("]")[0][1:]
        elif current == section and stripped.split("=")[0].strip() == key:
            line = f"{key} = {value}"
        lines.append(line)
    path = tmp_path / "board.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("section", "key", "value", "message"), [
    ("board", "part", '"xc7z020clg400-1 [exec rm -rf /]"', "[board] part"),
    ("board", "board_part", '"tul.com.tw:pynq-z2:part0:1.0\\"; exec sh"', "[board] board_part"),
    ("board", "name", '"../../etc"', "[board] name"),
    ("board", "description", '"two\\nlines"', "printable"),
    ("board", "ddr_bytes", '"536870912"', "[board] ddr_bytes must be an integer"),
    ("board", "ddr_bytes", "true", "got True (bool)"),
    ("clocks", "pl_mhz", "nan", "[clocks] pl_mhz must be a finite number"),
    ("clocks", "ps_mhz", "inf", "[clocks] ps_mhz must be a finite number"),
    ("clocks", "pl_clock", '"FCLK_CLK0; source evil.tcl"', "[clocks] pl_clock"),
    ("axi", "hp_port", '"S_AXI_HP9"', "[axi] hp_port"),
    ("budget", "dsp", "220.5", "[budget] dsp must be an integer"),
])
def test_board_file_values_are_typed_and_named(tmp_path, section, key, value, message):
    with pytest.raises(FormatError) as info:
        load_board(board_file(tmp_path, section, key, value))
    assert message in str(info.value) and str(tmp_path) in str(info.value)


def test_board_names_are_not_paths():
    for name in ("../pynq-z2", "pynq-z2/../pynq-z2", "/etc/passwd"):
        with pytest.raises(ParameterError, match="unknown board"):
            load_board(name)


@pytest.mark.parametrize(("line", "message"), [
    ('PCW_FPGA_FCLK0_ENABLE = "1 [exec ls]"', "not a PCW_* property with a plain value"),
    ('PCW_FPGA_FCLK0_ENABLE = 1', "not a PCW_* property with a plain value"),
    ('"PCW_X; exec" = "1"', "not a PCW_* property with a plain value"),
])
def test_ps7_values_are_plain(tmp_path, line, message):
    from resilq.overlays.ps7 import load_ps7

    shutil_board = tmp_path / "board.toml"
    shutil_board.write_text((BOARDS_DIR / "pynq-z2" / "board.toml").read_text())
    text = (BOARDS_DIR / "pynq-z2" / "ps7.toml").read_text().replace('PCW_FPGA_FCLK0_ENABLE = "1"', line, 1)
    (tmp_path / "ps7.toml").write_text(text)
    with pytest.raises(FormatError, match=message.replace("*", r"\*")):
        load_ps7(load_board(shutil_board))


# ------------------------------------------------------------------------------------------ pipeline TOML
@pytest.mark.parametrize(("data", "message"), [
    ({"hls": {"pe": 3}}, "hls.pe/hls.simd: PE must be a power of two"),
    ({"hls": {"simd": 12}}, "SIMD must be one of"),
    ({"hls": {"pe": "8"}}, "hls.pe must be int"),
    ({"hls": {"pe": True}}, "hls.pe must be int"),
    ({"hls": {"board": "pynq-z3"}}, "hls.board: unknown board 'pynq-z3'"),
    ({"hls": {"board": "../../tmp"}}, "hls.board: unknown board"),
    ({"deploy": {"images": -1}}, "deploy.images must lie in [0,"),
    ({"campaign": {"faults": -5}}, "campaign.faults"),
    ({"hls": {"csim_faults": -1}}, "hls.csim_faults must lie in"),
    ({"model": {"lr": math.nan}}, "model.lr must be a finite number"),
    ({"model": {"lr": math.inf}}, "model.lr must be a finite number"),
    ({"harden": {"threshold": math.nan}}, "harden.threshold"),
])
def test_pipeline_toml_refused_at_load(data, message):
    with pytest.raises(ParameterError) as info:
        from_dict(data)
    assert message in str(info.value)


def test_pipeline_toml_file_with_a_bad_board_fails_on_the_cli(tmp_path):
    config = tmp_path / "run.toml"
    out = tmp_path / "out"
    config.write_text(f'[run]\nout = "{out}"\n[hls]\nboard = "zedboard"\npe = 8\n')
    assert_one_line_error(run_resilq("pipeline", "run", str(config)), "hls.board: unknown board 'zedboard'")
    assert not out.exists()


def test_accel_config_replace_revalidates():
    with pytest.raises(ParameterError, match="accelerator.pe must be an integer"):
        dataclasses.replace(AccelConfig(), pe="8")
