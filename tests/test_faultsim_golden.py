"""The golden helpers of the fault simulator against their definitions, computed the slow way."""

import numpy as np
import pytest

from resilq.faultsim import Propagator
from resilq.ir import Conv2d, Flatten, InputQuant, Linear, MaxPool2d, Model, Requant


def _pool_model(rng, size: int, kernel: int) -> Model:
    """conv3x3 (no padding) -> tiling max-pool ``kernel`` (floor mode) -> flatten -> classifier."""
    conv = Conv2d("conv", rng.integers(-40, 41, (3, 1, 3, 3)).astype(np.int8),
                  rng.integers(-100, 101, 3).astype(np.int32), Requant(np.full(3, 4, np.int32), True), 1, 0)
    side = (size - 2) // kernel
    fc = Linear("fc", rng.integers(-40, 41, (4, 3 * side * side)).astype(np.int8), np.zeros(4, np.int32), None)
    return Model(InputQuant((1, size, size), 7), (conv, MaxPool2d("pool", kernel, kernel), Flatten("flat"), fc),
                 {"name": "pool"})


@pytest.mark.parametrize("size,kernel", [(12, 2), (13, 2), (13, 3), (9, 1)])
def test_others_max_is_the_max_of_the_other_window_elements(rng, size, kernel):
    model = _pool_model(rng, size, kernel)
    x = rng.integers(-128, 128, (6, 1, size, size)).astype(np.int8)
    golden = Propagator(model).golden(x)
    got = golden.others_max(1).reshape(6, 3, size - 2, size - 2)
    out = golden.out[0].reshape(6, 3, size - 2, size - 2)
    h = size - 2
    covered = (h // kernel) * kernel
    want = np.full_like(got, np.inf)  # borders no window covers: +inf
    for y in range(covered):
        for x_ in range(covered):
            wy, wx = y - y % kernel, x_ - x_ % kernel
            window = out[:, :, wy:wy + kernel, wx:wx + kernel].reshape(6, 3, -1).copy()
            window[:, :, (y - wy) * kernel + (x_ - wx)] = -np.inf  # the element itself is not an "other"
            want[:, :, y, x_] = window.max(axis=2)
    assert np.array_equal(got, want)
    assert np.isinf(got[:, :, covered:, :]).all() and np.isinf(got[:, :, :, covered:]).all()
