"""Campaign sampling: Leveugle's sample size, fault models, the population (shadows included), and a
coordinated, reproducible simple random sample."""

import numpy as np
import pytest

from resilq.arith import FaultMode, Scheme
from resilq.campaign.sampling import (
    FaultKind,
    FaultModel,
    SlotKind,
    leveugle_sample_size,
    population,
    population_size,
    sample_faults,
)
from resilq.errors import ParameterError
from resilq.faults import Fault, slot_owner

from factories import protect, random_model


@pytest.mark.parametrize("neurons, expected", [(2816, 6734), (4684, 7645), (103168, 9494)])
def test_leveugle_sample_size_matches_spec(neurons, expected):
    """SPEC §5: the paper's 6,750 / 7,650 / 9,500 faults for MLP-7, LeNet-5 and AlexNet."""
    assert leveugle_sample_size(neurons * 8) == expected


def test_leveugle_small_population_is_a_census():
    assert leveugle_sample_size(1) == 1
    assert leveugle_sample_size(100) == 99  # n < N but close: e = 1 % needs almost everything
    with pytest.raises(ParameterError):
        leveugle_sample_size(0)


def test_fault_model_parsing_and_masks():
    assert FaultModel.parse("single-bit").masks == tuple(1 << b for b in range(8))
    two = FaultModel.parse("multi-bit:2")
    assert two.kind is FaultKind.MULTI_BIT and len(two.masks) == 28 and all(bin(m).count("1") == 2 for m in two.masks)
    assert two.mode is FaultMode.FLIP and two.label == "multi-bit:2"
    assert FaultModel.parse("stuck-at-0").mode is FaultMode.STUCK_AT_0
    assert FaultModel.parse("Stuck-At-1").mode is FaultMode.STUCK_AT_1
    for bad in ("multi-bit", "multi-bit:1", "multi-bit:9", "double", ""):
        with pytest.raises(ParameterError):
            FaultModel.parse(bad)


def test_population_includes_every_shadow_slot(rng):
    model = protect(random_model(rng), rng, Scheme.TMR, 0.3)
    pop = population(model)
    assert pop.size == population_size(model) == model.n_slots * 8
    # every (layer, slot) appears once per mask, and the owner/copy columns agree with resilq.faults
    pairs = set(zip(pop.layer.tolist(), pop.slot.tolist()))
    assert len(pairs) == model.n_slots
    for row in rng.choice(pop.size, 200, replace=False):
        assert (int(pop.neuron[row]), int(pop.copy[row])) == slot_owner(model, int(pop.layer[row]), int(pop.slot[row]))


def test_sample_is_reproducible_distinct_and_valid(rng):
    model = protect(random_model(rng), rng, Scheme.SPLIT, 0.4)
    a = sample_faults(model, n=500, seed=3)
    b = sample_faults(model, n=500, seed=3)
    c = sample_faults(model, n=500, seed=4)
    assert a.digest() == b.digest() != c.digest()
    keys = set(zip(a.layer.tolist(), a.slot.tolist(), a.mask.tolist()))
    assert len(keys) == 500  # without replacement
    for f in a.faults():
        f.check(model)
    assert len(a) == 500 and a.population == model.n_slots * 8
    assert set(a.kind.tolist()) == {SlotKind.NEURON, SlotKind.PROTECTED, SlotKind.SHADOW}
    shadows = a.copy > 0
    assert np.all(a.kind[shadows] == SlotKind.SHADOW) and np.all(a.slot[shadows] >= 0)


def test_default_size_is_leveugle(rng):
    model = random_model(rng)
    assert len(sample_faults(model, seed=0)) == leveugle_sample_size(model.n_slots * 8)
    with pytest.raises(ParameterError):
        sample_faults(model, n=model.n_slots * 8 + 1)
    census = sample_faults(model, n=model.n_slots * 8)
    assert len(set(zip(census.layer.tolist(), census.slot.tolist(), census.mask.tolist()))) == model.n_slots * 8


def test_prefix_of_a_sample_is_the_smaller_sample(rng):
    model = random_model(rng)
    big, small = sample_faults(model, n=900, seed=1), sample_faults(model, n=300, seed=1)
    for name in ("layer", "slot", "mask"):
        assert np.array_equal(getattr(big, name)[:300], getattr(small, name))


def test_sample_is_uniform_over_the_population(rng):
    """Each layer's share of a large sample matches its share of the population (chi-square, p > 1e-4)."""
    from scipy.stats import chisquare

    model = protect(random_model(rng), rng, Scheme.TMR, 0.5)
    n = 3000
    s = sample_faults(model, n=n, seed=11)
    layers = list(model.neuron_layers)
    observed = [int((s.layer == i).sum()) for i in layers]
    expected = [n * model.slots_in(i) / model.n_slots for i in layers]
    assert chisquare(observed, expected).pvalue > 1e-4
    bits = [int((s.mask == 1 << b).sum()) for b in range(8)]
    assert chisquare(bits).pvalue > 1e-4


def test_samples_of_hardened_variants_are_coordinated(rng):
    """Faults on neurons mostly coincide between a network and its hardened variant (what sweeps share)."""
    model = random_model(rng)
    hardened = protect(model, rng, Scheme.TMR, 0.1)
    a = sample_faults(model, n=1000, seed=5)
    b = sample_faults(hardened, n=1000, seed=5)
    fa = {Fault(int(i), int(s), int(m)) for i, s, m in zip(a.layer, a.slot, a.mask)}
    fb = {Fault(int(i), int(s), int(m)) for i, s, m, c in zip(b.layer, b.slot, b.mask, b.copy) if c == 0}
    # b's original-slot faults are a subset of the lowest-priority faults, almost all also in a
    assert len(fb & fa) >= 0.9 * len(fb)
    independent = sample_faults(model, n=1000, seed=6)
    fi = {Fault(int(i), int(s), int(m)) for i, s, m in zip(independent.layer, independent.slot, independent.mask)}
    assert len(fb & fa) > 2 * len(fb & fi)
