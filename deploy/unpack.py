"""Memory image -> the network it encodes: what the emulated accelerator executes.

The emulator sees only what a board's accelerator sees -- the bytes in DDR and the critical-neuron
table in its AXI-Lite RAM -- and rebuilds from them, descriptor by descriptor, the integer network
(:class:`resilq.ir.Model`) and the accelerator plan (:class:`resilq.hls.mapping.LayerPlan`) it runs.
Nothing is taken from the host's model object, so an emulated run checks the packing too: a byte
written to the wrong place changes the emulated result exactly as it would change the board's.

Decoding applies the kernel's checks in the kernel's order and reports a refusal as the STATUS code
and descriptor index the kernel would (:class:`DecodeError`). numpy only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from resilq.arith import Scheme
from resilq.errors import ResilqError, UnsupportedModelError
from resilq.hls import imageformat as fmt
from resilq.hls import regmap as rm
from resilq.hls.config import AccelConfig
from resilq.hls.mapping import KeptLayout, LayerPlan, batch_misfit, check_plan, pools_on_chip
from resilq.ir import Clip, Conv2d, Flatten, InputQuant, Linear, MaxPool2d, Model, Protection, Requant

Status = fmt.Status


class DecodeError(ResilqError):
    """The image is one the kernel refuses: ``status`` and ``descriptor`` are what STATUS would read."""

    def __init__(self, status: Status, descriptor: int, message: str):
        super().__init__(f"{status.name} at descriptor {descriptor}: {message}")
        self.status = status
        self.descriptor = descriptor
        self.fetched = 0  # descriptors fetched for the refusal (0: the header checks; 2: a conv and its on-chip pool)
        self.plans: list[LayerPlan] = []  # the descriptors before ``descriptor``, which the kernel ran
        # a refusal the kernel meets while running the descriptor (a shadow overflow): it completes that call of
        # ``ran_images`` images (the first image, or the first chunk of a batched layer) before it stops
        self.ran: LayerPlan | None = None
        self.ran_images = 1


@dataclass(frozen=True)
class Descriptor:
    """One layer descriptor as the kernel reads it (addresses are byte offsets from the image base)."""

    op: int
    flags: fmt.Flag
    scheme: int
    ir_layer: int
    in_c: int
    in_h: int
    in_w: int
    out_c: int
    out_h: int
    out_w: int
    kernel: int
    stride: int
    pad: int
    in_addr: int
    in_stride: int
    out_addr: int
    out_stride: int
    w_addr: int
    crit_start: int
    crit_count: int
    clip_bound: int = 0

    @classmethod
    def from_words(cls, w: np.ndarray) -> Descriptor:
        d = fmt.DescWord
        op_flags, geometry = int(w[d.OP_FLAGS]), int(w[d.GEOMETRY])
        return cls(op_flags & 0xFF, fmt.Flag((op_flags >> 8) & 0xFF), (op_flags >> 16) & 0xFF, int(w[d.IR_LAYER]),
                   *(int(w[k]) for k in (d.IN_C, d.IN_H, d.IN_W, d.OUT_C, d.OUT_H, d.OUT_W)),
                   geometry & 0xFF, (geometry >> 8) & 0xFF, (geometry >> 16) & 0xFF,
                   *(int(w[k]) for k in (d.IN_ADDR, d.IN_STRIDE, d.OUT_ADDR, d.OUT_STRIDE, d.W_ADDR, d.CRIT_START,
                                         d.CRIT_COUNT)), (geometry >> 24) & 0xFF)

    @property
    def raw(self) -> bool:
        return bool(self.flags & fmt.Flag.RAW)

    @property
    def out_elements(self) -> int:
        return self.out_c * self.out_h * self.out_w


@dataclass(frozen=True)
class Header:
    n_desc: int
    desc_offset: int
    profile_offset: int
    image_bytes: int
    batch: int
    weights_tag: int = 0  # nonzero: the kernel keeps the network's weights on chip between runs with this tag


@dataclass
class DecodedImage:
    """The network a memory image encodes, with the plan and addresses of each descriptor."""

    header: Header
    descriptors: list[Descriptor]
    plans: list[LayerPlan]
    model: Model


def read_header(ctrl: np.ndarray, config: AccelConfig, n_images: int) -> Header:
    """Check the header words (the kernel's order) and return them; raises :class:`DecodeError`."""
    h = ctrl[:4 * fmt.HEADER_WORDS].view("<u4")
    w = fmt.HeaderWord
    if int(h[w.MAGIC]) != fmt.MAGIC:
        raise DecodeError(Status.BAD_MAGIC, 0, f"header word {int(h[w.MAGIC]):#010x} is not RQAC")
    if int(h[w.FORMAT]) != fmt.FORMAT_VERSION:
        raise DecodeError(Status.BAD_FORMAT, 0, f"image format {int(h[w.FORMAT])}, the kernel reads {fmt.FORMAT_VERSION}")
    if int(h[w.SIMD]) != config.simd:
        raise DecodeError(Status.SIMD_MISMATCH, 0, f"packed for SIMD={int(h[w.SIMD])}, the build has {config.simd}")
    header = Header(int(h[w.N_DESC]), int(h[w.DESC_OFFSET]), int(h[w.PROFILE_OFFSET]), int(h[w.IMAGE_BYTES]),
                    int(h[w.BATCH]), int(h[w.WEIGHTS_TAG]))
    if header.n_desc > config.max_layers:
        raise DecodeError(Status.CAPACITY, 0, f"{header.n_desc} descriptors exceed max_layers={config.max_layers}")
    if n_images > header.batch:
        raise DecodeError(Status.BATCH_RANGE, 0, f"N_IMAGES={n_images} exceeds the image's batch of {header.batch}")
    return header


def read_descriptors(ctrl: np.ndarray, header: Header) -> list[Descriptor]:
    words = ctrl[header.desc_offset:header.desc_offset + 4 * fmt.DESC_WORDS * header.n_desc].view("<u4")
    return [Descriptor.from_words(words[k * fmt.DESC_WORDS:(k + 1) * fmt.DESC_WORDS]) for k in range(header.n_desc)]


def plan_of(d: Descriptor, protected: np.ndarray, config: AccelConfig, on_chip_input: bool = False) -> LayerPlan:
    return LayerPlan(d.ir_layer, f"descriptor {d.ir_layer}", fmt.Op(d.op), d.flags, d.in_c, d.in_h, d.in_w, d.out_c,
                     d.out_h, d.out_w, d.kernel, d.stride, d.pad, d.scheme, protected, config.simd, config.pe,
                     d.clip_bound, on_chip_input, config.shadow_units)


def check_descriptor(k: int, d: Descriptor, config: AccelConfig, header: Header | None = None) -> LayerPlan:
    """The kernel's ``plan_descriptor``: BAD_OP, then CAPACITY (the mapping's limits), then TABLE_RANGE; then (with
    the image's ``header``) its ``check_extents``."""
    if d.op not in (fmt.Op.CONV, fmt.Op.MAXPOOL) or d.scheme > max(Scheme):
        raise DecodeError(Status.BAD_OP, k, f"op {d.op}, scheme {d.scheme}")
    if d.flags & fmt.Flag.CLIP and (d.op != fmt.Op.CONV or d.raw or d.clip_bound > 127):
        raise DecodeError(Status.BAD_OP, k, f"clip (bound {d.clip_bound}) on a layer without int8 outputs, or a bound "
                          "above 127")
    dims = (d.in_c, d.in_h, d.in_w, d.out_c, d.out_h, d.out_w, d.kernel, d.stride)
    fits = min(dims) >= 1
    fits = fits and (d.out_h - 1) * d.stride + d.kernel <= d.in_h + 2 * d.pad
    fits = fits and (d.out_w - 1) * d.stride + d.kernel <= d.in_w + 2 * d.pad
    if d.op == fmt.Op.MAXPOOL:
        fits = fits and d.in_c == d.out_c and d.pad == 0 and not d.raw
    if not fits:
        raise DecodeError(Status.CAPACITY, k, f"inconsistent geometry {dims} padding {d.pad}")
    plan = plan_of(d, np.zeros(0, np.int64), config)
    try:
        check_plan(plan, config)
    except UnsupportedModelError as exc:
        raise DecodeError(Status.CAPACITY, k, str(exc)) from None
    misfit = batch_misfit(plan, config)  # the kernel checks the batch's buffers with the sizes, before the addresses
    if misfit:
        raise DecodeError(Status.CAPACITY, k, misfit)
    if (d.in_addr | d.in_stride | d.out_addr | d.out_stride) % fmt.ACT_BEAT_BYTES:
        raise DecodeError(Status.LAYOUT, k, f"activation addresses/strides {d.in_addr:#x}/{d.in_stride}, "
                          f"{d.out_addr:#x}/{d.out_stride} must be multiples of {fmt.ACT_BEAT_BYTES} bytes")
    if plan.pool_next and (d.op != fmt.Op.CONV or d.raw or plan.batched):
        raise DecodeError(Status.LAYOUT, k, "POOL_NEXT on a layer whose output buffer cannot be pooled on chip (not "
                          "an int8 conv, or batched)")
    if plan.in_dense and not (plan.packed or plan.hw_in == 1):
        raise DecodeError(Status.LAYOUT, k, "a dense input (DENSE_IN) on a layer that reads it padded per pixel")
    if d.crit_start + d.crit_count > rm.CRIT_TABLE.capacity:
        raise DecodeError(Status.TABLE_RANGE, k, f"table range {d.crit_start}+{d.crit_count} exceeds "
                          f"{rm.CRIT_TABLE.capacity} entries")
    if d.crit_count and (d.scheme == 0 or d.raw or d.op != fmt.Op.CONV):
        raise DecodeError(Status.TABLE_RANGE, k, "a table range on a layer that cannot be protected")
    if header is not None:
        check_extents(k, d, plan, header)
    return plan


INDEX_A_LIMIT, INDEX_B_LIMIT = 1 << 24, 1 << 17  # ops::index_product's operand ranges


def check_extents(k: int, d: Descriptor, plan: LayerPlan, header: Header) -> None:
    """The kernel's ``check_extents`` (descriptor.hpp): the descriptor's parameter block and its input and output
    regions for all ``header.batch`` images lie inside the image's ``image_bytes``, else LAYOUT."""
    more = max(header.batch - 1, 0)
    if more >= INDEX_B_LIMIT or (more and max(d.in_stride, d.out_stride) >= INDEX_A_LIMIT):
        raise DecodeError(Status.LAYOUT, k, f"a batch of {header.batch} images at strides {d.in_stride}/"
                          f"{d.out_stride} bytes: beyond what any image holds")
    out_bytes = 4 * d.out_c if d.raw else 8 * plan.out_beats
    ends = {"input": d.in_addr + d.in_stride * more + 8 * plan.in_beats,
            "output": d.out_addr + d.out_stride * more + out_bytes}
    if d.op == fmt.Op.CONV:
        ends["parameter"] = d.w_addr + 8 * d.out_c + d.out_c * plan.row_bytes
    for what, end in ends.items():
        if end > header.image_bytes:
            raise DecodeError(Status.LAYOUT, k, f"its {what} region ends at byte {end:,}, past the image's "
                              f"{header.image_bytes:,} bytes")


def protected_neurons(k: int, d: Descriptor, table: np.ndarray) -> np.ndarray:
    """Flat neuron indices of the descriptor's table entries (strictly increasing, inside the layer)."""
    entries = table[d.crit_start:d.crit_start + d.crit_count].astype(np.int64)
    channel = (entries >> 16) & 0xFFFF
    pos = entries & 0xFFFF
    hw = d.out_h * d.out_w
    if np.any(channel >= d.out_c) or np.any(pos >= hw):
        raise DecodeError(Status.TABLE_RANGE, k, "a critical-table entry lies outside the layer")
    neurons = channel * hw + pos
    if np.any(np.diff(neurons) <= 0):
        raise DecodeError(Status.TABLE_RANGE, k, "critical-table entries of a layer must strictly increase")
    return neurons


def check_shadows(k: int, plan: LayerPlan, config: AccelConfig, images: int = 1) -> None:
    """The kernel stops with SHADOW_OVERFLOW when a PE lane receives more shadow values than it holds: a batched
    layer's lane holds the shadows of every image of its chunk (``images`` in the run, ``max_batch`` at most)."""
    if plan.n_protected:
        chunk = min(images, config.max_batch) if plan.batched and images > 1 else 1
        lanes = np.bincount((plan.protected // plan.hw_out) % plan.pe, minlength=plan.pe)
        if int(lanes.max()) * (plan.copies - 1) * chunk > config.shadow_lane:
            exc = DecodeError(Status.SHADOW_OVERFLOW, k, f"{int(lanes.max())} protected neurons in one PE lane"
                              + (f", a chunk of {chunk} images" if chunk > 1 else ""))
            exc.ran, exc.ran_images = plan, chunk
            raise exc


def _weights(d: Descriptor, weights: np.ndarray, config: AccelConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weight int8 [O, C, k, k], bias int32 [O], shift int32 [O]) of a CONV descriptor."""
    cg = -(-d.in_c // config.simd)
    row_bytes = d.kernel * d.kernel * cg * config.simd
    beats = weights[d.w_addr:d.w_addr + 8 * d.out_c].view("<u4").reshape(d.out_c, 2)
    bias = beats[:, 0].view("<i4").astype(np.int32)
    shift = (beats[:, 1] & 0xFF).astype(np.int32)
    start = d.w_addr + 8 * d.out_c
    rows = weights[start:start + d.out_c * row_bytes].view(np.int8).reshape(d.out_c, d.kernel, d.kernel, cg * config.simd)
    return np.ascontiguousarray(rows[..., :d.in_c].transpose(0, 3, 1, 2)), bias, shift


def decode(ctrl: np.ndarray, weights: np.ndarray, table: np.ndarray, config: AccelConfig,
           header: Header) -> DecodedImage:
    """Rebuild the network of the image whose bytes are ``ctrl`` (control master's view) and ``weights``.

    ``header`` comes from :func:`read_header` (the kernel checks it, and the fault registers, first).
    Raises :class:`DecodeError` where the kernel would stop with a STATUS code, and
    :class:`resilq.errors.UnsupportedModelError` for an image the kernel would run but whose descriptors
    do not form the layer chain :func:`resilq.hls.packing.pack` writes (the emulator executes chains).
    """
    descriptors = read_descriptors(ctrl, header)
    plans: list[LayerPlan] = []
    layers: list = []
    held: DecodeError | None = None  # a POOL_NEXT conv's table error: the kernel meets it after checking the pool
    held_kept: DecodeError | None = None  # a POOL_NEXT conv's kept weights that do not fit: checked after its pool
    kept = KeptLayout(config) if header.weights_tag else None  # the kernel's layout of kept weights
    for k, d in enumerate(descriptors):
        on_chip = bool(plans) and plans[-1].pool_next  # fetched with the conv before it, checked as its pair
        try:
            plan = check_descriptor(k, d, config, header)
            if plan.pool_next and k + 1 == len(descriptors):
                raise DecodeError(Status.LAYOUT, k, "POOL_NEXT on the last descriptor")
            if on_chip:
                plan = dataclasses.replace(plan, on_chip_input=True)
                if not pools_on_chip(plans[-1], plan):
                    raise DecodeError(Status.LAYOUT, k, f"descriptor {k - 1} (POOL_NEXT) is not followed by a max-pool "
                                      "of its output map")
                if held_kept is not None:
                    raise held_kept
                if held is not None:
                    raise held
            if kept is not None and plan.op is fmt.Op.CONV:
                if not kept.take(plan):
                    exc = DecodeError(Status.CAPACITY, k, "the network's weights do not fit the weight, bias and shift "
                                      "buffers all at once, which a nonzero WEIGHTS_TAG asks for (kept weights)")
                    if not plan.pool_next:
                        raise exc
                    held_kept = exc  # the kernel checks the conv's kept words after fetching and checking its pool
            if d.crit_count:
                try:
                    plan = plan_of(d, protected_neurons(k, d, table), config)
                    check_shadows(k, plan, config)
                except DecodeError as exc:
                    if not plan.pool_next:
                        raise
                    held = exc  # the kernel runs into it while the conv runs, after fetching and checking its pool
        except DecodeError as exc:
            # a pool is refused before its conv runs (the kernel fetches and checks the pair first)
            exc.fetched, exc.plans = (2, plans[:-1]) if on_chip else (1, plans)
            raise
        plans.append(plan)
        if k and (d.in_addr, d.in_stride) != (descriptors[k - 1].out_addr, descriptors[k - 1].out_stride):
            raise UnsupportedModelError(f"descriptor {k} does not read the output of descriptor {k - 1}: the "
                                        "emulator runs layer chains as resilq.hls.packing writes them")
        _check_chain(k, d, descriptors[k - 1] if k else None)
        while len(layers) < d.ir_layer:  # IR layers without a descriptor: Flatten (its output aliases its input)
            layers.append(Flatten(f"flatten{len(layers)}"))
        if len(layers) != d.ir_layer:
            raise UnsupportedModelError(f"descriptor {k} names IR layer {d.ir_layer} after layer {len(layers) - 1}")
        vector_input = bool(layers) and isinstance(layers[-1], (Flatten, Linear))
        source = plans[-2].out_layout if k else None  # the stored map a vector layer reads (None: the input)
        layers.append(_layer(k, d, weights, config, plan, vector_input, source))
    if not descriptors:
        raise UnsupportedModelError("the image holds no layer descriptors")
    first = descriptors[0]
    shape = (first.in_c, first.in_h, first.in_w)
    return DecodedImage(header, descriptors, plans, Model(InputQuant(shape, 0), tuple(layers), {"name": "decoded"}))


def _check_chain(k: int, d: Descriptor, previous: Descriptor | None) -> None:
    """The layer chain the emulator executes: a descriptor's output map is what its kernel, stride and padding make
    of its input (the kernel would also run a smaller one, computing part of the map), and a map layer reads the map
    the descriptor before it stores (a vector layer's bytes are checked against the stored map in :func:`_layer`)."""
    out_h = (d.in_h + 2 * d.pad - d.kernel) // d.stride + 1
    out_w = (d.in_w + 2 * d.pad - d.kernel) // d.stride + 1
    if (out_h, out_w) != (d.out_h, d.out_w):
        raise UnsupportedModelError(f"descriptor {k}: its {d.out_h}x{d.out_w} output map is not the {out_h}x{out_w} "
                                    f"that kernel {d.kernel}, stride {d.stride} and padding {d.pad} make of its "
                                    f"{d.in_h}x{d.in_w} input: the emulator runs layer chains as resilq.hls.packing "
                                    "writes them")
    vector = d.in_h == d.in_w == 1
    if previous is not None and not vector and (d.in_c, d.in_h, d.in_w) != (previous.out_c, previous.out_h,
                                                                           previous.out_w):
        raise UnsupportedModelError(f"descriptor {k} reads a {d.in_c}x{d.in_h}x{d.in_w} map, but descriptor {k - 1} "
                                    f"stores {previous.out_c}x{previous.out_h}x{previous.out_w}")


def _layer(k: int, d: Descriptor, weights: np.ndarray, config: AccelConfig, plan: LayerPlan, vector_input: bool,
           source: fmt.MapLayout | None):
    name = f"layer{d.ir_layer}"
    if d.op == fmt.Op.MAXPOOL:
        return MaxPool2d(name, d.kernel, d.stride)
    weight, bias, shift = _weights(d, weights, config)
    requant = None if d.raw else Requant(shift, bool(d.flags & fmt.Flag.RELU))
    clip = None if plan.clip is None else Clip(*plan.clip)
    protection = None
    if plan.n_protected:
        protection = Protection(Scheme(d.scheme), plan.protected.astype(np.int32))
    linear = vector_input and d.kernel == 1 and d.in_h == d.in_w == d.out_h == d.out_w == 1 and d.pad == 0
    if linear:
        rows = weight.reshape(d.out_c, d.in_c)
        if source is not None:  # the vector is the previous layer's stored map: back to the IR's C-H-W order
            if source.nbytes != d.in_c:
                raise UnsupportedModelError(f"descriptor {k} reads a {d.in_c}-byte vector, but descriptor {k - 1} "
                                            f"stores {source.nbytes} bytes")
            rows = source.vector_weights_inverse(rows)
        return Linear(name, rows, bias, requant, protection, clip)
    return Conv2d(name, weight, bias, requant, d.stride, d.pad, protection, clip)
