"""Regression -> ROLLBACK end to end: simulated executor, real FAISS, audit log, versioned store."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoheal_otel import (
    AutoHealManager,
    ExecutionState,
    InvalidInputError,
    LearningFrozenError,
    Outcome,
)
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.sim import SimExecutor, SimWorkflow
from autoheal_otel.testing import FakeClock, InMemorySink

S = ExecutionState
WORKFLOW = SimWorkflow.of("invoice", "name", "amount", "date", "vendor", "submit", "confirm")


def build(tmp_path: Path) -> tuple[AutoHealManager, SimExecutor, InMemorySink, FakeClock]:
    clock = FakeClock()
    sink = InMemorySink()
    manager = AutoHealManager(data_dir=tmp_path, clock=clock, sinks=[sink])
    return manager, SimExecutor(manager, tmp_path, [WORKFLOW], seed=3), sink, clock


def successes(records: list) -> float:
    done = [r for r in records if r.allowed]
    return sum(r.outcome is Outcome.SUCCESS for r in done) / max(1, len(done))


def test_degraded_prototypes_are_rolled_back_automatically(tmp_path: Path) -> None:
    """Worse prototypes -> FAISS confidences drop -> success drops -> ROLLBACK -> restored."""
    manager, sim, sink, _ = build(tmp_path)
    before = sim.run("invoice", 4)
    assert successes(before) == 1.0
    good = sim.store.current()
    assert good is not None
    sim.degrade_prototypes(
        "invoice", fraction=0.5, noise=1.5, reason="learned from new screenshots"
    )
    worse = sim.run("invoice", 2)
    assert min(r.confidence or 1 for r in worse if r.allowed) < 0.75  # real FAISS scores dropped
    changes = [(e.previous_state, e.state, e.cause) for e in sink.transitions]
    assert (S.RUNNING, S.ROLLBACK, "regression") in changes
    assert (S.ROLLBACK, S.DEGRADED, "restore_ok") in changes
    assert sim.store.current().id == good.id  # type: ignore[union-attr]
    after = sim.run("invoice", 3)
    assert successes(after) == 1.0
    assert manager.get_mode("invoice") is S.RUNNING  # recovered after validated successes
    rollback = next(e for e in sink.transitions if e.state is S.ROLLBACK)
    evidence = rollback.details
    assert evidence["previous_version"] == "s000001" and evidence["active_version"] == "s000002"
    assert evidence["previous_executions"] == 24 and evidence["active_executions"] >= 10
    assert evidence["previous_rate"] == 1.0 and evidence["active_rate"] < 0.8
    assert evidence["p_value"] < 0.05
    manager.close()


def test_which_version_was_live_when_is_one_query(tmp_path: Path) -> None:
    """Every activation and rollback is recorded, so versions over time come from the log."""
    manager, sim, _, _ = build(tmp_path)
    sim.run("invoice", 4)
    sim.degrade_prototypes("invoice", fraction=0.5, noise=1.5, reason="learned")
    sim.run("invoice", 3)
    manager.close()
    with AuditAnalytics(tmp_path) as db:
        rows = db.sql(
            "SELECT artifact_version, message FROM audit WHERE kind = 'activation' ORDER BY ts, seq"
        )
        rates = {
            r["artifact_version"]: r for r in db.query("version_outcomes", workflow_id="invoice")
        }
    assert [r["artifact_version"] for r in rows] == ["s000001", "s000002", "s000001"]
    assert rates["s000001"]["successes"] == rates["s000001"]["executions"]


def test_learning_is_refused_unless_running(tmp_path: Path) -> None:
    """A snapshot while DEGRADED (learning frozen) or QUARANTINED raises, and nothing changes."""
    manager, sim, _, _ = build(tmp_path)
    manager.force_transition("invoice", S.DEGRADED, reason="careful")
    with pytest.raises(LearningFrozenError) as err:
        sim.degrade_prototypes("invoice", 0.5, 1.5, "learned")
    assert err.value.state == "degraded"
    assert [s.id for s in sim.store.list()] == [1]
    manager.close()


def test_operator_can_roll_back(tmp_path: Path) -> None:
    """force_transition(ROLLBACK) restores the known-good set and lands in DEGRADED."""
    manager, sim, sink, _ = build(tmp_path)
    sim.run("invoice", 1)
    sim.degrade_prototypes("invoice", 0.2, 1.5, "learned")
    info = manager.force_transition("invoice", S.ROLLBACK, reason="bad screenshots", actor="ops")
    assert info.state is S.DEGRADED
    assert sim.store.current().id == 1  # type: ignore[union-attr]
    assert [(e.state, e.cause) for e in sink.transitions][-2:] == [
        (S.ROLLBACK, "operator"),
        (S.DEGRADED, "restore_ok"),
    ]
    manager.close()


def test_failed_restore_pauses_the_workflow(tmp_path: Path) -> None:
    """If the restore fails, ROLLBACK goes to PAUSED and says why."""
    manager, sim, sink, _ = build(tmp_path)
    sim.run("invoice", 1)
    (tmp_path / "versions" / "KNOWN_GOOD").write_text("99")  # a known-good set that is gone
    info = manager.force_transition("invoice", S.ROLLBACK, reason="try", actor="ops")
    assert info.state is S.PAUSED
    assert "restore failed" in sink.transitions[-1].message
    manager.close()


def test_rollback_without_store_is_refused(tmp_path: Path) -> None:
    """Without a store there is nothing to roll back: a clear error, no transition."""
    manager = AutoHealManager(clock=FakeClock())
    with pytest.raises(InvalidInputError, match="versioned store"):
        manager.force_transition("w", S.ROLLBACK, reason="x")
    assert manager.get_mode("w") is S.RUNNING


def test_version_counts_survive_a_restart(tmp_path: Path) -> None:
    """The regression rule's counts per version are rebuilt from the log on restart."""
    manager, sim, _, clock = build(tmp_path)
    sim.run("invoice", 4)
    sim.degrade_prototypes("invoice", fraction=0.5, noise=1.5, reason="learned")
    sim.run_step("invoice", WORKFLOW.steps[0])
    manager.close()
    again = AutoHealManager(data_dir=tmp_path, clock=clock)
    sim2 = SimExecutor(again, tmp_path, [WORKFLOW], seed=3)
    status = again.get_status_report().workflows["invoice"]
    assert list(status.versions) == ["s000001", "s000002"]
    assert (status.versions["s000001"], status.version_successes["s000001"]) == (24, 24)
    sim2.run("invoice", 2)
    assert sim2.store.current().id == 1  # type: ignore[union-attr]
    again.close()
