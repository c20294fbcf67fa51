"""Range restriction (clip) on the accelerator: C-sim == emulator == executor, bit for bit (issue #16).

A layer's clip is a bound in its descriptor (GEOMETRY bits 24-31, Flag.CLIP / CLIP_ZERO) applied as the
layer's outputs leave for DDR, after the corrector: the value the next layer reads, as in the executor.
LeNet-5 trained on the bundled digits with bounds profiled on a few images minus a margin, so the clip acts
on fault-free inputs too; unprotected and protected, both variants, with faults; batches large enough that
the FC layers run batched (two chunks of 16 and 8 images).
"""

from __future__ import annotations

import numpy as np
import pytest
from hls_support import CSIM, assert_layers, protect_fraction

from resilq.arith import Scheme
from resilq.deploy.driver import Accelerator
from resilq.deploy.emulator import EmulatedAccelerator
from resilq.errors import UnsupportedModelError
from resilq.faults import Fault
from resilq.harden.clip import profile_bounds, with_clip
from resilq.hls import imageformat as fmt
from resilq.hls.config import DEFAULT_CONFIG
from resilq.hls.cycles import cycle_report
from resilq.hls.simulate import CsimAccelerator
from resilq.ir import Clip, Executor

pytestmark = CSIM
IMAGES = 24


def clipped(trained, scheme, variant):
    model = trained.model
    x = model.quantize_input(trained.test.images)
    bounds = {i: max(1, b - 12) for i, b in profile_bounds(model, x[:16]).items()}
    if scheme is not None:
        model = protect_fraction(model, np.random.default_rng(3), scheme, 0.05)
    return with_clip(model, bounds, variant), x[16:16 + IMAGES]


@pytest.mark.parametrize("variant", ["bound", "zero"])
@pytest.mark.parametrize("scheme", [None, Scheme.SPLIT, Scheme.TMR], ids=lambda s: "none" if s is None else s.label)
def test_clip_bit_exact_on_the_csim_and_the_emulator(digits_lenet, scheme, variant):
    model, x = clipped(digits_lenet, scheme, variant)
    ref = Executor(model).run(x, collect=True)
    plain = Executor(model.without_clip()).run(x, collect=True)
    changed = [i for i in model.neuron_layers if not np.array_equal(ref.activations[i], plain.activations[i])]
    assert changed, "the bounds must clip something fault-free, or the test proves nothing"
    run = CsimAccelerator(model, batch=IMAGES).run(x)
    assert_layers(run.activations, ref.activations, f"C-sim {scheme} {variant}")
    assert run.cycles == cycle_report(model, DEFAULT_CONFIG, images=IMAGES).total  # the clip costs no cycle
    emu = Accelerator(EmulatedAccelerator(), model, batch=IMAGES, keep_activations=True).run(x)
    assert_layers(emu.activations, ref.activations, f"emulator {scheme} {variant}")
    # a fault the clip meets: bit 6 set on an original slot (and on a shadow when protected)
    rng = np.random.default_rng(7)
    for layer in model.neuron_layers:
        slot = int(rng.integers(model.slots_in(layer)))
        fault = Fault(layer, slot, 0x40, 2)  # stuck-at-1 of bit 6: +64, above every bound
        want = Executor(model).run(x, faults=[fault], collect=True)
        got = CsimAccelerator(model, batch=IMAGES).run(x, fault=fault)
        assert_layers(got.activations, want.activations, f"C-sim fault {fault}")


def test_descriptor_carries_the_clip_and_bad_clips_are_refused(digits_lenet):
    from resilq.hls.packing import pack

    model, x = clipped(digits_lenet, None, "zero")
    image = pack(model, DEFAULT_CONFIG, batch=2)
    words = image.buffer.view("<u4")
    first = words[image.buffer.view("<u4")[fmt.HeaderWord.DESC_OFFSET] // 4:][:fmt.DESC_WORDS]
    assert (int(first[fmt.DescWord.GEOMETRY]) >> 24) == model.clip(0).bound
    assert (int(first[fmt.DescWord.OP_FLAGS]) >> 8) & (fmt.Flag.CLIP | fmt.Flag.CLIP_ZERO) == fmt.Flag.CLIP | fmt.Flag.CLIP_ZERO
    # a bound above 127 in a hostile image: the kernel and the emulator stop with BAD_OP at that descriptor
    for device in (CsimAccelerator(model, batch=2), Accelerator(EmulatedAccelerator(), model, batch=2)):
        img = device.image
        start = img.buffer.view("<u4")[fmt.HeaderWord.DESC_OFFSET] // 4
        img.buffer.view("<u4")[start + fmt.DescWord.GEOMETRY] |= np.uint32(200 << 24)
        with pytest.raises(Exception, match="BAD_OP"):
            device.run(x[:2])
    with pytest.raises(UnsupportedModelError, match="classifier"):
        from resilq.hls.mapping import plan_model

        plan_model(model.with_clip({len(model.layers) - 1: Clip(5)}), DEFAULT_CONFIG)
