"""The SQLite success store: the target memory's record of validated successes.

The storage rule (the only way a row gets in): a RESULT event whose outcome is ``success``,
whose postcondition was ``validated``, in state RUNNING, with learning on. Nothing from
DEGRADED, QUARANTINED, ROLLBACK or PAUSED is ever written. Every row carries the ``writer``
and ``seq`` of its audit record, so each row can be joined to the decision that allowed it.

Invariants: the database runs in WAL mode (readers never block the writer); rows are written
in batches of ``batch_size`` (one transaction each: about 3 us a row instead of a commit per
row) and on :meth:`flush` / :meth:`close`. A batch that fails (a full disk) is kept and
retried with the next write, idempotently (``UNIQUE (writer, seq)``); at most
``MAX_PENDING_ROWS`` wait, the oldest beyond are dropped, and failures and drops are counted. The audit log is the record of truth, so a crash can
lose only rows whose decisions the log still holds. (A writer thread was tried: GIL hand-offs
made each executor step slower than writing inline.)
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from .._errors import InvalidInputError
from .._events import DecisionEvent
from .._models import ExecutionState, Outcome
from ..semconv import EventKind

__all__ = ["MAX_PENDING_ROWS", "SuccessStore", "stores_success"]

#: Rows kept for a retry while writes fail; older ones are dropped (and counted) beyond it.
MAX_PENDING_ROWS = 100_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS successes (
    id INTEGER PRIMARY KEY,
    writer TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    confidence REAL,
    second_best REAL,
    duration_s REAL,
    policy_version TEXT,
    artifact_version TEXT,
    trace_id TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    UNIQUE (writer, seq)
);
CREATE INDEX IF NOT EXISTS successes_by_workflow ON successes (workflow_id, ts);
"""
_INSERT = (
    "INSERT OR IGNORE INTO successes (writer, seq, ts, workflow_id, step_id, confidence,"
    " second_best, duration_s, policy_version, artifact_version, trace_id, details)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)


def stores_success(event: DecisionEvent) -> bool:
    """Return True when the storage rule admits the event into the success store."""
    return (
        event.kind is EventKind.RESULT
        and event.outcome is Outcome.SUCCESS
        and event.validated is True
        and event.trigger is None
        and event.state is ExecutionState.RUNNING
        and event.learning is True
    )


#: Seconds a connection waits for another process's lock (SQLite waits inside its busy
#: handler; switching a new database to WAL takes an exclusive lock for a moment).
BUSY_TIMEOUT_S = 30.0


def connect(path: Path) -> sqlite3.Connection:
    """Open the store (creating its schema) in WAL mode.

    The busy timeout is set when the connection opens, before the first statement, so
    processes opening a new database at once wait for each other's WAL switch instead of
    failing with "database is locked".
    """
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    try:
        conn.execute("PRAGMA synchronous=NORMAL")
        # Switching to WAL can fail at once with "database is locked" while another process
        # switches too (SQLite skips the busy handler there to avoid a deadlock): processes
        # take turns on a lock of the folder, held for the few milliseconds of the set-up.
        with _folder_lock(path.parent):
            conn.execute("PRAGMA journal_mode=WAL")
            with conn:
                conn.executescript(SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on a folder (waits in the kernel, never polls)."""
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class SuccessStore:
    """An event sink that writes validated successes to ``<data_dir>/target_memory.sqlite``."""

    FILENAME = "target_memory.sqlite"

    def __init__(self, data_dir: Path, writer: str, batch_size: int = 64) -> None:
        self.path = Path(data_dir) / self.FILENAME
        self.writer = writer
        self.batch_size = batch_size
        self.rows = 0
        self.write_errors = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._batch: list[tuple[Any, ...]] = []
        try:
            self._conn = connect(self.path)
        except sqlite3.Error as exc:
            raise InvalidInputError(
                "data_dir", str(data_dir), f"must hold a writable success store {self.path} ({exc})"
            ) from exc

    def emit(self, event: DecisionEvent) -> None:
        """Queue the event's row if the storage rule admits it; write a full batch."""
        if not stores_success(event):
            return
        row = (
            self.writer,
            event.seq,
            event.ts.isoformat() if event.ts else "",
            event.workflow_id,
            event.step_id,
            event.confidence,
            event.second_best,
            event.duration_s,
            event.policy_version,
            event.artifact_version,
            event.trace_id,
            orjson.dumps(event.details, default=str).decode(),
        )
        with self._lock:
            self._batch.append(row)
            if len(self._batch) >= self.batch_size:
                self._write_batch()

    def _write_batch(self) -> None:
        """Write the queued rows in one transaction; on failure keep them for the next try."""
        if not self._batch:
            return
        try:
            with self._conn:  # one transaction per batch (rolled back whole on failure)
                self._conn.executemany(_INSERT, self._batch)
        except sqlite3.Error:
            self.write_errors += 1
            overflow = len(self._batch) - MAX_PENDING_ROWS
            if overflow > 0:
                del self._batch[:overflow]
                self.dropped += overflow
            raise
        self.rows += len(self._batch)
        self._batch = []

    @property
    def pending(self) -> int:
        """Return how many rows wait for a retry after a failed write."""
        return len(self._batch)

    def flush(self) -> None:
        """Commit the queued rows now."""
        with self._lock:
            self._write_batch()

    def close(self) -> None:
        """Commit the queued rows and close the connection."""
        with self._lock:
            try:
                self._write_batch()
            finally:
                self._conn.close()

    def learning_success_rate(self, workflow_id: str) -> dict[str, Any]:
        """Return the stored successes of a workflow per artifact version."""
        with self._lock:
            self._write_batch()
            rows = self._conn.execute(
                "SELECT artifact_version, COUNT(*), AVG(confidence) FROM successes"
                " WHERE workflow_id = ? GROUP BY artifact_version",
                (workflow_id,),
            ).fetchall()
        return {str(v): {"successes": n, "mean_confidence": c} for v, n, c in rows}
