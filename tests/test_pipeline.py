"""The end-to-end pipeline: TOML config, named steps, ``resilq demo --quick`` and its report (also rendered in
headless Chromium)."""

from __future__ import annotations

import base64
import json
import re
import shutil

import pytest

from resilq.cli import main
from resilq.errors import MismatchError, ParameterError
from resilq.pipeline import Context, MissingStepError, PipelineConfig, demo_config, load_config, select, to_toml
from resilq.pipeline.config import from_dict

SECTIONS = ("summary", "verdict", "chain-of-trust", "model", "table-i", "nvf-plots", "overhead", "fig4", "deployment", "steps")


# ------------------------------------------------------------------------------------------------ config
def test_config_round_trips_through_toml(tmp_path):
    cfg = demo_config(str(tmp_path / "out"), quick=True)
    path = tmp_path / "p.toml"
    path.write_text(to_toml(cfg))
    assert load_config(path) == cfg


@pytest.mark.parametrize("data, message", [
    ({"harden": {"treshold": 0.2}}, "unknown key harden.treshold"),
    ({"hardening": {}}, "unknown section [hardening]"),
    ({"analysis": {"inputs": "500"}}, "analysis.inputs must be int"),
    ({"harden": {"threshold": 1.5}}, "harden.threshold must lie in [0, 1]"),
    ({"campaign": {"protect_fractions": [0.1, 2]}}, "campaign.protect_fractions must lie in [0, 1)"),
    ({"deploy": {"target": "fpga"}}, "deploy.target must be emulator, csim or board"),
    ({"harden": {"schemes": ["split", "tmrr"]}}, "harden.schemes"),
    ({"campaign": {"fault_model": "double-bit"}}, "campaign.fault_model"),
    ({"model": {"dataset": "imagenet"}}, "model.dataset must be one of"),
    ({"harden": {"select": "random"}}, "harden.select must be gain or nvf"),
    ({"harden": {"budget": 0.0}}, "harden.budget must lie in (0, 1]"),
    ({"harden": {"select": "nvf", "schemes": ["auto"]}}, "auto chooses by gain"),
])
def test_config_refuses_mistakes_by_name(data, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        from_dict(data)


def test_every_option_is_documented_in_the_written_toml():
    import dataclasses

    text = to_toml(PipelineConfig())
    for section in dataclasses.fields(PipelineConfig):
        for f in dataclasses.fields(getattr(PipelineConfig(), section.name)):
            assert f.metadata["doc"] and f"# {f.metadata['doc']}\n{f.name} = " in text


def test_verdict_needs_both_intervals_below_the_unprotected_ones():
    from resilq.pipeline.verdict import verdict

    def row(name, loss, crit):
        iv = lambda lo, hi: {"value": (lo + hi) / 2, "low": lo, "high": hi}  # noqa: E731
        return {"variant": name, "faults": 400, "images": 100, "accuracy_loss": iv(*loss), "critical_rate": iv(*crit)}

    base = row("unprotected", (0.02, 0.04), (0.03, 0.05))
    v = verdict([base, row("tmr", (0.0, 0.019), (0.0, 0.02)), row("split", (0.0, 0.03), (0.0, 0.02))], "by gain")
    assert v["pays"] and v["lines"][0].startswith("tmr: YES, lowers both")
    assert v["lines"][1].startswith("split: NO, it does not lower the accuracy loss below")
    assert "critical" not in v["lines"][1].split("(")[0]
    none = verdict([base, row("split", (0.0, 0.05), (0.04, 0.06))], "by gain")
    assert not none["pays"] and "the accuracy loss and the critical-inference rate" in none["lines"][0]
    assert "no variant pays" in none["headline"]


def test_bad_toml_and_missing_file_are_named(tmp_path):
    (tmp_path / "bad.toml").write_text("[model\narch = 1")
    with pytest.raises(ParameterError, match="bad.toml: not valid TOML"):
        load_config(tmp_path / "bad.toml")
    with pytest.raises(ParameterError, match="pipeline config not found"):
        load_config(tmp_path / "none.toml")


def test_step_selection():
    assert select(None, None)[0] == "train" and select(None, None)[-1] == "report"
    assert select("harden", "hls") == ["harden", "campaign", "hls"]
    with pytest.raises(ParameterError, match="unknown step 'prune'"):
        select("prune", None)
    with pytest.raises(ParameterError, match="comes after"):
        select("hls", "train")


def test_a_step_without_its_inputs_says_which_step_to_run(tmp_path, capsys):
    path = tmp_path / "p.toml"
    assert main(["pipeline", "init", str(path)]) == 0
    assert main(["pipeline", "init", str(path)]) == 2  # refuses to overwrite
    assert main(["pipeline", "run", str(path), "--from", "harden", "--out", str(tmp_path / "out")]) == 2
    assert "step 'train' has no output" in capsys.readouterr().err
    config = load_config(path)
    config.run.out = str(tmp_path / "empty")
    with pytest.raises(MissingStepError, match="run step 'train' first|step 'train' has no output"):
        Context(config).model()


def test_stale_results_are_set_aside_not_mixed(tmp_path):
    ctx = Context(PipelineConfig())
    store = tmp_path / "x.db"
    store.write_text("results of another model")
    calls = []

    def work(value):
        calls.append(value)
        if len(calls) == 1:
            raise MismatchError("x.db holds a different campaign")
        return value

    assert ctx.fresh_on_mismatch(store, work, 7) == 7 and calls == [7, 7]
    assert (tmp_path / "x.db.stale").read_text() == "results of another model"


# ------------------------------------------------------------------------------------------------ demo
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    return out


def test_demo_report_has_every_section_with_real_numbers(demo):
    html = (demo / "report" / "report.html").read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in html
    assert "has not been run" not in html
    doc = json.loads((demo / "report" / "report.json").read_text())
    s = doc["summaries"]
    assert 0.5 < s["train"]["int_accuracy"] <= 1.0 and s["train"]["neurons"] == 4684
    assert [r["critical"] for r in s["analyze"]["table1"]][0] == 4684 and len(s["analyze"]["table1"]) == 11
    assert {v["scheme"] for v in s["harden"]["variants"]} == {"split", "tmr"}
    assert all(v["protected"] > 0 for v in s["harden"]["variants"])
    budget = s["harden"]["criterion_spec"]["slots"]  # selected by gain within 4 % extra slots (the default)
    assert s["harden"]["select"] == "gain" and budget == round(0.04 * 4684)
    assert all(0 < v["extra_slots"] <= budget for v in s["harden"]["variants"])
    verdict = s["campaign"]["default_protection"]
    assert [r["variant"] for r in verdict["rows"]] == ["unprotected", "split", "tmr"] and len(verdict["lines"]) == 2
    assert all(line.split(": ", 1)[1].startswith(("YES, lowers both", "NO, it does not lower"))
               for line in verdict["lines"])
    assert verdict["headline"] in html
    rows = s["campaign"]["rows"]
    assert {r["scheme"] for r in rows} == {"none", "split", "tmr"}
    assert all(r["faults_done"] == r["sample_size"] > 0 for r in rows)
    none = next(r for r in rows if r["scheme"] == "none")
    assert none["critical_rate"] > 0  # single-bit faults do change some predictions
    assert {r["resource"] for r in s["hls"]["resources"]} == {"LUT", "FF", "DSP", "BRAM36"}
    cycles = {c["variant"]: c["cycles"] for c in s["hls"]["cycles"]}
    assert cycles["unprotected"] < min(cycles["split"], cycles["tmr"])
    assert {r["variant"] for r in s["deploy"]["results"]} == {"unprotected", "split", "tmr"}
    assert [r[1] for r in doc["trust"]] == ["pass"] * 4
    for name in ("table1.csv", "fig4.csv", "overhead.csv", "cycles.csv", "deployment.csv", "trust.csv"):
        assert (demo / "report" / name).stat().st_size > 50
    assert len(re.findall(r'<img srcset="data:image/png;base64,[^ "]+ 2x"', html)) >= 4


def test_demo_report_reads_consistently(demo):
    """Text cells are left-aligned and only columns of numbers right-aligned; one ≥ (the TOML shown verbatim
    aside); the paper's columns say whose they are; each variant's own protected count."""
    html = (demo / "report" / "report.html").read_text()
    body = re.sub(r"<details>.*?</details>", "", html, flags=re.S)
    for cls, value in re.findall(r'<td( class="num")?>([^<]*)</td>', body):
        words = re.search(r"[A-Za-z]{2,}", value.replace("n/a", ""))
        assert not (cls and words), f"text right-aligned: {value!r}"
    assert re.search(r'<td class="num">4,684</td>', body) and '<th class="num">critical neurons</th>' in body
    assert "&gt;=" not in body and ">=" not in re.sub(r"<[^>]*>", "", body)
    assert "Table I of Ahmadilivani et al. for their LeNet-5 (MNIST)" in body and "lenet5&#39;s" not in body
    assert "of the paper&#39;s LeNet-5 (MNIST) neurons reach 20 %" in body
    variants = json.loads((demo / "report" / "report.json").read_text())["summaries"]["harden"]["variants"]
    counts = ", ".join(f"{v['scheme']} protects {v['protected']:,}" for v in variants)
    assert f"; {counts} of the 4,684 neurons." in body


def test_steps_restart_from_any_step(demo, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(demo, out)
    report = out / "report" / "report.html"
    report.unlink()
    assert main(["pipeline", "run", str(out / "pipeline.toml"), "--out", str(out), "--from", "report"]) == 0
    assert report.is_file()
    train = json.loads((out / "train" / "summary.json").read_text())
    assert train == json.loads((demo / "train" / "summary.json").read_text())  # not re-run


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
def test_report_renders_in_headless_chromium(demo):
    """At a 1400 px window every figure is shown at least at the width it was drawn for (the browser's
    density-corrected ``naturalWidth``), every table cell holds a value or says n/a, and a full-page screenshot
    is saved beside the report (``report/report-1400px.png``) for a person to look at."""
    pytest.importorskip("selenium", reason="selenium is in the dev extra: pip install -e .[dev]")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from resilq.figures import PAGE_WIDTH_PX, png_size

    browser, driver = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                "--window-size=1400,1000", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    web = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        web.get((demo / "report" / "report.html").resolve().as_uri())
        assert web.title.startswith("resilq report")
        assert web.execute_script("return window.innerWidth") >= 1380
        images = web.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, "
            "i.clientWidth, i.clientHeight, i.currentSrc.slice(0, 22), i.alt])")
        assert len(images) >= 4
        for complete, width, height, shown, shown_height, src, alt in images:
            assert complete and src == "data:image/png;base64,", alt
            assert width >= PAGE_WIDTH_PX - 10 and height > 150, (alt, width, height)  # drawn for the full page
            assert shown >= width and shown_height >= height, (alt, shown, width)  # and never shown smaller
            assert len(alt) > 40, alt  # a caption that says what to look at, not a file name
        misaligned = web.execute_script(  # words are left-aligned; only columns of numbers are right-aligned
            "return Array.from(document.querySelectorAll('td')).filter(c => /[a-z]{2,}/i.test("
            "c.innerText.replace('n/a', '')) && getComputedStyle(c).textAlign === 'right').map(c => c.innerText)")
        assert misaligned == []
        empty = web.execute_script("return Array.from(document.querySelectorAll('td, th:not(:first-child)'))"
                                   ".filter(c => !c.innerText.trim()).map(c => c.closest('tr').innerText)")
        assert empty == []
        for section in SECTIONS:
            box = web.execute_script(f"return document.getElementById('{section}').getBoundingClientRect().height")
            assert box > 10, section
        text = web.execute_script("return document.body.innerText")
        assert "Table I" in text and "pass" in text and "FAIL" not in text
        for sentence in ("Neuron Vulnerability Factor", "critical inference", "own fault-free accuracy",
                         "fixed evaluation set", "far below the paper's", "Cycles are modelled", "Brevitas QAT",
                         "fitted to our range", "n/a: no neuron reaches 20 %"):
            assert sentence in text, sentence
        assert not re.search(r"\b\d{4,}\b", " ".join(
            web.execute_script("return Array.from(document.querySelectorAll('td')).map(c => c.innerText)"))
           ), "a number of 4+ digits without thousands separators"
        shot = demo / "report" / "report-1400px.png"
        page = web.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        shot.write_bytes(base64.b64decode(page["data"]))
        page_height = web.execute_script("return document.documentElement.scrollHeight")
        assert png_size(shot)[0] >= 1380 and png_size(shot)[1] >= page_height > 2000
    finally:
        web.quit()
