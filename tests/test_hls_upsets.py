"""Output-site BER on the accelerator (issue #15, register map v5): C-sim == emulator == executor.

A :class:`resilq.fault_kinds.BerFault` on outputs becomes, per image, an upset list in the memory image
(resilq.hls.upset_list) that the kernel applies with FI_CTRL.UPSETS: the original slots after their tile, the
shadow copies in the corrector. Compared layer by layer with the executor's BerFault (per run, per inference,
and ``sites="both"`` whose weight part is written into the image), FI_HITS with the flips, CORRECTIONS with
resilq.hls.reference, MODEL_CYCLES with the cycle model plus resilq.hls.cycles.upset_cycles. A malformed list is
refused with the same STATUS by the C-simulated kernel and the emulator. LeNet-5 trained on digits.
"""

from __future__ import annotations

import numpy as np
import pytest
from hls_support import CSIM, protect_fraction

from resilq.arith import FaultMode, Scheme
from resilq.deploy.driver import Accelerator
from resilq.deploy.emulator import EmulatedAccelerator
from resilq.deploy.targets import CsimTarget
from resilq.errors import ParameterError
from resilq.fault_kinds import BerFault
from resilq.hls import host, upset_list
from resilq.hls import regmap as rm
from resilq.hls.config import DEFAULT_CONFIG, AccelConfig
from resilq.hls.cycles import cycle_report, upset_cycles
from resilq.hls.imageformat import Status
from resilq.hls.reference import expected_corrections
from resilq.ir import Executor

pytestmark = CSIM
IMAGES = 6
ROTATED = AccelConfig(shadow_units=0)  # every shadow computed by a rotated array pass
SCHEMES = [None, Scheme.SPLIT, Scheme.TMR, Scheme.DUP_AND, Scheme.DUP_MIN]
FAULTS = [BerFault(4e-3, "outputs", 1, "run"), BerFault(6e-3, "outputs", 2, "inference"),
          BerFault(2e-3, "both", 3, "run")]


def lenet(trained, scheme, fraction=0.1):
    model = trained.model
    if scheme is not None:
        model = protect_fraction(model, np.random.default_rng(11), scheme, fraction)
    return model, model.quantize_input(trained.test.images[:IMAGES])


def same_layers(got, want, where):
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(a, b), f"{where}: layer {i} differs in {np.count_nonzero(a != b)} values"


def image_masks(model, fault, i):
    """The masks the driver writes for image ``i`` (global index ``i``)."""
    masks = fault.output_masks(model) if fault.per == "run" else fault.output_masks(model, np.array([i]))
    return {k: m[0] for k, m in masks.items()}


def expected(model, x, fault, config):
    """FI_HITS, CORRECTIONS and MODEL_CYCLES of the run image by image, from the IR and the cycle model alone."""
    ex_model = model
    if fault.hits_weights:  # the weight part is in the image: the slots are those of the faulty network
        from resilq.fault_kinds import faulty_model

        ex_model = faulty_model(model, fault.weight_faults(model))
    hits = corrections = cycles = 0
    base = cycle_report(model, config, 1).total
    for i in range(x.shape[0]):
        masks = image_masks(model, fault, i)
        flips = upset_list.faults(masks)
        hits += len(flips)
        corrections += expected_corrections(ex_model, x[i:i + 1], flips)
        cycles += base + sum(upset_cycles(config, upset_list.encode(model, masks), model.neuron_layers).values())
    return hits, corrections, cycles


@pytest.mark.parametrize("scheme,config", [(s, DEFAULT_CONFIG) for s in SCHEMES] +
                         [(s, ROTATED) for s in (Scheme.SPLIT, Scheme.TMR)],
                         ids=lambda v: ("none" if v is None else v.label) if not isinstance(v, AccelConfig) else
                         ("shadow-lanes" if v.shadow_units else "rotated"))
def test_output_ber_bit_exact_on_csim_and_emulator(digits_lenet, scheme, config):
    model, x = lenet(digits_lenet, scheme)
    ex = Executor(model)
    sim = Accelerator(CsimTarget.open(config), model, config, batch=IMAGES, keep_activations=True)
    emu = Accelerator(EmulatedAccelerator(config), model, config, batch=IMAGES, keep_activations=True)
    golden = ex.run(x).logits
    changed = shadow_flips = 0
    for fault in FAULTS:
        want = ex.run(x, faults=[fault], collect=True)
        got = sim.run(x, fault)
        same_layers(got.activations, want.activations, f"C-sim {fault}")
        e = emu.run(x, fault)
        same_layers(e.activations, want.activations, f"emulator {fault}")
        hits, corrections, cycles = expected(model, x, fault, config)
        assert (got.fi_hits, got.corrections, got.cycles) == (hits, corrections, cycles), str(fault)
        assert (e.fi_hits, e.corrections, e.cycles) == (hits, corrections, cycles), str(fault)
        assert got.runs == IMAGES  # image by image
        changed += not np.array_equal(want.logits, golden)
        shadow_flips += sum(np.count_nonzero(image_masks(model, fault, i)[k][model.neurons_in(k):])
                            for i in range(IMAGES) for k in model.neuron_layers)
    assert changed  # the flips reach the logits, or equality proves little
    assert (shadow_flips > 0) == (scheme is not None)  # the corrector's path was exercised


def test_flips_on_shadow_copies_alone_are_corrected_by_tmr(digits_lenet):
    """An upset list that flips only shadow copies leaves a TMR network's outputs golden (the voter outvotes one
    copy) while FI_HITS and CORRECTIONS show every flip reached the corrector."""
    model, x = lenet(digits_lenet, Scheme.TMR, 0.3)
    acc = Accelerator(CsimTarget.open(DEFAULT_CONFIG), model, batch=IMAGES, keep_activations=True)
    golden = Executor(model).run(x[:1], collect=True)
    rng = np.random.default_rng(4)
    masks = {k: np.zeros(model.slots_in(k), np.uint8) for k in model.neuron_layers}
    for k in model.neuron_layers:
        n_out = model.neurons_in(k)
        entries = model.shadows_in(k) // 2
        chosen = rng.choice(entries, min(entries, 40), replace=False)
        masks[k][n_out + 2 * chosen + rng.integers(0, 2, chosen.size)] = rng.integers(1, 256, chosen.size)
    offset, count = acc.image.write_upsets(upset_list.encode(model, masks))
    acc.image.write_inputs(x[:1])
    host.set_upsets(acc.device, offset, count)
    status = host.run(acc.device, 1).check(acc.image)
    same_layers([acc.image.read_output(i, 1) for i in range(len(model.layers))], golden.activations, "TMR")
    flips = sum(np.count_nonzero(m) for m in masks.values())
    assert status.fi_hits == flips and status.corrections == flips > 0


def _item(layer, mask=1, mask2=0, index=0, channel=0, shadow=False):
    return upset_list._item(layer, mask, mask2, index, channel, shadow)


def _hostile_lists(model):
    conv, fc = model.neuron_layers[0], model.neuron_layers[-1]
    head = len(model.layers) - 1
    wide = max(model.neuron_layers, key=model.neurons_in)
    hw = int(np.prod(model.out_shape(wide)[1:]))
    assert model.neurons_in(wide) > rm.UPSET_CAPACITY
    return {
        "layers out of order": ([_item(fc), _item(conv)], 1, 0),
        "the same slot twice": ([_item(conv, index=3), _item(conv, index=3)], 1, 0),
        "an original after a shadow": ([_item(conv, shadow=True), _item(conv)], 1, 0),
        "a channel past the layer": ([_item(conv, channel=model.out_shape(conv)[0])], 1, 0),
        "a position past the map": ([_item(conv, index=int(np.prod(model.out_shape(conv)[1:])))], 1, 0),
        "an empty mask": ([_item(conv, mask=0)], 1, 0),
        "an entry past the table": ([_item(conv, index=model.protection(conv).n_protected, shadow=True)], 1, 0),
        "a second copy under dup": ([_item(conv, mask2=4, shadow=True)], 1, 0),
        "an item of the classifier": ([_item(head)], 1, 0),
        "the classifier's after good ones": ([_item(conv, index=1), _item(conv, mask=3, shadow=True), _item(head)], 1, 0),
        "a bad item after a good layer": ([_item(conv, index=2), _item(conv, mask=9, shadow=True),
                                           _item(fc, mask=0)], 1, 0),
        "more than a layer holds": ([_item(wide, index=i % hw, channel=i // hw) for i in range(rm.UPSET_CAPACITY + 1)],
                                    1, 0),
        "two images": ([_item(conv)], 2, 0),
        "a misaligned list": ([_item(conv)], 1, 4),
    }


def test_malformed_upset_lists_are_refused_alike(digits_lenet):
    """Every malformed list is refused by the C-simulated kernel and by the emulator with the same STATUS code and
    descriptor, and the same MODEL_CYCLES, FI_HITS and CORRECTIONS of what ran before the refusal; a good list after it
    runs (nothing of the refused one is left behind)."""
    model, x = lenet(digits_lenet, Scheme.DUP_AND, 0.2)
    outcomes = {}
    for name, device in (("csim", CsimTarget.open(DEFAULT_CONFIG)), ("emulator", EmulatedAccelerator())):
        acc = Accelerator(device, model, batch=IMAGES, upset_capacity=2 * rm.UPSET_CAPACITY)
        acc.image.write_inputs(x[:2])
        seen = {}
        for what, (items, images, shift) in _hostile_lists(model).items():
            offset, count = acc.image.write_upsets(np.array(items, dtype=np.uint64))
            host.set_upsets(acc.device, offset + shift, count) if shift == 0 else _raw_upsets(acc, offset + shift, count)
            status = host.run(acc.device, images)
            seen[what] = (status.code, status.descriptor, status.cycles, status.fi_hits, status.corrections)
            want = Status.UPSETS if images == 1 and shift == 0 else Status.FAULT_CONFIG
            assert status.code == want, f"{name}: {what}: {status.code.name}"
        good = upset_list.encode(model, image_masks(model, FAULTS[0], 0))
        offset, count = acc.image.write_upsets(good)
        host.set_upsets(acc.device, offset, count)
        assert host.run(acc.device, 1).code == Status.OK
        outcomes[name] = seen
    assert outcomes["csim"] == outcomes["emulator"]
    conv_descriptor = 0
    assert outcomes["csim"]["an item of the classifier"][1] > conv_descriptor  # found after the last neuron layer
    assert outcomes["csim"]["a bad item after a good layer"][3] == 2  # the first layer's flips happened


def _raw_upsets(acc, offset, count):
    """A hostile host: FI_LIST not a multiple of 8 (host.set_upsets refuses to write it)."""
    acc.device.write(rm.FI_LIST.offset, offset)
    acc.device.write(rm.FI_COUNT.offset, count)
    acc.device.write(rm.FI_CTRL.offset, rm.FI_CTRL.field("EN").put(1) | rm.FI_CTRL.field("UPSETS").put(1))


def test_lists_the_kernel_cannot_hold_are_refused_on_the_host(digits_lenet):
    model, x = lenet(digits_lenet, Scheme.SPLIT)
    conv = model.neuron_layers[0]
    masks = {conv: np.zeros(model.slots_in(conv), np.uint8)}
    masks[conv][:rm.UPSET_CAPACITY + 1] = 1
    with pytest.raises(ParameterError, match=f"holds {rm.UPSET_CAPACITY} per layer"):
        upset_list.encode(model, masks)
    with pytest.raises(ParameterError, match="needs"):
        upset_list.encode(model, {conv: np.zeros(3, np.uint8)})
    with pytest.raises(ParameterError, match="not a neuron layer"):
        upset_list.encode(model, {len(model.layers) - 1: np.zeros(10, np.uint8)})
    acc = Accelerator(EmulatedAccelerator(), model, batch=IMAGES, upset_capacity=4)
    with pytest.raises(ParameterError, match="room for 4"):
        acc.run(x, BerFault(2e-3, "outputs", 1))
    with pytest.raises(ParameterError, match="once=True"):
        acc.run(x, BerFault(1e-3, "outputs", 1), once=True)


def test_encode_and_decode_are_inverse(digits_lenet):
    """decode (the kernel's reading, as the emulator runs it) gives back the masks encode was given, for random
    masks on every scheme; FI_HITS counts each flipped slot value once."""
    rng = np.random.default_rng(8)
    for scheme in SCHEMES:
        model, _ = lenet(digits_lenet, scheme, 0.3)
        masks = {}
        for k in model.neuron_layers:
            m = np.zeros(model.slots_in(k), np.uint8)
            at = rng.choice(m.size, min(m.size, 300), replace=False)
            m[at] = rng.integers(0, 256, at.size)
            masks[k] = m
        items = upset_list.encode(model, masks)
        back = upset_list.decode(model, list(range(len(model.layers))), items)
        assert set(back) == set(masks) and all(np.array_equal(back[k], masks[k]) for k in masks)
        assert len(upset_list.faults(masks)) == sum(np.count_nonzero(m) for m in masks.values())
        assert all(f.mode is FaultMode.FLIP for f in upset_list.faults(masks))
