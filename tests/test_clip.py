"""Range restriction (clip): executor == fault simulator == campaign engine, fault by fault; the .rq format."""

from __future__ import annotations

import numpy as np
import pytest

from resilq.arith import Scheme, clip_range
from resilq.campaign.engine import BackendKind, EvaluationSet, FaultEvaluator
from resilq.errors import FormatError, UnsupportedModelError
from resilq.faults import Fault
from resilq.faultsim import FaultSimulator
from resilq.harden.clip import profile_bounds, with_clip
from resilq.ir import Clip, Executor, load_model, save_model
from resilq.ir.io import CLIP_VERSION

from factories import protect, random_model


def _clipped(seed, scheme, variant):
    rng = np.random.default_rng(seed)
    images = rng.random((48, 1, 12, 12), dtype=np.float32)
    model = random_model(rng, images[:16])
    x = model.quantize_input(images)
    # tight bounds (profiled on a few inputs, minus a margin) so that the clip acts fault-free too
    bounds = {i: max(1, b - 9) for i, b in profile_bounds(model, x[:8]).items()}
    if scheme is not None:
        model = protect(model, rng, scheme, 0.4)
    return with_clip(model, bounds, variant), x[8:], rng


def _all_faults(model, rng, per_layer=60):
    faults = []
    for i in model.neuron_layers:
        slots = rng.choice(model.slots_in(i), size=min(per_layer, model.slots_in(i)), replace=False)
        faults += [Fault.bit_flip(i, int(s), int(rng.integers(0, 8))) for s in slots]
    return faults


def test_clip_arith():
    v = np.array([-5, 0, 10, 11, 127], dtype=np.int8)
    assert clip_range(v, 10, "bound").tolist() == [-5, 0, 10, 10, 10]
    assert clip_range(v, 10, "zero").tolist() == [-5, 0, 10, 0, 0]
    with pytest.raises(ValueError, match="variant"):
        clip_range(v, 10, "half")


@pytest.mark.parametrize("variant", ["bound", "zero"])
@pytest.mark.parametrize("scheme", [None, Scheme.SPLIT, Scheme.TMR], ids=lambda s: "none" if s is None else s.label)
def test_executor_equals_faultsim_equals_engine(scheme, variant):
    model, x, rng = _clipped(5 + (0 if scheme is None else int(scheme)), scheme, variant)
    ex = Executor(model)
    acts = ex.run(x, collect=True).activations
    for i in model.neuron_layers:  # the clip acts fault-free, and nothing above the bound is read
        assert acts[i].max() <= model.clip(i).bound
    assert not np.array_equal(ex.run(x).logits, Executor(model.without_clip()).run(x).logits)
    faults = _all_faults(model, rng)
    brute = np.stack([ex.run(x, faults=[f]).predictions for f in faults])
    assert (brute != ex.run(x).predictions).any()  # some faults matter
    sim = FaultSimulator(model, x)
    np.testing.assert_array_equal(sim.predictions(faults), brute)
    data = EvaluationSet(x, rng.integers(0, model.n_classes, x.shape[0]))
    pred, _ = FaultEvaluator(model, data, BackendKind.FAULTSIM).predictions(faults)
    np.testing.assert_array_equal(pred, brute)
    from resilq.faultsim import Propagator

    bounded = FaultSimulator(model, x)  # the interval pre-filter handles the clip soundly (zero: not monotone)
    bounded.propagator = Propagator(model, use_bounds=True)
    np.testing.assert_array_equal(bounded.predictions(faults), brute)


def test_clip_reduces_large_upsets():
    model, x, _ = _clipped(3, None, "bound")
    base = model.without_clip()
    layer = model.neuron_layers[0]
    faults = [Fault.bit_flip(layer, s, 6) for s in range(0, model.neurons_in(layer), 7)]
    with_c = (np.stack([Executor(model).run(x, faults=[f]).predictions for f in faults])
              != Executor(model).run(x).predictions).sum()
    without = (np.stack([Executor(base).run(x, faults=[f]).predictions for f in faults])
               != Executor(base).run(x).predictions).sum()
    assert with_c < without


def test_rq_format(tmp_path):
    model, _, _ = _clipped(1, Scheme.TMR, "zero")
    path = save_model(model, tmp_path / "c.rq")
    again = load_model(path)
    assert again.hash == model.hash and again.clip(model.neuron_layers[0]) == model.clip(model.neuron_layers[0])
    from resilq.archive import read_archive

    assert read_archive(path, "model", (1, 2))[2] == CLIP_VERSION
    plain = save_model(model.without_clip(), tmp_path / "p.rq")
    assert read_archive(plain, "model", (1, 2))[2] == 1  # files without clip stay version 1
    assert model.network_hash != model.without_clip().network_hash  # the clip is part of the function
    with pytest.raises(UnsupportedModelError, match="clip bound"):
        model.with_clip({model.neuron_layers[0]: Clip(300)})
    with pytest.raises(UnsupportedModelError, match="classifier"):
        model.with_clip({model.classifier_index: Clip(10)})


def test_v1_file_with_clip_is_refused(tmp_path):
    from resilq.archive import read_archive, write_archive

    model, _, _ = _clipped(2, None, "bound")
    header, arrays, _ = read_archive(save_model(model, tmp_path / "c.rq"), "model", (1, 2))
    write_archive(tmp_path / "v1.rq", "model", 1, header, arrays)
    with pytest.raises(FormatError, match="cannot carry clip"):
        load_model(tmp_path / "v1.rq")


def test_gain_refuses_clip_and_the_accelerator_maps_it():
    from resilq.gain import exact_gain
    from resilq.hls import imageformat as fmt
    from resilq.hls.config import DEFAULT_CONFIG
    from resilq.hls.mapping import plan_model

    model, x, _ = _clipped(4, None, "zero")
    with pytest.raises(UnsupportedModelError, match="clip"):
        exact_gain(model, x)
    plans = {p.index: p for p in plan_model(model, DEFAULT_CONFIG)}  # bit-true on the C-sim: tests/test_hls_clip.py
    for i in model.neuron_layers:
        assert plans[i].clip == (model.clip(i).bound, "zero") and plans[i].flags & fmt.Flag.CLIP_ZERO


@pytest.mark.parametrize("scheme", [None, Scheme.SPLIT], ids=lambda s: "none" if s is None else s.label)
def test_fault_kinds_on_a_clipped_model(scheme):
    """Lane, weight and BER faults (SPEC §7) mean the same in the executor and the fault simulator with a clip."""
    from resilq.arith import FaultMode
    from resilq.fault_kinds import BerFault, LaneFault, WeightFault

    model, x, rng = _clipped(21, scheme, "bound")
    faults = [LaneFault(lane, layer, 0x40, FaultMode.FLIP, 2) for lane in (0, 1) for layer in model.neuron_layers]
    for i, layer in enumerate(model.layers):
        if hasattr(layer, "weight"):
            faults.append(WeightFault(i, int(rng.integers(layer.out_channels)), int(rng.integers(layer.fan_in)), 6))
    faults += [BerFault(2e-2, "outputs", 1, "run"), BerFault(1e-2, "outputs", 2, "inference"),
               BerFault(2e-3, "weights", 3)]
    ex = Executor(model)
    brute = np.stack([ex.run(x, faults=[f]).predictions for f in faults])
    got = FaultSimulator(model, x, batch_size=13).predictions(faults)
    np.testing.assert_array_equal(got, brute)
    assert (brute != ex.run(x).predictions).any()


def test_cli_clip(digits_lenet, tmp_path, capsys):
    from resilq.cli import main

    src = save_model(digits_lenet.model, tmp_path / "m.rq")
    out = tmp_path / "c.rq"
    assert main(["clip", str(src), "--dataset", "digits", "--inputs", "200", "--variant", "zero",
                 "--out", str(out)]) == 0
    clipped = load_model(out)
    x = digits_lenet.model.quantize_input(__import__("resilq.data", fromlist=["load_dataset"])
                                          .load_dataset("digits", "train").take(200, 0).images)
    assert {i: c.bound for i in clipped.neuron_layers if (c := clipped.clip(i)) is not None} == \
        profile_bounds(digits_lenet.model, x)
    assert all(clipped.clip(i).variant == "zero" for i in clipped.neuron_layers)
    captured = capsys.readouterr()
    assert "clip above" in captured.out + captured.err
    assert main(["clip", str(src), "--dataset", "digits", "--layers", "nope", "--out", str(out)]) != 0
