"""The .nvf container: thresholds, Table I counts, and refusal to mix models."""

import numpy as np
import pytest

from resilq.errors import FormatError, MismatchError, ParameterError
from resilq.nvf import NVFResult, load_nvf, save_nvf

from factories import random_model


@pytest.fixture
def model(rng):
    return random_model(rng)


def _result(model, rng):
    values = {i: rng.random(model.out_size(i)) * 0.5 for i in model.neuron_layers}
    values[model.neuron_layers[0]][:3] = [0.2, 0.19999999999, 0.0]
    return NVFResult(model.network_hash, values, "exact", 10)


def test_round_trip_and_table(model, rng, tmp_path):
    res = _result(model, rng)
    back = load_nvf(save_nvf(res, tmp_path / "m.nvf"), model)
    assert back.layers == list(model.neuron_layers) and back.method == "exact"
    for i in back.layers:
        assert np.array_equal(back.values[i], res.values[i])
    table = back.table()
    assert table[0] == (0.0, model.n_neurons, 1.0)
    assert [row[1] for row in table] == sorted([row[1] for row in table], reverse=True)
    crit = back.critical(0.2)
    first = model.neuron_layers[0]
    assert 0 in crit[first] and 1 not in crit[first]  # exactly 0.2 counts, just below does not


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.2"])
def test_threshold_out_of_range(model, rng, bad):
    with pytest.raises(ParameterError, match="threshold must lie in"):
        _result(model, rng).critical(bad)


def test_nvf_of_another_model_is_refused(model, rng, tmp_path):
    other = random_model(np.random.default_rng(99))
    path = save_nvf(_result(model, rng), tmp_path / "m.nvf")
    with pytest.raises(MismatchError, match="belongs to another network"):
        load_nvf(path, other)


def test_values_out_of_range_are_refused(model, rng, tmp_path):
    res = _result(model, rng)
    res.values[model.neuron_layers[0]][0] = 3.0
    with pytest.raises(FormatError, match="outside"):
        load_nvf(save_nvf(res, tmp_path / "m.nvf"))
