"""NVF analysis: exact NVF against brute force for EVERY neuron, the δ-range method, sampling, errors."""

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.errors import ParameterError, UnsupportedModelError
from resilq.faultsim import Propagator
from resilq.nvf import NVFResult
from resilq.nvf.bruteforce import brute_force_nvf
from resilq.nvf.deltarange import deltarange_nvf, first_change, line15
from resilq.nvf.exact import exact_nvf
from resilq.nvf.gradient import output_gradients

from factories import protect, random_model


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(11)
    images = rng.random((16, 1, 10, 10), dtype=np.float32)
    model = random_model(rng, images, shape=(1, 10, 10))
    return model, model.quantize_input(images)


def _assert_equal_nvf(a: NVFResult, b: NVFResult, model):
    assert a.network_hash == b.network_hash == model.network_hash
    for layer in model.neuron_layers:
        assert np.array_equal(a.values[layer], b.values[layer]), model.layers[layer].name


# ------------------------------------------------------------------------------------------ exact
@pytest.mark.parametrize("name", ["small", "deep"])
def test_exact_nvf_equals_brute_force_for_every_neuron(name, request):
    """Acceptance: flip every bit of every neuron, re-run the FULL executor, compare exactly."""
    model, x = request.getfixturevalue(name)
    fast = exact_nvf(model, x)
    slow = brute_force_nvf(model, x)
    _assert_equal_nvf(fast, slow, model)
    values = fast.all_values()
    assert np.isfinite(values).all() and values.max() > 0 and np.unique(values).size > 5


def test_parallel_jobs_and_bounds_give_identical_results(deep):
    model, x = deep
    one = exact_nvf(model, x)
    _assert_equal_nvf(exact_nvf(model, x, jobs=2), one, model)
    _assert_equal_nvf(exact_nvf(model, x, use_bounds=True), one, model)


def test_sampled_mode_visits_every_channel_and_is_exact_where_it_looks(deep):
    model, x = deep
    full = exact_nvf(model, x)
    part = exact_nvf(model, x, sample=0.25, seed=3)
    assert part.metadata["sample"] == 0.25
    for layer in model.neuron_layers:
        v, seen = part.values[layer], np.isfinite(part.values[layer])
        assert np.array_equal(v[seen], full.values[layer][seen])
        shape = model.out_shape(layer)
        per_channel = seen.reshape(shape[0], -1).sum(axis=1) if len(shape) == 3 else [seen.sum()]
        assert min(per_channel) >= 1
        assert seen.mean() < 0.6


# ------------------------------------------------------------------------------------------ δ-range
def test_line15_bit_mapping():
    """int(log2 r) + 1 for r_upper, int(log2 |r_lower|) for r_lower; a counter at bit j weighs (9 - j) / 8."""
    r_up = np.array([1, 5, 0, 64, 127, 0])
    r_low = np.array([1, 128, 2, 0, 3, 0])
    want = np.array([(8 / 8 + 0) / 2, (6 / 8 + 2 / 8) / 2, (0 + 8 / 8) / 2, (2 / 8 + 0) / 2, (2 / 8 + 8 / 8) / 2, 0])
    assert np.allclose(line15(r_up, r_low), want)


def test_first_change_equals_an_exhaustive_scan(deep):
    model, x = deep
    prop = Propagator(model)
    golden = prop.golden(x)
    rng = np.random.default_rng(0)
    for layer in model.neuron_layers:
        n = rng.integers(0, model.out_size(layer), 25)
        xi = rng.integers(0, x.shape[0], 25)
        v = golden.out[layer][xi, n].astype(np.int64)
        for direction in (+1, -1):
            got = first_change(prop, golden, layer, n, xi, v, direction)
            for k in range(n.size):
                dists = np.arange(1, (127 - v[k] if direction > 0 else v[k] + 128) + 1)
                if not dists.size:
                    assert got[k] == 0
                    continue
                top = prop.top1(golden, layer, np.full(dists.size, n[k]), np.full(dists.size, xi[k]), v[k] + direction * dists)
                hits = dists[top != golden.top1[xi[k]]]
                assert got[k] == (hits[0] if hits.size else 0), (layer, k, direction)


def test_gradient_filter_matches_torch_autograd(deep):
    """The numpy backward pass equals autograd on a float surrogate with straight-through requantizers."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from resilq.ir import Conv2d, Flatten, Linear, MaxPool2d

    model, x = deep
    prop = Propagator(model)
    golden = prop.golden(x)
    ours = output_gradients(model, golden)

    class Requant(torch.autograd.Function):
        @staticmethod
        def forward(ctx, acc, shift, lo, hi, relu):
            scale = torch.pow(2.0, -shift.double()).reshape((1, -1) + (1,) * (acc.dim() - 2))
            q = torch.round(acc * scale)
            ok = (q >= lo) & (q <= hi) & ((acc > 0) if relu else torch.ones_like(q, dtype=torch.bool))
            ctx.save_for_backward(ok * scale)
            return q.clamp(lo, hi)

        @staticmethod
        def backward(ctx, grad):
            (slope,) = ctx.saved_tensors
            return grad * slope, None, None, None, None

    h = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    outs = {}
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Conv2d):
            h = F.conv2d(h, torch.tensor(layer.weight, dtype=torch.float64), torch.tensor(layer.bias, dtype=torch.float64),
                         stride=layer.stride, padding=layer.padding)
        elif isinstance(layer, Linear):
            h = F.linear(h, torch.tensor(layer.weight, dtype=torch.float64), torch.tensor(layer.bias, dtype=torch.float64))
        elif isinstance(layer, MaxPool2d):
            h = F.max_pool2d(h, layer.kernel, layer.stride)
        elif isinstance(layer, Flatten):
            h = h.flatten(1)
        if isinstance(layer, (Conv2d, Linear)) and layer.requant is not None:
            h = Requant.apply(h, torch.tensor(layer.requant.shift), *layer.requant.bounds, layer.requant.relu)
        if i in model.neuron_layers:
            h.retain_grad()
            outs[i] = h
    top = torch.tensor(golden.top1)
    g = model.n_classes * h[torch.arange(h.shape[0]), top] - h.sum(dim=1)
    g.sum().backward()
    for i in model.neuron_layers:
        theirs = outs[i].grad.reshape(x.shape[0], -1).numpy()
        assert np.array_equal(theirs != 0, ours[i] != 0), model.layers[i].name
        assert np.allclose(theirs, ours[i])
    assert 0.05 < np.mean([np.mean(ours[i] != 0) for i in model.neuron_layers]) < 0.95


def test_deltarange_nvf_runs_and_counts_the_filter(deep):
    model, x = deep
    dr = deltarange_nvf(model, x)
    values = dr.all_values()
    assert dr.method == "deltarange" and np.isfinite(values).all()
    assert 0 <= values.min() and values.max() <= 1 and values.max() > 0
    assert 0 < dr.metadata["gradient_nonzero"] < 1
    assert dr.metadata["bit_mapping"] == "log2"


# ------------------------------------------------------------------------------------------ errors
def test_protected_model_is_refused(small):
    model, x = small
    protected = protect(model, np.random.default_rng(0), Scheme.TMR, 0.2)
    with pytest.raises(UnsupportedModelError, match="protected model; NVF is defined on the unprotected network"):
        exact_nvf(protected, x)


def test_empty_input_set_is_refused(small):
    model, x = small
    for analysis in (exact_nvf, deltarange_nvf):
        with pytest.raises(ParameterError, match="input set is empty"):
            analysis(model, x[:0])


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5])
def test_sample_fraction_out_of_range(small, bad):
    model, x = small
    with pytest.raises(ParameterError, match=r"sample fraction must lie in \(0, 1\]"):
        exact_nvf(model, x, sample=bad)


def test_jobs_must_be_positive(small):
    model, x = small
    with pytest.raises(ParameterError, match="--jobs must be at least 1"):
        exact_nvf(model, x, jobs=0)


@pytest.mark.slow
def test_lenet5_exact_nvf_equals_brute_force(digits_lenet):
    """The acceptance check on the real LeNet-5 (4,684 neurons x 8 bits x full executor runs)."""
    model = digits_lenet.model
    x = model.quantize_input(digits_lenet.test.images[:12])
    _assert_equal_nvf(exact_nvf(model, x), brute_force_nvf(model, x), model)
