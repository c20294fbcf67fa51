"""Board-side checks, run INSIDE the PYNQ-image environment (.venv-board: Python 3.10, numpy 1.21.5, pynq 3.0.1,
no torch/brevitas/rich/scipy/scikit-learn) on a deployment package's own copy of resilq.

Started by tests/test_deploy_board_env.py as ``.venv-board/bin/python -m pytest tests/board_env/board_checks.py``
with ``RESILQ_TEST_PACKAGE`` naming a package built on the host. The driver runs through pynq's real
``DefaultIP``, ``MMIO`` and ``allocate``/``PynqBuffer`` on a pynq ``Device`` subclass whose registers
and DDR are the emulated accelerator's: the board code path, minus the silicon.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PACKAGE = Path(os.environ["RESILQ_TEST_PACKAGE"])
LIB = PACKAGE / "lib"
sys.path.insert(0, str(LIB))

import pynq  # noqa: E402
from pynq.buffer import PynqBuffer  # noqa: E402
from pynq.pl_server.device import Device  # noqa: E402

from resilq.deploy.driver import Accelerator  # noqa: E402
from resilq.deploy.emulator import EmulatedAccelerator  # noqa: E402
from resilq.deploy.hwh import VLNV, expected_registers  # noqa: E402
from resilq.deploy.package import load_bundled_data, load_package  # noqa: E402
from resilq.deploy.timer import GTC_BASE, GTC_SPAN, EmulatedGlobalTimer  # noqa: E402
from resilq.errors import MismatchError  # noqa: E402
from resilq.faults import Fault  # noqa: E402
from resilq.hls import host  # noqa: E402
from resilq.hls import regmap as rm  # noqa: E402
from resilq.hls.cycles import cycle_report  # noqa: E402
from resilq.ir import Executor  # noqa: E402

BASE = 0x4000_0000
NOT_ON_THE_IMAGE = ("torch", "brevitas", "rich", "scipy", "sklearn", "matplotlib")


class EmulatedPynqDevice(Device):
    """A pynq Device (REGISTER_RW: pynq's MMIO calls read_registers/write_registers) whose AXI-Lite window at
    BASE is ``backend``'s register file, whose Zynq global timer block (0xF8F00200) is ``backend``'s emulated
    timer and whose memory is ``backend``'s DDR; ``pynq.allocate`` on it returns real PynqBuffers over that
    memory."""

    def __init__(self, backend):
        super().__init__("resilq-emulated")
        self.capabilities = {"REGISTER_RW": True}
        self.backend = backend
        self.writes: list[tuple[int, int]] = []
        self.flushes = self.invalidates = 0
        self.timer_reads = 0

    def read_registers(self, address: int, length: int) -> bytes:
        if GTC_BASE <= address < GTC_BASE + GTC_SPAN:
            assert length == 4, length
            self.timer_reads += 1
            return self.backend.global_timer.read(address - GTC_BASE).to_bytes(4, "little")
        assert length == 4 and BASE <= address < BASE + rm.ADDRESS_SPACE, (address, length)
        return self.backend.read(address - BASE).to_bytes(4, "little")

    def write_registers(self, address: int, data: bytes) -> None:
        assert len(data) == 4 and BASE <= address < BASE + rm.ADDRESS_SPACE, (address, data)
        value = int.from_bytes(data, "little")
        self.writes.append((address - BASE, value))
        self.backend.write(address - BASE, value)

    def allocate(self, shape, dtype, **kwargs):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        block = self.backend.allocate(nbytes)
        return PynqBuffer(shape, dtype, buffer=block.array, device=self, device_address=block.physical_address,
                          coherent=False)

    def flush(self, bo, offset, ptr, size):
        self.flushes += 1

    def invalidate(self, bo, offset, ptr, size):
        self.invalidates += 1


class IdleBackend:
    """An AXI-Lite slave with no kernel behind it: AP_DONE never rises."""

    def __init__(self):
        self.regs = {}
        self.emulator = EmulatedAccelerator()
        self.global_timer = EmulatedGlobalTimer(self.emulator.global_timer.clocks)  # nothing advances it

    def read(self, offset):
        return self.regs.get(offset, 0)

    def write(self, offset, value):
        self.regs[offset] = value

    def allocate(self, nbytes):
        return self.emulator.allocate(nbytes)


def description(device, vlnv: str = VLNV) -> dict:
    """An ip_dict entry as pynq builds it from the overlay's .hwh."""
    regs = {name: {"address_offset": offset, "size": 32, "access": "read-write", "description": "", "fields": {}}
            for name, offset, _ in expected_registers()}
    return {"device": device, "phys_addr": BASE, "addr_range": rm.ADDRESS_SPACE, "type": vlnv,
            "fullpath": "resilq_accel_0", "registers": regs, "state": None, "interrupts": {}, "gpio": {}}


@pytest.fixture(scope="module")
def package():
    return load_package(PACKAGE)


def test_this_is_the_board_image_environment():
    assert sys.version_info[:2] == (3, 10) and np.__version__.startswith("1.21.")
    assert pynq.__version__ == "3.0.1"
    for name in NOT_ON_THE_IMAGE:
        with pytest.raises(ImportError):
            __import__(name)
    import resilq

    assert Path(resilq.__file__).resolve().is_relative_to(LIB.resolve())  # the package's copy, not an install


def test_every_shipped_module_imports():
    names = [".".join(p.relative_to(LIB).with_suffix("").parts).removesuffix(".__init__")
             for p in sorted(LIB.rglob("*.py"))]
    for name in names:
        __import__(name)
    assert "resilq.deploy.pynq_ip" in names and "resilq.hls.csim" not in names


def test_board_file_without_a_toml_parser():
    code = ("import sys; sys.modules['tomli'] = None; sys.path.insert(0, sys.argv[1]);"
            "from resilq.boards import load_board; b = load_board('pynq-z2');"
            "print(b.part, b.software.python, b.path.name)")
    out = subprocess.run([sys.executable, "-c", code, str(LIB)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["xc7z020clg400-1", "3.10", "board.json"]


def test_package_entry_runs_and_verifies_on_the_emulator(tmp_path):
    out = tmp_path / "run.json"
    proc = subprocess.run([sys.executable, str(PACKAGE), "run", "--target", "emulator", "--verify", "--json", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert json.loads(out.read_text())["verify"] == "ok"
    proc = subprocess.run([sys.executable, str(PACKAGE), "run", "--target", "board"], capture_output=True, text=True)
    assert proc.returncode == 2 and "has no overlay" in proc.stderr


def test_pynq_binds_the_driver_by_vlnv():
    from pynq.overlay import _ip_drivers

    from resilq.deploy.pynq_ip import ResilqAccelIP

    assert _ip_drivers[VLNV] is ResilqAccelIP and issubclass(ResilqAccelIP, pynq.DefaultIP)


def test_driver_through_pynq_defaultip_mmio_and_allocate(package):
    from resilq.deploy.pynq_ip import ResilqAccelIP

    device = EmulatedPynqDevice(EmulatedAccelerator(package.config))
    ip = ResilqAccelIP(description(device))
    assert isinstance(ip.mmio, pynq.MMIO) and ip.mmio.device is device
    data = load_bundled_data(package)
    x = data.x[:40]
    accel = Accelerator(ip, package.model, package.config, batch=16)
    assert isinstance(accel.buffer.array, PynqBuffer)
    clean = accel.run_all(x)
    ref = Executor(package.model).run(x)
    assert np.array_equal(clean.logits, ref.logits)
    report = cycle_report(package.model, package.config)
    assert clean.cycles == 2 * report.run(16) + report.run(8)
    # the latency measured through pynq's MMIO on the Zynq global timer (emulated: it counts the cycle model)
    assert device.timer_reads >= 3 * 2 * 3 and "global timer" in clean.timer
    assert abs(clean.measured_seconds - clean.cycles / (package.pl_mhz * 1e6)) <= 3 / accel.timer.hz
    layer = package.model.neuron_layers[-1]
    fault = Fault.bit_flip(layer, 5, 6)
    faulty = accel.run_all(x, fault)
    assert np.array_equal(faulty.logits, Executor(package.model).run(x, faults=[fault]).logits)
    assert faulty.fi_hits == x.shape[0]
    assert device.flushes >= 6 and device.invalidates >= 6
    writable = {r.offset + 4 * w for r in rm.REGISTERS if r.access is not rm.Access.RO
                for w in range(1 if r.access is rm.Access.CTRL else r.bits // 32)}
    assert all(o in writable or rm.CRIT_TABLE.offset <= o < rm.CRIT_TABLE.end for o, _ in device.writes)


def test_pynq_path_refusals(package):
    from resilq.deploy.pynq_ip import ResilqAccelIP

    with pytest.raises(MismatchError, match="register map v1"):
        ResilqAccelIP(description(EmulatedPynqDevice(EmulatedAccelerator()), "resilq.org:hls:resilq_accel:1.0"))
    idle = ResilqAccelIP(description(EmulatedPynqDevice(IdleBackend())))
    with pytest.raises(host.AcceleratorError, match="did not finish within 0.3 s"):
        Accelerator(idle, package.model, package.config, timeout=0.3)
