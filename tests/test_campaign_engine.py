"""Acceptance: the campaign engine against brute force (a full executor run with the fault present), fault by
fault and input by input, for the unprotected network and every protection scheme."""

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.campaign.engine import BackendKind, EvaluationSet, FaultEvaluator, How, value_at_site
from resilq.campaign.sampling import FaultModel, SlotKind, sample_faults
from resilq.faults import slot_owner
from resilq.ir import Executor

from factories import protect, random_model

SCHEMES = [None, Scheme.SPLIT, Scheme.TMR, Scheme.DUP_AND, Scheme.DUP_MIN]
FAULT_MODELS = ["single-bit", "multi-bit:3", "stuck-at-0", "stuck-at-1"]


def _data(model, rng, n=40):
    x = model.quantize_input(rng.random((n, *model.input.shape), dtype=np.float32))
    return EvaluationSet(x, rng.integers(0, model.n_classes, n))


def _network(rng, scheme):
    model = random_model(rng)
    return model if scheme is None else protect(model, rng, scheme, 0.35)


def _brute_force(model, data, faults):
    executor = Executor(model)
    return np.stack([executor.run(data.x, faults=[f]).predictions for f in faults])


@pytest.mark.parametrize("backend", list(BackendKind), ids=lambda b: b.value)
@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: "none" if s is None else s.label)
def test_engine_equals_brute_force(scheme, backend):
    rng = np.random.default_rng(100 + (0 if scheme is None else int(scheme)))
    model = _network(rng, scheme)
    data = _data(model, rng)
    evaluator = FaultEvaluator(model, data, backend)
    faults = []
    for k, fm in enumerate(FAULT_MODELS):
        sample = sample_faults(model, FaultModel.parse(fm), n=200 if fm == "single-bit" else 60, seed=k)
        faults += sample.faults()
    pred, masked = evaluator.predictions(faults)
    expected = _brute_force(model, data, faults)
    assert np.array_equal(pred, expected)
    assert np.array_equal(evaluator.golden.predictions, Executor(model).run(data.x).predictions)
    # the outcome summaries agree with the predictions
    out = evaluator.evaluate(faults[:50])
    assert np.array_equal(out.changed, (expected[:50] != evaluator.golden.predictions).sum(1))
    assert np.array_equal(out.correct, (expected[:50] == data.labels).sum(1))
    if scheme is Scheme.TMR:  # every single fault on a TMR neuron is outvoted: decided without propagation
        sample = sample_faults(model, n=300, seed=9)
        hits_protected = sample.kind != SlotKind.NEURON
        assert hits_protected.any()
        assert np.all(evaluator.masked(sample.faults(np.flatnonzero(hits_protected))))
    if scheme is None:  # a bit flip always changes the byte it hits: nothing is masked at the site
        assert not masked[:200].any()
    if scheme in (Scheme.SPLIT, Scheme.DUP_AND):  # the AND masks some flips, value-dependently
        assert 0 < masked[:200].sum() < 200


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: "none" if s is None else s.label)
def test_value_at_site_is_what_the_executor_writes(scheme, rng):
    """The skip decision reads golden values only; check the value it predicts against the executor's output."""
    model = _network(rng, scheme)
    data = _data(model, rng, n=16)
    evaluator = FaultEvaluator(model, data)
    executor = Executor(model)
    for fault in sample_faults(model, FaultModel.parse("single-bit"), n=80, seed=2).faults():
        neuron, _ = slot_owner(model, fault.layer, fault.slot)
        golden = evaluator.golden.outputs[fault.layer][:, neuron]
        got = value_at_site(model, fault, golden)
        ran = executor.run(data.x, faults=[fault], collect=True).activations[fault.layer].reshape(len(data), -1)
        assert np.array_equal(got, ran[:, neuron])


def test_engine_on_trained_lenet(digits_lenet):
    """The same acceptance check on the trained LeNet-5 (real activations), unprotected, split and TMR."""
    rng = np.random.default_rng(5)
    base = digits_lenet.model
    test = digits_lenet.test.take(24)
    data = EvaluationSet.from_dataset(base, test)
    for scheme in (None, Scheme.SPLIT, Scheme.TMR):
        model = base if scheme is None else protect(base, rng, scheme, 0.05)
        faults = sample_faults(model, n=60, seed=1).faults()
        evaluator = FaultEvaluator(model, data)
        pred, _ = evaluator.predictions(faults)
        assert np.array_equal(pred, _brute_force(model, data, faults))


def test_outcome_how(rng):
    model = protect(random_model(rng), rng, Scheme.TMR, 0.5)
    data = _data(model, rng)
    sample = sample_faults(model, n=100, seed=0)
    out = FaultEvaluator(model, data).evaluate(sample.faults())
    assert set(out.how.tolist()) <= {How.PROPAGATED, How.MASKED}
    assert np.all(out.how[sample.kind != SlotKind.NEURON] == How.MASKED)
    assert np.all(out.changed[out.how == How.MASKED] == 0)
