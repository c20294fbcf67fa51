"""The executor applies a layer's output faults all at once where each has a slot of its own, and one by one, in
order, where several share a slot: either way every slot holds what the loop reference of tests/factories.py
computes (faults applied one after the other), originals and shadows, whole layers and column subsets."""

import numpy as np
import pytest

from resilq.arith import FaultMode, Scheme
from resilq.faults import Fault
from resilq.ir import Executor

from factories import protect, random_model, reference_run

SCHEMES = [None, Scheme.SPLIT, Scheme.TMR, Scheme.DUP_AND, Scheme.DUP_MIN]


@pytest.fixture(scope="module")
def base():
    rng = np.random.default_rng(5)
    model = random_model(rng, channels=(4, 5), hidden=10)
    x = model.quantize_input(rng.random((9, 1, 12, 12), dtype=np.float32))
    return model, x


def _faults(model, rng, shared: bool):
    faults = []
    for layer in model.neuron_layers:
        n = model.slots_in(layer)
        slots = rng.choice(n, size=min(n, 12), replace=False)
        if shared:  # the same slots again, with other masks and modes: the order of application matters
            slots = np.concatenate([slots, slots[:4], slots[:2]])
        for s in slots:
            faults.append(Fault(layer, int(s), int(rng.integers(1, 256)), FaultMode(int(rng.integers(3)))))
    return faults


@pytest.mark.parametrize("shared", [False, True], ids=["distinct", "shared"])
@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: "none" if s is None else s.label)
def test_faults_of_one_layer_together_equal_the_loop_reference(base, scheme, shared):
    model, x = base
    if scheme is not None:
        model = protect(model, np.random.default_rng(int(scheme)), scheme, 0.4)
    rng = np.random.default_rng(17 + int(shared))
    for _ in range(3):
        faults = _faults(model, rng, shared)
        got = Executor(model).run(x, faults, collect=True).activations
        want = reference_run(model, x, faults)
        for i in model.neuron_layers:
            assert np.array_equal(got[i].reshape(x.shape[0], -1), want[i].reshape(x.shape[0], -1)), i


@pytest.mark.parametrize("scheme", [None, Scheme.TMR, Scheme.SPLIT], ids=lambda s: "none" if s is None else s.label)
def test_faults_on_a_column_subset_equal_the_whole_layer(base, scheme):
    """``_finish(..., cols=)``: the faulty neurons' columns hold what the whole layer holds there; a fault on a
    neuron outside the columns is refused by name."""
    model, x = base
    if scheme is not None:
        model = protect(model, np.random.default_rng(int(scheme)), scheme, 0.4)
    ex = Executor(model)
    run = ex.run(x, accumulators=True)
    i = model.neuron_layers[0]
    layer = model.layers[i]
    acc = run.accumulators[i].astype(np.int64)
    faults = _faults(model, np.random.default_rng(3), True)
    faults = [f for f in faults if f.layer == i]
    whole = ex._finish(i, layer, acc, faults).reshape(x.shape[0], -1)
    n_out = model.out_size(i)
    prot = layer.protection
    touched = {f.slot for f in faults if f.slot < n_out}
    if prot is not None and prot.n_protected:
        touched |= {int(prot.neurons[(f.slot - n_out) // (prot.copies - 1)]) for f in faults if f.slot >= n_out}
    cols = np.array(sorted(touched | {0, n_out - 1}), dtype=np.int64)
    part = ex._finish(i, layer, acc.reshape(x.shape[0], -1)[:, cols], faults, cols=cols)
    assert np.array_equal(part, whole[:, cols])
    outside = np.setdiff1d(np.arange(n_out), cols)[0]
    with pytest.raises(ValueError, match=f"neuron {outside} carries a fault"):
        ex._finish(i, layer, acc.reshape(x.shape[0], -1)[:, cols], faults + [Fault(i, int(outside), 1)], cols=cols)
