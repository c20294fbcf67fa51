"""Selecting the neurons to protect: thresholds, top-k, slot budgets, per-layer thresholds, channels."""

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.errors import MismatchError, ParameterError
from resilq.harden import Budget, Granularity, HardeningPlan, Threshold, TopK, channel_scores, harden, select
from resilq.nvf import NVFResult

from bruteforce import exact_nvf
from factories import random_model


@pytest.fixture(scope="module")
def analysed():
    """A tiny model and its exact NVF, brute-forced over 12 inputs (SPEC §3)."""
    rng = np.random.default_rng(7)
    images = rng.random((12, 1, 12, 12), dtype=np.float32)
    model = random_model(rng, images)
    return model, exact_nvf(model, model.quantize_input(images))


def test_the_brute_force_nvf_is_not_degenerate(analysed):
    model, nvf = analysed
    values = nvf.all_values()
    assert values.size == model.n_neurons == 586
    assert 0 < np.count_nonzero(values) < values.size and len(np.unique(values)) > 10


@pytest.mark.parametrize("t", [0.0, 0.05, 0.1, 0.2, 0.5])
def test_threshold_selects_exactly_the_critical_neurons(analysed, t):
    model, nvf = analysed
    sel = select(model, nvf, Threshold(t))
    critical = nvf.critical(t)
    for i in model.neuron_layers:
        assert np.array_equal(sel.in_layer(i), critical[i])
    assert sel.n_neurons == nvf.n_critical(t)


def test_per_layer_thresholds_override_the_global_one(analysed):
    model, nvf = analysed
    sel = select(model, nvf, Threshold(0.1, {"fc1": 0.0}))
    fc1 = model.layers.index(next(layer for layer in model.layers if layer.name == "fc1"))
    assert sel.in_layer(fc1).size == model.neurons_in(fc1)  # tau = 0 takes every neuron of fc1
    conv1 = 0
    assert np.array_equal(sel.in_layer(conv1), nvf.critical(0.1)[conv1])
    only = select(model, nvf, Threshold(None, {"fc1": 0.0}))
    assert list(only.neurons) == [fc1]


def test_top_k_takes_the_highest_nvf_over_the_whole_network(analysed):
    model, nvf = analysed
    k = 25
    sel = select(model, nvf, TopK(k))
    assert sel.n_neurons == k
    chosen = np.concatenate([nvf.values[i][sel.in_layer(i)] for i in model.neuron_layers])
    rest = np.concatenate([np.delete(nvf.values[i], sel.in_layer(i)) for i in model.neuron_layers])
    assert chosen.min() >= rest.max()


def test_top_k_never_takes_a_neuron_with_zero_nvf(analysed):
    model, nvf = analysed
    positive = int(np.count_nonzero(nvf.all_values() > 0))
    sel = select(model, nvf, TopK(positive + 50))
    assert sel.n_neurons == positive
    assert "only" in sel.note


@pytest.mark.parametrize("scheme", [Scheme.SPLIT, Scheme.TMR])
def test_budget_counts_shadow_slots_of_the_scheme(analysed, scheme):
    model, nvf = analysed
    hard = harden(model, nvf, HardeningPlan(scheme, Budget(41)))
    assert hard.model.n_shadows <= 41
    per = scheme.copies - 1
    assert hard.model.n_protected == 41 // per  # plenty of positive-NVF neurons, each costs `per` slots
    # the protected ones are the most vulnerable
    top = select(model, nvf, TopK(41 // per))
    for i in model.neuron_layers:
        assert np.array_equal(hard.selection.in_layer(i), top.in_layer(i))


def test_channel_granularity_protects_whole_channels_by_mean_nvf(analysed):
    model, nvf = analysed
    conv2 = 2
    scores = channel_scores(model, nvf, conv2)
    per = model.out_size(conv2) // model.layers[conv2].out_channels
    assert np.allclose(scores, nvf.values[conv2].reshape(-1, per).mean(axis=1))
    t = float(np.sort(scores)[len(scores) // 2])
    sel = select(model, nvf, Threshold(t), Granularity.CHANNEL, layers=("conv2",))
    picked = sel.in_layer(conv2)
    assert picked.size % per == 0 and picked.size
    channels = np.unique(picked // per)
    assert np.array_equal(channels, np.flatnonzero(scores >= t))
    assert np.array_equal(picked, np.sort((channels[:, None] * per + np.arange(per)).ravel()))


def test_channel_budget_never_exceeds_the_slots(analysed):
    model, nvf = analysed
    hard = harden(model, nvf, HardeningPlan(Scheme.TMR, Budget(300), Granularity.CHANNEL))
    assert 0 < hard.model.n_shadows <= 300
    for i in hard.selection.neurons:
        per = model.out_size(i) // model.layers[i].out_channels
        assert hard.selection.in_layer(i).size % per == 0


def test_unknown_nvf_values_are_never_selected(analysed):
    model, nvf = analysed
    values = {i: v.copy() for i, v in nvf.values.items()}
    values[0][:] = np.nan
    partial = NVFResult(nvf.network_hash, values, "sampled", nvf.inputs)
    sel = select(model, partial, Threshold(0.0))
    assert sel.in_layer(0).size == 0 and sel.n_neurons == model.n_neurons - model.neurons_in(0)
    assert select(model, partial, TopK(10_000)).in_layer(0).size == 0


@pytest.mark.parametrize("bad", [-0.1, 1.01, 20])
def test_threshold_out_of_range_is_refused(bad):
    with pytest.raises(ParameterError, match="must lie in"):
        Threshold(bad)
    with pytest.raises(ParameterError, match="layer 'conv1'"):
        Threshold(0.2, {"conv1": bad})


@pytest.mark.parametrize("make", [lambda: TopK(0), lambda: Budget(-3), lambda: Threshold()])
def test_empty_criteria_are_refused(make):
    with pytest.raises(ParameterError):
        make()


def test_classifier_and_unknown_layers_are_refused(analysed):
    model, nvf = analysed
    with pytest.raises(ParameterError, match="'fc2' is the classifier"):
        select(model, nvf, Threshold(None, {"fc2": 0.1}))
    with pytest.raises(ParameterError, match="'fc2' is the classifier"):
        select(model, nvf, TopK(3), layers=("fc2",))
    with pytest.raises(ParameterError, match="no layer 'fc9'"):
        select(model, nvf, TopK(3), layers=("fc9",))
    with pytest.raises(ParameterError, match="'pool1' .* has no neurons"):
        select(model, nvf, TopK(3), layers=("pool1",))


def test_nvf_of_another_model_is_refused(analysed):
    model, nvf = analysed
    other = random_model(np.random.default_rng(99))
    with pytest.raises(MismatchError, match="belongs to another network"):
        select(other, nvf, Threshold(0.1))


def test_a_per_layer_threshold_outside_the_restricted_layers_is_refused(analysed):
    model, nvf = analysed
    with pytest.raises(ParameterError, match="'fc1' has its own threshold but is not among the layers"):
        select(model, nvf, Threshold(0.1, {"fc1": 0.0}), layers=("conv1",))
