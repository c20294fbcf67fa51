"""The measured latency: the Zynq global timer read around every run (hi/lo/hi, prescaler, enable bit), its
emulation from the cycle model, the driver's busy-poll of AP_DONE, and `resilq run` printing measured vs
modelled."""

from __future__ import annotations

import json
import time
from fractions import Fraction

import numpy as np
import pytest
from deploy_support import RecordingDevice
from hls_support import calibrated_model

from resilq.boards import load_board
from resilq.cli import main
from resilq.deploy.build import PackageRequest, build_package
from resilq.deploy.driver import Accelerator
from resilq.deploy.emulator import EmulatedAccelerator
from resilq.deploy.package import BundledData
from resilq.deploy.timer import (
    CONTROL,
    COUNTER_HI,
    COUNTER_LO,
    DeviceClocks,
    EmulatedGlobalTimer,
    GlobalTimer,
    TimerError,
)
from resilq.hls import host
from resilq.hls import regmap as rm
from resilq.hls.config import DEFAULT_CONFIG
from resilq.hls.cycles import cycle_report
from resilq.ir import save_model

PYNQ_Z2 = DeviceClocks.of_board(load_board("pynq-z2"))


class CarryingCounter:
    """Global-timer registers whose 64-bit counter carries into the upper word between two reads."""

    def __init__(self, control: int = 1):
        self.value = (7 << 32) | 0xFFFFFFFF
        self.control = control
        self.reads: list[int] = []

    def read(self, offset: int) -> int:
        self.reads.append(offset)
        if offset == CONTROL:
            return self.control
        if offset == COUNTER_LO:
            word = self.value & 0xFFFFFFFF
            self.value += 1  # the counter moves on: the next upper word read differs
            return word
        return (self.value >> 32) & 0xFFFFFFFF


def test_the_counter_is_read_upper_lower_upper():
    regs = CarryingCounter()
    timer = GlobalTimer(regs, PYNQ_Z2, "test")
    assert timer.hz == 325e6  # CPU_3x2x: half the PYNQ-Z2's 650 MHz Cortex-A9 clock
    value = timer.ticks()
    assert value == (8 << 32) | 0  # the first (hi=7, lo=0xFFFFFFFF) pair straddled a carry and was read again
    assert regs.reads[1:] == [COUNTER_HI, COUNTER_LO, COUNTER_HI, COUNTER_HI, COUNTER_LO, COUNTER_HI]


def test_prescaler_and_enable_bit():
    assert GlobalTimer(CarryingCounter(control=1 | (4 << 8)), PYNQ_Z2, "t").hz == 65e6
    with pytest.raises(TimerError, match="is not running"):
        GlobalTimer(CarryingCounter(control=0), PYNQ_Z2, "t")


def test_emulated_timer_counts_the_model_exactly():
    regs = EmulatedGlobalTimer(PYNQ_Z2)
    timer = regs.timer()
    regs.advance(12_345)
    regs.advance(1)
    assert timer.ticks() == int(Fraction(12_346) * Fraction(325, 100))
    regs.advance(3 << 40)  # the upper word
    assert timer.ticks() == int(Fraction(12_346 + (3 << 40)) * Fraction(325, 100))
    with pytest.raises(TimerError):
        regs.read(0x40)


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(5)
    return calibrated_model(rng, (1, 12, 12), [("conv", 6, 3, 1, 1), ("pool", 2, 2), ("flatten",), ("fc", 12),
                                               ("head", 10)], name="timed")


def test_driver_measures_each_run_with_the_device_timer(model):
    rng = np.random.default_rng(6)
    x = model.quantize_input(rng.random((10, 1, 12, 12), dtype=np.float32))
    dev = RecordingDevice(EmulatedAccelerator())
    acc = Accelerator(dev, model, batch=4)
    run = acc.run_all(x)
    report = cycle_report(model, DEFAULT_CONFIG)
    assert run.cycles == 2 * report.run(4) + report.run(2)
    # emulated: the timer counted the modelled cycles, so measured == modelled to within a tick per run
    assert abs(run.measured_seconds - run.cycles / 100e6) <= run.runs / acc.timer.hz
    assert "emulated global timer" in run.timer and run.runs == 3
    # the reads bracket AP_START .. AP_DONE: the last write before each AP_START is N_IMAGES
    writes = [o for o, _ in dev.writes]
    starts = [i for i, o in enumerate(writes) if o == rm.AP_CTRL.offset]
    assert all(writes[i - 1] == rm.N_IMAGES.offset for i in starts[1:])


def test_wait_busy_polls_without_sleeping(monkeypatch):
    class DoneAfter:
        def __init__(self, polls):
            self.polls = polls

        def read(self, offset):
            self.polls -= 1
            return rm.AP_CTRL.field("AP_DONE").mask if self.polls <= 0 else 0

    def no_sleep(seconds):
        raise AssertionError(f"wait slept {seconds} s between polls")

    monkeypatch.setattr(time, "sleep", no_sleep)
    dev = DoneAfter(1000)
    host.wait(dev, timeout=10)
    assert dev.polls == 0
    with pytest.raises(host.AcceleratorError, match="did not finish within 0.05 s"):
        host.wait(DoneAfter(10**12), timeout=0.05)


def test_resilq_run_prints_measured_and_modelled(model, tmp_path, capsys):
    path = save_model(model, tmp_path / "timed.rq")
    rng = np.random.default_rng(7)
    x = model.quantize_input(rng.random((6, 1, 12, 12), dtype=np.float32))
    data = BundledData(x, np.zeros(6, np.int64), "random", "test", 0)
    pkg = build_package(PackageRequest(path, load_board("pynq-z2"), tmp_path / "pkg", batch=4, data=data,
                                       overlay_dir=tmp_path / "none"))
    assert main(["run", str(pkg), "--target", "emulator", "--json", str(tmp_path / "run.json")]) == 0
    text = capsys.readouterr().out
    assert "latency per image, measured" in text and "latency per image, modelled" in text
    assert "MODEL_CYCLES at 100 MHz: the cycle model" in text
    out = json.loads((tmp_path / "run.json").read_text())
    assert out["timer"].startswith("emulated global timer")
    assert out["measured_us_per_image"] == pytest.approx(out["modelled_us_per_image"], abs=2 / 325)
    assert out["modelled_us_per_image"] == pytest.approx(out["cycles"] / 100 / 6)
