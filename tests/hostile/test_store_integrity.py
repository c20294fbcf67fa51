"""Campaign stores that were damaged, edited, mixed or locked under a writer: never a silently wrong report.

Every committed result row carries a checksum bound to its fault and to its campaign's metadata; the rows
also satisfy the invariants of any outcome. Each case below asserts the exact error (naming the damaged
fault numbers) from the API and from ``resilq report`` (exit code 2, one line, no traceback).
"""

import os
import shutil
import sqlite3

import numpy as np
import pytest

from resilq.campaign.engine import EvaluationSet
from resilq.campaign.runner import CampaignConfig, load_campaign, run_campaign
from resilq.campaign.store import CampaignLocked, CampaignStore, row_checksum
from resilq.cli import main
from resilq.errors import FormatError

from factories import random_model

FAULTS, IMAGES = 60, 24


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    rng = np.random.default_rng(17)
    model = random_model(rng)
    x = model.quantize_input(rng.random((IMAGES, *model.input.shape), dtype=np.float32))
    data = EvaluationSet(x, rng.integers(0, model.n_classes, IMAGES))
    folder = tmp_path_factory.mktemp("store")
    config = CampaignConfig(faults=FAULTS, seed=5, chunk_size=16)
    report = run_campaign(model, data, folder / "good.db", config)
    other = run_campaign(model, data, folder / "other.db", CampaignConfig(faults=FAULTS, seed=6, chunk_size=16))
    assert report.complete and other.complete
    return model, data, config, folder


def _copy(campaign, tmp_path, name="good.db"):
    path = tmp_path / "c.db"
    shutil.copy(campaign[3] / name, path)
    return path


def _sql(path, statement, params=()):
    db = sqlite3.connect(path)
    with db:
        db.execute(statement, params)
    db.close()  # the last connection: checkpoints the WAL into the file
    assert not os.path.exists(f"{path}-wal")


def _refused(path, capsys, *needles):
    """The API and ``resilq report`` both refuse ``path`` with one error containing every needle."""
    with pytest.raises(FormatError) as info:
        load_campaign(path)
    for needle in needles:
        assert needle in str(info.value)
    capsys.readouterr()
    assert main(["report", str(path)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1
    for needle in needles:
        assert needle in captured.err
    return str(info.value)


def test_the_untouched_store_reports(campaign):
    rep = load_campaign(campaign[3] / "good.db")
    assert rep.complete and rep.meta["schema"] == 2


@pytest.mark.parametrize("column, flipped", [  # the lowest bit flipped, as a single-bit error would
    ("changed", "(changed | 1) - (changed & 1)"), ("correct", "(correct | 1) - (correct & 1)"),
    ("how", "(how | 1) - (how & 1)"), ("digest", "x'00112233445566778899aabbccddeeff'")])
def test_single_field_damage_is_named(campaign, tmp_path, capsys, column, flipped):
    path = _copy(campaign, tmp_path)
    _sql(path, f"UPDATE results SET {column} = {flipped} WHERE idx = 13")
    msg = _refused(path, capsys, "1 of 60 result rows", "fault numbers 13 (checksum mismatch)")
    assert "DELETE FROM results" in msg


def test_a_row_moved_to_another_fault_or_taken_from_another_campaign_is_caught(campaign, tmp_path, capsys):
    path = _copy(campaign, tmp_path)
    _sql(path, "DELETE FROM results WHERE idx = 4")
    _sql(path, "UPDATE results SET idx = 4 WHERE idx = 5")  # fault 5's outcome claimed for fault 4
    _refused(path, capsys, "fault numbers 4 (checksum mismatch)")
    path = _copy(campaign, tmp_path)
    with sqlite3.connect(campaign[3] / "other.db") as src:  # same model and data, another seed
        row = src.execute("SELECT * FROM results WHERE idx = 9").fetchone()
    _sql(path, "DELETE FROM results WHERE idx = 9")
    _sql(path, "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?)", row)
    _refused(path, capsys, "fault numbers 9 (checksum mismatch)")


def test_an_impossible_outcome_is_refused_even_with_a_recomputed_checksum(campaign, tmp_path, capsys):
    path = _copy(campaign, tmp_path)
    with CampaignStore.open_existing(path) as store:
        digest, s = store.campaign_digest(), store.sample()
    cases = {3: (IMAGES + 5, 0), 8: (0, IMAGES + 1), 21: (2, -1)}  # changed > images, correct > images, < 0
    with sqlite3.connect(path) as db:
        for i, (changed, correct) in cases.items():
            how, blob = db.execute("SELECT how, digest FROM results WHERE idx = ?", (i,)).fetchone()
            fault = (i, s.layer[i], s.slot[i], s.neuron[i], s.copy[i], s.mask[i], s.kind[i], int(s.mode))
            db.execute("UPDATE results SET changed = ?, correct = ?, checksum = ? WHERE idx = ?",
                       (changed, correct, row_checksum(digest, fault, changed, correct, blob, how), i))
    _refused(path, capsys, "3 of 60 result rows", "3 (impossible outcome), 8 (impossible outcome), "
                                                   "21 (impossible outcome)")


def test_more_damaged_rows_than_listed_are_counted(campaign, tmp_path, capsys):
    path = _copy(campaign, tmp_path)
    _sql(path, "UPDATE results SET checksum = x'00' WHERE idx >= 10")
    _refused(path, capsys, "50 of 60 result rows", "fault numbers 10 (checksum mismatch)", "and 30 more")


def test_edited_metadata_or_fault_table_is_refused(campaign, tmp_path, capsys):
    path = _copy(campaign, tmp_path)
    _sql(path, "UPDATE meta SET value = value + 1 WHERE key = 'fault_free_correct'")  # shifts every loss
    _refused(path, capsys, "campaign metadata is damaged or was edited")
    path = _copy(campaign, tmp_path)
    _sql(path, "UPDATE meta SET value = 'not json' WHERE key = 'layers'")
    _refused(path, capsys, "metadata is damaged")
    path = _copy(campaign, tmp_path)
    _sql(path, "UPDATE faults SET mask = 128 WHERE idx = 2 AND mask != 128")
    _sql(path, "UPDATE faults SET mask = 64 WHERE idx = 2 AND mask = 128")
    _refused(path, capsys, "fault table is damaged or was edited")


def test_resume_refuses_a_damaged_store_and_leaves_it_alone(campaign, tmp_path):
    model, data, config, _ = campaign
    path = _copy(campaign, tmp_path)
    _sql(path, "DELETE FROM results WHERE idx >= 40")  # a partial campaign...
    _sql(path, "UPDATE results SET correct = correct + 1 WHERE idx = 33")  # ...with one damaged row
    before = path.read_bytes()
    with pytest.raises(FormatError, match=r"fault numbers 33 \(checksum mismatch\)"):
        run_campaign(model, data, path, config)
    assert path.read_bytes() == before
    _sql(path, "DELETE FROM results WHERE idx = 33")  # the repair the message suggests
    resumed = run_campaign(model, data, path, config)
    reference = load_campaign(campaign[3] / "good.db")
    assert resumed.complete and np.array_equal(resumed.outcomes.correct, reference.outcomes.correct)


def test_garbage_in_the_middle_of_the_file_is_one_clear_error_or_changes_nothing(campaign, tmp_path, capsys):
    """Garbage over every part of the file in turn: a FormatError naming the file, or (where the bytes were
    unused space) exactly the original numbers; never a traceback, never other numbers."""
    reference = load_campaign(campaign[3] / "good.db")
    size = (campaign[3] / "good.db").stat().st_size
    assert size > 4 * 4096
    refused = 0
    for offset in range(4096, size - 512, 1024):
        path = _copy(campaign, tmp_path)
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(np.random.default_rng(offset).integers(0, 256, 400, dtype=np.uint8).tobytes())
        try:
            rep = load_campaign(path)
        except FormatError as exc:
            assert "c.db" in str(exc)
            refused += 1
            capsys.readouterr()
            assert main(["report", str(path)]) == 2
            err = capsys.readouterr().err
            assert "Traceback" not in err and "c.db" in err
            continue
        assert np.array_equal(rep.idx, reference.idx), offset
        assert np.array_equal(rep.outcomes.changed, reference.outcomes.changed), offset
        assert np.array_equal(rep.outcomes.correct, reference.outcomes.correct), offset
        assert rep.summary == reference.summary, offset
    assert refused >= 3


def test_an_older_schema_gets_a_clear_message(tmp_path, capsys):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the schema-1 layout: results without checksums
        db.executescript("""
            CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE faults(idx INTEGER PRIMARY KEY, layer, slot, neuron, copy, mask, kind, mode);
            CREATE TABLE sessions(id INTEGER PRIMARY KEY, started REAL);
            CREATE TABLE results(idx INTEGER PRIMARY KEY, changed, correct, digest, how, session);
            INSERT INTO meta VALUES ('schema', '1');""")
    sqlite3.connect(path).close()
    _refused(path, capsys, "store schema 1, written by an older resilq", "reads schema 2")


def test_report_works_on_a_read_only_store_and_changes_nothing(campaign, tmp_path, capsys):
    path = _copy(campaign, tmp_path)
    os.chmod(path, 0o444)
    before = path.read_bytes()
    capsys.readouterr()
    assert main(["report", str(path)]) == 0
    assert "complete" in capsys.readouterr().out
    wal = tmp_path / "c.db-wal"  # SQLite may leave an empty WAL beside a WAL database it read
    assert path.read_bytes() == before and (not wal.exists() or wal.stat().st_size == 0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_report_works_in_a_read_only_folder(campaign, tmp_path, capsys):
    """No -shm can be created there: SQLite's plain mode=ro fails ("attempt to write a readonly database")."""
    medium = tmp_path / "medium"
    medium.mkdir()
    shutil.copy(campaign[3] / "good.db", medium / "c.db")
    os.chmod(medium / "c.db", 0o444)
    os.chmod(medium, 0o555)
    try:
        assert load_campaign(medium / "c.db").complete
        assert main(["report", str(medium / "c.db")]) == 0
        assert sorted(p.name for p in medium.iterdir()) == ["c.db"]
    finally:
        os.chmod(medium, 0o755)


def test_a_second_writer_is_refused_after_the_lock_file_was_deleted(campaign, tmp_path):
    model, data, config, _ = campaign
    path = _copy(campaign, tmp_path)
    _sql(path, "DELETE FROM results WHERE idx >= 30")
    from resilq.campaign.engine import GoldenRun
    from resilq.campaign.runner import campaign_metadata
    from resilq.campaign.sampling import sample_faults

    sample = sample_faults(model, config.fault_model, config.faults, config.seed)
    meta = campaign_metadata(model, data, config, sample, GoldenRun.compute(model, data.x))
    first = CampaignStore.create_or_open(path, meta, sample)
    try:
        os.remove(f"{path}.lock")
        with pytest.raises(CampaignLocked, match=f"pid {os.getpid()} .*lock file is gone"):
            run_campaign(model, data, path, config)
        assert load_campaign(path).idx.size == 30  # nothing written by the refused writer
    finally:
        first.close()
    assert run_campaign(model, data, path, config).complete  # the writer row went with its writer


def test_a_writer_row_left_by_a_dead_process_is_taken_over(campaign, tmp_path):
    model, data, config, _ = campaign
    path = _copy(campaign, tmp_path)
    _sql(path, "DELETE FROM results WHERE idx >= 30")
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    _sql(path, "INSERT INTO writer VALUES (0, ?, ?, '1', 'gone')", (int(dead), socket.gethostname()))
    assert run_campaign(model, data, path, config).complete


def test_a_damaged_shared_outcome_is_refused_not_copied_into_a_campaign(tmp_path):
    from resilq.campaign.engine import How, Outcomes
    from resilq.campaign.sweep import SharedOutcomes

    keys = [bytes([i]) * 20 for i in range(4)]
    outcomes = Outcomes(np.array([0, 3, 1, 0]), np.array([20, 17, 19, 20]), [b"g" * 16, b"a" * 16, b"b" * 16, b"g" * 16],
                        np.full(4, How.PROPAGATED))
    cache = SharedOutcomes(tmp_path / "shared.db")
    cache.put(keys, outcomes)
    assert cache.get(keys)[keys[1]] == (3, 17, b"a" * 16)
    cache.db.execute("UPDATE outcomes SET correct = correct + 1 WHERE key = ?", (keys[2],))
    with pytest.raises(FormatError, match="shared.db: 1 shared outcome rows are damaged"):
        cache.get(keys)
    assert cache.get(keys[:2])[keys[0]] == (0, 20, b"g" * 16)  # intact rows still read
    cache.close()
    old = tmp_path / "old.db"
    _sql(old, "CREATE TABLE outcomes(key BLOB PRIMARY KEY, changed INTEGER NOT NULL, correct INTEGER NOT NULL, "
              "digest BLOB NOT NULL)")
    with pytest.raises(FormatError, match="older resilq"):
        SharedOutcomes(old)
