"""The SQLite success store: the target memory's record of validated successes.

The storage rule (the only way a row gets in): a RESULT event whose outcome is ``success``,
whose postcondition was ``validated``, in state RUNNING, with learning on. Nothing from
DEGRADED, QUARANTINED, ROLLBACK or PAUSED is ever written. Every row carries the ``writer``
and ``seq`` of its audit record, so each row can be joined to the decision that allowed it.

Invariants:

- the database runs in WAL mode (readers never block the writer);
- rows wait in memory and are written in one transaction per batch: when ``batch_size`` rows
  wait, when a row's own timestamp is ``batch_seconds`` or more after the first waiting
  row's (event time: no clock is read), and on :meth:`flush`, :meth:`close` and
  :meth:`learning_success_rate`. A crash loses at most the waiting rows, whose decisions the
  audit log (the record of truth) still holds, and the next start rebuilds them from there
  (:meth:`repair`);
- a batch that fails (a full disk) is kept and retried with the next row, idempotently
  (``UNIQUE (writer, seq)``); at most ``MAX_PENDING_ROWS`` wait, the oldest beyond are
  dropped, and failures and drops are counted;
- ``successes`` rows are only appended (never updated or deleted), so its ``id`` grows with
  every commit. ``successes`` has no index by workflow: each row would dirty a random index
  page, and writing those pages cost ten times the row itself. The per-workflow reader,
  :meth:`learning_success_rate`, reads ``success_rollup`` instead: counts and confidence sums
  per workflow and artifact version of the rows up to ``success_rollup_mark.last_id``, folded
  in (in one write transaction) by the reader when it asks, so the writer pays nothing.
  Opening a store made by an earlier version drops that index (rows and columns unchanged).

A writer thread was tried: GIL hand-offs made each executor step slower than writing inline.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ..base._errors import InvalidInputError
from ..base._events import DecisionEvent, unwritable
from ..base._models import ExecutionState, Outcome
from ..semconv import EventKind
from ._repair import repair

__all__ = ["MAX_PENDING_ROWS", "SuccessStore", "rebuild_from_segments", "stores_success"]

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
DROP INDEX IF EXISTS successes_by_workflow;
"""
#: The per-workflow summary (see the module docstring); created again if a restored snapshot
#: predates it. Each fold appends one row per (workflow, version) it saw; readers add them up.
ROLLUP_SCHEMA = """
CREATE TABLE IF NOT EXISTS success_rollup (
    workflow_id TEXT NOT NULL,
    artifact_version TEXT,
    successes INTEGER NOT NULL,
    confidences INTEGER NOT NULL,
    confidence_sum REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS success_rollup_by_workflow ON success_rollup (workflow_id);
CREATE TABLE IF NOT EXISTS success_rollup_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_id INTEGER NOT NULL
);
"""
_COLUMNS = (
    "writer, seq, ts, workflow_id, step_id, confidence, second_best, duration_s,"
    " policy_version, artifact_version, trace_id, details"
)
#: Values per row, in the order of ``_COLUMNS``.
_WIDTH = 12
_PLACEHOLDERS = "(" + ",".join("?" * _WIDTH) + ")"
_INSERT = f"INSERT OR IGNORE INTO successes ({_COLUMNS}) VALUES {_PLACEHOLDERS}"
_MARK = "(SELECT coalesce(max(last_id), 0) FROM success_rollup_mark)"
_FOLD = (
    "INSERT INTO success_rollup"
    " (workflow_id, artifact_version, successes, confidences, confidence_sum)"
    " SELECT workflow_id, artifact_version, count(*), count(confidence), total(confidence)"
    f" FROM successes WHERE id > {_MARK} GROUP BY workflow_id, artifact_version"
)
_MOVE_MARK = (
    "INSERT OR REPLACE INTO success_rollup_mark (id, last_id)"
    f" SELECT 1, max(id) FROM successes WHERE id > {_MARK} HAVING count(*) > 0"
)
_RATES = (
    "SELECT artifact_version, sum(successes), sum(confidence_sum) / sum(confidences)"
    " FROM success_rollup WHERE workflow_id = ? GROUP BY artifact_version"
)

#: Bound for a missing value: SQLite stores a NaN as NULL, and the sqlite3 module binds a
#: float ten times faster than None (for None it first looks for an adapter, and finds none).
_NULL = float("nan")

_RESULT = EventKind.RESULT
_SUCCESS = Outcome.SUCCESS
_RUNNING = ExecutionState.RUNNING


def _details_text(details: Any) -> str:
    try:
        return orjson.dumps(details, default=str).decode()
    except TypeError as exc:  # JSON cannot hold them (huge ints, deep nesting): as text
        return orjson.dumps(unwritable(details, exc)).decode()


def stores_success(event: DecisionEvent) -> bool:
    """Return True when the storage rule admits the event into the success store."""
    return (
        event.kind is _RESULT
        and event.outcome is _SUCCESS
        and event.validated is True
        and event.trigger is None
        and event.state is _RUNNING
        and event.learning is True
    )


def _iso(ts: datetime | None) -> str:
    """Return ``ts.isoformat()`` ("" for no time)."""
    if ts is None:
        return ""
    if ts.tzinfo is UTC:  # orjson writes a UTC time as isoformat does, in a fifth of the time
        return orjson.dumps(ts)[1:-1].decode()
    return ts.isoformat()


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
                conn.executescript(SCHEMA + ROLLUP_SCHEMA)
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
    """An event sink that writes validated successes to ``<data_dir>/target_memory.sqlite``.

    A batch is ``batch_size`` rows, or fewer once a row comes ``batch_seconds`` of event time
    after the first waiting one (see the module docstring).
    """

    FILENAME = "target_memory.sqlite"

    def __init__(
        self,
        data_dir: Path,
        writer: str,
        batch_size: int = 512,
        batch_seconds: float = 1.0,
        mode: int | None = None,
    ) -> None:
        self.path = Path(data_dir) / self.FILENAME
        self.writer = writer
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.rows = 0
        self.write_errors = 0
        self.dropped = 0
        self._lock = threading.Lock()
        # The waiting rows, flat (``_WIDTH`` values a row): a full batch is bound as it is
        # to one multi-row INSERT, which costs about a third less than executemany per row.
        self._values: list[Any] = []
        self._due: datetime | None = None  # event time at which the waiting rows are written
        self._span = timedelta(seconds=batch_seconds)
        self._full = batch_size * _WIDTH
        try:
            self._conn = connect(self.path)
            if mode is not None:  # the database and its WAL files: what the policy says
                for path in (
                    self.path,
                    *(self.path.with_name(self.FILENAME + s) for s in ("-wal", "-shm")),
                ):
                    if path.exists() and path.stat().st_uid == os.getuid():
                        os.chmod(path, mode)
        except sqlite3.Error as exc:
            raise InvalidInputError(
                "data_dir", str(data_dir), f"must hold a writable success store {self.path} ({exc})"
            ) from exc
        self._insert_batch: str | None = None
        # SQLite binds at most SQLITE_LIMIT_VARIABLE_NUMBER values a statement (999 before
        # 3.32): batches that do not fit go through executemany.
        if self._full <= self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER):
            rows = ",".join([_PLACEHOLDERS] * batch_size)
            self._insert_batch = f"INSERT OR IGNORE INTO successes ({_COLUMNS}) VALUES {rows}"

    def emit(self, event: DecisionEvent) -> None:
        """Queue the event's row if the storage rule admits it; write a due batch."""
        self.emit_many((event,))

    def emit_many(self, events: Sequence[DecisionEvent]) -> None:
        """Queue the rows of the events the storage rule admits; write a due batch."""
        for event in events:
            # Only results carry an outcome: gates leave at the first test.
            if event.outcome is not _SUCCESS or not stores_success(event):
                continue
            ts = event.ts
            details = event.details
            conf, second, duration = event.confidence, event.second_best, event.duration_s
            policy, version, trace = event.policy_version, event.artifact_version, event.trace_id
            row = (
                self.writer,
                event.seq,
                _iso(ts),
                event.workflow_id,
                event.step_id,
                _NULL if conf is None else conf,
                _NULL if second is None else second,
                _NULL if duration is None else duration,
                _NULL if policy is None else policy,
                _NULL if version is None else version,
                _NULL if trace is None else trace,
                _details_text(details) if details else "{}",
            )
            with self._lock:
                values = self._values
                values += row
                due = self._due
                if due is None:
                    self._due = ts + self._span if ts else None
                    due = self._due
                if len(values) >= self._full or (ts and due and ts >= due):
                    self._write_batch()

    def _write_batch(self) -> None:
        """Write the waiting rows in one transaction; on failure keep them for the next try."""
        values = self._values
        if not values:
            return
        try:
            with self._conn:  # one transaction per batch (rolled back whole on failure)
                if len(values) == self._full and self._insert_batch is not None:
                    self._conn.execute(self._insert_batch, values)
                else:
                    self._conn.executemany(_INSERT, zip(*[iter(values)] * _WIDTH, strict=True))
        except sqlite3.Error:
            self.write_errors += 1
            overflow = len(values) // _WIDTH - MAX_PENDING_ROWS
            if overflow > 0:
                del values[: overflow * _WIDTH]
                self.dropped += overflow
            raise
        self.rows += len(values) // _WIDTH
        self._values = []
        self._due = None

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's SQLite connection, owned by the store: never close it. It is shared
        with the thread that writes batches, so hold :attr:`lock` while you use it (read a
        ``PRAGMA`` or a count, or limit it in a test: ``PRAGMA max_page_count`` is SQLite's own
        full disk)."""
        return self._conn

    @property
    def lock(self) -> threading.Lock:
        """The lock every use of :attr:`connection` takes (the store's writes take it too)."""
        return self._lock

    @property
    def pending(self) -> int:
        """Return how many rows wait to be written (the next batch, or a failed write's)."""
        return len(self._values) // _WIDTH

    def flush(self) -> None:
        """Commit the waiting rows now."""
        with self._lock:
            self._write_batch()

    def close(self) -> None:
        """Commit the waiting rows and close the connection."""
        with self._lock:
            try:
                self._write_batch()
            finally:
                self._conn.close()

    def repair(self, audit_dir: Path, only: Sequence[Path] | None = None) -> int:
        """Insert the validated successes dead writers' segments hold and the store lost.

        See :mod:`._repair`; returns how many rows were rebuilt.
        """
        with self._lock:
            self._write_batch()
            return repair(self._conn, _INSERT, audit_dir, exclude=self.writer, only=only)

    def learning_success_rate(self, workflow_id: str) -> dict[str, Any]:
        """Return the stored successes of a workflow per artifact version.

        Writes the waiting rows, folds every row not yet in ``success_rollup`` into it (the
        rows of every writer, in one write transaction, so no row is counted twice or
        missed), then reads the workflow's sums.
        """
        with self._lock:
            self._write_batch()
            conn = self._conn
            conn.executescript(ROLLUP_SCHEMA)
            with conn:  # the fold's first statement writes: it holds the write lock from the start
                conn.execute(_FOLD)
                conn.execute(_MOVE_MARK)
            rows = conn.execute(_RATES, (workflow_id,)).fetchall()
        return {str(v): {"successes": n, "mean_confidence": c} for v, n, c in rows}


def rebuild_from_segments(data_dir: Path, segments: Sequence[Path]) -> int:
    """Insert into ``data_dir``'s store the validated successes ``segments`` hold and it lacks.

    Compaction calls it before it takes closed segments away (see :mod:`._repair`); a
    directory without a store is left alone. Returns how many rows were rebuilt.
    """
    path = Path(data_dir) / SuccessStore.FILENAME
    if not path.is_file():
        return 0
    conn = connect(path)
    try:
        return repair(conn, _INSERT, Path(data_dir) / "audit", only=segments)
    finally:
        conn.close()
