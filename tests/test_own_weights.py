"""Per-copy stored weights (``Protection.own_weights``, issue #15): a protection whose shadow copies read their
own copy of their channel's row and bias, so that a flipped stored word reaches one copy only.

The executor is checked against the loop reference (tests/factories.py) given copy layers built here by hand;
the fault simulator against the executor fault by fault and input by input on every scheme (single-layer weight
faults of each copy, BER over the stored words, copies included); TMR with its own weights outvotes every
weight fault of a protected channel, which with shared weights it cannot; the population, the model file and
the cost count the copies; descriptors that name a copy that does not exist, and the accelerator (which builds
shared rows only), refuse by name.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.campaign.kinds import KindSpec, fault_of, population_of, sample_kind
from resilq.campaign.sampling import FaultModel
from resilq.errors import ParameterError, UnsupportedModelError
from resilq.fault_kinds import BerFault, WeightFault, bias_bits, n_weight_bits, weight_faults_at
from resilq.faultsim import FaultSimulator
from resilq.hls.config import DEFAULT_CONFIG
from resilq.hls.mapping import plan_model
from resilq.ir import Executor, Protection, load_model, save_model

from factories import random_model, reference_run

SCHEMES = [Scheme.SPLIT, Scheme.TMR, Scheme.DUP_AND, Scheme.DUP_MIN]


@pytest.fixture(scope="module")
def base():
    rng = np.random.default_rng(21)
    model = random_model(rng, channels=(5, 6), hidden=12)
    x = model.quantize_input(rng.random((20, 1, 12, 12), dtype=np.float32))
    return model, x


def own(model, scheme, seed=0, fraction=0.3, own_weights=True):
    """A random ``fraction`` of each neuron layer protected by ``scheme`` (split only where it is sound)."""
    rng = np.random.default_rng(seed)
    prots = {}
    for i in model.neuron_layers:
        if scheme is Scheme.SPLIT and not model.layers[i].requant.relu:
            continue
        n = model.out_size(i)
        neurons = np.sort(rng.choice(n, size=max(1, int(n * fraction)), replace=False)).astype(np.int32)
        prots[i] = Protection(scheme, neurons, own_weights)
    return model.with_protection(prots)


def flipped(layer, channel, tap, bit):
    """``layer`` with one stored bit flipped, by hand (weight ``tap`` or, with ``tap=None``, the bias)."""
    weight, bias = layer.weight.copy(), layer.bias.copy()
    if tap is None:
        bias.view(np.uint32)[channel] ^= np.uint32(1 << bit)
    else:
        weight.reshape(weight.shape[0], -1).view(np.uint8)[channel, tap] ^= np.uint8(1 << bit)
    return dataclasses.replace(layer, weight=weight, bias=bias)


def copy_faults(model, rng, per_copy=2):
    """Weight and bias faults of every copy of a copied channel of every own-weight layer."""
    faults = []
    for i in model.neuron_layers:
        channels = model.copied_channels(i)
        if not channels.size:
            continue
        fan_in = model.layers[i].fan_in
        for copy in range(model.protection(i).copies):
            for _ in range(per_copy):
                c = int(rng.choice(channels))
                faults.append(WeightFault(i, c, int(rng.integers(fan_in)), int(rng.integers(8)), copy))
            faults.append(WeightFault(i, int(rng.choice(channels)), None, int(rng.integers(20)), copy))
    return faults


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.label)
def test_copy_faults_match_the_loop_reference(base, scheme):
    model, x = base
    model = own(model, scheme, seed=int(scheme))
    x = x[:5]
    ex = Executor(model)
    faults = copy_faults(model, np.random.default_rng(1))
    assert {f.copy for f in faults} == set(range(model.protection(model.neuron_layers[0]).copies))
    for f in faults:
        clean = model.layers[f.layer]
        faulty = flipped(clean, f.channel, f.tap, f.bit)
        copies = model.protection(f.layer).copies
        if f.copy == 0:  # the original reads the flipped row, every shadow its own clean copy
            ref_model = model.replace(layers=tuple(faulty if k == f.layer else lay for k, lay in enumerate(model.layers)))
            by_copy = {f.layer: {j: clean for j in range(1, copies)}}
        else:
            ref_model, by_copy = model, {f.layer: {f.copy: faulty}}
        want = reference_run(ref_model, x, copies=by_copy)
        got = ex.run(x, [f], collect=True).activations
        for i, (a, b) in enumerate(zip(got, want)):
            assert np.array_equal(a, b), f"{f}: layer {i}"


def test_tmr_with_own_weights_outvotes_every_fault_of_a_protected_channel(base):
    """Every neuron of conv channel 2 protected by TMR: with its own weights every single flipped stored word of
    that channel (any copy) leaves the channel's corrected outputs fault-free; with shared weights it does not."""
    model, x = base
    n_pos = int(np.prod(model.out_shape(0)[1:]))
    channel = np.arange(2 * n_pos, 3 * n_pos, dtype=np.int32)
    rng = np.random.default_rng(4)
    fan_in = model.layers[0].fan_in
    sites = [(int(rng.integers(fan_in)), int(rng.integers(8))) for _ in range(12)] + [(None, 9), (None, 14)]
    outcome = {}
    for own_weights in (True, False):
        m = model.with_protection({0: Protection(Scheme.TMR, channel, own_weights)})
        golden = Executor(m).run(x, collect=True).activations[0][:, 2]
        ex = Executor(m)
        changed = 0
        for tap, bit in sites:
            for copy in range(3 if own_weights else 1):
                out = ex.run(x, [WeightFault(0, 2, tap, bit, copy)], collect=True).activations[0][:, 2]
                changed += not np.array_equal(out, golden)
        outcome[own_weights] = changed
    assert outcome[True] == 0, "TMR with its own copies must outvote a fault in any one copy"
    assert outcome[False] > 0, "with one shared row a flipped word reaches every copy"


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.label)
def test_fault_simulator_matches_the_executor_for_copy_faults(base, scheme):
    model, x = base
    model = own(model, scheme, seed=10 + int(scheme))
    faults = copy_faults(model, np.random.default_rng(2)) + [BerFault(4e-3, "weights", 5), BerFault(6e-3, "both", 6)]
    assert any(f.copy for b in faults[-2:] for f in b.weight_faults(model)), "BER must reach the copies' words"
    sim = FaultSimulator(model, x, batch_size=7)
    got = sim.predictions(faults)
    ex = Executor(model)
    for f, row in zip(faults, got):
        assert np.array_equal(row, ex.run(x, [f]).predictions), str(f)


def test_population_and_cost_count_the_copies(base):
    model, _ = base
    shared = own(model, Scheme.TMR, seed=3, own_weights=False)
    copied = own(model, Scheme.TMR, seed=3)
    extra_bits, extra_words = 0, 0
    for i in copied.neuron_layers:
        ch = copied.copied_channels(i)
        layer = copied.layers[i]
        extra_bits += 2 * ch.size * (layer.fan_in * 8 + bias_bits(layer))
        extra_words += 2 * ch.size * (layer.fan_in + 1)
    assert extra_bits > 0
    assert n_weight_bits(copied) == n_weight_bits(shared) + extra_bits
    assert copied.params() == shared.params() + extra_words
    assert shared.copied_channels(0).size == 0
    every = weight_faults_at(copied, range(n_weight_bits(copied)))
    assert len(set(every)) == len(every)  # one enumeration, no word counted twice
    for f in every[:: max(1, len(every) // 400)]:
        f.check(copied)
    assert sum(f.copy > 0 for f in every) == extra_bits
    spec = KindSpec("weight")
    assert population_of(copied, spec, FaultModel()) == len(every)
    sample = sample_kind(copied, spec, FaultModel(), 300, seed=1)
    drawn = [fault_of(sample, i) for i in range(len(sample))]
    assert any(f.copy for f in drawn) and all(f in set(every) for f in drawn)


def test_own_weights_round_trip_through_the_model_file(base, tmp_path):
    model, _ = base
    copied = own(model, Scheme.TMR, seed=3)
    shared = own(model, Scheme.TMR, seed=3, own_weights=False)
    assert copied.hash != shared.hash
    save_model(copied, tmp_path / "m.rq")
    back = load_model(tmp_path / "m.rq")
    assert back.hash == copied.hash and back.protection(0).own_weights


def test_copies_that_do_not_exist_are_refused_by_name(base):
    model, x = base
    shared = own(model, Scheme.TMR, seed=3, own_weights=False)
    copied = model.with_protection({0: Protection(Scheme.TMR, np.array([3, 40], dtype=np.int32), True)})
    kept, free = 0, 1  # both protected neurons lie in channel 0 (100 positions per channel)
    for m, fault, message in [(shared, WeightFault(0, kept, 0, 1, 1), "no own_weights"),
                              (copied, WeightFault(0, kept, 0, 1, 3), "copies 1..2"),
                              (copied, WeightFault(0, free, 0, 1, 1), "holds no protected neuron"),
                              (copied, WeightFault(0, kept, 0, 1, -1), "non-negative")]:
        with pytest.raises(ParameterError, match=message):
            Executor(m).run(x[:2], [fault])
    with pytest.raises(UnsupportedModelError, match="own_weights"):
        plan_model(copied, DEFAULT_CONFIG)
