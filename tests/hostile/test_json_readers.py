"""The pipeline's step summaries, a sweep's ``sweep.json`` and an analysis's ``plan.json`` are read through the
size- and depth-capped JSON reader (``resilq.archive.read_json_file``): a crafted file gets a one-line error
naming it, never a RecursionError, an unbounded read or a traceback."""

from __future__ import annotations

import pytest

from resilq.archive import MAX_JSON_DEPTH, MAX_MANIFEST_BYTES
from resilq.campaign.sweep import MANIFEST, read_manifest
from resilq.cli import main
from resilq.errors import FormatError, MismatchError
from resilq.nvf.partials import PLAN_FILE, Partials
from resilq.pipeline import Context, PipelineConfig

DEEP = "[" * 50_000 + "]" * 50_000


def _huge(path):
    with open(path, "wb") as f:
        f.truncate(MAX_MANIFEST_BYTES + 1)  # sparse: costs no disk
    return path


def _context(tmp_path) -> Context:
    config = PipelineConfig()
    config.run.out = str(tmp_path)
    return Context(config)


def test_a_step_summary_is_read_within_the_limits(tmp_path):
    ctx = _context(tmp_path)
    (tmp_path / "train").mkdir()
    summary = tmp_path / "train" / "summary.json"
    summary.write_text(DEEP)
    with pytest.raises(FormatError, match=f"summary.json is nested too deeply \\(more than {MAX_JSON_DEPTH} levels"):
        ctx.summary("train")
    _huge(summary)
    with pytest.raises(FormatError, match=f"{MAX_MANIFEST_BYTES + 1:,} bytes, more than the {MAX_MANIFEST_BYTES:,}"):
        ctx.summary("train")
    summary.write_text("[1, 2]")
    with pytest.raises(FormatError, match="a step summary is a JSON object, not list; run the pipeline from 'train'"):
        ctx.summary("train")
    summary.write_text('{"model_file": ')
    with pytest.raises(FormatError, match="summary.json is not valid JSON"):
        ctx.summary("train")


def test_a_crafted_summary_stops_the_pipeline_with_one_line(tmp_path, capsys):
    config = tmp_path / "p.toml"
    assert main(["pipeline", "init", str(config)]) == 0
    for step in ("train", "analyze"):
        (tmp_path / "out" / step).mkdir(parents=True)
        (tmp_path / "out" / step / "summary.json").write_text(DEEP)
    assert main(["pipeline", "run", str(config), "--out", str(tmp_path / "out"), "--from", "report"]) == 2
    err = capsys.readouterr().err
    assert "is nested too deeply" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_sweep_manifest_is_read_within_the_limits(tmp_path, capsys):
    manifest = tmp_path / MANIFEST
    manifest.write_text(DEEP)
    with pytest.raises(FormatError, match="sweep.json is nested too deeply"):
        read_manifest(tmp_path)
    _huge(manifest)
    with pytest.raises(FormatError, match=f"more than the {MAX_MANIFEST_BYTES:,} a sweep manifest may have"):
        read_manifest(tmp_path)
    for text in ('["points"]', '{"version": 999, "points": []}', '{"version": 1, "points": 3}'):
        manifest.write_text(text)
        with pytest.raises(FormatError, match="malformed sweep manifest"):
            read_manifest(tmp_path)
    manifest.write_text(DEEP)
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nested too deeply" in err and "Traceback" not in err


def test_a_crafted_analysis_plan_is_refused_as_another_analysis(tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    (units / PLAN_FILE).write_text(DEEP)
    with pytest.raises(MismatchError, match="holds finished units of another analysis"):
        Partials(units, "0" * 64, {})
    _huge(units / PLAN_FILE)
    with pytest.raises(MismatchError, match="holds finished units of another analysis"):
        Partials(units, "0" * 64, {})
