"""Tables of a gain result: per layer and scheme, per bit and direction, and the best neurons."""

from __future__ import annotations

import numpy as np

from ..arith import Scheme
from .layout import BITS, DIRECTIONS
from .result import GainResult


def layer_rows(result: GainResult, names: dict[int, str]) -> tuple[list[str], list[list]]:
    """Per layer: events, then per scheme the summed net gain, its cost and the neurons whose net gain > 0."""
    cols = ["layer", "neurons", "critical events"]
    for s in Scheme:
        cols += [f"{s.label} net gain", f"{s.label} cost", f"{s.label} >0"]
    rows = []
    for i in result.layers:
        row = [names.get(i, str(i)), int(result.counts[i].shape[1]), int(result.unprotected(i).sum())]
        for s in Scheme:
            if not result.sound(s, i):
                row += ["—", "—", "—"]
                continue
            net = result.net(s, i)
            row += [int(net.sum()), int(result.cost(s, i).sum()), int((net > 0).sum())]
        rows.append(row)
    return cols, rows


def bit_rows(result: GainResult, scheme: Scheme) -> tuple[list[str], list[list]]:
    """Per bit and direction, over every neuron: unprotected critical events and the protected ones
    (all copies, against the protected network's fault-free top-1)."""
    cols = ["bit", "direction", "events", "unprotected critical", f"{scheme.label} critical (all slots)"]
    unprot = sum(result.block(i, "unprotected").sum(axis=0) for i in result.layers if result.sound(scheme, i))
    pop = sum(result.block(i, "population").sum(axis=0) for i in result.layers if result.sound(scheme, i))
    own = sum(result.block(i, f"{scheme.label}.own").sum(axis=(0, 1)) for i in result.layers
              if result.sound(scheme, i))
    rows = [[k, DIRECTIONS[d], int(pop[k, d]), int(unprot[k, d]), int(own[k, d])]
            for k in range(BITS) for d in range(2)]
    return cols, rows


def top_rows(result: GainResult, names: dict[int, str], k: int = 10) -> tuple[list[str], list[list]]:
    """The ``k`` neurons with the highest net gain per extra slot under any scheme."""
    cands = []
    for i in result.layers:
        for s in Scheme:
            if result.sound(s, i):
                per_slot = result.net(s, i) / (s.copies - 1)
                best = np.argsort(-per_slot, kind="stable")[:k]
                cands += [(float(per_slot[n]), i, int(n), s) for n in best]
    cands.sort(key=lambda c: (-c[0], c[1], c[2], c[3]))
    cols = ["layer", "neuron", "scheme", "net gain / slot", "critical events", "changed inputs"]
    rows = [[names.get(i, str(i)), n, s.label, round(v, 2), int(result.unprotected(i)[n]),
             int(result.changed(s, i)[n])] for v, i, n, s in cands[:k]]
    return cols, rows


__all__ = ["bit_rows", "layer_rows", "top_rows"]
