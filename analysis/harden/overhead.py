"""What protection costs, in the paper's arithmetic (SPEC §4): network size = neurons + shadow slots, MACs
(a shadow slot repeats its neuron's MACs), and accelerator cycles through a pluggable cycle model.

The cycle model belongs to the accelerator (issue #6): any callable ``cycles(model) -> int`` giving the
cycles of one inference of a (protected) model. Without one, cycle columns stay empty; no cycle number is
ever guessed here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..arith import Scheme
from ..ir.layers import Protection
from ..ir.model import Model
from .selection import Selection

#: Cycles of one inference of a model on the accelerator (provided by the accelerator's cycle model).
CycleModel = Callable[[Model], "int | None"]


@dataclass(frozen=True)
class Cost:
    """The size of one model variant."""

    label: str
    neurons: int
    protected: int
    shadows: int
    slots: int  # network size in the paper's sense: neurons + shadow slots
    macs: int  # including the shadows' MACs
    params: int
    cycles: int | None = None


def cost_of(model: Model, label: str, cycles: CycleModel | None = None) -> Cost:
    return Cost(label, model.n_neurons, model.n_protected, model.n_shadows, model.n_slots, model.macs(),
                model.params(), cycles(model) if cycles is not None else None)


def _pct(new: float, old: float) -> str:
    return f"{(new - old) / old:+.2%}" if old else ""


def cost_rows(costs: Sequence[Cost], base: Cost | None = None) -> tuple[list[str], list[list]]:
    """Table columns and rows for ``costs``, each compared with ``base`` (default: the first)."""
    base = base or costs[0]
    cols = ["variant", "neurons", "protected", "shadow slots", "network size", "Δ size", "MACs", "Δ MACs",
            "stored words", "Δ words", "cycles", "Δ cycles"]
    rows = []
    for c in costs:
        has_cycles = c.cycles is not None and base.cycles is not None
        rows.append([c.label, c.neurons, c.protected, c.shadows, c.slots, _pct(c.slots, base.slots), c.macs,
                     _pct(c.macs, base.macs), c.params, _pct(c.params, base.params),
                     c.cycles if c.cycles is not None else "—", _pct(c.cycles, base.cycles) if has_cycles else ""])
    return cols, rows


def with_scheme(model: Model, selection: Selection, scheme: Scheme, fallback: Scheme | None = None,
                own_weights: bool = False) -> Model | None:
    """``model`` with ``selection`` protected by ``scheme`` (``fallback`` on non-ReLU layers for split; each copy
    with its own stored words when ``own_weights``); None when split would need a fallback that is not given."""
    prots = {}
    for i, neurons in selection.neurons.items():
        s = scheme
        if scheme is Scheme.SPLIT and not model.layers[i].requant.relu:
            if fallback is None:
                return None
            s = fallback
        prots[i] = Protection(s, neurons, own_weights)
    return model.unprotected().with_protection(prots)


def scheme_comparison(model: Model, selection: Selection, fallback: Scheme | None = Scheme.TMR,
                      cycles: CycleModel | None = None, own_weights: bool = False) -> list[Cost]:
    """The unprotected model and the same selection under every scheme: the paper's split-vs-TMR arithmetic
    (``own_weights``: every copy with its own stored words, whose extra words the cost counts)."""
    base = model.unprotected()
    out = [cost_of(base, "unprotected", cycles)]
    for scheme in Scheme:
        variant = with_scheme(base, selection, scheme, fallback, own_weights)
        if variant is not None:
            out.append(cost_of(variant, scheme.label, cycles))
    return out


def layer_rows(model: Model) -> tuple[list[str], list[list]]:
    """Per-layer protection and cost of a (protected) model."""
    cols = ["layer", "neurons", "scheme", "protected", "shadow slots", "MACs", "extra MACs"]
    rows = []
    for i in model.neuron_layers:
        prot = model.protection(i)
        base = model.macs_of(i, include_shadows=False)
        rows.append([model.layers[i].name, model.neurons_in(i), prot.scheme.label if prot else "",
                     prot.n_protected if prot else 0, model.shadows_in(i), model.macs_of(i),
                     model.macs_of(i) - base])
    return cols, rows


__all__ = ["Cost", "CycleModel", "cost_of", "cost_rows", "layer_rows", "scheme_comparison", "with_scheme"]
