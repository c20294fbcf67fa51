"""The emulated accelerator: the IP's AXI-Lite registers and DDR behaviour, backed by the bit-true executor.

:class:`EmulatedAccelerator` is a :class:`resilq.deploy.memory.Device`: 32-bit ``read``/``write`` at
the offsets of :mod:`resilq.hls.regmap` and DDR blocks from :meth:`allocate`. Writing AP_START runs the
kernel's contract in Python:

* the memory image the pointer registers point at is decoded back into a network
  (:mod:`resilq.deploy.unpack`: the same header and descriptor checks and STATUS codes as the kernel);
* the batch is executed by :class:`resilq.ir.Executor` (the bit-true reference) with the fault of the
  FI_* registers (every inference, or the first after a new TOKEN with ONCE, like the kernel's one-shot
  register that survives runs), and every layer's output and the logits are written back to DDR;
* MODEL_CYCLES and the per-descriptor profile (layer-major, batched vector layers) come from :mod:`resilq.hls.cycles`, CORRECTIONS and FI_HITS
  from :mod:`resilq.hls.reference` -- the models the C-simulated kernel is tested against;
* the Zynq global timer the driver measures runs with (:mod:`resilq.deploy.timer`) advances by each run's
  modelled cycles, so "measured" equals modelled here by construction and the board's code path is exercised;
* ap_ctrl_hs semantics as the C-sim bridge: AP_DONE and each output's ap_vld are clear-on-read, ISR
  toggles on write.

It is stricter than the hardware on purpose: a write outside the register map, to a read-only register
or to a reserved word raises :class:`EmulatorError` naming the offset (a board would ignore it or
answer with a bus error), so a driver bug surfaces in emulation. numpy only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from resilq.arith import FaultMode
from resilq.errors import ResilqError, UnsupportedModelError
from resilq.fault_kinds import LaneFault
from resilq.faults import Fault
from resilq.hls import cycles as cyc
from resilq.hls import imageformat as fmt
from resilq.hls import reference, upset_list
from resilq.hls import regmap as rm
from resilq.hls.config import DEFAULT_CONFIG, AccelConfig
from resilq.ir import Executor

from .memory import DeviceBuffer, HostMemory
from .timer import DeviceClocks, EmulatedGlobalTimer, GlobalTimer
from .unpack import DecodedImage, DecodeError, Header, check_shadows, decode, read_header

NO_TOKEN = -1


def default_clocks() -> DeviceClocks:
    """The default board's CPU and PL clocks (boards/pynq-z2/board.toml, or its board.json in a package)."""
    from resilq.boards import load_board

    return DeviceClocks.of_board(load_board())


class EmulatorError(ResilqError):
    """The driver did something the accelerator does not support (a bad register access, a bad address)."""


@dataclass(frozen=True)
class Outputs:
    """The read-only registers a run writes."""

    status: int = 0
    cycles: int = 0
    corrections: int = 0
    fi_hits: int = 0


def _word_map() -> dict[int, tuple[rm.Register, int]]:
    """Every 32-bit word of the register map: offset -> (register, word index; -1 for a protocol word)."""
    words: dict[int, tuple[rm.Register, int]] = {}
    for reg in rm.REGISTERS:
        data_words = 1 if reg.access is rm.Access.CTRL else reg.bits // 32
        for w in range(reg.words):
            words[reg.offset + 4 * w] = (reg, w if w < data_words else -1)
    return words


WORDS = _word_map()


class EmulatedAccelerator:
    """The accelerator's register file and DDR, executed by the bit-true executor (one IP instance)."""

    name = "emulator"

    def __init__(self, config: AccelConfig = DEFAULT_CONFIG, memory: HostMemory | None = None,
                 clocks: DeviceClocks | None = None):
        self.config = config
        self.memory = memory or HostMemory()
        self.global_timer = EmulatedGlobalTimer(clocks or default_clocks())
        self.regs = np.zeros(rm.ADDRESS_SPACE // 4, dtype=np.uint32)
        self.reset()
        self._cache: tuple[bytes, DecodedImage, Executor] | None = None
        self.runs = 0

    # ------------------------------------------------------------------------------------------ bus
    def allocate(self, nbytes: int) -> DeviceBuffer:
        return self.memory.allocate(nbytes)

    def timer(self) -> GlobalTimer:
        return self.global_timer.timer()

    def reset(self) -> None:
        """Power-on reset: registers cleared, the one-shot fault state forgotten."""
        self.regs[:] = 0
        self.done = False
        self.isr = 0
        self.last_token = NO_TOKEN
        self.kept_tag = 0  # WEIGHTS_TAG whose weights the kernel's buffers hold (0: none it may trust)

    def _locate(self, offset: int) -> tuple[rm.Register | rm.Table, int]:
        if offset % 4 or not 0 <= offset < rm.ADDRESS_SPACE:
            raise EmulatorError(f"AXI-Lite access at {offset:#x}: not a word inside the {rm.ADDRESS_SPACE:#x}-byte "
                                "register space")
        if rm.CRIT_TABLE.offset <= offset < rm.CRIT_TABLE.end:
            return rm.CRIT_TABLE, (offset - rm.CRIT_TABLE.offset) // 4
        if offset not in WORDS:
            raise EmulatorError(f"AXI-Lite access at {offset:#x}: no register there (see resilq.hls.regmap)")
        return WORDS[offset]

    def write(self, offset: int, value: int) -> None:
        target, word = self._locate(offset)
        value = int(value) & 0xFFFFFFFF
        if target is rm.AP_CTRL:
            self.regs[0] = value & rm.AP_CTRL.field("AUTO_RESTART").mask
            if value & rm.AP_CTRL.field("AP_START").mask:
                self._start()
            return
        if target is rm.ISR:
            self.isr ^= value & 0x3
            return
        if isinstance(target, rm.Register) and (target.access is rm.Access.RO or word < 0):
            what = "read-only" if target.access is rm.Access.RO else "reserved protocol word of"
            raise EmulatorError(f"write of {value:#x} to {offset:#x}: {what} register {target.name}")
        self.regs[offset // 4] = value

    def read(self, offset: int) -> int:
        target, word = self._locate(offset)
        if target is rm.AP_CTRL:
            ctrl = rm.AP_CTRL
            value = ctrl.field("AP_IDLE").mask | ctrl.field("AP_READY").mask | int(self.regs[0])
            if self.done:
                value |= ctrl.field("AP_DONE").mask
            self.done = False  # clear on read
            return value
        if target is rm.ISR:
            return self.isr
        value = int(self.regs[offset // 4])
        if isinstance(target, rm.Register) and target.access is rm.Access.RO and word < 0:
            self.regs[offset // 4] = 0  # ap_vld: clear on read
        return value

    def _reg(self, reg: rm.Register) -> int:
        return int(self.regs[reg.offset // 4])

    def _pointer(self, reg: rm.Register) -> int:
        return self._reg(reg) | (int(self.regs[reg.offset // 4 + 1]) << 32)

    def table(self) -> np.ndarray:
        start = rm.CRIT_TABLE.offset // 4
        return self.regs[start:start + rm.CRIT_TABLE.capacity]

    # ------------------------------------------------------------------------------------------ the kernel
    def _start(self) -> None:
        n = self._reg(rm.N_IMAGES)
        out = Outputs() if n == 0 else self._run_keeping(n)
        values = {rm.VERSION_REG: rm.VERSION, rm.HW_CONFIG: self.config.hw_config_word(),
                  rm.CONFIG_ID: self.config.config_id, rm.STATUS: out.status,
                  rm.MODEL_CYCLES_LO: out.cycles & 0xFFFFFFFF, rm.MODEL_CYCLES_HI: out.cycles >> 32,
                  rm.CORRECTIONS: out.corrections, rm.FI_HITS: out.fi_hits}
        for reg, value in values.items():
            self.regs[reg.offset // 4] = value
            self.regs[reg.valid_offset // 4] = 1
        self.global_timer.advance(out.cycles)
        self.done = True
        self.runs += 1
        if int(self.regs[rm.IER.offset // 4]) & 1:
            self.isr |= 1

    def _image_bytes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The image as the three masters see it: control (from CTRL_MEM), weights, activations."""
        views = []
        for reg, align in ((rm.CTRL_MEM, 4), (rm.WEIGHT_MEM, 8), (rm.ACT_MEM, fmt.ACT_BEAT_BYTES)):
            address = self._pointer(reg)
            if address % align:
                raise EmulatorError(f"{reg.name} = {address:#x} is not {align}-byte aligned")
            try:
                block = self.memory.block_at(address, reg.name)
            except ResilqError as exc:
                raise EmulatorError(f"the accelerator did not start: {exc}") from None
            views.append(block.array[address - block.physical_address:])
        return views[0], views[1], views[2]

    def _decoded(self, ctrl: np.ndarray, weights: np.ndarray, header: Header) -> tuple[DecodedImage, Executor]:
        """Decode the image, cached by its descriptor and weight bytes (not the profile) and the table."""
        desc = fmt.DescWord
        first = header.desc_offset
        inputs = int(ctrl[first + 4 * desc.IN_ADDR:first + 4 * desc.IN_ADDR + 4].view("<u4")[0])
        key = hashlib.blake2b(ctrl[:header.profile_offset].tobytes(), digest_size=16)
        key.update(ctrl[header.profile_offset + 4 * fmt.PROFILE_WORDS * header.n_desc:inputs].tobytes())
        key.update(self.table().tobytes())
        digest = key.digest()
        if self._cache is not None and self._cache[0] == digest:
            return self._cache[1], self._cache[2]
        image = decode(ctrl, weights, self.table(), self.config, header)
        executor = Executor(image.model)
        self._cache = (digest, image, executor)
        return image, executor

    def _fault(self, image: DecodedImage) -> tuple[Fault | LaneFault | None, bool]:
        """The fault the FI registers describe if it reaches a slot, and whether it is a one-shot: one slot, or
        with FI_CTRL.KIND every value PE lane FI_SLOT writes (in FI_LAYER, or every neuron layer)."""
        ctrl = self._reg(rm.FI_CTRL)
        if not rm.FI_CTRL.field("EN").get(ctrl):
            return None, False
        once = bool(rm.FI_CTRL.field("ONCE").get(ctrl))
        layer, slot = self._reg(rm.FI_LAYER), self._reg(rm.FI_SLOT)
        mask, mode = self._reg(rm.FI_MASK) & 0xFF, rm.FI_MODE.field("MODE").get(self._reg(rm.FI_MODE))
        neuron_layers = {d.ir_layer for d in image.descriptors if d.flags & fmt.Flag.NEURONS}
        if rm.FI_CTRL.field("KIND").get(ctrl):
            every = bool(rm.FI_CTRL.field("ALL_LAYERS").get(ctrl))
            if not every and layer not in neuron_layers:
                return None, once
            return LaneFault(slot, None if every else layer, mask, FaultMode(mode), self.config.pe,
                             self.config.shadow_units), once
        if layer not in neuron_layers or slot >= image.model.slots_in(layer):
            return None, once  # the comparator never matches: no value is hit
        return Fault(layer, slot, mask, FaultMode(mode)), once

    def _run_keeping(self, n: int) -> Outputs:
        """A run, then what the kernel's buffers hold: this image's weights if it completed with a WEIGHTS_TAG,
        nothing to trust after any other run (it loaded over them, or stopped part way)."""
        out = self._run(n)
        self.kept_tag = self._tag if out.status == int(fmt.Status.OK) else 0
        return out

    def _run(self, n: int) -> Outputs:
        cfg = self.config
        self._tag = 0  # this run's WEIGHTS_TAG, once its header is read
        kept = warm = False  # its weights kept on chip; and left there by the last completed run
        cycles = fmt.HEADER_WORDS + cfg.latency.run
        ctrl, weights, act = self._image_bytes()
        fi_ctrl = self._reg(rm.FI_CTRL)
        try:  # the kernel's order: header, fault registers, then each descriptor as it comes
            header = read_header(ctrl, cfg, n)
            self._tag = header.weights_tag
            kept = self._tag != 0
            warm = kept and self._tag == self.kept_tag
            upsets = bool(rm.FI_CTRL.field("EN").get(fi_ctrl) and rm.FI_CTRL.field("UPSETS").get(fi_ctrl))
            list_at, list_count = self._reg(rm.FI_LIST), self._reg(rm.FI_COUNT)
            if upsets:
                if (rm.FI_CTRL.field("KIND").get(fi_ctrl) or n != 1 or list_at % 8
                        or list_at + 8 * list_count > header.image_bytes):
                    raise DecodeError(fmt.Status.FAULT_CONFIG, 0, "output upsets need KIND 0, one image and an "
                                      "8-byte aligned list inside the image")
            elif rm.FI_CTRL.field("EN").get(fi_ctrl) and (self._reg(rm.FI_MASK) & 0xFF == 0 or
                                                          self._reg(rm.FI_MODE) > FaultMode.STUCK_AT_1):
                raise DecodeError(fmt.Status.FAULT_CONFIG, 0, "fault injection enabled with a zero mask or mode 3")
            if (rm.FI_CTRL.field("EN").get(fi_ctrl) and rm.FI_CTRL.field("KIND").get(fi_ctrl)
                    and self._reg(rm.FI_SLOT) >= cfg.fault_lanes):
                raise DecodeError(fmt.Status.FAULT_CONFIG, 0, f"lane fault on lane {self._reg(rm.FI_SLOT)}, PE={cfg.pe} "
                                  f"+ {cfg.shadow_units} shadow lanes")
            image, executor = self._decoded(ctrl, weights, header)
            for k, plan in enumerate(image.plans):  # a batched layer's shadows depend on this run's chunk size
                if plan.batched and n > 1:
                    try:
                        check_shadows(k, plan, cfg, n)
                    except DecodeError as exc:
                        exc.fetched, exc.plans = 1, image.plans[:k]
                        raise
        except DecodeError as exc:
            # every image ran the descriptors before the refused one (layer-major), then it was fetched and refused
            if exc.fetched:
                cycles += (sum(cyc.layer_cycles(p, cfg, n, kept, warm).total for p in exc.plans)
                           + exc.fetched * (fmt.DESC_WORDS + cfg.latency.descriptor))
            if exc.ran is not None:  # refused while running: the kernel completed that call first
                cycles += cyc.call_cycles(exc.ran, cfg, exc.ran_images, resident=warm).total
            return Outputs(int(exc.status) | (exc.descriptor << 8), cycles)
        except UnsupportedModelError as exc:
            raise EmulatorError(f"the emulator cannot run this memory image: {exc}") from None
        # the kernel arms (and, for a one-shot, records the TOKEN) before it runs any descriptor; with UPSETS it
        # ignores FI_LAYER/FI_SLOT/FI_MASK/FI_MODE, and a one-shot that is not armed never reads the list
        if upsets:
            fault, once = None, bool(rm.FI_CTRL.field("ONCE").get(fi_ctrl))
        else:
            fault, once = self._fault(image)
        token = rm.FI_CTRL.field("TOKEN").get(fi_ctrl)
        armed = np.zeros(n, dtype=bool)
        if rm.FI_CTRL.field("EN").get(fi_ctrl):
            if once:
                if token != self.last_token:
                    armed[0] = True
                    self.last_token = token
            else:
                armed[:] = True
        upset_cycles: dict[int, int] = {}  # descriptor -> the kernel's cycles loading and applying its upsets
        if upsets and armed.any():
            items = act[list_at:list_at + 8 * list_count].view("<u8")
            neurons = [k for k, d in enumerate(image.descriptors) if d.flags & fmt.Flag.NEURONS]
            layers = [image.descriptors[k].ir_layer for k in neurons]
            counts = upset_list.layer_counts(items, layers)
            per_layer = cyc.upset_cycles(cfg, items, layers)
            upset_cycles = {k: per_layer[image.descriptors[k].ir_layer] for k in neurons}
            try:
                fault = upset_list.faults(upset_list.decode(image.model, [d.ir_layer for d in image.descriptors],
                                                            items))
            except upset_list.UpsetError as exc:
                return self._refused_upsets(exc, image, act, n, cycles, kept, warm, counts, upset_cycles)
        first, layout = image.descriptors[0], image.plans[0].in_layout
        x = layout.decode(np.stack([act[first.in_addr + i * first.in_stride:][:layout.nbytes]
                                    for i in range(n)]).view(np.int8))
        hit = armed if fault is not None else np.zeros(n, dtype=bool)
        activations = self._execute(executor, x, fault, hit)
        for d, plan in zip(image.descriptors, image.plans):
            self._store(d, plan, activations[d.ir_layer], ctrl, act)
        profile = np.asarray([cyc.layer_cycles(p, cfg, n, kept, warm).total + (upset_cycles.get(k, 0) if hit.any() else 0)
                              for k, p in enumerate(image.plans)], dtype=np.uint64)
        words = ctrl[image.header.profile_offset:image.header.profile_offset + 8 * len(profile)].view("<u4")
        words[0::2] = (profile & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        words[1::2] = (profile >> np.uint64(32)).astype(np.uint32)
        cycles += int(profile.sum()) + fmt.PROFILE_WORDS * len(profile) + cfg.latency.store
        corrections = reference.expected_corrections(image.model, x[hit], fault) if hit.any() else 0
        hits = reference.expected_fi_hits(fault, int(hit.sum()), model=image.model) if hit.any() else 0
        return Outputs(int(fmt.Status.OK), cycles, corrections, hits)

    def _refused_upsets(self, exc, image: DecodedImage, act: np.ndarray, n: int, cycles: int, kept: bool, warm: bool,
                        counts: dict[int, tuple[int, int]], upset_cycles: dict[int, int]) -> Outputs:
        """A list the kernel refuses at ``exc.descriptor``: what it did before it stopped -- the descriptors before
        (their upsets applied: FI_HITS and CORRECTIONS of those flips), then that descriptor's fetch (and its on-chip
        pool's) and list read; or, for items of no neuron layer, every descriptor -- and no profile write."""
        cfg = self.config
        k = exc.descriptor
        ran = range(len(image.plans)) if exc.complete else range(k)
        cycles += sum(cyc.layer_cycles(image.plans[j], cfg, n, kept, warm).total + upset_cycles.get(j, 0) for j in ran)
        if not exc.complete:
            fetched = 2 if image.plans[k].pool_next else 1
            cycles += (fetched * (fmt.DESC_WORDS + cfg.latency.descriptor) + cfg.latency.load_input
                       + counts[image.descriptors[k].ir_layer][0])
        flips = upset_list.faults(exc.masks)
        corrections = 0
        if flips:
            first, layout = image.descriptors[0], image.plans[0].in_layout
            x = layout.decode(act[first.in_addr:][:layout.nbytes][None].view(np.int8))
            corrections = reference.expected_corrections(image.model, x, flips)
        return Outputs(int(exc.status) | (k << 8), cycles, corrections, len(flips))

    @staticmethod
    def _execute(executor: Executor, x: np.ndarray, fault, hit: np.ndarray) -> list[np.ndarray]:
        """Every layer's output with the fault (one, or a list: an upset list's flips) in the inferences ``hit``
        marks (batched by fault state)."""
        faults = [] if fault is None else list(fault) if isinstance(fault, list) else [fault]
        if not faults or hit.all() or not hit.any():
            return executor.run(x, faults=faults if hit.any() else [], collect=True).activations
        with_fault = executor.run(x[hit], faults=faults, collect=True).activations
        without = executor.run(x[~hit], collect=True).activations
        merged = []
        for a, b in zip(with_fault, without):
            out = np.empty((x.shape[0], *a.shape[1:]), dtype=a.dtype)
            out[hit], out[~hit] = a, b
            merged.append(out)
        return merged

    @staticmethod
    def _store(d, plan, values: np.ndarray, ctrl: np.ndarray, act: np.ndarray) -> None:
        """Write one descriptor's outputs where its OUT_ADDR/OUT_STRIDE say: int8 maps pixel-major and padded
        (``plan.out_layout``, as the kernel's store_output), int32 logits as words through the control master."""
        n = values.shape[0]
        if d.raw:
            target, stored = ctrl, values.reshape(n, -1).astype("<i4").view(np.uint8)
        else:
            target, stored = act, plan.out_layout.encode(values.reshape(n, -1).astype(np.int8)).view(np.uint8)
        nbytes = stored.shape[1]
        images = range(n) if d.out_stride else [n - 1]
        for i in images:
            start = d.out_addr + i * d.out_stride
            target[start:start + nbytes] = stored[i]
