"""The DSP estimate counts what the C++ instantiates: every multiplication of the synthesized sources is
an ops::mac_pair (ceil(PE/2) x SIMD copies, unrolled) or an ops::index_product call (counted), or a product by
a power-of-two compile-time constant (a shift); a run-time multiply anywhere else fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_hls_lint import SOURCES, code_of, loops

from resilq.hls import INCLUDE_DIR
from resilq.hls import imageformat as fmt
from resilq.hls.config import AccelConfig
from resilq.hls.resources import DSP_PER_INDEX_MULTIPLIER, INDEX_MULTIPLIERS, estimate

OPS = INCLUDE_DIR / "resilq" / "ops.hpp"
#: Words that can stand before a `*` of a declaration (a pointer type), not of a product.
TYPES = {"uint8_t", "int8_t", "uint16_t", "int16_t", "uint32_t", "int32_t", "uint64_t", "int64_t", "char", "void",
         "bool", "T", "Extent"}
#: Compile-time operands a product may have, with their value (None: a power of two by AccelConfig's rules).
CONSTANTS = {"Cfg::PE": None, "Cfg::SIMD": None, "(Cfg::SIMD / 8)": None, "image::DESC_WORDS": fmt.DESC_WORDS,
             "uint64_t(image::PROFILE_WORDS)": fmt.PROFILE_WORDS}
MULTIPLIER_FUNCTIONS = ("mac_pair", "mac_single", "index_product")


def products(code: str) -> list[tuple[str, str, int]]:
    """(left text, right text, offset) around every binary `*` (pointer declarations and dereferences excluded)."""
    found = []
    for m in re.finditer(r"\*", code):
        left = code[:m.start()].rstrip()
        right = code[m.end():].lstrip()
        if code[code.rfind("\n", 0, m.start()) + 1:m.start()].strip() == "":
            continue  # first on its line: a dereference (`*status = ...`)
        if not left or left[-1] not in ")]_" and not left[-1].isalnum():
            continue  # a dereference (`*status = ...`) or the start of an expression
        word = re.search(r"(\w+)$", left)
        if word and word.group(1) in TYPES:
            continue  # `uint32_t* ptr`: a pointer declaration
        found.append((left[-40:], right[:40], m.start()))
    return found


def is_constant_product(left: str, right: str) -> bool:
    for text, value in CONSTANTS.items():
        if left.endswith(text) or right.startswith(text):
            assert value is None or value & (value - 1) == 0, f"{text} = {value} is not a power of two"
            return True
    literal = re.search(r"\b(\d+)u?$", left) or re.match(r"(\d+)u?\b", right)
    return literal is not None and int(literal.group(1)) & (int(literal.group(1)) - 1) == 0


def multiplier_bodies() -> list[str]:
    code = code_of(OPS)
    return [re.search(rf"{name}\([^)]*\)\s*\{{(.*?)\n\}}", code, re.S).group(1) for name in MULTIPLIER_FUNCTIONS]


def run_time_products(path: Path) -> list[str]:
    code = code_of(path)
    spans = []
    if path == OPS:
        for name in MULTIPLIER_FUNCTIONS:
            m = re.search(rf"{name}\([^)]*\)\s*\{{.*?\n\}}", code, re.S)
            spans.append((m.start(), m.end()))
    bad = []
    for left, right, offset in products(code):
        if any(a <= offset < b for a, b in spans) or is_constant_product(left, right):
            continue
        line = code[:offset].count("\n") + 1
        bad.append(f"{path.name}:{line}: ...{left.strip()[-30:]} * {right.strip()[:30]}...")
    return bad


def call_sites(name: str) -> list[tuple[Path, int]]:
    sites = []
    for path in SOURCES:
        if path == OPS:
            continue
        code = code_of(path)
        sites += [(path, m.start()) for m in re.finditer(rf"\bops::{name}\(", code)]
    return sites


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_run_time_multiply_outside_the_counted_units(path):
    assert run_time_products(path) == [], "use ops::index_product (counted by the resource model) or a counter"


def test_the_multiplier_units_are_bound_to_dsps():
    """Each unit has exactly one run-time product, the one bound to a DSP (mac_pair's pre-adder scales by 2^16)."""
    for body in multiplier_bodies():
        assert re.search(r"#pragma HLS BIND_OP variable=product op=mul impl=dsp", body), body
        run_time = [(a, b) for a, b, _ in products(body) if not is_constant_product(a, b)]
        assert len(run_time) == 1, run_time
        assert re.search(r"product = [^;]*\*", body)


def test_dsp_estimate_equals_the_instantiated_multipliers():
    """INDEX_MULTIPLIERS is the number of index_product call sites; the packed MAC pair sits in the unrolled
    ceil(PE/2) x SIMD loops; the estimate is their sum for every build."""
    assert len(call_sites("index_product")) == INDEX_MULTIPLIERS
    ((path, offset),) = call_sites("mac_pair")
    code = code_of(path)
    enclosing = [(label, header) for label, header, body in loops(code) if "ops::mac_pair(" in body]
    labels = {label: header for label, header in enclosing}
    assert set(labels) == {"mac_pairs", "mac_simd", "compute"}
    assert re.search(r"<\s*\(Cfg::PE \+ 1\) / 2\s*$", labels["mac_pairs"].split(";")[1])
    assert re.search(r"<\s*Cfg::SIMD\s*$", labels["mac_simd"].split(";")[1])
    for label in ("mac_pairs", "mac_simd"):
        body = next(b for lbl, h, b in loops(code) if lbl == label)
        assert "#pragma HLS UNROLL" in body
    ((path, offset),) = call_sites("mac_single")  # the dedicated shadow lanes: K x SIMD, unpaired
    code = code_of(path)
    labels = {label: header for label, header, body in loops(code) if "ops::mac_single(" in body}
    assert set(labels) == {"shadow_macs", "shadow_simd", "compute"}
    assert re.search(r"<\s*SK\s*$", labels["shadow_macs"].split(";")[1])
    assert "constexpr uint32_t SK = Cfg::SHADOW_UNITS;" in code
    assert re.search(r"<\s*Cfg::SIMD\s*$", labels["shadow_simd"].split(";")[1])
    for pe, simd, units in ((1, 8, 2), (8, 8, 0), (8, 8, 2), (4, 16, 4), (16, 8, 2), (64, 64, 1)):
        config = AccelConfig(pe=pe, simd=simd, shadow_units=units)
        assert estimate(config).dsp == ((pe + 1) // 2 + units) * simd + INDEX_MULTIPLIERS * DSP_PER_INDEX_MULTIPLIER


def test_the_check_catches_a_run_time_multiply(tmp_path):
    bad = tmp_path / "bad.hpp"
    bad.write_text("inline uint32_t f(uint32_t a, const uint32_t* p) {\n    const uint32_t x = a * p[0] + 2 * a;\n"
                   "    return x * Cfg::PE;\n}\n")
    found = run_time_products(bad)
    assert len(found) == 1 and "a * p[0]" in found[0]


def test_the_lutram_buffers_are_the_ones_the_source_binds_to_lutram():
    """resources.buffers pins to LUTRAM exactly the arrays accel_top.cpp binds with BIND_STORAGE impl=lutram, and
    every buffer it counts is an array of the top function."""
    from resilq.hls import SRC_DIR
    from resilq.hls.resources import Storage, buffers

    code = code_of(SRC_DIR / "accel_top.cpp")
    bound = set(re.findall(r"#pragma HLS BIND_STORAGE variable=(\w+) type=ram_s2p impl=lutram", code))
    costs = buffers(AccelConfig(pe=16, simd=16))
    assert bound == {b.variable for b in costs if b.storage is Storage.LUTRAM} != set()
    for b in costs:
        assert re.search(rf"\b{b.variable}\b", code), b.variable
        assert b.bram18 == 0 or b.storage is Storage.AUTO
