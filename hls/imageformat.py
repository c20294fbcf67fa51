"""The DDR memory image the accelerator runs from: header, layer descriptors, parameter beats, status codes.

One image holds a whole network (descriptors, weights, biases, shifts), the input batch and every layer's
output, at byte offsets relative to the image base (the address written to the three pointer registers).
All regions are 64-byte aligned. This module defines the formats; :mod:`.packing` builds images.

Header (``HEADER_WORDS`` little-endian uint32 at offset 0)::

    MAGIC  FORMAT  SIMD  N_DESC  DESC_OFFSET  PROFILE_OFFSET  IMAGE_BYTES  BATCH  WEIGHTS_TAG  (reserved...)

Descriptor (``DESC_WORDS`` uint32 per executed layer; Flatten needs none, its output aliases its input)::

    OP_FLAGS  IR_LAYER  IN_C IN_H IN_W  OUT_C OUT_H OUT_W  GEOMETRY  IN_ADDR IN_STRIDE  OUT_ADDR OUT_STRIDE
    W_ADDR  CRIT_START  CRIT_COUNT

A Linear layer is a CONV descriptor with IN_C = the length of its input vector in DDR, H = W = 1, kernel 1.
A CONV with ``Flag.BATCH`` runs a chunk of up to MAX_BATCH images on each weight load: a vector layer as one
1 x chunk map whose positions are the images, a conv over a map with the chunk's maps side by side in its buffers
(image after image on each tile; FORMAT 3, which an overlay built for FORMAT 2 refuses with BAD_FORMAT).
A nonzero WEIGHTS_TAG (the CRC-32 of the descriptors and parameter blocks, written by ``pack(..., keep_weights=True)``
where the network's parameters fit the on-chip buffers at once) has the kernel keep them there between runs: a
run whose tag equals the last completed run's loads none. 0: loaded every run.
A CONV with ``Flag.POOL_NEXT`` is run image by image together with the next descriptor, a MAXPOOL of its map
that reads the map from the kernel's output buffer instead of from IN_ADDR (which still names the conv's region,
which the conv still writes).

Activations (FORMAT 2) move through a 64-bit master, one beat per cycle, so they are stored **pixel-major**:
pixel ``q = y * W + x`` of a ``(C, H, W)`` map holds its channels at bytes ``q * P + c``. Every map the
accelerator writes has ``P = pixel_pitch(C)`` (channels zero-padded to whole 8-byte beats: beat ``j`` of a
pixel is channels ``8j .. 8j+7``); the network input is *dense* (``P = C``, the descriptor's ``DENSE_IN`` flag)
when its first layer reads it as one run (a kernel-row-packed conv, or a vector layer), padded otherwise.
A Linear layer after a Flatten reads the stored map as its vector: its weights are stored in that
(y, x, channel-padded) order (:func:`vector_order`). Slots (fault sites, the critical table) keep the IR's
C-H-W numbering: only the DDR byte order changed. Image ``n`` of a batch sits at ``ADDR + n * STRIDE``;
every address and stride is a multiple of 8 (the kernel refuses others with ``LAYOUT``). ``W_ADDR`` points at ``OUT_C`` parameter beats (8 bytes: int32 bias, uint8 shift,
3 zero bytes) followed by ``OUT_C`` weight rows of ``k*k*ceil(C/SIMD)*SIMD`` bytes, each row ordered
(ky, kx, channel) with channels zero-padded to a multiple of SIMD -- the order the PE lanes consume.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

import numpy as np

#: "RQAC" read as a little-endian uint32.
MAGIC = 0x43415152
#: Memory-image format version (header word FORMAT); bump when the layout changes meaning.
FORMAT_VERSION = 4  # 4: stacked kernel rows (the input buffer's row gaps, in_trips); 3: FLAG_BATCH also on a conv over a map; 2: pixel-major activations in 64-bit beats (1: C-H-W bytes)
HEADER_WORDS = 16
DESC_WORDS = 16
PROFILE_WORDS = 2  # per descriptor: cycles lo, hi (summed over the run's images)
ALIGN = 64
PARAM_BEAT_BYTES = 8
WEIGHT_BEAT_BYTES = 8


class HeaderWord(IntEnum):
    MAGIC = 0
    FORMAT = 1
    SIMD = 2
    N_DESC = 3
    DESC_OFFSET = 4
    PROFILE_OFFSET = 5
    IMAGE_BYTES = 6
    BATCH = 7
    WEIGHTS_TAG = 8  # nonzero: the network's weights stay on chip between runs with this tag (0: loaded every run)


class DescWord(IntEnum):
    OP_FLAGS = 0  # op in bits 0-7, Flag bits 8-15, Scheme code 16-23 (0 = unprotected)
    IR_LAYER = 1
    IN_C = 2
    IN_H = 3
    IN_W = 4
    OUT_C = 5
    OUT_H = 6
    OUT_W = 7
    GEOMETRY = 8  # kernel bits 0-7, stride 8-15, padding 16-23, clip bound 24-31 (with Flag.CLIP)
    IN_ADDR = 9
    IN_STRIDE = 10
    OUT_ADDR = 11
    OUT_STRIDE = 12
    W_ADDR = 13
    CRIT_START = 14
    CRIT_COUNT = 15


class Op(IntEnum):
    CONV = 1  # Conv2d, and Linear as a 1x1 conv over a 1x1 map
    MAXPOOL = 2


class Flag(IntFlag):
    RELU = 1  # requantize with lo = 0
    RAW = 2  # write int32 accumulators (the classifier without requantization) through the control master
    NEURONS = 4  # a neuron layer: its outputs are fault sites (Model.neuron_layers)
    DENSE_IN = 8  # the input map is dense (pixel pitch = IN_C), not padded to whole beats
    BATCH = 16  # a layer that runs over up to MAX_BATCH images at once (one weight load per chunk): a vector, or a conv over a map
    CLIP = 32  # range restriction of the layer's outputs: values above GEOMETRY's clip bound are restricted
    CLIP_ZERO = 64  # ... to 0 (the clip's ``zero`` variant) instead of to the bound
    POOL_NEXT = 128  # a conv whose output map the next descriptor (a max-pool) pools from the output buffer


class Status(IntEnum):
    """STATUS.CODE after a run; STATUS.LAYER names the descriptor for the per-layer codes."""

    OK = 0
    BAD_MAGIC = 1
    BAD_FORMAT = 2
    SIMD_MISMATCH = 3
    BAD_OP = 4
    CAPACITY = 5  # a layer exceeds a buffer or limit of this build (see resilq.hls.mapping)
    TABLE_RANGE = 6  # CRIT_START + CRIT_COUNT beyond the table capacity
    FAULT_CONFIG = 7  # EN with a zero mask, an unknown mode, or a lane fault on a lane >= PE
    SHADOW_OVERFLOW = 8  # a PE lane received more shadow values than its buffer holds
    BATCH_RANGE = 9  # N_IMAGES exceeds the batch the image was packed for
    LAYOUT = 10  # an activation address/stride not a multiple of 8, or DENSE_IN where the kernel cannot read it
    UPSETS = 11  # an upset-list item out of order, outside its layer, with an empty mask or a copy the scheme lacks; over a layer's capacity; or of no neuron layer

    @property
    def meaning(self) -> str:
        return _STATUS_TEXT[self]


_STATUS_TEXT = {
    Status.OK: "ok",
    Status.BAD_MAGIC: "the memory image has no RQAC header (wrong address?)",
    Status.BAD_FORMAT: "the memory image was packed for another image-format version",
    Status.SIMD_MISMATCH: "the memory image was packed for another SIMD width",
    Status.BAD_OP: "unknown layer operation in a descriptor",
    Status.CAPACITY: "a layer exceeds a buffer or limit of this accelerator build",
    Status.TABLE_RANGE: "a layer's critical-table range exceeds the table capacity",
    Status.FAULT_CONFIG: "fault injection enabled with a zero mask, an unknown mode or a lane beyond PE",
    Status.SHADOW_OVERFLOW: "a PE lane's shadow buffer overflowed",
    Status.BATCH_RANGE: "N_IMAGES exceeds the batch the memory image was packed for",
    Status.UPSETS: "the upset list has an item out of order, beyond its layer's slots, with an empty mask or a copy the "
                   "scheme does not have, more items than a layer holds, or items of no neuron layer",
    Status.LAYOUT: "an activation address or stride is not a multiple of 8 bytes, or a dense input the layer cannot read, or a region that lies past the image",
}


def op_flags_word(op: Op, flags: Flag, scheme: int) -> int:
    return int(op) | (int(flags) << 8) | (int(scheme) << 16)


def geometry_word(kernel: int, stride: int, padding: int, clip_bound: int = 0) -> int:
    return (kernel & 0xFF) | ((stride & 0xFF) << 8) | ((padding & 0xFF) << 16) | ((clip_bound & 0xFF) << 24)


ACT_BEAT_BYTES = 8  # the activation master's beat (64-bit, like the weight master)


def pixel_pitch(channels: int) -> int:
    """Bytes per pixel of a map the accelerator writes: its channels zero-padded to whole 8-byte beats."""
    return -(-int(channels) // ACT_BEAT_BYTES) * ACT_BEAT_BYTES


@dataclass(frozen=True)
class MapLayout:
    """How one ``(C, H, W)`` map lies in DDR: pixel-major, ``pitch`` bytes per pixel (``C``: dense, or
    :func:`pixel_pitch` ``(C)``: channels zero-padded to whole beats). A vector is a ``(C, 1, 1)`` map."""

    shape: tuple[int, int, int]
    pitch: int

    @classmethod
    def padded(cls, shape) -> MapLayout:
        shape = as_map(shape)
        return cls(shape, pixel_pitch(shape[0]))

    @classmethod
    def dense(cls, shape) -> MapLayout:
        shape = as_map(shape)
        return cls(shape, shape[0])

    @property
    def is_dense(self) -> bool:
        return self.pitch == self.shape[0]

    @property
    def pixels(self) -> int:
        return self.shape[1] * self.shape[2]

    @property
    def nbytes(self) -> int:
        return self.pixels * self.pitch

    @property
    def pixel_beats(self) -> int:
        """64-bit beats of one pixel's record (the kernel's ``in_pixel_beats`` / ``out_pixel_beats``)."""
        return -(-self.pitch // ACT_BEAT_BYTES)

    @property
    def beats(self) -> int:
        """64-bit beats the kernel moves for the map: one run when dense, whole beats per pixel when padded."""
        if self.is_dense:
            return -(-self.nbytes // ACT_BEAT_BYTES)
        return self.pixels * (self.pitch // ACT_BEAT_BYTES)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """``(N, *shape)`` (or ``(N, C*H*W)``) values of any dtype -> ``(N, nbytes / itemsize)`` in DDR order:
        pixel-major, channels zero-padded to ``pitch``."""
        n = values.shape[0]
        c, h, w = self.shape
        out = np.zeros((n, h, w, self.pitch), dtype=values.dtype)
        out[..., :c] = values.reshape(n, c, h, w).transpose(0, 2, 3, 1)
        return out.reshape(n, self.pixels * self.pitch)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        """``(N, pixels * pitch)`` stored values -> ``(N, C, H, W)``: the inverse of :meth:`encode`."""
        c, h, w = self.shape
        n = stored.shape[0]
        return np.ascontiguousarray(stored.reshape(n, h, w, self.pitch)[..., :c].transpose(0, 3, 1, 2))

    def vector_weights(self, weight: np.ndarray) -> np.ndarray:
        """A Linear weight ``(O, C*H*W)`` over this map flattened in C-H-W order -> ``(O, pixels * pitch)`` over the
        map as stored, zeros at the padding: the order the PE lanes meet its bytes."""
        return self.encode(weight)

    def vector_weights_inverse(self, rows: np.ndarray) -> np.ndarray:
        """``(O, pixels * pitch)`` stored-order weights -> ``(O, C*H*W)``: the inverse of :meth:`vector_weights`."""
        return self.decode(rows).reshape(rows.shape[0], -1)


def as_map(shape) -> tuple[int, int, int]:
    """An IR activation shape as ``(C, H, W)``: a vector ``(F,)`` is an ``(F, 1, 1)`` map."""
    shape = tuple(int(v) for v in shape)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) == 1:
        return (shape[0], 1, 1)
    raise ValueError(f"activation shape {shape} is neither (C, H, W) nor (F,)")


def align(n: int, to: int = ALIGN) -> int:
    return (n + to - 1) // to * to
