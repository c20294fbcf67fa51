"""The vectorised executor against an independent loop-by-loop reference, with protection and faults."""

import numpy as np
import pytest

from resilq.arith import FaultMode, Scheme
from resilq.errors import ShapeError, UnsupportedModelError
from resilq.faults import Fault, global_to_local, shadow_slot, slot_owner
from resilq.ir import Executor, Protection, run

from factories import protect, random_model, reference_run


@pytest.fixture
def setup(rng):
    images = rng.random((24, 1, 12, 12), dtype=np.float32)
    model = random_model(rng, images)
    return model, model.quantize_input(images)


def _assert_same(model, x, faults=()):
    ours = run(model, x, faults=faults, collect=True).activations
    ref = reference_run(model, x, faults)
    for layer, a, b in zip(model.layers, ours, ref):
        assert a.shape == b.shape, layer.name
        assert np.array_equal(a.astype(np.int64), b.astype(np.int64)), layer.name


def test_activations_are_diverse(setup):
    """Guard against a degenerate test model (all zeros or all saturated)."""
    model, x = setup
    acts = run(model, x, collect=True).activations
    for i in model.neuron_layers:
        values = np.unique(acts[i])
        assert values.size > 20, (model.layers[i].name, values)


def test_fault_free_matches_reference(setup):
    _assert_same(*setup)


@pytest.mark.parametrize("mode", list(FaultMode))
def test_faults_match_reference(setup, rng, mode):
    model, x = setup
    for _ in range(6):
        layer = int(rng.choice(model.neuron_layers))
        fault = Fault(layer, int(rng.integers(model.slots_in(layer))), int(rng.integers(1, 256)), mode)
        _assert_same(model, x, [fault])


@pytest.mark.parametrize("scheme", list(Scheme))
def test_protected_networks_match_reference(setup, rng, scheme):
    model, x = setup
    hard = protect(model, rng, scheme)
    _assert_same(hard, x)
    for _ in range(12):
        layer = int(rng.choice(hard.neuron_layers))
        slot = int(rng.integers(hard.slots_in(layer)))
        _assert_same(hard, x, [Fault.bit_flip(layer, slot, int(rng.integers(8)))])


@pytest.mark.parametrize("scheme", [Scheme.TMR, Scheme.DUP_AND, Scheme.DUP_MIN])
def test_full_copy_schemes_are_transparent_without_faults(setup, rng, scheme):
    model, x = setup
    hard = protect(model, rng, scheme, fraction=0.5)
    a = run(model, x, collect=True).activations
    b = run(hard, x, collect=True).activations
    assert all(np.array_equal(p, q) for p, q in zip(a, b))


def test_tmr_masks_any_single_slot_fault(setup, rng):
    model, x = setup
    hard = protect(model, rng, Scheme.TMR, fraction=1.0)
    golden = run(hard, x).logits
    for layer in hard.neuron_layers:
        for slot in rng.choice(hard.slots_in(layer), size=10, replace=False):
            faulty = run(hard, x, faults=[Fault(layer, int(slot), 0xFF, FaultMode.FLIP)]).logits
            assert np.array_equal(faulty, golden)


def test_shadow_slot_addressing(setup, rng):
    model, _ = setup
    hard = protect(model, rng, Scheme.TMR)
    layer = hard.neuron_layers[0]
    prot = hard.protection(layer)
    for p in range(prot.n_protected):
        for copy in (1, 2):
            slot = shadow_slot(hard, layer, p, copy)
            assert slot_owner(hard, layer, slot) == (int(prot.neurons[p]), copy)
    assert hard.slots_in(layer) == hard.out_size(layer) + 2 * prot.n_protected
    layers, local = global_to_local(hard, np.arange(hard.n_slots))
    assert np.bincount(layers, minlength=len(hard.layers))[list(hard.neuron_layers)].tolist() == \
        [hard.slots_in(i) for i in hard.neuron_layers]
    assert local.min() == 0


def test_split_refused_on_a_layer_without_relu(rng):
    model = random_model(rng, relu_last_hidden=False)
    fc1 = model.layers.index(next(layer for layer in model.layers if layer.name == "fc1"))
    with pytest.raises(UnsupportedModelError, match="split.*non-negative"):
        model.with_protection({fc1: Protection(Scheme.SPLIT, np.array([0, 1], np.int32))})


def test_classifier_cannot_be_protected(setup):
    model, _ = setup
    with pytest.raises(UnsupportedModelError, match="classifier"):
        model.with_protection({len(model.layers) - 1: Protection(Scheme.TMR, np.array([0], np.int32))})


def test_bad_inputs_are_named(setup):
    model, x = setup
    with pytest.raises(ShapeError, match=r"expects \(N, 1, 12, 12\)"):
        run(model, np.zeros((2, 1, 28, 28), np.int8))
    with pytest.raises(ShapeError, match="int8 batch"):
        run(model, x.astype(np.float32))
    with pytest.raises(ShapeError, match=r"expects \(N, 1, 12, 12\)"):
        model.quantize_input(np.zeros((2, 3, 12, 12), np.float32))
    with pytest.raises(ValueError, match="not a neuron layer"):
        run(model, x, faults=[Fault(len(model.layers) - 1, 0)])
    with pytest.raises(ValueError, match="outside layer"):
        run(model, x, faults=[Fault(0, 10**6)])


def test_batching_does_not_change_results(setup):
    model, x = setup
    ex = Executor(model)
    assert np.array_equal(ex.run(x, batch_size=5).logits, ex.run(x, batch_size=1000).logits)


def test_accumulators_requantize_to_the_reference_outputs(setup):
    """``accumulators=True`` keeps every compute layer's integer sums (the fault simulator's golden run reads
    them): requantized they are the loop-by-loop reference's outputs, and the classifier's are its logits,
    whatever the batch size."""
    from resilq.arith import requantize

    model, x = setup
    ref = reference_run(model, x, ())
    got = Executor(model).run(x, batch_size=7, accumulators=True)
    assert sorted(got.accumulators) == [i for i, layer in enumerate(model.layers) if hasattr(layer, "weight")]
    for i, acc in got.accumulators.items():
        layer = model.layers[i]
        assert acc.dtype == np.int64 and acc.shape == ref[i].shape, layer.name
        if layer.requant is None:
            assert np.array_equal(acc, ref[i]), layer.name
        else:
            shift = layer.requant.shift.reshape((-1,) + (1,) * (acc.ndim - 2))
            assert np.array_equal(requantize(acc, shift, *layer.requant.bounds), ref[i]), layer.name
    assert Executor(model).run(x).accumulators is None


@pytest.mark.parametrize("kernel, stride, shape", [
    (2, 2, (3, 4, 24, 24)), (2, 2, (2, 3, 7, 9)), (3, 3, (2, 2, 10, 11)), (4, 4, (1, 2, 9, 8)), (1, 1, (1, 2, 3, 3)),
    (3, 2, (2, 2, 9, 9)), (2, 1, (2, 2, 5, 5)),
])
def test_maxpool_equals_the_window_loop(kernel, stride, shape):
    """Tiling pools (strided pairwise maxima) and overlapping ones (window view), odd sizes floored, against
    the loop over every window."""
    from resilq.ir import MaxPool2d
    from resilq.ir.kernels import maxpool

    x = np.random.default_rng(kernel * 10 + stride).integers(-128, 128, shape).astype(np.int8)
    n, c, h, w = shape
    ho, wo = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    want = np.empty((n, c, ho, wo), np.int8)
    for i in range(ho):
        for j in range(wo):
            want[:, :, i, j] = x[:, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel].max(axis=(2, 3))
    got = maxpool(MaxPool2d("pool", kernel, stride), x)
    assert got.dtype == np.int8 and got.flags.c_contiguous and np.array_equal(got, want)
