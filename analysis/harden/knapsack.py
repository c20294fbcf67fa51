"""Exact selection under a slot budget: maximise the summed gain of the protected neurons.

The problem is a 0/1 knapsack over neurons (a neuron's weight is the extra slots its scheme adds,
``copies - 1``: 1 for split and duplication, 2 for TMR; its value is its gain) with one scheme per layer,
since the IR states one protection scheme per layer. Weights are small integers, so it is solved exactly
by dynamic programming over the budget, in two levels:

1. within one layer and one scheme every neuron has the same weight ``c``, so the best value for ``b``
   slots is the sum of the ``b // c`` largest positive gains (an exchange argument: any other choice of
   that many neurons can swap a smaller gain for a larger one); the layer's best for ``b`` slots is the
   maximum over its allowed schemes;
2. across layers, ``F_l(b) = max_{j <= b} F_{l-1}(b - j) + f_l(j)`` (a (max, +) convolution), then the
   choice is read back from the recorded arg-maxima.

Cost: O(layers x budget^2) additions plus a sort per (layer, scheme); for LeNet-5 at 20 % (937 slots)
about 5 million, well under a second. Neurons with a gain <= 0 are never chosen (protecting them cannot
help), so the budget may be left partly unused. Ties go to fewer slots in later layers, then to the
scheme listed first and to network order (layer, then index), so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..arith import Scheme
from ..errors import ParameterError

#: Rows of the (max, +) convolution computed at once (bounds its memory to ~8 B x rows x budget).
ROWS_PER_BLOCK = 512


@dataclass(frozen=True)
class Choice:
    """What the budget buys in one layer: ``scheme`` on ``neurons`` (sorted), for ``slots`` extra slots."""

    scheme: Scheme
    neurons: np.ndarray
    slots: int
    value: int


def _layer_curve(values: Mapping[Scheme, np.ndarray], budget: int):
    """``best (budget+1,)``, ``scheme index (budget+1,)`` and per scheme the neurons in decreasing gain."""
    schemes = list(values)
    best = np.zeros(budget + 1, dtype=np.int64)
    which = np.full(budget + 1, -1, dtype=np.int64)
    orders = []
    b = np.arange(budget + 1)
    for k, s in enumerate(schemes):
        v = np.asarray(values[s], dtype=np.int64)
        order = np.lexsort((np.arange(v.size), -v))  # decreasing gain, then network order
        order = order[v[order] > 0]
        orders.append(order)
        prefix = np.concatenate(([0], np.cumsum(v[order])))
        curve = prefix[np.minimum(b // (s.copies - 1), order.size)]
        better = curve > best
        best[better], which[better] = curve[better], k
    return best, which, schemes, orders


def solve(options: Mapping[int, Mapping[Scheme, np.ndarray]], budget: int) -> dict[int, Choice]:
    """Exact best protection of at most ``budget`` extra slots.

    ``options[layer][scheme]`` are the integer gains of the layer's neurons under that scheme (only the
    schemes allowed there). Returns the chosen scheme and neurons per layer (layers with nothing omitted).
    """
    if not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ParameterError(f"a slot budget must be a non-negative integer, got {budget!r}")
    budget = int(budget)
    layers = sorted(options)
    curves, argmax = [], []
    total = np.zeros(budget + 1, dtype=np.int64)
    j = np.arange(budget + 1)
    for layer in layers:
        curve = _layer_curve(options[layer], budget)
        curves.append(curve)
        best = curve[0]
        pick = np.zeros(budget + 1, dtype=np.int64)
        new = np.zeros(budget + 1, dtype=np.int64)
        for a in range(0, budget + 1, ROWS_PER_BLOCK):  # cand[b, j] = total[b - j] + best[j], j <= b
            rows = j[a:a + ROWS_PER_BLOCK]
            cand = np.where(j[None, :] <= rows[:, None], total[np.maximum(rows[:, None] - j[None, :], 0)] + best[None, :],
                            np.iinfo(np.int64).min)
            pick[rows] = np.argmax(cand, axis=1)
            new[rows] = cand[np.arange(rows.size), pick[rows]]
        argmax.append(pick)
        total = new
    chosen: dict[int, Choice] = {}
    left = budget
    for layer, curve, pick in zip(reversed(layers), reversed(curves), reversed(argmax)):
        slots = int(pick[left])
        best, which, schemes, orders = curve
        if slots and which[slots] >= 0:
            k = int(which[slots])
            s = schemes[k]
            count = min(slots // (s.copies - 1), orders[k].size)
            neurons = np.sort(orders[k][:count]).astype(np.int32)
            if count:
                chosen[layer] = Choice(s, neurons, count * (s.copies - 1), int(best[slots]))
        left -= slots
    return dict(sorted(chosen.items()))


def brute_force(options: Mapping[int, Mapping[Scheme, np.ndarray]], budget: int) -> int:
    """Best total value by enumerating every scheme per layer and every subset (tests only: tiny instances)."""
    from itertools import product

    layers = sorted(options)
    best = 0
    per_layer: list[Sequence[tuple[int, int]]] = []
    for layer in layers:
        alts = [(0, 0)]
        for s, v in options[layer].items():
            v = list(np.asarray(v, dtype=np.int64))
            for mask in range(1, 1 << len(v)):
                picked = [v[i] for i in range(len(v)) if mask >> i & 1]
                alts.append((len(picked) * (s.copies - 1), int(sum(picked))))
        per_layer.append(alts)
    for combo in product(*per_layer):
        w = sum(c for c, _ in combo)
        if w <= budget:
            best = max(best, sum(v for _, v in combo))
    return best


__all__ = ["Choice", "brute_force", "solve"]
