"""Which faults a campaign injects: fault models, the fault population, Leveugle's sample size, sampling.

The population of a model under a fault model is every (slot, mask) pair: every slot of every neuron
layer (neurons and the shadow slots of protected neurons, SPEC §2/§4) times every mask the fault model
allows (8 single bits for ``single-bit`` and ``stuck-at-*``; the C(8, K) K-bit masks for ``multi-bit:K``).

Sampling is *coordinated* (permanent random numbers): every candidate fault gets a pseudo-random
priority that depends only on the seed and on its identity ``(layer, neuron, copy, mask)``, and a
campaign injects the ``n`` candidates of lowest priority. Because priorities are i.i.d. uniform, this is
a simple random sample without replacement of each population (what Leveugle's formula assumes), and:

* it is reproducible from the seed alone, in any process, in any order;
* any prefix of a sample (in priority order) is itself a simple random sample, so a partly finished
  campaign is an unbiased (smaller) campaign;
* the samples of two networks that share neurons overlap as much as possible: the unprotected network
  and its hardened variants at every NVF threshold inject the same faults wherever their populations
  agree, which is what lets a threshold sweep share results (see :mod:`resilq.campaign.sweep`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from enum import Enum, IntEnum
from itertools import combinations

import numpy as np

from ..arith import FaultMode
from ..errors import ParameterError
from ..faults import Fault
from ..ir.model import Model

#: Leveugle et al. (DATE 2009) with the paper's parameters: 1 % error margin, 95 % confidence, worst case p.
ERROR_MARGIN = 0.01
CONFIDENCE_T = 1.96
WORST_CASE_P = 0.5


def leveugle_sample_size(population: int, e: float = ERROR_MARGIN, t: float = CONFIDENCE_T,
                         p: float = WORST_CASE_P) -> int:
    """``n = N / (1 + e^2 (N - 1) / (t^2 p (1 - p)))``, rounded up (SPEC §5)."""
    if population < 1:
        raise ParameterError(f"the fault population must hold at least one fault, got {population}")
    if not (0 < e < 1 and t > 0 and 0 < p < 1):
        raise ParameterError(f"Leveugle's formula needs 0 < e < 1, t > 0, 0 < p < 1; got e={e}, t={t}, p={p}")
    n = population / (1 + e * e * (population - 1) / (t * t * p * (1 - p)))
    return min(population, math.ceil(n - 1e-9))


# ---------------------------------------------------------------------------------------------- fault models
class FaultKind(Enum):
    SINGLE_BIT = "single-bit"
    MULTI_BIT = "multi-bit"
    STUCK_AT_0 = "stuck-at-0"
    STUCK_AT_1 = "stuck-at-1"


@dataclass(frozen=True)
class FaultModel:
    """What one fault does to the byte at its slot: which masks exist and how a mask acts (FaultMode)."""

    kind: FaultKind = FaultKind.SINGLE_BIT
    bits: int = 1  # bits per mask: K for multi-bit, 1 otherwise

    def __post_init__(self) -> None:
        if self.kind is FaultKind.MULTI_BIT:
            if not 2 <= self.bits <= 8:
                raise ParameterError(f"multi-bit faults flip 2..8 bits of the byte, got {self.bits}")
        elif self.bits != 1:
            raise ParameterError(f"{self.kind.value} faults act on exactly one bit, got bits={self.bits}")

    @classmethod
    def parse(cls, text: str) -> FaultModel:
        """``single-bit``, ``multi-bit:K`` (2 <= K <= 8), ``stuck-at-0`` or ``stuck-at-1``."""
        key = text.strip().lower()
        if key.startswith("multi-bit"):
            _, _, k = key.partition(":")
            if not k.isdigit():
                raise ParameterError(f"multi-bit fault model needs a bit count, e.g. multi-bit:2; got {text!r}")
            return cls(FaultKind.MULTI_BIT, int(k))
        for kind in FaultKind:
            if kind.value == key and kind is not FaultKind.MULTI_BIT:
                return cls(kind)
        raise ParameterError(f"unknown fault model {text!r}; expected single-bit, multi-bit:K, stuck-at-0 or stuck-at-1")

    @property
    def label(self) -> str:
        return f"multi-bit:{self.bits}" if self.kind is FaultKind.MULTI_BIT else self.kind.value

    @property
    def mode(self) -> FaultMode:
        return {FaultKind.STUCK_AT_0: FaultMode.STUCK_AT_0,
                FaultKind.STUCK_AT_1: FaultMode.STUCK_AT_1}.get(self.kind, FaultMode.FLIP)

    @property
    def masks(self) -> tuple[int, ...]:
        """Every mask of this model, in a fixed order (its position is the mask index used for sampling)."""
        return tuple(sum(1 << b for b in combo) for combo in combinations(range(8), self.bits))

    def __str__(self) -> str:
        return self.label


SINGLE_BIT = FaultModel()


# ---------------------------------------------------------------------------------------------- population
@dataclass(frozen=True)
class Population:
    """Every candidate fault of a model under a fault model, as parallel arrays (one row per candidate)."""

    layer: np.ndarray  # int64: index in model.layers
    slot: np.ndarray  # int64: local slot (neurons, then shadows)
    neuron: np.ndarray  # int64: the neuron the slot belongs to
    copy: np.ndarray  # int64: 0 = the original slot, 1.. = shadow copies
    mask_index: np.ndarray  # int64: position in FaultModel.masks

    @property
    def size(self) -> int:
        return int(self.layer.size)


def slot_table(model: Model) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(layer, slot, neuron, copy)`` of every slot of ``model`` (neuron layers in order, slots in order)."""
    parts = []
    for i in model.neuron_layers:
        n_out = model.neurons_in(i)
        slots = np.arange(n_out, dtype=np.int64)
        neurons, copies = slots.copy(), np.zeros(n_out, dtype=np.int64)
        prot = model.protection(i)
        if prot is not None and prot.n_shadows:
            k = np.arange(prot.n_shadows, dtype=np.int64)
            position, copy = np.divmod(k, prot.copies - 1)
            slots = np.concatenate([slots, n_out + k])
            neurons = np.concatenate([neurons, prot.neurons.astype(np.int64)[position]])
            copies = np.concatenate([copies, copy + 1])
        parts.append((np.full(slots.size, i, dtype=np.int64), slots, neurons, copies))
    return tuple(np.concatenate([p[j] for p in parts]) for j in range(4))  # type: ignore[return-value]


def population(model: Model, fault_model: FaultModel = SINGLE_BIT) -> Population:
    layer, slot, neuron, copy = slot_table(model)
    m = len(fault_model.masks)
    rep = lambda a: np.repeat(a, m)  # noqa: E731
    return Population(rep(layer), rep(slot), rep(neuron), rep(copy), np.tile(np.arange(m, dtype=np.int64), layer.size))


def population_size(model: Model, fault_model: FaultModel = SINGLE_BIT) -> int:
    return model.n_slots * len(fault_model.masks)


# ---------------------------------------------------------------------------------------------- priorities
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, vectorised (uint64 arithmetic wraps modulo 2**64)."""
    with np.errstate(over="ignore"):
        z = (z + np.uint64(0x9E3779B97F4A7C15)) & _M64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
        return z ^ (z >> np.uint64(31))


def fault_identity(layer, neuron, copy, mask_index) -> np.ndarray:
    """A 64-bit identity of a candidate fault, independent of the rest of the network's protection."""
    layer, neuron, copy, mask_index = (np.asarray(a, dtype=np.uint64) for a in (layer, neuron, copy, mask_index))
    return (((layer << np.uint64(32)) | neuron) << np.uint64(10)) | (copy << np.uint64(8)) | mask_index


def priorities(seed: int, layer, neuron, copy, mask_index) -> np.ndarray:
    """Pseudo-random uint64 priority of each candidate: a function of the seed and its identity only."""
    digest = hashlib.sha256(f"resilq-campaign-seed:{int(seed)}".encode()).digest()
    salt = np.uint64(int.from_bytes(digest[:8], "little"))
    return _splitmix64(_splitmix64(fault_identity(layer, neuron, copy, mask_index) ^ salt))


# ---------------------------------------------------------------------------------------------- samples
class SlotKind(IntEnum):
    """What a fault hits: an unprotected neuron, the original slot of a protected neuron, or a shadow slot."""

    NEURON = 0
    PROTECTED = 1
    SHADOW = 2

    @property
    def label(self) -> str:
        return {0: "unprotected neuron", 1: "protected neuron", 2: "shadow slot"}[int(self)]


@dataclass(frozen=True)
class FaultSample:
    """The faults of one campaign, in priority order (row ``i`` is fault number ``i``)."""

    layer: np.ndarray
    slot: np.ndarray
    neuron: np.ndarray
    copy: np.ndarray
    mask: np.ndarray
    kind: np.ndarray  # SlotKind of each fault's slot
    mode: FaultMode
    population: int
    fault_kind: str = "output"  # lane / weight / ber: columns read as in resilq.campaign.kinds
    params: dict | None = None  # the kind's parameters (resilq.campaign.kinds.KindSpec.params)

    def __len__(self) -> int:
        return int(self.layer.size)

    def fault(self, i: int) -> Fault:
        if self.fault_kind != "output":
            from .kinds import fault_of

            return fault_of(self, i)
        return Fault(int(self.layer[i]), int(self.slot[i]), int(self.mask[i]), self.mode)

    def faults(self, rows: np.ndarray | None = None) -> list[Fault]:
        rows = range(len(self)) if rows is None else rows
        return [self.fault(int(i)) for i in rows]

    def digest(self) -> str:
        """SHA-256 of the sample (identifies the plan a campaign store was created with)."""
        h = hashlib.sha256(f"{int(self.mode)}:{self.population}".encode())
        if self.fault_kind != "output":  # output samples keep the digest they always had
            h.update(json.dumps([self.fault_kind, self.params], sort_keys=True).encode())
        for a in (self.layer, self.slot, self.neuron, self.copy, self.mask, self.kind):
            h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
        return h.hexdigest()


def sample_faults(model: Model, fault_model: FaultModel = SINGLE_BIT, n: int | None = None, seed: int = 0) -> FaultSample:
    """The ``n`` faults of lowest priority (Leveugle's size by default): a simple random sample, reproducible."""
    pop = population(model, fault_model)
    size = pop.size
    if n is None:
        n = leveugle_sample_size(size)
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= size:
        raise ParameterError(f"the number of faults must lie in 1..{size:,} (the population of {model.name} under "
                             f"{fault_model.label}), got {n}")
    prio = priorities(seed, pop.layer, pop.neuron, pop.copy, pop.mask_index)
    ident = fault_identity(pop.layer, pop.neuron, pop.copy, pop.mask_index)
    if n < size:
        cut = np.partition(prio, n - 1)[n - 1]
        candidates = np.flatnonzero(prio <= cut)
    else:
        candidates = np.arange(size)
    order = candidates[np.lexsort((ident[candidates], prio[candidates]))][:n]
    masks = np.asarray(fault_model.masks, dtype=np.int64)
    layer, neuron, copy = pop.layer[order], pop.neuron[order], pop.copy[order]
    return FaultSample(layer, pop.slot[order], neuron, copy, masks[pop.mask_index[order]],
                       slot_kinds(model, layer, neuron, copy), fault_model.mode, size)


def slot_kinds(model: Model, layer: np.ndarray, neuron: np.ndarray, copy: np.ndarray) -> np.ndarray:
    """:class:`SlotKind` of each slot given as ``(layer, neuron, copy)``."""
    kind = np.where(copy > 0, SlotKind.SHADOW, SlotKind.NEURON).astype(np.int64)
    for i in np.unique(layer):
        prot = model.protection(int(i))
        if prot is None or not prot.n_protected:
            continue
        rows = np.flatnonzero((layer == i) & (copy == 0))
        kind[rows[np.isin(neuron[rows], prot.neurons)]] = SlotKind.PROTECTED
    return kind
