"""Exact protection gain (SPEC §8) against brute-force campaigns restricted to one neuron's slots."""

from __future__ import annotations

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.errors import FormatError, MismatchError
from resilq.faults import Fault
from resilq.gain import exact_gain, load_gain, save_gain
from resilq.ir import Executor, Protection

from factories import random_model


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(7)
    images = rng.random((24, 1, 12, 12), dtype=np.float32)
    model = random_model(rng, images[:16])
    x = model.quantize_input(images)
    return model, x, exact_gain(model, x)


def campaign(model, x, layer, slots, reference=None):
    """Per (slot, bit): inputs whose top-1 differs from ``reference`` (default: the model's fault-free top-1)."""
    ex = Executor(model)
    ref = ex.run(x).predictions if reference is None else reference
    return np.array([[int((ex.run(x, faults=[Fault.bit_flip(layer, s, k)]).predictions != ref).sum())
                      for k in range(8)] for s in slots])


def test_gain_equals_brute_force_campaign_difference(setup):
    model, x, result = setup
    rng = np.random.default_rng(3)
    golden = Executor(model).run(x, collect=True)
    for layer in model.neuron_layers:
        n_out = model.neurons_in(layer)
        for neuron in rng.choice(n_out, size=2, replace=False):
            unprot = campaign(model, x, layer, [neuron])[0]
            np.testing.assert_array_equal(result.block(layer, "unprotected")[neuron].sum(axis=1), unprot)
            # direction = the bit's fault-free value
            act = golden.activations[layer].reshape(len(x), -1)[:, neuron].astype(np.int8).view(np.uint8)
            ones = np.array([int(((act >> k) & 1).sum()) for k in range(8)])
            np.testing.assert_array_equal(result.block(layer, "population")[neuron][:, 1], ones)
            for scheme in Scheme:
                if not result.sound(scheme, layer):
                    continue
                prot = model.with_protection({layer: Protection(scheme, np.array([neuron], dtype=np.int32))})
                slots = [neuron] + [n_out + j for j in range(scheme.copies - 1)]
                own = campaign(prot, x, layer, slots)
                ref = campaign(prot, x, layer, slots, golden.predictions)
                np.testing.assert_array_equal(result.block(layer, f"{scheme.label}.own")[neuron].sum(axis=2), own)
                np.testing.assert_array_equal(result.block(layer, f"{scheme.label}.ref")[neuron].sum(axis=2), ref)
                assert result.gain(scheme, layer)[neuron] == unprot.sum() - own.sum()
                assert result.net(scheme, layer)[neuron] == unprot.sum() - ref.sum()
                changed = int((Executor(prot).run(x).predictions != golden.predictions).sum())
                assert result.changed(scheme, layer)[neuron] == changed
                if scheme is not Scheme.SPLIT:
                    assert changed == 0 and result.cost(scheme, layer)[neuron] == 0


def test_scheme_properties(setup):
    model, _, result = setup
    for layer in model.neuron_layers:
        assert np.all(result.protected(Scheme.TMR, layer) == 0)  # one flip is always outvoted
        # dup-and masks 0->1 flips; its 1->0 flips are the unprotected neuron's, once per copy
        and_own = result.block(layer, "dup-and.own")
        assert np.all(and_own[:, :, :, 0] == 0)
        unprot = result.block(layer, "unprotected")
        np.testing.assert_array_equal(and_own[:, 0, :, 1], unprot[:, :, 1])
        np.testing.assert_array_equal(and_own[:, 1, :, 1], unprot[:, :, 1])
        np.testing.assert_allclose(result.nvf(layer) * 8 * result.inputs, result.unprotected(layer))
        if result.sound(Scheme.SPLIT, layer):  # bits 6 and 7 of a half are 0: their flips are 0->1, masked
            assert np.all(result.block(layer, "split.own")[:, :, 6:, :] == 0)


def test_gain_file_round_trip_and_checks(setup, tmp_path):
    model, x, result = setup
    path = save_gain(result, tmp_path / "m.gain")
    again = load_gain(path, model)
    assert again.digest == result.digest
    other = random_model(np.random.default_rng(99))
    with pytest.raises(MismatchError, match="another network"):
        load_gain(path, other)
    bad = dict(result.counts)
    layer = model.neuron_layers[0]
    bad[layer] = bad[layer].copy()
    bad[layer][0, 0] += 10**6  # more critical events than events
    with pytest.raises(FormatError, match="inconsistent"):
        load_gain(save_gain(type(result)(result.network_hash, bad, result.inputs, result.relu), tmp_path / "b.gain"))
