"""Shared fixtures: a LeNet-5 trained on the bundled digits (once per session), data locations, the deep NVF network."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("RESILQ_QUIET", "1")

REPO = Path(__file__).resolve().parents[1]
#: The real MNIST test set: $RESILQ_DATA_DIR/mnist when the variable is set, else ../shared/data/mnist.
SHARED_MNIST = (Path(os.environ["RESILQ_DATA_DIR"]).expanduser() if os.environ.get("RESILQ_DATA_DIR")
                else REPO.parent / "shared" / "data") / "mnist"


@pytest.fixture(scope="session")
def digits_lenet():
    """LeNet-5 trained 3 epochs on digits: a real trained network for the chain-of-trust tests."""
    from resilq.train.qat import TrainConfig
    from resilq.train.workflow import train_and_export

    return train_and_export("lenet5", "digits", config=TrainConfig(epochs=3, seed=0), verify_inputs=0)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"the real MNIST test set is not in {SHARED_MNIST} (set RESILQ_DATA_DIR to a folder holding "
                    "mnist/t10k-images-idx3-ubyte.gz ...)")
    return SHARED_MNIST


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def deep():
    """The deep test network of :func:`faultsim_models.deep_model` (conv-pool-conv-pool-fc-fc-fc) and 12 int8
    inputs, for the NVF tests (in-process, distributed, resumed)."""
    from faultsim_models import deep_model

    rng = np.random.default_rng(5)
    images = rng.random((12, 1, 10, 10), dtype=np.float32)
    model = deep_model(rng, images)
    return model, model.quantize_input(images)
