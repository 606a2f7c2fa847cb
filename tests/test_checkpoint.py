"""Checkpoints: a machine restored from one decides every later input as the original does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from autoheal_otel import AutoHealManager, ExecutionState, Outcome, PolicyConfig, StepResult
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.analytics.replay import replay
from autoheal_otel.core._ledger import NO_TRACE, At
from autoheal_otel.core._machine import Machine
from autoheal_otel.semconv import Reason
from autoheal_otel.testing import FakeClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = PolicyConfig.from_dict(
    {
        "breakers": {
            "step": {"consecutive_target_not_found": 2, "window_failure_threshold": 4},
            "workflow": {"failure_threshold": 4, "window_seconds": 30},
            "global": {"failure_threshold": 7, "window_seconds": 40,
                       "quarantined_workflows_threshold": 2},
        },
        "degraded": {"recovery_successes": 2},
        "quarantine": {"probe_enabled": True, "probe_cooldown_seconds": 10,
                       "probe_timeout_seconds": 5},
        "calibration": {"enabled": True, "window": 5, "min_samples": 2},
    }
)  # fmt: skip

inputs = st.lists(
    st.one_of(
        st.tuples(
            st.just("step"),
            st.sampled_from(["a", "a", "b", "c"]),
            st.sampled_from(["s1", "s2"]),
            st.sampled_from([Outcome.SUCCESS] * 5 + [Outcome.TARGET_NOT_FOUND] * 3 + list(Outcome)),
            st.sampled_from([None, 0.5, 0.72, 0.9, 0.99]),
            st.sampled_from([True, True, False]),
        ),
        st.tuples(st.just("operator"), st.sampled_from(["a", "b"]),
                  st.sampled_from([ExecutionState.RUNNING, ExecutionState.QUARANTINED])),
        st.tuples(st.just("resume")),
    ),
    min_size=1,
    max_size=60,
)  # fmt: skip


def _feed(
    machine: Machine, item: tuple[Any, ...], now: float, shift: float = 0.0
) -> list[tuple[Any, ...]]:
    """Feed one input at ``now`` on the machine's clock, which reads ``shift`` more than T0's."""
    ts = T0 + timedelta(seconds=now - shift)
    events: list[Any] = []
    if item[0] == "step":
        _, wid, step, outcome, confidence, validated = item
        allowed, _ = machine.gate(wid, step, now, ts, NO_TRACE, events)
        if allowed:
            result = StepResult(outcome=outcome, confidence=confidence, validated=validated,
                                details={"method": "faiss"})  # fmt: skip
            machine.result(wid, step, result, now, ts, NO_TRACE, events)
    elif item[0] == "operator":
        _, wid, target = item
        try:
            machine.operator(wid, target, "test", "tester", At(now, ts, NO_TRACE, events))
        except Exception as exc:  # an illegal edge: both machines must refuse it alike
            events.append(type(exc).__name__)
    else:
        machine.resume_all(ExecutionState.RUNNING, "test", "tester", At(now, ts, NO_TRACE, events))
    return [
        e if isinstance(e, str) else
        (e.kind, e.workflow_id, e.step_id, e.state, e.allowed, e.reason, e.cause,
         e.message, e.details if e.kind == "calibration" else None)
        for e in events
    ]  # fmt: skip


_DEGRADE_THEN_ONE_SUCCESS = [
    ("step", "a", "s1", Outcome.TARGET_NOT_FOUND, None, True),
    ("step", "a", "s1", Outcome.TARGET_NOT_FOUND, None, True),
    ("step", "a", "s1", Outcome.SUCCESS, 0.99, True),  # one of the two recovery needs
    ("step", "a", "s1", Outcome.SUCCESS, 0.99, True),
]


@settings(max_examples=300, deadline=None)
@example(plan=_DEGRADE_THEN_ONE_SUCCESS, cut=3, gaps=[0.5] * 60)
@given(
    plan=inputs,
    cut=st.integers(0, 60),
    gaps=st.lists(st.sampled_from([0.5, 3.0, 11.0]), min_size=60, max_size=60),
)
def test_a_restored_machine_decides_as_the_original(plan, cut, gaps) -> None:  # type: ignore[no-untyped-def]
    """Checkpoint anywhere (JSON round trip included), restore onto another clock, go on."""
    original = Machine(POLICY, "w1", (0.0, T0))
    now = 0.0
    cut = min(cut, len(plan))
    for i, item in enumerate(plan[:cut]):
        now += gaps[i]
        _feed(original, item, now)
    data = json.loads(json.dumps(original.checkpoint(now, T0 + timedelta(seconds=now))))
    shift = 1000.0  # the restored machine's clock reads another number at the same instant
    restored = Machine(PolicyConfig(), "w2", (shift, T0))
    restored.restore_checkpoint(data, now + shift)
    assert restored.checkpoint(now + shift, T0 + timedelta(seconds=now)) == data
    for i, item in enumerate(plan[cut:], start=cut):
        now += gaps[i]
        assert _feed(original, item, now) == _feed(restored, item, now + shift, shift)
        wall = T0 + timedelta(seconds=now)
        # Every part of the state, not only what the next decision happened to read.
        assert original.checkpoint(now, wall) == restored.checkpoint(now + shift, wall)
    assert {w: wf.state for w, wf in original.view.workflows.items()} == {
        w: wf.state for w, wf in restored.view.workflows.items()
    }
    assert original.view.glob.paused == restored.view.glob.paused


def _steps(manager: Any, clock: Any, plan: list[tuple[str, str, Outcome]]) -> None:
    for workflow, step, outcome in plan:
        clock.advance(7)
        if manager.should_execute_step(workflow, step)[0]:
            manager.on_step_result(
                workflow, step, StepResult(outcome=outcome, validated=True, confidence=0.9)
            )


HISTORY = (
    [
        ("invoice", "submit", Outcome.TARGET_NOT_FOUND),
        ("invoice", "submit", Outcome.TARGET_NOT_FOUND),
        ("payroll", "pay", Outcome.POSTCONDITION_FAILED),
        ("invoice", "submit", Outcome.SUCCESS),
    ]
    * 3
    + [("payroll", "pay", Outcome.POSTCONDITION_FAILED)] * 4
    + [
        ("invoice", "submit", Outcome.SUCCESS),
        ("shipping", "ship", Outcome.TARGET_NOT_FOUND),
    ]
    * 4
)


def test_a_log_whose_head_was_deleted_replays_from_its_checkpoint(tmp_path: Path) -> None:
    """Delete every record before a checkpoint: replay starts there and matches the rest;
    with no checkpoint after the cut it says so instead of claiming a match."""
    clock = FakeClock()
    with AutoHealManager(POLICY, tmp_path, clock=clock) as manager:
        _steps(manager, clock, HISTORY[:9])
        manager.checkpoint()
        _steps(manager, clock, HISTORY[9:])
    (segment,) = sorted((tmp_path / "audit").glob("*.jsonl"))
    lines = segment.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if '"kind":"checkpoint"' in line)
    whole = replay(tmp_path)
    assert whole.matches and whole.from_checkpoint is None
    segment.write_text("".join(lines[cut - 3 :]), encoding="utf-8")  # the head deleted
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    assert report.from_checkpoint is not None and report.before_checkpoint == 3
    kept_transitions = sum(1 for line in lines[cut:] if '"kind":"transition"' in line)
    assert kept_transitions >= 2 and sum(report.replayed.values()) == kept_transitions
    segment.write_text("".join(lines[cut + 1 :]), encoding="utf-8")  # the checkpoint too
    lost = replay(tmp_path)
    assert not lost.matches
    assert "no checkpoint follows" in str(lost.mismatches)


def test_the_checkpoint_thread_records_one_per_interval(tmp_path: Path) -> None:
    """The thread's look records a checkpoint once the manager's clock passed the interval."""
    clock = FakeClock()
    policy = PolicyConfig.from_dict({"audit": {"checkpoint_interval_seconds": 600}})
    with AutoHealManager(policy, tmp_path, clock=clock) as manager:
        assert "checkpoint" in manager.background_jobs()
        assert manager.run_background("checkpoint") == 0
        clock.advance(601)
        manager.run_background("checkpoint")  # (or the thread's own look did it first)
        assert manager.run_background("checkpoint") == 0  # one per interval
    with AuditAnalytics(tmp_path) as db:
        rows = db.sql("SELECT message FROM audit WHERE kind = 'checkpoint'")
    assert rows == [{"message": "checkpoint of 0 workflows"}]


def test_a_checkpoint_keeps_what_the_fleet_left_to_this_host() -> None:
    """The scopes the fleet decides and this host's probe leases come back, on a new clock."""
    original = Machine(POLICY, "w1", (0.0, T0))
    at = At(100.0, None, NO_TRACE, None)
    original.fleet_link(True, Reason.FLEET_CONNECTED, ["workflow", "global"], {}, at)
    original.fleet_grant_probe("invoice", 30.0, "h1", at)  # a lease until 30 s after the instant
    data = json.loads(json.dumps(original.checkpoint(100.0, T0)))
    restored = Machine(PolicyConfig(), "w2", (5000.0, T0))
    restored.restore_checkpoint(data, 5100.0)
    assert restored.view.fleet_scopes == {"workflow", "global"}
    assert restored.view.probe_permits == {"invoice": 5130.0}
