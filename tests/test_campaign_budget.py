"""The slot-budget sweep (issue #16): every variant at equal extra slots, resumable, clip + the best measured."""

import csv

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.campaign.budget import (
    best_of,
    budget_slots,
    build,
    effective_bounds,
    parse_budgets,
    parse_variants,
    read_budget_manifest,
    run_budget_sweep,
)
from resilq.campaign.budget_plots import budget_rows
from resilq.campaign.engine import EvaluationSet, How
from resilq.campaign.runner import CampaignConfig, load_campaign
from resilq.cli import main
from resilq.errors import MismatchError, ParameterError
from resilq.gain import exact_gain, save_gain
from resilq.harden import Budget, HardeningPlan, harden, harden_by_gain
from resilq.harden.clip import profile_bounds, with_clip
from resilq.ir import save_model
from resilq.nvf import save_nvf
from resilq.nvf.exact import exact_nvf

from factories import random_model


@pytest.fixture(scope="module")
def analysed():
    rng = np.random.default_rng(7)
    images = rng.random((40, 1, 12, 12), dtype=np.float32)
    model = random_model(rng, images[:24], relu_last_hidden=False)
    x = model.quantize_input(images[:16])
    labels = rng.integers(0, 5, size=24)
    data = EvaluationSet(model.quantize_input(images[16:]), labels.astype(np.int64))
    bounds = profile_bounds(model, model.quantize_input(images[:16]))
    return model, exact_nvf(model, x), exact_gain(model, x), data, bounds


def test_parse_budgets_and_variants():
    assert parse_budgets("0.05, 0.01,0.05") == [0.01, 0.05]
    for bad in ("", "0", "1.5", "x", "-0.1"):
        with pytest.raises(ParameterError):
            parse_budgets(bad)
    assert parse_variants("gain-auto,none,clip+best") == ["none", "gain-auto", "clip+best"]
    with pytest.raises(ParameterError, match="unknown variant"):
        parse_variants("none,quad")
    with pytest.raises(ParameterError, match="clip\\+best needs"):
        parse_variants("none,clip,clip+best")


def test_points_build_the_selection_rules_at_the_budget(analysed):
    model, nvf, gain, _, _ = analysed
    slots = budget_slots(model.n_neurons, 0.1)
    assert slots == round(0.1 * model.n_neurons) and budget_slots(model.n_neurons, 1e-6) == 1
    assert build(model, "none", 0.0, nvf, gain).hash == model.hash
    paper = build(model, "nvf-split", 0.1, nvf, gain)
    assert paper.hash == harden(model, nvf, HardeningPlan(Scheme.SPLIT, Budget(slots), fallback=Scheme.TMR)).model.hash
    auto = build(model, "gain-auto", 0.1, nvf, gain)
    assert auto.hash == harden_by_gain(model, gain, None, slots).model.hash
    for variant in ("nvf-split", "nvf-tmr", "gain-split", "gain-tmr", "gain-auto"):
        assert 0 < build(model, variant, 0.1, nvf, gain).n_shadows <= slots, variant


def test_sweep_runs_every_variant_resumes_and_picks_the_best(analysed, tmp_path):
    model, nvf, gain, data, bounds = analysed
    config = CampaignConfig(faults=50, seed=3)
    out = tmp_path / "b"
    first = run_budget_sweep(model, nvf, gain, data, out, [0.05, 0.2], clip_bounds=bounds, config=config)
    labels = [p.label for p, _ in first.points]
    assert labels[:2] == ["none", "clip"] and len(labels) == 2 + 2 * 6 and "clip+best@0.2" in labels
    manifest = read_budget_manifest(out)
    assert len(manifest["points"]) == len(labels)
    rows = {r.label: r for r in budget_rows(out)}
    for r in rows.values():
        assert r.extra_slots <= r.budget_slots and r.faults_done == 50
    for f in (0.05, 0.2):
        at = {p.variant: rep.summary for p, rep in first.points if p.fraction == f and "-" in p.variant
              and not p.variant.startswith("clip")}
        choice = best_of(at)
        assert rows[f"clip+best@{f:g}"].best_of == choice
        expected = with_clip(build(model, choice, f, nvf, gain), effective_bounds(bounds))
        point = next(p for p in manifest["points"] if p["label"] == f"clip+best@{f:g}")
        assert point["model_hash"] == expected.hash
    clip_only = next(p for p in manifest["points"] if p["label"] == "clip")
    assert clip_only["model_hash"] == with_clip(model, effective_bounds(bounds)).hash != model.hash
    # resuming computes nothing new and gives the same numbers
    again = run_budget_sweep(model, nvf, gain, data, out, [0.05, 0.2], clip_bounds=bounds, config=config)
    assert [p.label for p, _ in again.points] == labels
    assert [r.critical_rate for r in budget_rows(out)] == [r.critical_rate for r in rows.values()]
    unprotected = load_campaign(out / manifest["points"][0]["campaign"])
    assert int((unprotected.outcomes.how == How.SHARED).sum()) == 0
    with pytest.raises(MismatchError):
        run_budget_sweep(model, nvf, gain, data, out, [0.05], clip_bounds=bounds, config=CampaignConfig(faults=50, seed=4))


def test_a_bound_of_127_clips_nothing_and_is_left_out(analysed, tmp_path):
    model, nvf, gain, data, bounds = analysed
    assert effective_bounds({0: 127, 2: 40}) == {2: 40}
    saturated = {i: 127 for i in bounds}
    config = CampaignConfig(faults=30, seed=2)
    run_budget_sweep(model, nvf, gain, data, tmp_path / "s", [0.1], ["none", "clip", "gain-auto", "clip+best"],
                     clip_bounds=saturated, config=config)
    points = {p["label"]: p for p in read_budget_manifest(tmp_path / "s")["points"]}
    assert points["clip"]["model_hash"] == points["none"]["model_hash"]  # one campaign, not two
    assert points["clip+best@0.1"]["model_hash"] == points["gain-auto@0.1"]["model_hash"]


def test_shared_outcomes_equal_separate_campaigns(analysed, tmp_path):
    model, nvf, gain, data, bounds = analysed
    config = CampaignConfig(faults=40, seed=1)
    kw = dict(clip_bounds=bounds, config=config, variants=["none", "clip", "gain-tmr", "nvf-tmr"])
    run_budget_sweep(model, nvf, gain, data, tmp_path / "shared", [0.1], **kw)
    run_budget_sweep(model, nvf, gain, data, tmp_path / "alone", [0.1], share=False, **kw)
    key = lambda r: (r.label, r.critical_rate, r.accuracy_loss)  # noqa: E731
    assert [key(r) for r in budget_rows(tmp_path / "shared")] == [key(r) for r in budget_rows(tmp_path / "alone")]


def test_cli_sweep_budget_writes_csv_and_plot(tmp_path, capsys):
    rng = np.random.default_rng(31)
    model = random_model(rng, shape=(1, 28, 28), classes=10, channels=(2, 3))
    x = model.quantize_input(rng.random((12, 1, 28, 28), dtype=np.float32))
    rq = save_model(model, tmp_path / "m.rq")
    nvf = save_nvf(exact_nvf(model, x), tmp_path / "m.nvf")
    g = save_gain(exact_gain(model, x), tmp_path / "m.gain")
    out = tmp_path / "sweep"
    args = ["sweep-budget", str(rq), "--nvf", str(nvf), "--gain", str(g), "--dataset", "digits", "--images", "20",
            "--faults", "30", "--budgets", "0.05,0.1", "--variants", "none,clip,gain-auto,nvf-split,clip+best",
            "--clip-inputs", "50", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "budget sweep" in text and "clip+best" in text
    with open(out / "budget.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == ["none", "clip", "nvf-split@0.05", "nvf-split@0.1", "gain-auto@0.05",
                                         "gain-auto@0.1", "clip+best@0.05", "clip+best@0.1"]
    assert (out / "budget.png").stat().st_size > 0
    assert main(args) == 0  # resumes: everything is already stored
    assert main([*args[:-2], "--budgets", "2", "--out", str(out)]) == 2
    assert "fraction of the neurons" in capsys.readouterr().err
