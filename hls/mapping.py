"""Map a :class:`resilq.ir.Model` onto the accelerator: one :class:`LayerPlan` per executed layer.

This is where a model the accelerator cannot run is refused, at generation time, with an
:class:`~resilq.errors.UnsupportedModelError` naming the layer and the limit it exceeds. The rules are
the ones the kernel's ``check_descriptor`` applies at run time (``hls/include/resilq/descriptor.hpp``),
plus the ones only the host can check (the whole critical table, per-lane shadow fill). numpy only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from resilq.arith import Scheme
from resilq.errors import UnsupportedModelError
from resilq.ir import Conv2d, Flatten, Linear, MaxPool2d, Model

from . import regmap
from .config import AccelConfig
from .imageformat import ACT_BEAT_BYTES, Flag, MapLayout, Op, as_map

#: Largest channel count and spatial size of a descriptor field: the kernel's MAX_DIM
#: (hls/include/resilq/descriptor.hpp), which keeps every index product exact in one DSP48E1.
MAX_DIM = 0xFFFF


@dataclass(frozen=True)
class LayerPlan:
    """How one IR layer runs on the accelerator (a Linear layer is a 1x1 conv over a 1x1 map)."""

    index: int  # position in Model.layers (the FI_LAYER value)
    name: str
    op: Op
    flags: Flag
    in_c: int
    in_h: int
    in_w: int
    out_c: int
    out_h: int
    out_w: int
    kernel: int
    stride: int
    pad: int
    scheme: int  # resilq.arith.Scheme code, 0 = unprotected
    protected: np.ndarray  # flat neuron indices (Protection.neurons), int64
    simd: int
    pe: int
    clip_bound: int = 0  # the layer's clip bound when flags has Flag.CLIP (Flag.CLIP_ZERO: the zero variant)
    on_chip_input: bool = False  # a max-pool that pools the previous conv's output buffer (its Flag.POOL_NEXT)
    shadow_units: int = 0  # the build's dedicated shadow lanes (AccelConfig.shadow_units)

    @property
    def clip(self) -> tuple[int, str] | None:
        """``(bound, variant)`` of the layer's range restriction (applied as its outputs go to DDR), or None."""
        if not self.flags & Flag.CLIP:
            return None
        return self.clip_bound, ("zero" if self.flags & Flag.CLIP_ZERO else "bound")

    @property
    def pool_next(self) -> bool:
        """A conv whose output map the next descriptor max-pools on chip (``Flag.POOL_NEXT``)."""
        return bool(self.flags & Flag.POOL_NEXT)

    @property
    def copies(self) -> int:
        return Scheme(self.scheme).copies if self.scheme else 1

    @property
    def cg(self) -> int:
        return -(-self.in_c // self.simd)

    @property
    def ft(self) -> int:
        """SIMD words per weight row in DDR (the weight loader's words per row)."""
        return self.kernel * self.kernel * self.cg

    @property
    def packed(self) -> bool:
        """Kernel-row packing (the kernel's ``LayerGeom::packed``): a conv with at least two kernel columns'
        channels per SIMD word (``2 * in_c <= SIMD``) puts :attr:`taps` columns (kx, c) of a kernel row into the
        SIMD lanes of one word, the input buffer holding its pixels dense."""
        return self.op is Op.CONV and self.kernel > 1 and 2 * self.in_c <= self.simd

    @property
    def taps(self) -> int:
        """Kernel columns per SIMD word when packed: ``min(kernel, floor(SIMD / in_c))`` (1 unpacked)."""
        return min(self.kernel, self.simd // self.in_c) if self.packed else 1

    @property
    def row_words(self) -> int:
        """SIMD words per kernel row when packed: ``ceil(kernel / taps)``."""
        return -(-self.kernel // self.taps) if self.packed else self.kernel

    @property
    def stack(self) -> int:
        """Kernel rows per SIMD word (the kernel's ``LayerGeom::stack``): where a whole kernel row fits a word
        (``taps == kernel``) with room for another, ``min(kernel, floor(SIMD / (kernel * in_c)))`` rows one after
        the other; 1 otherwise."""
        if not self.packed or self.taps != self.kernel:
            return 1
        return min(self.kernel, self.simd // (self.taps * self.in_c))

    @property
    def mac_words(self) -> int:
        """SIMD words per output position and pass (compute cycles): ``ceil(kernel / stack) * row_words`` when
        packed."""
        return -(-self.kernel // self.stack) * self.row_words if self.packed else self.ft

    @property
    def in_trips(self) -> int:
        """Iterations of the input load (the kernel's ``LayerGeom::in_trips``): one per beat, and for a stacked
        conv reading a dense input one more for every row that starts inside a beat (that beat serves both rows,
        one at a time, because the buffer leaves a gap between the rows)."""
        if not (self.in_dense and self.stack > 1):
            return self.in_beats
        row = self.in_w * self.in_c
        starts = row * np.arange(1, self.in_h)
        return self.in_beats + int(np.count_nonzero(starts % ACT_BEAT_BYTES))

    @property
    def row_bytes(self) -> int:
        return self.ft * self.simd

    @property
    def hw_in(self) -> int:
        return self.in_h * self.in_w

    @property
    def hw_out(self) -> int:
        return self.out_h * self.out_w

    @property
    def n_out(self) -> int:
        return self.out_c * self.hw_out

    @property
    def tiles(self) -> int:
        return -(-self.out_c // self.pe)

    @property
    def n_protected(self) -> int:
        return int(self.protected.size)

    @property
    def raw(self) -> bool:
        return bool(self.flags & Flag.RAW)

    @property
    def in_bytes(self) -> int:
        """Input-buffer bytes: positions x channels padded to a multiple of SIMD."""
        return self.hw_in * self.cg * self.simd

    @property
    def batched(self) -> bool:
        """A layer the kernel runs over up to ``max_batch`` images at once (``Flag.BATCH``): a vector layer as a
        1 x chunk map whose positions are the images, or a conv over a map (:attr:`map_batched`)."""
        return bool(self.flags & Flag.BATCH)

    @property
    def map_batched(self) -> bool:
        """A batched conv over a map (the kernel's ``LayerGeom::map_batch``): the chunk's maps sit in the buffers
        side by side and each tile's weights, loaded once, meet every image."""
        return self.batched and not self.is_vector

    @property
    def is_vector(self) -> bool:
        return self.op is Op.CONV and self.hw_in == 1 and self.hw_out == 1 and self.kernel == 1 and self.stride == 1

    @property
    def in_dense(self) -> bool:
        """The input map lies dense in DDR (``Flag.DENSE_IN``: the network input of a packed conv or a vector)."""
        return bool(self.flags & Flag.DENSE_IN)

    @property
    def in_layout(self) -> MapLayout:
        """The DDR layout of the map this descriptor reads (a vector layer's input as one pixel)."""
        shape = (self.in_c, self.in_h, self.in_w)
        return MapLayout.dense(shape) if self.in_dense else MapLayout.padded(shape)

    @property
    def out_layout(self) -> MapLayout:
        """The DDR layout the descriptor writes (int8 maps; the int32 classifier goes out as words)."""
        return MapLayout.padded((self.out_c, self.out_h, self.out_w))

    @property
    def in_beats(self) -> int:
        """64-bit beats of the input load (the kernel's ``LayerGeom::in_beats``)."""
        return self.in_layout.beats

    @property
    def out_beats(self) -> int:
        return self.out_layout.beats

    def entries(self) -> np.ndarray:
        """Critical-table words of this layer, in Protection order: channel << 16 | position."""
        channel, pos = np.divmod(self.protected, self.hw_out)
        return ((channel.astype(np.uint32) << np.uint32(16)) | pos.astype(np.uint32)).astype(np.uint32)


def output_lane(channel, pe: int):
    """The PE lane that computes output channel ``channel``'s neurons (their original slots).

    ``conv_tile`` (hls/include/resilq/conv.hpp) runs tile ``t`` over channels ``c0 = t*PE .. c0+PE-1``; lane
    ``p`` owns channel ``c0 + p`` (its original slots start at ``(c0 + p) * hw_out``). A Linear layer is a 1x1
    conv: feature ``f`` is channel ``f``. Works on scalars and arrays.
    """
    return np.asarray(channel, dtype=np.int64) % int(pe) if np.ndim(channel) else int(channel) % int(pe)


def shadow_ranks(neurons, hw_out: int, copies: int, pe: int, units: int) -> tuple[np.ndarray, np.ndarray]:
    """For each protected neuron (flat indices of one layer): its rank among the protected neurons of its tile
    and position (by lane), and whether that position is *spare* -- its tile's protected neurons there need at
    most ``units`` shadow values, so the dedicated shadow lanes compute them during the position's one pass
    (conv.hpp ``assign_shadow_lanes``: shadow lane ``rank * (copies - 1) + j - 1`` takes copy ``j``). A batched
    vector layer has one position (every image of it protects the same lanes)."""
    neurons = np.asarray(neurons, dtype=np.int64)
    extra = int(copies) - 1
    if neurons.size == 0 or extra <= 0:
        return np.zeros(neurons.size, np.int64), np.zeros(neurons.size, bool)
    channel, pos = np.divmod(neurons, int(hw_out))
    key = (channel // int(pe)) * int(hw_out) + pos
    order = np.lexsort((channel % int(pe), key))
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    counts = np.diff(np.r_[starts, order.size])
    group = np.repeat(np.arange(starts.size), counts)
    rank, held = np.empty(order.size, np.int64), np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size) - starts[group]
    held[order] = counts[group] * extra
    return rank, held <= int(units)


def shadow_lane(channel, copy, pe: int, *, rank=0, spare=False):
    """The lane that computes shadow ``copy`` (1 .. copies-1) of a protected neuron of output channel ``channel``.

    At a spare position (:func:`shadow_ranks`) it is dedicated shadow lane ``PE + rank * (copies - 1) + copy - 1``
    (``copies - 1`` is ``copy``'s range: pass ``rank`` as ``rank * (copies - 1)``). Elsewhere the array recomputes
    the position: in shadow pass ``j`` lane ``p`` computes lane ``p - j``'s channel (conv.hpp), so copy ``j`` comes
    from lane ``(channel + j) mod PE`` -- the copies of one protected neuron run on different lanes whenever
    ``PE >= copies``; with PE = 2, TMR's second shadow shares the original's lane, with PE = 1 every copy does."""
    copy = np.asarray(copy, dtype=np.int64)
    rotated = (output_lane(channel, pe) + copy) % int(pe)
    return np.where(spare, int(pe) + np.asarray(rank, dtype=np.int64) + copy - 1, rotated)


def dsp_partner(lane, pe: int):
    """The lane whose products share a DSP48E1 with lane ``lane``'s (conv.hpp ``mac_pairs``, ops::mac_pair:
    lanes ``q`` and ``q + PE/2`` read the same activation, one DSP computes both); ``lane`` itself when PE = 1 and
    for a dedicated shadow lane (``lane >= PE``: ops::mac_single, one DSP per product). The rotated copies of a
    protected neuron sit on lanes ``c, c+1, .., c+copies-1`` (mod PE), never ``PE/2`` apart when
    ``PE >= 2 * copies``: a fault in one DSP then corrupts at most one copy."""
    half = int(pe) // 2
    lane = np.asarray(lane, dtype=np.int64) if np.ndim(lane) else int(lane)
    if half == 0:
        return lane
    return np.where(lane >= int(pe), lane, (lane + half) % int(pe)) if np.ndim(lane) else \
        (lane if lane >= int(pe) else (lane + half) % int(pe))


def slot_lanes(model: Model, index: int, pe: int, units: int = 0) -> np.ndarray:
    """(slots_in(index),) int64: the lane that writes each slot of neuron layer ``index``, shadows included
    (slot numbering of :mod:`resilq.faults`: neurons in C-H-W order, then the shadows of each protected neuron),
    on a build of ``pe`` PE lanes and ``units`` dedicated shadow lanes (numbered ``pe ..``; :func:`shadow_lane`)."""
    if index not in model.neuron_layers:
        raise UnsupportedModelError(f"layer {index} is not a neuron layer of {model.name}")
    shape = model.out_shape(index)
    hw_out = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    neurons = np.arange(model.neurons_in(index), dtype=np.int64)
    lanes = [output_lane(neurons // hw_out, pe)]
    prot = model.protection(index)
    if prot is not None and prot.n_protected:
        extra = prot.copies - 1
        rank, spare = shadow_ranks(prot.neurons, hw_out, prot.copies, pe, units)
        owner = np.repeat(prot.neurons.astype(np.int64), extra)
        copy = np.tile(np.arange(1, prot.copies, dtype=np.int64), prot.n_protected)
        lanes.append(shadow_lane(owner // hw_out, copy, pe, rank=np.repeat(rank * extra, extra),
                                 spare=np.repeat(spare, extra)))
    return np.concatenate(lanes)


def _reads_dense(layer, in_shape, config: AccelConfig) -> bool:
    """Whether a first layer reads the network input as one dense run: a vector layer, or a conv whose kernel
    columns pack into the SIMD lanes (``LayerPlan.packed``), where the buffer's element order is the dense
    pixel-major order."""
    if isinstance(layer, Linear):
        return True
    return isinstance(layer, Conv2d) and layer.kernel > 1 and 2 * as_map(in_shape)[0] <= config.simd


def activation_layouts(model: Model, config: AccelConfig) -> tuple[MapLayout, dict[int, MapLayout]]:
    """The DDR layout of the network input and of every layer's output (``imageformat``, FORMAT 2).

    The accelerator writes every map padded to whole beats; the input is dense when the first executed layer
    reads it as one run (:func:`_reads_dense`), padded otherwise. A Flatten's output is its input's bytes (the
    next Linear reads that stored map as its vector)."""
    first = next((i for i, layer in enumerate(model.layers) if not isinstance(layer, Flatten)), None)
    shape = tuple(model.input.shape)
    dense = first is not None and _reads_dense(model.layers[first], model.in_shape(first), config)
    source = MapLayout.dense(shape) if dense else MapLayout.padded(shape)
    outputs: dict[int, MapLayout] = {}
    previous = source
    for i, layer in enumerate(model.layers):
        outputs[i] = previous if isinstance(layer, Flatten) else MapLayout.padded(model.out_shape(i))
        previous = outputs[i]
    return source, outputs


def plan_model(model: Model, config: AccelConfig) -> list[LayerPlan]:
    """The accelerator plan of ``model``, or an ``UnsupportedModelError`` naming what does not fit."""
    plans: list[LayerPlan] = []
    neuron_layers = set(model.neuron_layers)
    source, outputs = activation_layouts(model, config)
    for i, layer in enumerate(model.layers):
        in_shape, out_shape = model.in_shape(i), model.out_shape(i)
        if isinstance(layer, Flatten):
            continue
        reads = source if i == 0 or all(isinstance(x, Flatten) for x in model.layers[:i]) else outputs[i - 1]
        clip = getattr(layer, "clip", None)
        if clip is not None and getattr(layer, "requant", None) is None:
            raise UnsupportedModelError(f"layer {layer.name!r}: clip on the int32 classifier (no requantization) has "
                                        "no int8 output to restrict")
        prot = model.protection(i)
        if prot is not None and prot.own_weights and prot.n_protected:
            raise UnsupportedModelError(f"layer {layer.name!r}: its protection keeps a stored weight row per copy "
                                        "(own_weights), which this accelerator does not build: every copy reads the "
                                        "channel's one row (docs/accelerator.md, 'Slots, faults and correction'); "
                                        "protect it with shared weights to deploy it")
        protected = np.zeros(0, np.int64) if prot is None else prot.neurons.astype(np.int64)
        scheme = int(prot.scheme) if prot is not None and prot.n_protected else 0
        if isinstance(layer, Conv2d):
            op, kernel, stride, pad = Op.CONV, layer.kernel, layer.stride, layer.padding
            geom = (in_shape[0], in_shape[1], in_shape[2], out_shape[0], out_shape[1], out_shape[2])
        elif isinstance(layer, Linear):
            op, kernel, stride, pad = Op.CONV, 1, 1, 0
            geom = (reads.nbytes, 1, 1, out_shape[0], 1, 1)  # the stored map as one vector (pixel-major, padded)
        elif isinstance(layer, MaxPool2d):
            op, kernel, stride, pad = Op.MAXPOOL, layer.kernel, layer.stride, 0
            geom = (in_shape[0], in_shape[1], in_shape[2], out_shape[0], out_shape[1], out_shape[2])
        else:  # pragma: no cover - the IR validates layer kinds
            raise UnsupportedModelError(f"layer {layer.name!r}: {type(layer).__name__} has no accelerator mapping")
        flags = Flag(0)
        if clip is not None:
            flags |= Flag.CLIP | (Flag.CLIP_ZERO if clip.variant == "zero" else Flag(0))
        if reads.is_dense and reads is source and reads.pitch != MapLayout.padded(reads.shape).pitch:
            flags |= Flag.DENSE_IN
        if op is Op.CONV:
            if layer.requant is None:
                flags |= Flag.RAW
            elif layer.requant.relu:
                flags |= Flag.RELU
            if i in neuron_layers:
                flags |= Flag.NEURONS
        plan = LayerPlan(i, layer.name, op, flags, *geom, kernel, stride, pad, scheme, protected[:] if scheme else
                         np.zeros(0, np.int64), config.simd, config.pe, 0 if clip is None else int(clip.bound),
                         shadow_units=config.shadow_units)
        check_plan(plan, config)
        if batch_fits(plan, config):
            plan = dataclasses.replace(plan, flags=plan.flags | Flag.BATCH)
        if op is Op.MAXPOOL and plans and plans[-1].index == i - 1 and plans[-1].map_batched:
            # a conv a max-pool follows pools on chip rather than batch (both cannot: the pool reads one image's map)
            unbatched = dataclasses.replace(plans[-1], flags=plans[-1].flags & ~Flag.BATCH)
            if pools_on_chip(unbatched, plan):
                plans[-1] = unbatched
        if op is Op.MAXPOOL and plans and plans[-1].index == i - 1 and pools_on_chip(plans[-1], plan):
            plans[-1] = dataclasses.replace(plans[-1], flags=plans[-1].flags | Flag.POOL_NEXT)
            plan = dataclasses.replace(plan, on_chip_input=True)
        plans.append(plan)
    if len(plans) > config.max_layers:
        raise UnsupportedModelError(f"{model.name}: {len(plans)} executed layers exceed the accelerator's "
                                    f"{config.max_layers} layer descriptors (max_layers)")
    total = sum(p.n_protected for p in plans)
    if total > regmap.CRIT_TABLE.capacity:
        worst = max(plans, key=lambda p: p.n_protected)
        raise UnsupportedModelError(f"{model.name}: {total} protected neurons exceed the critical-neuron table "
                                    f"capacity of {regmap.CRIT_TABLE.capacity} entries (largest: layer "
                                    f"{worst.name!r} with {worst.n_protected})")
    return plans


class KeptLayout:
    """Where each conv's parameters sit when the network's weights are kept on chip between runs (a nonzero
    WEIGHTS_TAG; ``WeightPlace`` in hls/include/resilq/types.hpp, laid out by accel_top.cpp the same way): conv
    after conv, its even tiles after the previous convs' in w_ping, its odd ones in w_pong, its tiles' bias/shift
    words after theirs. :meth:`take` places the next descriptor, or says it does not fit (the kernel refuses that
    descriptor with CAPACITY)."""

    def __init__(self, config: AccelConfig):
        self.words, self.tiles = config.max_fanin // config.simd, -(-config.max_channels // config.pe)
        self.ping = self.pong = self.tile = 0

    def take(self, plan: LayerPlan) -> bool:
        """Place ``plan`` after the layers taken so far; False (nothing placed) where its words would not fit."""
        if plan.op is not Op.CONV:
            return True
        ping = self.ping + -(-plan.tiles // 2) * plan.mac_words
        pong = self.pong + plan.tiles // 2 * plan.mac_words
        tile = self.tile + plan.tiles
        if ping > self.words or pong > self.words or tile > self.tiles:
            return False
        self.ping, self.pong, self.tile = ping, pong, tile
        return True


def weights_fit_on_chip(plans: list[LayerPlan], config: AccelConfig) -> bool:
    """Whether the network's parameters fit the weight, bias and shift buffers all at once (:class:`KeptLayout`):
    the condition for keeping them on chip between runs (``resilq.hls.packing.pack(..., keep_weights=True)``)."""
    layout = KeptLayout(config)
    return all(layout.take(plan) for plan in plans)


def pools_on_chip(conv: LayerPlan, pool: LayerPlan) -> bool:
    """Whether max-pool ``pool`` can pool conv ``conv``'s output buffer instead of reading its map back from DDR
    (the kernel's ``pools_on_chip`` with the conditions of ``FLAG_POOL_NEXT``, descriptor.hpp): ``pool`` reads
    exactly ``conv``'s int8 map, one image at a time (not batched, not the classifier). Like the kernel, it does not
    look at the IR layer numbers (:func:`plan_model` pairs only a pool that is the conv's next IR layer)."""
    return (conv.op is Op.CONV and pool.op is Op.MAXPOOL and not conv.raw and not conv.batched and (pool.in_c, pool.in_h, pool.in_w) == (conv.out_c, conv.out_h, conv.out_w)
            and not pool.in_dense)


def _batch_capacity(plan: LayerPlan, config: AccelConfig) -> str | None:
    """What a chunk of ``max_batch`` images would overflow (the kernel's FLAG_BATCH checks in descriptor.hpp), or
    None. A vector layer's chunk holds ``max_batch`` input vectors and output records; a conv over a map's holds
    ``max_batch`` input maps (``in_bytes`` each) and output maps, and must be an int8 conv reading a padded map."""
    m = config.max_batch
    rows = -(-plan.out_c // config.out_banks)
    if plan.is_vector:
        if plan.cg * plan.simd * m > config.max_in:
            return f"a batch of {m} input vectors exceeds max_in"
        if rows * m > (config.max_raw if plan.raw else config.max_out) // config.out_banks:
            return f"a batch of {m} outputs exceeds the {'classifier' if plan.raw else 'output'} buffer"
        return None
    if plan.op is not Op.CONV or plan.raw or plan.in_dense:
        return "FLAG_BATCH on a layer that is neither a vector nor an int8 conv reading a padded map"
    if plan.in_bytes * m > config.max_in:
        return f"a batch of {m} input maps ({plan.in_bytes:,} bytes each) exceeds max_in"
    if plan.hw_out * rows * m > config.max_out // config.out_banks:
        return f"a batch of {m} output maps exceeds the output buffer"
    return None


def batch_fits(plan: LayerPlan, config: AccelConfig) -> bool:
    """Whether a layer can run ``max_batch`` images at once (``Flag.BATCH``): a vector layer, or an int8 conv over a
    padded map, whose chunk fits the input, output (or classifier) buffers and, a rule only the host can check, the
    per-lane shadow buffers."""
    if plan.op is not Op.CONV or _batch_capacity(plan, config) is not None:
        return False
    if plan.n_protected:
        lanes = np.bincount(output_lane(plan.protected // plan.hw_out, plan.pe), minlength=plan.pe)
        if int(lanes.max()) * (plan.copies - 1) * config.max_batch > config.shadow_lane:
            return False
    return True


def batch_misfit(plan: LayerPlan, config: AccelConfig) -> str | None:
    """Why a ``Flag.BATCH`` descriptor is one the kernel refuses (STATUS CAPACITY), or None."""
    if not plan.batched:
        return None
    return _batch_capacity(plan, config)


def _refuse(plan: LayerPlan, what: str, value: int, limit: int, knob: str) -> None:
    kind = {Op.CONV: "conv/linear", Op.MAXPOOL: "maxpool"}[plan.op]
    raise UnsupportedModelError(f"layer {plan.name!r} ({kind}): {what} {value:,} exceeds the accelerator limit "
                                f"{limit:,} ({knob})")


def check_plan(plan: LayerPlan, config: AccelConfig) -> None:
    """Refuse a layer beyond this build's limits (the same rules as the kernel's check_descriptor)."""
    for what, value in (("input channels", plan.in_c), ("input height", plan.in_h), ("input width", plan.in_w),
                        ("output height", plan.out_h), ("output width", plan.out_w)):
        if value > MAX_DIM:
            _refuse(plan, what, value, MAX_DIM, "16-bit descriptor fields")
    if plan.kernel > config.max_kernel:
        _refuse(plan, "kernel size", plan.kernel, config.max_kernel, "max_kernel")
    if plan.stride > config.max_stride:
        _refuse(plan, "stride", plan.stride, config.max_stride, "max_stride")
    if plan.pad >= plan.kernel:
        raise UnsupportedModelError(f"layer {plan.name!r}: padding {plan.pad} must be smaller than the kernel "
                                    f"{plan.kernel} (the line of zeros would never meet a weight)")
    if plan.out_c > config.max_channels:
        _refuse(plan, "output channels", plan.out_c, config.max_channels, "max_channels")
    if plan.in_bytes > config.max_in:
        _refuse(plan, f"input map ({plan.in_c} channels padded to {plan.cg * plan.simd} x {plan.hw_in} positions) "
                "in bytes", plan.in_bytes, config.max_in, "max_in")
    if plan.hw_out > config.max_pos:
        _refuse(plan, "output positions per channel", plan.hw_out, config.max_pos, "max_pos")
    if plan.op is Op.CONV and plan.row_bytes > config.max_fanin:
        _refuse(plan, f"fan-in ({plan.kernel}x{plan.kernel} x {plan.in_c} channels padded to SIMD) in weights",
                plan.row_bytes, config.max_fanin, "max_fanin")
    if plan.raw:
        if plan.n_out > config.max_raw:
            _refuse(plan, "int32 classifier outputs", plan.n_out, config.max_raw, "max_raw")
        if plan.hw_out != 1:
            raise UnsupportedModelError(f"layer {plan.name!r}: an int32 classifier must have one output position per "
                                        f"channel (a Linear layer, or a conv down to 1x1), not {plan.out_h}x{plan.out_w}")
    else:
        rows = -(-plan.out_c // config.out_banks)
        if rows * plan.hw_out > config.max_out // config.out_banks:
            _refuse(plan, "output map in bytes (per output-buffer bank)", rows * plan.hw_out * config.out_banks,
                    config.max_out, "max_out")
    if plan.n_protected:
        if plan.n_protected > regmap.CRIT_TABLE.capacity:
            _refuse(plan, "protected neurons", plan.n_protected, regmap.CRIT_TABLE.capacity, "critical-table capacity")
        lanes = np.bincount(output_lane(plan.protected // plan.hw_out, plan.pe), minlength=plan.pe)
        fill = int(lanes.max()) * (plan.copies - 1)
        if fill > config.shadow_lane:
            _refuse(plan, f"shadow values in one PE lane ({int(lanes.max())} protected neurons x {plan.copies - 1})",
                    fill, config.shadow_lane, "shadow_lane")
