"""Durable campaign results: one SQLite file per campaign, written as faults complete.

Layout (schema 2)::

    meta(key, value)           JSON values: what the campaign is (model hash, data digest, fault model,
                               seed, sample size, plan digest, ...) and how it was created (code version);
                               ``integrity`` is the SHA-256 of every other meta row
    faults(idx, layer, slot, neuron, copy, mask, kind, mode)   the sampled faults, written once at creation
    results(idx, changed, correct, digest, how, session, checksum) one row per finished fault (idx is the key)
    sessions(id, started, finished, code_version, host, pid, backend, scheduler, done)
    writer(slot, pid, host, started, token)   the live writer, if any (second line of defence after the lock)

Integrity: every result row carries ``checksum`` = SHA-256 over the campaign's meta digest, the fault it
belongs to (its number and its row of ``faults``) and its outcome, so a row that is damaged, edited, moved
to another fault or copied from another campaign is detected; the fault table is covered by the
``plan_digest`` of the metadata, the metadata by ``integrity``. Rows are also checked against what any
outcome must satisfy (``0 <= changed, correct <= images``, ``|correct - fault-free correct| <= changed``,
``changed == 0`` exactly when the top-1 digest is the fault-free one). Both checks run on every open
(resume and report); a failure is a :class:`resilq.errors.FormatError` that names the damaged rows.
SQLite's own ``quick_check`` does not see such damage: a flipped bit inside an integer is a valid page.

Durability: WAL journal, ``synchronous=FULL``, one transaction per chunk of faults. A chunk is either
entirely in the file or not at all, whatever kills the process (Ctrl-C, ``kill -9``, power loss), so a
resumed campaign recomputes exactly the missing faults; ``idx`` is the primary key, so nothing can be
counted twice. A sidecar lock (``<file>.lock``, ``flock``) stops two processes from running the same
campaign at once; the kernel releases it when the holder dies. If the lock file is deleted under a running
campaign, the ``writer`` row still names the live writer (pid, host and process start time, so a reused
pid is not mistaken for it) and a second writer on the same host is refused; a row left by a killed writer
is taken over.

Reporting opens the file read-only (SQLite URI ``mode=ro``), so a finished campaign on a read-only medium
can be reported. A WAL database normally needs its ``-shm`` file, which a read-only folder cannot hold; a
cleanly closed store has no ``-wal`` file, and is then opened with ``immutable=1`` (see
https://www.sqlite.org/wal.html, "Read-Only Databases", and https://www.sqlite.org/uri.html).

A store refuses to be opened for a campaign whose configuration differs from the one it was created for
(another model, data set, fault model, seed or sample size): :class:`resilq.errors.MismatchError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sqlite3
import struct
import subprocess
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import FormatError, MismatchError
from .engine import How, Outcomes
from .sampling import FaultSample

SCHEMA = 2
#: The meta key holding the digest of every other meta row.
INTEGRITY_KEY = "integrity"
#: How many damaged fault numbers an error message lists.
_LISTED = 20
#: Metadata that defines *what* a campaign computes: all must match for results to be appended.
IDENTITY_KEYS = ("model_hash", "network_hash", "data_digest", "dataset", "split", "offset", "images", "fault_model",
                 "seed", "sample_size", "population", "plan_digest", "fault_free_digest", "fault_kind", "kind_params")

_TABLES = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE faults(idx INTEGER PRIMARY KEY, layer INTEGER NOT NULL, slot INTEGER NOT NULL, neuron INTEGER NOT NULL,
                    copy INTEGER NOT NULL, mask INTEGER NOT NULL, kind INTEGER NOT NULL, mode INTEGER NOT NULL);
CREATE TABLE sessions(id INTEGER PRIMARY KEY, started REAL NOT NULL, finished REAL, code_version TEXT NOT NULL,
                      host TEXT NOT NULL, pid INTEGER NOT NULL, backend TEXT, scheduler TEXT, done INTEGER DEFAULT 0);
CREATE TABLE results(idx INTEGER PRIMARY KEY REFERENCES faults(idx), changed INTEGER NOT NULL,
                     correct INTEGER NOT NULL, digest BLOB NOT NULL, how INTEGER NOT NULL,
                     session INTEGER REFERENCES sessions(id), checksum BLOB NOT NULL);
CREATE TABLE writer(slot INTEGER PRIMARY KEY CHECK (slot = 0), pid INTEGER NOT NULL, host TEXT NOT NULL,
                    started TEXT NOT NULL, token TEXT NOT NULL);
"""


def _meta_digest(rows: Sequence[tuple[str, str]]) -> str:
    """SHA-256 of the stored meta rows (the JSON text as stored), the integrity row excluded."""
    h = hashlib.sha256(b"resilq-campaign-meta")
    for key, value in sorted(rows):
        if key != INTEGRITY_KEY:
            h.update(struct.pack("<II", len(key.encode()), len(value.encode())) + key.encode() + value.encode())
    return h.hexdigest()


def row_checksum(campaign: bytes, fault: Sequence[int], changed: int, correct: int, digest: bytes, how: int) -> bytes:
    """The checksum of one result row: campaign meta digest, the fault (number + its 7 fields), the outcome."""
    h = hashlib.sha256(b"resilq-campaign-result")
    h.update(campaign)
    h.update(struct.pack("<8q", *(int(v) for v in fault)))
    h.update(struct.pack("<3q", int(changed), int(correct), int(how)))
    h.update(struct.pack("<I", len(digest)) + bytes(digest))
    return h.digest()


def _process_start(pid: int) -> str:
    """When process ``pid`` started (Linux: field 22 of /proc/<pid>/stat), '' if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return ""


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    except OSError:
        return False
    now = _process_start(pid)
    return not (started and now and now != started)  # same pid, another process: the writer is gone


def code_version() -> str:
    """resilq's version, plus the git commit (and ``+dirty``) when run from a checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5)
        if rev.returncode != 0:
            return __version__
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{__version__}+g{rev.stdout.strip()}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return __version__


class CampaignLocked(MismatchError):
    """Another live process is running this campaign."""


class CampaignStore:
    """One campaign's SQLite file. Use :meth:`create_or_open` (to run) or :meth:`open_existing` (to report)."""

    def __init__(self, path: str | os.PathLike, *, lock: bool = True, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._lock_fd: int | None = None
        self._token: str | None = None
        self._fault_rows: np.ndarray | None = None
        self._campaign: bytes | None = None
        self.db = None
        if lock:
            self._acquire_lock()
        try:
            if read_only:
                self.db = self._connect_read_only()
            else:
                self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=60)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            self.close()
            raise FormatError(f"{self.path}: not a resilq campaign database ({exc})") from None
        self.session: int | None = None

    def _connect_read_only(self) -> sqlite3.Connection:
        uri = "file:" + urllib.parse.quote(str(self.path.resolve())) + "?mode=ro"
        db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=60)
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError:
            db.close()
            # a WAL file in a folder where its -shm cannot be created: without a -wal file every committed
            # transaction is in the main file and nobody is writing it, so it may be read as immutable
            wal = Path(f"{self.path}-wal")
            if wal.exists() and wal.stat().st_size:
                raise
        return sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None)

    # ---------------------------------------------------------------------------------------------- lifecycle
    @classmethod
    def create_or_open(cls, path: str | os.PathLike, meta: Mapping[str, Any], sample: FaultSample) -> CampaignStore:
        """Open ``path`` for the campaign described by ``meta``/``sample``, creating it if it does not exist.

        An existing store is checked completely (identity, metadata, fault plan, every result row) before a
        single fault is added to it.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        store = cls(path)
        try:
            if not store._has_schema():
                store._create(meta, sample)
                store._claim_writer()
            else:
                store.check_identity(meta)
                store.verify()  # before anything is written to the file
                store._claim_writer()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_existing(cls, path: str | os.PathLike) -> CampaignStore:
        """Open a finished or partial campaign read-only (no lock; the file and its folder may be read-only)."""
        path = Path(path)
        if not path.is_file():
            raise FormatError(f"{path}: no such campaign database")
        store = cls(path, lock=False, read_only=True)
        try:
            if not store._has_schema():
                raise FormatError(f"{path}: not a resilq campaign database (no campaign tables)")
            store._check_schema()
            store.campaign_digest()  # the rows are verified as they are read (results())
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        if getattr(self, "db", None) is not None:
            try:
                self._release_writer()
            finally:
                self.db.close()
                self.db = None
        self._release_lock()

    def __enter__(self) -> CampaignStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _acquire_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no cross-process guard
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            os.close(fd)
            raise CampaignLocked(f"{self.path} is being written by another process ({holder or 'unknown'}); "
                                 "wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _claim_writer(self) -> None:
        """Record this process as the writer; refuse if a live process on this host already is one."""
        me = (os.getpid(), socket.gethostname(), _process_start(os.getpid()), secrets.token_hex(8))
        with self._transaction():
            row = self._query("SELECT pid, host, started, token FROM writer WHERE slot = 0")
            if row:
                pid, host, started, _ = row[0]
                if host == me[1] and _alive(int(pid), str(started)):
                    raise CampaignLocked(f"{self.path} is being written by another process (pid {pid} on {host}) "
                                         "although its lock file is gone; wait for it to finish or stop it first")
            self.db.execute("INSERT OR REPLACE INTO writer VALUES (0, ?, ?, ?, ?)", me)
        self._token = me[3]

    def _release_writer(self) -> None:
        if self._token is None:
            return
        token, self._token = self._token, None
        try:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            self.db.execute("DELETE FROM writer WHERE slot = 0 AND token = ?", (token,))
        except sqlite3.Error:  # the row is harmless: the next writer sees that this process is gone
            pass

    # ---------------------------------------------------------------------------------------------- sqlite
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run ``sql`` and fetch everything; SQLite failures become one clear :class:`FormatError`."""
        try:
            return self.db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def _damaged(self, exc: sqlite3.Error) -> FormatError:
        if isinstance(exc, sqlite3.OperationalError):
            return FormatError(f"{self.path}: SQLite cannot use the campaign database ({exc})")
        return FormatError(f"{self.path}: the campaign database is damaged ({exc}); "
                           "restore it from a copy or run the campaign again into a new file")

    # ---------------------------------------------------------------------------------------------- schema
    def _has_schema(self) -> bool:
        try:
            names = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise FormatError(f"{self.path}: not a resilq campaign database ({exc})") from None
        if not names:
            return False
        if not {"meta", "faults", "results", "sessions"} <= names:
            raise FormatError(f"{self.path}: an SQLite file, but not a resilq campaign database (tables {sorted(names)})")
        return True

    def _check_schema(self) -> None:
        rows = self._query("SELECT value FROM meta WHERE key = 'schema'")
        try:
            schema = json.loads(rows[0][0]) if rows else None
        except ValueError:
            schema = None
        if schema == SCHEMA:
            return
        if isinstance(schema, int) and schema < SCHEMA:
            raise FormatError(f"{self.path}: a campaign of store schema {schema}, written by an older resilq; this "
                              f"resilq reads schema {SCHEMA} (results with checksums): report it with the resilq "
                              "that wrote it, or run the campaign again into a new file")
        raise FormatError(f"{self.path}: campaign store schema {schema!r} is not supported by this resilq "
                          f"(it reads schema {SCHEMA})")

    def _create(self, meta: Mapping[str, Any], sample: FaultSample) -> None:
        rows = zip(range(len(sample)), *(a.tolist() for a in (sample.layer, sample.slot, sample.neuron, sample.copy,
                                                               sample.mask, sample.kind)), [int(sample.mode)] * len(sample))
        full = {"schema": SCHEMA, "code_version": code_version(), "created": time.time(), **meta}
        full.pop(INTEGRITY_KEY, None)
        meta_rows = [(k, json.dumps(v)) for k, v in full.items()]
        with self._transaction():
            for statement in _TABLES.strip().split(";"):
                if statement.strip():
                    self.db.execute(statement)
            self.db.executemany("INSERT INTO meta VALUES (?, ?)", meta_rows)
            self.db.execute("INSERT INTO meta VALUES (?, ?)", (INTEGRITY_KEY, json.dumps(_meta_digest(meta_rows))))
            self.db.executemany("INSERT INTO faults VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def _transaction(self):
        store = self

        class _Txn:
            def __enter__(self):
                try:
                    if store.db.in_transaction:  # left open by an interrupt between BEGIN and COMMIT: discard it
                        store.db.execute("ROLLBACK")
                    store.db.execute("BEGIN IMMEDIATE")
                except sqlite3.DatabaseError as exc:
                    raise store._damaged(exc) from None

            def __exit__(self, exc_type, exc, tb):
                try:
                    store.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
                except sqlite3.DatabaseError as err:
                    if exc_type is None:
                        raise store._damaged(err) from None
                if isinstance(exc, sqlite3.DatabaseError):
                    raise store._damaged(exc) from None

        return _Txn()

    # ---------------------------------------------------------------------------------------------- metadata
    @property
    def meta(self) -> dict[str, Any]:
        out = {}
        for k, v in self._query("SELECT key, value FROM meta"):
            try:
                out[k] = json.loads(v)
            except (TypeError, ValueError):
                raise FormatError(f"{self.path}: the campaign metadata is damaged (meta row {k!r} is not JSON)") from None
        return out

    def check_identity(self, meta: Mapping[str, Any]) -> None:
        """Raise :class:`MismatchError` naming every difference between this store's campaign and ``meta``."""
        self._check_schema()
        have = self.meta
        diffs = [f"{k}: stored {have.get(k)!r}, requested {meta.get(k)!r}" for k in IDENTITY_KEYS
                 if k in meta and have.get(k) != meta.get(k)]
        if diffs:
            raise MismatchError(f"{self.path} holds a different campaign; refusing to append to it "
                                f"(use another --out file): " + "; ".join(diffs))

    # ---------------------------------------------------------------------------------------------- integrity
    def campaign_digest(self) -> bytes:
        """The verified digest of the metadata (what every result row's checksum is bound to)."""
        if self._campaign is None:
            rows = self._query("SELECT key, value FROM meta")
            stored = dict(rows).get(INTEGRITY_KEY)
            digest = _meta_digest([(str(k), str(v)) for k, v in rows])
            if stored != json.dumps(digest):
                raise FormatError(f"{self.path}: the campaign metadata is damaged or was edited (its integrity "
                                  "digest does not match); the file cannot be trusted: restore it from a copy or "
                                  "run the campaign again into a new file")
            self._campaign = bytes.fromhex(digest)
        return self._campaign

    def _faults(self) -> np.ndarray:
        """The fault table, (n, 8) int64, checked against the plan digest of the metadata."""
        if self._fault_rows is None:
            rows = self._query("SELECT idx, layer, slot, neuron, copy, mask, kind, mode FROM faults ORDER BY idx")
            try:
                table = np.array(rows, dtype=np.int64).reshape(-1, 8)
            except (TypeError, ValueError, OverflowError):
                raise FormatError(f"{self.path}: the fault table is damaged (a value is not an integer)") from None
            if table.size and not np.array_equal(table[:, 0], np.arange(table.shape[0])):
                raise FormatError(f"{self.path}: fault table is not numbered 0..n-1")
            self._fault_rows = table
            meta = self.meta
            try:
                plan = self._sample_from(table, meta).digest()
            except (ValueError, TypeError) as exc:
                self._fault_rows = None
                raise FormatError(f"{self.path}: the fault table is damaged ({exc})") from None
            if plan != meta.get("plan_digest") or int(meta.get("sample_size", -1)) != table.shape[0]:
                self._fault_rows = None
                raise FormatError(f"{self.path}: the fault table is damaged or was edited (it does not match the "
                                  "campaign's plan digest); restore the file from a copy or run the campaign again")
        return self._fault_rows

    def verify(self) -> None:
        """Check the metadata, the fault plan and every result row; name the damaged rows."""
        self.campaign_digest()
        self._faults()
        self._check_rows(self._query("SELECT idx, changed, correct, digest, how, checksum FROM results ORDER BY idx"))

    def _check_rows(self, rows: Sequence[tuple]) -> None:
        campaign, faults, meta = self.campaign_digest(), self._faults(), self.meta
        images, golden = int(meta["images"]), int(meta["fault_free_correct"])
        golden_digest = bytes.fromhex(str(meta.get("fault_free_digest", "")))
        hows = {int(h) for h in How}
        bad: list[tuple[Any, str]] = []
        for idx, changed, correct, digest, how, checksum in rows:
            if not all(isinstance(v, int) for v in (idx, changed, correct, how)) or not isinstance(digest, bytes):
                bad.append((idx, "a value of the wrong type"))
            elif not 0 <= idx < faults.shape[0]:
                bad.append((idx, "no such fault"))
            elif checksum != row_checksum(campaign, faults[idx], changed, correct, digest, how):
                bad.append((idx, "checksum mismatch"))
            elif not (0 <= changed <= images and 0 <= correct <= images and abs(correct - golden) <= changed
                      and how in hows and (changed == 0) == (digest == golden_digest)):
                bad.append((idx, "impossible outcome"))
        if bad:
            listed = ", ".join(f"{i} ({why})" for i, why in bad[:_LISTED])
            more = f" and {len(bad) - _LISTED} more" if len(bad) > _LISTED else ""
            raise FormatError(f"{self.path}: {len(bad)} of {len(rows)} result rows are damaged or were edited "
                              f"(fault numbers {listed}{more}); delete them (DELETE FROM results WHERE idx IN "
                              "(...)) and resume the campaign to recompute them, or restore the file from a copy")

    # ---------------------------------------------------------------------------------------------- sessions
    def begin_session(self, backend: str, scheduler: str) -> int:
        with self._transaction():
            cur = self.db.execute("INSERT INTO sessions(started, code_version, host, pid, backend, scheduler) "
                                  "VALUES (?, ?, ?, ?, ?, ?)", (time.time(), code_version(), socket.gethostname(),
                                                                os.getpid(), backend, scheduler))
        self.session = int(cur.lastrowid)
        return self.session

    def end_session(self) -> None:
        if self.session is None:
            return
        with self._transaction():
            self.db.execute("UPDATE sessions SET finished=?, done=(SELECT COUNT(*) FROM results WHERE session=?) "
                            "WHERE id=?", (time.time(), self.session, self.session))
        self.session = None

    def sessions(self) -> list[dict[str, Any]]:
        try:
            cur = self.db.execute("SELECT * FROM sessions ORDER BY id")
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row)) for row in cur]
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    # ---------------------------------------------------------------------------------------------- results
    @staticmethod
    def _sample_from(rows: np.ndarray, meta: Mapping[str, Any]) -> FaultSample:
        from ..arith import FaultMode

        mode = FaultMode(int(rows[0, 7])) if rows.size else FaultMode.FLIP
        # lane / weight / ber campaigns: the kind tells how to read the columns (campaign.kinds)
        return FaultSample(rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5], rows[:, 6], mode,
                           int(meta.get("population", rows.shape[0])), meta.get("fault_kind", "output"),
                           meta.get("kind_params"))

    def sample(self) -> FaultSample:
        return self._sample_from(self._faults(), self.meta)

    def n_faults(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM faults")[0][0])

    def n_done(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM results")[0][0])

    def pending(self) -> np.ndarray:
        """Fault numbers without a result, in order."""
        rows = self._query("SELECT idx FROM faults WHERE idx NOT IN (SELECT idx FROM results) ORDER BY idx")
        return np.array([r[0] for r in rows], dtype=np.int64)

    def write(self, idx: Sequence[int], outcomes: Outcomes) -> None:
        """Record the outcomes of faults ``idx`` in one transaction (all or nothing), each with its checksum."""
        if len(idx) != len(outcomes):
            raise ValueError(f"{len(idx)} fault numbers for {len(outcomes)} outcomes")
        campaign, faults = self.campaign_digest(), self._faults()
        rows = [(int(i), int(c), int(k), sqlite3.Binary(d), int(h), self.session,
                 sqlite3.Binary(row_checksum(campaign, faults[int(i)], c, k, d, h)))
                for i, c, k, d, h in zip(idx, outcomes.changed, outcomes.correct, outcomes.digest, outcomes.how)]
        with self._transaction():
            self.db.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def results(self) -> tuple[np.ndarray, Outcomes]:
        """``(idx, outcomes)`` of every finished fault, in fault order, each row verified."""
        rows = self._query("SELECT idx, changed, correct, digest, how, checksum FROM results ORDER BY idx")
        self._check_rows(rows)
        idx = np.array([r[0] for r in rows], dtype=np.int64)
        out = Outcomes(np.array([r[1] for r in rows], dtype=np.int64), np.array([r[2] for r in rows], dtype=np.int64),
                       [bytes(r[3]) for r in rows], np.array([r[4] for r in rows], dtype=np.int64))
        return idx, out
