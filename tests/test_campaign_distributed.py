"""Dask-sharded campaigns give exactly the results of a single-process run (LocalCluster, 2 worker processes)."""

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.campaign.engine import EvaluationSet, ExecutorBackend
from resilq.campaign.runner import CampaignConfig, load_campaign, run_campaign

from factories import protect, random_model

pytest.importorskip("distributed", reason='Dask is not installed (pip install "resilq[distributed]")')


def _evaluators_built() -> int:
    from resilq.campaign import distributed

    return len(distributed._EVALUATORS)


class _Stop(Exception):
    pass


def test_local_cluster_equals_single_process_and_resumes(tmp_path):
    from resilq.campaign.distributed import dask_client

    rng = np.random.default_rng(8)
    model = protect(random_model(rng), rng, Scheme.SPLIT, 0.3)
    x = model.quantize_input(rng.random((30, *model.input.shape), dtype=np.float32))
    data = EvaluationSet(x, rng.integers(0, model.n_classes, 30))
    config = CampaignConfig(faults=240, seed=5, chunk_size=12)
    single = run_campaign(model, data, tmp_path / "single.db", config)

    calls = {"n": 0}

    class StopsEarly(ExecutorBackend):
        def predictions(self, faults):
            calls["n"] += 1
            if calls["n"] > 3:
                raise _Stop()
            return super().predictions(faults)

    with pytest.raises(_Stop):  # a partial in-process run ...
        run_campaign(model, data, tmp_path / "dask.db", config, backend=StopsEarly)
    assert 0 < load_campaign(tmp_path / "dask.db").idx.size < 240
    with dask_client("local", workers=2) as client:  # ... finished by two worker processes
        sharded = run_campaign(model, data, tmp_path / "dask.db", config, client=client)
        built = client.run(_evaluators_built)
    assert len(built) == 2 and all(n == 1 for n in built.values())  # both workers evaluated faults
    assert sharded.complete and sharded.sessions[-1]["scheduler"].startswith("dask tcp://")
    assert np.array_equal(single.idx, sharded.idx)
    assert np.array_equal(single.outcomes.changed, sharded.outcomes.changed)
    assert np.array_equal(single.outcomes.correct, sharded.outcomes.correct)
    assert single.outcomes.digest == sharded.outcomes.digest
    assert np.array_equal(single.outcomes.how, sharded.outcomes.how)
