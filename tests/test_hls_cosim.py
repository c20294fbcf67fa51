"""The co-simulation testbench is cosim-correct: each m_axi port has its own buffer of at least its
declared depth, results are compared per port and region, and the highest element every port touches
(recorded by the C-simulated kernel, resilq/probe.hpp) lies inside the port's depth and its buffer."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from hls_support import CSIM, calibrated_model, protect_fraction

from resilq.arith import Scheme
from resilq.boards import load_board
from resilq.hls import SRC_DIR, codegen
from resilq.hls.config import DEFAULT_CONFIG, AccelConfig
from resilq.hls.csim import PORTS, CsimDevice
from resilq.hls.project import compile_testbench, run_testbench
from resilq.hls.simulate import CsimAccelerator
from resilq.hls.vectors import PORT_BYTES, cosim_depths, golden_vectors, vector_image

TOP = (SRC_DIR / "accel_top.cpp").read_text()
def csim(test):
    """The csim marker with its skip reason (g++ needed)."""
    for mark in reversed(CSIM):
        test = mark(test)
    return test


EXTENT = re.compile(r"(\w+) port touched (\d+) of (\d+) elements \(depth (\d+), buffer (\d+)\)")


def test_every_m_axi_port_declares_the_generated_depth():
    pragmas = dict(re.findall(r"#pragma HLS INTERFACE mode=m_axi port=(\w+) .*?depth=(\w+)", TOP))
    constants = dict(re.findall(r"constexpr unsigned (\w+) = Cfg::CosimDepth::(\w+);", TOP))
    assert {port: constants[name] for port, name in pragmas.items()} == {
        "ctrl_mem": "CTRL", "weight_mem": "WEIGHTS", "act_mem": "ACT"}
    for config in (DEFAULT_CONFIG, AccelConfig(pe=4, simd=16), AccelConfig(simd=64)):
        depth = cosim_depths(config)
        header = codegen.render_config(config)
        for name, port in (("CTRL", "ctrl"), ("WEIGHTS", "weights"), ("ACT", "act")):
            assert f"static constexpr unsigned {name} = {getattr(depth, port)}u;" in header
        largest = max(vector_image(v, config).nbytes for v in golden_vectors(config=config))
        for port, size in PORT_BYTES.items():
            assert getattr(depth, port) * size >= largest > (getattr(depth, port) - 1) * size


@pytest.fixture(scope="module")
def testbench(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tb")
    proc = run_testbench(DEFAULT_CONFIG, load_board(), directory)
    return directory, proc


@csim
def test_testbench_ports_stay_inside_their_depth_and_buffer(testbench):
    directory, proc = testbench
    assert proc.returncode == 0, proc.stdout
    n = len(golden_vectors())
    assert f"{n} of {n} vectors passed" in proc.stdout and "FAIL" not in proc.stdout
    extents = EXTENT.findall(proc.stdout)
    assert len(extents) == n * len(PORTS) and {e[0] for e in extents} == set(PORTS)
    depth = cosim_depths(DEFAULT_CONFIG)
    for port, touched, limit, declared, buffer in extents:
        touched, limit, declared, buffer = map(int, (touched, limit, declared, buffer))
        assert declared == getattr(depth, port) and buffer >= declared and limit == declared
        assert 0 < touched <= declared, port


def _run(directory, vector):
    return subprocess.run([str(directory / "accel_tb"), str(vector)], capture_output=True, text=True, check=False)


@csim
def test_testbench_compares_each_port_where_it_writes(testbench, tmp_path):
    directory, _ = testbench
    source = directory / "vectors" / "protected"
    regions = [line.split() for line in (source / "regions.txt").read_text().splitlines()]
    assert {r[0] for r in regions} == {"ctrl", "act"}  # the weight master only reads
    # a wrong result byte inside an activation region of the second image
    vector = tmp_path / "wrong_result"
    vector.mkdir()
    for f in source.iterdir():
        (vector / f.name).write_bytes(f.read_bytes())
    port, offset, nbytes = next(r for r in regions[5:] if r[0] == "act")
    expected = bytearray((vector / "expected.bin").read_bytes())
    expected[int(offset) + int(nbytes) // 2] ^= 0x5A
    (vector / "expected.bin").write_bytes(bytes(expected))
    proc = _run(directory, vector)
    assert proc.returncode == 1 and "act port byte" in proc.stdout and "1 mismatching bytes" in proc.stdout
    # a port writing outside its regions: drop the logits region from the list of the control master
    vector = tmp_path / "stray_write"
    vector.mkdir()
    for f in source.iterdir():
        (vector / f.name).write_bytes(f.read_bytes())
    ctrl = [r for r in regions if r[0] == "ctrl"]
    kept = [r for r in regions if r is not ctrl[-1]]
    (vector / "regions.txt").write_text("".join(" ".join(r) + "\n" for r in kept))
    proc = _run(directory, vector)
    assert proc.returncode == 1 and "ctrl port byte" in proc.stdout and "(untouched input)" in proc.stdout


@csim
def test_testbench_fails_when_a_port_exceeds_its_depth(testbench, tmp_path):
    """A build declaring a smaller depth than the kernel touches is refused with the port named."""
    directory, _ = testbench
    small = tmp_path / "small_depth"
    small.mkdir()
    depth = cosim_depths(DEFAULT_CONFIG)
    header = codegen.render_config(DEFAULT_CONFIG).replace(f"ACT = {depth.act}u;", "ACT = 1024u;")
    assert "ACT = 1024u;" in header
    (small / "accel_config.hpp").write_text(header)
    compile_testbench(small)
    proc = _run(small, directory / "vectors" / "plain")
    assert proc.returncode == 1
    assert re.search(r"act port touched element \d+, beyond its declared depth 1024", proc.stdout), proc.stdout


@csim
def test_csim_extents_stay_inside_the_image_and_the_depth():
    """From Python: on the golden vectors every port stays inside the declared depth; on other networks
    every port stays inside the packed image (and the activation master never writes the input region)."""
    depth = cosim_depths(DEFAULT_CONFIG)
    for vector in golden_vectors()[1:2]:
        acc = CsimAccelerator(vector.model, batch=vector.inputs.shape[0])
        acc.run(vector.inputs)
        extents = acc.device.extents()
        for port in PORTS:
            assert 0 < extents[port].end <= getattr(depth, port), port
    rng = np.random.default_rng(3)
    model = calibrated_model(rng, (3, 11, 9), [("conv", 9, 3, 2, 1), ("pool", 2, 1), ("flatten",), ("fc", 13),
                                               ("head", 5)], "extents")
    model = protect_fraction(model, rng, Scheme.TMR, 0.3)
    x = model.quantize_input(rng.random((3, 3, 11, 9), dtype=np.float32))
    acc = CsimAccelerator(model, batch=3)
    acc.run(x)
    extents = acc.device.extents()
    image = acc.image
    for port in PORTS:
        assert 0 < extents[port].end <= -(-image.nbytes // PORT_BYTES[port]), port
    assert extents["weights"].writes == 0
    assert extents["act"].writes <= image.nbytes and extents["ctrl"].writes * 4 <= image.nbytes
    assert isinstance(acc.device, CsimDevice)


@pytest.mark.parametrize("config", [DEFAULT_CONFIG, AccelConfig(pe=1, simd=8, shadow_units=5),
                                    AccelConfig(pe=16, simd=16, shadow_units=1), AccelConfig(shadow_units=0)],
                         ids=lambda c: f"pe{c.pe}+{c.shadow_units}")
def test_the_lane_fault_vector_hits_on_every_build(config):
    """The lane vector faults a lane that writes copies on this build (not a shadow lane it never uses)."""
    from resilq.hls.reference import expected_fi_hits

    (vector,) = [v for v in golden_vectors(config=config) if v.name == "lane_fault"]
    assert expected_fi_hits(vector.fault, vector.inputs.shape[0], model=vector.model) > 0
