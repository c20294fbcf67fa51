"""Fault kinds (SPEC §7): lane, weight and BER descriptors, validated, with one meaning in the executor
(checked against the loop reference of tests/factories.py) and the fault simulator (checked fault by fault
and input by input against the executor), on an unprotected network and on every protection scheme."""

import numpy as np
import pytest

from resilq.arith import FaultMode, Scheme
from resilq.errors import ParameterError
from resilq.fault_kinds import (
    BerFault,
    LaneFault,
    WeightFault,
    bias_bits,
    faulty_model,
    n_weight_bits,
    resolve,
    weight_fault_at,
)
from resilq.faults import Fault
from resilq.faultsim import FaultSimulator
from resilq.hls.mapping import slot_lanes
from resilq.ir import Executor

from factories import protect, random_model, reference_run

SCHEMES = [None, Scheme.SPLIT, Scheme.TMR, Scheme.DUP_AND, Scheme.DUP_MIN]


@pytest.fixture(scope="module")
def base():
    rng = np.random.default_rng(11)
    model = random_model(rng, channels=(5, 6), hidden=12)
    x = model.quantize_input(rng.random((24, 1, 12, 12), dtype=np.float32))
    return model, x


def _model(base, scheme):
    model, x = base
    if scheme is None:
        return model, x
    return protect(model, np.random.default_rng(int(scheme)), scheme, 0.4), x


def _kinds(model, rng):
    """Faults of every kind: lanes of every layer and of all layers, weights and biases of every compute
    layer (classifier included), BER over outputs (per run and per inference), weights and both."""
    faults = []
    for pe in (2, 4):
        for lane in range(pe):
            for layer in list(model.neuron_layers) + [None]:
                faults.append(LaneFault(lane, layer, 1 << int(rng.integers(8)), FaultMode.FLIP, pe))
    faults.append(LaneFault(1, model.neuron_layers[0], 0x60, FaultMode.STUCK_AT_1, 2))
    faults.append(LaneFault(0, model.neuron_layers[1], 0x81, FaultMode.STUCK_AT_0, 4))
    for i, layer in enumerate(model.layers):
        if hasattr(layer, "weight"):
            for _ in range(3):
                faults.append(WeightFault(i, int(rng.integers(layer.out_channels)), int(rng.integers(layer.fan_in)),
                                          int(rng.integers(8))))
            faults.append(WeightFault(i, int(rng.integers(layer.out_channels)), None, int(rng.integers(24))))
    faults += [BerFault(2e-2, "outputs", 1, "run"), BerFault(1e-2, "outputs", 2, "inference"),
               BerFault(2e-3, "weights", 3), BerFault(5e-3, "both", 4)]
    return faults


# ---------------------------------------------------------------------------------------------- executor
@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: "none" if s is None else s.label)
def test_executor_lane_and_weight_faults_match_the_loop_reference(base, scheme):
    model, x = _model(base, scheme)
    ex = Executor(model)
    rng = np.random.default_rng(5)
    x = x[:6]
    for pe, units in ((2, 0), (4, 0), (2, 2), (4, 2), (4, 3)):
        for lane in range(pe + units):
            layer = model.neuron_layers[lane % len(model.neuron_layers)]
            fault = LaneFault(lane, layer, 0x41, FaultMode.FLIP, pe, units)
            # Independent oracle of the accelerator mapping: channel c runs on lane c % PE; at a (tile, position)
            # whose protected neurons need at most `units` shadow values, shadow j of the r-th of them (by lane) on
            # shadow lane PE + r * (copies - 1) + j - 1, elsewhere on lane (c + j) % PE (hls/include/resilq/conv.hpp).
            shape = model.out_shape(layer)
            per_channel = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            lanes = np.arange(model.neurons_in(layer)) // per_channel % pe
            prot = model.protection(layer)
            if prot is not None:
                extra = prot.copies - 1
                groups: dict = {}
                for n in prot.neurons:
                    groups.setdefault((int(n) // per_channel // pe, int(n) % per_channel), []).append(int(n))
                shadow = []
                for n in prot.neurons:
                    mates = sorted(groups[(int(n) // per_channel // pe, int(n) % per_channel)],
                                   key=lambda m: m // per_channel % pe)
                    r = mates.index(int(n))
                    for j in range(1, prot.copies):
                        shadow.append(pe + r * extra + j - 1 if len(mates) * extra <= units
                                      else (int(n) // per_channel + j) % pe)
                lanes = np.concatenate([lanes, np.array(shadow, dtype=np.int64)])
            slots = np.flatnonzero(lanes == lane)
            assert np.array_equal(slots, fault.slots(model, layer))
            want = reference_run(model, x, [Fault(layer, int(s), 0x41) for s in slots])[-1]
            assert np.array_equal(ex.run(x, [fault]).logits, want)
    for i, layer in enumerate(model.layers):
        if hasattr(layer, "weight"):
            for fault in (WeightFault(i, int(rng.integers(layer.out_channels)), int(rng.integers(layer.fan_in)), 7),
                          WeightFault(i, 0, None, 20)):
                got = ex.run(x, [fault]).logits
                assert np.array_equal(got, reference_run(faulty_model(model, [fault]), x)[-1])


def test_weight_fault_flips_exactly_one_stored_bit(base):
    model, _ = base
    conv = model.layers[0]
    f = WeightFault(0, 2, 5, 7)
    w = faulty_model(model, [f]).layers[0].weight
    diff = np.argwhere(w != conv.weight)
    k = conv.kernel
    assert diff.tolist() == [[2, 5 // (k * k), 5 % (k * k) // k, 5 % k]]
    assert (int(w[tuple(diff[0])]) ^ int(conv.weight[tuple(diff[0])])) & 0xFF == 0x80
    b = faulty_model(model, [WeightFault(0, 1, None, 20)]).layers[0].bias
    assert int(b[1]) ^ int(conv.bias[1]) == 1 << 20
    # a bias bit whose flip could overflow the int32 accumulator is refused and outside the population
    with pytest.raises(ParameterError, match="overflow"):
        WeightFault(0, 1, None, 31).check(model)
    layers = [layer for layer in model.layers if hasattr(layer, "weight")]
    assert all(28 <= bias_bits(layer) <= 31 for layer in layers)
    # the enumeration of the stored bits covers every word and every allowed bit once
    total = n_weight_bits(model)
    assert total == sum(8 * layer.weight.size + bias_bits(layer) * layer.bias.size for layer in layers)
    assert weight_fault_at(model, 0) == WeightFault(0, 0, 0, 0)
    last = len(model.layers) - 1
    assert weight_fault_at(model, total - 1) == WeightFault(last, layers[-1].out_channels - 1, None,
                                                            bias_bits(layers[-1]) - 1)
    seen = {weight_fault_at(model, i) for i in range(0, total, 7)}
    assert len(seen) == len(range(0, total, 7))
    for f in seen:
        f.check(model)


def test_ber_draws_are_reproducible_and_per_inference_independent_of_batching(base):
    model, x = base
    f = BerFault(3e-2, "outputs", 9, "inference")
    a = f.output_masks(model, np.arange(10))
    b = f.output_masks(model, np.arange(5, 10))
    for layer in a:
        assert np.array_equal(a[layer][5:], b[layer])
        assert a[layer].any()
    ex = Executor(model)
    whole = ex.run(x, [f]).logits
    assert np.array_equal(whole, ex.run(x, [f], batch_size=7).logits)
    assert np.array_equal(whole[8:], ex.run(x[8:], [f], first_index=8).logits)
    per_run = resolve(model, [BerFault(3e-2, "outputs", 9, "run")]).faults
    assert per_run == resolve(model, [BerFault(3e-2, "outputs", 9, "run")]).faults and per_run
    assert not resolve(model, [BerFault(0.0, "both", 9)]).faults
    total_bits = 8 * model.n_slots
    many = resolve(model, [BerFault(0.25, "outputs", 1)]).faults
    flipped = sum(bin(f.mask).count("1") for f in many)
    assert abs(flipped - 0.25 * total_bits) < 5 * np.sqrt(total_bits * 0.25 * 0.75)


# ---------------------------------------------------------------------------------------------- engine
@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: "none" if s is None else s.label)
def test_fault_simulator_matches_executor_for_every_kind(base, scheme):
    model, x = _model(base, scheme)
    faults = _kinds(model, np.random.default_rng(3))
    sim = FaultSimulator(model, x, batch_size=10)  # several chunks: per-inference draws keep global indices
    got = sim.predictions(faults + [Fault.bit_flip(model.neuron_layers[0], 3, 6)])
    ex = Executor(model)
    for f, row in zip(faults, got):
        assert np.array_equal(row, ex.run(x, [f]).predictions), str(f)
    assert (got != sim.golden[None]).any()  # the faults do something


# ---------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("fault, message", [
    (LaneFault(12, None, 1, FaultMode.FLIP, 8), "lane must lie in 0..11"),
    (LaneFault(8, None, 1, FaultMode.FLIP, 8, 0), "lane must lie in 0..7"),
    (LaneFault(0, None, 1, FaultMode.FLIP, 8, 17), "shadow lanes must lie in 0..16"),
    (LaneFault(0, None, 1, FaultMode.FLIP, 6), "power of two"),
    (LaneFault(0, 1, 1, FaultMode.FLIP, 8), "not a neuron layer"),
    (LaneFault(0, 0, 0, FaultMode.FLIP, 8), "non-zero 8-bit"),
    (LaneFault(0, 0, 1, 3, 8), "unknown fault mode"),
    (WeightFault(1, 0, 0, 0), "holds no weights"),
    (WeightFault(0, 99, 0, 0), "channel 99"),
    (WeightFault(0, 0, 10**6, 0), "tap"),
    (WeightFault(0, 0, 0, 8), "bits 0..7"),
    (WeightFault(0, 0, None, 32), "bits 0..31"),
    (BerFault(1.5), "probability"),
    (BerFault(0.1, "neurons"), "sites"),
    (BerFault(0.1, "weights", 0, "inference"), "per-inference"),
    (BerFault(0.1, "outputs", 0, "image"), "per must be"),
])
def test_bad_descriptors_are_refused_by_name(base, fault, message):
    model, x = base
    with pytest.raises(ParameterError, match=message):
        fault.check(model)
    with pytest.raises(ParameterError, match=message):
        Executor(model).run(x[:2], [fault])


def test_lane_mapping_is_the_accelerator_mapping(base):
    model, _ = base
    prot = protect(model, np.random.default_rng(1), Scheme.TMR, 0.3)
    for i in prot.neuron_layers:
        lanes = slot_lanes(prot, i, 4)
        assert lanes.shape == (prot.slots_in(i),)
        assert set(lanes) <= set(range(4))
        lanes = slot_lanes(prot, i, 4, 2)
        assert set(lanes) <= set(range(6)) and set(lanes[prot.neurons_in(i):]) & {4, 5}


# ---------------------------------------------------------------------------------------------- deployed accelerator
@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: "none" if s is None else s.label)
def test_emulator_weight_upsets_match_the_executor(base, scheme):
    """Weight and bias upsets written into the DDR image: the emulated accelerator (decoding the image it is
    given, as the board's kernel reads it) equals the executor, and the image is restored after the run."""
    from resilq.deploy.driver import Accelerator
    from resilq.deploy.emulator import EmulatedAccelerator

    model, x = _model(base, scheme)
    x = x[:8]
    acc = Accelerator(EmulatedAccelerator(), model, batch=8)
    params = slice(min(acc.image.layer_offsets.values()), acc.image.inputs.offset)  # every parameter block
    clean = acc.image.buffer[params].copy()
    ex = Executor(model)
    rng = np.random.default_rng(2)
    faults = [BerFault(3e-3, "weights", 7)]
    for i, layer in enumerate(model.layers):
        if hasattr(layer, "weight"):
            faults.append(WeightFault(i, int(rng.integers(layer.out_channels)), int(rng.integers(layer.fan_in)),
                                      int(rng.integers(8))))
            faults.append(WeightFault(i, int(rng.integers(layer.out_channels)), None, int(rng.integers(28))))
    differs = 0
    for f in faults:
        want = ex.run(x, [f]).logits
        got = acc.run(x, f)
        assert np.array_equal(got.logits, want), str(f)
        assert np.array_equal(acc.image.buffer[params], clean)
        differs += not np.array_equal(want, ex.run(x).logits)
    assert differs
    lane = LaneFault(0, None, 1, FaultMode.FLIP, 8)  # through the registers (FI_CTRL.KIND), not the image
    assert np.array_equal(acc.run(x, lane).logits, ex.run(x, [lane]).logits)
    ber = BerFault(1e-2, "outputs")  # an upset list per image (FI_CTRL.UPSETS, tests/test_hls_upsets.py)
    assert np.array_equal(acc.run(x, ber).logits, ex.run(x, [ber]).logits)


def test_per_inference_ber_in_a_single_neuron_layer_goes_through_the_change_map():
    """With one neuron layer a per-inference BER draw is a one-layer change: the engine's change-map path
    with per-input masks, across chunks, equals the executor."""
    from resilq.arith import Scheme
    from resilq.ir import Flatten, InputQuant, Linear, Model, Protection, Requant

    rng = np.random.default_rng(0)
    w1, b1 = rng.integers(-50, 50, (16, 16)).astype(np.int8), rng.integers(-100, 100, 16).astype(np.int32)
    w2 = rng.integers(-50, 50, (4, 16)).astype(np.int8)
    model = Model(InputQuant((1, 4, 4), 7), (Flatten("f"), Linear("fc1", w1, b1, Requant(np.full(16, 6, np.int32), True)),
                                              Linear("fc2", w2, np.zeros(4, np.int32), None)))
    model = model.with_protection({1: Protection(Scheme.TMR, np.array([1, 5, 9], np.int32))})
    x = model.quantize_input(rng.random((30, 1, 4, 4), dtype=np.float32))
    sim = FaultSimulator(model, x, batch_size=7)
    faults = [BerFault(0.05, "outputs", s, "inference") for s in range(5)]
    got = sim.predictions(faults)
    ex = Executor(model)
    for f, row in zip(faults, got):
        assert np.array_equal(row, ex.run(x, [f]).predictions)
    assert (got != sim.golden[None]).any()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_faults_over_several_layers_run_layer_by_layer_and_equal_the_executor(base, scheme, monkeypatch):
    """Faults spanning several layers take the layer-by-layer path (inputs join at their first faulty layer,
    leave when their values are golden again, the change map goes exactly through the rest), never the whole
    executor: rare per-inference draws (most inputs clean, some hit only in a later layer), a lane in every
    layer, weights and outputs together, a run draw with one stuck-at beside it."""
    from resilq.faultsim import multi

    model, x = _model(base, scheme)
    faults = [BerFault(p, "outputs", s, "inference") for p, s in ((5e-5, 5), (1e-3, 6), (4e-3, 7))]
    faults += [LaneFault(1, None, 0x40, FaultMode.FLIP, 2), LaneFault(3, None, 0x81, FaultMode.STUCK_AT_1, 4),
               BerFault(3e-3, "both", 8), BerFault(1e-3, "weights", 9)]
    sim = FaultSimulator(model, x, batch_size=7)
    calls = []
    real = multi.several_layers
    monkeypatch.setattr(multi, "several_layers", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(Executor, "_run", lambda *a, **k: pytest.fail("the whole executor ran"))
    got = sim.predictions(faults)
    monkeypatch.undo()
    assert calls  # the multi-layer path was taken
    ex = Executor(model)
    for f, row in zip(faults, got):
        assert np.array_equal(row, ex.run(x, [f]).predictions), str(f)
    rare = resolve(model, [faults[0]]).row_masks(np.arange(x.shape[0]))
    hit = np.zeros(x.shape[0], dtype=bool)
    for m in rare.values():
        hit |= m.any(axis=1)
    assert 0 < hit.sum() < x.shape[0]  # the rare draw leaves some inputs clean and hits others


@pytest.mark.parametrize(("scatter", "rounds"), [(np.inf, 16), (0.0, 16), (np.inf, 0)],
                         ids=["scatter", "cone", "no-pairs"])
@pytest.mark.parametrize("share", [0.0, 1.0], ids=["dense", "sparse"])
@pytest.mark.parametrize("scheme", [None, Scheme.TMR, Scheme.SPLIT], ids=lambda s: "none" if s is None else s.label)
def test_the_change_map_between_faulty_layers_is_the_executor_s(base, scheme, share, scatter, rounds, monkeypatch):
    """Carried as whole outputs (share 0) or as change maps over the neurons a change can reach (share 1: the
    cone of the changed positions and every neuron a fault touches, max-pools over the windows that hold a
    change), the values handed on after the last faulty layer are the executor's there, input by input, and every
    input left out is golden there. Per-inference masks at a layer with golden inputs are evaluated at their
    (input, neuron) pairs and pooled pair by pair (``rounds``: up to 16 masks at one neuron; 0: never), and the
    change at a compute layer's input is summed from its fan-out table (``scatter``) or through the cone."""
    from resilq.faultsim import multi, pairs

    model, x = _model(base, scheme)
    monkeypatch.setattr(multi, "SPARSE_SHARE", share)
    monkeypatch.setattr(multi, "SCATTER_TERMS", scatter)  # input changes summed from the fan-out table, or not
    monkeypatch.setattr(pairs, "MAX_ROUNDS", rounds)  # per-input masks carried as (input, position) pairs, or not
    faults = [BerFault(p, "outputs", s, per) for p, s, per in ((3e-3, 1, "run"), (1e-3, 2, "inference"),
                                                               (5e-3, 3, "inference"))]
    faults.append(LaneFault(2, None, 0x10, FaultMode.FLIP, 4))
    sim = FaultSimulator(model, x, batch_size=x.shape[0])
    ex = Executor(model)
    clean = ex.run(x, collect=True).activations
    handed, checked = [], 0
    real = sim.propagator.exact
    monkeypatch.setattr(sim.propagator, "exact", lambda g, layer, pos, rows, vals: handed.append(
        (layer, pos, rows, vals)) or real(g, layer, pos, rows, vals))
    for f in faults:
        handed.clear()
        got = sim.predictions([f])[0]
        assert np.array_equal(got, ex.run(x, [f]).predictions), str(f)
        acts = ex.run(x, [f], collect=True).activations
        for layer, pos, rows, vals in handed:
            want = acts[layer].reshape(x.shape[0], -1)
            golden = clean[layer].reshape(x.shape[0], -1)
            assert np.array_equal(vals, want[rows][:, pos]), f"{f}: values handed on after layer {layer}"
            rest = np.setdiff1d(np.arange(x.shape[0]), rows)
            assert np.array_equal(want[rest], golden[rest]), f"{f}: an input left out is not golden"
            outside = np.setdiff1d(np.arange(want.shape[1]), pos)
            assert np.array_equal(want[rows][:, outside], golden[rows][:, outside]), f"{f}: a change outside the map"
            checked += rows.size
    assert checked, "some input must reach the propagator changed"


@pytest.mark.parametrize("scatter", [True, False, None], ids=["scatter", "cone", "no-table"])
def test_sparse_steps_equal_the_whole_layer(base, scatter, monkeypatch):
    """The change-map steps on their own: a max-pool over the windows holding a change, and a compute layer over
    the neurons the changed positions reach (their products summed one by one from the fan-out table, or the
    cone's matrix) plus the neurons faults touch, equal the whole layer computed by the executor (random change
    maps of a few positions, values anywhere in int8): the change map it returns is exactly where the layer
    differs from golden, with its values."""
    from resilq.faultsim import fanout, multi
    from resilq.ir.kernels import accumulate, maxpool

    model, x = _model(base, Scheme.TMR)
    monkeypatch.setattr(multi, "SPARSE_SHARE", 1.0)  # the cone however wide (the engine's cut-off is a speed choice)
    monkeypatch.setattr(multi, "SCATTER_TERMS", np.inf if scatter else 0.0)  # always / never from the fan-out table
    if scatter is None:  # a layer too large for a table: the cone built from the geometry
        monkeypatch.setattr(fanout, "MAX_ENTRIES", 0)
    sim = FaultSimulator(model, x, batch_size=x.shape[0])
    golden = sim._golden(0)
    ex = Executor(model)
    rng = np.random.default_rng(8)
    rows = np.sort(rng.choice(x.shape[0], size=9, replace=False))
    for _ in range(5):
        size = int(np.prod(model.out_shape(0)))
        positions = np.sort(rng.choice(size, size=4, replace=False))
        values = rng.integers(-128, 128, size=(rows.size, positions.size)).astype(np.int8)
        change = multi._Change(rows, positions, values)
        full = change.full(golden, 0).reshape((rows.size,) + tuple(model.out_shape(0)))
        pooled, got = multi._sparse_pool(golden, model, 1, change)
        assert pooled.size and np.array_equal(got, maxpool(model.layers[1], full).reshape(rows.size, -1)[:, pooled])
        # conv2 after the pool: its new outputs where the pooled change reaches, with a fault on one neuron
        pchange = multi._Change(rows, pooled, got)
        fault = Fault(2, 5, 0x24, FaultMode.FLIP)
        every = np.union1d(rows, [0, 1])
        new = multi._plain_compute(sim, golden, model, 2, pchange, every, [fault], None)
        pool_out = pchange.full(golden, 1).reshape((rows.size,) + tuple(model.in_shape(2)))
        xin = golden.out[1][every].astype(np.int8).reshape((every.size,) + tuple(model.in_shape(2)))
        xin[np.searchsorted(every, rows)] = pool_out
        want = ex._output(2, model.layers[2], accumulate(model.layers[2], xin, ex._weights[2]), [fault])
        want = want.reshape(every.size, -1)
        old = golden.out[2][every]
        differs = want != old
        assert differs.any() and new is not None
        assert np.array_equal(new.rows, every[differs.any(axis=1)])
        assert np.array_equal(new.full(golden, 2), want[differs.any(axis=1)])
        assert set(new.positions.tolist()) >= set(np.flatnonzero(differs.any(axis=0)).tolist())


def _documented_masks(model, f, rows):
    """The per-inference masks as docs/campaigns.md and ``BerFault`` describe them, bit by bit (draws 1 and 2)."""
    total = sum(model.slots_in(i) for i in model.neuron_layers)
    n_bits, block = 8 * total, 256
    flat = np.zeros((len(rows), total), np.uint8)
    for r, i in enumerate(rows):
        if f.draw == 1:
            rng = np.random.default_rng([f.seed, 1, int(i)])
            k = int(rng.binomial(n_bits, f.p))
            bits = rng.choice(n_bits, size=k, replace=False) if k else []
        else:
            b = int(i) // block
            rng = np.random.default_rng([f.seed, 3, b])
            lo, hi, site, bits = (int(i) - b * block) * n_bits, (int(i) - b * block + 1) * n_bits, -1, []
            while True:
                site += int(rng.geometric(f.p))
                if site >= hi:
                    break
                if site >= lo:
                    bits.append(site - lo)
        for bit in bits:
            flat[r, bit // 8] |= 1 << (bit % 8)
    return flat


@pytest.mark.parametrize("draw", [1, 2])
def test_per_inference_masks_are_the_documented_draws(base, draw):
    """Draw 1: a generator per input; draw 2 (the default): a generator per block of 256 inputs whose geometric
    gaps place the flips. Either way an input's masks depend on the seed and its index only (rows across a block
    boundary, in any order, repeated)."""
    model, _ = base
    f = BerFault(2e-3, "outputs", 4, "inference", draw)
    rows = np.array([3, 255, 256, 300, 3, 0, 511, 512])
    got = f.output_masks(model, rows)
    flat = np.concatenate([got[i] for i in model.neuron_layers], axis=1)
    assert np.array_equal(flat, _documented_masks(model, f, rows))
    assert flat.any() and np.array_equal(flat[0], flat[4])
    assert BerFault(2e-3, "outputs", 4, "inference").draw == 2


def test_draw_2_flips_each_bit_with_probability_p(base):
    model, _ = base
    p = 0.05
    got = BerFault(p, "outputs", 2, "inference").output_masks(model, np.arange(600))
    bits = np.concatenate([np.unpackbits(m, axis=1) for m in got.values()], axis=1).astype(np.float64)
    assert abs(bits.mean() - p) < 4 * np.sqrt(p * (1 - p) / bits.size)
    rows = bits.sum(axis=1)  # per input: binomial(n_bits, p)
    assert abs(rows.var() / (bits.shape[1] * p * (1 - p)) - 1) < 0.2
    assert not any(m.any() for m in BerFault(0.0, "outputs", 2, "inference").output_masks(model, np.arange(3)).values())
    assert all((m == 0xFF).all() for m in BerFault(1.0, "outputs", 2, "inference").output_masks(model, [7]).values())
    with pytest.raises(ParameterError, match="draw must be one of"):
        BerFault(p, "outputs", 2, "inference", 3).check(model)


@pytest.mark.parametrize("draw", [1, 2])
def test_per_inference_draws_engine_equals_executor(base, draw):
    model, x = _model(base, Scheme.TMR)
    faults = [BerFault(p, "outputs", s, "inference", draw) for p, s in ((1e-3, 1), (6e-3, 2))]
    got = FaultSimulator(model, x, batch_size=10).predictions(faults)
    ex = Executor(model)
    for f, row in zip(faults, got):
        assert np.array_equal(row, ex.run(x, [f], batch_size=7).predictions), str(f)
