"""Durable campaigns: resume after an exception, Ctrl-C or kill -9 with nothing lost or counted twice;
refuse to mix campaigns; one writer at a time."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from resilq.campaign.engine import DEFAULT_BACKEND, EvaluationSet, ExecutorBackend
from resilq.campaign.runner import CampaignConfig, load_campaign, run_campaign
from resilq.campaign.sampling import FaultModel
from resilq.campaign.store import CampaignLocked, CampaignStore
from resilq.cli import main
from resilq.data import load_dataset
from resilq.errors import FormatError, MismatchError
from resilq.ir import save_model

from factories import random_model

REPO = Path(__file__).resolve().parents[1]


def _setup(rng, n=30):
    model = random_model(rng)
    x = model.quantize_input(rng.random((n, *model.input.shape), dtype=np.float32))
    return model, EvaluationSet(x, rng.integers(0, model.n_classes, n))


def _same_results(a, b):
    assert np.array_equal(a.idx, b.idx)
    assert np.array_equal(a.outcomes.changed, b.outcomes.changed)
    assert np.array_equal(a.outcomes.correct, b.outcomes.correct)
    assert a.outcomes.digest == b.outcomes.digest


class _Crash(Exception):
    pass


def test_resume_after_an_exception_equals_an_uninterrupted_run(tmp_path, rng):
    model, data = _setup(rng)
    config = CampaignConfig(faults=200, seed=2, chunk_size=16)
    calls = {"n": 0}

    class Flaky(ExecutorBackend):
        def predictions(self, faults):
            calls["n"] += 1
            if calls["n"] == 4:
                raise _Crash()
            return super().predictions(faults)

    with pytest.raises(_Crash):
        run_campaign(model, data, tmp_path / "c.db", config, backend=Flaky)
    partial = load_campaign(tmp_path / "c.db")
    assert 0 < partial.idx.size < 200 and partial.idx.size % 16 == 0  # whole chunks only
    resumed = run_campaign(model, data, tmp_path / "c.db", config)
    reference = run_campaign(model, data, tmp_path / "ref.db", config)
    assert resumed.complete and len(resumed.sessions) == 2
    _same_results(resumed, reference)
    again = run_campaign(model, data, tmp_path / "c.db", config)  # finished: only reports
    assert len(again.sessions) == 3 and again.sessions[-1]["done"] == 0
    _same_results(again, reference)


def test_a_campaign_beyond_the_golden_cache_spills_beside_its_store_and_cleans_up(tmp_path, rng, monkeypatch):
    """When the golden tensors exceed the fault simulator's cache, the campaign spills them to
    ``<store>.golden/`` (results identical to the executor's) and removes the folder once complete."""
    import resilq.faultsim.simulator as simulator
    from resilq.campaign.engine import BackendKind
    from resilq.campaign.runner import spilled

    model, data = _setup(rng, n=40)
    config = CampaignConfig(faults=60, seed=3, chunk_size=16)
    reference = run_campaign(model, data, tmp_path / "ref.db", config, backend=ExecutorBackend)
    assert spilled(BackendKind.FAULTSIM, model, 40, tmp_path / "c.db") == (BackendKind.FAULTSIM, None)

    monkeypatch.setattr(simulator, "DEFAULT_CACHE_BYTES", simulator.golden_bytes_per_input(model) * 10)
    backend, folder = spilled(BackendKind.FAULTSIM, model, 40, tmp_path / "c.db")
    assert folder == (tmp_path / "c.db.golden").resolve() and backend.spill_dir == str(folder)
    assert spilled(ExecutorBackend, model, 40, tmp_path / "c.db") == (ExecutorBackend, None)
    seen = []
    real_save = simulator.GoldenSpill.save
    monkeypatch.setattr(simulator.GoldenSpill, "save",
                        lambda self, c, g: seen.append(self.path.parent) or real_save(self, c, g))
    done = run_campaign(model, data, tmp_path / "c.db", config)
    assert seen and set(seen) == {folder}  # it spilled there ...
    assert done.complete and not folder.exists()  # ... and cleaned up
    _same_results(done, reference)


def test_refuses_another_configuration(tmp_path, rng):
    model, data = _setup(rng)
    path = tmp_path / "c.db"
    run_campaign(model, data, path, CampaignConfig(faults=20, seed=1))
    with pytest.raises(MismatchError, match="seed"):
        run_campaign(model, data, path, CampaignConfig(faults=20, seed=2))
    with pytest.raises(MismatchError, match="fault_model"):
        run_campaign(model, data, path, CampaignConfig(FaultModel.parse("stuck-at-1"), faults=20, seed=1))
    with pytest.raises(MismatchError, match="sample_size"):
        run_campaign(model, data, path, CampaignConfig(faults=21, seed=1))
    other, _ = _setup(np.random.default_rng(99))
    with pytest.raises(MismatchError, match="model_hash"):
        run_campaign(other, data, path, CampaignConfig(faults=20, seed=1))
    fewer = EvaluationSet(data.x[:10], data.labels[:10])
    with pytest.raises(MismatchError, match="data_digest"):
        run_campaign(model, fewer, path, CampaignConfig(faults=20, seed=1))
    assert load_campaign(path).idx.size == 20  # untouched


def test_metadata_records_what_and_how(tmp_path, rng):
    model, data = _setup(rng)
    rep = run_campaign(model, data, tmp_path / "c.db", CampaignConfig(faults=10, seed=4))
    meta = rep.meta
    assert meta["model_hash"] == model.hash and meta["seed"] == 4 and meta["fault_model"] == "single-bit"
    assert meta["sample_size"] == 10 and meta["population"] == model.n_slots * 8
    assert meta["data_digest"] == data.digest and meta["images"] == len(data)
    assert meta["code_version"].startswith("0.") and meta["schema"] == 2
    assert rep.sessions[0]["backend"] == DEFAULT_BACKEND.value


def test_one_writer_at_a_time(tmp_path, rng):
    model, data = _setup(rng)
    path = tmp_path / "c.db"
    run_campaign(model, data, path, CampaignConfig(faults=5))
    holder = CampaignStore(path)
    try:
        with pytest.raises(CampaignLocked, match="another process"):
            run_campaign(model, data, path, CampaignConfig(faults=5))
    finally:
        holder.close()
    run_campaign(model, data, path, CampaignConfig(faults=5))  # released


def test_not_a_campaign_file(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(FormatError):
        load_campaign(junk)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t(x)").connection.close()
    with pytest.raises(FormatError, match="not a resilq campaign"):
        load_campaign(other)


# ---------------------------------------------------------------------------------------------- real kills
def _count(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _start(args):
    env = {**os.environ, "RESILQ_QUIET": "1", "PYTHONPATH": str(REPO / "tests")}
    return subprocess.Popen([sys.executable, "-m", "resilq.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _interrupt_when(proc, path: Path, at_least: int, sig: int) -> int:
    deadline = time.monotonic() + 120
    while _count(path) < at_least:
        if proc.poll() is not None:
            raise AssertionError(f"campaign ended before it could be interrupted: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("campaign made no progress")
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    return proc.returncode


def test_ctrl_c_and_kill_9_then_resume(tmp_path):
    """A real campaign process interrupted by SIGINT, resumed, killed with SIGKILL, resumed: equal results."""
    rng = np.random.default_rng(21)
    model = random_model(rng, shape=(1, 28, 28), classes=10)  # digits-shaped input
    model_file = save_model(model, tmp_path / "m.rq")
    total = 400
    # the slow reference backend, so the campaign lasts long enough to be interrupted twice
    args = [str(model_file), "--dataset", "digits", "--images", "20", "--faults", str(total), "--seed", "3",
            "--chunk", "4", "--backend", "executor"]
    db = tmp_path / "run.db"
    code = _interrupt_when(_start(["campaign", *args, "--out", str(db)]), db, 20, signal.SIGINT)
    first = _count(db)
    assert code == 130 and 20 <= first < total
    code = _interrupt_when(_start(["campaign", *args, "--out", str(db)]), db, first + 20, signal.SIGKILL)
    second = _count(db)
    assert code == -signal.SIGKILL and first + 20 <= second < total
    assert main(["campaign", *args, "--out", str(db)]) == 0
    resumed = load_campaign(db)
    assert resumed.complete and len(set(resumed.idx.tolist())) == total
    assert len(resumed.sessions) == 3 and resumed.sessions[1]["finished"] is None  # the killed one
    data = EvaluationSet.from_dataset(model, load_dataset("digits", "test"), 20)
    reference = run_campaign(model, data, tmp_path / "ref.db", CampaignConfig(faults=total, seed=3))
    _same_results(resumed, reference)


def test_ctrl_c_is_deferred_to_the_chunk_boundary_and_a_second_one_is_not():
    from resilq.campaign.runner import _Interrupts

    with _Interrupts.deferred() as interrupts:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler ran; nothing was raised mid-chunk
        assert interrupts.pending
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
