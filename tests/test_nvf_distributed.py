"""The NVF analysis on a Dask cluster and resumed from its finished units equals the in-process analysis."""

import numpy as np
import pytest

from resilq.errors import MismatchError
from resilq.nvf import exact as exact_module
from resilq.nvf.deltarange import deltarange_nvf
from resilq.nvf.exact import exact_nvf
from resilq.nvf.partials import parts_dir


def _same(a, b, model):
    assert a.network_hash == b.network_hash
    for layer in model.neuron_layers:
        assert np.array_equal(a.values[layer], b.values[layer], equal_nan=True), model.layers[layer].name
    assert a.metadata["bit_critical"] == b.metadata["bit_critical"]


class _Stop(Exception):
    pass


def test_resumed_run_equals_fresh_run(deep, tmp_path, monkeypatch):
    model, x = deep
    fresh = exact_nvf(model, x)
    parts = parts_dir(tmp_path / "out.nvf")
    calls = {"n": 0}
    real = exact_module.critical_flips

    def stops_after_two(ctx, unit):
        calls["n"] += 1
        if calls["n"] > 2:
            raise _Stop()
        return real(ctx, unit)

    monkeypatch.setattr(exact_module, "critical_flips", stops_after_two)
    with pytest.raises(_Stop):
        exact_nvf(model, x, parts=parts)
    monkeypatch.setattr(exact_module, "critical_flips", real)
    kept = sorted(p.name for p in parts.glob("unit-*.npy"))
    assert len(kept) == 2  # the two finished units are on disk

    def counts(ctx, unit):  # the resumed run computes only the units not on disk
        calls["resumed"] = calls.get("resumed", 0) + 1
        return real(ctx, unit)

    monkeypatch.setattr(exact_module, "critical_flips", counts)
    resumed = exact_nvf(model, x, parts=parts)
    n_units = len(list(parts.glob("unit-*.npy")))
    assert calls["resumed"] == n_units - 2
    _same(resumed, fresh, model)


def test_parts_of_another_analysis_are_refused(deep, tmp_path):
    model, x = deep
    parts = tmp_path / "p"
    exact_nvf(model, x[:6], parts=parts)
    with pytest.raises(MismatchError, match="another analysis"):
        exact_nvf(model, x, parts=parts)


def test_local_dask_equals_in_process(deep, tmp_path):
    pytest.importorskip("distributed", reason='Dask is not installed (pip install "resilq[distributed]")')
    from resilq.campaign.distributed import dask_client

    model, x = deep
    one = exact_nvf(model, x)
    delta = deltarange_nvf(model, x)
    with dask_client("local", workers=2) as client:
        sharded = exact_nvf(model, x, client=client, parts=tmp_path / "parts")
        sharded_delta = deltarange_nvf(model, x, client=client)
    _same(sharded, one, model)
    for layer in model.neuron_layers:
        assert np.array_equal(sharded_delta.values[layer], delta.values[layer])
    assert sharded_delta.metadata["gradient_nonzero"] == delta.metadata["gradient_nonzero"]


def test_a_scheduler_started_elsewhere_is_reached_by_its_address(deep):
    """``--scheduler tcp://HOST:PORT``: a scheduler and worker the user started themselves (here in this
    process, on a real TCP port) run the analysis and give the in-process values."""
    pytest.importorskip("distributed", reason='Dask is not installed (pip install "resilq[distributed]")')
    from distributed import LocalCluster

    from resilq.campaign.distributed import dask_client

    model, x = deep
    x = x[:6]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                      protocol="tcp://", host="127.0.0.1") as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        with dask_client(address) as client:
            remote = exact_nvf(model, x, client=client)
            assert list(client.scheduler_info()["workers"]) == list(cluster.scheduler_info["workers"])
    _same(remote, exact_nvf(model, x), model)
