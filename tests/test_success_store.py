"""The SQLite success store: only validated RUNNING successes with learning on, each audited."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from autoheal_otel import AutoHealManager, ExecutionState, Outcome, StepResult
from autoheal_otel.base._events import DecisionEvent
from autoheal_otel.base._models import Trigger
from autoheal_otel.semconv import EventKind
from autoheal_otel.sinks.sqlite import SuccessStore
from autoheal_otel.testing import FakeClock

from .conftest import OK, POST, TNF, policy_with
from .test_audit_log import lines


def rows(data_dir: Path) -> list[tuple[str, str, int, str]]:
    with sqlite3.connect(data_dir / "target_memory.sqlite") as conn:
        return conn.execute(
            "SELECT workflow_id, step_id, seq, writer FROM successes ORDER BY id"
        ).fetchall()


def test_storage_rule(tmp_path: Path, clock: FakeClock) -> None:
    """Validated RUNNING successes are stored; unvalidated, degraded and blocked ones never."""
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        m.on_step_result("w", "a", OK)  # stored
        m.on_step_result(
            "w", "a", StepResult(outcome=Outcome.SUCCESS, confidence=0.9)
        )  # unvalidated
        m.on_step_result(
            "w", "a", StepResult(outcome=Outcome.SUCCESS, confidence=0.5, validated=True)
        )  # low
        for _ in range(3):
            m.on_step_result("w", "b", TNF)
        assert m.get_mode("w") is ExecutionState.DEGRADED
        m.on_step_result("w", "b", OK)  # degraded: learning frozen
        m.force_transition("w", ExecutionState.PAUSED, reason="maintenance")
        m.on_step_result("w", "b", OK)  # paused
        m.force_transition("w", ExecutionState.RUNNING, reason="done")
        m.on_step_result("w", "c", OK)  # stored
    stored = rows(tmp_path)
    assert [(wid, step) for wid, step, _, _ in stored] == [("w", "a"), ("w", "c")]
    records = {(r["writer"], r["seq"]): r for r in lines(tmp_path)}
    for _, step, seq, writer in stored:
        record = records[(writer, seq)]
        assert record["kind"] == "result" and record["step_id"] == step
        assert record["state"] == "running" and record["validated"] and record["learning"]


def test_degraded_with_learning_unfrozen_still_not_stored(tmp_path: Path, clock: FakeClock) -> None:
    """Only RUNNING writes, even when a policy lets DEGRADED learn."""
    policy = policy_with(degraded={"freeze_learning": False})
    with AutoHealManager(policy=policy, data_dir=tmp_path, clock=clock) as m:
        m.force_transition("w", ExecutionState.DEGRADED, reason="careful")
        assert m.get_effective_settings("w").learning_enabled
        m.on_step_result("w", "a", OK)
    assert rows(tmp_path) == []


def test_wal_mode_and_concurrent_reader(tmp_path: Path, clock: FakeClock) -> None:
    """WAL mode: a reader holding a transaction neither blocks the batch write nor sees it early."""
    m = AutoHealManager(data_dir=tmp_path, clock=clock)
    reader = sqlite3.connect(tmp_path / "target_memory.sqlite")
    assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM successes").fetchone()[0] == 0
    for _ in range(5):
        m.on_step_result("w", "s", OK)
    m.flush()  # rows are written in batches; flush writes the partial one
    assert reader.execute("SELECT count(*) FROM successes").fetchone()[0] == 0  # its snapshot
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM successes").fetchone()[0] == 5
    reader.close()
    m.on_step_result("w", "s", POST)
    m.close()
    assert len(rows(tmp_path)) == 5


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def result(seq: int, seconds: float = 0.0, **fields: Any) -> DecisionEvent:
    """A result the storage rule admits, unless ``fields`` say otherwise."""
    values: dict[str, Any] = {
        "workflow_id": "w",
        "step_id": "s",
        "state": ExecutionState.RUNNING,
        "outcome": Outcome.SUCCESS,
        "validated": True,
        "learning": True,
        "confidence": 0.9,
        "artifact_version": "v1",
        **fields,
    }
    values.setdefault("ts", T0 + timedelta(seconds=seconds))
    return DecisionEvent(seq=seq, kind=EventKind.RESULT, **values)


def stored(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / SuccessStore.FILENAME) as conn:
        return int(conn.execute("SELECT count(*) FROM successes").fetchone()[0])


def test_batches_are_bounded_by_size_and_by_event_time(tmp_path: Path) -> None:
    """A batch is written when it is full or when a row comes batch_seconds (of its own
    timestamps, no clock) after the first waiting one; flush writes what waits."""
    store = SuccessStore(tmp_path, "w1", batch_size=4, batch_seconds=1.0)
    for seq, at in enumerate([0.0, 0.1, 0.2]):
        store.emit(result(seq, at))
    assert (stored(tmp_path), store.pending) == (0, 3)
    store.emit(result(3, 0.3))  # the fourth row: full
    assert (stored(tmp_path), store.pending) == (4, 0)
    store.emit(result(4, 10.0))  # due at 11.0
    store.emit(result(5, 10.999))
    assert (stored(tmp_path), store.pending) == (4, 2)
    store.emit(result(6, 11.0))
    assert (stored(tmp_path), store.pending) == (7, 0)
    store.emit(result(7, 11.5))
    store.flush()
    assert (stored(tmp_path), store.pending, store.rows) == (8, 0, 8)
    store.close()


def test_emit_many_stores_what_the_rule_admits_as_before(tmp_path: Path) -> None:
    """One drain's events at once: gates and refused results leave no row; a row holds the
    event's fields (NULL where missing), its time in isoformat ("" without one) and its details
    as JSON ('{}' when empty)."""
    store = SuccessStore(tmp_path, "w1")
    gate = DecisionEvent(ts=T0, seq=1, kind=EventKind.GATE, workflow_id="w", allowed=True)
    when = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    store.emit_many(
        [
            gate,
            result(2, 0.5, trace_id="ab" * 16, second_best=0.2, duration_s=0.25),
            result(3, validated=None),
            result(4, state=ExecutionState.DEGRADED),
            result(5, trigger=Trigger.TARGET_NOT_FOUND),
            result(6, learning=False),
            result(7, outcome=Outcome.ERROR),
            result(8, 1.0, details={"why": "x", "at": when, "n": [1, 2]}),
            result(9, ts=datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))),
            result(10, ts=None, confidence=None, policy_version=None, artifact_version="0"),
        ]
    )
    store.close()
    with sqlite3.connect(tmp_path / SuccessStore.FILENAME) as conn:
        got = conn.execute(
            "SELECT writer, seq, ts, workflow_id, step_id, confidence, second_best, duration_s,"
            " policy_version, artifact_version, trace_id, details FROM successes ORDER BY id"
        ).fetchall()
    assert got == [
        ("w1", 2, (T0 + timedelta(seconds=0.5)).isoformat(), "w", "s", 0.9, 0.2, 0.25, "", "v1",
         "ab" * 16, "{}"),
        ("w1", 8, (T0 + timedelta(seconds=1)).isoformat(), "w", "s", 0.9, None, None, "", "v1",
         None, orjson.dumps({"why": "x", "at": when, "n": [1, 2]}, default=str).decode()),
        ("w1", 9, "2026-01-01T02:00:00+02:00", "w", "s", 0.9, None, None, "", "v1", None, "{}"),
        ("w1", 10, "", "w", "s", None, None, None, None, "0", None, "{}"),
    ]  # fmt: skip


def _direct_rates(data_dir: Path, workflow_id: str) -> dict[str, tuple[int, float | None]]:
    with sqlite3.connect(data_dir / SuccessStore.FILENAME) as conn:
        rows = conn.execute(
            "SELECT artifact_version, count(*), avg(confidence) FROM successes"
            " WHERE workflow_id = ? GROUP BY artifact_version",
            (workflow_id,),
        ).fetchall()
    return {str(v): (n, c) for v, n, c in rows}


def _rates(store: SuccessStore, workflow_id: str) -> dict[str, tuple[int, float | None]]:
    rates = store.learning_success_rate(workflow_id)
    return {v: (r["successes"], r["mean_confidence"]) for v, r in rates.items()}


def _same(
    got: dict[str, tuple[int, float | None]], want: dict[str, tuple[int, float | None]]
) -> None:
    assert got.keys() == want.keys()
    for version, (n, mean) in want.items():
        assert got[version][0] == n
        assert got[version][1] == (None if mean is None else pytest.approx(mean))


def test_learning_success_rate_counts_every_writer_once(tmp_path: Path) -> None:
    """The rollup the reader folds in agrees with a GROUP BY over the rows, across writers,
    across reads between batches, for missing versions and missing confidences."""
    one = SuccessStore(tmp_path, "w1", batch_size=3)
    two = SuccessStore(tmp_path, "w2", batch_size=5)
    shapes: list[dict[str, Any]] = [
        {"workflow_id": "a", "artifact_version": "v1", "confidence": 0.91},
        {"workflow_id": "a", "artifact_version": "v2", "confidence": 0.72},
        {"workflow_id": "b", "artifact_version": None, "confidence": 0.8},
        {"workflow_id": "a", "artifact_version": "v2", "confidence": None},
        {"workflow_id": "b", "artifact_version": "v1", "confidence": None},
    ]
    for seq in range(40):
        (one if seq % 3 else two).emit(result(seq, **shapes[seq % len(shapes)]))
        if seq in (7, 19, 20):  # reads in between: each folds only rows not yet folded
            for wf in ("a", "b", "c"):
                _same(_rates(one, wf), _direct_rates(tmp_path, wf))
    two.flush()
    for wf in ("a", "b", "c"):
        _same(_rates(one, wf), _direct_rates(tmp_path, wf))
        _same(_rates(two, wf), _direct_rates(tmp_path, wf))
    assert _rates(one, "b")["None"] == (8, pytest.approx(0.8))
    assert _rates(one, "b")["v1"] == (8, None)
    assert _rates(one, "c") == {}
    one.close()
    two.close()


def test_retried_rows_are_stored_and_counted_once(tmp_path: Path) -> None:
    """Rows written again (a retry after an unknown outcome) are ignored by the table and so
    by the rollup."""
    first = SuccessStore(tmp_path, "w1")
    for seq in range(3):
        first.emit(result(seq))
    first.close()
    again = SuccessStore(tmp_path, "w1")
    for seq in range(1, 5):
        again.emit(result(seq))
    assert _rates(again, "w") == {"v1": (5, pytest.approx(0.9))}
    again.close()
    assert stored(tmp_path) == 5


OLD_SCHEMA = """
CREATE TABLE successes (
    id INTEGER PRIMARY KEY, writer TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL,
    workflow_id TEXT NOT NULL, step_id TEXT NOT NULL, confidence REAL, second_best REAL,
    duration_s REAL, policy_version TEXT, artifact_version TEXT, trace_id TEXT,
    details TEXT NOT NULL DEFAULT '{}', UNIQUE (writer, seq)
);
CREATE INDEX successes_by_workflow ON successes (workflow_id, ts);
INSERT INTO successes (writer, seq, ts, workflow_id, step_id, confidence, artifact_version)
VALUES ('old', 1, '2025-01-01T00:00:00+00:00', 'w', 's', 0.5, 'v0'),
       ('old', 2, '2025-01-01T00:00:01+00:00', 'w', 's', 0.7, 'v0');
"""


def test_a_store_of_an_earlier_version_opens_and_counts_its_rows(tmp_path: Path) -> None:
    """An earlier version's database keeps its rows; its per-workflow index (which made every
    write dirty random pages) goes; its rows count in the rollup."""
    with sqlite3.connect(tmp_path / SuccessStore.FILENAME) as conn:
        conn.executescript(OLD_SCHEMA)
    store = SuccessStore(tmp_path, "w1")
    store.emit(result(1))
    assert _rates(store, "w") == {"v0": (2, pytest.approx(0.6)), "v1": (1, pytest.approx(0.9))}
    store.close()
    with sqlite3.connect(tmp_path / SuccessStore.FILENAME) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "successes_by_workflow" not in indexes
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert stored(tmp_path) == 3


def test_rollup_lost_to_an_older_snapshot_is_rebuilt(tmp_path: Path) -> None:
    """A restored snapshot taken before the rollup existed has no rollup tables: the next read
    creates them and folds every row."""
    store = SuccessStore(tmp_path, "w1")
    for seq in range(4):
        store.emit(result(seq))
    assert _rates(store, "w") == {"v1": (4, pytest.approx(0.9))}
    with sqlite3.connect(tmp_path / SuccessStore.FILENAME) as conn:
        conn.executescript("DROP TABLE success_rollup; DROP TABLE success_rollup_mark;")
    store.emit(result(4))
    assert _rates(store, "w") == {"v1": (5, pytest.approx(0.9))}
    store.close()


def test_batches_too_large_for_one_statement_are_still_written(tmp_path: Path) -> None:
    """A full batch binds 12 values a row in one statement; a batch beyond SQLite's limit of
    bound values is written row by row instead of failing."""
    probe = sqlite3.connect(":memory:")
    limit = probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    probe.close()
    size = limit // 12 + 1
    store = SuccessStore(tmp_path, "w1", batch_size=size)
    store.emit_many([result(seq) for seq in range(size)])
    assert (store.write_errors, store.pending, stored(tmp_path)) == (0, 0, size)
    store.close()
