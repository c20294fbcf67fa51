"""Chain-of-trust test #3: ``resilq run PKG --target emulator|csim`` through the driver equals the Python engine.

A trained LeNet-5 (digits), unprotected and hardened, is packaged with ``resilq package`` and run with
``resilq run``; its predictions, MODEL_CYCLES and fault-injection outcomes (per-input top-1 under each fault,
FI_HITS, CORRECTIONS) must equal the bit-true executor, the fast fault engine (resilq.faultsim), the
cycle model and the counter reference -- on the bundled digits test images and on the MNIST test set.
The C-simulated accelerator (the HLS C++ itself) must give the same through the same driver code.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hls_support import HAVE_CXX

from resilq.arith import Scheme
from resilq.cli import main
from resilq.deploy.driver import Accelerator
from resilq.deploy.emulator import EmulatedAccelerator
from resilq.deploy.package import load_bundled_data, load_package
from resilq.deploy.targets import CsimTarget
from resilq.faults import Fault, shadow_slot
from resilq.faultsim import FaultSimulator
from resilq.hls.config import DEFAULT_CONFIG
from resilq.hls.cycles import cycle_report
from resilq.hls.reference import expected_corrections
from resilq.ir import Executor, save_model

from factories import protect

BATCH = 16
needs_cxx = pytest.mark.skipif(not HAVE_CXX, reason="C-simulation needs g++ on PATH (apt-get install g++)")


@pytest.fixture(scope="module")
def variants(digits_lenet):
    rng = np.random.default_rng(11)
    base = digits_lenet.model
    return {"unprotected": base, "split": protect(base, rng, Scheme.SPLIT, 0.05),
            "tmr": protect(base, rng, Scheme.TMR, 0.05)}


def chosen_faults(model, rng, per_layer: int = 2) -> list[Fault]:
    """Faults on plain neurons, protected originals and shadows of every neuron layer, several bits."""
    faults = []
    for i in model.neuron_layers:
        for _ in range(per_layer):
            faults.append(Fault.bit_flip(i, int(rng.integers(model.neurons_in(i))), int(rng.integers(8))))
        prot = model.protection(i)
        if prot is not None and prot.n_protected:
            p = int(rng.integers(prot.n_protected))
            faults.append(Fault.bit_flip(i, int(prot.neurons[p]), int(rng.integers(8))))
            faults.append(Fault.bit_flip(i, shadow_slot(model, i, p, 1), int(rng.integers(8))))
    return faults


def make_package(tmp_path, model, dataset_args) -> str:
    path = tmp_path / f"{model.hash[:8]}.rq"
    save_model(model, path)
    out = tmp_path / f"pkg_{model.hash[:8]}"
    assert main(["package", str(path), "--board", "pynq-z2", "--out", str(out), "--batch", str(BATCH),
                 *dataset_args]) == 0
    return str(out)


def cli_run(pkg: str, target: str, tmp_path, *extra: str) -> dict:
    out = tmp_path / "run.json"
    assert main(["run", pkg, "--target", target, "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


def check_chain(model, pkg: str, tmp_path, target: str, n_faults: int | None = None) -> None:
    data = load_bundled_data(load_package(pkg))
    x = data.x
    n = x.shape[0]
    runs = -(-n // BATCH)
    report = cycle_report(model, DEFAULT_CONFIG)
    expected_cycles = sum(report.run(min(BATCH, n - s)) for s in range(0, n, BATCH))
    clean = cli_run(pkg, target, tmp_path, "--verify")
    ref = Executor(model).run(x)
    assert clean["predictions"] == ref.predictions.tolist()
    assert clean["cycles"] == expected_cycles and clean["runs"] == runs and clean["verify"] == "ok"
    assert clean["accuracy"] == float(np.mean(ref.predictions == data.labels))
    faults = chosen_faults(model, np.random.default_rng(5))[:n_faults]
    engine = FaultSimulator(model, x).predictions(faults)
    for fault, want in zip(faults, engine):
        bit = int(fault.mask).bit_length() - 1
        got = cli_run(pkg, target, tmp_path, "--fault", f"{fault.layer}:{fault.slot}:{bit}")
        assert got["predictions"] == want.tolist(), fault
        assert got["fi_hits"] == n and got["cycles"] == expected_cycles
        assert got["corrections"] == expected_corrections(model, x, fault)


@pytest.mark.parametrize("kind", ["unprotected", "split", "tmr"])
def test_chain_of_trust_3_emulator_on_digits(variants, kind, tmp_path):
    model = variants[kind]
    pkg = make_package(tmp_path, model, ["--dataset", "digits", "--images", "64"])
    check_chain(model, pkg, tmp_path, "emulator")


@pytest.mark.mnist
@pytest.mark.parametrize("kind", ["unprotected", "split"])
def test_chain_of_trust_3_emulator_on_mnist(variants, kind, tmp_path, mnist_dir):
    model = variants[kind]
    pkg = make_package(tmp_path, model, ["--dataset", "mnist", "--data-dir", str(mnist_dir), "--images", "200"])
    check_chain(model, pkg, tmp_path, "emulator")


@pytest.mark.csim
@needs_cxx
@pytest.mark.parametrize("kind", ["unprotected", "tmr"])
def test_chain_of_trust_3_csim_through_the_driver(variants, kind, tmp_path):
    model = variants[kind]
    pkg = make_package(tmp_path, model, ["--dataset", "digits", "--images", "32"])
    check_chain(model, pkg, tmp_path, "csim", n_faults=4)


@pytest.mark.csim
@needs_cxx
def test_emulator_and_csim_agree_on_every_layer_and_counter(variants):
    model = variants["split"]
    x = model.quantize_input(np.random.default_rng(2).random((6, *model.input.shape), dtype=np.float32))
    emu = Accelerator(EmulatedAccelerator(), model, batch=6, keep_activations=True)
    sim = Accelerator(CsimTarget.open(DEFAULT_CONFIG), model, batch=6, keep_activations=True)
    for fault in [None, *chosen_faults(model, np.random.default_rng(9), per_layer=1)]:
        for once in (False, True):
            if once and fault is None:
                continue
            a, b = emu.run(x, fault, once), sim.run(x, fault, once)
            assert np.array_equal(a.logits, b.logits)
            assert all(np.array_equal(p, q) for p, q in zip(a.activations, b.activations))
            assert (a.cycles, a.corrections, a.fi_hits) == (b.cycles, b.corrections, b.fi_hits)
            assert np.array_equal(a.profile, b.profile)


@pytest.mark.csim
@needs_cxx
def test_emulator_and_csim_refuse_bad_images_alike(variants):
    """STATUS (code and descriptor) and MODEL_CYCLES of refused runs: the header checks, the fault registers, a
    descriptor the build cannot run."""
    from resilq.hls import host
    from resilq.hls import imageformat as fmt
    from resilq.hls import regmap as rm

    model = variants["tmr"]
    x = model.quantize_input(np.random.default_rng(3).random((2, *model.input.shape), dtype=np.float32))
    accels = [Accelerator(EmulatedAccelerator(), model, batch=2), Accelerator(CsimTarget.open(DEFAULT_CONFIG), model,
                                                                              batch=2)]

    def outcome(accel, corrupt, registers=()):
        accel.run(x)  # load this network (pointers, table, inputs)
        words = accel.image.buffer.view("<u4")
        saved = words.copy()
        corrupt(words, accel.image)
        for reg, value in registers:
            accel.device.write(reg.offset, value)
        status = host.run(accel.device, 2)
        words[:] = saved
        accel.device.write(rm.FI_CTRL.offset, 0)
        return status.code.name, status.descriptor, status.cycles

    def desc_word(words, k, word, change):
        """(index, new value) of word ``word`` of descriptor ``k``, changed by ``change``."""
        at = int(words[fmt.HeaderWord.DESC_OFFSET]) // 4 + k * fmt.DESC_WORDS + word
        return at, change(int(words[at]))

    def pool_next(op_flags):
        return op_flags | (int(fmt.Flag.POOL_NEXT) << 8)

    cases = {
        "magic": (lambda w, im: w.__setitem__(fmt.HeaderWord.MAGIC, 0), ()),
        "format": (lambda w, im: w.__setitem__(fmt.HeaderWord.FORMAT, 9), ()),
        "batch": (lambda w, im: w.__setitem__(fmt.HeaderWord.BATCH, 1), ()),
        "fault": (lambda w, im: None, ((rm.FI_MASK, 0), (rm.FI_LAYER, 0), (rm.FI_CTRL, 1))),
        "op": (lambda w, im: w.__setitem__(int(w[fmt.HeaderWord.DESC_OFFSET]) // 4 + fmt.DESC_WORDS * 2, 77), ()),
        "kernel": (lambda w, im: w.__setitem__(int(w[fmt.HeaderWord.DESC_OFFSET]) // 4 + fmt.DESC_WORDS
                                               + fmt.DescWord.GEOMETRY, 0x0D0D), ()),
        # the on-chip pool pairs (Flag.POOL_NEXT, checked with the conv before it runs): a pool flagged as a conv that
        # pools, a pool that does not read its conv's map, a flag on a batched vector layer
        "pool-next-on-pool": (lambda w, im: w.__setitem__(*desc_word(w, 1, fmt.DescWord.OP_FLAGS, pool_next)), ()),
        "pool-mismatch": (lambda w, im: [w.__setitem__(*desc_word(w, 1, word, lambda v: v - 1))
                                         for word in (fmt.DescWord.IN_C, fmt.DescWord.OUT_C)], ()),
        "pool-next-batched": (lambda w, im: w.__setitem__(*desc_word(w, 4, fmt.DescWord.OP_FLAGS, pool_next)), ()),
        # the last descriptor (the classifier made an int8, unbatched conv) claiming a pool that does not exist
        "pool-next-last": (lambda w, im: w.__setitem__(*desc_word(w, 6, fmt.DescWord.OP_FLAGS, lambda v: pool_next(
            v & ~(int(fmt.Flag.RAW | fmt.Flag.BATCH) << 8)))), ()),
    }
    seen = {}
    for name, (corrupt, registers) in cases.items():
        emu, sim = (outcome(a, corrupt, registers) for a in accels)
        assert emu == sim, name
        seen[name] = emu[:2]
    assert seen == {"magic": ("BAD_MAGIC", 0), "format": ("BAD_FORMAT", 0), "batch": ("BATCH_RANGE", 0),
                    "fault": ("FAULT_CONFIG", 0), "op": ("BAD_OP", 2), "kernel": ("CAPACITY", 1),
                    "pool-next-on-pool": ("LAYOUT", 1), "pool-mismatch": ("LAYOUT", 1),
                    "pool-next-batched": ("LAYOUT", 4), "pool-next-last": ("LAYOUT", 6)}


@pytest.mark.slow
@pytest.mark.mnist
@pytest.mark.parametrize("kind", ["unprotected", "split", "tmr"])
def test_chain_of_trust_3_emulator_on_mnist_large(variants, kind, tmp_path, mnist_dir):
    """The whole MNIST test set, every chosen fault (slow)."""
    model = variants[kind]
    pkg = make_package(tmp_path, model, ["--dataset", "mnist", "--data-dir", str(mnist_dir)])
    check_chain(model, pkg, tmp_path, "emulator")


@pytest.mark.parametrize("target", ["emulator", "csim"])
def test_cli_run_with_kept_weights(variants, target, tmp_path):
    """`resilq run PKG --keep-weights --verify`: the same predictions as without, fewer modelled cycles (the runs
    after the first load no weights), and the verifier's cycle model agrees."""
    model = variants["tmr"]
    pkg = make_package(tmp_path, model, ["--dataset", "digits", "--images", "64"])
    plain = cli_run(pkg, target, tmp_path, "--verify")
    kept = cli_run(pkg, target, tmp_path, "--verify", "--keep-weights")
    assert kept["verify"] == "ok" and kept["predictions"] == plain["predictions"]
    runs = kept["runs"]
    cold = cycle_report(model, DEFAULT_CONFIG, kept=True)
    warm = cycle_report(model, DEFAULT_CONFIG, kept=True, warm=True)
    assert runs == 4 and kept["cycles"] == cold.run(BATCH) + (runs - 1) * warm.run(BATCH) < plain["cycles"]
    again = cli_run(pkg, target, tmp_path, "--verify", "--keep-weights")  # the IP may still hold them: ok too
    assert again["verify"] == "ok" and again["predictions"] == plain["predictions"]
