"""The hardening transforms: schemes per layer, split refusal/fallback, provenance, and the paper's overhead
arithmetic (network size = neurons + shadow slots)."""

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.errors import ParameterError, UnsupportedModelError
from resilq.harden import (
    HardeningPlan,
    Threshold,
    TopK,
    cost_of,
    harden,
    scheme_comparison,
)
from resilq.ir import Executor, load_model, save_model
from resilq.nvf import NVFResult

from bruteforce import synthetic_nvf
from factories import random_model


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(3)
    images = rng.random((16, 1, 12, 12), dtype=np.float32)
    model = random_model(rng, images)
    return model, synthetic_nvf(model, rng), model.quantize_input(images)


@pytest.mark.parametrize("scheme", list(Scheme))
def test_every_scheme_protects_the_selection(tiny, scheme):
    model, nvf, _ = tiny
    hard = harden(model, nvf, HardeningPlan(scheme, Threshold(0.3)))
    critical = nvf.critical(0.3)
    for i in model.neuron_layers:
        prot = hard.model.protection(i)
        assert prot is not None and prot.scheme is scheme
        assert np.array_equal(prot.neurons, critical[i])
    assert hard.model.network_hash == model.network_hash  # same network, protection added
    assert hard.model.n_shadows == nvf.n_critical(0.3) * (scheme.copies - 1)


def test_provenance_is_recorded_and_survives_the_file(tiny, tmp_path):
    model, nvf, _ = tiny
    hard = harden(model, nvf, HardeningPlan(Scheme.SPLIT, Threshold(0.25))).model
    path = save_model(hard, tmp_path / "h.rq")
    loaded = load_model(path)
    rec = loaded.metadata["hardening"]
    assert rec["scheme"] == "split" and rec["criterion"] == {"kind": "threshold", "threshold": 0.25, "per_layer": {}}
    assert rec["source_network_hash"] == model.network_hash and rec["source_model_hash"] == model.hash
    assert rec["nvf_hash"] == nvf.digest and rec["granularity"] == "neuron"
    assert rec["protected_neurons"] == loaded.n_protected == nvf.n_critical(0.25)
    assert sum(v["neurons"] for v in rec["layers"].values()) == loaded.n_protected
    assert loaded.hash == hard.hash


def test_nvf_digest_depends_on_the_values(tiny):
    model, nvf, _ = tiny
    same = NVFResult(nvf.network_hash, {i: v.copy() for i, v in nvf.values.items()}, nvf.method, nvf.inputs)
    assert same.digest == nvf.digest
    same.values[0][3] += 1e-9
    assert same.digest != nvf.digest


@pytest.fixture(scope="module")
def linear_fc1():
    """A model whose hidden Linear layer has no ReLU: its fault-free output can be negative."""
    rng = np.random.default_rng(5)
    model = random_model(rng, relu_last_hidden=False)
    nvf = synthetic_nvf(model, rng)
    return model, nvf


def test_split_is_refused_where_the_output_can_be_negative(linear_fc1):
    model, nvf = linear_fc1
    with pytest.raises(UnsupportedModelError, match=r"'split' cannot protect layer 'fc1'.*no ReLU.*--fallback"):
        harden(model, nvf, HardeningPlan(Scheme.SPLIT, Threshold(0.1)))


def test_split_without_selection_in_the_linear_layer_is_fine(linear_fc1):
    model, nvf = linear_fc1
    hard = harden(model, nvf, HardeningPlan(Scheme.SPLIT, Threshold(0.1), layers=("conv1", "conv2")))
    assert hard.fallback_layers == () and set(hard.schemes.values()) == {Scheme.SPLIT}


@pytest.mark.parametrize("fallback", [Scheme.TMR, Scheme.DUP_MIN])
def test_split_fallback_protects_those_layers_and_says_so(linear_fc1, fallback):
    model, nvf = linear_fc1
    hard = harden(model, nvf, HardeningPlan(Scheme.SPLIT, Threshold(0.1), fallback=fallback))
    fc1 = [i for i in model.neuron_layers if model.layers[i].name == "fc1"][0]
    assert hard.fallback_layers == (fc1,)
    assert hard.model.protection(fc1).scheme is fallback
    assert all(hard.model.protection(i).scheme is Scheme.SPLIT for i in model.neuron_layers if i != fc1)
    assert "fc1" in hard.describe_fallbacks() and fallback.label in hard.describe_fallbacks()
    assert hard.model.metadata["hardening"]["fallback_layers"] == ["fc1"]


def test_fallback_cannot_be_split():
    with pytest.raises(ParameterError, match="cannot itself be 'split'"):
        HardeningPlan(Scheme.SPLIT, Threshold(0.2), fallback=Scheme.SPLIT)


def test_hardening_a_protected_model_is_refused(tiny):
    model, nvf, _ = tiny
    hard = harden(model, nvf, HardeningPlan(Scheme.TMR, TopK(5))).model
    with pytest.raises(UnsupportedModelError, match="already protected"):
        harden(hard, nvf, HardeningPlan(Scheme.TMR, TopK(5)))


def test_split_model_drops_the_source_accuracy(tiny):
    model, nvf, _ = tiny
    model = model.replace(metadata={**model.metadata, "test_accuracy": 0.9})
    split = harden(model, nvf, HardeningPlan(Scheme.SPLIT, TopK(5))).model
    tmr = harden(model, nvf, HardeningPlan(Scheme.TMR, TopK(5))).model
    assert "test_accuracy" not in split.metadata and split.metadata["hardening"]["source_test_accuracy"] == 0.9
    assert tmr.metadata["test_accuracy"] == 0.9  # fault-free bit-identical, so still true


def test_scheme_comparison_macs_count_each_shadow_once_per_copy(tiny):
    model, nvf, _ = tiny
    sel = harden(model, nvf, HardeningPlan(Scheme.SPLIT, Threshold(0.3))).selection
    costs = {c.label: c for c in scheme_comparison(model, sel)}
    extra = sum(sel.in_layer(i).size * model.layers[i].fan_in for i in model.neuron_layers)
    assert costs["split"].macs - costs["unprotected"].macs == extra
    assert costs["tmr"].macs - costs["unprotected"].macs == 2 * extra
    assert costs["dup-and"].slots == costs["split"].slots == model.n_neurons + sel.n_neurons
    assert costs["tmr"].slots == model.n_neurons + 2 * sel.n_neurons


def test_cycle_model_hook_is_called_per_variant(tiny):
    """The accelerator's cycle model plugs in as a callable; here a stand-in that counts slots."""
    model, nvf, _ = tiny
    sel = harden(model, nvf, HardeningPlan(Scheme.SPLIT, Threshold(0.3))).selection
    seen = []

    def cycles(m):
        seen.append(m.n_slots)
        return m.n_slots

    costs = scheme_comparison(model, sel, cycles=cycles)
    assert [c.cycles for c in costs] == seen and len(seen) == 5
    assert cost_of(model, "x").cycles is None


# ------------------------------------------------------------------------ the paper's arithmetic (SPEC §4, §6)
def _zoo_model(name):
    from resilq.train import build, export_brevitas

    return export_brevitas(build(name, (1, 28, 28), 10), (1, 28, 28), {"name": name})


def _nvf_with_critical(model, n_critical, rng):
    """NVF values with exactly ``n_critical`` neurons at >= 20 %, spread over the layers."""
    flat = np.full(model.n_neurons, 0.1)
    flat[rng.choice(model.n_neurons, size=n_critical, replace=False)] = 0.3
    values, start = {}, 0
    for i in model.neuron_layers:
        values[i] = flat[start:start + model.neurons_in(i)]
        start += model.neurons_in(i)
    return NVFResult(model.network_hash, values, "synthetic", 0)


@pytest.mark.parametrize("name,neurons,critical,split_size,tmr_size", [
    ("mlp7", 2816, 503, 3319, 3822),
    ("lenet5", 4684, 187, 4871, 5058),
])
def test_network_size_reproduces_the_paper(name, neurons, critical, split_size, tmr_size, rng):
    model = _zoo_model(name)
    assert model.n_neurons == neurons
    nvf = _nvf_with_critical(model, critical, rng)
    split = harden(model, nvf, HardeningPlan(Scheme.SPLIT, Threshold(0.2))).model
    tmr = harden(model, nvf, HardeningPlan(Scheme.TMR, Threshold(0.2))).model
    assert split.n_protected == tmr.n_protected == critical
    assert (split.n_slots, tmr.n_slots) == (split_size, tmr_size)


def test_protected_network_runs(tiny):
    model, nvf, x = tiny
    hard = harden(model, nvf, HardeningPlan(Scheme.TMR, Threshold(0.2))).model
    assert np.array_equal(Executor(hard).run(x).logits, Executor(model).run(x).logits)
