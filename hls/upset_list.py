"""The upset list: output-site bit flips as the accelerator reads them (FI_CTRL.UPSETS, register map v5).

A BER draw on outputs (:class:`resilq.fault_kinds.BerFault`, ``sites`` "outputs" or "both") gives each neuron
layer an XOR mask per slot (:meth:`~resilq.fault_kinds.BerFault.output_masks`, slots numbered as
:mod:`resilq.faults`: the neurons flat C-H-W, then the shadows ``n_out + entry * (copies - 1) + j``). The host
turns the nonzero masks into 64-bit items (:func:`encode`, fields :data:`resilq.hls.regmap.UPSET_LO` /
``UPSET_HI``), writes them into the memory image and points FI_LIST / FI_COUNT at them; the kernel
(``hls/include/resilq/upsets.hpp``) XORs each original slot after its tile and each shadow copy in the
corrector. :func:`decode` is the kernel's reading of a list, with its checks and STATUS codes, for the emulator.
numpy only.
"""

from __future__ import annotations

import numpy as np

from resilq.arith import FaultMode
from resilq.errors import ParameterError, ResilqError
from resilq.faults import Fault
from resilq.ir import Model

from . import regmap as rm
from .imageformat import Status

_LO_MASK, _LO_MASK2, _LO_INDEX = (rm.UPSET_LO.field(n) for n in ("MASK", "MASK2", "INDEX"))
_HI_CHANNEL, _HI_LAYER, _HI_SHADOW = (rm.UPSET_HI.field(n) for n in ("CHANNEL", "LAYER", "SHADOW"))


def _positions(model: Model, layer: int) -> int:
    shape = model.out_shape(layer)
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def _extra(model: Model, layer: int) -> int:
    """Shadow copies per protected neuron (copies - 1; 0 unprotected), as :func:`resilq.faults.shadow_slot`."""
    prot = model.protection(layer)
    return prot.copies - 1 if prot is not None and prot.n_protected else 0


def _item(layer: int, mask: int, mask2: int, index: int, channel: int, shadow: bool) -> int:
    lo = _LO_MASK.put(mask) | _LO_MASK2.put(mask2) | _LO_INDEX.put(index)
    hi = _HI_CHANNEL.put(channel) | _HI_LAYER.put(layer) | _HI_SHADOW.put(int(shadow))
    return lo | (hi << 32)


def encode(model: Model, masks: dict[int, np.ndarray]) -> np.ndarray:
    """The uint64 items of ``masks`` (``{neuron layer: (slots_in(layer),) uint8}``, zeros for slots that keep
    their value), in the kernel's order; a layer with more items than the kernel holds is refused."""
    items: list[int] = []
    for layer in sorted(masks):
        if layer not in model.neuron_layers:
            raise ParameterError(f"upset list: layer {layer} is not a neuron layer of {model.name!r}")
        m = np.asarray(masks[layer])
        if m.dtype != np.uint8 or m.shape != (model.slots_in(layer),):
            raise ParameterError(f"upset list: layer {layer} needs ({model.slots_in(layer)},) uint8 masks, got "
                                 f"{m.shape} {m.dtype}")
        n_out, hw, extra = model.neurons_in(layer), _positions(model, layer), _extra(model, layer)
        start = len(items)
        for slot in np.flatnonzero(m[:n_out]).tolist():
            channel, pos = divmod(slot, hw)
            items.append(_item(layer, int(m[slot]), 0, pos, channel, False))
        shadows = m[n_out:]
        if extra:
            per_entry = shadows.reshape(-1, extra)
            for entry in np.flatnonzero(per_entry.any(axis=1)).tolist():
                second = int(per_entry[entry, 1]) if extra > 1 else 0
                items.append(_item(layer, int(per_entry[entry, 0]), second, entry, 0, True))
        if len(items) - start > rm.UPSET_CAPACITY:
            raise ParameterError(f"upset list: layer {model.layers[layer].name!r} has {len(items) - start} flipped "
                                 f"slots, the accelerator holds {rm.UPSET_CAPACITY} per layer (a lower p, or the "
                                 "Python engines)")
    return np.asarray(items, dtype=np.uint64)


def faults(masks: dict[int, np.ndarray]) -> list[Fault]:
    """The masks as one-slot flips (the executor's :class:`resilq.faults.Fault`), one per slot value flipped: what
    the kernel applies, and counts in FI_HITS."""
    return [Fault(layer, int(s), int(m[s]), FaultMode.FLIP) for layer, m in sorted(masks.items())
            for s in np.flatnonzero(m).tolist()]


def layer_counts(items: np.ndarray, layers) -> dict[int, tuple[int, int]]:
    """``{layer: (items its load reads, original slots it flips)}`` for the neuron ``layers`` in execution order: what
    the kernel's cycles per layer depend on (:func:`resilq.hls.cycles.upset_cycles`). A layer's load reads the rest
    of the list up to one item past the capacity (one burst of a length known before it starts, upsets.hpp
    ``upset_span``), whatever of it is the layer's."""
    words = np.asarray(items, dtype=np.uint64)
    hi = (words >> np.uint64(32)).astype(np.int64)
    at = (hi >> _HI_LAYER.lsb) & ((1 << _HI_LAYER.width) - 1)
    shadow = ((hi >> _HI_SHADOW.lsb) & 1).astype(bool)
    out, used = {}, 0
    for layer in layers:  # the layer takes the items from where the last one stopped, while they are its own
        end = used
        while end < words.size and at[end] == layer and end - used < rm.UPSET_CAPACITY:
            end += 1
        out[layer] = (min(words.size - used, rm.UPSET_CAPACITY + 1), int(np.count_nonzero(~shadow[used:end])))
        used = end
    return out


class UpsetError(ResilqError):
    """The kernel refuses the list: STATUS ``status`` at descriptor ``descriptor``. ``masks``: the layers whose
    items it applied before (their flips happened); ``complete``: every descriptor ran (items of no neuron layer are
    found after the last)."""

    def __init__(self, status: Status, descriptor: int, reason: str, masks: dict[int, np.ndarray] | None = None,
                 complete: bool = False):
        super().__init__(f"{status.name} at descriptor {descriptor}: {reason}")
        self.status = status
        self.descriptor = descriptor
        self.masks = masks or {}
        self.complete = complete


def decode(model: Model, descriptor_layers: list[int], items: np.ndarray) -> dict[int, np.ndarray]:
    """The masks a list means, read as the kernel reads it: descriptor by descriptor (``descriptor_layers``: the IR
    layer of each), a neuron layer's items while their LAYER is its own. Raises :class:`UpsetError` where the
    kernel stops with STATUS_UPSETS: an item of an earlier layer, over the capacity, out of order or out of range,
    or items no neuron layer took."""
    items = np.asarray(items, dtype=np.uint64)
    masks: dict[int, np.ndarray] = {}
    nxt = 0
    for k, layer in enumerate(descriptor_layers):
        if layer not in model.neuron_layers:
            continue
        n_out, hw, extra = model.neurons_in(layer), _positions(model, layer), _extra(model, layer)
        prot = model.protection(layer)
        entries = prot.n_protected if prot is not None else 0
        m = np.zeros(model.slots_in(layer), np.uint8)
        count, last, shadows = 0, None, False
        while nxt < items.size:
            word = int(items[nxt])
            lo, hi = word & 0xFFFFFFFF, word >> 32
            at = _HI_LAYER.get(hi)
            if at > layer:
                break
            mask, mask2, index = _LO_MASK.get(lo), _LO_MASK2.get(lo), _LO_INDEX.get(lo)
            channel, shadow = _HI_CHANNEL.get(hi), bool(_HI_SHADOW.get(hi))
            key = index if shadow else (channel << 16) | index
            ordered = last is None or (shadow and not shadows) or key > last
            if shadow:
                fits = index < entries and channel == 0 and (mask | mask2) != 0 and (extra > 1 or mask2 == 0)
            else:
                fits = not shadows and channel * hw < n_out and index < hw and mask != 0 and mask2 == 0
            if at < layer or count >= rm.UPSET_CAPACITY or not ordered or not fits:
                raise UpsetError(Status.UPSETS, k, f"item {nxt} (layer {at}) at layer {layer}", masks)
            if shadow:
                m[n_out + index * extra] ^= mask
                if extra > 1:
                    m[n_out + index * extra + 1] ^= mask2
            else:
                m[channel * hw + index] ^= mask
            count, last, shadows, nxt = count + 1, key, shadows or shadow, nxt + 1
        masks[layer] = m
    if nxt != items.size:
        raise UpsetError(Status.UPSETS, len(descriptor_layers) - 1, f"{items.size - nxt} items of no neuron layer",
                         masks, complete=True)
    return masks
