"""The budgeted selection by gain is an exact optimum and never exceeds its budget."""

from __future__ import annotations

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.errors import ParameterError
from resilq.harden.knapsack import brute_force, solve


def _instance(rng, layers=3, neurons=4):
    options = {}
    for layer in range(layers):
        schemes = [Scheme.TMR, Scheme.DUP_AND] + ([Scheme.SPLIT] if layer % 2 == 0 else [])
        options[layer] = {s: rng.integers(-3, 12, size=neurons) for s in schemes}
    return options


@pytest.mark.parametrize("seed", range(12))
def test_knapsack_is_optimal_and_within_budget(seed):
    rng = np.random.default_rng(seed)
    options = _instance(rng, layers=3, neurons=3 + seed % 2)
    for budget in (0, 1, 2, 3, 5, 8):
        chosen = solve(options, budget)
        used = sum(c.slots for c in chosen.values())
        value = sum(int(options[i][c.scheme][c.neurons].sum()) for i, c in chosen.items())
        assert used <= budget
        assert all(c.slots == c.neurons.size * (c.scheme.copies - 1) for c in chosen.values())
        assert all(np.all(options[i][c.scheme][c.neurons] > 0) for i, c in chosen.items())
        assert value == brute_force(options, budget) == sum(c.value for c in chosen.values())


def test_budget_is_used_exactly_when_gains_allow():
    # every neuron pays: a budget of 7 buys exactly 7 dup-and slots
    options = {0: {Scheme.DUP_AND: np.arange(1, 11)}, 1: {Scheme.TMR: np.full(5, 100)}}
    chosen = solve(options, 7)
    assert sum(c.slots for c in chosen.values()) == 7
    assert chosen[1].neurons.size == 3 and chosen[0].neurons.tolist() == [9]  # 3 TMR (6 slots) + best dup


def test_bad_budget():
    with pytest.raises(ParameterError, match="budget"):
        solve({0: {Scheme.TMR: np.ones(3)}}, -1)
