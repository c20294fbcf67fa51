"""Threshold sweeps: points, hardening, and result sharing that gives exactly the numbers of separate runs."""

import dataclasses

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.campaign.engine import EvaluationSet, How
from resilq.campaign.runner import CampaignConfig, run_campaign
from resilq.campaign.sampling import SlotKind
from resilq.campaign.sweep import (
    SweepPoint,
    empty_points_warning,
    harden,
    parse_schemes,
    parse_thresholds,
    read_manifest,
    run_sweep,
)
from resilq.errors import MismatchError, ParameterError
from resilq.nvf import NVFResult

from factories import random_model


def test_parse_thresholds_and_schemes():
    assert parse_thresholds("0:0.5:0.05") == [round(0.05 * k, 2) for k in range(11)]
    assert parse_thresholds("0.3, 0.1,0.1") == [0.1, 0.3]
    for bad in ("0:0.5", "0.5:0:0.1", "0:1:0", "x", "0:2:0.5"):
        with pytest.raises(ParameterError):
            parse_thresholds(bad)
    assert parse_schemes("none,split,tmr") == [None, Scheme.SPLIT, Scheme.TMR]
    assert parse_schemes("dup-and,dup_min") == [Scheme.DUP_AND, Scheme.DUP_MIN]
    with pytest.raises(ParameterError):
        parse_schemes("quad")


def test_point_labels_are_exact_and_empty_points_are_named(rng):
    assert SweepPoint(Scheme.SPLIT, 0.0123456789).label == "split@0.0123456789"
    assert SweepPoint(Scheme.SPLIT, 0.001).label != SweepPoint(Scheme.SPLIT, 0.004).label  # both "0.00" once
    model, nvf = _sweep_model(rng)  # largest NVF 0.45
    points = [(SweepPoint(None, None), 0), (SweepPoint(Scheme.SPLIT, 0.1), 40), (SweepPoint(Scheme.SPLIT, 0.5), 0),
              (SweepPoint(Scheme.TMR, 0.5), 0), (SweepPoint(Scheme.TMR, 0.6), 0)]
    text = empty_points_warning(nvf, points)
    assert "2 threshold(s) protect no neuron (0.5, 0.6)" in text and "largest NVF is 0.45" in text
    assert "--budget" in text and "--top-k" in text
    assert empty_points_warning(nvf, points[:2]) == ""


def _sweep_model(rng):
    """A small network whose NVFs make split points provably share results.

    Two fc1 neurons are dead (always 0, so splitting them changes no fault-free value); they are the only
    neurons whose NVF reaches 0.2, so split@0.2, split@0.4 and the unprotected network agree everywhere
    fault-free and differ only in which of those two neurons are split.
    """
    model = random_model(rng)
    fc1 = model.neuron_layers[-1]
    layer = model.layers[fc1]
    bias = layer.bias.copy()
    bias[:2] = -(2**20)
    model = model.with_layer(fc1, dataclasses.replace(layer, bias=bias))
    values = {i: np.full(model.out_size(i), 0.05) for i in model.neuron_layers}
    values[fc1] = np.where(np.arange(model.out_size(fc1)) == 0, 0.45, 0.0)
    values[fc1][1] = 0.25
    random_part = rng.random(model.out_size(model.neuron_layers[0])) * 0.18  # below every threshold but 0.1
    values[model.neuron_layers[0]] = random_part
    return model, NVFResult(model.network_hash, values, "test", 0)


def test_harden_builds_the_critical_neurons(rng):
    model, nvf = _sweep_model(rng)
    fc1 = model.neuron_layers[-1]
    tmr = harden(model, nvf, Scheme.TMR, 0.2)
    assert tmr.n_protected == 2 and list(tmr.protection(fc1).neurons) == [0, 1]
    assert tmr.n_slots == model.n_neurons + 4
    assert harden(model, nvf, Scheme.SPLIT, 0.5).hash == model.hash  # nothing critical: the unprotected network
    assert harden(model, nvf, None, 0.2).hash == model.hash
    low = harden(model, nvf, Scheme.SPLIT, 0.1)
    assert low.n_protected == 2 + int((nvf.values[model.neuron_layers[0]] >= 0.1).sum())
    other = random_model(np.random.default_rng(3))
    with pytest.raises(MismatchError):
        harden(other, nvf, Scheme.TMR, 0.2)


def test_split_sweep_point_protects_a_layer_without_relu_with_tmr(rng):
    model = random_model(rng, relu_last_hidden=False)
    nvf = NVFResult(model.network_hash, {i: np.full(model.out_size(i), 0.3) for i in model.neuron_layers}, "t", 0)
    hard = harden(model, nvf, Scheme.SPLIT, 0.2)
    schemes = {model.layers[i].name: hard.protection(i).scheme for i in model.neuron_layers}
    assert schemes == {"conv1": Scheme.SPLIT, "conv2": Scheme.SPLIT, "fc1": Scheme.TMR}
    assert hard.metadata["hardening"]["fallback_layers"] == ["fc1"]


def test_sharing_gives_the_numbers_of_separate_runs(tmp_path, rng):
    model, nvf = _sweep_model(rng)
    x = model.quantize_input(rng.random((30, *model.input.shape), dtype=np.float32))
    data = EvaluationSet(x, rng.integers(0, model.n_classes, 30))
    config = CampaignConfig(faults=250, seed=4, chunk_size=50)
    schemes = [None, Scheme.SPLIT, Scheme.TMR, Scheme.DUP_AND]
    thresholds = [0.1, 0.2, 0.4, 0.5]
    shared = run_sweep(model, nvf, data, tmp_path / "shared", schemes, thresholds, config)
    assert len(shared.points) == 1 + 3 * 4 and shared.shared > 0
    how = {p.label: dict(zip(*np.unique(r.outcomes.how, return_counts=True))) for p, r in shared.points}
    assert how["tmr@0.2"].get(How.SHARED, 0) > 100  # unprotected neurons: the unprotected network's results
    assert how["split@0.4"].get(How.SHARED, 0) > 0 or how["split@0.2"].get(How.SHARED, 0) > 0
    assert how["split@0.1"].get(How.SHARED, 0) == 0  # conv1 splits change golden values: nothing may be shared
    for point, report in shared.points:  # every point equals its own campaign run from scratch
        alone = run_campaign(harden(model, nvf, point.scheme, point.threshold), data,
                             tmp_path / "alone" / f"{point.label}.db", config)
        assert np.array_equal(alone.idx, report.idx)
        assert np.array_equal(alone.outcomes.changed, report.outcomes.changed), point.label
        assert np.array_equal(alone.outcomes.correct, report.outcomes.correct), point.label
        assert alone.outcomes.digest == report.outcomes.digest, point.label
    # why split points must not borrow blindly: the same fault on the same *unprotected* neuron has another
    # outcome once conv1 neurons are split (splitting changes fault-free values downstream)
    reports = {p.label: r for p, r in shared.points}
    none, split = reports["none"], reports["split@0.1"]
    seen = {(int(a), int(b), int(c)): d for a, b, c, d in zip(none.sample.layer, none.sample.slot, none.sample.mask,
                                                             none.outcomes.digest)}
    common = [(seen[key], d) for key, kind, d in zip(zip(split.sample.layer.tolist(), split.sample.slot.tolist(),
                                                         split.sample.mask.tolist()), split.sample.kind,
                                                     split.outcomes.digest) if kind == SlotKind.NEURON and key in seen]
    assert common and any(a != b for a, b in common)
    manifest = read_manifest(tmp_path / "shared")
    assert {p["scheme"] for p in manifest["points"]} == {"none", "split", "tmr", "dup-and"}
    again = run_sweep(model, nvf, data, tmp_path / "shared", schemes, thresholds, config)  # resumes: nothing to do
    assert all(r.sessions[-1]["done"] == 0 for _, r in again.points)
    with pytest.raises(MismatchError, match="seed"):
        run_sweep(model, nvf, data, tmp_path / "shared", schemes, thresholds, dataclasses.replace(config, seed=5))
