"""Decision events: one per decision, in order, and a failing sink never reaches the executor."""

from __future__ import annotations

import json

import pytest

from autoheal_otel import AutoHealManager, DecisionEvent, EventKind, ExecutionState
from autoheal_otel.semconv import AUDIT_SCHEMA_VERSION
from autoheal_otel.testing import FakeClock, InMemorySink

from .conftest import OK, TNF


class ExplodingSink:
    def __init__(self) -> None:
        self.calls = 0

    def emit(self, event: DecisionEvent) -> None:
        self.calls += 1
        raise OSError("disk full")

    def flush(self) -> None:
        raise OSError("disk full")

    def close(self) -> None:
        raise OSError("disk full")


def test_each_decision_is_one_event(manager: AutoHealManager, sink: InMemorySink) -> None:
    """A gate, a result and a transition each produce exactly one event, in that order."""
    manager.should_execute_step("w", "s")
    for _ in range(3):
        manager.on_step_result("w", "s", TNF)
    kinds = [e.kind for e in sink.events]
    assert kinds == [
        EventKind.GATE,
        EventKind.RESULT,
        EventKind.RESULT,
        EventKind.RESULT,
        EventKind.TRANSITION,
    ]
    transition = sink.events[-1]
    assert (transition.previous_state, transition.state) == (
        ExecutionState.RUNNING,
        ExecutionState.DEGRADED,
    )
    assert transition.policy_version == manager.policy.version


def test_failing_sink_is_contained_and_counted(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A sink that raises is logged and counted; other sinks and the hooks carry on."""
    bad, good = ExplodingSink(), InMemorySink()
    manager = AutoHealManager(clock=clock, sinks=[bad, good])
    assert manager.should_execute_step("w", "s") == (True, "running")
    manager.on_step_result("w", "s", OK)
    assert len(good.events) == 2 and bad.calls == 2
    manager.flush()
    manager.close()
    report_errors = manager.get_status_report().sink_errors
    assert report_errors == {"ExplodingSink": 4}
    assert "disk full" in caplog.text


def test_records_are_json_with_the_audit_keys(manager: AutoHealManager, sink: InMemorySink) -> None:
    """Every event's record is JSON with the keys of the audit schema and an RFC 3339 UTC ts."""
    for _ in range(3):
        manager.on_step_result("w", "s", TNF)
    for event in sink.events:
        record = json.loads(json.dumps(event.to_record()))
        assert record["schema_version"] == AUDIT_SCHEMA_VERSION
        assert record["ts"].endswith("Z") and record["ts"].startswith("2026-01-01T00:00:00")
        for key in ("seq", "kind", "workflow_id", "step_id", "state", "reason"):
            assert key in record
    assert sink.events[-1].to_record()["rule"]["rule"] == "step.consecutive_target_not_found"


def test_no_sink_means_no_event_work(clock: FakeClock) -> None:
    """Without sinks nothing is built, and adding one later starts the flow."""
    manager = AutoHealManager(clock=clock)
    manager.on_step_result("w", "s", OK)
    late = InMemorySink()
    manager.add_sink(late)
    manager.on_step_result("w", "s", OK)
    assert [e.kind for e in late.events] == [EventKind.RESULT]
    manager.remove_sink(late)
    manager.on_step_result("w", "s", OK)
    assert len(late.events) == 1


def test_add_sink_rejects_non_sinks(manager: AutoHealManager) -> None:
    """Registering an object without emit/flush/close is a TypeError at once."""
    with pytest.raises(TypeError, match="emit"):
        manager.add_sink(object())  # type: ignore[arg-type]


def test_template_lines_equal_the_full_record(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every audit line (built from cached templates) parses to exactly the event's record."""
    import random

    import orjson

    from autoheal_otel import AutoHealManager, Outcome, StepResult
    from autoheal_otel.base._events import LineEncoder, dumps, record_fields
    from autoheal_otel.testing import FakeClock, InMemorySink

    rng = random.Random(5)
    sink = InMemorySink()
    clock = FakeClock()
    encoder = LineEncoder(max_templates=8)  # small: the cache is cleared many times
    outcomes = list(Outcome)
    with AutoHealManager(clock=clock, sinks=[sink]) as m:
        for i in range(600):
            clock.advance(rng.choice([0.001, 1.5, 30]))
            wid, step = rng.choice(["a", "b", "c"]), rng.choice(["s1", "s2"])
            if m.should_execute_step(wid, step)[0]:
                conf = rng.choice([None, 0.0, 1e-7, 0.5, 0.93, 1.0])
                m.on_step_result(
                    wid,
                    step,
                    StepResult(
                        outcome=rng.choice(outcomes),
                        confidence=conf,
                        second_best=None if conf is None else conf / 2,
                        validated=rng.random() < 0.5,
                        duration_s=rng.choice([None, 0.0, 2.5e-5, 12.0]),
                        details={"method": "faiss"} if i % 7 == 0 else {},
                    ),
                )
            if i % 97 == 0:
                m.force_transition(wid, "running", reason=f"check {i}", actor="ops")
    assert len({e.kind for e in sink.events}) >= 4
    for event in sink.events:
        line = encoder.encode(event)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        # the reference: the event's fields one by one, not the line's own encoder
        reference = orjson.loads(dumps(record_fields(event)))
        assert orjson.loads(line) == reference == event.to_record(), event.kind
