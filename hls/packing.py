"""Model -> the DDR memory image the accelerator runs, exactly as the board sees it.

:func:`pack` lays out the header, the layer descriptors, the per-layer cycle profile, the parameters
and weight rows (in PE-lane order, channels padded to SIMD), the input batch and every layer's output
region, and builds the critical-neuron table the host writes into the AXI-Lite space. A
:class:`MemoryImage` then writes inputs and reads every layer's output back in the IR's shapes. The
C-sim bridge attaches ``image.buffer`` as DDR; the PYNQ driver copies it into a ``pynq.allocate``
buffer (or packs straight into one with ``allocate=``). numpy only.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from resilq.errors import ParameterError, ShapeError
from resilq.ir import Conv2d, Flatten, Linear, Model
from resilq.validation import check_int

from . import imageformat as fmt
from . import regmap
from .config import AccelConfig
from .mapping import LayerPlan, activation_layouts, plan_model, weights_fit_on_chip

#: The largest upset list an image makes room for (64 layers at the kernel's per-layer capacity).
MAX_UPSET_ITEMS = 64 * regmap.UPSET_CAPACITY


@dataclass(frozen=True)
class Region:
    """A per-image array in the image: image ``n`` at ``offset + n * stride``.

    An int8 map is stored pixel-major as ``layout`` says (:class:`.imageformat.MapLayout`); the int32
    classifier outputs (``layout`` None) are plain little-endian words."""

    offset: int
    shape: tuple[int, ...]  # per image, in the IR's layout
    dtype: np.dtype
    stride: int  # bytes between images (0: every image shares the region)
    layout: fmt.MapLayout | None = None

    @property
    def nbytes(self) -> int:
        if self.layout is not None:
            return self.layout.nbytes * np.dtype(self.dtype).itemsize
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize

    def encode(self, values: np.ndarray) -> np.ndarray:
        """``(N, *shape)`` values -> ``(N, nbytes)`` uint8 as they lie in DDR."""
        typed = np.ascontiguousarray(values).astype(self.dtype).reshape(values.shape[0], -1)
        if self.layout is not None:
            typed = self.layout.encode(typed)
        return typed.view(np.uint8)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        """``(N, nbytes)`` uint8 from DDR -> ``(N, *shape)`` values."""
        typed = np.array(stored, order="C", copy=True).view(self.dtype)  # a copy even where `stored` is contiguous
        if self.layout is not None:
            typed = self.layout.decode(typed)
        return typed.reshape((stored.shape[0], *self.shape))


@dataclass
class MemoryImage:
    """A packed network plus its input/output regions, and the critical table for the AXI-Lite RAM."""

    config: AccelConfig
    model_name: str
    model_hash: str
    plans: list[LayerPlan]
    buffer: np.ndarray  # uint8, the whole image (64-byte aligned)
    batch: int  # images the input region holds
    table: np.ndarray  # uint32 critical-table words (write at regmap.CRIT_TABLE.offset)
    inputs: Region
    outputs: dict[int, Region]  # IR layer index -> its output region (Flatten aliases its input)
    profile_offset: int
    layer_offsets: dict[int, int] = field(default_factory=dict)  # IR index -> W_ADDR of conv/linear layers
    upsets_offset: int = 0  # the room for an upset list (FI_LIST), at the image's end
    upset_capacity: int = 0  # items it holds (0: none)
    _issued_tags: list[int] = field(default_factory=list, repr=False)  # the image's previous WEIGHTS_TAGs (retag)

    @property
    def nbytes(self) -> int:
        return int(self.buffer.size)

    @property
    def weights_tag(self) -> int:
        """WEIGHTS_TAG: nonzero when the kernel keeps this network's weights on chip between runs."""
        return int(self.buffer[:4 * fmt.HEADER_WORDS].view("<u4")[fmt.HeaderWord.WEIGHTS_TAG])

    def retag(self) -> None:
        """After the descriptors or the weights changed (a stored-word upset, resilq.deploy.upsets): a kept image gets
        a new tag, so the kernel loads the new bytes instead of trusting what it kept. The tag is a cache key: the CRC
        of the bytes, moved on while it equals one of the image's last tags (a CRC collision between two upsets,
        about 2^-32, would otherwise let a run use the previous run's weights)."""
        if not self.weights_tag:
            return
        recent = self._issued_tags[-RECENT_TAGS:] + [self.weights_tag]
        tag = _tag_of(self.buffer)
        while tag in recent:
            tag = (tag + 1) & 0xFFFFFFFF or 1
        self._issued_tags = recent
        self.buffer[:4 * fmt.HEADER_WORDS].view("<u4")[fmt.HeaderWord.WEIGHTS_TAG] = tag

    @property
    def descriptor_layers(self) -> list[int]:
        """IR layer index of each descriptor, in execution order."""
        return [p.index for p in self.plans]

    def source_region(self, layer: int) -> Region:
        """The region IR layer ``layer`` reads: the inputs, or the previous layer's output."""
        return self.inputs if layer == 0 else self.outputs[layer - 1]

    def write_upsets(self, items: np.ndarray) -> tuple[int, int]:
        """Write an upset list (:func:`resilq.hls.upset_list.encode`) into the image's room for it; returns
        ``(FI_LIST, FI_COUNT)``."""
        items = np.asarray(items, dtype=np.uint64)
        if items.ndim != 1 or items.size > self.upset_capacity:
            raise ParameterError(f"an upset list of {items.size} items, the image has room for {self.upset_capacity} "
                                 "(pack(..., upset_capacity=...), Accelerator(..., upset_capacity=...))")
        self.buffer[self.upsets_offset:self.upsets_offset + 8 * items.size] = items.astype("<u8").view(np.uint8)
        return self.upsets_offset, int(items.size)

    def _view(self, region: Region, n: int) -> np.ndarray:
        """``(n, nbytes)`` uint8 view of the region's first ``n`` images."""
        if not 1 <= n <= self.batch:
            raise ParameterError(f"image count {n} outside 1..{self.batch} (the batch this image was packed for)")
        span = (n - 1) * region.stride + region.nbytes
        raw = self.buffer[region.offset:region.offset + span]
        return np.lib.stride_tricks.as_strided(raw, shape=(n, region.nbytes), strides=(region.stride, 1),
                                               writeable=True)

    def write_inputs(self, x: np.ndarray) -> None:
        """Write an int8 batch ``(N, C, H, W)`` (N <= batch) into the input region."""
        if not isinstance(x, np.ndarray) or x.dtype != np.int8:
            raise ShapeError(f"inputs must be an int8 array, got {getattr(x, 'dtype', type(x).__name__)}")
        if x.shape[1:] != self.inputs.shape or x.shape[0] > self.batch:
            raise ShapeError(f"input batch {x.shape} does not fit the image: (<= {self.batch}, "
                             f"{', '.join(map(str, self.inputs.shape))})")
        self._view(self.inputs, x.shape[0])[...] = self.inputs.encode(x)

    def read_output(self, layer: int, n: int) -> np.ndarray:
        """Layer ``layer``'s output for the first ``n`` images of the last run (a copy, in the IR's shape)."""
        region = self.outputs[layer]
        return region.decode(self._view(region, n))

    def read_logits(self, n: int) -> np.ndarray:
        return self.read_output(len(self.outputs) - 1, n)

    def read_profile(self) -> np.ndarray:
        """Per-descriptor cycles of the last complete run, summed over its images (uint64)."""
        words = self.buffer[self.profile_offset:self.profile_offset + 8 * len(self.plans)].view(np.uint32)
        return words[0::2].astype(np.uint64) | (words[1::2].astype(np.uint64) << np.uint64(32))


def _aligned_buffer(nbytes: int, allocate: Callable[[int], np.ndarray] | None) -> np.ndarray:
    if allocate is not None:
        buf = allocate(nbytes)
        if buf.dtype != np.uint8 or buf.size < nbytes:
            raise ParameterError("allocate(nbytes) must return a uint8 array of at least nbytes")
        buf[:nbytes] = 0
        return buf
    raw = np.zeros(nbytes + fmt.ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % fmt.ALIGN
    return raw[start:start + nbytes]


def weight_rows(plan: LayerPlan, layer: Conv2d | Linear, source: fmt.MapLayout | None = None) -> np.ndarray:
    """The layer's weights as ``out_c`` rows in the order the PE lanes consume them: (ky, kx, channel)
    with channels zero-padded to a multiple of SIMD (``plan.row_bytes`` bytes each). A Linear layer's
    input is the stored map ``source`` read as one vector, so its weights follow that map's DDR order."""
    cpad = plan.cg * plan.simd
    if isinstance(layer, Conv2d):
        w = layer.weight.transpose(0, 2, 3, 1)  # O, ky, kx, C
    else:
        if source is None or source.nbytes != plan.in_c:
            raise ParameterError(f"layer {layer.name!r}: the layout of the map it reads is needed to order its weights")
        w = source.vector_weights(layer.weight).reshape(plan.out_c, 1, 1, plan.in_c)
    rows = np.zeros((plan.out_c, plan.kernel, plan.kernel, cpad), dtype=np.int8)
    rows[..., :plan.in_c] = w
    return rows.reshape(plan.out_c, plan.row_bytes)


def param_beats(layer: Conv2d | Linear) -> np.ndarray:
    """``out_c`` 8-byte beats: int32 bias (little-endian), uint8 shift, three zero bytes."""
    beats = np.zeros((layer.out_channels, 2), dtype="<u4")
    beats[:, 0] = layer.bias.astype("<i4").view("<u4")
    if layer.requant is not None:
        beats[:, 1] = layer.requant.shift.astype(np.uint32)
    return beats.reshape(-1).view(np.uint8)


#: WEIGHTS_TAGs an image remembers having carried: a new tag is never one of them (retag).
RECENT_TAGS = 8


def _tag_of(buffer: np.ndarray) -> int:
    """WEIGHTS_TAG of an image: CRC-32 of its descriptors and its parameter blocks (never 0)."""
    header = buffer[:4 * fmt.HEADER_WORDS].view("<u4")
    desc, profile = int(header[fmt.HeaderWord.DESC_OFFSET]), int(header[fmt.HeaderWord.PROFILE_OFFSET])
    n = int(header[fmt.HeaderWord.N_DESC])
    start = fmt.align(profile + 4 * fmt.PROFILE_WORDS * n)  # the parameter blocks follow the profile ...
    first_in = int(buffer[desc:desc + 4 * fmt.DESC_WORDS].view("<u4")[fmt.DescWord.IN_ADDR])  # ... up to the inputs
    tag = zlib.crc32(buffer[desc:profile].tobytes())
    return zlib.crc32(buffer[start:first_in].tobytes(), tag) or 1


def pack(model: Model, config: AccelConfig, batch: int = 1,
         allocate: Callable[[int], np.ndarray] | None = None, keep_weights: bool = False,
         upset_capacity: int = 0) -> MemoryImage:
    """Pack ``model`` for ``config`` with room for ``batch`` input images.

    Every image has its own copy of every layer's output: the kernel runs layer-major (each layer over the
    whole batch before the next), so no two images can share an intermediate region. ``keep_weights``: when the
    network's parameters fit the kernel's weight, bias and shift buffers all at once
    (:func:`resilq.hls.mapping.weights_fit_on_chip`), the image carries a WEIGHTS_TAG and the kernel keeps them on chip
    between runs (the first run loads them, later runs with the same tag load none); otherwise the tag is 0.
    ``upset_capacity``: room at the image's end for an upset list of that many items (output-site BER on the
    device, :mod:`resilq.hls.upset_list`).
    """
    if batch < 1:
        raise ParameterError(f"batch must be >= 1, got {batch}")
    check_int(upset_capacity, "upset_capacity", 0, MAX_UPSET_ITEMS)
    plans = plan_model(model, config)
    n = len(plans)
    offset = fmt.align(4 * fmt.HEADER_WORDS)
    desc_offset = offset
    offset = fmt.align(offset + 4 * fmt.DESC_WORDS * n)
    profile_offset = offset
    offset = fmt.align(offset + 4 * fmt.PROFILE_WORDS * n)

    w_offsets: dict[int, int] = {}
    for plan in plans:
        if plan.op is fmt.Op.CONV:
            w_offsets[plan.index] = offset
            offset = fmt.align(offset + 8 * plan.out_c + plan.out_c * plan.row_bytes)

    def region(shape: tuple[int, ...], dtype, layout: fmt.MapLayout | None) -> Region:
        nonlocal offset
        r = Region(offset, tuple(shape), np.dtype(dtype), 0, layout)
        stride = fmt.align(r.nbytes)
        r = Region(offset, r.shape, r.dtype, stride, layout)
        offset = fmt.align(offset + stride * batch)
        return r

    source, layouts = activation_layouts(model, config)
    inputs = region(tuple(model.input.shape), np.int8, source)
    outputs: dict[int, Region] = {}
    last = len(model.layers) - 1
    previous = inputs
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Flatten):  # the same bytes, read as the flat vector of the stored map
            outputs[i] = Region(previous.offset, model.out_shape(i), previous.dtype, previous.stride, previous.layout)
        else:
            raw = i == last and layer.requant is None
            outputs[i] = region(model.out_shape(i), np.int32 if raw else np.int8, None if raw else layouts[i])
        previous = outputs[i]

    upsets_offset = offset
    offset = fmt.align(offset + 8 * upset_capacity)
    buffer = _aligned_buffer(offset, allocate)
    words = buffer.view("<u4")
    header = np.zeros(fmt.HEADER_WORDS, dtype="<u4")
    header[fmt.HeaderWord.MAGIC] = fmt.MAGIC
    header[fmt.HeaderWord.FORMAT] = fmt.FORMAT_VERSION
    header[fmt.HeaderWord.SIMD] = config.simd
    header[fmt.HeaderWord.N_DESC] = n
    header[fmt.HeaderWord.DESC_OFFSET] = desc_offset
    header[fmt.HeaderWord.PROFILE_OFFSET] = profile_offset
    header[fmt.HeaderWord.IMAGE_BYTES] = offset
    header[fmt.HeaderWord.BATCH] = batch
    words[:fmt.HEADER_WORDS] = header

    table_parts, crit_start = [], 0
    previous_region = {p.index: (inputs if p.index == 0 else outputs[p.index - 1]) for p in plans}
    for k, plan in enumerate(plans):
        layer = model.layers[plan.index]
        src, dst = previous_region[plan.index], outputs[plan.index]
        d = np.zeros(fmt.DESC_WORDS, dtype="<u4")
        d[fmt.DescWord.OP_FLAGS] = fmt.op_flags_word(plan.op, plan.flags, plan.scheme)
        d[fmt.DescWord.IR_LAYER] = plan.index
        d[fmt.DescWord.IN_C:fmt.DescWord.OUT_W + 1] = (plan.in_c, plan.in_h, plan.in_w, plan.out_c, plan.out_h,
                                                        plan.out_w)
        d[fmt.DescWord.GEOMETRY] = fmt.geometry_word(plan.kernel, plan.stride, plan.pad, plan.clip_bound)
        d[fmt.DescWord.IN_ADDR], d[fmt.DescWord.IN_STRIDE] = src.offset, src.stride
        d[fmt.DescWord.OUT_ADDR], d[fmt.DescWord.OUT_STRIDE] = dst.offset, dst.stride
        d[fmt.DescWord.W_ADDR] = w_offsets.get(plan.index, 0)
        d[fmt.DescWord.CRIT_START] = crit_start if plan.n_protected else 0
        d[fmt.DescWord.CRIT_COUNT] = plan.n_protected
        start = desc_offset // 4 + k * fmt.DESC_WORDS
        words[start:start + fmt.DESC_WORDS] = d
        if plan.op is fmt.Op.CONV:
            base = w_offsets[plan.index]
            beats = param_beats(layer)
            buffer[base:base + beats.size] = beats
            rows = weight_rows(plan, layer, src.layout).view(np.uint8).reshape(-1)
            buffer[base + beats.size:base + beats.size + rows.size] = rows
        if plan.n_protected:
            table_parts.append(plan.entries())
            crit_start += plan.n_protected
    if keep_weights and weights_fit_on_chip(plans, config):
        words[fmt.HeaderWord.WEIGHTS_TAG] = _tag_of(buffer)
    table = np.concatenate(table_parts) if table_parts else np.zeros(0, np.uint32)
    return MemoryImage(config, model.name, model.hash, plans, buffer, batch, table.astype(np.uint32), inputs,
                       outputs, profile_offset, w_offsets, upsets_offset, upset_capacity)
