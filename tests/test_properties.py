"""Invariants of the state machine under arbitrary event sequences (hypothesis)."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from autoheal_otel import (
    AutoHealManager,
    EventKind,
    ExecutionState,
    IllegalTransitionError,
    InvalidInputError,
    Outcome,
    StepResult,
)
from autoheal_otel.core._transitions import Cause, is_legal
from autoheal_otel.testing import FakeClock, InMemorySink

from .conftest import policy_with

S = ExecutionState
WORKFLOWS = ["a", "b", "c"]
STEPS = ["s1", "s2"]

results = st.builds(
    StepResult,
    outcome=st.sampled_from(Outcome),
    confidence=st.none() | st.sampled_from([0.3, 0.72, 0.8, 0.9, 0.99]),
    second_best=st.none() | st.sampled_from([0.1, 0.86, 0.95]),
    validated=st.booleans(),
)

#: Results whose scores also sit exactly on the floors the shortcut test sets.
boundary_results = st.builds(
    StepResult,
    outcome=st.sampled_from(Outcome),
    confidence=st.none() | st.sampled_from([0.0, 0.3, 0.7, 0.72, 0.75, 0.8, 0.9, 0.99]),
    second_best=st.none() | st.sampled_from([0.1, 0.65, 0.7, 0.86, 0.95]),
    validated=st.booleans(),
)

actions = st.one_of(
    st.tuples(st.just("gate"), st.sampled_from(WORKFLOWS), st.sampled_from(STEPS)),
    st.tuples(st.just("result"), st.sampled_from(WORKFLOWS), st.sampled_from(STEPS), results),
    st.tuples(st.just("advance"), st.floats(0, 400)),
    st.tuples(st.just("force"), st.sampled_from(WORKFLOWS), st.sampled_from(S)),
)

small_policy = policy_with(
    breakers={
        "workflow": {"failure_threshold": 4, "window_seconds": 300},
        "global": {
            "failure_threshold": 9,
            "window_seconds": 300,
            "quarantined_workflows_threshold": 2,
        },
    },
    degraded={"recovery_successes": 2},
    quarantine={"probe_enabled": True, "probe_cooldown_seconds": 100},
)


def _run(
    actions_list: list[tuple[Any, ...]],
) -> tuple[AutoHealManager, InMemorySink, list[tuple[str, bool]]]:
    clock = FakeClock()
    sink = InMemorySink()
    manager = AutoHealManager(policy=small_policy, clock=clock, sinks=[sink])
    gates: list[tuple[str, bool]] = []
    for action in actions_list:
        kind = action[0]
        if kind == "gate":
            mode_before = manager.get_mode(action[1])
            allowed, _ = manager.should_execute_step(action[1], action[2])
            gates.append((mode_before.value, allowed))
        elif kind == "result":
            manager.on_step_result(action[1], action[2], action[3])
        elif kind == "advance":
            clock.advance(action[1])
        else:
            with contextlib.suppress(IllegalTransitionError, InvalidInputError):
                manager.force_transition(action[1], action[2], reason="property test")
    return manager, sink, gates


@given(st.lists(actions, max_size=60))
def test_every_change_is_a_recorded_legal_edge(actions_list: list[tuple[Any, ...]]) -> None:
    """Replaying the transition events reproduces each workflow's final state; each is legal."""
    manager, sink, _ = _run(actions_list)
    replayed: dict[str, S] = {}
    for event in sink.transitions:
        assert event.workflow_id is not None and event.state is not None
        assert event.previous_state is not None and event.cause is not None
        source = replayed.get(event.workflow_id, S.RUNNING)
        assert source is event.previous_state, event
        assert is_legal(source, event.state, Cause(event.cause)), event
        replayed[event.workflow_id] = event.state
    # A workflow never seen starts PAUSED while the global pause holds (the contract of get_mode).
    unseen = S.PAUSED if manager.get_status_report().global_.paused else S.RUNNING
    for wid in WORKFLOWS:
        assert manager.get_mode(wid) is replayed.get(wid, unseen)


@given(st.lists(actions, max_size=60))
def test_blocked_states_never_admit_a_step_except_the_probe(
    actions_list: list[tuple[Any, ...]],
) -> None:
    """A gate in PAUSED or ROLLBACK always refuses; in QUARANTINED only an admitted probe passes."""
    _, sink, gates = _run(actions_list)
    for mode, allowed in gates:
        if mode in ("paused", "rollback"):
            assert not allowed
    for event in sink.of_kind(EventKind.GATE):
        if event.allowed and event.state is S.QUARANTINED:
            assert event.message.startswith("quarantine probe")


@given(st.lists(actions, max_size=60))
def test_events_are_in_sequence_order(actions_list: list[tuple[Any, ...]]) -> None:
    """Sinks receive events with strictly increasing seq, starting at 1, without gaps."""
    _, sink, _ = _run(actions_list)
    assert [e.seq for e in sink.events] == list(range(1, len(sink.events) + 1))


@given(st.lists(actions, max_size=60))
def test_degraded_settings_are_never_looser(actions_list: list[tuple[Any, ...]]) -> None:
    """Whatever happened, a non-RUNNING workflow never has learning on or a lower threshold."""
    manager, _, _ = _run(actions_list)
    for wid in WORKFLOWS:
        settings = manager.get_effective_settings(wid)
        if settings.state is not S.RUNNING:
            assert not settings.learning_enabled
            assert settings.min_confidence >= 0.75
            assert settings.postcondition_required
        assert settings.step_allowed is not settings.state.is_blocked


@st.composite
def failure_times(draw: st.DrawFn) -> list[float]:
    return draw(st.lists(st.floats(0, 200), min_size=1, max_size=30))


@given(gaps=failure_times(), threshold=st.integers(1, 8), window=st.floats(10, 500))
def test_quarantine_iff_threshold_reached_inside_window(
    gaps: list[float], threshold: int, window: float
) -> None:
    """Quarantined iff, at some failure, the failures of the last window reach the threshold."""
    clock = FakeClock()
    manager = AutoHealManager(
        policy=policy_with(
            breakers={
                "workflow": {"failure_threshold": threshold, "window_seconds": window},
                "global": {"failure_threshold": 1000},
            }
        ),
        clock=clock,
    )
    times: list[float] = []
    expected = False
    for gap in gaps:
        clock.advance(gap)
        t = clock.monotonic()  # the same float arithmetic as the manager's
        if manager.get_mode("w") is S.RUNNING or manager.get_mode("w") is S.DEGRADED:
            times.append(t)
            manager.on_step_result("w", f"s{len(times)}", StepResult(outcome=Outcome.ERROR))
            live = [x for x in times if t - x < window]
            expected = expected or len(live) >= threshold
    assert (manager.get_mode("w") is S.QUARANTINED) is expected


@given(
    result=results | boundary_results,
    degrade_first=st.booleans(),
    strict_running=st.booleans(),
    floor=st.sampled_from([0.0, 0.7, 0.75]),
)
def test_a_recorded_result_has_the_signals_the_policy_gives(
    result: StepResult, degrade_first: bool, strict_running: bool, floor: float
) -> None:
    """What the manager records for a result is what the policy says, read independently:
    the failing outcome, then an ambiguous match (strict ambiguity in the state), then a low
    one."""
    from autoheal_otel.base._models import OUTCOME_TRIGGER, Trigger

    policy = policy_with(
        confidence={"low_confidence_floor": floor}, running={"strict_ambiguity": strict_running}
    )
    sink = InMemorySink()
    manager = AutoHealManager(policy=policy, clock=FakeClock(), sinks=[sink])
    if degrade_first:
        manager.force_transition("w", S.DEGRADED, reason="property test")
    state = manager.get_mode("w")
    manager.on_step_result("w", "s", result)
    event = sink.of_kind(EventKind.RESULT)[-1]
    wp = policy.for_workflow("w")
    strict = (wp.degraded if state is S.DEGRADED else wp.running).strict_ambiguity
    conf, second = result.confidence, result.second_best
    expected = [OUTCOME_TRIGGER[result.outcome]] if result.outcome in OUTCOME_TRIGGER else []
    margin = wp.confidence.ambiguity_margin
    if strict and conf is not None and second is not None and conf - second < margin:
        expected.append(Trigger.AMBIGUOUS_MATCH)
    if conf is not None and conf < wp.confidence.low_confidence_floor:
        expected.append(Trigger.LOW_CONFIDENCE)
    assert (event.trigger is None) is (not expected)
    assert list(event.signals) == expected


@given(
    result=results | boundary_results,
    degraded=st.booleans(),
    strict_running=st.booleans(),
    floor=st.sampled_from([0.0, 0.7, 0.75]),
)
def test_the_hot_paths_clean_test_is_is_clean(
    result: StepResult, degraded: bool, strict_running: bool, floor: float
) -> None:
    """The clean test inlined on the hook's path (a method call there costs a tenth of a
    step) decides as WorkflowRuntime.is_clean, the definition classify() uses."""
    from datetime import UTC, datetime

    from autoheal_otel.core._breakers import classify
    from autoheal_otel.core._scopes import WorkflowRuntime

    policy = policy_with(
        confidence={"low_confidence_floor": floor}, running={"strict_ambiguity": strict_running}
    )
    wf = WorkflowRuntime("w", policy.for_workflow("w"), 0.0, datetime.now(UTC))
    if degraded:
        wf.state = S.DEGRADED
        wf.refresh()
    sink = InMemorySink()
    manager = AutoHealManager(policy=policy, clock=FakeClock(), sinks=[sink])
    if degraded:
        manager.force_transition("w", S.DEGRADED, reason="property test")
    manager.on_step_result("w", "s", result)
    recorded_clean = sink.of_kind(EventKind.RESULT)[-1].trigger is None
    assert recorded_clean is wf.is_clean(result) is classify(result, wf).clean
