"""Which neurons to protect: typed selection criteria over an NVF result (SPEC §3, §4).

A criterion says *how many* and *which* units to protect; the granularity says what a unit is:

* ``Granularity.NEURON``: one output element (the neuron-splitting paper);
* ``Granularity.CHANNEL``: every neuron of one output channel (the hardening-and-pruning paper's filter
  duplication). A channel's score is the mean NVF of its neurons: the probability that a uniformly random
  single-bit flip in a uniformly random neuron of the channel misclassifies an input (the same reading as
  a neuron's NVF). For a Linear layer a channel is one neuron, so both granularities agree there.

Criteria:

* :class:`Threshold` -- units whose score is >= tau (optionally per layer, by layer name);
* :class:`TopK` -- the k units with the highest score over the whole network;
* :class:`Budget` -- units in decreasing score while their shadow slots fit into a budget of extra slots
  (a unit costs ``neurons * (copies - 1)`` slots under the scheme its layer gets).

Neurons with an unknown NVF (NaN, not visited by a sampled analysis) are never selected, and top-k / budget
never select a unit whose score is 0 (protecting it cannot remove a misclassification the analysis saw).
Ties are broken by network order (layer, then index), so a selection is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from ..errors import ParameterError
from ..ir.model import Model
from ..nvf import NVFResult, check_threshold

#: Same slack as :meth:`resilq.nvf.NVFResult.critical`: an NVF of exactly tau counts as >= tau.
_EPS = 1e-12


class Granularity(Enum):
    NEURON = "neuron"
    CHANNEL = "channel"


@dataclass(frozen=True)
class Threshold:
    """Protect units with score >= ``value``; ``per_layer`` overrides it for named layers.

    ``value=None`` protects only the layers named in ``per_layer``.
    """

    value: float | None = None
    per_layer: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.value is None and not self.per_layer:
            raise ParameterError("a threshold criterion needs a global threshold or at least one per-layer threshold")
        if self.value is not None:
            check_threshold(self.value)
        for name, t in self.per_layer.items():
            try:
                check_threshold(t)
            except ParameterError as exc:
                raise ParameterError(f"threshold for layer {name!r}: {exc}") from None

    def describe(self) -> dict:
        return {"kind": "threshold", "threshold": self.value, "per_layer": dict(self.per_layer)}


@dataclass(frozen=True)
class TopK:
    """Protect the ``k`` units with the highest score (over all allowed layers)."""

    k: int

    def __post_init__(self) -> None:
        if not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ParameterError(f"top-k needs a positive number of units, got {self.k!r}")

    def describe(self) -> dict:
        return {"kind": "top-k", "k": int(self.k)}


@dataclass(frozen=True)
class Budget:
    """Protect units in decreasing score as long as their shadow slots fit into ``slots`` extra slots."""

    slots: int

    def __post_init__(self) -> None:
        if not isinstance(self.slots, (int, np.integer)) or self.slots < 1:
            raise ParameterError(f"a slot budget must be a positive number of extra slots, got {self.slots!r}")

    def describe(self) -> dict:
        return {"kind": "budget", "slots": int(self.slots)}


@dataclass(frozen=True)
class GainBudget:
    """Protect the neurons whose summed protection gain (SPEC §8) is largest within ``slots`` extra slots
    (exact, :mod:`resilq.harden.knapsack`); applied by :func:`resilq.harden.harden_by_gain`, not by ``select``."""

    slots: int
    scheme: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.slots, (int, np.integer)) or self.slots < 1:
            raise ParameterError(f"a slot budget must be a positive number of extra slots, got {self.slots!r}")

    def describe(self) -> dict:
        return {"kind": "gain-budget", "slots": int(self.slots), "scheme": self.scheme}


Criterion = Threshold | TopK | Budget | GainBudget


@dataclass(frozen=True, eq=False)
class Selection:
    """The neurons chosen for protection: sorted flat indices per layer index (empty layers omitted)."""

    neurons: dict[int, np.ndarray]
    criterion: Criterion
    granularity: Granularity
    #: Number of units (neurons or channels) selected, and what a criterion asked for but could not get.
    units: int = 0
    note: str = ""

    @property
    def n_neurons(self) -> int:
        return int(sum(v.size for v in self.neurons.values()))

    def in_layer(self, index: int) -> np.ndarray:
        return self.neurons.get(index, np.zeros(0, dtype=np.int32))


# ------------------------------------------------------------------------------------------- helpers
def neurons_per_channel(model: Model, index: int) -> int:
    shape = model.out_shape(index)
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def channel_scores(model: Model, nvf: NVFResult, index: int) -> np.ndarray:
    """Mean NVF of each output channel of layer ``index`` (NaN neurons ignored; NaN if none is known)."""
    per = neurons_per_channel(model, index)
    values = nvf.values[index].reshape(-1, per)
    known = np.isfinite(values)
    total = np.where(known, values, 0.0).sum(axis=1)
    count = known.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def resolve_layers(model: Model, names: Mapping[str, object] | tuple[str, ...] | list[str] | None,
                   what: str = "protected") -> tuple[int, ...]:
    """Layer indices of ``names`` (all neuron layers when None), refusing the classifier and unknown names."""
    if names is None:
        return model.neuron_layers
    index = {layer.name: i for i, layer in enumerate(model.layers)}
    out = []
    for name in names:
        if name not in index:
            known = ", ".join(model.layers[i].name for i in model.neuron_layers)
            raise ParameterError(f"model {model.name} has no layer {name!r} (neuron layers: {known})")
        i = index[name]
        if i == model.classifier_index:
            raise ParameterError(f"layer {name!r} is the classifier: its outputs are the class scores, not neurons, "
                                 f"and cannot be {what}")
        if i not in model.neuron_layers:
            raise ParameterError(f"layer {name!r} ({model.layers[i].kind}) has no neurons; only Conv2d/Linear "
                                 f"layers have neurons that can be {what}")
        out.append(i)
    return tuple(sorted(set(out)))


def _units(model: Model, nvf: NVFResult, index: int, granularity: Granularity) -> tuple[np.ndarray, int]:
    """Scores of the units of layer ``index`` and the number of neurons per unit."""
    if granularity is Granularity.CHANNEL:
        return channel_scores(model, nvf, index), neurons_per_channel(model, index)
    return np.asarray(nvf.values[index], dtype=np.float64), 1


def _expand(units: np.ndarray, per: int) -> np.ndarray:
    units = np.asarray(units, dtype=np.int64)
    if per == 1:
        return np.sort(units).astype(np.int32)
    return np.sort((units[:, None] * per + np.arange(per)[None, :]).ravel()).astype(np.int32)


# ------------------------------------------------------------------------------------------- select
def select(model: Model, nvf: NVFResult, criterion: Criterion, granularity: Granularity = Granularity.NEURON,
           layers: tuple[str, ...] | None = None,
           cost_per_neuron: Callable[[int], int] | None = None) -> Selection:
    """Apply ``criterion`` to ``nvf`` (checked against ``model``) and return the selected neurons.

    ``layers`` restricts the selection to the named layers. ``cost_per_neuron(layer_index)`` is the number
    of extra slots one protected neuron of that layer costs (needed by :class:`Budget`; default 1).
    """
    nvf.check_model(model)
    granularity = Granularity(granularity)
    allowed = resolve_layers(model, layers)
    if isinstance(criterion, Threshold):
        for i in resolve_layers(model, tuple(criterion.per_layer)):
            if i not in allowed:
                raise ParameterError(f"layer {model.layers[i].name!r} has its own threshold but is not among the "
                                     f"layers to protect ({', '.join(layers or ())})")
    missing = [model.layers[i].name for i in allowed if i not in nvf.values]
    if missing:
        raise ParameterError(f"the NVF result has no values for layer(s) {', '.join(missing)}")
    cost = cost_per_neuron or (lambda i: 1)

    if isinstance(criterion, Threshold):
        return _by_threshold(model, nvf, criterion, granularity, allowed)
    candidates = []  # (score, layer, unit, neurons per unit)
    for i in allowed:
        scores, per = _units(model, nvf, i, granularity)
        keep = np.flatnonzero(np.isfinite(scores) & (scores > 0))
        candidates.extend((float(scores[u]), i, int(u), per) for u in keep)
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    chosen: dict[int, list[int]] = {}
    note = ""
    if isinstance(criterion, TopK):
        picked = candidates[: int(criterion.k)]
        if len(picked) < criterion.k:
            note = f"only {len(picked)} {granularity.value}s have an NVF above 0 (top-k asked for {criterion.k})"
    elif isinstance(criterion, Budget):
        picked, left = [], int(criterion.slots)
        for c in candidates:
            price = c[3] * cost(c[1])
            if price <= left:
                picked.append(c)
                left -= price
        note = f"{criterion.slots - left} of {criterion.slots} extra slots used"
    elif isinstance(criterion, GainBudget):
        raise ParameterError("selection by gain needs the gain analysis: use resilq.harden.harden_by_gain")
    else:
        raise ParameterError(f"unknown selection criterion {criterion!r}; use Threshold, TopK or Budget")
    per_unit = {}
    for _, i, u, per in picked:
        chosen.setdefault(i, []).append(u)
        per_unit[i] = per
    neurons = {i: _expand(np.array(us), per_unit[i]) for i, us in sorted(chosen.items())}
    return Selection(neurons, criterion, granularity, units=len(picked), note=note)


def _by_threshold(model: Model, nvf: NVFResult, criterion: Threshold, granularity: Granularity,
                  allowed: tuple[int, ...]) -> Selection:
    neurons, units = {}, 0
    for i in allowed:
        t = criterion.per_layer.get(model.layers[i].name, criterion.value)
        if t is None:
            continue
        scores, per = _units(model, nvf, i, granularity)
        hit = np.flatnonzero(np.isfinite(scores) & (scores >= t - _EPS))
        if hit.size:
            neurons[i] = _expand(hit, per)
            units += int(hit.size)
    return Selection(neurons, criterion, granularity, units=units)


__all__ = ["Budget", "Criterion", "GainBudget", "Granularity", "Selection", "Threshold", "TopK", "channel_scores",
           "neurons_per_channel", "resolve_layers", "select"]
