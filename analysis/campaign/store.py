"""Durable campaign results: one SQLite file per campaign, written as faults complete.

Layout (schema 1)::

    meta(key, value)           JSON values: what the campaign is (model hash, data digest, fault model,
                               seed, sample size, plan digest, ...) and how it was created (code version)
    faults(idx, layer, slot, neuron, copy, mask, kind, mode)   the sampled faults, written once at creation
    results(idx, changed, correct, digest, how, session) one row per finished fault (idx is the key)
    sessions(id, started, finished, code_version, host, pid, backend, scheduler, done)

Durability: WAL journal, ``synchronous=FULL``, one transaction per chunk of faults. A chunk is either
entirely in the file or not at all, whatever kills the process (Ctrl-C, ``kill -9``, power loss), so a
resumed campaign recomputes exactly the missing faults; ``idx`` is the primary key, so nothing can be
counted twice. A sidecar lock (``<file>.lock``, ``flock``) stops two processes from running the same
campaign at once; the kernel releases it when the holder dies.

A store refuses to be opened for a campaign whose configuration differs from the one it was created for
(another model, data set, fault model, seed or sample size): :class:`resilq.errors.MismatchError`.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import FormatError, MismatchError
from .engine import Outcomes
from .sampling import FaultSample

SCHEMA = 1
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
                     session INTEGER REFERENCES sessions(id));
"""


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
    """One campaign's SQLite file. Use :meth:`create_or_open`; close with :meth:`close` or ``with``."""

    def __init__(self, path: str | os.PathLike, *, lock: bool = True):
        self.path = Path(path)
        self._lock_fd: int | None = None
        if lock:
            self._acquire_lock()
        try:
            self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=60)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            self._release_lock()
            raise FormatError(f"{self.path}: not a resilq campaign database ({exc})") from None
        self.session: int | None = None

    # ---------------------------------------------------------------------------------------------- lifecycle
    @classmethod
    def create_or_open(cls, path: str | os.PathLike, meta: Mapping[str, Any], sample: FaultSample) -> CampaignStore:
        """Open ``path`` for the campaign described by ``meta``/``sample``, creating it if it does not exist."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        store = cls(path)
        try:
            if not store._has_schema():
                store._create(meta, sample)
            else:
                store.check_identity(meta)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_existing(cls, path: str | os.PathLike) -> CampaignStore:
        """Open a finished or partial campaign read-only-ish (no lock) for reporting."""
        path = Path(path)
        if not path.is_file():
            raise FormatError(f"{path}: no such campaign database")
        store = cls(path, lock=False)
        if not store._has_schema():
            store.close()
            raise FormatError(f"{path}: not a resilq campaign database (no campaign tables)")
        return store

    def close(self) -> None:
        if getattr(self, "db", None) is not None:
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

    def _create(self, meta: Mapping[str, Any], sample: FaultSample) -> None:
        rows = zip(range(len(sample)), *(a.tolist() for a in (sample.layer, sample.slot, sample.neuron, sample.copy,
                                                               sample.mask, sample.kind)), [int(sample.mode)] * len(sample))
        full = {"schema": SCHEMA, "code_version": code_version(), "created": time.time(), **meta}
        with self._transaction():
            for statement in _TABLES.strip().split(";"):
                if statement.strip():
                    self.db.execute(statement)
            self.db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in full.items()])
            self.db.executemany("INSERT INTO faults VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def _transaction(self):
        store = self

        class _Txn:
            def __enter__(self):
                if store.db.in_transaction:  # left open by an interrupt between BEGIN and COMMIT: discard it
                    store.db.execute("ROLLBACK")
                store.db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, *rest):
                store.db.execute("COMMIT" if exc_type is None else "ROLLBACK")

        return _Txn()

    # ---------------------------------------------------------------------------------------------- metadata
    @property
    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}

    def check_identity(self, meta: Mapping[str, Any]) -> None:
        """Raise :class:`MismatchError` naming every difference between this store's campaign and ``meta``."""
        have = self.meta
        if have.get("schema") != SCHEMA:
            raise FormatError(f"{self.path}: campaign schema {have.get('schema')} (this resilq reads {SCHEMA})")
        diffs = [f"{k}: stored {have.get(k)!r}, requested {meta.get(k)!r}" for k in IDENTITY_KEYS
                 if k in meta and have.get(k) != meta.get(k)]
        if diffs:
            raise MismatchError(f"{self.path} holds a different campaign; refusing to append to it "
                                f"(use another --out file): " + "; ".join(diffs))

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
        cur = self.db.execute("SELECT * FROM sessions ORDER BY id")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row)) for row in cur]

    # ---------------------------------------------------------------------------------------------- results
    def sample(self) -> FaultSample:
        rows = np.array(self.db.execute("SELECT idx, layer, slot, neuron, copy, mask, kind, mode FROM faults "
                                        "ORDER BY idx").fetchall(), dtype=np.int64).reshape(-1, 8)
        if rows.size and not np.array_equal(rows[:, 0], np.arange(rows.shape[0])):
            raise FormatError(f"{self.path}: fault table is not numbered 0..n-1")
        from ..arith import FaultMode

        mode = FaultMode(int(rows[0, 7])) if rows.size else FaultMode.FLIP
        meta = self.meta  # lane / weight / ber campaigns: the kind tells how to read the columns (campaign.kinds)
        return FaultSample(rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5], rows[:, 6], mode,
                           int(meta.get("population", rows.shape[0])), meta.get("fault_kind", "output"),
                           meta.get("kind_params"))

    def n_faults(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM faults").fetchone()[0])

    def n_done(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def pending(self) -> np.ndarray:
        """Fault numbers without a result, in order."""
        rows = self.db.execute("SELECT idx FROM faults WHERE idx NOT IN (SELECT idx FROM results) ORDER BY idx")
        return np.array([r[0] for r in rows], dtype=np.int64)

    def write(self, idx: Sequence[int], outcomes: Outcomes) -> None:
        """Record the outcomes of faults ``idx`` in one transaction (all or nothing)."""
        if len(idx) != len(outcomes):
            raise ValueError(f"{len(idx)} fault numbers for {len(outcomes)} outcomes")
        rows = [(int(i), int(c), int(k), sqlite3.Binary(d), int(h), self.session)
                for i, c, k, d, h in zip(idx, outcomes.changed, outcomes.correct, outcomes.digest, outcomes.how)]
        with self._transaction():
            self.db.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?)", rows)

    def results(self) -> tuple[np.ndarray, Outcomes]:
        """``(idx, outcomes)`` of every finished fault, in fault order."""
        rows = self.db.execute("SELECT idx, changed, correct, digest, how FROM results ORDER BY idx").fetchall()
        idx = np.array([r[0] for r in rows], dtype=np.int64)
        out = Outcomes(np.array([r[1] for r in rows], dtype=np.int64), np.array([r[2] for r in rows], dtype=np.int64),
                       [bytes(r[3]) for r in rows], np.array([r[4] for r in rows], dtype=np.int64))
        return idx, out
