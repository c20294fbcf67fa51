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


def expected_fi_hits(fault, n_images: int, once: bool = False) -> int:
    if fault is None:
        return 0
    return 1 if once else n_images


def expected_corrections(model: Model, x: np.ndarray, fault, once: bool = False) -> int:
    """CORRECTIONS after running the int8 batch ``x`` with ``fault`` (or None) in the registers."""
    if fault is None:
        return 0
    prot = model.protection(fault.layer)
    if prot is None or prot.n_protected == 0:
        return 0
    neuron, _copy = slot_owner(model, fault.layer, fault.slot)
    if neuron not in set(prot.neurons.tolist()):
        return 0
    if once:
        x = x[:1]
    layer = model.layers[fault.layer]
    inputs = x if fault.layer == 0 else Executor(model).run(x, collect=True).activations[fault.layer - 1]
    acc = accumulate(layer, inputs).reshape(x.shape[0], -1)[:, neuron]
    shift = neuron_shift(layer, model.out_shape(fault.layer), np.array([neuron]))[0]
    if prot.scheme is Scheme.SPLIT:
        value = split_half(acc, shift)
    else:
        value = requantize(acc, shift, *layer.requant.bounds)
    return int(np.count_nonzero(apply_fault(value, fault.mask, fault.mode) != value))
