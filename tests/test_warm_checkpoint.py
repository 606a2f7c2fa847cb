"""Warm restart from a checkpoint: the newest one before the restore horizon and the records
after it decide every later input as a restart that read the whole log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from autoheal_otel import (
    AutoHealManager,
    EventKind,
    ExecutionState,
    Outcome,
    PolicyConfig,
    Reason,
    StepResult,
)
from autoheal_otel.analytics.replay import replay
from autoheal_otel.analytics.resume import resume_state
from autoheal_otel.testing import FakeClock, InMemorySink

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = PolicyConfig.from_dict(
    {
        "breakers": {
            "step": {"consecutive_target_not_found": 3, "window_failure_threshold": 4},
            "workflow": {"failure_threshold": 5, "window_seconds": 120},
            "global": {"failure_threshold": 9, "window_seconds": 120,
                       "quarantined_workflows_threshold": 2},
        },
        "degraded": {"recovery_successes": 2},
        "quarantine": {"probe_enabled": True, "probe_cooldown_seconds": 30,
                       "probe_timeout_seconds": 20},
        "calibration": {"enabled": True, "window": 6, "min_samples": 2},
        "audit": {"restore_horizon_seconds": 60, "checkpoint_interval_seconds": 86400},
    }
)  # fmt: skip

step = st.tuples(
    st.just("step"),
    st.sampled_from(["a", "a", "b", "c"]),
    st.sampled_from(["s1", "s2"]),
    st.sampled_from([Outcome.SUCCESS] * 4 + [Outcome.TARGET_NOT_FOUND] * 3 + list(Outcome)),
    st.sampled_from([None, 0.5, 0.72, 0.9, 0.99]),
    st.sampled_from([True, True, False]),
)
move = st.tuples(
    st.just("operator"),
    st.sampled_from(["a", "b"]),
    st.sampled_from([ExecutionState.RUNNING, ExecutionState.QUARANTINED]),
)
plans = st.lists(st.one_of(step, step, step, move), min_size=1, max_size=40)
gaps = st.lists(st.sampled_from([1.0, 7.0, 25.0]), min_size=120, max_size=120)


def _run(
    manager: AutoHealManager, clock: FakeClock, plan: list[Any], gap: list[float]
) -> list[Any]:
    """Feed the plan; return every answer and the mode after it."""
    out: list[Any] = []
    for i, item in enumerate(plan):
        clock.advance(gap[i % len(gap)])
        if item[0] == "step":
            _, wid, sid, outcome, confidence, validated = item
            allowed, reason = manager.should_execute_step(wid, sid)
            out.append((wid, sid, allowed, reason))
            if allowed:
                manager.on_step_result(
                    wid,
                    sid,
                    StepResult(
                        outcome=outcome,
                        confidence=confidence,
                        validated=validated,
                        details={"method": "faiss"},
                    ),
                )
        else:
            _, wid, target = item
            try:
                manager.force_transition(wid, target, reason="test")
                out.append(("moved", wid, target))
            except Exception as exc:  # an illegal edge: both restarts refuse it alike
                out.append(("refused", wid, type(exc).__name__))
        out.append(manager.get_mode(item[1]))
    return out


def _restored(sink: InMemorySink) -> dict[str, Any]:
    """Return what the manager's warm restart rebuilt, as its session start record says."""
    (start,) = [e for e in sink.of_kind(EventKind.SESSION) if e.reason == Reason.SESSION_START]
    assert start.details is not None
    restored: dict[str, Any] = start.details["restored"]
    return restored


def _comparable(state: dict[str, Any]) -> str:
    """The state as JSON, but for when a workflow that never changed state was first met: a
    refused operator move meets it live without a record (the log meets it at its first)."""
    state = json.loads(json.dumps(state))
    for wf in state["workflows"].values():
        if wf["reason"] == "started" and wf["previous_state"] is None:
            wf["since"] = wf["since_age"] = None
    return json.dumps(state, sort_keys=True)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=plans, between=plans, after=plans, gap=gaps, idle=st.sampled_from([61.0, 200.0]))
@example(  # a step's last failure before the checkpoint: its window is empty after, or none
    before=[
        ("step", "a", "s1", Outcome.SUCCESS, None, True),
        ("step", "a", "s2", Outcome.TARGET_NOT_FOUND, None, True),
        ("operator", "a", ExecutionState.QUARANTINED),
        ("step", "a", "s1", Outcome.SUCCESS, None, True),
        ("step", "a", "s1", Outcome.SUCCESS, None, True),
        ("operator", "a", ExecutionState.RUNNING),
    ],
    between=[
        *[("step", "a", "s1", Outcome.SUCCESS, None, True)] * 3,
        ("step", "a", "s2", Outcome.SUCCESS, 0.5, True),
    ],
    after=[("step", "a", "s1", Outcome.SUCCESS, None, True)],
    gap=[1.0] * 120,
    idle=61.0,
)
def test_restart_from_checkpoint_and_tail_equals_restart_from_the_whole_log(
    tmp_path_factory: Any,
    before: list[Any],
    between: list[Any],
    after: list[Any],
    gap: list[float],
    idle: float,
) -> None:
    """Run, checkpoint, run on (past the restore horizon), rebuild the restart twice: from the
    checkpoint and the tail, and from the first record (the machine fed the
    the whole log): the same state, streaks, calibration windows and next seq; the manager
    restarted so goes on, and replay of the whole log matches every decision."""
    base = tmp_path_factory.mktemp("log")
    live = base / "live"
    clock = FakeClock(T0)
    with AutoHealManager(POLICY, live, clock=clock) as manager:
        _run(manager, clock, before, gap)
        manager.checkpoint()
        clock.advance(idle)  # the checkpoint falls behind the restore horizon
        _run(manager, clock, between, gap)
    as_of = clock.now()
    fast = resume_state(live, POLICY, as_of)
    slow = resume_state(live, POLICY, as_of, whole=True)
    assert fast is not None and slow is not None
    assert fast.tail_records < slow.tail_records
    # Every part of the state, the streaks and calibration windows read back, the next seq.
    assert _comparable(fast.state) == _comparable(slow.state)
    assert (fast.streaks, fast.calibration_samples, fast.max_seq) == (
        slow.streaks,
        slow.calibration_samples,
        slow.max_seq,
    )
    # The restarted manager (from the checkpoint) and the machine that never stopped answer
    # alike; replay of the log, restart included, matches every decision.
    c1 = FakeClock(as_of, 5000.0)
    sink = InMemorySink()
    with AutoHealManager(POLICY, live, clock=c1, sinks=[sink]) as again:
        assert _restored(sink)["from_checkpoint"] == fast.checkpoint_ts.isoformat()
        _run(again, c1, after, gap)
    report = replay(live)
    assert report.matches, report.mismatches


def test_a_restart_reads_from_the_newest_checkpoint_before_the_horizon(tmp_path: Path) -> None:
    """Of several checkpoints, the restart starts at the newest one at or before the restore
    horizon: not the first (history), not the newest (the streaks within the horizon)."""
    clock = FakeClock(T0)
    stamps = []
    with AutoHealManager(POLICY, tmp_path, clock=clock) as manager:
        for _ in range(4):
            manager.on_step_result("a", "s1", StepResult(outcome=Outcome.TARGET_NOT_FOUND))
            clock.advance(40)
            manager.checkpoint()
            stamps.append(clock.now())
        clock.advance(10)
    sink = InMemorySink()
    with AutoHealManager(POLICY, tmp_path, clock=clock, sinks=[sink]) as again:
        restored = _restored(sink)
        # as of T0 + 170 s with a horizon of 60 s: the checkpoint at 80 s, not 120 s or 160 s
        assert restored["from_checkpoint"] == stamps[1].replace(tzinfo=None).isoformat()
        assert restored["tail_records"] >= 3
        counters = again.get_status_report().workflows["a"]
        assert counters.state is ExecutionState.DEGRADED
