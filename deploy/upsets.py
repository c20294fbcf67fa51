"""Stored-word upsets on the deployed accelerator: weight and bias bit flips written into the DDR image.

The accelerator reads every layer's parameters (bias/shift beats, then the weight rows) from the packed
DDR image at the start of each tile (:mod:`resilq.hls.packing`), so a :class:`resilq.fault_kinds.WeightFault`
(or the weight part of a per-run :class:`~resilq.fault_kinds.BerFault`) is injected on any device -- the
board, the emulator, the C-simulated IP -- by rewriting the faulty layer's parameter block in the image
for the run and restoring it afterwards: no fault register is involved, and what the kernel reads is
exactly a memory word with a flipped bit. Every tile, original pass and shadow pass alike, reads the same
stored word, so all copies of a protected neuron see the upset (SPEC §7). An image that keeps its weights on
chip between runs (a nonzero WEIGHTS_TAG) is retagged on both writes, so the kernel reloads the words it reads.

The block is produced by the packer's own functions (``param_beats``, ``weight_rows``), and the clean block
is compared with the image before anything is written (a layout drift raises ``MismatchError``).
A ``lane`` fault goes through the fault-injection registers (FI_CTRL.KIND, the driver); output ``ber``
(per run or per inference) through an upset list in the image (FI_CTRL.UPSETS, :mod:`resilq.hls.upset_list`),
which the driver writes image by image.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from resilq.errors import MismatchError, ParameterError
from resilq.fault_kinds import resolve
from resilq.hls.packing import MemoryImage, param_beats, weight_rows
from resilq.ir import Model


def parameter_block(image: MemoryImage, index: int, layer) -> np.ndarray:
    """The bytes of layer ``index``'s parameter block (bias/shift beats, then weight rows), as the packer
    lays them out at ``image.layer_offsets[index]``."""
    plan = next(p for p in image.plans if p.index == index)
    return np.concatenate([param_beats(layer), weight_rows(plan, layer, image.source_region(index).layout).view(np.uint8).reshape(-1)])


def stored_word_layers(model: Model, fault) -> tuple[Model, list[int]]:
    """``(faulty model, layers whose stored words differ)`` for a fault the image can carry, or a
    ``ParameterError`` naming why the fault needs hardware this register map does not have."""
    resolved = resolve(model, [fault])
    if resolved.faults or resolved.per_inference:
        raise ParameterError(f"{fault}: output-site flips are not stored words; Accelerator.run injects a BER draw on "
                             "outputs through an upset list (resilq.hls.upset_list, FI_CTRL.UPSETS), a slot or lane "
                             "fault through the fault-injection registers")
    changed = [i for i, (a, b) in enumerate(zip(model.layers, resolved.model.layers)) if a is not b]
    return resolved.model, changed


@contextmanager
def upset(image: MemoryImage, model: Model, fault, flush=lambda: None):
    """Within the context, the image holds ``fault``'s flipped stored words; restored on exit.

    ``flush`` makes the CPU's writes visible to the accelerator (the device buffer's cache flush).
    """
    faulty, layers = stored_word_layers(model, fault)
    saved = []
    for i in layers:
        base = image.layer_offsets[i]
        clean = parameter_block(image, i, model.layers[i])
        current = image.buffer[base:base + clean.size]
        if not np.array_equal(current, clean):
            raise MismatchError(f"layer {model.layers[i].name!r}: the packed parameter block differs from the "
                                "packer's layout; refusing to patch an image whose layout is not understood")
        saved.append((base, current.copy()))
        image.buffer[base:base + clean.size] = parameter_block(image, i, faulty.layers[i])
    image.retag()  # a kept image announces new weights: the kernel loads them instead of what it kept
    flush()
    try:
        yield faulty
    finally:
        for base, block in saved:
            image.buffer[base:base + block.size] = block
        image.retag()
        flush()
