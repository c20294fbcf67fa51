"""The driver on the emulated device: bit-true results and counters, register-level discipline, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from deploy_support import IdleRegisters, RecordingDevice, hwh_registers, writable_words, write_hwh
from hls_support import calibrated_model, protect_fraction

from resilq.arith import FaultMode, Scheme
from resilq.deploy.driver import Accelerator
from resilq.deploy.emulator import EmulatedAccelerator, EmulatorError
from resilq.deploy.hwh import VLNV, accelerator_in_hwh, ip_from_description
from resilq.deploy.unpack import decode, read_header
from resilq.errors import MismatchError, ParameterError, UnsupportedModelError
from resilq.faults import Fault, shadow_slot
from resilq.hls import host
from resilq.hls import regmap as rm
from resilq.hls.config import DEFAULT_CONFIG, AccelConfig
from resilq.hls.cycles import cycle_report
from resilq.hls.mapping import plan_model
from resilq.hls.packing import pack
from resilq.hls.reference import expected_corrections
from resilq.ir import Executor, Protection

SPECS = [("conv", 6, 3, 1, 1), ("pool", 2, 2), ("conv", 8, 3, 1, 0), ("flatten",), ("fc", 20), ("head", 10)]


@pytest.fixture(scope="module")
def models():
    rng = np.random.default_rng(7)
    base = calibrated_model(rng, (2, 12, 12), SPECS, name="small")
    x = base.quantize_input(rng.random((12, 2, 12, 12), dtype=np.float32))
    out = {"none": base}
    for scheme in (Scheme.SPLIT, Scheme.TMR, Scheme.DUP_MIN):
        out[scheme.label] = protect_fraction(base, rng, scheme, 0.25)
    return out, x


def some_faults(model, rng, n=6):
    faults = []
    for i in model.neuron_layers:
        prot = model.protection(i)
        faults.append(Fault.bit_flip(i, int(rng.integers(model.neurons_in(i))), int(rng.integers(8))))
        if prot is not None:
            faults.append(Fault.bit_flip(i, int(prot.neurons[0]), 6))
            faults.append(Fault.bit_flip(i, shadow_slot(model, i, prot.n_protected - 1, 1), 7))
    faults.append(Fault(model.neuron_layers[0], 3, 0x81, FaultMode.STUCK_AT_1))
    return faults[:n] if len(faults) > n else faults


@pytest.mark.parametrize("kind", ["none", "split", "tmr", "dup-min"])
def test_emulator_is_bit_true_with_the_executor_and_the_counter_models(models, kind):
    all_models, x = models
    model = all_models[kind]
    acc = Accelerator(EmulatedAccelerator(), model, batch=8, keep_activations=True)
    ref = Executor(model).run(x[:8], collect=True)
    run = acc.run(x[:8])
    assert np.array_equal(run.logits, ref.logits)
    for got, want in zip(run.activations, ref.activations):
        assert np.array_equal(got, want)
    report = cycle_report(model, DEFAULT_CONFIG, images=8)
    assert run.cycles == report.run(8) == report.total
    assert run.profile.tolist() == [c.total for c in report.layers]
    assert (run.corrections, run.fi_hits) == (0, 0)
    for fault in some_faults(model, np.random.default_rng(1)):
        faulty = acc.run(x[:8], fault=fault)
        want = Executor(model).run(x[:8], faults=[fault])
        assert np.array_equal(faulty.logits, want.logits), fault
        assert faulty.fi_hits == 8 and faulty.cycles == report.run(8)
        assert faulty.corrections == expected_corrections(model, x[:8], fault)
        once = acc.run(x[:8], fault=fault, once=True)  # a one-shot: only the first inference carries it
        assert once.fi_hits == 1 and once.corrections == expected_corrections(model, x[:8], fault, once=True)
        want_once = Executor(model).run(x[:1], faults=[fault]).logits
        assert np.array_equal(once.logits[:1], want_once) and np.array_equal(once.logits[1:], ref.logits[1:])


def test_run_all_batches_and_sums_counters(models):
    all_models, x = models
    model = all_models["split"]
    acc = Accelerator(EmulatedAccelerator(), model, batch=5)
    fault = Fault.bit_flip(0, int(model.protection(0).neurons[1]), 6)
    run = acc.run_all(x, fault)
    assert run.runs == 3 and np.array_equal(run.logits, Executor(model).run(x, faults=[fault]).logits)
    report = cycle_report(model, DEFAULT_CONFIG)
    assert run.cycles == report.run(5) * 2 + report.run(2) and run.fi_hits == x.shape[0]


def test_decoded_image_is_the_packed_network(models):
    all_models, _ = models
    for model in all_models.values():
        image = pack(model, DEFAULT_CONFIG, batch=3)
        header = read_header(image.buffer, DEFAULT_CONFIG, 3)
        decoded = decode(image.buffer, image.buffer, np.pad(image.table, (0, rm.CRIT_TABLE.capacity - image.table.size)),
                         DEFAULT_CONFIG, header)
        assert len(decoded.model.layers) == len(model.layers)
        for got, want in zip(decoded.model.layers, model.layers):
            assert type(got) is type(want)
            for attr in ("weight", "bias"):
                if hasattr(want, attr):
                    assert np.array_equal(getattr(got, attr), getattr(want, attr))
            if getattr(want, "requant", None) is not None:
                assert np.array_equal(got.requant.shift, want.requant.shift) and got.requant.relu == want.requant.relu
            pw = getattr(want, "protection", None)
            pg = getattr(got, "protection", None)
            assert (pw is None) == (pg is None)
            if pw is not None:
                assert pg.scheme is pw.scheme and np.array_equal(pg.neurons, pw.neurons)
        assert [p.index for p in decoded.plans] == [p.index for p in plan_model(model, DEFAULT_CONFIG)]


def test_every_driver_write_is_inside_the_register_map(models):
    all_models, x = models
    model = all_models["tmr"]
    dev = RecordingDevice(EmulatedAccelerator())
    acc = Accelerator(dev, model, batch=4)
    acc.run(x[:4], fault=Fault.bit_flip(0, 2, 3))
    acc.run(x[:4], fault=Fault.bit_flip(2, 1, 0), once=True)
    acc.run_all(x)
    allowed = writable_words()
    assert dev.writes and all(offset in allowed for offset, _ in dev.writes)
    assert all(0 <= value <= 0xFFFFFFFF for _, value in dev.writes)
    assert {o for o, _ in dev.writes} >= {rm.AP_CTRL.offset, rm.N_IMAGES.offset, rm.FI_CTRL.offset,
                                           rm.CRIT_TABLE.offset}


def test_emulator_refuses_accesses_outside_the_map():
    dev = EmulatedAccelerator()
    for offset, what in ((rm.VERSION_REG.offset, "read-only"), (rm.N_IMAGES.offset + 4, "reserved"),
                         (0x0C0, "no register"), (rm.ADDRESS_SPACE, "not a word"), (0x42, "not a word")):
        with pytest.raises(EmulatorError, match=what):
            dev.write(offset, 1)


def test_a_table_larger_than_the_hardware_is_refused(models):
    all_models, x = models
    dev = EmulatedAccelerator()
    with pytest.raises(ParameterError, match="exceed the capacity 8192"):
        host.write_table(dev, np.arange(rm.CRIT_TABLE.capacity + 1, dtype=np.uint32))
    rng = np.random.default_rng(3)
    big = calibrated_model(rng, (1, 30, 30), [("conv", 16, 3, 1, 1), ("flatten",), ("head", 4)], name="big")
    neurons = np.arange(0, 16 * 900, 1, dtype=np.int32)[:rm.CRIT_TABLE.capacity + 8]
    too_many = big.with_protection({0: Protection(Scheme.TMR, neurons)})
    with pytest.raises(UnsupportedModelError, match="critical-table capacity"):
        Accelerator(dev, too_many)


def test_a_run_that_never_finishes_times_out(models):
    all_models, _ = models
    with pytest.raises(host.AcceleratorError, match="did not finish within 0.2 s"):
        Accelerator(IdleRegisters(), all_models["none"], timeout=0.2)


def test_a_build_of_another_configuration_is_refused(models):
    all_models, _ = models
    with pytest.raises(MismatchError, match="PE=16 SIMD=8"):
        Accelerator(EmulatedAccelerator(AccelConfig(pe=16)), all_models["none"])


def test_bad_images_get_the_kernels_status_codes(models):
    all_models, x = models
    dev = EmulatedAccelerator()
    acc = Accelerator(dev, all_models["split"], batch=4)
    acc.image.write_inputs(x[:4])
    status = host.run(dev, 5)  # more images than packed
    assert status.code.name == "BATCH_RANGE"
    dev.write(rm.FI_CTRL.offset, 1)  # EN with a zero mask
    dev.write(rm.FI_MASK.offset, 0)
    assert host.run(dev, 1).code.name == "FAULT_CONFIG"
    dev.write(rm.FI_CTRL.offset, 0)
    acc.image.buffer[0] ^= 0xFF
    assert host.run(dev, 1).code.name == "BAD_MAGIC"
    acc.image.buffer[0] ^= 0xFF
    with pytest.raises(host.AcceleratorError, match="BATCH_RANGE"):
        host.run(dev, 9).check(acc.image)


def test_overlay_description_is_checked(tmp_path):
    good = accelerator_in_hwh(write_hwh(tmp_path / "good.hwh"))
    assert (good.vlnv, good.instance, good.base_address, good.address_range) == (VLNV, "resilq_accel_0", 0x4000_0000,
                                                                                 rm.ADDRESS_SPACE)
    # an overlay built before the register map v2 (CYCLES renamed MODEL_CYCLES) is refused by its VLNV and registers
    old = [(("cycles_lo" if n == "model_cycles_lo" else "cycles_hi" if n == "model_cycles_hi" else n), o, a)
           for n, o, a in hwh_registers()]
    with pytest.raises(MismatchError, match=rf"register map v1.*this driver speaks register map v{rm.VERSION}.*"
                                            r"MODEL_CYCLES_LO \(model_cycles_lo\) expected at 0x90: cycles_lo is there"):
        accelerator_in_hwh(write_hwh(tmp_path / "v1.hwh", vlnv="resilq.org:hls:resilq_accel:1.0", registers=old))
    # v2 has the same register offsets but no lane faults or lane-diverse shadows: refused by its VLNV alone
    with pytest.raises(MismatchError, match=rf"resilq_accel:2.0 \(register map v2\); this driver speaks register map "
                                            rf"v{rm.VERSION}"):
        accelerator_in_hwh(write_hwh(tmp_path / "v2.hwh", vlnv="resilq.org:hls:resilq_accel:2.0"))
    # v3 has lane faults but no dedicated shadow lanes (HW_CONFIG.SHADOW, FI_SLOT >= PE): refused the same way
    with pytest.raises(MismatchError, match=rf"resilq_accel:3.0 \(register map v3\); this driver speaks register map "
                                            rf"v{rm.VERSION}"):
        accelerator_in_hwh(write_hwh(tmp_path / "v3.hwh", vlnv="resilq.org:hls:resilq_accel:3.0"))
    # v4 has no output upsets (FI_CTRL.UPSETS, FI_LIST, FI_COUNT): refused by its VLNV; a v5 name without the
    # two registers by the registers
    v4 = [r for r in hwh_registers() if r[0] not in ("fi_list", "fi_count")]
    with pytest.raises(MismatchError, match=rf"resilq_accel:4.0 \(register map v4\); this driver speaks register map "
                                            rf"v{rm.VERSION}"):
        accelerator_in_hwh(write_hwh(tmp_path / "v4.hwh", vlnv="resilq.org:hls:resilq_accel:4.0", registers=v4))
    with pytest.raises(MismatchError, match=r"FI_LIST \(fi_list\)"):
        accelerator_in_hwh(write_hwh(tmp_path / "v5-without.hwh", registers=v4))
    with pytest.raises(MismatchError, match="holds no resilq accelerator.*xilinx.com:hls:resize_accel:1.0"):
        accelerator_in_hwh(write_hwh(tmp_path / "other.hwh", vlnv="xilinx.com:hls:resize_accel:1.0"))
    moved = write_hwh(tmp_path / "moved.hwh", registers=hwh_registers({"fi_slot": 0x5C}))
    with pytest.raises(MismatchError, match=r"FI_SLOT \(fi_slot\) expected at 0x58: found at 0x5c"):
        accelerator_in_hwh(moved)
    with pytest.raises(MismatchError, match="AXI-Lite window of 0x1000"):
        accelerator_in_hwh(write_hwh(tmp_path / "small.hwh", range_bytes=0x1000))
    renamed = [(("version_r" if n == "version" else n), o, a) for n, o, a in hwh_registers()]
    assert accelerator_in_hwh(write_hwh(tmp_path / "r.hwh", registers=renamed)).vlnv == VLNV  # HLS keyword suffix
    entry = {"type": VLNV, "fullpath": "resilq_accel_0", "phys_addr": 0x4000_0000, "addr_range": 0x10000,
             "registers": {n: {"address_offset": o, "size": 32, "access": a} for n, o, a in hwh_registers()}}
    assert ip_from_description(entry).registers["fi_slot"].offset == rm.FI_SLOT.offset


@pytest.mark.parametrize("descriptor,edits,named", [
    (0, {"OUT_H": -1}, "descriptor 0: its 5x6 output map is not the 6x6"),
    (1, {"OUT_W": -2}, "descriptor 1: its 4x2 output map is not the 4x4"),
    (1, {"IN_H": -1, "OUT_H": -1}, "descriptor 1 reads a 2x5x6 map, but descriptor 0 stores 2x6x6"),
])
def test_emulator_names_a_descriptor_whose_maps_do_not_chain(descriptor, edits, named):
    """A descriptor whose output map is not what its geometry makes of its input, or that reads another map than
    the one before it stores: the kernel would compute part of a map (or read stale rows); the emulator, which runs
    layer chains, says which descriptor and why (it used to fail on a bare reshape)."""
    from resilq.hls import imageformat as fmt

    rng = np.random.default_rng(0)
    model = calibrated_model(rng, (1, 8, 8), [("conv", 2, 3, 1, 0), ("conv", 3, 3, 1, 0), ("flatten",), ("head", 3)],
                             "chain")
    config = AccelConfig(pe=4, simd=8)
    x = model.quantize_input(rng.random((2, 1, 8, 8), dtype=np.float32))
    acc = Accelerator(EmulatedAccelerator(config), model, config, batch=2)
    acc.run(x)
    words = acc.image.buffer.view("<u4")
    for field, delta in edits.items():
        at = int(words[fmt.HeaderWord.DESC_OFFSET]) // 4 + descriptor * fmt.DESC_WORDS + fmt.DescWord[field]
        words[at] = int(words[at]) + delta
    acc.buffer.flush()
    with pytest.raises(EmulatorError, match=named):
        host.run(acc.device, 2)
