"""Hardening by exact gain under a slot budget: the budget holds exactly, auto picks a scheme per layer."""

from __future__ import annotations

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.cli import main
from resilq.errors import MismatchError
from resilq.gain import exact_gain, save_gain
from resilq.harden import harden_by_gain
from resilq.harden.knapsack import solve
from resilq.ir import load_model, save_model

from factories import random_model


@pytest.fixture(scope="module")
def analysed():
    rng = np.random.default_rng(11)
    images = rng.random((20, 1, 12, 12), dtype=np.float32)
    model = random_model(rng, images[:16], relu_last_hidden=False)
    return model, exact_gain(model, model.quantize_input(images))


@pytest.mark.parametrize("scheme", [None, Scheme.SPLIT, Scheme.TMR, Scheme.DUP_AND])
@pytest.mark.parametrize("budget", [1, 5, 17])
def test_budget_is_respected_and_optimal(analysed, scheme, budget):
    model, gain = analysed
    result = harden_by_gain(model, gain, scheme, budget, fallback=None)
    hard = result.model
    used = hard.n_shadows
    assert used <= budget
    assert used == hard.metadata["hardening"]["extra_slots"]
    assert hard.n_slots == model.n_neurons + used
    # every chosen neuron pays, and no other choice of the same kind buys more
    value = 0
    for i, s in result.schemes.items():
        picked = hard.protection(i).neurons
        assert np.all(gain.net(s, i)[picked] > 0)
        value += int(gain.net(s, i)[picked].sum())
        if scheme is not None:
            assert s is scheme
        assert gain.sound(s, i)
    assert value == hard.metadata["hardening"]["expected_net_gain"]
    fc1 = [i for i in model.neuron_layers if model.layers[i].name == "fc1"][0]
    if scheme is Scheme.SPLIT:
        assert fc1 not in result.schemes and "fc1" in result.selection.note  # no ReLU: split unsound


def test_auto_is_at_least_as_good_as_any_single_scheme(analysed):
    model, gain = analysed
    auto = harden_by_gain(model, gain, None, 12).model.metadata["hardening"]["expected_net_gain"]
    for s in (Scheme.TMR, Scheme.DUP_AND, Scheme.DUP_MIN):
        fixed = harden_by_gain(model, gain, s, 12).model.metadata["hardening"]["expected_net_gain"]
        assert auto >= fixed


def test_full_budget_when_every_unit_pays():
    # 4 + 3 neurons of positive gain; TMR costs 2 slots: a budget of 7 buys 3 TMR + 1 dup, all 7 slots
    chosen = solve({0: {Scheme.TMR: np.array([50, 40, 30, 1])}, 1: {Scheme.DUP_AND: np.array([5, 4, 3])}}, 7)
    assert sum(c.slots for c in chosen.values()) == 7


def test_cli_harden_by_gain(analysed, tmp_path, capsys):
    model, gain = analysed
    rq = save_model(model, tmp_path / "m.rq")
    g = save_gain(gain, tmp_path / "m.gain")
    out = tmp_path / "h.rq"
    assert main(["harden", str(rq), "--by", "gain", "--gain", str(g), "--scheme", "auto", "--budget", "9",
                 "--no-agreement", "--out", str(out)]) == 0
    hard = load_model(out)
    assert hard.n_shadows <= 9 and hard.metadata["hardening"]["selected_by"] == "gain"
    assert "by exact gain within 9 extra slots" in capsys.readouterr().out
    assert main(["harden", str(rq), "--by", "gain", "--scheme", "auto", "--budget", "9", "--out", str(out)]) == 2
    assert "--by gain needs --gain" in capsys.readouterr().err
    assert main(["harden", str(rq), "--scheme", "auto", "--nvf", str(g), "--top-k", "3", "--out", str(out)]) == 2
    other = random_model(np.random.default_rng(5))
    with pytest.raises(MismatchError):
        harden_by_gain(other, gain, None, 3)
