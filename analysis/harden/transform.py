"""Turn an analysed network into a protected one (SPEC §4): selection -> per-layer scheme -> protected IR.

The IR already states protection per layer (:class:`resilq.ir.Protection`); this module decides it.
``split`` is sound only where the fault-free output is non-negative (a ReLU layer): in two's complement a
negative half-value has bit 6 set and the LCU would reset it. Selected neurons of a non-ReLU layer are
therefore refused with an error naming the layer, unless a ``fallback`` scheme is given, in which case the
layer gets the fallback and :attr:`Hardened.fallback_layers` (and the model metadata) say so.

What was done is recorded in ``metadata["hardening"]``: scheme, fallback, criterion, granularity, the
source model's hashes, the NVF digest, and the scheme and neuron count of every protected layer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..arith import Scheme
from ..errors import ParameterError, UnsupportedModelError
from ..ir.layers import Protection
from ..ir.model import Model
from ..nvf import NVFResult
from .selection import Criterion, Granularity, Selection, select


@dataclass(frozen=True)
class HardeningPlan:
    """Everything ``resilq harden`` decides, as one typed object."""

    scheme: Scheme
    criterion: Criterion
    granularity: Granularity = Granularity.NEURON
    #: Scheme for the layers ``split`` cannot protect (no ReLU); None = refuse them.
    fallback: Scheme | None = None
    #: Restrict the selection to these layer names (None = every neuron layer).
    layers: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.scheme, Scheme):
            raise ParameterError(f"scheme must be a resilq.arith.Scheme, got {self.scheme!r}")
        if self.fallback is Scheme.SPLIT:
            raise ParameterError("the fallback for layers 'split' cannot protect cannot itself be 'split'; "
                                 "use tmr, dup-and or dup-min")
        if self.fallback is not None and not isinstance(self.fallback, Scheme):
            raise ParameterError(f"fallback must be a resilq.arith.Scheme or None, got {self.fallback!r}")

    def scheme_for(self, model: Model, index: int) -> Scheme:
        """The scheme layer ``index`` gets (the fallback where ``split`` is unsound), or a clear refusal."""
        layer = model.layers[index]
        if self.scheme is not Scheme.SPLIT or layer.requant.relu:
            return self.scheme
        if self.fallback is None:
            raise UnsupportedModelError(
                f"'split' cannot protect layer {layer.name!r}: it has no ReLU, so its fault-free output can be "
                "negative, and a negative half-value has bit 6 set, which the LCU resets. Protect it with another "
                "scheme (--fallback tmr|dup-and|dup-min) or leave it out (--layers)")
        return self.fallback


@dataclass(frozen=True, eq=False)
class Hardened:
    """A protected model and how it came about."""

    model: Model
    source: Model
    selection: Selection
    schemes: dict[int, Scheme]  # layer index -> scheme used, for every protected layer
    fallback_layers: tuple[int, ...] = field(default=())

    def describe_fallbacks(self) -> str:
        if not self.fallback_layers:
            return ""
        names = ", ".join(f"{self.model.layers[i].name} ({self.schemes[i].label})" for i in self.fallback_layers)
        return f"'split' is unsound without ReLU; these layers got the fallback scheme instead: {names}"


def with_own_weights(model: Model) -> Model:
    """``model`` with every protection storing a weight row and bias per copy (``Protection.own_weights``): a
    flipped stored word then reaches one copy, which the corrector can outvote or mask; the cost is
    ``copies - 1`` extra rows per channel holding a protected neuron (``Model.copied_params``). The accelerator
    builds shared rows only, so such a model analyses and campaigns in Python but does not deploy."""
    prots = {i: dataclasses.replace(p, own_weights=True) for i in model.neuron_layers
             if (p := model.protection(i)) is not None}
    meta = {}
    if "hardening" in model.metadata:
        meta["hardening"] = {**model.metadata["hardening"], "own_weights": True,
                             "copied_words": sum(model.with_protection(prots).copied_params(i) for i in prots)}
    return model.with_protection(prots, **meta)


def harden(model: Model, nvf: NVFResult, plan: HardeningPlan) -> Hardened:
    """Select the neurons ``plan`` asks for from ``nvf`` and protect them.

    ``model`` must be unprotected, and ``nvf`` must belong to its network.
    """
    if model.is_protected:
        raise UnsupportedModelError(f"model {model.name} is already protected ({model.n_protected} neurons); "
                                    "harden the unprotected network (its NVF is the same)")
    nvf.check_model(model)

    def cost(index: int) -> int:
        try:
            return plan.scheme_for(model, index).copies - 1
        except UnsupportedModelError:
            return plan.scheme.copies - 1  # refused below if anything in that layer is selected

    selection = select(model, nvf, plan.criterion, plan.granularity, plan.layers, cost)
    schemes, fallbacks, protections = {}, [], {}
    for index, neurons in selection.neurons.items():
        if not neurons.size:
            continue
        try:
            scheme = plan.scheme_for(model, index)
        except UnsupportedModelError as exc:
            raise UnsupportedModelError(f"{exc} ({neurons.size} of its neurons were selected)") from None
        schemes[index] = scheme
        if scheme is not plan.scheme:
            fallbacks.append(index)
        protections[index] = Protection(scheme, neurons)
    record = {
        "scheme": plan.scheme.label,
        "fallback": plan.fallback.label if plan.fallback is not None else None,
        "fallback_layers": [model.layers[i].name for i in fallbacks],
        "granularity": plan.granularity.value,
        "criterion": plan.criterion.describe(),
        "restricted_to_layers": list(plan.layers) if plan.layers is not None else None,
        "source_model_hash": model.hash,
        "source_network_hash": model.network_hash,
        "nvf_hash": nvf.digest,
        "nvf_method": nvf.method,
        "nvf_inputs": int(nvf.inputs),
        "protected_neurons": selection.n_neurons,
        "layers": {model.layers[i].name: {"scheme": s.label, "neurons": int(protections[i].n_protected)}
                   for i, s in schemes.items()},
    }
    if selection.note:
        record["note"] = selection.note
    hardened = model.with_protection(protections, hardening=record)
    if Scheme.SPLIT in schemes.values() and "test_accuracy" in hardened.metadata:
        # split changes fault-free outputs (odd values lose their LSB): the source's accuracy is not this model's.
        meta = dict(hardened.metadata)
        record["source_test_accuracy"] = meta.pop("test_accuracy")
        hardened = hardened.replace(metadata=meta)
    return Hardened(hardened, model, selection, schemes, tuple(fallbacks))


__all__ = ["Hardened", "HardeningPlan", "harden"]
