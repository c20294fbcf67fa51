"""Tile packing (resilq.hls.tile_packing): the packed model is the same network, bit for bit, on the executor
and on the C-simulated accelerator, and its shadow passes cover fewer positions."""

from __future__ import annotations

import numpy as np
import pytest
from hls_support import CSIM, calibrated_model, protect_fraction

from resilq.arith import Scheme
from resilq.cli import main
from resilq.errors import ParameterError, UnsupportedModelError
from resilq.faults import Fault
from resilq.hls.config import AccelConfig
from resilq.hls.cycles import cycle_report, protected_groups
from resilq.hls.mapping import output_lane, plan_model
from resilq.hls.tile_packing import METADATA_KEY, greedy_order, pack_tiles, permute_channels, tile_groups
from resilq.ir import Executor, Protection, load_model, save_model

SCHEMES = (Scheme.SPLIT, Scheme.TMR, Scheme.DUP_AND, Scheme.DUP_MIN)
#: A build without dedicated shadow lanes: every protected position of a tile costs its passes, so packing the
#: protected channels together is what saves cycles (with shadow lanes, spreading them does: test below).
ROTATED = AccelConfig(shadow_units=0)


@pytest.fixture(scope="module")
def lenet(digits_lenet):
    return digits_lenet.model, digits_lenet.model.quantize_input(digits_lenet.test.images)


def groups(model, config):
    return sum(int(protected_groups(p).sum()) for p in plan_model(model, config))


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.label)
def test_packed_lenet_is_the_same_network_on_real_digits(lenet, scheme):
    model, x = lenet
    hard = protect_fraction(model, np.random.default_rng(3), scheme, 0.08)
    packed, report = pack_tiles(hard, ROTATED)
    assert any(r.packed for r in report)
    ref, got = Executor(hard).run(x), Executor(packed).run(x)
    assert np.array_equal(ref.logits, got.logits)
    assert packed.n_protected == hard.n_protected and packed.n_slots == hard.n_slots
    assert packed.network_hash != hard.network_hash  # a different numbering of the same network
    config = ROTATED
    assert groups(packed, config) < groups(hard, config)
    assert cycle_report(packed, config).per_inference < cycle_report(hard, config).per_inference


def test_every_layer_maps_back_through_the_recorded_order(lenet):
    model, x = lenet
    hard = protect_fraction(model, np.random.default_rng(4), Scheme.TMR, 0.05)
    packed, report = pack_tiles(hard, ROTATED)
    orders = packed.metadata[METADATA_KEY]["orders"]
    ref, got = Executor(hard).run(x[:40], collect=True), Executor(packed).run(x[:40], collect=True)
    for i in packed.neuron_layers:
        name = packed.layers[i].name
        order = np.asarray(orders.get(name, np.arange(packed.layers[i].out_channels)))
        assert np.array_equal(got.activations[i], ref.activations[i][:, order]), name
        shape = packed.out_shape(i)
        hw = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        c, pos = np.divmod(packed.protection(i).neurons.astype(np.int64), hw)
        assert np.array_equal(np.sort(order[c] * hw + pos), hard.protection(i).neurons), name
    # packing again finds nothing more to do and keeps the composed orders
    again, report2 = pack_tiles(packed, ROTATED)
    assert all(not r.packed for r in report2)
    assert again is packed


def test_a_fault_on_a_neuron_moves_with_it(lenet):
    """The same physical neuron under the same fault gives the same predictions in both numberings."""
    model, x = lenet
    hard = protect_fraction(model, np.random.default_rng(5), Scheme.SPLIT, 0.05)
    packed, _ = pack_tiles(hard, ROTATED)
    layer = next(i for i in packed.neuron_layers if packed.layers[i].name in packed.metadata[METADATA_KEY]["orders"])
    order = np.asarray(packed.metadata[METADATA_KEY]["orders"][packed.layers[layer].name])
    shape = packed.out_shape(layer)
    hw = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    inverse = np.argsort(order)
    for old_slot in hard.protection(layer).neurons[:3].tolist() + [0, hard.neurons_in(layer) - 1]:
        c, pos = divmod(int(old_slot), hw)
        new_slot = int(inverse[c]) * hw + pos
        want = Executor(hard).run(x[:60], [Fault(layer, int(old_slot), 1 << 6)]).predictions
        got = Executor(packed).run(x[:60], [Fault(layer, new_slot, 1 << 6)]).predictions
        assert np.array_equal(want, got)


def test_linear_layers_pack_to_the_fewest_tiles():
    rng = np.random.default_rng(0)
    model = calibrated_model(rng, (1, 6, 6), [("flatten",), ("fc", 64), ("fc", 48), ("head", 10)])
    hard = protect_fraction(model, rng, Scheme.TMR, 0.25)
    packed, report = pack_tiles(hard, AccelConfig(pe=8, shadow_units=0))
    for r in report:
        n_prot = hard.protection(r.index).n_protected
        assert r.groups_after == -(-n_prot // 8)  # ceil(P / PE): the optimum
    # lanes stay balanced: no lane holds more protected neurons than before
    for i in packed.neuron_layers:
        before = np.bincount(output_lane(hard.protection(i).neurons, 8), minlength=8).max()
        after = np.bincount(output_lane(packed.protection(i).neurons, 8), minlength=8).max()
        assert after <= before


def test_with_shadow_lanes_packing_spreads_the_protected_channels():
    """4 shadow lanes take TMR's two copies of 2 neurons per position: spread over the tiles, no position of the
    fully connected layers needs an array pass (16 protected of 64 over 8 tiles, 12 of 48 over 6)."""
    rng = np.random.default_rng(0)
    model = calibrated_model(rng, (1, 6, 6), [("flatten",), ("fc", 64), ("fc", 48), ("head", 10)])
    hard = protect_fraction(model, rng, Scheme.TMR, 0.25)
    config = AccelConfig(pe=8, shadow_units=4)
    assert groups(hard, config) > 0
    packed, report = pack_tiles(hard, config)
    assert all(r.packed and r.groups_after == 0 for r in report) and groups(packed, config) == 0
    assert cycle_report(packed, config, images=16).total < cycle_report(hard, config, images=16).total
    x = packed.quantize_input(rng.random((8, 1, 6, 6), dtype=np.float32))
    assert np.array_equal(Executor(packed).run(x).logits, Executor(hard).run(x).logits)
    for i in packed.neuron_layers:  # and the lanes stay balanced
        before = np.bincount(output_lane(hard.protection(i).neurons, 8), minlength=8).max()
        assert np.bincount(output_lane(packed.protection(i).neurons, 8), minlength=8).max() <= before


def test_greedy_order_groups_channels_with_shared_positions():
    sets = np.zeros((8, 10), dtype=bool)
    sets[[0, 2, 4, 6], 0] = True  # four channels protected at position 0
    sets[[1, 3, 5, 7], 9] = True  # four at position 9
    order = greedy_order(sets, pe=4)
    assert sorted(order.tolist()) == list(range(8))
    tiles = [set(order[:4].tolist()), set(order[4:].tolist())]
    assert {0, 2, 4, 6} in tiles and {1, 3, 5, 7} in tiles
    channel, pos = np.nonzero(sets)
    inverse = np.argsort(order)
    assert tile_groups(channel, pos, 4, 10) == 4 and tile_groups(inverse[channel], pos, 4, 10) == 2


def test_bad_orders_and_the_classifier_are_refused(lenet):
    model, _ = lenet
    with pytest.raises(ParameterError, match="permutation"):
        permute_channels(model, 0, np.zeros(model.layers[0].out_channels, dtype=np.int64))
    with pytest.raises(UnsupportedModelError, match="classifier"):
        permute_channels(model, model.classifier_index, np.arange(10))
    pool = next(i for i, layer in enumerate(model.layers) if layer.kind == "maxpool2d")
    with pytest.raises(UnsupportedModelError, match="not a conv/linear"):
        permute_channels(model, pool, np.arange(2))


def test_a_model_the_build_cannot_map_is_refused_before_packing():
    rng = np.random.default_rng(1)
    model = calibrated_model(rng, (1, 4, 4), [("flatten",), ("fc", 16), ("head", 4)])
    hard = model.with_protection({1: Protection(Scheme.TMR, np.arange(0, 16, 2, dtype=np.int32))})
    config = AccelConfig(pe=4, shadow_lane=4)  # lane 0 would hold 4 protected neurons x 2 shadows
    with pytest.raises(UnsupportedModelError, match="shadow_lane"):
        pack_tiles(hard, config)


def test_cli_pack(lenet, tmp_path, capsys):
    model, x = lenet
    hard = protect_fraction(model, np.random.default_rng(6), Scheme.SPLIT, 0.05)
    src = save_model(hard, tmp_path / "split.rq")
    # a build without shadow lanes, where every protected position costs a pass: packing always has work
    assert main(["hls", "pack", str(src), "--out", str(tmp_path / "packed.rq"), "--shadow-units", "0"]) == 0
    out = capsys.readouterr().out
    assert "class scores identical" in out and "modelled cycles/inference" in out
    packed = load_model(tmp_path / "packed.rq")
    assert np.array_equal(Executor(packed).run(x[:50]).logits, Executor(hard).run(x[:50]).logits)
    assert METADATA_KEY in packed.metadata
    plain = save_model(model, tmp_path / "plain.rq")
    assert main(["hls", "pack", str(plain), "--out", str(tmp_path / "x.rq")]) != 0
    assert "protects no neuron" in capsys.readouterr().err
    assert not (tmp_path / "x.rq").exists()


@CSIM[0]
@CSIM[1]
@pytest.mark.parametrize("config", (ROTATED, AccelConfig()), ids=("rotated", "shadow-lanes"))
@pytest.mark.parametrize("scheme", (Scheme.SPLIT, Scheme.TMR), ids=lambda s: s.label)
def test_csim_runs_the_packed_model_bit_exact(lenet, scheme, config):
    """The C-simulated accelerator runs the packed model like any other: every layer equals the executor and
    its cycle counter equals the (smaller) modelled count."""
    from resilq.hls.simulate import CsimAccelerator

    model, x = lenet
    hard = protect_fraction(model, np.random.default_rng(7), scheme, 0.05)
    packed, _ = pack_tiles(hard, config)
    x = x[:8]
    run = CsimAccelerator(packed, config, batch=8).run(x)
    ref = Executor(packed).run(x, collect=True)
    for i, (got, want) in enumerate(zip(run.activations, ref.activations, strict=True)):
        assert np.array_equal(got, want), f"layer {i}"
    assert run.cycles == cycle_report(packed, config, images=8).run(8) <= cycle_report(hard, config, images=8).run(8)
