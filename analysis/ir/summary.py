"""A per-layer summary of an integer model (what ``resilq info`` prints)."""

from __future__ import annotations

from dataclasses import dataclass

from .layers import is_compute
from .model import Model


@dataclass
class LayerRow:
    index: int
    name: str
    kind: str
    in_shape: tuple
    out_shape: tuple
    neurons: int
    shadows: int
    params: int
    macs: int
    requant: str
    protection: str


def _fmt_shape(shape: tuple) -> str:
    return "x".join(str(d) for d in shape)


def layer_rows(model: Model) -> list[LayerRow]:
    rows = []
    for i, layer in enumerate(model.layers):
        requant, prot_text, params = "", "", 0
        if is_compute(layer):
            params = int(layer.weight.size + layer.bias.size)
            if layer.requant is None:
                requant = "int32 logits"
            else:
                lo, hi = int(layer.requant.shift.min()), int(layer.requant.shift.max())
                requant = f">>{lo}" if lo == hi else f">>{lo}..{hi}"
                requant += " relu" if layer.requant.relu else ""
            prot = model.protection(i)
            if prot is not None and prot.n_protected:
                prot_text = f"{prot.scheme.label} x{prot.n_protected}"
        rows.append(LayerRow(i, layer.name, layer.kind, model.in_shape(i), model.out_shape(i), model.neurons_in(i),
                             model.shadows_in(i), params, model.macs_of(i), requant, prot_text))
    return rows


def summary_table(model: Model) -> tuple[list[str], list[list]]:
    """Column names and rows (strings and ints) of the per-layer summary, with a total row."""
    cols = ["#", "layer", "kind", "input", "output", "neurons", "shadows", "params", "MACs", "requant", "protection"]
    rows = [[r.index, r.name, r.kind, _fmt_shape(r.in_shape), _fmt_shape(r.out_shape), r.neurons, r.shadows,
             r.params, r.macs, r.requant, r.protection] for r in layer_rows(model)]
    rows.append(["", "total", "", _fmt_shape(model.input.shape), f"{model.n_classes} classes", model.n_neurons,
                 model.n_shadows, model.params(), model.macs(), "", f"{model.n_protected} neurons" if model.is_protected else ""])
    return cols, rows
