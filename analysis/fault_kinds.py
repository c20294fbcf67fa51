"""Fault kinds beyond one output flip (SPEC §7): ``lane``, ``weight`` and ``ber`` descriptors.

Each descriptor means the same thing in the executor (the reference), the fault simulator / campaign engine
and the deployed accelerator (emulator, board). ``output`` is :class:`resilq.faults.Fault` (SPEC §2).

* :class:`LaneFault` -- persistent fault of PE lane ``lane``: every value that lane writes in layer ``layer``
  (or in every neuron layer) gets ``(mask, mode)`` for the whole run. The slots a lane writes, shadows
  included, come from the accelerator's mapping (:func:`resilq.hls.mapping.slot_lanes`): in the current
  datapath a protected neuron's shadows are recomputed by its own lane, so a lane fault hits every copy.
* :class:`WeightFault` -- bit ``bit`` of one stored int8 weight ``(layer, channel, tap)`` or, with
  ``tap=None``, of the channel's int32 bias word, flipped for the whole run. Every output computed from
  that stored word reads the flipped value: by default a protected neuron's shadows read the same stored
  word (one row per channel), so all copies are hit alike; where the protection stores a row per copy
  (``Protection.own_weights``), ``copy`` names which copy's word flips (0: the layer's own, read by the
  original slots; ``j >= 1``: shadow ``j``'s), and only that copy reads it.
* :class:`BerFault` -- every bit of a site set (``outputs``: every slot of every neuron layer, shadows
  included; ``weights``: every stored weight and bias bit, own-weight copies included; ``both``) flips independently with
  probability ``p``, drawn from ``seed``: once for the run, or (outputs only) afresh for every inference.

``expand``-style helpers turn a descriptor into what the engines execute: a list of output
:class:`~resilq.faults.Fault` objects, per-inference XOR masks, and a model whose stored words are faulty.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import numpy as np

from .arith import INT32_MAX, FaultMode
from .errors import ParameterError, UnsupportedModelError
from .faults import Fault
from .hls.config import DEFAULT_CONFIG, MAX_SHADOW_UNITS
from .ir.layers import is_compute, worst_case_accumulator
from .ir.model import Model

#: The fault kinds, in the order the CLI lists them.
KINDS = ("output", "lane", "weight", "ber")
BER_SITES = ("outputs", "weights", "both")
BER_PER = ("run", "inference")
MAX_PE = 64
#: Stream tags of the seeded draws (numpy SeedSequence entropy ``[seed, tag, index]``): per run (outputs, weights),
#: per inference of draw 1 (one stream per input) and of draw 2 (one stream per block of inputs).
_TAG_RUN_OUTPUTS, _TAG_INFERENCE, _TAG_WEIGHTS, _TAG_INFERENCE_BLOCK = 0, 1, 2, 3
#: How per-inference BER masks are drawn (``BerFault.draw``; a campaign store records it, ``kind_params["draw"]``):
#: 1 -- each input from its own generator ``[seed, 1, index]``, a binomial count then distinct bit positions
#: (resilq before draw 2; a generator per input costs more than the engine's work on it);
#: 2 -- the inputs in aligned blocks of :data:`INFERENCE_BLOCK` global indices, block ``b`` from one generator
#: ``[seed, 3, b]`` whose geometric gaps place the flipped bits among the block's bits (see ``BerFault``).
INFERENCE_DRAWS = (1, 2)
INFERENCE_DRAW = 2
INFERENCE_BLOCK = 256


def kind_of(fault) -> str:
    """``output``, ``lane``, ``weight`` or ``ber``: the kind of a fault descriptor."""
    if isinstance(fault, Fault):
        return "output"
    kind = getattr(fault, "kind", None)
    if kind not in KINDS:
        raise ParameterError(f"not a fault descriptor: {fault!r} (expected one of the kinds {KINDS})")
    return kind


def _check_mask_mode(mask: int, mode) -> None:
    if not isinstance(mask, (int, np.integer)) or not 0 < int(mask) <= 0xFF:
        raise ParameterError(f"fault mask must be a non-zero 8-bit value, got {mask!r}")
    try:
        FaultMode(mode)
    except ValueError:
        raise ParameterError(f"unknown fault mode {mode!r}; expected one of {[m.name for m in FaultMode]}") from None


def _neuron_layer(model: Model, layer: int, what: str) -> None:
    if layer not in model.neuron_layers:
        names = {i: model.layers[i].name for i in model.neuron_layers}
        raise ParameterError(f"{what} layer {layer} is not a neuron layer of {model.name} (neuron layers: {names})")


# ---------------------------------------------------------------------------------------------- lane
@dataclass(frozen=True, order=True)
class LaneFault:
    """Lane ``lane`` of an accelerator of ``pe`` PE lanes and ``units`` dedicated shadow lanes (numbered
    ``pe .. pe+units-1``; ``AccelConfig.shadow_units``) applies ``(mask, mode)`` to every value it writes in neuron
    layer ``layer`` (``None``: every neuron layer), in every inference of the run."""

    lane: int
    layer: int | None = None
    mask: int = 1
    mode: FaultMode = FaultMode.FLIP
    pe: int = 8
    units: int = DEFAULT_CONFIG.shadow_units
    kind: ClassVar[str] = "lane"

    def check(self, model: Model) -> None:
        if not isinstance(self.pe, (int, np.integer)) or not 1 <= self.pe <= MAX_PE or self.pe & (self.pe - 1):
            raise ParameterError(f"lane fault: PE must be a power of two in 1..{MAX_PE}, got {self.pe!r}")
        if not isinstance(self.units, (int, np.integer)) or not 0 <= self.units <= MAX_SHADOW_UNITS:
            raise ParameterError(f"lane fault: shadow lanes must lie in 0..{MAX_SHADOW_UNITS}, got {self.units!r}")
        lanes = self.pe + self.units
        if not isinstance(self.lane, (int, np.integer)) or not 0 <= self.lane < lanes:
            raise ParameterError(f"lane fault: lane must lie in 0..{lanes - 1} (PE = {self.pe}, {self.units} shadow "
                                 f"lanes), got {self.lane!r}")
        if self.layer is not None:
            _neuron_layer(model, self.layer, "lane fault:")
        _check_mask_mode(self.mask, self.mode)

    def layers(self, model: Model) -> tuple[int, ...]:
        return tuple(model.neuron_layers) if self.layer is None else (int(self.layer),)

    def slots(self, model: Model, layer: int) -> np.ndarray:
        """Local slots of ``layer`` (neurons and shadows) that this lane writes (the accelerator's mapping)."""
        from resilq.hls.mapping import slot_lanes  # numpy-only module; imported here to keep resilq.faults light

        return np.flatnonzero(slot_lanes(model, layer, self.pe, self.units) == self.lane)

    def output_faults(self, model: Model) -> list[Fault]:
        """The equivalent set of output faults: one per slot the lane writes (every slot is written once)."""
        self.check(model)
        mode = FaultMode(self.mode)
        return [Fault(layer, int(s), int(self.mask), mode) for layer in self.layers(model)
                for s in self.slots(model, layer)]

    def __str__(self) -> str:
        where = "every layer" if self.layer is None else f"layer {self.layer}"
        lanes = f"{self.pe}+{self.units}" if self.units else f"{self.pe}"
        return f"lane {self.lane}/{lanes} {where} mask {self.mask:#04x} {FaultMode(self.mode).name}"


# ---------------------------------------------------------------------------------------------- weight
@dataclass(frozen=True, order=True)
class WeightFault:
    """Bit ``bit`` of a stored word of compute layer ``layer`` (classifier included), for the whole run.

    ``tap`` is the flat index into ``weight[channel]`` (C-k-k order for a conv: ``c*k*k + ky*k + kx``; the
    input feature for a Linear layer) and ``bit`` is 0..7; ``tap=None`` addresses the channel's int32 bias
    word, ``bit`` 0..31. ``copy``: 0 is the layer's stored word; ``1 .. copies-1`` the stored word of shadow
    copy ``copy``, which exists only where the layer's protection has ``own_weights`` and the channel holds a
    protected neuron (:meth:`resilq.ir.Model.copied_channels`).
    """

    layer: int
    channel: int
    tap: int | None
    bit: int
    copy: int = 0
    kind: ClassVar[str] = "weight"

    @property
    def is_bias(self) -> bool:
        return self.tap is None

    def check(self, model: Model) -> None:
        n_layers = len(model.layers)
        if not isinstance(self.layer, (int, np.integer)) or not 0 <= self.layer < n_layers \
                or not is_compute(model.layers[self.layer]):
            names = {i: layer.name for i, layer in enumerate(model.layers) if is_compute(layer)}
            raise ParameterError(f"weight fault: layer {self.layer!r} holds no weights in {model.name} "
                                 f"(conv/linear layers: {names})")
        layer = model.layers[self.layer]
        if not 0 <= self.channel < layer.out_channels:
            raise ParameterError(f"weight fault: channel {self.channel} is outside layer {layer.name!r} "
                                 f"(0..{layer.out_channels - 1})")
        if self.tap is None:
            if not 0 <= self.bit <= 31:
                raise ParameterError(f"weight fault: a bias word has bits 0..31, got {self.bit}")
        else:
            if not 0 <= self.tap < layer.fan_in:
                raise ParameterError(f"weight fault: tap {self.tap} is outside layer {layer.name!r}'s "
                                     f"{layer.fan_in} weights per channel")
            if not 0 <= self.bit <= 7:
                raise ParameterError(f"weight fault: an int8 weight has bits 0..7, got {self.bit}")
        if not isinstance(self.copy, (int, np.integer)) or self.copy < 0:
            raise ParameterError(f"weight fault: copy must be a non-negative integer, got {self.copy!r}")
        if self.copy:
            prot = model.protection(self.layer)
            if prot is None or not prot.own_weights:
                raise ParameterError(f"weight fault: layer {layer.name!r} stores one row per channel (its protection "
                                     f"has no own_weights), so there is no copy {self.copy}; use copy 0")
            if self.copy >= prot.copies:
                raise ParameterError(f"weight fault: layer {layer.name!r}'s {prot.scheme.label} keeps copies "
                                     f"1..{prot.copies - 1}, not {self.copy}")
            if self.channel not in set(model.copied_channels(self.layer).tolist()):
                raise ParameterError(f"weight fault: channel {self.channel} of layer {layer.name!r} holds no protected "
                                     "neuron, so it has no stored copy")
        faulty = flip_layer_words(layer, [self])
        if worst_case_accumulator(faulty) > INT32_MAX:
            raise ParameterError(f"weight fault {self}: the flipped word lets layer {layer.name!r}'s int32 "
                                 "accumulator overflow (worst case beyond 2**31 - 1); the accelerator contract "
                                 "(SPEC §1) excludes such a network, so this fault is outside the population")

    def __str__(self) -> str:
        word = "bias" if self.tap is None else f"weight tap {self.tap}"
        where = f" (copy {self.copy})" if self.copy else ""
        return f"layer {self.layer} channel {self.channel} {word} bit {self.bit}{where}"


def flip_layer_words(layer, faults) -> object:
    """A copy of compute ``layer`` with each weight fault's stored bit flipped (faults of other layers ignored)."""
    weight = layer.weight.copy()
    bias = layer.bias.copy()
    wflat = weight.reshape(weight.shape[0], -1).view(np.uint8)
    bflat = bias.view(np.uint32)
    for f in faults:
        if f.is_bias:
            bflat[f.channel] ^= np.uint32(1 << int(f.bit))
        else:
            wflat[f.channel, f.tap] ^= np.uint8(1 << int(f.bit))
    return dataclasses.replace(layer, weight=weight, bias=bias)


def faulty_model(model: Model, faults) -> Model:
    """``model`` with the stored words of every copy-0 :class:`WeightFault` in ``faults`` flipped (validated): the
    words every copy reads, or with ``own_weights`` the original slots' own."""
    by_layer: dict[int, list[WeightFault]] = {}
    for f in faults:
        if not f.copy:
            by_layer.setdefault(int(f.layer), []).append(f)
    if not by_layer:
        return model
    layers = list(model.layers)
    for i, fs in by_layer.items():
        layers[i] = flip_layer_words(layers[i], fs)
    try:
        return model.replace(layers=tuple(layers))
    except UnsupportedModelError as exc:
        raise ParameterError(f"weight faults {[str(f) for f in faults]} leave the accelerator contract: {exc}") from None


def copy_layers(model: Model, faults) -> dict[int, dict[int, object]]:
    """The words each shadow copy reads where they are not the original's (``Protection.own_weights``):
    ``{layer: {copy: the layer with copy's stored words}}`` for every own-weight layer holding a weight fault
    (a copy-0 fault leaves the shadows on the clean words; a copy-``j`` fault flips only copy ``j``'s)."""
    out: dict[int, dict[int, object]] = {}
    for i in sorted({int(f.layer) for f in faults}):
        prot = model.protection(i)
        if prot is None or not prot.own_weights or not prot.n_protected:
            continue
        mine = [f for f in faults if int(f.layer) == i]
        original_changed = any(not f.copy for f in mine)
        copies = {}
        for j in range(1, prot.copies):
            fj = [f for f in mine if f.copy == j]
            if fj or original_changed:
                copies[j] = flip_layer_words(model.layers[i], fj) if fj else model.layers[i]
        if copies:
            out[i] = copies
    return out


# ---------------------------------------------------------------------------------------------- population of words
def bias_bits(layer) -> int:
    """How many low bits of ``layer``'s bias words are fault sites: the largest ``B`` such that flipping any
    bit below ``B`` of any bias keeps the worst-case int32 accumulator in range (SPEC §1). A flip of a higher
    bit (typically 30, 31) could overflow the accumulator, which the accelerator contract excludes."""
    w = np.abs(layer.weight.reshape(layer.weight.shape[0], -1).astype(np.int64)).sum(axis=1) * 128
    bias = layer.bias.astype(np.int64)
    for k in range(32):
        flipped = (bias.astype(np.int32).view(np.uint32) ^ np.uint32(1 << k)).view(np.int32).astype(np.int64)
        if int((w + np.abs(flipped)).max()) > INT32_MAX:
            return k
    return 32


class WordGroup(NamedTuple):
    """One group of stored words: a layer's int8 weights or int32 biases, of copy ``copy`` (0: the layer's
    own; ``j >= 1``: shadow copy ``j``'s rows of the :meth:`~resilq.ir.Model.copied_channels`)."""

    layer: int
    is_bias: bool
    words: int
    bits: int
    copy: int = 0


def weight_sites(model: Model) -> list[WordGroup]:
    """The stored-word groups, in order: each compute layer's int8 weights (``out_c * fan_in`` words of 8 bits),
    its int32 biases (``out_c`` words of :func:`bias_bits` bits), then, for a protection with ``own_weights``,
    each shadow copy's rows and biases of the copied channels."""
    groups = []
    for i, layer in enumerate(model.layers):
        if is_compute(layer):
            groups.append(WordGroup(i, False, int(layer.weight.size), 8))
            groups.append(WordGroup(i, True, int(layer.out_channels), bias_bits(layer)))
            copied = model.copied_channels(i) if i in model.neuron_layers else ()
            for j in range(1, model.protection(i).copies if len(copied) else 1):
                groups.append(WordGroup(i, False, int(len(copied) * layer.fan_in), 8, j))
                groups.append(WordGroup(i, True, int(len(copied)), bias_bits(layer), j))
    return groups


def weight_fault_at(model: Model, index: int, sites: list[WordGroup] | None = None) -> WeightFault:
    """The weight fault number ``index`` of the enumeration of :func:`weight_sites` (word-major, then bit);
    ``sites``: that enumeration, when the caller already has it (it costs a pass over every bias)."""
    index = int(index)
    for group in sites if sites is not None else weight_sites(model):
        size = group.words * group.bits
        if 0 <= index < size:
            word, bit = divmod(index, group.bits)
            channels = model.copied_channels(group.layer) if group.copy else None
            if group.is_bias:
                channel = word if channels is None else channels[word]
                return WeightFault(group.layer, int(channel), None, int(bit), group.copy)
            channel, tap = divmod(word, model.layers[group.layer].fan_in)
            channel = channel if channels is None else channels[channel]
            return WeightFault(group.layer, int(channel), int(tap), int(bit), group.copy)
        index -= size
    raise ParameterError("weight fault index beyond the model's stored bits")


def weight_faults_at(model: Model, indices) -> list[WeightFault]:
    """:func:`weight_fault_at` of each of ``indices`` (the enumeration computed once)."""
    sites = weight_sites(model)
    return [weight_fault_at(model, int(i), sites) for i in indices]


def n_weight_bits(model: Model) -> int:
    return sum(g.words * g.bits for g in weight_sites(model))


# ---------------------------------------------------------------------------------------------- BER
@dataclass(frozen=True, order=True)
class BerFault:
    """Every bit of the ``sites`` set flips independently with probability ``p``, drawn from ``seed``:
    once for the whole run (``per='run'``) or afresh for each inference (``per='inference'``, outputs only:
    a stored weight that changes between images would be a reload, not an upset).

    The output bits of one inference are numbered ``8 * slot + bit``, slots of the neuron layers in order (each
    layer's :meth:`~resilq.ir.Model.slots_in`). Per run: ``default_rng([seed, 0])`` draws a binomial count, then
    that many distinct bit numbers. Per inference, ``draw`` says how (:data:`INFERENCE_DRAWS`): with draw 2 (the
    default) input ``i`` belongs to block ``b = i // INFERENCE_BLOCK``, whose ``INFERENCE_BLOCK * n_bits`` bits
    are numbered input-major (``(i - b * INFERENCE_BLOCK) * n_bits + bit number``); ``default_rng([seed, 3, b])``
    draws geometric gaps ``g_1, g_2, ...`` (``Generator.geometric(p)``, the trials up to and including the next
    success) and the flipped bits are ``g_1 - 1, g_1 + g_2 - 1, ...`` below the block's end -- each bit flips
    independently with probability ``p``, and an input's flips depend only on the seed and its index, not on the
    batches or workers it is evaluated in. Draw 1: ``default_rng([seed, 1, i])`` per input, as per run."""

    p: float
    sites: str = "outputs"
    seed: int = 0
    per: str = "run"
    draw: int = INFERENCE_DRAW
    kind: ClassVar[str] = "ber"

    def check(self, model: Model) -> None:
        if not isinstance(self.p, (float, int, np.floating)) or not 0.0 <= float(self.p) <= 1.0:
            raise ParameterError(f"BER fault: p must be a probability in [0, 1], got {self.p!r}")
        if self.sites not in BER_SITES:
            raise ParameterError(f"BER fault: sites must be one of {BER_SITES}, got {self.sites!r}")
        if self.per not in BER_PER:
            raise ParameterError(f"BER fault: per must be one of {BER_PER}, got {self.per!r}")
        if self.per == "inference" and self.sites != "outputs":
            raise ParameterError("BER fault: per-inference draws apply to output sites only (stored weights keep "
                                 "an upset for the run); use per='run' for weights")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ParameterError(f"BER fault: seed must be a non-negative integer, got {self.seed!r}")
        if self.draw not in INFERENCE_DRAWS:
            raise ParameterError(f"BER fault: draw must be one of {INFERENCE_DRAWS} (how per-inference masks are "
                                 f"drawn), got {self.draw!r}")

    @property
    def hits_outputs(self) -> bool:
        return self.sites in ("outputs", "both")

    @property
    def hits_weights(self) -> bool:
        return self.sites in ("weights", "both")

    def _draw(self, n_bits: int, *key: int) -> np.ndarray:
        rng = np.random.default_rng([int(self.seed), *key])
        k = int(rng.binomial(n_bits, float(self.p))) if n_bits else 0
        return np.sort(rng.choice(n_bits, size=k, replace=False)) if k else np.zeros(0, np.int64)

    def _block_flips(self, n_bits: int, block: int) -> np.ndarray:
        """Sorted flipped bits of per-inference block ``block`` (draw 2), numbered input-major over the block's
        ``INFERENCE_BLOCK * n_bits`` bits."""
        span = INFERENCE_BLOCK * n_bits
        p = float(self.p)
        if not span or p <= 0.0:
            return np.zeros(0, np.int64)
        rng = np.random.default_rng([int(self.seed), _TAG_INFERENCE_BLOCK, int(block)])
        expected = span * p
        batch = int(expected + 6.0 * np.sqrt(expected) + 64)  # usually one batch; the gaps' stream is the same
        parts, last = [], -1
        while True:
            # a gap beyond the block ends it: clipped there, so that the sums cannot overflow
            ends = last + np.cumsum(np.minimum(rng.geometric(p, size=batch), span + 1))
            parts.append(ends[ends < span])
            if ends[-1] >= span:
                return np.concatenate(parts)
            last = int(ends[-1])

    def weight_faults(self, model: Model) -> list[WeightFault]:
        """The stored bits this run flips (empty unless the site set holds weights)."""
        if not self.hits_weights:
            return []
        return weight_faults_at(model, self._draw(n_weight_bits(model), _TAG_WEIGHTS))

    def output_masks(self, model: Model, rows: np.ndarray | None = None) -> dict[int, np.ndarray]:
        """XOR masks per neuron layer: ``{layer: (R, slots_in(layer)) uint8}``. Per run ``R = 1`` (the same
        flips in every inference); per inference one row per global input index in ``rows``."""
        if not self.hits_outputs:
            return {}
        layers = list(model.neuron_layers)
        sizes = [model.slots_in(i) for i in layers]
        starts = np.concatenate(([0], np.cumsum(sizes)))
        total = int(starts[-1])
        if self.per == "inference" and self.draw == 2:
            flat = self._inference_masks(np.asarray(rows, dtype=np.int64).ravel(), total)
            return {i: np.ascontiguousarray(flat[:, starts[w]:starts[w + 1]]) for w, i in enumerate(layers)}
        keys = [(_TAG_RUN_OUTPUTS,)] if self.per == "run" else [(_TAG_INFERENCE, int(r)) for r in rows]
        masks = {i: np.zeros((len(keys), s), np.uint8) for i, s in zip(layers, sizes)}
        for r, key in enumerate(keys):
            bits = self._draw(total * 8, *key)
            slot, bit = np.divmod(bits, 8)
            which = np.searchsorted(starts, slot, side="right") - 1
            for w in np.unique(which):
                sel = which == w
                np.bitwise_xor.at(masks[layers[w]][r], slot[sel] - starts[w], (1 << bit[sel]).astype(np.uint8))
        return masks

    def _inference_masks(self, rows: np.ndarray, slots: int) -> np.ndarray:
        """(len(rows), slots) uint8: the per-inference XOR masks of draw 2 of the global input indices ``rows``
        over all ``slots`` output slots (layers in order), each block drawn once."""
        uniq, inverse = np.unique(rows, return_inverse=True)
        out = np.zeros((uniq.size, slots), np.uint8)
        n_bits = 8 * slots
        for block in np.unique(uniq // INFERENCE_BLOCK):
            offset, number = np.divmod(self._block_flips(n_bits, int(block)), n_bits)
            index = int(block) * INFERENCE_BLOCK + offset
            at = np.minimum(np.searchsorted(uniq, index), uniq.size - 1)
            mine = uniq[at] == index
            slot, bit = np.divmod(number[mine], 8)
            np.bitwise_or.at(out, (at[mine], slot), np.left_shift(1, bit).astype(np.uint8))  # distinct bits
        return out if uniq.size == rows.size and np.array_equal(uniq, rows) else out[inverse.ravel()]

    def run_faults(self, model: Model) -> list[Fault]:
        """Per-run output flips as output faults (one per slot hit, its bits in one mask)."""
        if self.per != "run":
            raise ParameterError("per-inference BER flips are not one fault set for the run")
        faults = []
        for layer, m in self.output_masks(model).items():
            for s in np.flatnonzero(m[0]):
                faults.append(Fault(layer, int(s), int(m[0, s]), FaultMode.FLIP))
        return faults

    def __str__(self) -> str:
        draw = f", draw {self.draw}" if self.per == "inference" and self.draw != INFERENCE_DRAW else ""
        return f"BER p={self.p:g} on {self.sites} per {self.per} (seed {self.seed}{draw})"


# ---------------------------------------------------------------------------------------------- resolution
@dataclass
class Resolved:
    """What a set of fault descriptors amounts to for one run.

    ``model``: the network with its faulty stored words (those the original slots read); ``faults``: output
    faults present in every inference; ``per_inference``: BER descriptors whose masks are drawn per input
    index; ``shadow_layers``: where shadow copies read other words than the original (``own_weights`` layers
    with a weight fault, :func:`copy_layers`): ``{layer: {copy: layer with that copy's words}}``.
    """

    model: Model
    faults: list[Fault]
    per_inference: list[BerFault]
    shadow_layers: dict[int, dict[int, object]] = field(default_factory=dict)

    @property
    def layers(self) -> set[int]:
        """The neuron layers whose outputs are injected directly (weight faults excluded)."""
        out = {f.layer for f in self.faults}
        if self.per_inference:
            out |= set(self.model.neuron_layers)
        return out

    def row_masks(self, rows: np.ndarray) -> dict[int, np.ndarray]:
        """Summed (XOR) per-inference masks of every per-inference BER descriptor for inputs ``rows``."""
        total: dict[int, np.ndarray] = {}
        for b in self.per_inference:
            for layer, m in b.output_masks(self.model, rows).items():
                total[layer] = m if layer not in total else total[layer] ^ m
        return total


def resolve(model: Model, faults) -> Resolved:
    """Check every descriptor against ``model`` and reduce the set to faulty words + output faults."""
    faults = list(faults)
    words: list[WeightFault] = []
    outputs: list[Fault] = []
    per_inference: list[BerFault] = []
    for f in faults:
        kind = kind_of(f)
        if kind == "output":
            try:
                f.check(model)
            except ValueError as exc:
                raise ParameterError(str(exc)) from None
            outputs.append(f)
        elif kind == "lane":
            outputs += f.output_faults(model)
        elif kind == "weight":
            f.check(model)
            words.append(f)
        else:
            f.check(model)
            words += f.weight_faults(model)
            if f.hits_outputs:
                if f.per == "run":
                    outputs += f.run_faults(model)
                else:
                    per_inference.append(f)
    faulty = faulty_model(model, words)
    return Resolved(faulty, outputs, per_inference, copy_layers(model, words))


def is_plain(faults) -> bool:
    """True when every descriptor is an output :class:`Fault` (the executor's original fast path)."""
    return all(isinstance(f, Fault) for f in faults)
