"""The pipeline's ``campaign.kind``: validated at load, passed to the Fig. 4 sweep, named in the report, and the
sweep's outcomes equal to ``resilq campaign --kind`` run the same way."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from resilq.campaign.runner import load_campaign
from resilq.campaign.sweep import read_manifest
from resilq.cli import main
from resilq.errors import ParameterError
from resilq.ir import save_model
from resilq.pipeline.config import from_dict, to_toml

from factories import random_model


@pytest.mark.parametrize("data, message", [
    ({"campaign": {"kind": "weigth"}}, "campaign.kind must be one of output, lane, weight, ber, got 'weigth'"),
    ({"campaign": {"kind": "ber"}}, "campaign.kind = 'ber': a BER campaign needs at least one probability"),
    ({"campaign": {"kind": "ber", "ber": [0.01, 1.5]}}, "campaign.ber must lie in [0.0, 1.0], got 1.5"),
    ({"campaign": {"kind": "ber", "ber": [0.01], "faults": 10}}, "campaign.faults must be 0 with campaign.kind = 'ber'"),
    ({"campaign": {"ber": [0.01]}}, "campaign.ber sets the probabilities of a BER campaign, but campaign.kind is 'output'"),
    ({"campaign": {"kind": "lane", "lane_scope": "every"}}, "campaign.kind = 'lane': lane scope must be 'layer' or 'all'"),
    ({"campaign": {"kind": "ber", "ber": [0.01], "ber_sites": "inputs"}}, "campaign.kind = 'ber': BER sites must be"),
    ({"campaign": {"kind": "ber", "ber": [0.01], "repetitions": 0}}, "campaign.repetitions must lie in [1,"),
    ({"campaign": {"kind": 3}}, "campaign.kind must be str"),
])
def test_kind_options_are_refused_by_name(data, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        from_dict(data).check()


def test_default_kind_is_output_and_kinds_load():
    assert from_dict({}).check().kind_spec().kind == "output"
    lane = from_dict({"campaign": {"kind": "lane", "lane_scope": "all"}, "hls": {"pe": 4}}).check().kind_spec()
    assert (lane.kind, lane.pe, lane.lane_scope) == ("lane", 4, "all")  # the lanes of the hls build
    ber = from_dict({"campaign": {"kind": "ber", "ber": [0.001, 0.01], "repetitions": 3}}).check().kind_spec()
    assert ber.ber == (0.001, 0.01) and ber.repetitions == 3


def _small_pipeline(tmp_path, seed: int, campaign: dict, **sections):
    """A small random model (28 x 28 inputs) and a pipeline config around it (TMR at 10 %, PE 2); returns (model path, toml)."""
    model = random_model(np.random.default_rng(seed), shape=(1, 28, 28), classes=10, channels=(2, 3))
    path = save_model(model, tmp_path / "m.rq")
    config = from_dict({
        "run": {"out": str(tmp_path / "run")},
        "model": {"path": str(path), "dataset": "digits"},
        "analysis": {"inputs": 4},
        "harden": {"schemes": ["tmr"], "protect_fraction": 0.1},
        "campaign": {"seed": 3, "protect_fractions": [0.1], **campaign},
        "hls": {"pe": 2}, **sections}).check()
    toml = tmp_path / "p.toml"
    toml.write_text(to_toml(config))
    return path, toml


@pytest.mark.parametrize("kind, cli", [("weight", []), ("lane", ["--pe", "2"])])
def test_pipeline_sweep_with_a_kind_equals_resilq_campaign(tmp_path, capsys, kind, cli):
    path, toml = _small_pipeline(tmp_path, 5, {"kind": kind, "faults": 10, "images": 12})
    assert main(["pipeline", "run", str(toml), "--to", "campaign"]) == 0
    summary = json.loads((tmp_path / "run" / "campaign" / "summary.json").read_text())
    assert summary["fault_kind"] == kind and summary["trust_engine_executor"]["status"] == "pass"
    manifest = read_manifest(tmp_path / "run" / "campaign" / "sweep")
    unprotected = next(p for p in manifest["points"] if p["scheme"] == "none")
    swept = load_campaign(tmp_path / "run" / "campaign" / "sweep" / unprotected["campaign"])

    db = tmp_path / "c.db"
    assert main(["campaign", str(path), "--dataset", "digits", "--images", "12", "--faults", "10", "--seed", "3",
                 "--kind", kind, *cli, "--out", str(db)]) == 0
    alone = load_campaign(db)
    assert swept.meta["fault_kind"] == alone.meta["fault_kind"] == kind
    assert np.array_equal(swept.idx, alone.idx)
    for column in ("layer", "slot", "neuron", "mask"):
        assert np.array_equal(getattr(swept.sample, column), getattr(alone.sample, column))
    assert np.array_equal(swept.outcomes.changed, alone.outcomes.changed)
    assert np.array_equal(swept.outcomes.correct, alone.outcomes.correct)
    assert swept.outcomes.digest == alone.outcomes.digest

    assert main(["pipeline", "run", str(toml), "--from", "report", "--to", "report"]) in (0, 1)
    report = json.loads((tmp_path / "run" / "report" / "report.json").read_text())
    assert report["fig4"]["text"].startswith(f"fault kind {kind}")


@pytest.mark.parametrize("kind, params", [("lane", {"pe": 2}), ("weight", {}), ("output", {})])
def test_faults_above_the_population_inject_the_whole_population(capsys, kind, params):
    from resilq.campaign import CampaignConfig, population_size
    from resilq.campaign.kinds import KindSpec, population_of
    from resilq.pipeline.steps.campaign import capped_to_population

    model = random_model(np.random.default_rng(2), shape=(1, 8, 8), classes=4, channels=(2, 3))
    spec = KindSpec(kind, **params)
    size = population_size(model) if kind == "output" else population_of(model, spec, CampaignConfig().fault_model)
    assert capped_to_population(model, CampaignConfig(faults=size, kind=spec)).faults == size  # untouched
    assert capped_to_population(model, CampaignConfig(faults=None, kind=spec)).faults is None  # Leveugle
    capped = capped_to_population(model, CampaignConfig(faults=size + 1, kind=spec))
    assert capped.faults == size and capped.kind == spec
    assert f"exceeds the {kind} population of {model.name} ({size:,})" in capsys.readouterr().out


@pytest.mark.parametrize("kind, extra", [("lane", {}), ("ber", {"ber": [0.003], "repetitions": 2, "faults": 0})])
def test_the_deploy_step_runs_the_campaign_kind_on_the_device(tmp_path, kind, extra):
    """The deploy step's device campaign is of the campaign step's kind (lane faults through the registers, BER on
    outputs through upset lists) and equals the engine's fault by fault."""
    _, toml = _small_pipeline(tmp_path, 6, {"kind": kind, "faults": 6, "images": 8, **extra},
                              deploy={"faults": 6, "images": 8})
    assert main(["pipeline", "run", str(toml), "--to", "deploy"]) == 0
    summary = json.loads((tmp_path / "run" / "deploy" / "summary.json").read_text())
    trust = summary["trust_driver_executor"]
    assert trust["status"] == "pass", trust
    for check in trust["checks"]:
        assert check["campaign"]["faults"] > 0 and check["campaign"]["mismatched"] == 0
    store = next((tmp_path / "run" / "deploy").glob("*-emulator.db"))
    assert load_campaign(store).meta["fault_kind"] == kind
