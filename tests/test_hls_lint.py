"""Mechanical synthesizability rules for the accelerator sources (hls/include/resilq, hls/src/accel_top.cpp).

Checked here: no dynamic memory, STL or floating point; no global #define configuration; no recursion;
no while/do loops; every loop labelled; every innermost loop pipelined or unrolled; every pipelined
loop with a run-time bound given a trip count; every local array sized by a compile-time constant;
only <cstdint> and project headers included. The C-sim bridge and the testbench are not synthesized
and not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from resilq.hls import INCLUDE_DIR, SRC_DIR

SOURCES = sorted((INCLUDE_DIR / "resilq").glob("*.hpp")) + [SRC_DIR / "accel_top.cpp"]
CONST = r"(?:Cfg|AccelConfig|image|regmap|resilq::regmap|resilq::image|arith)::[A-Z_]+|\d+"


def code_of(path: Path) -> str:
    """Source without comments and string literals."""
    text = re.sub(r"//[^\n]*", "", path.read_text())
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def loops(code: str) -> list[tuple[str, str, str]]:
    """(label, header, body) of every for loop, bodies by brace matching."""
    found = []
    for m in re.finditer(r"\bfor\s*\(", code):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
        header = code[m.end():i - 1]
        rest = code[i:].lstrip()
        if rest.startswith("{"):
            j = code.index("{", i)
            depth, k = 1, j + 1
            while depth:
                depth += {"{": 1, "}": -1}.get(code[k], 0)
                k += 1
            body = code[j + 1:k - 1]
        else:  # a single-statement body
            body = rest[:rest.index(";") + 1]
        label = re.search(r"(\w+):$", code[:m.start()].rstrip())
        found.append((label.group(1) if label else "", header, body))
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_dynamic_memory_stl_or_float(path):
    code = code_of(path)
    for pattern, what in [(r"\bnew\b|\bdelete\b|\bmalloc\b|\bcalloc\b|\brealloc\b|\bfree\s*\(", "dynamic memory"),
                          (r"\bstd::", "the standard library"), (r"\bfloat\b|\bdouble\b", "floating point"),
                          (r"\bwhile\b|\bdo\s*\{", "while/do loops (use a bounded or trip-counted for)"),
                          (r"#\s*define\b", "#define configuration (use the Cfg struct)")]:
        assert not re.search(pattern, code), f"{path.name} uses {what}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_only_cstdint_and_project_headers(path):
    for inc in re.findall(r"#include\s*([<\"][^>\"]+[>\"])", path.read_text()):
        assert inc == "<cstdint>" or inc.startswith('"'), f"{path.name} includes {inc}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_loops_are_labelled_pipelined_and_bounded(path):
    code = code_of(path)
    for label, header, body in loops(code):
        where = f"{path.name}: loop `for ({header.strip()})`"
        assert label, f"{where} has no label"
        # a loop around other loops, or around calls of the Cfg-templated kernels, is a sequencing loop
        innermost = not re.search(r"\bfor\s*\(|<Cfg>\s*\(", body)
        pipelined = "#pragma HLS PIPELINE" in body
        unrolled = "#pragma HLS UNROLL" in body
        if innermost:
            assert pipelined or unrolled, f"{where} ({label}) is neither pipelined nor unrolled"
        bound = header.split(";")[1] if header.count(";") == 2 else ""
        constant_bound = bool(re.fullmatch(rf"\s*\w+\s*<\s*(?:{CONST})\s*", bound))
        if pipelined and not constant_bound:
            assert "LOOP_TRIPCOUNT" in body, f"{where} ({label}) has a run-time bound and no LOOP_TRIPCOUNT"
        if not pipelined and not unrolled:
            assert "LOOP_TRIPCOUNT" in body, f"{where} ({label}) is a sequential loop without a LOOP_TRIPCOUNT"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_arrays_have_static_sizes(path):
    code = code_of(path)
    decls = re.findall(r"^\s*(?:static\s+)?(?:const\s+)?(?:typedef\s+)?[\w:<>]+\s+\w+((?:\[[^\]]+\])+)\s*[;=]",
                       code, re.M)
    assert decls or path.name not in ("conv.hpp", "accel_top.cpp")
    template_params = set(re.findall(r"template\s*<\s*unsigned\s+(\w+)\s*>", code))
    for dims in decls:
        for dim in re.findall(r"\[([^\]]+)\]", dims):
            tokens = re.findall(r"[A-Za-z_][\w:]*", dim)
            assert all(re.fullmatch(CONST, t) or t in template_params for t in tokens), \
                f"{path.name}: array dimension [{dim}] is not static"


def _functions(code: str) -> dict[str, str]:
    out = {}
    for m in re.finditer(r"\b([A-Za-z_]\w*)\s*\([^;{}()]*(?:\([^()]*\)[^;{}()]*)*\)\s*(?:const\s*)?\{", code):
        name = m.group(1)
        if name in ("if", "for", "switch", "while"):
            continue
        depth, k = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(code[k], 0)
            k += 1
        out[name] = code[m.end():k - 1]
    return out


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_recursion(path):
    for name, body in _functions(code_of(path)).items():
        assert not re.search(rf"\b{name}\s*(?:<[^<>]*>)?\s*\(", body), f"{path.name}: {name} calls itself"


def test_lint_finds_the_things_it_forbids(tmp_path):
    """The checks are not vacuous: a source breaking each rule is caught."""
    bad = tmp_path / "bad.hpp"
    bad.write_text("#include <vector>\nint f(int n) {\n    int a[n];\n    for (int i = 0; i < n; ++i) a[i] = f(i);\n"
                   "    return a[0];\n}\n")
    code = code_of(bad)
    assert _functions(code)["f"] and re.search(r"\bf\s*\(", _functions(code)["f"])
    ((label, header, body),) = loops(code)
    assert label == "" and "PIPELINE" not in body
    with pytest.raises(AssertionError):
        test_arrays_have_static_sizes(bad)
    with pytest.raises(AssertionError):
        test_only_cstdint_and_project_headers(bad)
