"""The report's wording from the steps' summaries, without running them: column alignment (shared with the
terminal tables), the overhead sentence (each variant's count; the costed-only schemes said), the ties behind
``protect_fractions``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from resilq.pipeline.steps.campaign import sweep_thresholds
from resilq.pipeline.steps.report import numeric_columns, overhead_text
from resilq.ui import _plain_table, have_rich, is_number, table


def test_only_columns_of_numbers_are_right_aligned():
    rows = [["conv1", "conv2d", "1x28x28", "3,456", "0.107 % [0.080 %, 0.134 %]", "n/a", "+2.0 %", "deploy/pkg"],
            ["total", "-", "10 classes", "4,684", "-", "3.38x", "n/a: no neuron reaches 20 %", "-"]]
    assert numeric_columns(rows) == [False, False, False, True, True, True, False, False]
    assert numeric_columns([["1", "2"]]) == [False, True]  # the first column names the rows
    assert numeric_columns([["a", "-"], ["b", "n/a"]]) == [False, False]  # nothing but placeholders: text


def test_terminal_tables_right_align_formatted_numbers_too(capsys):
    assert is_number("3,456") and is_number("0.000 ± 16.113 %") and is_number(12) and not is_number(True)
    assert not is_number("1x28x28") and not is_number("split@0.01") and not is_number("n/a: no fault sampled here")
    _plain_table("t", ["layer", "neurons", "mean NVF"], [["conv1", "3,456", "0.309 %"], ["fc2", "84", "-"]], None, None)
    lines = capsys.readouterr().out.splitlines()
    assert lines[3:] == ["conv1    3,456   0.309 %", "fc2         84         -"]


def test_a_table_wider_than_the_console_keeps_every_cell_whole_in_a_log(capsys):
    """Printed to a pipe or a log (CI, ``| tee``), a benchmark-wide table is neither cut at the console's 120
    columns nor has its numbers shortened to ``1,234,…``."""
    if not have_rich():
        pytest.skip("rich is not installed: tables are plain columns, never cut")
    columns = ["network", "variant"] + [f"cycles, build {i}" for i in range(10)]
    row = ["AlexNet-CIFAR", "tmr+pack"] + [f"{1_234_567 * (i + 1):,}" for i in range(10)]
    table("wide", columns, [row])
    out = capsys.readouterr().out
    assert "…" not in out
    for cell in columns + row:
        assert cell in out, cell
    assert max(len(line) for line in out.splitlines()) > 120


def _harden(select: str, variants, overhead) -> dict:
    return {"criterion": "the 188 most vulnerable neurons (4 %)" if select == "nvf" else "by gain", "neurons": 4684,
            "equivalent_threshold": 0.01 if select == "nvf" else None, "selected": 188,
            "variants": [{"scheme": s, "protected": n} for s, n in variants],
            "overhead": [{"variant": v} for v in overhead]}


def test_the_overhead_sentence_gives_each_variants_count_and_names_the_costed_only_schemes():
    gain = overhead_text(_harden("gain", [("split", 187), ("tmr", 93)], ["unprotected", "split", "tmr"]))
    assert gain == "Selection: by gain; split protects 187, tmr protects 93 of the 4,684 neurons."
    nvf = overhead_text(_harden("nvf", [("split", 188)], ["unprotected", "split", "tmr", "dup-and", "dup-min"]))
    assert nvf.startswith("Selection: the 188 most vulnerable neurons (4 %) (NVF ≥ 1.00 %); split protects 188 of")
    assert "also costs tmr, dup-and, dup-min on the same selection for comparison; they are not in harden.schemes" in nvf


def test_a_protect_fraction_that_lands_on_tied_nvfs_says_so():
    """16 % of 10 neurons asks for 2, but the 2nd and 3rd most vulnerable are tied: the threshold protects 3."""
    nvf = SimpleNamespace(values={0: np.array([0.5, 0.3, 0.3, 0.1, 0.0]), 2: np.array([0.05, 0.0, 0.0, 0.0, 0.0])})
    ctx = SimpleNamespace(config=SimpleNamespace(campaign=SimpleNamespace(thresholds=[], protect_fractions=[0.0, 0.1,
                                                                                                           0.16])))
    points = sweep_thresholds(ctx, nvf)
    assert [(p["threshold"], p["protected"]) for p in points] == [(0.3, 3), (0.5, 1)]
    tied = points[0]
    assert tied["asked_fraction"] == 0.16 and tied["fraction"] == 0.3
    assert tied["note"] == ("protect_fractions 0.16: NVF ≥ 30 % protects 3 neurons (30.00 %), not 2: the 1 extra are "
                            "among 2 neurons tied at that NVF, which a threshold cannot part (the harden step's top-k "
                            "protects exactly the fraction)")
    assert "note" not in points[1]  # 10 % = the one neuron at NVF 0.5: no tie
