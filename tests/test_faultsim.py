"""The fault-propagation core against the bit-true executor: every fault mode, every scheme, shadow slots."""

import numpy as np
import pytest

from resilq.arith import MAX_SHIFT, FaultMode, Scheme, correct, requantize, split_half
from resilq.errors import ParameterError
from resilq.faults import Fault, shadow_slot
from resilq.faultsim import FaultSimulator, OutputMap, Propagator, steps
from resilq.ir import Executor, MaxPool2d, Protection

from factories import protect, random_model
from faultsim_models import deep_model


def _faults(model, rng, per_layer=None):
    """Random faults of every mode on every slot (shadows included), plus a random bit flip per slot."""
    faults = []
    for i in model.neuron_layers:
        slots = range(model.slots_in(i)) if per_layer is None else rng.choice(model.slots_in(i), per_layer)
        for s in slots:
            faults.append(Fault(i, int(s), int(rng.integers(1, 256)), FaultMode(int(rng.integers(0, 3)))))
            faults.append(Fault.bit_flip(i, int(s), int(rng.integers(0, 8))))
    return faults


def _assert_matches_executor(model, x, faults, **kwargs):
    sim = FaultSimulator(model, x, **kwargs)
    ex = Executor(model)
    assert np.array_equal(sim.golden, ex.run(x).predictions)
    got = sim.predictions(faults)
    want = np.stack([ex.run(x, faults=[f]).predictions for f in faults])
    assert got.shape == (len(faults), x.shape[0])
    assert np.array_equal(got, want), np.argwhere(got != want)[:5]
    assert np.array_equal(sim.changed(faults), want != sim.golden[None, :])
    flips = (want != sim.golden[None, :])
    assert 20 <= flips.sum() < 0.9 * flips.size, flips.sum()  # if nothing (or everything) changed, it proves nothing
    return sim


@pytest.fixture
def images(rng):
    return rng.random((24, 1, 12, 12), dtype=np.float32)


# ------------------------------------------------------------------------------------------ output map
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_map_is_the_requantizer(dtype):
    """The float twin equals arith.requantize on every tie, sign and saturation edge, for every shift."""
    for shift in range(MAX_SHIFT + 1):
        step = 1 << shift
        centers = np.array([0, 1, 2, 3, 63, 64, 126, 127, 128, 129, 200, -1, -2, -63, -64, -127, -128, -129, -200])
        acc = (centers[:, None] * step + np.array([-step // 2 - 1, -step // 2, -step // 2 + 1, -1, 0, 1,
                                                    step // 2 - 1, step // 2, step // 2 + 1])[None, :]).ravel()
        limit = 2**24 if dtype is np.float32 else 2**31
        acc = acc[np.abs(acc) < limit].astype(np.int64)
        for lo, hi in [(-128, 127), (0, 127)]:
            want = requantize(acc, shift, lo, hi)
            factor = np.full(acc.size, 2.0**-shift, dtype=dtype)
            omap = OutputMap(factor, np.full(acc.size, lo, dtype), np.full(acc.size, hi, dtype), np.ones(acc.size, dtype), dtype)
            got = omap(acc.astype(dtype)[None, :])[0]
            assert np.array_equal(got, want.astype(dtype)), (shift, lo)
        if shift < MAX_SHIFT:  # split: the LCU of two fault-free halves is 2 * split_half
            h = split_half(acc, shift)
            want = correct(Scheme.SPLIT, [h, h])
            factor = np.full(acc.size, 2.0 ** -(shift + 1), dtype=dtype)
            omap = OutputMap(factor, np.zeros(acc.size, dtype), np.full(acc.size, 63, dtype), np.full(acc.size, 2, dtype), dtype)
            assert np.array_equal(omap(acc.astype(dtype)[None, :])[0], want.astype(dtype)), shift


# ------------------------------------------------------------------------------------------ vs executor
def test_unprotected_random_model_every_slot(rng, images):
    model = random_model(rng, images)
    _assert_matches_executor(model, model.quantize_input(images), _faults(model, rng))


@pytest.mark.parametrize("scheme", list(Scheme), ids=lambda s: s.label)
def test_protected_models_every_slot_including_shadows(rng, images, scheme):
    model = protect(random_model(rng, images), rng, scheme, fraction=0.4)
    faults = _faults(model, rng)
    shadows = [f for f in faults if f.slot >= model.neurons_in(f.layer)]
    assert shadows  # the population includes every shadow slot
    _assert_matches_executor(model, model.quantize_input(images), faults, batch_size=10)


@pytest.mark.parametrize("variant", [dict(), dict(overlap=True), dict(relu_fc=False), dict(requant_classifier=True),
                                     dict(conv3="pooled"), dict(conv3="strided", overlap=True)],
                         ids=["fused-pools", "overlapping-pool", "no-relu-fc", "requant-classifier", "wide-conv-pool",
                              "wide-conv-strided"])
@pytest.mark.parametrize("unroll", [True, False], ids=["unrolled-small-maps", "patch-conv"])
def test_deep_models(rng, variant, unroll, monkeypatch):
    if not unroll:  # every conv step convolves its wide changes over the patch (no unrolled matrix)
        monkeypatch.setattr(steps, "UNROLL_BYTES", 0)
    imgs = rng.random((20, 2, 14, 14), dtype=np.float32)
    model = deep_model(rng, imgs, **variant)
    _assert_matches_executor(model, model.quantize_input(imgs), _faults(model, rng, per_layer=40))


@pytest.mark.parametrize("scheme", list(Scheme), ids=lambda s: s.label)
def test_deep_protected_shadow_slots(rng, scheme):
    imgs = rng.random((16, 2, 14, 14), dtype=np.float32)
    model = protect(deep_model(rng, imgs, relu_fc=True), rng, scheme, fraction=0.3)
    faults = _faults(model, rng, per_layer=30)
    for i in model.neuron_layers:  # every copy of one protected neuron, every bit
        prot = model.protection(i)
        if prot is not None:
            for copy in range(1, prot.copies):
                faults += [Fault.bit_flip(i, shadow_slot(model, i, 0, copy), b) for b in range(8)]
            faults += [Fault.bit_flip(i, int(prot.neurons[0]), b) for b in range(8)]
    _assert_matches_executor(model, model.quantize_input(imgs), faults)


@pytest.mark.parametrize("unroll", [True, False], ids=["unrolled-small-maps", "patch-conv"])
@pytest.mark.parametrize("conv3", [None, "pooled", "strided"])
def test_bounds_do_not_change_results(rng, conv3, unroll, monkeypatch):
    if not unroll:
        monkeypatch.setattr(steps, "UNROLL_BYTES", 0)
    imgs = rng.random((20, 2, 14, 14), dtype=np.float32)
    model = deep_model(rng, imgs, conv3=conv3)
    x = model.quantize_input(imgs)
    faults = _faults(model, rng, per_layer=60)
    a = FaultSimulator(model, x)
    b = FaultSimulator(model, x)
    a.propagator.use_bounds, b.propagator.use_bounds = True, False
    assert np.array_equal(a.predictions(faults), b.predictions(faults))
    assert a.propagator.stats.counts["proven by bounds"] > 0


# ------------------------------------------------------------------------------------------ value level
def test_value_level_api_matches_faults(rng, images):
    """"Neuron n outputs v" equals the flip fault whose mask is golden XOR v."""
    model = random_model(rng, images)
    x = model.quantize_input(images)
    sim = FaultSimulator(model, x)
    acts = Executor(model).run(x, collect=True).activations
    ex = Executor(model)
    for layer in model.neuron_layers:
        n_out = model.out_size(layer)
        neuron = rng.integers(0, n_out, 30)
        xi = rng.integers(0, x.shape[0], 30)
        value = rng.integers(-128, 128, 30)
        got = sim.top1_values(layer, neuron, xi, value)
        golden = acts[layer].reshape(x.shape[0], -1)[xi, neuron].astype(np.int64)
        for k in range(30):
            mask = int((golden[k] ^ value[k]) & 0xFF)
            faults = [Fault(layer, int(neuron[k]), mask, FaultMode.FLIP)] if mask else []
            assert got[k] == ex.run(x[xi[k]:xi[k] + 1], faults=faults).predictions[0]


def test_interval_bounds_are_sound(rng):
    """Whenever the bound says "safe", every value in the box leaves the top-1 unchanged (checked exhaustively)."""
    imgs = rng.random((30, 2, 14, 14), dtype=np.float32)
    model = deep_model(rng, imgs)
    x = model.quantize_input(imgs)
    prop = Propagator(model)
    golden = prop.golden(x)
    proven = 0
    for layer in (1, 3, 5, 6):  # pool1, pool2, fc1, fc2 outputs
        size = golden.out[layer].shape[1]
        for pos in rng.choice(size, 6, replace=False):
            g = golden.out[layer][:, pos]
            lo_v, hi_v = (0, 127) if layer != 5 else (-128, 127)
            a, b = rng.integers(lo_v, hi_v + 1, (2, x.shape[0]))
            lo, hi = np.minimum(a, b).astype(np.float32), np.maximum(a, b).astype(np.float32)
            ok = prop.safe(golden, layer, np.array([pos]), np.arange(x.shape[0]), lo[:, None], hi[:, None])
            proven += ok.sum()
            for xi in np.flatnonzero(ok):
                vals = np.arange(lo[xi], hi[xi] + 1)
                top = prop.top1(golden, layer, np.full(vals.size, pos), np.full(vals.size, xi), vals)
                assert np.all(top == golden.top1[xi]), (layer, pos, xi)
            assert g is not None
    assert proven > 20


# ------------------------------------------------------------------------------------------ errors
def test_empty_input_set_is_refused(rng, images):
    model = random_model(rng, images)
    with pytest.raises(ParameterError, match="at least one input"):
        FaultSimulator(model, model.quantize_input(images)[:0])


def test_bad_fault_and_value_arguments(rng, images):
    model = random_model(rng, images)
    sim = FaultSimulator(model, model.quantize_input(images))
    with pytest.raises(ValueError, match="outside layer"):
        sim.predictions([Fault(0, 10**6)])
    with pytest.raises(ParameterError, match="not a neuron layer"):
        sim.top1_values(1, [0], [0], [5])
    with pytest.raises(ParameterError, match="int8"):
        sim.top1_values(0, [0], [0], [300])


def test_protection_of_unprotected_copy_unused(rng, images):
    """A Protection object with no neurons behaves as no protection."""
    model = random_model(rng, images)
    empty = model.with_protection({0: Protection(Scheme.TMR, np.zeros(0, dtype=np.int32))})
    x = model.quantize_input(images)
    faults = _faults(model, rng, per_layer=20)
    assert np.array_equal(FaultSimulator(empty, x).predictions(faults), FaultSimulator(model, x).predictions(faults))


def test_faultsim_imports_numpy_only():
    """The core must run next to the driver on the board: no torch, scipy or matplotlib."""
    import subprocess
    import sys

    code = ("import sys, resilq.faultsim; bad = [m for m in ('torch', 'scipy', 'matplotlib', 'brevitas', 'sklearn') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_golden_bytes_per_input_is_what_a_golden_holds(rng):
    """The cache's estimate of one input's golden tensors is their size: every tensor of a Golden, every
    pool's window maxima included, divided by its inputs."""
    from resilq.faultsim.simulator import golden_bytes_per_input

    model = random_model(rng)
    x = rng.integers(-128, 128, size=(7, 1, 12, 12), dtype=np.int8)
    golden = Propagator(model).golden(x)
    for i, layer in enumerate(model.layers):
        if isinstance(layer, MaxPool2d):
            golden.others_max(i)
    held = sum(a.nbytes for d in (golden.out, golden.acc, golden._others) for a in d.values())
    assert any(isinstance(layer, MaxPool2d) for layer in model.layers)
    assert golden_bytes_per_input(model) * 7 == held


def test_golden_chunks_beyond_the_cache_are_recomputed_with_the_same_results(rng):
    """A set larger than the golden cache keeps its first chunks and recomputes the others per call; the
    predictions are those of the executor either way, and uncached_inputs counts what is recomputed."""
    from resilq.faultsim.simulator import golden_bytes_per_input, uncached_inputs

    model = random_model(rng)
    x = rng.integers(-128, 128, size=(40, 1, 12, 12), dtype=np.int8)
    per_input = golden_bytes_per_input(model)
    sim = _assert_matches_executor(model, x, _faults(model, rng, per_layer=3), batch_size=10,
                                   cache_bytes=25 * per_input)
    assert sorted(sim._cache) == [0, 1]  # two whole chunks of 10 fit 25 inputs' worth
    assert uncached_inputs(model, 40) == 0  # the default cache holds them all
    assert uncached_inputs(model, 10_000, cache_bytes=25 * per_input) > 0


def test_golden_chunks_beyond_the_cache_spill_to_disk_and_are_read_back(rng, tmp_path, monkeypatch):
    """With a spill folder the uncached chunks are computed once, written, and read back on later calls (and
    by another simulator on the same folder) instead of recomputed; results are the executor's either way.
    A chunk file that fails its check (shape, dtype, or outputs that do not follow from the accumulators) is
    recomputed; another input set gets its own folder."""
    from resilq.faultsim.simulator import golden_bytes_per_input

    model = random_model(rng)
    x = rng.integers(-128, 128, size=(40, 1, 12, 12), dtype=np.int8)
    kw = dict(batch_size=10, cache_bytes=25 * golden_bytes_per_input(model), spill_dir=tmp_path)
    faults = _faults(model, rng, per_layer=3)
    sim = _assert_matches_executor(model, x, faults, **kw)
    folders = list(tmp_path.iterdir())
    chunks = [f"chunk-{c:05d}" for c in range(4)]
    claims = [f"claim-{c:05d}" for c in range(4)]
    assert len(folders) == 1 and sorted(p.name for p in folders[0].iterdir()) == chunks + claims

    computed = []
    real = Propagator.golden
    monkeypatch.setattr(Propagator, "golden", lambda self, xs, ex=None: computed.append(len(xs)) or real(self, xs, ex))
    again = FaultSimulator(model, x, **kw)
    assert computed == []  # every chunk read back, the cached ones included
    assert np.array_equal(again.predictions(faults), sim.predictions(faults)) and computed == []

    acc = next(folders[0].glob("chunk-00003/acc-*.npy"))
    np.save(acc, np.load(acc) + 1)  # right shape and dtype, wrong numbers: the self-check refuses it
    out = next(folders[0].glob("chunk-00002/out-*.npy"))
    np.save(out, np.load(out)[:3])  # wrong shape
    assert np.array_equal(again.predictions(faults), sim.predictions(faults))
    assert computed == [10, 10]  # both recomputed (and rewritten), once
    assert np.array_equal(again.predictions(faults), sim.predictions(faults)) and len(computed) == 2

    FaultSimulator(model, x[::-1].copy(), **kw)
    assert len(list(tmp_path.iterdir())) == 2


def test_workers_sharing_a_spill_compute_each_chunk_once_and_survive_stale_claims(rng, tmp_path, monkeypatch):
    """A chunk another worker has claimed is visited last and read back once written; one it claimed and never
    wrote (the worker died) is computed here all the same: claims order the work, they never decide results."""
    from resilq.faultsim.simulator import golden_bytes_per_input

    model = random_model(rng)
    x = rng.integers(-128, 128, size=(40, 1, 12, 12), dtype=np.int8)
    kw = dict(batch_size=10, cache_bytes=15 * golden_bytes_per_input(model), spill_dir=tmp_path)
    from resilq.faultsim.spill import GoldenSpill

    spill = GoldenSpill(tmp_path, model, x, 10)
    assert spill.claim(0) and not spill.claim(0)  # exclusive
    assert spill.claim(2)  # "another worker" holds chunks 0 and 2 and has written neither
    computed = []
    real = Propagator.golden
    which = lambda xs: next(c for c in range(4) if np.array_equal(x[10 * c:10 * c + 10], xs))  # noqa: E731
    monkeypatch.setattr(Propagator, "golden", lambda self, xs, ex=None: computed.append(which(xs)) or
                        real(self, xs, ex))
    sim = FaultSimulator(model, x, **kw)
    assert computed == [1, 3, 0, 2]  # its own claims first, the stale ones last
    assert all(spill.has(c) for c in range(4))
    faults = _faults(model, rng, per_layer=2)
    got = sim.predictions(faults)
    ex = Executor(model)
    for f, row in zip(faults, got):
        assert np.array_equal(row, ex.run(x, [f]).predictions)
    assert computed == [1, 3, 0, 2]  # and nothing computed again: cached or read back


def test_campaign_chunk_grows_when_the_golden_tensors_exceed_the_cache():
    from resilq.campaign.runner import BASE_CHUNK, MAX_CHUNK, chunk_for_campaign
    from resilq.faultsim.simulator import DEFAULT_CACHE_BYTES, golden_bytes_per_input

    model = random_model(np.random.default_rng(1))
    fits = DEFAULT_CACHE_BYTES // golden_bytes_per_input(model)
    assert chunk_for_campaign(model, 100) == BASE_CHUNK
    assert BASE_CHUNK < chunk_for_campaign(model, 4 * fits) <= MAX_CHUNK
    assert chunk_for_campaign(model, 4 * fits) <= chunk_for_campaign(model, 8 * fits)
    assert chunk_for_campaign(model, 10_000 * fits) == MAX_CHUNK
