"""Repeated decisions: an event built from a step's template equals the one built field by field.

The machine records a clean gate or result of a step in RUNNING as a repetition of a
:class:`~autoheal_otel.base._events.Template` taken from the first such event. These tests drive
two machines with the same inputs, one of which never reuses a template, and hold every
record equal, across policy reloads, artifact activations, validated flags and states.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from autoheal_otel import Outcome, PolicyConfig, StepResult
from autoheal_otel.base._events import DecisionEvent
from autoheal_otel.core._ledger import At
from autoheal_otel.core._machine import Machine

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

RESULTS = [
    StepResult(outcome=Outcome.SUCCESS, confidence=0.93, second_best=0.4, validated=True),
    StepResult(outcome=Outcome.SUCCESS, confidence=0.91, validated=False, duration_s=0.5),
    StepResult(outcome=Outcome.SUCCESS, details={"method": "ocr"}, validated=True),
    StepResult(outcome=Outcome.SUCCESS, confidence=0.2, validated=True),  # low confidence
    StepResult(outcome=Outcome.TARGET_NOT_FOUND),
    StepResult(outcome=Outcome.POSTCONDITION_FAILED, confidence=0.9),
]
POLICIES = [PolicyConfig(), PolicyConfig.model_validate({"degraded": {"recovery_successes": 2}})]

inputs = st.lists(
    st.one_of(
        st.tuples(st.just("gate"), st.sampled_from("ab"), st.sampled_from("xy")),
        st.tuples(
            st.just("result"),
            st.sampled_from("ab"),
            st.sampled_from("xy"),
            st.integers(0, len(RESULTS) - 1),
        ),
        st.tuples(st.just("policy"), st.integers(0, len(POLICIES) - 1)),
        st.tuples(st.just("activate"), st.sampled_from([None, "a"]), st.sampled_from(["v1", "v2"])),
    ),
    max_size=60,
)


def _forget_templates(machine: Machine) -> None:
    for wf in machine.view.workflows.values():
        for step in wf.steps.values():
            step.gate_template = step.result_template = None


def _run(script: list[tuple[Any, ...]], reuse: bool) -> list[DecisionEvent]:
    machine = Machine(PolicyConfig(), "writer-1", (0.0, T0))
    events: list[DecisionEvent] = []
    for i, (kind, *args) in enumerate(script):
        now = float(i)
        ts = T0 + timedelta(seconds=now)
        trace = (f"{i:032x}", f"{i:016x}")
        if kind == "gate":
            machine.gate(args[0], args[1], now, ts, trace, events)
        elif kind == "result":
            machine.result(args[0], args[1], RESULTS[args[2]], now, ts, trace, events)
        elif kind == "policy":
            machine.change_policy(POLICIES[args[0]], "api", At(now, ts, trace, events))
        else:
            machine.activate(args[0], args[1], "new set", "test", At(now, ts, trace, events))
        if not reuse:
            _forget_templates(machine)
    return events


@settings(max_examples=300, deadline=None)
@given(inputs)
@example([("result", "a", "x", 0), ("result", "a", "x", 1)])  # validated, then not
@example([("gate", "a", "x"), ("activate", "a", "v2"), ("gate", "a", "x")])
def test_repeated_events_equal_events_built_field_by_field(script: list[tuple[Any, ...]]) -> None:
    """Same inputs, same records, whether or not the machine reuses its templates."""
    reused, built = _run(script, reuse=True), _run(script, reuse=False)
    assert [e.to_record() for e in reused] == [e.to_record() for e in built]
    assert all(e.template_id is None for e in built)


def test_clean_steps_repeat_their_template() -> None:
    """The second clean gate and result of a step are repetitions; others are not."""
    script: list[tuple[Any, ...]] = [("gate", "a", "x"), ("result", "a", "x", 0)] * 2
    events = _run([*script, ("result", "a", "x", 4)], reuse=True)
    assert [e.template_id is not None for e in events] == [False, False, True, True, False]
    assert events[2].seq == 3 and events[2].trace_id == f"{2:032x}"
    assert events[3].confidence == 0.93 and events[3].second_best == 0.4


def test_a_new_artifact_version_or_policy_makes_a_new_template() -> None:
    """A repetition never carries a stale policy or artifact version."""
    events = _run(
        [
            ("gate", "a", "x"),
            ("gate", "a", "x"),
            ("activate", None, "v2"),
            ("gate", "a", "x"),
            ("policy", 1),
            ("gate", "a", "x"),
        ],
        reuse=True,
    )
    gates = [e for e in events if e.kind == "gate"]
    assert [g.artifact_version for g in gates] == [None, None, "v2", "v2"]
    assert gates[3].policy_version == POLICIES[1].version != gates[2].policy_version


def test_a_repeated_event_reads_and_serializes_like_any_other() -> None:
    """Sinks that serialize an event, or copy it with replace(), see a plain decision event."""
    import dataclasses

    import orjson

    from autoheal_otel.base._events import LineEncoder, dumps, record_fields

    events = _run([("gate", "a", "x"), ("gate", "a", "x")], reuse=True)
    repeated = events[1]
    assert repeated.template_id is not None
    assert orjson.loads(orjson.dumps(repeated))["seq"] == 2
    encoder = LineEncoder()
    assert orjson.loads(encoder.encode(repeated)) == orjson.loads(dumps(record_fields(repeated)))
    copied = dataclasses.replace(repeated, workflow_id="other", seq=9)
    assert orjson.loads(encoder.encode(copied)) == orjson.loads(dumps(record_fields(copied)))
    assert copied.to_record()["workflow_id"] == "other"
