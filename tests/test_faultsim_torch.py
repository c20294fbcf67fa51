"""The torch backend of the fault simulator against the numpy core, value for value (CPU here; CUDA if present)."""

import numpy as np
import pytest
from test_faultsim import _faults

from resilq.errors import MismatchError, ParameterError
from resilq.faultsim import FaultSimulator, steps
from resilq.faultsim.backend import NUMPY, TorchBackend, array_backend
from resilq.ir import Conv2d
from resilq.nvf.deltarange import deltarange_nvf
from resilq.nvf.exact import exact_nvf

from factories import random_model
from faultsim_models import deep_model

torch = pytest.importorskip("torch")

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("conv", ["native", "im2col"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_equal_numpy(rng, device, conv, dtype):
    backend = TorchBackend(device, conv)
    layer = Conv2d(
        "c", rng.integers(-128, 128, (7, 3, 3, 3)).astype(np.int8), np.zeros(7, np.int32), None, stride=2, padding=0
    )
    weights = np.ascontiguousarray(layer.weight.reshape(7, -1).T.astype(dtype))
    grid = rng.integers(-255, 256, (5, 3, 9, 11)).astype(dtype)
    want = NUMPY.conv(grid, layer, weights)
    got = backend.conv(grid, layer, weights)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    a = rng.integers(-255, 256, (6, 27)).astype(dtype)
    assert np.array_equal(backend.matmul(a, weights), a @ weights)


def test_non_integer_results_are_refused():
    """The guard against a non-exact kernel (Winograd, FFT, TF32): a fractional accumulator raises."""
    with pytest.raises(MismatchError, match="non-integer"):
        TorchBackend("cpu").matmul(np.array([[0.5]], np.float32), np.array([[1.0]], np.float32))


def test_bad_devices_are_refused():
    with pytest.raises(ParameterError, match="unknown device"):
        array_backend("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA"):
            array_backend("cuda")
    assert array_backend(None) is NUMPY


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("conv3", [None, "pooled", "strided"])
@pytest.mark.parametrize("unroll", [True, False], ids=["unrolled-small-maps", "patch-conv"])
def test_fault_simulator_equals_numpy(rng, device, conv3, unroll, monkeypatch):
    """Every fault of every slot of deep models (fused pools, the wide patch path): the same predictions."""
    if not unroll:
        monkeypatch.setattr(steps, "UNROLL_BYTES", 0)
    images = rng.random((10, 1, 10, 10), dtype=np.float32)
    model = deep_model(rng, images, conv3=conv3)
    x = model.quantize_input(images)
    faults = _faults(model, rng, per_layer=40)
    want = FaultSimulator(model, x).predictions(faults)
    assert (want != FaultSimulator(model, x).golden[None, :]).any()  # some faults change something
    sim = FaultSimulator(model, x, device=device)
    assert sim.propagator.backend.name == f"torch-{device}"
    assert np.array_equal(sim.predictions(faults), want)


@pytest.mark.parametrize("device", DEVICES)
def test_nvf_equals_numpy(rng, device):
    """Exact NVF and the δ-range search (interval bounds through the backend) give the same values."""
    images = rng.random((8, 1, 10, 10), dtype=np.float32)
    model = deep_model(rng, images, conv3="pooled")
    x = model.quantize_input(images)
    for analysis in (exact_nvf, deltarange_nvf):
        want, got = analysis(model, x), analysis(model, x, device=device)
        assert any(np.nansum(v) > 0 for v in want.values.values())
        for layer in model.neuron_layers:
            assert np.array_equal(got.values[layer], want.values[layer]), (analysis.__name__, layer)


def test_random_model_bounds_path_equals_numpy(rng):
    images = rng.random((12, 1, 12, 12), dtype=np.float32)
    model = random_model(rng, images)
    x = model.quantize_input(images)
    want = exact_nvf(model, x, use_bounds=True)
    got = exact_nvf(model, x, use_bounds=True, device="cpu")
    for layer in model.neuron_layers:
        assert np.array_equal(got.values[layer], want.values[layer])


def test_cli_device_gives_the_same_nvf_and_campaign(rng, tmp_path, capsys):
    from resilq.campaign.store import CampaignStore
    from resilq.cli import main
    from resilq.ir import save_model
    from resilq.nvf import load_nvf

    model = random_model(rng, shape=(1, 28, 28), classes=10, channels=(2, 3))
    rq = save_model(model, tmp_path / "m.rq")
    base = ["analyze", str(rq), "--dataset", "digits", "--inputs", "6"]
    assert main([*base, "--out", str(tmp_path / "a.nvf")]) == 0
    assert main([*base, "--device", "cpu", "--out", str(tmp_path / "b.nvf")]) == 0
    assert "torch on cpu" in capsys.readouterr().out
    a, b = load_nvf(tmp_path / "a.nvf"), load_nvf(tmp_path / "b.nvf")
    for layer in model.neuron_layers:
        assert np.array_equal(a.values[layer], b.values[layer])
    camp = ["campaign", str(rq), "--dataset", "digits", "--images", "12", "--faults", "40", "--seed", "3"]
    assert main([*camp, "--out", str(tmp_path / "a.db")]) == 0
    assert main([*camp, "--device", "cpu", "--out", str(tmp_path / "b.db")]) == 0
    got = []
    for name in ("a.db", "b.db"):
        with CampaignStore(tmp_path / name, read_only=True) as store:
            idx, out = store.results()
            got.append((idx.tolist(), out.changed.tolist(), out.digest))
    assert got[0] == got[1] and len(got[0][0]) == 40
    assert sum(got[0][1]) > 0  # some faults changed some top-1
    assert main([*camp, "--device", "cpu", "--backend", "executor", "--out", str(tmp_path / "c.db")]) == 2
    assert "--device" in capsys.readouterr().err
