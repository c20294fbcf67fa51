"""The driver: one class that loads a network onto the accelerator and runs it, on any :class:`Device`.

:class:`Accelerator` is the same code on a PYNQ-Z2 (the device is the overlay's
:class:`resilq.deploy.pynq_ip.ResilqAccelIP`), on the emulated device and on the C-simulated IP. It

1. probes the IP (a zero-image run) and refuses one whose register-map version or build configuration
   differs from what it packs for (:func:`resilq.hls.host.check_hardware`);
2. packs the network straight into a DDR block of the device (:func:`resilq.hls.packing.pack` with the
   device's ``allocate``), writes the pointer registers and the critical-neuron table;
3. per run: writes the inputs, flushes the CPU cache, programs the fault-injection registers, reads the
   device's hardware timer (:mod:`resilq.deploy.timer`: the Zynq global timer on a board), starts the IP,
   busy-polls AP_DONE with a timeout, reads the timer again (the *measured* latency), checks STATUS,
   invalidates the cache and reads the logits (and every layer's output with
   ``keep_activations``). MODEL_CYCLES is the kernel's cycle model; the timer is the measurement.

Every register access goes through :mod:`resilq.hls.host` and :mod:`resilq.hls.regmap`: no offset is
written here. numpy only.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from resilq.errors import ParameterError
from resilq.faults import Fault
from resilq.hls import host, regmap, upset_list
from resilq.hls.config import DEFAULT_CONFIG, AccelConfig
from resilq.hls.packing import MemoryImage, pack
from resilq.ir import Model
from resilq.ir.executor import check_input, top1
from resilq.validation import MAX_BATCH, check_int, check_timeout

from .memory import Device, DeviceBuffer

#: Seconds to wait for AP_DONE before declaring the accelerator hung.
DEFAULT_TIMEOUT = 30.0


@dataclass
class RunResult:
    """What one or more runs return: logits, the counters (summed over runs) and timing."""

    logits: np.ndarray  # int32 (N, classes)
    cycles: int  # MODEL_CYCLES register (the cycle model, not a measurement), summed over the runs
    corrections: int
    fi_hits: int
    profile: np.ndarray  # per-descriptor modelled cycles, summed
    seconds: float  # host wall time (perf_counter) from AP_START to AP_DONE seen by the host, summed
    runs: int
    activations: list[np.ndarray] | None = None
    measured_seconds: float = 0.0  # the device timer from just before AP_START to the poll seeing AP_DONE, summed
    timer: str = ""  # what measured it (the Zynq global timer, or an emulated one)

    @property
    def predictions(self) -> np.ndarray:
        return top1(self.logits)

    @property
    def images(self) -> int:
        return int(self.logits.shape[0])


class Accelerator:
    """A network loaded on one accelerator instance (``device``), ready to run batches of int8 inputs."""

    def __init__(self, device: Device, model: Model, config: AccelConfig = DEFAULT_CONFIG, batch: int = 64,
                 keep_activations: bool = False, timeout: float = DEFAULT_TIMEOUT, keep_weights: bool = False,
                 upset_capacity: int | None = None):
        self.device = device
        self.model = model
        self.config = config
        self.timeout = check_timeout(timeout)
        check_int(batch, "batch", 1, MAX_BATCH)
        self.info = host.probe(device, timeout)
        host.check_hardware(self.info, config)
        self.timer = device.timer()
        self.buffer: DeviceBuffer | None = None
        # keep_weights: the network's weights stay on chip between runs where they fit (resilq.hls.packing.pack)
        # upset_capacity: room for the upset list of an output-site BER run (resilq.hls.upset_list), 8 bytes an item;
        # by default every neuron layer's capacity on the kernel, so only that limit can refuse a draw
        if upset_capacity is None:
            upset_capacity = len(model.neuron_layers) * regmap.UPSET_CAPACITY
        self.image: MemoryImage = pack(model, config, batch, allocate=self._allocate, keep_weights=keep_weights,
                                       upset_capacity=upset_capacity)
        self.keep_activations = keep_activations  # read every layer's output back after each run
        self._load()

    def _allocate(self, nbytes: int) -> np.ndarray:
        self.buffer = self.device.allocate(nbytes)
        return self.buffer.array

    @property
    def physical_address(self) -> int:
        assert self.buffer is not None
        return self.buffer.physical_address

    def _load(self) -> None:
        """Point the IP at this network and write its critical table (again if another network used the IP)."""
        loaded = _LOADED.get(id(self.device))
        if loaded is not None and loaded[1] is self:
            return
        host.write_pointers(self.device, self.physical_address)
        host.write_table(self.device, self.image.table)
        _LOADED[id(self.device)] = (self.device, self)

    @property
    def batch(self) -> int:
        return self.image.batch

    def run(self, x: np.ndarray, fault: Fault | None = None, once: bool = False, first_index: int = 0) -> RunResult:
        """One run of the int8 batch ``x`` (at most ``batch`` images) with at most one fault in the registers.

        ``fault`` hits every inference of the run, or with ``once`` only the first (a fresh TOKEN arms it).
        A :class:`resilq.fault_kinds.LaneFault` goes into the registers too (FI_CTRL.KIND: every value the lane
        writes). A stored-word fault (:class:`resilq.fault_kinds.WeightFault`, a per-run weight ``BerFault``) is written
        into the DDR image for this run instead (:mod:`resilq.deploy.upsets`), then restored. A ``BerFault`` on
        outputs runs image by image, each with its upset list (:mod:`resilq.hls.upset_list`, FI_CTRL.UPSETS): drawn
        once for the run, or per inference for the global input indices ``first_index, first_index + 1, ...``.
        """
        kind = getattr(fault, "kind", "output")
        if kind == "ber" and fault.hits_outputs:
            if once:
                raise ParameterError(f"{fault}: BER flips are drawn for every inference; once=True is for output faults")
            return self._run_upsets(x, fault, first_index)
        if kind == "lane" and (fault.pe, fault.units) != (self.config.pe, self.config.shadow_units):
            raise ParameterError(f"{fault}: a lane fault of a {fault.pe}-lane array with {fault.units} shadow lanes, "
                                 f"but this build has PE={self.config.pe} and {self.config.shadow_units}")
        if kind not in ("output", "lane"):
            from .upsets import upset

            if once:
                raise ParameterError(f"{fault}: a stored-word upset lasts the whole run; once=True is for output faults")
            self._load()
            assert self.buffer is not None
            with upset(self.image, self.model, fault, self.buffer.flush):
                return self.run(x)
        x = check_input(self.model, x)
        n = x.shape[0]
        if n > self.image.batch:
            raise ParameterError(f"{n} images exceed the packed batch of {self.image.batch}; use run_all")
        if fault is not None:
            try:
                fault.check(self.model)
            except ValueError as exc:
                raise ParameterError(str(exc)) from None
        self._load()
        assert self.buffer is not None
        self.image.write_inputs(x)
        self.buffer.flush()
        for _ in range(2):  # a one-shot whose token the IP already fired hits nothing: re-arm once (host.next_token)
            host.set_fault(self.device, fault, once=once, token=host.next_token(self.device) if once else 0)
            result = self._timed_run(n)
            if not (once and fault is not None and result.fi_hits == 0):
                break
        return result

    def _timed_run(self, n: int) -> RunResult:
        """Start the programmed run of ``n`` images, time it on the device's timer and read the results."""
        host.set_images(self.device, n)
        start = time.perf_counter()
        t0 = self.timer.ticks()
        host.go(self.device)
        host.wait(self.device, self.timeout)
        t1 = self.timer.ticks()
        seconds = time.perf_counter() - start
        status = host.read_status(self.device).check(self.image)
        self.buffer.invalidate()
        acts = None
        if self.keep_activations:
            acts = [self.image.read_output(i, n) for i in range(len(self.model.layers))]
        return RunResult(self.image.read_logits(n), status.cycles, status.corrections, status.fi_hits,
                         self.image.read_profile(), seconds, 1, acts, self.timer.seconds(t0, t1), self.timer.source)

    def _run_upsets(self, x: np.ndarray, fault, first_index: int) -> RunResult:
        """Output-site BER: each image alone (the kernel applies an upset list to a one-image run) with the masks
        drawn for it; a weight part of the draw (``sites="both"``) is in the image for the whole run."""
        from .upsets import upset

        x = check_input(self.model, x)
        if x.shape[0] > self.image.batch:
            raise ParameterError(f"{x.shape[0]} images exceed the packed batch of {self.image.batch}; use run_all")
        check_int(first_index, "first_index", 0)
        try:
            fault.check(self.model)
        except ValueError as exc:
            raise ParameterError(str(exc)) from None
        if fault.hits_weights:
            self._load()
            assert self.buffer is not None
            with upset(self.image, self.model, dataclasses.replace(fault, sites="weights"), self.buffer.flush):
                return self._run_upsets(x, dataclasses.replace(fault, sites="outputs"), first_index)
        self._load()
        assert self.buffer is not None
        def items(masks: dict[int, np.ndarray]) -> np.ndarray:
            return upset_list.encode(self.model, {k: m[0] for k, m in masks.items()})

        per_run = items(fault.output_masks(self.model)) if fault.per == "run" else None  # the same list every image
        parts = []
        for i in range(x.shape[0]):
            drawn = per_run if per_run is not None else items(fault.output_masks(self.model, np.array([first_index + i])))
            offset, count = self.image.write_upsets(drawn)
            self.image.write_inputs(x[i:i + 1])
            self.buffer.flush()
            host.set_upsets(self.device, offset, count)
            parts.append(self._timed_run(1))
        return _summed(parts)

    def run_all(self, x: np.ndarray, fault: Fault | None = None, first_index: int = 0) -> RunResult:
        """Any number of images, ``batch`` at a time, the fault in every inference; counters summed. ``first_index``:
        the global index of ``x[0]`` (per-inference BER draws are keyed by it)."""
        x = check_input(self.model, x)
        return _summed([self.run(x[s:s + self.image.batch], fault, first_index=first_index + s)
                        for s in range(0, x.shape[0], self.image.batch)])


def _summed(parts: list[RunResult]) -> RunResult:
    """Runs one after the other as one result: logits (and activations) concatenated, counters and times summed."""
    acts = None
    if all(p.activations is not None for p in parts):
        acts = [np.concatenate(layer) for layer in zip(*(p.activations for p in parts))]
    return RunResult(np.concatenate([p.logits for p in parts]), sum(p.cycles for p in parts),
                     sum(p.corrections for p in parts), sum(p.fi_hits for p in parts),
                     np.sum([p.profile for p in parts], axis=0), sum(p.seconds for p in parts),
                     sum(p.runs for p in parts), acts, sum(p.measured_seconds for p in parts), parts[0].timer)


#: id(device) -> (device, Accelerator whose network its pointer registers and table hold). The references
#: keep both alive, so an id is never reused while it is a key.
_LOADED: dict[int, tuple[Device, Accelerator]] = {}
