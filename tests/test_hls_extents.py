"""No descriptor makes a master read or write DDR past the image (descriptor.hpp ``check_extents``, mirrored by
``resilq.deploy.unpack.check_extents``): a parameter block, an input or an output region (for every image of the
batch) that ends past HDR_IMAGE_BYTES is refused with LAYOUT at that descriptor, before anything of it runs, by
the C-sim kernel and the emulator alike, with the same MODEL_CYCLES. Packed images always pass (every other test).
"""

from __future__ import annotations

import numpy as np
import pytest
from hls_support import CSIM, calibrated_model

from resilq.deploy.driver import Accelerator
from resilq.deploy.emulator import EmulatedAccelerator
from resilq.hls import host
from resilq.hls import imageformat as fmt
from resilq.hls.config import AccelConfig
from resilq.hls.simulate import CsimAccelerator

pytestmark = CSIM
D, H = fmt.DescWord, fmt.HeaderWord
CONFIG = AccelConfig(pe=4, simd=8)
N = 3


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(5)
    model = calibrated_model(rng, (2, 8, 8), [("conv", 4, 3, 1, 1), ("pool", 2, 2), ("flatten",), ("fc", 6),
                                              ("head", 3)], "extents")
    x = model.quantize_input(rng.random((N, 2, 8, 8), dtype=np.float32))
    csim = CsimAccelerator(model, CONFIG, batch=N)
    emu = Accelerator(EmulatedAccelerator(CONFIG), model, CONFIG, batch=N)
    csim.run(x)
    emu.run(x)
    return csim, emu


def _edit(acc, words: dict[int, int]) -> dict[int, int]:
    """Set words of the image (index -> value); returns the old values."""
    view = acc.image.buffer.view("<u4")
    old = {i: int(view[i]) for i in words}
    for i, v in words.items():
        view[i] = v
    if hasattr(acc, "buffer"):
        acc.buffer.flush()
    return old


def _desc(acc, k: int, field: D) -> int:
    """Index of word ``field`` of descriptor ``k`` in the image."""
    return int(acc.image.buffer.view("<u4")[H.DESC_OFFSET]) // 4 + k * fmt.DESC_WORDS + int(field)


def _cases(acc):
    """case -> (the descriptor refused, the words to write): each moves one region past the image's end."""
    words = acc.image.buffer.view("<u4")
    size = int(words[H.IMAGE_BYTES])
    last = len(acc.image.plans) - 1
    stride = _desc(acc, 0, D.OUT_STRIDE)
    return {
        "weights-past-the-end": (2, {_desc(acc, 2, D.W_ADDR): size - 8}),
        "output-of-the-last-image": (0, {stride: int(words[stride]) + (size // 2 & ~63)}),
        "input-past-the-end": (last, {_desc(acc, last, D.IN_ADDR): size - 8}),
        "stride-beyond-any-image": (0, {stride: 1 << 24}),
        "batch-beyond-any-image": (0, {int(H.BATCH): 1 << 17}),
    }


@pytest.mark.parametrize("case", ["weights-past-the-end", "output-of-the-last-image", "input-past-the-end",
                                  "stride-beyond-any-image", "batch-beyond-any-image"])
def test_a_region_past_the_image_is_refused_alike(pair, case):
    csim, emu = pair
    results = []
    for acc in (csim, emu):  # each image's own words (the driver's image has room for an upset list at its end)
        k, edits = _cases(acc)[case]
        old = _edit(acc, edits)
        try:
            results.append(host.run(acc.device, 1))
        finally:
            _edit(acc, old)
    got, want = results
    assert (got.code, got.descriptor) == (fmt.Status.LAYOUT, k), case
    assert (want.code, want.descriptor) == (got.code, got.descriptor) and want.cycles == got.cycles
    assert host.run(csim.device, N).code is fmt.Status.OK  # restored
