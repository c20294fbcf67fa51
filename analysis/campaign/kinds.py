"""Campaigns over the population of each fault kind (SPEC §5, §7): lane, weight and BER.

``output`` campaigns are :func:`resilq.campaign.sampling.sample_faults`. The other kinds have their own
populations, sampled with Leveugle's size and the same seeded priorities (a fault's priority depends only
on the seed and the fault's identity, so a sample is reproducible and nested in larger ones):

* ``lane``: (neuron layer, PE lane, mask) for every lane that writes at least one slot of the layer
  (``lanes x layers x masks``); with ``lane_scope='all'`` a lane is faulty in every layer at once
  (``lanes x masks``).
* ``weight``: every stored bit: each int8 weight x 8 bits and each int32 bias word x its fault-site bits
  (:func:`resilq.fault_kinds.bias_bits`), of every conv/linear layer, classifier included, and of every
  shadow copy's own rows where a protection stores them (``Protection.own_weights``).
* ``ber``: no sampling: each of ``repetitions`` seeded draws at each probability ``p`` is one "fault" of the
  campaign; the breakdown by ``p`` gives accuracy vs p with a t-interval over the repetitions.

The sampled faults go into the campaign store's ``faults`` table with these column meanings (``mode`` as
for output faults); ``meta["fault_kind"]`` and ``meta["kind_params"]`` say how to read them (stores of
output campaigns carry neither key and read as before):

===========  =====================  ================  =========  ======  =====================
kind         layer                  slot              neuron     copy    mask / kind
===========  =====================  ================  =========  ======  =====================
``lane``     layer (-1: every)      lane              PE         0       mask / 0
``weight``   layer                  tap (-1: bias)    channel    copy    1 << bit / 0 weight, 1 bias
``ber``      index of p             repetition        0          0       0 / 0
===========  =====================  ================  =========  ======  =====================
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arith import FaultMode
from ..errors import ParameterError
from ..fault_kinds import (
    BER_PER,
    BER_SITES,
    INFERENCE_DRAW,
    INFERENCE_DRAWS,
    KINDS,
    BerFault,
    LaneFault,
    WeightFault,
    n_weight_bits,
    weight_faults_at,
    weight_sites,
)
from ..hls.config import DEFAULT_CONFIG, MAX_SHADOW_UNITS
from ..hls.mapping import slot_lanes
from ..ir.model import Model
from .engine import How
from .sampling import FaultModel, FaultSample, leveugle_sample_size, priorities
from .statistics import CONFIDENCE, CampaignSummary, GroupRow, _critical_and_loss, _mask_label, mean_interval, wilson

#: Layer codes that keep the priority streams of the kinds apart (a neuron layer index is far below).
_STREAM = {"lane": 1 << 20, "weight": 2 << 20}


@dataclass(frozen=True)
class KindSpec:
    """Which fault kind a campaign injects, and that kind's parameters."""

    kind: str = "output"
    pe: int = 8  # lane: PE lanes of the accelerator build (AccelConfig.pe)
    units: int = DEFAULT_CONFIG.shadow_units  # lane: its dedicated shadow lanes (AccelConfig.shadow_units), lanes pe .. pe+units-1
    lane_scope: str = "layer"  # lane: "layer" (one layer per fault) or "all" (every neuron layer)
    ber: tuple[float, ...] = ()  # ber: the probabilities of the sweep
    ber_sites: str = "outputs"
    ber_per: str = "run"
    repetitions: int = 10  # ber: seeded draws per probability
    ber_draw: int = INFERENCE_DRAW  # ber per inference: how the masks are drawn (BerFault.draw)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.kind == "lane":
            if not 1 <= self.pe <= 64 or self.pe & (self.pe - 1):
                raise ParameterError(f"--pe must be a power of two in 1..64, got {self.pe}")
            if not 0 <= self.units <= MAX_SHADOW_UNITS:
                raise ParameterError(f"--shadow-units must lie in 0..{MAX_SHADOW_UNITS}, got {self.units}")
            if self.lane_scope not in ("layer", "all"):
                raise ParameterError(f"lane scope must be 'layer' or 'all', got {self.lane_scope!r}")
        if self.kind == "ber":
            if not self.ber:
                raise ParameterError("a BER campaign needs at least one probability (--ber P[,P...])")
            for p in self.ber:
                if not 0.0 <= float(p) <= 1.0:
                    raise ParameterError(f"BER probability must lie in [0, 1], got {p}")
            if self.ber_sites not in BER_SITES or self.ber_per not in BER_PER:
                raise ParameterError(f"BER sites must be one of {BER_SITES} and per one of {BER_PER}")
            BerFault(float(self.ber[0]), self.ber_sites, 0, self.ber_per)  # the same rules as the descriptor
            if self.ber_per == "inference" and self.ber_sites != "outputs":
                raise ParameterError("per-inference BER draws apply to output sites only; use --ber-per run")
            if self.ber_draw not in INFERENCE_DRAWS:
                raise ParameterError(f"BER draw must be one of {INFERENCE_DRAWS}, got {self.ber_draw!r}")
            if self.repetitions < 1:
                raise ParameterError(f"repetitions must be positive, got {self.repetitions}")

    @property
    def params(self) -> dict[str, Any]:
        """What the store records (and checks on resume) besides the kind."""
        if self.kind == "lane":
            return {"pe": self.pe, "lane_scope": self.lane_scope, "units": self.units}
        if self.kind == "ber":
            params = {"ber": [float(p) for p in self.ber], "sites": self.ber_sites, "per": self.ber_per,
                      "repetitions": self.repetitions}
            if self.ber_per == "inference":  # per-run draws have one definition; per-inference ones a version
                params["draw"] = self.ber_draw
            return params
        return {}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> KindSpec:
        kind = meta.get("fault_kind", "output")
        p = {k: v for k, v in dict(meta.get("kind_params", {})).items() if k != "seed"}
        if kind == "ber":
            return cls(kind, ber=tuple(p["ber"]), ber_sites=p["sites"], ber_per=p["per"], repetitions=p["repetitions"],
                       ber_draw=draw_of(p))
        return cls(kind, **p)


OUTPUT = KindSpec()


def draw_of(params: Mapping[str, Any]) -> int:
    """How a BER campaign's per-inference masks are drawn: its ``kind_params["draw"]``; a store written before
    draws had versions has none and drew per input (draw 1)."""
    return int(params.get("draw", 1)) if params.get("per") == "inference" else INFERENCE_DRAW


def ber_seed(seed: int, repetition: int) -> int:
    """Seed of repetition ``repetition`` of a BER campaign with sampling seed ``seed`` (the same draws at every
    p: common random numbers make accuracy-vs-p curves smoother)."""
    digest = hashlib.sha256(f"resilq-ber:{int(seed)}:{int(repetition)}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


# ---------------------------------------------------------------------------------------------- populations
def lane_rows(model: Model, spec: KindSpec, fault_model: FaultModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(layer, lane, mask_index)`` of every lane fault of the population."""
    masks = len(fault_model.masks)
    if spec.lane_scope == "all":
        lanes = sorted({int(v) for i in model.neuron_layers for v in np.unique(slot_lanes(model, i, spec.pe, spec.units))})
        pairs = [(-1, lane) for lane in lanes]
    else:
        pairs = [(i, int(lane)) for i in model.neuron_layers for lane in np.unique(slot_lanes(model, i, spec.pe, spec.units))]
    layer = np.repeat(np.array([p[0] for p in pairs], dtype=np.int64), masks)
    lane = np.repeat(np.array([p[1] for p in pairs], dtype=np.int64), masks)
    return layer, lane, np.tile(np.arange(masks, dtype=np.int64), len(pairs))


def population_of(model: Model, spec: KindSpec, fault_model: FaultModel) -> int:
    if spec.kind == "lane":
        return int(lane_rows(model, spec, fault_model)[0].size)
    if spec.kind == "weight":
        return n_weight_bits(model)
    if spec.kind == "ber":
        return len(spec.ber) * spec.repetitions
    raise ParameterError("output campaigns use resilq.campaign.sampling.population_size")


def _pick(prio: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` candidates of lowest priority, in priority order (ties by position)."""
    if n < prio.size:
        cut = np.partition(prio, n - 1)[n - 1]
        candidates = np.flatnonzero(prio <= cut)
    else:
        candidates = np.arange(prio.size)
    return candidates[np.lexsort((candidates, prio[candidates]))][:n]


def sample_kind(model: Model, spec: KindSpec, fault_model: FaultModel, n: int | None, seed: int) -> FaultSample:
    """The faults of a lane / weight / BER campaign (Leveugle's size of the kind's population by default)."""
    size = population_of(model, spec, fault_model)
    if spec.kind == "ber":
        if n is not None and n != size:
            raise ParameterError(f"a BER campaign runs every (p, repetition): {size} runs; set --repetitions, "
                                 "not --faults")
        p_index, rep = np.divmod(np.arange(size, dtype=np.int64), spec.repetitions)
        zeros = np.zeros(size, dtype=np.int64)
        return FaultSample(p_index, rep, zeros, zeros, zeros, zeros, FaultMode.FLIP, size, "ber",
                           {**spec.params, "seed": int(seed)})
    if n is None:
        n = leveugle_sample_size(size)
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= size:
        raise ParameterError(f"the number of faults must lie in 1..{size:,} (the {spec.kind} population of "
                             f"{model.name}), got {n}")
    if spec.kind == "lane":
        layer, lane, mi = lane_rows(model, spec, fault_model)
        order = _pick(priorities(seed, layer + 1 + _STREAM["lane"], lane, np.zeros_like(lane), mi), n)
        masks = np.asarray(fault_model.masks, dtype=np.int64)[mi[order]]
        zeros = np.zeros(n, dtype=np.int64)
        return FaultSample(layer[order], lane[order], np.full(n, spec.pe, dtype=np.int64), zeros, masks, zeros,
                           fault_model.mode, size, "lane", spec.params)
    index = np.arange(size, dtype=np.int64)
    order = _pick(priorities(seed, np.full(size, _STREAM["weight"]), index, np.zeros_like(index), np.zeros_like(index)), n)
    faults = weight_faults_at(model, order)
    layer = np.array([f.layer for f in faults], dtype=np.int64)
    tap = np.array([-1 if f.tap is None else f.tap for f in faults], dtype=np.int64)
    channel = np.array([f.channel for f in faults], dtype=np.int64)
    mask = np.array([1 << f.bit for f in faults], dtype=np.int64)
    word = np.array([int(f.tap is None) for f in faults], dtype=np.int64)
    copy = np.array([f.copy for f in faults], dtype=np.int64)
    return FaultSample(layer, tap, channel, copy, mask, word, FaultMode.FLIP, size, "weight", spec.params)


def fault_of(sample: FaultSample, i: int):
    """The descriptor of row ``i`` of a lane / weight / BER sample (see the column table above)."""
    kind, p = sample.fault_kind, sample.params
    if kind == "lane":
        layer = int(sample.layer[i])
        return LaneFault(int(sample.slot[i]), None if layer < 0 else layer, int(sample.mask[i]), sample.mode,
                         int(sample.neuron[i]), int(p.get("units", 0)))  # stores before shadow lanes: none
    if kind == "weight":
        tap = int(sample.slot[i])
        return WeightFault(int(sample.layer[i]), int(sample.neuron[i]), None if tap < 0 else tap,
                           int(sample.mask[i]).bit_length() - 1, int(sample.copy[i]))
    return BerFault(float(p["ber"][int(sample.layer[i])]), p["sites"], ber_seed(p["seed"], int(sample.slot[i])),
                    p["per"], draw_of(p))


# ---------------------------------------------------------------------------------------------- metadata
def kind_metadata(model: Model, spec: KindSpec, fault_model: FaultModel, sample: FaultSample) -> dict[str, Any]:
    """Store metadata of a non-output campaign: the kind, its parameters and the per-group populations."""
    if spec.kind == "output":
        return {}
    groups: dict[str, Any] = {}
    if spec.kind == "lane":
        layer, lane, _ = lane_rows(model, spec, fault_model)
        names = {-1: "every layer", **{i: model.layers[i].name for i in model.neuron_layers}}
        groups["layers"] = [{"index": int(i), "name": names[int(i)], "population": int((layer == i).sum())}
                            for i in np.unique(layer)]
        groups["lanes"] = [{"lane": int(v), "population": int((lane == v).sum())} for v in np.unique(lane)]
    elif spec.kind == "weight":
        per_layer: dict[int, int] = {}
        bits: dict[tuple[bool, int], int] = {}
        for i, is_bias, words, nbits, _ in weight_sites(model):
            per_layer[i] = per_layer.get(i, 0) + words * nbits
            for b in range(nbits):
                bits[(is_bias, b)] = bits.get((is_bias, b), 0) + words
        groups["layers"] = [{"index": i, "name": model.layers[i].name, "population": n} for i, n in per_layer.items()]
        groups["bits"] = [{"bias": bias, "bit": b, "population": n} for (bias, b), n in sorted(bits.items())]
    return {"fault_kind": spec.kind, "kind_params": dict(sample.params), "kind_groups": groups}


# ---------------------------------------------------------------------------------------------- statistics
def summarize_kind(meta: Mapping[str, Any], sample: FaultSample, idx: np.ndarray, outcomes,
                   confidence: float = CONFIDENCE) -> CampaignSummary:
    """Statistics of a lane / weight / BER campaign, with that kind's breakdowns:
    lane: by layer, by mask, by lane; weight: by layer, by bit (weights and bias words apart), by word kind;
    ber: by probability (accuracy vs p, t-interval over the repetitions)."""
    kind = meta["fault_kind"]
    images = int(meta["images"])
    population = int(meta["population"])
    golden_correct = int(meta["fault_free_correct"])
    acc0 = golden_correct / images
    changed, correct = outcomes.changed, outcomes.correct
    total_changed = max(int(changed.sum()), 1)
    # BER repetitions are independent draws, not a sample without replacement from a finite population
    pop_for_ci = 0 if kind == "ber" else population

    def group(label: str, rows: np.ndarray, group_population: int) -> GroupRow:
        c, lo = _critical_and_loss(changed[rows], correct[rows], golden_correct, images,
                                   0 if kind == "ber" else group_population, confidence)
        return GroupRow(label, group_population, int(rows.size), c, lo,
                        int((changed[rows] > 0).sum()), float(changed[rows].sum()) / total_changed)

    crit, loss = _critical_and_loss(changed, correct, golden_correct, images, pop_for_ci, confidence)
    layer, slot, mask, word = sample.layer[idx], sample.slot[idx], sample.mask[idx], sample.kind[idx]
    groups = meta.get("kind_groups", {})
    by_layer, by_bit, by_kind = [], [], []
    if kind == "lane":
        by_layer = [group(g["name"], np.flatnonzero(layer == g["index"]), g["population"]) for g in groups["layers"]]
        n_pairs = sum(g["population"] for g in groups["layers"]) // max(1, int(meta["masks"]))
        by_bit = [group(_mask_label(int(m)), np.flatnonzero(mask == m), n_pairs) for m in meta["mask_values"]]
        by_kind = [group(f"lane {g['lane']}", np.flatnonzero(slot == g["lane"]), g["population"])
                   for g in groups["lanes"]]
    elif kind == "weight":
        by_layer = [group(g["name"], np.flatnonzero(layer == g["index"]), g["population"]) for g in groups["layers"]]
        by_bit = [group(f"{'bias' if g['bias'] else 'weight'} bit {g['bit']}",
                        np.flatnonzero((word == int(g["bias"])) & (mask == 1 << g["bit"])), g["population"])
                  for g in groups["bits"]]
        for code, label in ((0, "int8 weights"), (1, "int32 biases")):
            pop = sum(g["population"] for g in groups["bits"] if int(g["bias"]) == code)
            by_kind.append(group(label, np.flatnonzero(word == code), pop))
    else:
        reps = int(meta["kind_params"]["repetitions"])
        by_layer = [group(f"p = {p:g}", np.flatnonzero(layer == k), reps)
                    for k, p in enumerate(meta["kind_params"]["ber"])]
    how = {h.name.lower(): int((outcomes.how == h).sum()) for h in How}  # as for output campaigns
    return CampaignSummary(images, int(idx.size), int(meta["sample_size"]), population,
                           wilson(golden_correct, images, confidence), loss.shifted(acc0, negate=True), loss, crit,
                           wilson(int((changed > 0).sum()), int(idx.size), confidence), how, by_layer, by_bit,
                           by_kind)


def breakdown_titles(meta: Mapping[str, Any]) -> tuple[str, str, str]:
    kind = meta.get("fault_kind", "output")
    return {"lane": ("by layer", "by mask", "by lane"), "weight": ("by layer", "by bit", "by stored word"),
            "ber": ("accuracy vs p (by BER)", "", "")}.get(kind, ("by layer", "by bit", "by slot kind"))


__all__ = ["KindSpec", "OUTPUT", "sample_kind", "fault_of", "kind_metadata", "summarize_kind", "population_of",
           "ber_seed", "mean_interval"]
