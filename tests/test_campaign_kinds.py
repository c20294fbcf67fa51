"""Campaigns per fault kind (lane, weight, BER): populations and Leveugle sizes, the durable store and resume,
per-kind breakdowns, engine == executor outcomes, and the CLI's --kind."""

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.campaign import CampaignConfig, EvaluationSet, leveugle_sample_size
from resilq.campaign.engine import ExecutorBackend
from resilq.campaign.kinds import KindSpec, population_of, sample_kind
from resilq.campaign.runner import load_campaign, run_campaign
from resilq.campaign.sampling import SINGLE_BIT, FaultModel
from resilq.cli import main
from resilq.errors import MismatchError, ParameterError
from resilq.fault_kinds import BerFault, LaneFault, WeightFault, n_weight_bits
from resilq.hls.mapping import slot_lanes
from resilq.ir import Executor, save_model

from factories import protect, random_model


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(41)
    model = protect(random_model(rng, channels=(3, 4), hidden=10), rng, Scheme.TMR, 0.3)
    x = model.quantize_input(rng.random((20, *model.input.shape), dtype=np.float32))
    return model, EvaluationSet(x, rng.integers(0, model.n_classes, 20))


def test_populations_and_leveugle_sizes(setup):
    model, _ = setup
    lanes = sum(np.unique(slot_lanes(model, i, 8, 4)).size for i in model.neuron_layers)
    assert population_of(model, KindSpec("lane", pe=8), SINGLE_BIT) == lanes * 8
    # 2 PE lanes and the 2 of the 4 shadow lanes that write shadows (the model is protected, scattered)
    spec = KindSpec("lane", pe=2, units=2, lane_scope="all")
    assert population_of(model, spec, FaultModel.parse("multi-bit:2")) == 4 * 28
    assert population_of(model, KindSpec("lane", pe=2, units=0, lane_scope="all"),
                         FaultModel.parse("multi-bit:2")) == 2 * 28
    assert population_of(model, KindSpec("weight"), SINGLE_BIT) == n_weight_bits(model)
    assert population_of(model, KindSpec("ber", ber=(1e-3, 1e-2), repetitions=4), SINGLE_BIT) == 8
    weight = sample_kind(model, KindSpec("weight"), SINGLE_BIT, None, 0)
    assert len(weight) == leveugle_sample_size(n_weight_bits(model))
    faults = weight.faults()
    assert all(isinstance(f, WeightFault) for f in faults) and len(set(faults)) == len(faults)
    assert any(f.tap is None for f in faults) and any(f.tap is not None for f in faults)
    # nested: a smaller sample is the start of a larger one (same priorities)
    assert sample_kind(model, KindSpec("weight"), SINGLE_BIT, 50, 3).faults() == \
        sample_kind(model, KindSpec("weight"), SINGLE_BIT, 80, 3).faults()[:50]
    lane = sample_kind(model, KindSpec("lane", pe=4), SINGLE_BIT, None, 1)
    assert len(lane) == leveugle_sample_size(population_of(model, KindSpec("lane", pe=4), SINGLE_BIT))
    assert all(isinstance(f, LaneFault) and f.pe == 4 for f in lane.faults())


@pytest.mark.parametrize("spec", [KindSpec("lane", pe=4), KindSpec("lane", pe=2, lane_scope="all"), KindSpec("weight"),
                                  KindSpec("ber", ber=(1e-3, 2e-2), repetitions=3),
                                  KindSpec("ber", ber=(5e-3,), ber_sites="both", repetitions=6),
                                  KindSpec("ber", ber=(1e-2,), ber_per="inference", repetitions=5)],
                         ids=["lane", "lane-all", "weight", "ber", "ber-both", "ber-inference"])
def test_kind_campaign_outcomes_equal_the_executor_and_resume(setup, tmp_path, spec):
    model, data = setup
    faults = None if spec.kind == "ber" or spec.lane_scope == "all" else 30
    config = CampaignConfig(faults=faults, seed=5, chunk_size=4, kind=spec)
    calls = {"n": 0}

    class Crash(Exception):
        pass

    class Flaky(ExecutorBackend):
        def predictions(self, fs):
            calls["n"] += 1
            if calls["n"] == 2:
                raise Crash()
            return super().predictions(fs)

    with pytest.raises(Crash):
        run_campaign(model, data, tmp_path / "c.db", config, backend=Flaky)
    assert 0 < load_campaign(tmp_path / "c.db").idx.size < len(load_campaign(tmp_path / "c.db").sample)
    report = run_campaign(model, data, tmp_path / "c.db", config)  # resumed with the fast engine
    assert report.complete and len(report.sessions) == 2
    assert report.meta["fault_kind"] == spec.kind
    ex = Executor(model)
    golden = ex.run(data.x).predictions
    for i, fault in enumerate(report.sample.faults()):
        pred = ex.run(data.x, [fault]).predictions
        assert report.outcomes.changed[i] == int((pred != golden).sum()), str(fault)
        assert report.outcomes.correct[i] == int((pred == data.labels).sum())
    s = report.summary
    assert s.faults == len(report.sample)
    if spec.kind == "ber":
        assert [r.label for r in s.by_layer] == [f"p = {p:g}" for p in spec.ber]
        assert sum(r.faults for r in s.by_layer) == s.faults
    else:
        assert sum(r.population for r in s.by_layer) == report.meta["population"]
        assert sum(r.faults for r in s.by_kind) == s.faults
    with pytest.raises(MismatchError):
        run_campaign(model, data, tmp_path / "c.db", CampaignConfig(faults=faults, seed=6, chunk_size=4, kind=spec))


def test_kind_campaign_store_is_not_mistaken_for_an_output_campaign(setup, tmp_path):
    model, data = setup
    run_campaign(model, data, tmp_path / "c.db", CampaignConfig(faults=10, kind=KindSpec("weight")))
    with pytest.raises(MismatchError):
        run_campaign(model, data, tmp_path / "c.db", CampaignConfig(faults=10))


def test_per_inference_ber_store_records_its_draw_and_refuses_another(setup, tmp_path):
    """A per-inference BER campaign records how its masks are drawn (``kind_params["draw"]``): a store of draw 1
    resumes with draw 1 only, and its faults read back as draw 1; a store written before draws had versions (no
    ``draw``) reads as draw 1. Per-run parameters carry no draw (their stores resume as before)."""
    model, data = setup
    old = KindSpec("ber", ber=(1e-2,), ber_per="inference", repetitions=2, ber_draw=1)
    report = run_campaign(model, data, tmp_path / "c.db", CampaignConfig(seed=5, kind=old))
    assert report.meta["kind_params"]["draw"] == 1
    assert {f.draw for f in report.sample.faults()} == {1}
    assert KindSpec.from_meta(report.meta) == old
    with pytest.raises(MismatchError, match="kind_params"):
        run_campaign(model, data, tmp_path / "c.db", CampaignConfig(seed=5, kind=KindSpec(
            "ber", ber=(1e-2,), ber_per="inference", repetitions=2)))
    assert run_campaign(model, data, tmp_path / "c.db", CampaignConfig(seed=5, kind=old)).complete
    legacy = {"fault_kind": "ber", "kind_params": {"ber": [1e-2], "sites": "outputs", "per": "inference",
                                                   "repetitions": 2, "seed": 5}}
    assert KindSpec.from_meta(legacy).ber_draw == 1
    assert KindSpec("ber", ber=(1e-2,), ber_per="inference").params["draw"] == 2
    assert "draw" not in KindSpec("ber", ber=(1e-2,)).params


def test_kind_spec_refuses_bad_parameters():
    with pytest.raises(ParameterError, match="unknown fault kind"):
        KindSpec("neuron")
    with pytest.raises(ParameterError, match="power of two"):
        KindSpec("lane", pe=6)
    with pytest.raises(ParameterError, match="at least one probability"):
        KindSpec("ber")
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        KindSpec("ber", ber=(2.0,))
    with pytest.raises(ParameterError, match="output sites only"):
        KindSpec("ber", ber=(0.1,), ber_sites="weights", ber_per="inference")
    assert BerFault(0.1).kind == "ber"


def test_cli_kinds(tmp_path, capsys):
    rng = np.random.default_rng(31)
    model = random_model(rng, shape=(1, 28, 28), classes=10, channels=(2, 3))
    path = save_model(model, tmp_path / "m.rq")
    base = ["campaign", str(path), "--dataset", "digits", "--images", "12"]
    assert main(base + ["--kind", "lane", "--pe", "2", "--faults", "6", "--out", str(tmp_path / "l.db")]) == 0
    out = capsys.readouterr().out
    assert "lane faults" in out and "by lane" in out and "lane 1" in out
    assert main(base + ["--kind", "weight", "--faults", "8", "--out", str(tmp_path / "w.db")]) == 0
    out = capsys.readouterr().out
    assert "by stored word" in out and "int8 weights" in out
    assert main(base + ["--kind", "ber", "--ber", "0.001,0.01", "--repetitions", "2", "--out",
                        str(tmp_path / "b.db")]) == 0
    out = capsys.readouterr().out
    assert "accuracy vs p" in out and "p = 0.01" in out
    assert main(["report", str(tmp_path / "b.db")]) == 0
    assert "p = 0.001" in capsys.readouterr().out
    assert main(base + ["--kind", "output", "--ber", "0.1", "--out", str(tmp_path / "x.db")]) != 0
    assert "--kind ber" in capsys.readouterr().err


def test_sweep_accepts_a_fault_kind(tmp_path):
    from resilq.campaign.sweep import read_manifest, run_sweep
    from resilq.nvf import NVFResult

    rng = np.random.default_rng(8)
    model = random_model(rng)
    x = model.quantize_input(rng.random((12, *model.input.shape), dtype=np.float32))
    data = EvaluationSet(x, rng.integers(0, model.n_classes, 12))
    values = {i: rng.random(model.out_size(i)) * 0.4 for i in model.neuron_layers}
    nvf = NVFResult(model.network_hash, values, "test", 0)
    config = CampaignConfig(faults=12, seed=1, kind=KindSpec("lane", pe=2))
    result = run_sweep(model, nvf, data, tmp_path / "s", [None, Scheme.TMR], [0.2], config)
    assert result.shared == 0 and all(r.meta["fault_kind"] == "lane" for _, r in result.points)
    assert read_manifest(tmp_path / "s")["fault_kind"] == "lane"
    with pytest.raises(MismatchError, match="fault_kind"):  # the same directory for output faults: another sweep
        run_sweep(model, nvf, data, tmp_path / "s", [None, Scheme.TMR], [0.2], CampaignConfig(faults=12, seed=1))
