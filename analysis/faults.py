"""Fault descriptors and slot addressing, shared by the executor, the campaigns, the HLS harness and the
driver (SPEC §2, §5): the same :class:`Fault` means the same thing everywhere.

A fault hits one **slot** of one neuron layer (``layer`` is the index in ``Model.layers``). Slots
``0 .. n_out-1`` are the layer's neurons (flat C-H-W index); a layer with protection appends the shadow
slots of its protected neurons: protected neuron ``p`` (its position in ``Protection.neurons``) owns
shadows ``n_out + p*(copies-1) + j`` for ``j = 0 .. copies-2``.

:class:`Fault` is the ``output`` kind (SPEC §7); the ``lane``, ``weight`` and ``ber`` kinds are in
:mod:`resilq.fault_kinds`. Every descriptor has a ``kind`` and a ``check(model)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .arith import FaultMode
from .ir.model import Model


@dataclass(frozen=True, order=True)
class Fault:
    """A fault at ``slot`` of neuron layer ``layer``: ``mask`` applied with ``mode`` to the int8 written there."""

    layer: int
    slot: int
    mask: int = 1
    mode: FaultMode = FaultMode.FLIP
    kind: ClassVar[str] = "output"  # the fault kind (SPEC §7); lane/weight/ber are in resilq.fault_kinds

    @classmethod
    def bit_flip(cls, layer: int, slot: int, bit: int) -> Fault:
        if not 0 <= bit <= 7:
            raise ValueError(f"bit index must lie in 0..7, got {bit}")
        return cls(int(layer), int(slot), 1 << int(bit), FaultMode.FLIP)

    def check(self, model: Model) -> None:
        """Raise ``ValueError`` naming the problem if this fault does not address a slot of ``model``."""
        if self.layer not in model.neuron_layers:
            names = {i: model.layers[i].name for i in model.neuron_layers}
            raise ValueError(f"fault layer {self.layer} is not a neuron layer of {model.name} (neuron layers: {names})")
        n = model.slots_in(self.layer)
        if not 0 <= self.slot < n:
            raise ValueError(f"fault slot {self.slot} is outside layer {model.layers[self.layer].name!r} (0..{n - 1})")
        if not 0 < self.mask <= 0xFF:
            raise ValueError(f"fault mask must be a non-zero 8-bit value, got {self.mask:#x}")
        FaultMode(self.mode)


def shadow_slot(model: Model, layer: int, position: int, copy: int) -> int:
    """Slot of copy ``copy`` (1 .. copies-1) of the protected neuron at ``position`` of ``layer``."""
    prot = model.protection(layer)
    if prot is None or not 0 <= position < prot.n_protected or not 1 <= copy < prot.copies:
        raise ValueError(f"layer {layer} has no shadow copy {copy} of protected position {position}")
    return model.neurons_in(layer) + position * (prot.copies - 1) + (copy - 1)


def slot_owner(model: Model, layer: int, slot: int) -> tuple[int, int]:
    """``(neuron, copy)`` of a slot: copy 0 is the original slot, 1.. are shadows."""
    n_out = model.neurons_in(layer)
    if slot < n_out:
        return int(slot), 0
    prot = model.protection(layer)
    k = slot - n_out
    position, copy = divmod(k, prot.copies - 1)
    return int(prot.neurons[position]), int(copy + 1)


def slot_offsets(model: Model) -> dict[int, int]:
    """Global slot numbering: the first global slot of each neuron layer (layers in order)."""
    offsets, total = {}, 0
    for i in model.neuron_layers:
        offsets[i] = total
        total += model.slots_in(i)
    return offsets


def global_to_local(model: Model, global_slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map global slot numbers (0 .. n_slots-1) to ``(layer index, local slot)`` arrays."""
    global_slots = np.asarray(global_slots, dtype=np.int64)
    starts = np.array([slot_offsets(model)[i] for i in model.neuron_layers], dtype=np.int64)
    which = np.searchsorted(starts, global_slots, side="right") - 1
    layers = np.asarray(model.neuron_layers, dtype=np.int64)[which]
    return layers, global_slots - starts[which]
