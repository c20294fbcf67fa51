"""What the accelerator's counters must read after a run, computed from the IR alone.

The executor (:class:`resilq.ir.Executor`) defines every int8 value; these functions add the two
counters it has no notion of: FI_HITS (slot values the fault was applied to: one per inference that
carries it) and CORRECTIONS (corrector invocations whose slots disagreed). A protected neuron's slots
agree fault-free (every slot computes the same value), so they disagree exactly when the fault lands
in one of them and changes its value. numpy only.
"""

from __future__ import annotations

import numpy as np

from resilq.arith import Scheme, apply_fault, requantize, split_half
from resilq.faults import slot_owner
from resilq.ir import Executor, Model
from resilq.ir.kernels import accumulate
from resilq.ir.layers import neuron_shift


def output_faults(model: Model | None, fault) -> list:
    """The one-slot faults ``fault`` amounts to: itself, or one per slot a :class:`~resilq.fault_kinds.LaneFault`
    writes (the accelerator's mapping, :func:`resilq.hls.mapping.slot_lanes`); a list, its members' together."""
    if fault is None:
        return []
    if isinstance(fault, (list, tuple)):  # several at once (an upset list, resilq.hls.upset_list.faults)
        return [f for one in fault for f in output_faults(model, one)]
    if getattr(fault, "kind", "output") == "lane":
        if model is None:
            raise ValueError("a lane fault's slots depend on the model: pass it")
        return fault.output_faults(model)
    return [fault]


def expected_fi_hits(fault, n_images: int, once: bool = False, model: Model | None = None) -> int:
    """FI_HITS: values the fault unit changed the input of -- one per faulty slot and inference that carries it."""
    per_inference = len(output_faults(model, fault))
    return per_inference * (1 if once else n_images)


def expected_corrections(model: Model, x: np.ndarray, fault, once: bool = False) -> int:
    """CORRECTIONS after running the int8 batch ``x`` with ``fault`` (a slot or lane fault, or None) in the
    registers: per inference and protected neuron of a faulty layer, 1 when its slots disagree (the kernel's
    ``slots_disagree``). Each layer's inputs are those of the faulty run (a lane fault in every layer changes
    what the next layer reads)."""
    faults = output_faults(model, fault)
    if not faults:
        return 0
    if once:
        x = x[:1]
    acts = None
    total = 0
    for index in sorted({f.layer for f in faults}):
        prot = model.protection(index)
        if prot is None or prot.n_protected == 0:
            continue
        here = [f for f in faults if f.layer == index]
        owners = [slot_owner(model, index, f.slot) for f in here]
        position = {int(n): k for k, n in enumerate(prot.neurons.tolist())}
        hits = [(f, position[n], copy) for f, (n, copy) in zip(here, owners) if n in position]
        if not hits:
            continue
        if acts is None and index > 0:
            acts = Executor(model).run(x, faults=faults, collect=True).activations
        layer = model.layers[index]
        inputs = x if index == 0 else acts[index - 1]
        acc = accumulate(layer, inputs).reshape(x.shape[0], -1)[:, prot.neurons]
        shift = neuron_shift(layer, model.out_shape(index), prot.neurons)
        if prot.scheme is Scheme.SPLIT:
            value = split_half(acc, shift)
        else:
            value = requantize(acc, shift, *layer.requant.bounds)
        copies = [value.copy() for _ in range(prot.copies)]
        for f, k, copy in hits:
            copies[copy][:, k] = apply_fault(copies[copy][:, k], f.mask, f.mode)
        disagree = copies[0] != copies[1]
        if prot.scheme is Scheme.TMR:
            disagree |= copies[0] != copies[2]
        total += int(np.count_nonzero(disagree))
    return total
