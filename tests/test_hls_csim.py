"""The C-simulated accelerator as a device: registers, status codes, one-shot faults, random networks of
every scheme bit for bit against the executor, the cycle counter against the cycle model, other PE x
SIMD builds, and a network larger than the PYNQ-Z2's block RAM."""

from __future__ import annotations

import numpy as np
import pytest
from hls_support import CSIM, calibrated_model, protect_fraction
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from resilq.arith import FaultMode, Scheme
from resilq.faults import Fault
from resilq.hls import host
from resilq.hls import imageformat as fmt
from resilq.hls import regmap as rm
from resilq.hls.config import DEFAULT_CONFIG, AccelConfig
from resilq.hls.csim import CsimDevice, CsimError
from resilq.hls.cycles import cycle_report
from resilq.hls.imageformat import Status
from resilq.hls.packing import pack
from resilq.hls.reference import expected_corrections, expected_fi_hits
from resilq.hls.simulate import CsimAccelerator
from resilq.ir import Executor

pytestmark = CSIM

SMALL = [("conv", 5, 3, 1, 1), ("pool", 2, 2), ("conv", 11, 3, 2, 1), ("flatten",), ("fc", 20), ("head", 7)]
SCHEMES = [None, Scheme.SPLIT, Scheme.TMR, Scheme.DUP_AND, Scheme.DUP_MIN]


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(11)
    model = calibrated_model(rng, (3, 12, 12), SMALL, "small")
    x = model.quantize_input(rng.random((6, 3, 12, 12), dtype=np.float32))
    return model, x


def variant(model, scheme, seed=0, fraction=0.2):
    return model if scheme is None else protect_fraction(model, np.random.default_rng(seed), scheme, fraction)


def assert_same_layers(run, ref):
    """Every layer equal bit for bit: int8 activations, and the int32 logits (int64 accumulators in Python)."""
    assert len(run.activations) == len(ref.activations)
    for i, (got, want) in enumerate(zip(run.activations, ref.activations)):
        assert got.dtype == (np.int32 if want.dtype == np.int64 else want.dtype), f"layer {i} dtype {got.dtype}"
        assert np.array_equal(got, want), f"layer {i} differs in {np.count_nonzero(got != want)} values"


def test_probe_reports_version_and_configuration():
    dev = CsimDevice.open()
    info = host.probe(dev)
    assert info == host.HardwareInfo(rm.VERSION, DEFAULT_CONFIG.pe, DEFAULT_CONFIG.simd, DEFAULT_CONFIG.config_id,
                                   DEFAULT_CONFIG.shadow_units)
    host.check_hardware(info, DEFAULT_CONFIG)
    with pytest.raises(Exception, match="built as PE=8 SIMD=8"):
        host.check_hardware(info, AccelConfig(pe=16))


def test_control_register_semantics():
    dev = CsimDevice.open()
    host.start(dev, 0)
    ap = dev.read(rm.AP_CTRL.offset)
    assert rm.AP_CTRL.field("AP_DONE").get(ap) and rm.AP_CTRL.field("AP_IDLE").get(ap)
    assert not rm.AP_CTRL.field("AP_DONE").get(dev.read(rm.AP_CTRL.offset)), "AP_DONE is clear-on-read"
    assert dev.read(rm.VERSION_REG.valid_offset) == 1 and dev.read(rm.VERSION_REG.valid_offset) == 0
    dev.write(rm.VERSION_REG.offset, 99)  # read-only
    assert dev.read(rm.VERSION_REG.offset) == rm.VERSION
    dev.write(rm.CRIT_TABLE.offset + 8, 0x12345678)
    assert dev.read(rm.CRIT_TABLE.offset + 8) == 0x12345678


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.label if s else "none")
def test_random_network_bit_exact_with_cycles(small, scheme):
    model, x = small
    model = variant(model, scheme)
    acc = CsimAccelerator(model, batch=x.shape[0])
    run = acc.run(x)
    assert_same_layers(run, Executor(model).run(x, collect=True))
    report = cycle_report(model, DEFAULT_CONFIG, images=x.shape[0])
    assert list(run.profile) == [layer.total for layer in report.layers]
    assert run.cycles == report.run(x.shape[0])
    assert run.status.corrections == 0 and run.status.fi_hits == 0


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.label if s else "none")
def test_random_faults_match_the_executor(small, scheme):
    model, x = small
    model = variant(model, scheme, seed=1)
    acc, ex = CsimAccelerator(model, batch=x.shape[0]), Executor(model)
    rng = np.random.default_rng(2)
    shadow_hits = 0
    for _ in range(30):
        layer = int(rng.choice(model.neuron_layers))
        slot = int(rng.integers(model.slots_in(layer)))
        shadow_hits += slot >= model.neurons_in(layer)
        fault = Fault(layer, slot, int(rng.integers(1, 256)), FaultMode(int(rng.integers(3))))
        run = acc.run(x, fault=fault)
        assert_same_layers(run, ex.run(x, faults=[fault], collect=True))
        assert run.status.fi_hits == expected_fi_hits(fault, x.shape[0])
        assert run.status.corrections == expected_corrections(model, x, fault)
    assert scheme is None or shadow_hits > 0


def test_one_shot_fault_hits_only_the_first_inference(small):
    model, x = small
    model = variant(model, Scheme.TMR, seed=3)
    acc, ex = CsimAccelerator(model, batch=x.shape[0]), Executor(model)
    prot = model.protection(0)
    fault = Fault(0, int(prot.neurons[0]), 0x80, FaultMode.FLIP)  # the sign bit of a protected original slot
    unprotected = Fault(2, 0, 0xFF, FaultMode.FLIP) if model.protection(2) is None or 0 not in model.protection(2).neurons \
        else Fault(2, 1, 0xFF, FaultMode.FLIP)
    for f in (fault, unprotected):
        run = acc.run(x, fault=f, once=True)
        assert run.status.fi_hits == 1
        first = ex.run(x[:1], faults=[f], collect=True)
        rest = ex.run(x[1:], collect=True)
        for i, got in enumerate(run.activations):
            assert np.array_equal(got[:1], first.activations[i]) and np.array_equal(got[1:], rest.activations[i])
        assert run.status.corrections == expected_corrections(model, x, f, once=True)
    # the same token again: the one-shot has fired, nothing is injected
    host.set_fault(acc.device, fault, once=True, token=acc.device._resilq_fi_token)
    status = host.run(acc.device, x.shape[0])
    assert status.fi_hits == 0 and status.code is Status.OK


def test_status_codes(small):
    model, x = small
    acc = CsimAccelerator(model, batch=2)
    acc.run(x[:2])
    dev = acc.device
    # fault injection with a zero mask is refused before anything runs
    dev.write(rm.FI_CTRL.offset, 1)
    dev.write(rm.FI_MASK.offset, 0)
    assert host.run(dev, 1).code is Status.FAULT_CONFIG
    host.set_fault(dev, None)
    # a descriptor beyond this build's limits: the kernel refuses it and names the descriptor
    words = acc.image.buffer.view("<u4")
    d2 = words[words[fmt.HeaderWord.DESC_OFFSET] // 4 + 2 * fmt.DESC_WORDS:]  # conv2's descriptor
    saved = int(d2[fmt.DescWord.GEOMETRY])
    d2[fmt.DescWord.GEOMETRY] = fmt.geometry_word(13, 1, 0)
    status = host.run(dev, 1)
    assert (status.code, status.descriptor) == (Status.CAPACITY, 2)
    with pytest.raises(host.AcceleratorError, match=r"descriptor 2 \(layer 'conv2'\): CAPACITY"):
        status.check(acc.image)
    d2[fmt.DescWord.GEOMETRY] = saved
    # an image packed for another SIMD width
    words[fmt.HeaderWord.SIMD] = 16
    assert host.run(dev, 1).code is Status.SIMD_MISMATCH
    words[fmt.HeaderWord.SIMD] = DEFAULT_CONFIG.simd
    words[fmt.HeaderWord.MAGIC] ^= 1
    assert host.run(dev, 1).code is Status.BAD_MAGIC
    words[fmt.HeaderWord.MAGIC] ^= 1
    assert host.run(dev, 3).code is Status.BATCH_RANGE  # packed for 2 images
    assert host.run(dev, 1).code is Status.OK
    # an image claiming more bytes than the attached memory is refused by the bridge, not read past
    words[fmt.HeaderWord.IMAGE_BYTES] = acc.image.nbytes + 64
    with pytest.raises(CsimError, match="claims .* bytes, only .* are attached"):
        host.start(dev, 1)
    words[fmt.HeaderWord.IMAGE_BYTES] = acc.image.nbytes
    # a pointer outside the attached memory never starts the kernel
    host.write_pointers(dev, 0x100)
    with pytest.raises(CsimError, match="CTRL_MEM = 0x100 is not"):
        host.start(dev, 1)
    dev.memory = None  # force the next user to re-attach and rewrite the pointers


def test_unsorted_table_is_flagged(small):
    model, x = small
    model = variant(model, Scheme.DUP_AND, seed=4)
    acc = CsimAccelerator(model, batch=1)
    acc.run(x[:1])
    table = acc.image.table.copy()
    table[[0, 1]] = table[[1, 0]]
    host.write_table(acc.device, table)
    assert host.run(acc.device, 1).code is Status.TABLE_RANGE
    host.write_table(acc.device, acc.image.table)


@pytest.mark.parametrize("channels,kernel,pad,simd,taps,row_words", [
    (3, 5, 2, 8, 2, 3),   # 2 columns per word, the last word of a row holds 1
    (3, 3, 0, 8, 2, 2),   # AlexNet's first layer
    (2, 3, 1, 8, 3, 1),   # a whole row in one word
    (6, 5, 0, 16, 2, 3),  # LeNet-5's conv2 at SIMD 16
    (5, 3, 1, 8, 1, 3),   # 2 * 5 > 8: not packed
])
def test_kernel_columns_packed_into_the_simd_lanes(channels, kernel, pad, simd, taps, row_words):
    """Packing ``taps`` kernel columns per SIMD word (2 * C <= SIMD), the last word of a row partly filled:
    bit-exact against the executor at every layer (split and a fault too), cycles as modelled."""
    from resilq.hls.mapping import plan_model

    rng = np.random.default_rng(channels * 31 + kernel)
    config = AccelConfig(pe=4, simd=simd)
    model = calibrated_model(rng, (channels, 9, 11), [("conv", 5, kernel, 1, pad), ("conv", 6, kernel, 1, pad),
                                                      ("flatten",), ("head", 3)], "packed")
    plans = plan_model(model, config)
    assert (plans[0].packed, plans[0].taps, plans[0].row_words) == (taps > 1, taps, row_words)
    assert plans[0].mac_words == (kernel * row_words if taps > 1 else kernel * kernel)
    x = model.quantize_input(rng.random((5, channels, 9, 11), dtype=np.float32))
    for m in (model, protect_fraction(model, rng, Scheme.SPLIT, 0.2)):
        run = CsimAccelerator(m, config, batch=5).run(x)
        assert_same_layers(run, Executor(m).run(x, collect=True))
        assert run.cycles == cycle_report(m, config, images=5).total
    fault = Fault(0, 7, 0x20, FaultMode.FLIP)
    assert_same_layers(CsimAccelerator(m, config, batch=5).run(x, fault=fault),
                       Executor(m).run(x, faults=[fault], collect=True))


@pytest.mark.parametrize("pe,simd", [(4, 16), (16, 8), (16, 16)])
def test_other_builds_bit_exact_with_cycles(small, pe, simd):
    model, x = small
    config = AccelConfig(pe=pe, simd=simd)
    for scheme in (Scheme.SPLIT, Scheme.TMR):
        m = variant(model, scheme, seed=5)
        run = CsimAccelerator(m, config, batch=3).run(x[:3])
        assert_same_layers(run, Executor(m).run(x[:3], collect=True))
        report = cycle_report(m, config, images=3)
        assert list(run.profile) == [layer.total for layer in report.layers]
        assert run.cycles == report.run(3)


def test_network_larger_than_the_block_ram():
    """The zoo's AlexNet shape on 32x32x3 (2 MB of weights vs 612 KiB of BRAM), tiled through DDR."""
    spec = [("conv", 64, 3, 1, 0), ("pool", 2, 2), ("conv", 128, 3, 1, 1), ("pool", 2, 2), ("conv", 256, 3, 1, 1),
            ("pool", 2, 2), ("conv", 256, 3, 1, 1), ("conv", 128, 3, 1, 1), ("flatten",), ("fc", 512), ("fc", 256),
            ("head", 10)]
    rng = np.random.default_rng(8)
    model = calibrated_model(rng, (3, 32, 32), spec, "alexnet-shape")
    assert model.n_neurons == 103_168 and model.params() > 1_900_000
    model = protect_fraction(model, rng, Scheme.SPLIT, 0.006)
    x = model.quantize_input(rng.random((1, 3, 32, 32), dtype=np.float32))
    acc = CsimAccelerator(model, batch=1)
    run = acc.run(x, collect=False)
    assert np.array_equal(run.logits, Executor(model).run(x).logits)
    assert run.cycles == cycle_report(model, DEFAULT_CONFIG).run(1)
    image = pack(model, DEFAULT_CONFIG)
    assert image.nbytes > 1_900_000


@st.composite
def geometries(draw):
    """A conv (any kernel/stride/padding/channels, non-square maps), maybe a pool, a hidden linear, a head."""
    k = draw(st.integers(1, 5))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, k - 1))
    c_in, c_out = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    h, w = draw(st.integers(k, 13)), draw(st.integers(k, 13))
    specs = [("conv", c_out, k, stride, pad)]
    out_h, out_w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    if draw(st.booleans()) and min(out_h, out_w) >= 2:
        pool_stride = draw(st.integers(1, 2))
        specs.append(("pool", 2, pool_stride))
        out_h, out_w = (out_h - 2) // pool_stride + 1, (out_w - 2) // pool_stride + 1
    # the hidden linear reads the stored map (pixel-major, channels padded to 8): inside the default max_fanin
    assume(out_h * out_w * -(-c_out // 8) * 8 <= DEFAULT_CONFIG.max_fanin)
    specs += [("flatten",), ("fc", draw(st.integers(1, 40))), ("head", draw(st.integers(2, 12)))]
    scheme = draw(st.sampled_from(SCHEMES))
    return (c_in, h, w), specs, scheme, draw(st.floats(0.05, 1.0)), draw(st.integers(0, 2**31))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geometries())
# a strided 1x1 conv over a 1x1 map is not a batchable vector: as a 1 x chunk map its stride would skip images
@example(((1, 1, 1), [("conv", 1, 1, 2, 0), ("flatten",), ("fc", 1), ("head", 2)], None, 1.0, 0))
def test_any_geometry_bit_exact_with_cycles_and_a_fault(case):
    shape, specs, scheme, fraction, seed = case
    rng = np.random.default_rng(seed)
    model = calibrated_model(rng, shape, specs, "hypothesis")
    if scheme is not None:
        model = protect_fraction(model, rng, scheme, fraction)
    x = model.quantize_input(rng.random((2, *shape), dtype=np.float32))
    layer = int(rng.choice(model.neuron_layers))
    fault = Fault(layer, int(rng.integers(model.slots_in(layer))), int(rng.integers(1, 256)),
                  FaultMode(int(rng.integers(3))))
    acc = CsimAccelerator(model, batch=2)
    run = acc.run(x)
    assert_same_layers(run, Executor(model).run(x, collect=True))
    assert run.cycles == cycle_report(model, DEFAULT_CONFIG).run(2)
    run = acc.run(x, fault=fault)
    assert_same_layers(run, Executor(model).run(x, faults=[fault], collect=True))
    assert run.status.corrections == expected_corrections(model, x, fault)


def test_sources_compile_without_warnings():
    """-Wall -Wextra clean (the build log holds the command line and the compiler's diagnostics)."""
    log = (CsimDevice.open().lib_path.parent / "build.log").read_text().splitlines()
    assert "-Wall" in log[0] and "-Wextra" in log[0]
    assert [line for line in log[1:] if line.strip()] == []


@pytest.mark.parametrize("shape,spec,simd", [((1, 14, 14), ("conv", 6, 5, 1, 2), 8), ((2, 11, 9), ("conv", 9, 3, 2, 1), 8),
                                             ((3, 10, 10), ("conv", 12, 3, 1, 1), 16)],
                         ids=["1ch-5x5-pad2", "2ch-3x3-stride2", "3ch-3x3-simd16"])
@pytest.mark.parametrize("scheme", [Scheme.SPLIT, Scheme.TMR], ids=lambda s: s.label)
def test_packed_kernel_rows_bit_exact_with_cycles_and_a_fault(shape, spec, simd, scheme):
    """A conv with in_c * kernel <= SIMD runs one SIMD word per kernel row (LayerGeom::packed): padded
    borders, strides, shadows and a fault on a protected slot stay bit-exact, the counter equals the model."""
    from resilq.hls.mapping import plan_model

    rng = np.random.default_rng(3)
    model = protect_fraction(calibrated_model(rng, shape, [spec, ("flatten",), ("fc", 16), ("head", 5)], "packed"),
                             rng, scheme, 0.3)
    config = AccelConfig(pe=8 if simd == 8 else 4, simd=simd)
    plan = plan_model(model, config)[0]
    assert plan.packed and plan.mac_words == spec[2]
    x = model.quantize_input(rng.random((2, *shape), dtype=np.float32))
    acc = CsimAccelerator(model, config, batch=2)
    run = acc.run(x)
    assert_same_layers(run, Executor(model).run(x, collect=True))
    assert run.cycles == cycle_report(model, config).run(2)
    slot = model.out_size(0) + 1  # a shadow slot of the first protected neuron
    fault = Fault(0, slot, 0x41, FaultMode.FLIP)
    run = acc.run(x, fault=fault)
    assert_same_layers(run, Executor(model).run(x, faults=[fault], collect=True))
    assert run.status.corrections == expected_corrections(model, x, fault)
