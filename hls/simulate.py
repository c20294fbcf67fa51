"""Run a model on the C-simulated accelerator and read back every layer, as the board would.

:class:`CsimAccelerator` packs a model once (:func:`.packing.pack`), attaches the image to the
simulated device's DDR, writes the critical table and the pointer registers, and runs batches through
the register-level sequence of :mod:`.host` -- the sequence the PYNQ driver uses on a board. Results are
the int8 outputs of every layer, the int32 logits, and the counters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from resilq.errors import ParameterError
from resilq.ir import Model
from resilq.ir.executor import check_input, top1

from . import host
from .config import DEFAULT_CONFIG, AccelConfig
from .csim import DEFAULT_PHYS_BASE, CsimDevice
from .packing import MemoryImage, pack


@dataclass
class AccelRun:
    """What one run returns: every IR layer's output (batch first), logits and the counters."""

    activations: list[np.ndarray] | None
    logits: np.ndarray
    status: host.RunStatus
    profile: np.ndarray  # per-descriptor cycles, summed over the run's images

    @property
    def predictions(self) -> np.ndarray:
        return top1(self.logits)

    @property
    def cycles(self) -> int:
        return self.status.cycles


class CsimAccelerator:
    """A model loaded on the C-simulated accelerator (the device is shared per process and config)."""

    def __init__(self, model: Model, config: AccelConfig = DEFAULT_CONFIG, batch: int = 64,
                 device: CsimDevice | None = None, keep_weights: bool = False):
        self.model = model
        self.config = config
        self.device = device or CsimDevice.open(config)
        self.image: MemoryImage = pack(model, config, batch, keep_weights=keep_weights)
        self.info = host.probe(self.device)
        host.check_hardware(self.info, config)

    def _load(self) -> None:
        """(Re)attach this model's image: other models may have used the shared device in between."""
        mem = self.device.memory
        if mem is None or mem.array is not self.image.buffer:
            self.device.attach(self.image.buffer, DEFAULT_PHYS_BASE)
            host.write_pointers(self.device, DEFAULT_PHYS_BASE)
            host.write_table(self.device, self.image.table)

    def run(self, x: np.ndarray, fault=None, once: bool = False, collect: bool = True) -> AccelRun:
        """Run the int8 batch ``x`` (at most ``batch`` images) with at most one fault in the registers.

        ``fault`` is a :class:`resilq.faults.Fault`; it hits every inference, or with ``once`` only the
        first one (a fresh token arms it for this run).
        """
        x = check_input(self.model, x)
        n = x.shape[0]
        if n > self.image.batch:
            raise ParameterError(f"{n} images exceed the packed batch of {self.image.batch}")
        if fault is not None:
            fault.check(self.model)
            if getattr(fault, "kind", "output") == "lane" and (fault.pe, fault.units) != (
                    self.config.pe, self.config.shadow_units):
                raise ParameterError(f"{fault}: a lane fault of a {fault.pe}-lane array with {fault.units} shadow "
                                     f"lanes, but this build has PE={self.config.pe} and {self.config.shadow_units}")
        self._load()
        self.image.write_inputs(x)
        for _ in range(2):  # a one-shot whose token the device already fired hits nothing: re-arm once
            host.set_fault(self.device, fault, once=once, token=host.next_token(self.device) if once else 0)
            status = host.run(self.device, n).check(self.image)
            if not (once and fault is not None and status.fi_hits == 0):
                break
        acts = None
        if collect:
            acts = [self.image.read_output(i, n) for i in range(len(self.model.layers))]
        return AccelRun(acts, self.image.read_logits(n), status, self.image.read_profile())

    def run_batches(self, x: np.ndarray, fault=None) -> AccelRun:
        """Run any number of images, ``batch`` at a time (logits only, counters summed)."""
        logits, cycles, corrections, hits = [], 0, 0, 0
        profile = np.zeros(len(self.image.plans), dtype=np.uint64)
        for start in range(0, x.shape[0], self.image.batch):
            r = self.run(x[start:start + self.image.batch], fault=fault, collect=False)
            logits.append(r.logits)
            cycles += r.cycles
            corrections += r.status.corrections
            hits += r.status.fi_hits
            profile += r.profile
        status = host.RunStatus(r.status.code, 0, cycles, corrections, hits)
        return AccelRun(None, np.concatenate(logits), status, profile)


def run_csim(model: Model, x: np.ndarray, fault=None, config: AccelConfig = DEFAULT_CONFIG) -> AccelRun:
    """One-shot convenience: pack ``model``, run ``x`` once, return every layer and the counters."""
    x = check_input(model, x)
    return CsimAccelerator(model, config, batch=x.shape[0]).run(x, fault=fault)
