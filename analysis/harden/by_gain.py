"""Hardening by protection gain under a slot budget (SPEC §8): the scheme that pays, on the neurons that pay.

``harden_by_gain(model, gain, scheme, slots)`` protects, within ``slots`` extra slots, the neurons whose
summed net gain (:meth:`resilq.gain.GainResult.net`: misclassifying single-bit-flip events removed, the
protection's own fault-free changes charged) is largest, exactly (:mod:`.knapsack`). ``scheme`` is one
scheme for every layer (``split`` only where it is sound, i.e. in ReLU layers; the other layers get
``fallback`` or are left out) or ``None`` for *auto*: each layer gets the scheme that buys the most there
(split where it pays, TMR or duplication where split cannot help), its overhead (``copies - 1`` slots per
neuron) counted per neuron. Gains are scored for one neuron at a time; interactions between protected
neurons are what the campaign measures.
"""

from __future__ import annotations

from ..arith import Scheme
from ..errors import ParameterError, UnsupportedModelError
from ..gain import GainResult
from ..ir.layers import Protection
from ..ir.model import Model
from .knapsack import solve
from .selection import GainBudget, Granularity, Selection, resolve_layers
from .transform import Hardened

AUTO = "auto"


def layer_options(model: Model, gain: GainResult, scheme: Scheme | None, fallback: Scheme | None,
                  layers: tuple[int, ...]) -> tuple[dict, list[int], list[int]]:
    """``{layer: {scheme: net gains}}``, the layers given the fallback, and the layers left out."""
    options, fallbacks, left_out = {}, [], []
    for i in layers:
        if scheme is None:
            options[i] = {s: gain.net(s, i) for s in Scheme if gain.sound(s, i)}
        elif gain.sound(scheme, i):
            options[i] = {scheme: gain.net(scheme, i)}
        elif fallback is not None:
            options[i] = {fallback: gain.net(fallback, i)}
            fallbacks.append(i)
        else:
            left_out.append(i)
    return options, fallbacks, left_out


def harden_by_gain(model: Model, gain: GainResult, scheme: Scheme | None, slots: int,
                   layers: tuple[str, ...] | None = None, fallback: Scheme | None = None) -> Hardened:
    """Protect the best neurons within ``slots`` extra slots by ``scheme`` (None: auto, per layer)."""
    if model.is_protected:
        raise UnsupportedModelError(f"model {model.name} is already protected ({model.n_protected} neurons); "
                                    "harden the unprotected network (its gain file is the same)")
    if fallback is Scheme.SPLIT:
        raise ParameterError("the fallback for layers 'split' cannot protect cannot itself be 'split'")
    gain.check_model(model)
    criterion = GainBudget(slots, AUTO if scheme is None else scheme.label)
    allowed = resolve_layers(model, layers)
    options, fallbacks, left_out = layer_options(model, gain, scheme, fallback, allowed)
    chosen = solve(options, slots)
    used = sum(c.slots for c in chosen.values())
    value = sum(c.value for c in chosen.values())
    note = f"{used} of {slots} extra slots used; summed net gain {value:,} events over {gain.inputs:,} inputs"
    if left_out:
        note += ("; left out (split is unsound without ReLU, no fallback): "
                 + ", ".join(model.layers[i].name for i in left_out))
    neurons = {i: c.neurons for i, c in chosen.items()}
    selection = Selection(neurons, criterion, Granularity.NEURON, units=sum(c.neurons.size for c in chosen.values()),
                          note=note)
    schemes = {i: c.scheme for i, c in chosen.items()}
    record = {
        "scheme": criterion.scheme,
        "selected_by": "gain",
        "fallback": fallback.label if fallback is not None else None,
        "fallback_layers": [model.layers[i].name for i in fallbacks if i in chosen],
        "granularity": Granularity.NEURON.value,
        "criterion": criterion.describe(),
        "restricted_to_layers": list(layers) if layers is not None else None,
        "source_model_hash": model.hash,
        "source_network_hash": model.network_hash,
        "gain_hash": gain.digest,
        "gain_inputs": int(gain.inputs),
        "expected_net_gain": int(value),
        "extra_slots": int(used),
        "protected_neurons": selection.n_neurons,
        "layers": {model.layers[i].name: {"scheme": c.scheme.label, "neurons": int(c.neurons.size),
                                          "net_gain": int(c.value)} for i, c in chosen.items()},
        "note": note,
    }
    hardened = model.with_protection({i: Protection(c.scheme, c.neurons) for i, c in chosen.items()},
                                     hardening=record)
    if Scheme.SPLIT in schemes.values() and "test_accuracy" in hardened.metadata:
        meta = dict(hardened.metadata)
        record["source_test_accuracy"] = meta.pop("test_accuracy")
        hardened = hardened.replace(metadata=meta)
    return Hardened(hardened, model, selection, schemes, tuple(i for i in fallbacks if i in chosen))


__all__ = ["AUTO", "harden_by_gain", "layer_options"]
