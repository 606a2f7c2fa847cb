"""The SQLite success store: the target memory's record of validated successes.

The storage rule (the only way a row gets in): a RESULT event whose outcome is ``success``,
whose postcondition was ``validated``, in state RUNNING, with learning on. Nothing from
DEGRADED, QUARANTINED, ROLLBACK or PAUSED is ever written. Every row carries the ``writer``
and ``seq`` of its audit record, so each row can be joined to the decision that allowed it.
The database runs in WAL mode: readers never block the writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from .._events import DecisionEvent
from .._models import ExecutionState, Outcome
from .._semconv import EventKind

__all__ = ["SuccessStore", "stores_success"]

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


class SuccessStore:
    """An event sink that writes validated successes to ``<data_dir>/target_memory.sqlite``."""

    FILENAME = "target_memory.sqlite"

    def __init__(self, data_dir: Path, writer: str) -> None:
        self.path = Path(data_dir) / self.FILENAME
        self.writer = writer
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(SCHEMA)
        self.rows = 0

    def emit(self, event: DecisionEvent) -> None:
        """Insert the event if the storage rule admits it."""
        if not stores_success(event):
            return
        record = event.to_record()
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO successes (writer, seq, ts, workflow_id, step_id,"
                " confidence, second_best, duration_s, policy_version, artifact_version,"
                " trace_id, details) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    self.writer,
                    event.seq,
                    record["ts"],
                    event.workflow_id,
                    event.step_id,
                    event.confidence,
                    event.second_best,
                    event.duration_s,
                    event.policy_version,
                    event.artifact_version,
                    record["trace_id"],
                    json.dumps(record["details"], default=str),
                ),
            )
            self.rows += 1

    def flush(self) -> None:
        """Autocommit mode: every insert is already committed."""

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def learning_success_rate(self, workflow_id: str) -> dict[str, Any]:
        """Return the stored successes of a workflow per artifact version."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT artifact_version, COUNT(*), AVG(confidence) FROM successes"
                " WHERE workflow_id = ? GROUP BY artifact_version",
                (workflow_id,),
            ).fetchall()
        return {str(v): {"successes": n, "mean_confidence": c} for v, n, c in rows}
