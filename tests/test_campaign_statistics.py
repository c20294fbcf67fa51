"""Campaign statistics: the t-interval with finite-population correction, Wilson, and their coverage."""

import math

import numpy as np
import pytest

from resilq.campaign.statistics import NO_FAULT, GroupRow, Interval, breakdown_rows, mean_interval, wilson


def test_mean_interval_by_hand():
    y = np.array([0.0, 0.1, 0.0, 0.3, 0.2, 0.0, 0.0, 0.4])
    n, N = y.size, 50
    iv = mean_interval(y, N)
    se = y.std(ddof=1) / math.sqrt(n) * math.sqrt(1 - n / N)
    t = 2.364624251592785  # t(0.975, 7)
    assert iv.value == pytest.approx(y.mean())
    assert iv.high - iv.value == pytest.approx(t * se, rel=1e-9)
    assert iv.value - iv.low == pytest.approx(t * se, rel=1e-9)


def test_census_has_no_sampling_error():
    y = np.arange(10) / 10
    iv = mean_interval(y, population=10)
    assert iv.low == iv.value == iv.high


def test_interval_is_clipped_to_bounds():
    y = np.array([0.0] * 30 + [0.9])
    iv = mean_interval(y, 10_000, bounds=(0.0, 1.0))
    assert iv.low == 0.0 < iv.value < iv.high


def test_wilson_known_values():
    iv = wilson(0, 100)
    assert iv.low == 0.0 and iv.high == pytest.approx(0.0370, abs=1e-4)
    iv = wilson(50, 100)
    assert (iv.low, iv.high) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))


def test_t_interval_with_fpc_covers_95_percent():
    """Sample a skewed finite population (like per-fault critical rates) repeatedly: ~95 % coverage."""
    rng = np.random.default_rng(7)
    N = 4000
    population = np.where(rng.random(N) < 0.3, rng.beta(0.5, 3.0, N), 0.0)  # most faults do nothing
    truth = population.mean()
    hits, reps = 0, 400
    for _ in range(reps):
        y = population[rng.choice(N, 1500, replace=False)]
        iv = mean_interval(y, N)
        hits += iv.low <= truth <= iv.high
    assert 0.92 <= hits / reps <= 0.98


def test_a_group_without_sampled_faults_says_so_instead_of_nan():
    nothing = Interval(float("nan"), float("nan"), float("nan"))
    rows = breakdown_rows([GroupRow("fc1", 1680, 0, nothing, nothing, 0, 0.0),
                           GroupRow("conv1", 27760, 18, Interval(0.01, 0.0, 0.02), Interval(0.0, -0.1, 0.1), 2, 1.0)])
    assert rows[0][4:6] == [NO_FAULT, NO_FAULT] and "nan" not in " ".join(map(str, rows[0]))
    assert rows[1][4] == "1.00 % [0.00, 2.00]"
