"""The register map is one description: layout rules, generated headers, top-function pragmas."""

from __future__ import annotations

import re

import pytest

from resilq.hls import SRC_DIR, codegen, imageformat, regmap
from resilq.hls.config import AccelConfig

TOP = (SRC_DIR / "accel_top.cpp").read_text()


def test_layout_follows_the_hls_rules():
    regmap.check_layout()
    assert regmap.AP_CTRL.offset == 0 and regmap.CRIT_TABLE.offset == 0x8000
    for reg in regmap.REGISTERS:
        if reg.access is not regmap.Access.CTRL:
            assert reg.words == reg.bits // 32 + 1  # data words + one protocol word


def test_layout_check_catches_an_overlap(monkeypatch):
    clash = regmap.Register("CLASH", regmap.FI_SLOT.offset + 4, regmap.Access.RW, "overlaps FI_SLOT's reserved word",
                            arg="clash")
    monkeypatch.setattr(regmap, "REGISTERS", (*regmap.REGISTERS, clash))
    with pytest.raises(AssertionError, match="CLASH overlaps FI_SLOT"):
        regmap.check_layout()


def test_generated_headers_are_fresh():
    assert codegen.stale_headers() == [], "run `python -m resilq.hls codegen` and commit the headers"


def test_generated_regmap_header_lists_every_register():
    text = codegen.render_regmap()
    for reg in regmap.REGISTERS:
        assert f"constexpr uint32_t {reg.name} = {reg.offset:#x}u;" in text
        for f in reg.fields:
            assert f"constexpr uint32_t {reg.name}_{f.name}_MASK = {f.mask:#x}u;" in text
    assert f"constexpr uint32_t MAP_VERSION = {regmap.VERSION}u;" in text
    assert f"CRIT_TABLE_CAPACITY = {regmap.CRIT_TABLE.capacity}u;" in text


def test_generated_imageformat_header_lists_every_code():
    text = codegen.render_imageformat()
    for enum, prefix in ((imageformat.DescWord, "DESC"), (imageformat.Status, "STATUS"), (imageformat.Op, "OP")):
        for member in enum:
            assert f"constexpr uint32_t {prefix}_{member.name} = {int(member)}u;" in text


def test_config_header_carries_every_field():
    cfg = AccelConfig(pe=4, simd=16)
    text = codegen.render_config(cfg)
    assert "static constexpr unsigned PE = 4u;" in text and "static constexpr unsigned SIMD = 16u;" in text
    assert f"CONFIG_ID = {cfg.config_id:#010x}u;" in text
    assert "static constexpr uint32_t MAC = " in text


def _pragmas() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for line in re.findall(r"#pragma HLS INTERFACE (.*)", TOP):
        opts = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        out.setdefault(opts["port"], {}).update({f"{opts['mode']}.{k}": v for k, v in opts.items()})
    return out


def _top_arguments() -> list[str]:
    signature = re.search(r"void resilq_accel\((.*?)\)\s*\{", TOP, re.S).group(1)
    return [re.split(r"[\s*]+", a.strip().split("[")[0])[-1] for a in signature.split(",")]


def test_every_s_axilite_offset_matches_the_regmap():
    pragmas = _pragmas()
    described = {r.arg: r.offset for r in regmap.REGISTERS if r.arg} | {t.arg: t.offset for t in regmap.TABLES}
    placed = {port: int(p["s_axilite.offset"], 16) for port, p in pragmas.items() if "s_axilite.offset" in p}
    assert placed == described
    assert all(p.get("s_axilite.bundle") == "control" for p in pragmas.values() if "s_axilite.mode" in p)


def test_every_top_argument_has_an_interface():
    pragmas = _pragmas()
    args = _top_arguments()
    assert set(args) == set(pragmas) - {"return"}
    assert pragmas["return"]["ap_ctrl_hs.mode"] == "ap_ctrl_hs" and pragmas["return"]["s_axilite.mode"] == "s_axilite"
    for ptr in regmap.POINTERS:
        assert pragmas[ptr.arg]["m_axi.offset"] == "slave"
    # the bridge and the testbench call the top function with the arguments in this order
    assert args[:3] == [p.arg for p in regmap.POINTERS]
    inputs = [r.arg for r in regmap.INPUTS if r not in regmap.POINTERS]
    assert args[3:3 + len(inputs)] == inputs
    assert args[-len(regmap.OUTPUTS):] == [r.arg for r in regmap.OUTPUTS]


def test_fields_round_trip():
    f = regmap.FI_CTRL.field("TOKEN")
    assert f.get(f.put(0xAB) | 0x3) == 0xAB
    with pytest.raises(ValueError, match="8 bits"):
        f.put(256)
    assert regmap.encode_entry(3, 17) == (3 << 16) | 17


def test_documented_register_map_matches():
    """docs/accelerator.md's register table lists every register at its offset (the doc cannot drift)."""
    from resilq.hls import HLS_DIR

    doc = (HLS_DIR.parent / "docs" / "accelerator.md").read_text()
    for reg in regmap.REGISTERS:
        assert f"| `{reg.name}` | {reg.offset:#06x} | {reg.bits} | {reg.access.value} |" in doc, reg.name
    for status in imageformat.Status:
        assert f"`{status.name}` {int(status)}" in doc, status.name


def test_host_side_modules_import_without_torch_or_rich():
    """The driver imports these on the board (numpy and the standard library only)."""
    import subprocess
    import sys

    modules = ["regmap", "imageformat", "config", "codegen", "mapping", "packing", "host", "cycles", "resources",
               "reference", "vectors", "csim", "simulate", "project"]
    code = ("import sys\n" + "".join(f"import resilq.hls.{m}\n" for m in modules) + "import resilq.boards\n"
            "heavy = sorted(m for m in ('torch', 'brevitas', 'rich', 'matplotlib', 'scipy') if m in sys.modules)\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
