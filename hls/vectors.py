"""Golden test vectors for the Vitis HLS testbench (``hls/tb/accel_tb.cpp``).

A vector is a directory the testbench reads: the packed memory image with its inputs (``image.bin``),
the critical table (``table.bin``), the register values (``args.txt``), the image as it must look after
the run (``expected.bin``: every layer's output from the IR executor, the per-layer profile from the
cycle model), the regions each m_axi port writes (``regions.txt``) and the expected counters
(``expect.txt``). The same testbench runs under Vitis ``csim_design``/``cosim_design`` and, compiled with
g++, in the test suite.

C/RTL co-simulation treats every m_axi pointer as its own memory of ``depth`` elements (the INTERFACE
pragma's depth, UG1399): the testbench gives each port its own copy of the image, compares each copy only
where that port writes (``regions.txt``; everything else must be untouched), and :func:`cosim_depths` sizes
the declared depths from the largest image these vectors pack, so depth, buffers and images agree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from resilq.arith import FaultMode, Scheme, requantize
from resilq.fault_kinds import BerFault, LaneFault
from resilq.faults import Fault, shadow_slot
from resilq.ir import Conv2d, Executor, Flatten, InputQuant, Linear, MaxPool2d, Model, Protection, Requant
from resilq.ir.kernels import accumulate, maxpool

from . import regmap, upset_list
from .config import AccelConfig
from .cycles import cycle_report, upset_cycles
from .mapping import slot_lanes
from .packing import MemoryImage, pack
from .reference import expected_corrections, expected_fi_hits


def golden_model(seed: int = 7) -> Model:
    """A small network with every layer kind and three protection schemes (seeded, calibrated shifts)."""
    rng = np.random.default_rng(seed)
    inp = InputQuant((2, 10, 10), 6)
    x = inp.quantize(rng.random((32, 2, 10, 10), dtype=np.float32))
    layers: list = []

    def add(layer, relu: bool) -> None:
        """Append ``layer`` with a shift that maps its 99th-percentile accumulator near 100."""
        nonlocal x
        acc = accumulate(layer, x)
        peak = np.percentile(np.abs(np.moveaxis(acc, 1, 0).reshape(acc.shape[1], -1)), 99, axis=1) + 1
        shift = np.clip(np.ceil(np.log2(peak / 100.0)), 0, 30).astype(np.int32)
        layer = dataclasses.replace(layer, requant=Requant(shift, relu))
        layers.append(layer)
        x = requantize(acc, shift.reshape((-1,) + (1,) * (acc.ndim - 2)), *layer.requant.bounds)

    def w(*shape: int) -> np.ndarray:
        return rng.integers(-50, 51, size=shape).astype(np.int8)

    def b(n: int) -> np.ndarray:
        return rng.integers(-300, 301, size=n).astype(np.int32)

    add(Conv2d("conv1", w(6, 2, 3, 3), b(6), None, stride=1, padding=1), relu=True)
    layers.append(MaxPool2d("pool1", 2, 2))
    x = maxpool(layers[-1], x)
    add(Conv2d("conv2", w(9, 6, 3, 3), b(9), None, stride=2, padding=1), relu=True)
    layers.append(Flatten("flatten"))
    x = x.reshape(x.shape[0], -1)
    add(Linear("fc1", w(12, x.shape[1]), b(12), None), relu=False)
    layers.append(Linear("fc2", w(10, 12), b(10), None))
    model = Model(inp, tuple(layers), {"name": "golden"})
    return model.with_protection({
        0: Protection(Scheme.SPLIT, np.sort(rng.choice(6 * 100, 60, replace=False)).astype(np.int32)),
        2: Protection(Scheme.TMR, np.sort(rng.choice(9 * 9, 12, replace=False)).astype(np.int32)),
        4: Protection(Scheme.DUP_MIN, np.array([1, 4, 7], np.int32)),
    })


def stacked_model(seed: int = 11) -> Model:
    """Kernel rows stacked into SIMD words at every SIMD (``LayerPlan.stack``): a 1-channel 3 x 3 conv reading the
    dense network input (2 rows a word at SIMD 8), then a 2-channel 2 x 2 conv reading the padded map it stores
    (2 rows a word), TMR on a few of its neurons."""
    rng = np.random.default_rng(seed)
    inp = InputQuant((1, 9, 7), 6)

    def conv(out_c: int, in_c: int, k: int, pad: int, shift: int) -> Conv2d:
        return Conv2d(f"conv{out_c}", rng.integers(-50, 51, size=(out_c, in_c, k, k)).astype(np.int8),
                      rng.integers(-300, 301, size=out_c).astype(np.int32), Requant(np.full(out_c, shift, np.int32),
                                                                                    True), 1, pad)

    first, second = conv(2, 1, 3, 1, 6), conv(3, 2, 2, 0, 7)
    layers = (first, second, Flatten("flatten"), Linear("fc", rng.integers(-50, 51, size=(5, 3 * 8 * 6)).astype(
        np.int8), rng.integers(-300, 301, size=5).astype(np.int32), None))
    model = Model(inp, layers, {"name": "stacked"})
    return model.with_protection({1: Protection(Scheme.TMR, np.array([2, 17, 60, 101], np.int32))})


@dataclass(frozen=True)
class Vector:
    name: str
    model: Model
    inputs: np.ndarray
    fault: Fault | LaneFault | BerFault | None


def golden_vectors(seed: int = 7, config: AccelConfig | None = None) -> list[Vector]:
    """The vectors of a build (``config``: its lanes name the lane-fault vector's lane; default AccelConfig())."""
    config = config or AccelConfig()
    model = golden_model(seed)
    rng = np.random.default_rng(seed + 1)
    x = model.quantize_input(rng.random((3, *model.input.shape), dtype=np.float32))
    shadow = shadow_slot(model, 2, 5, 2)  # the second shadow of conv2's sixth protected neuron
    stacked = stacked_model()
    y = stacked.quantize_input(rng.random((2, *stacked.input.shape), dtype=np.float32))
    return [
        Vector("plain", model.unprotected(), x, None),
        Vector("protected", model, x, None),
        Vector("fault_shadow", model, x, Fault(2, shadow, 0x41, FaultMode.FLIP)),
        Vector("fault_split", model, x, Fault(0, int(model.protection(0).neurons[3]), 0x40, FaultMode.STUCK_AT_1)),
        Vector("stacked", stacked, y, Fault(1, shadow_slot(stacked, 1, 2, 1), 0x22, FaultMode.FLIP)),
        # a persistent fault in the highest lane that writes a slot of conv2 (TMR) -- a dedicated shadow lane where
        # the build has them and uses one -- so the vector always hits: the copies it computes are outvoted
        Vector("lane_fault", model, x, LaneFault(int(slot_lanes(model, 2, config.pe, config.shadow_units).max()), 2,
                                                 0x41, FaultMode.FLIP, config.pe, config.shadow_units)),
        # output-site BER of one inference through an upset list (FI_CTRL.UPSETS): originals and shadow copies
        Vector("output_upsets", model, x[:1], BerFault(3e-2, "outputs", 5, "inference")),
    ]


def upset_items(vector: Vector) -> np.ndarray | None:
    """The upset list of a BER vector (one image, global index 0), or None for a register fault."""
    f = vector.fault
    if getattr(f, "kind", "output") != "ber":
        return None
    return upset_list.encode(vector.model, {k: m[0] for k, m in f.output_masks(vector.model, np.array([0])).items()})


def vector_image(vector: Vector, config: AccelConfig) -> MemoryImage:
    """The memory image a vector runs on (with room for its upset list)."""
    items = upset_items(vector)
    return pack(vector.model, config, batch=vector.inputs.shape[0], upset_capacity=0 if items is None else items.size)


#: The m_axi ports as the testbench names them, with their element size in bytes (accel_top.cpp: uint32_t
#: ctrl_mem, uint64_t weight_mem, uint64_t act_mem).
PORT_BYTES = {"ctrl": 4, "weights": 8, "act": 8}


@dataclass(frozen=True)
class CosimDepth:
    """Declared co-simulation depth of each m_axi port, in elements of the port's type."""

    ctrl: int
    weights: int
    act: int

    @classmethod
    def for_bytes(cls, nbytes: int) -> CosimDepth:
        return cls(*(-(-nbytes // PORT_BYTES[p]) for p in ("ctrl", "weights", "act")))


@cache
def cosim_depths(config: AccelConfig) -> CosimDepth:
    """The depths of ``config``'s build: each port can hold the largest golden-vector image."""
    largest = max(vector_image(v, config).nbytes for v in golden_vectors(config=config))
    return CosimDepth.for_bytes(largest)


def written_regions(image: MemoryImage, n: int) -> dict[str, list[tuple[int, int]]]:
    """``(offset, nbytes)`` of every byte range each port writes in a run of ``n`` images: the control
    master the cycle profile and the int32 logits, the activation master every int8 layer output."""
    regions: dict[str, list[tuple[int, int]]] = {"ctrl": [(image.profile_offset, 8 * len(image.plans))],
                                                  "weights": [], "act": []}
    for plan in image.plans:
        region = image.outputs[plan.index]
        port = "ctrl" if region.dtype == np.int32 else "act"
        for k in range(n if region.stride else 1):
            regions[port].append((region.offset + k * region.stride, region.nbytes))
    return regions


def write_vector(vector: Vector, config: AccelConfig, directory: Path) -> Path:
    """Write one vector directory for ``config``; returns it."""
    out = directory / vector.name
    out.mkdir(parents=True, exist_ok=True)
    n = vector.inputs.shape[0]
    image: MemoryImage = vector_image(vector, config)
    image.write_inputs(vector.inputs)
    items = upset_items(vector)
    fi_list, fi_count = (0, 0) if items is None else image.write_upsets(items)
    image.buffer.tofile(out / "image.bin")
    image.table.astype("<u4").tofile(out / "table.bin")
    faults = [] if vector.fault is None else [vector.fault]
    result = Executor(vector.model).run(vector.inputs, faults=faults, collect=True)
    expected = image.buffer.copy()
    for i, region in image.outputs.items():  # every image has its own region of every layer
        item = region.encode(result.activations[i])  # as the kernel stores it (pixel-major, padded)
        for k in range(n):
            start = region.offset + k * region.stride
            expected[start:start + region.nbytes] = item[k]
    report = cycle_report(vector.model, config, images=n)
    # a BER vector (one image): each neuron layer's cycles loading and applying its part of the list
    per_layer = {} if items is None else upset_cycles(config, items, [p.index for p in image.plans
                                                                       if p.index in vector.model.neuron_layers])
    extra = [per_layer.get(p.index, 0) for p in image.plans]
    profile = np.array([layer.total + e for layer, e in zip(report.layers, extra)], dtype="<u8")
    expected[image.profile_offset:image.profile_offset + profile.nbytes] = profile.view(np.uint8)
    expected.tofile(out / "expected.bin")
    (out / "regions.txt").write_text("".join(f"{port} {offset} {nbytes}\n" for port, spans in
                                             written_regions(image, n).items() for offset, nbytes in spans))
    f = vector.fault
    cycles = report.run(n) + sum(extra)
    if items is not None:  # the list's flips as one-slot faults
        f = upset_list.faults(upset_list.decode(vector.model, image.descriptor_layers, items))
    lane = getattr(f, "kind", "output") == "lane"
    fi_ctrl = 0 if f is None else (regmap.FI_CTRL.field("EN").mask | (regmap.FI_CTRL.field("KIND").mask if lane else 0))
    if items is not None:
        fi_ctrl |= regmap.FI_CTRL.field("UPSETS").mask
    single = f is not None and items is None
    args = {"n_images": n, "fi_ctrl": fi_ctrl, "fi_layer": f.layer if single else 0,
            "fi_slot": (f.lane if lane else f.slot) if single else 0, "fi_mask": f.mask if single else 0,
            "fi_mode": int(f.mode) if single else 0, "fi_list": fi_list, "fi_count": fi_count,
            "table_words": image.table.size}
    (out / "args.txt").write_text("".join(f"{k} {v}\n" for k, v in args.items()))
    expect = {"status": 0, "cycles": cycles, "corrections": expected_corrections(vector.model, vector.inputs, f),
              "fi_hits": expected_fi_hits(f, n, model=vector.model), "version": regmap.VERSION, "config_id": config.config_id}
    (out / "expect.txt").write_text("".join(f"{k} {v}\n" for k, v in expect.items()))
    return out
