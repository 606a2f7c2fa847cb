"""The SQLite success store: only validated RUNNING successes with learning on, each audited."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from autoheal_otel import AutoHealManager, ExecutionState, Outcome, StepResult
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
