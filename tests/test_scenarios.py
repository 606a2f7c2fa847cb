"""The scenarios of the design, driven through the public hooks with a fake clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autoheal_otel import (
    AutoHealManager,
    Cause,
    EventKind,
    ExecutionState,
    IllegalTransitionError,
    InvalidInputError,
    ManagerClosedError,
    Outcome,
    Rule,
    StepResult,
)
from autoheal_otel.core._ledger import NO_TRACE, At, Ledger
from autoheal_otel.testing import FakeClock, InMemorySink

from .conftest import OK, POST, TNF, policy_with

S = ExecutionState


def test_three_target_not_found_degrade_with_raised_threshold(
    manager: AutoHealManager, sink: InMemorySink
) -> None:
    """3 consecutive TARGET_NOT_FOUND on a step -> DEGRADED, threshold 0.85, learning frozen."""
    for i in range(3):
        assert manager.should_execute_step("invoice", "click_submit")[0]
        manager.on_step_result("invoice", "click_submit", TNF)
        assert manager.get_mode("invoice") is (S.DEGRADED if i == 2 else S.RUNNING)
    settings = manager.get_effective_settings("invoice")
    assert settings.min_confidence == pytest.approx(0.85)
    assert not settings.learning_enabled
    assert settings.strict_ambiguity and settings.postcondition_required
    assert settings.step_delay_ms == 500 and settings.max_retries == 1
    (transition,) = sink.transitions
    assert transition.rule is not None
    assert transition.rule.rule == Rule.STEP_CONSECUTIVE_TARGET_NOT_FOUND
    assert (transition.rule.count, transition.rule.threshold) == (3, 3)
    allowed, reason = manager.should_execute_step("invoice", "click_submit")
    assert allowed and "0.85" in reason


def test_target_not_found_on_different_steps_do_not_chain(manager: AutoHealManager) -> None:
    """The consecutive counter is per step: misses spread over steps do not degrade."""
    for step in ("a", "b", "c", "a", "b"):
        manager.on_step_result("w", step, TNF)
    assert manager.get_mode("w") is S.RUNNING


def test_a_success_resets_the_consecutive_counter(manager: AutoHealManager) -> None:
    """Two misses, a success, two misses: never 3 in a row, so still RUNNING."""
    for result in (TNF, TNF, OK, TNF, TNF):
        manager.on_step_result("w", "s", result)
    assert manager.get_mode("w") is S.RUNNING


def test_consecutive_low_confidence_successes_degrade(manager: AutoHealManager) -> None:
    """3 successes below the low-confidence floor on one step -> DEGRADED."""
    low = StepResult(outcome=Outcome.SUCCESS, confidence=0.6, validated=True)
    for _ in range(3):
        manager.on_step_result("w", "s", low)
    assert manager.get_mode("w") is S.DEGRADED


def test_recovery_after_five_validated_successes(manager: AutoHealManager) -> None:
    """DEGRADED -> RUNNING after exactly 5 consecutive validated successes."""
    for _ in range(3):
        manager.on_step_result("w", "s", TNF)
    for i in range(5):
        assert manager.get_mode("w") is S.DEGRADED, i
        manager.on_step_result("w", "s", OK)
    assert manager.get_mode("w") is S.RUNNING
    assert manager.get_effective_settings("w").min_confidence == 0.75


@pytest.mark.parametrize(
    "breaker",
    [
        StepResult(outcome=Outcome.SUCCESS, confidence=0.95, validated=False),
        StepResult(outcome=Outcome.SUCCESS, confidence=0.80, validated=True),
        StepResult(outcome=Outcome.SUCCESS, confidence=0.95, second_best=0.93, validated=True),
    ],
    ids=["unvalidated", "below-raised-threshold", "ambiguous"],
)
def test_recovery_needs_consecutive_strict_successes(
    manager: AutoHealManager, breaker: StepResult
) -> None:
    """An unvalidated, below-threshold or ambiguous success in DEGRADED restarts the count."""
    for _ in range(3):
        manager.on_step_result("w", "s", TNF)
    for result in (OK, OK, OK, OK, breaker, OK, OK, OK, OK):
        manager.on_step_result("w", "s", result)
    assert manager.get_mode("w") is S.DEGRADED
    manager.on_step_result("w", "s", OK)
    assert manager.get_mode("w") is S.RUNNING


def test_ambiguous_match_counts_as_failure_only_in_degraded(manager: AutoHealManager) -> None:
    """A top-two gap below the margin is a failure in DEGRADED, ignored in RUNNING."""
    ambiguous = StepResult(
        outcome=Outcome.SUCCESS, confidence=0.9, second_best=0.88, validated=True
    )
    for _ in range(12):
        manager.on_step_result("a", "s", ambiguous)
    assert manager.get_mode("a") is S.RUNNING
    for _ in range(3):
        manager.on_step_result("b", "s", TNF)
    for _ in range(7):
        manager.on_step_result("b", "s", ambiguous)
    assert manager.get_mode("b") is S.QUARANTINED
    report = manager.get_status_report().workflows["b"]
    assert report.window.counts_by_trigger == {"target_not_found": 3, "ambiguous_match": 7}


def test_ten_failures_in_ten_minutes_quarantine(
    manager: AutoHealManager, clock: FakeClock, sink: InMemorySink
) -> None:
    """10 failures within 600 s -> QUARANTINED; the gate then refuses with why and since when."""
    for i in range(10):
        manager.on_step_result("invoice", f"step{i % 2}", POST)
        clock.advance(59)
    assert manager.get_mode("invoice") is S.QUARANTINED
    allowed, reason = manager.should_execute_step("invoice", "step0")
    assert not allowed
    assert "workflow.failure_window" in reason and "10 in 600 s" in reason
    assert "since 2026-01-01T00:08:51Z" in reason
    blocked = sink.of_kind(EventKind.GATE)[-1]
    assert blocked.allowed is False and blocked.reason == "blocked.quarantined"


def test_nine_failures_then_601_seconds_then_nine_more(
    manager: AutoHealManager, clock: FakeClock
) -> None:
    """9 failures, 601 s of quiet, 9 more: the first nine expired, so no quarantine."""
    for _ in range(9):
        manager.on_step_result("w", "s", POST)
    clock.advance(601)
    for _ in range(9):
        manager.on_step_result("w", "s", POST)
    assert manager.get_mode("w") is S.RUNNING
    assert manager.get_status_report().workflows["w"].window.count == 9
    manager.on_step_result("w", "s", POST)
    assert manager.get_mode("w") is S.QUARANTINED


def test_flapping_workflow_still_quarantines(manager: AutoHealManager) -> None:
    """Recovery does not clear the workflow window: repeated degrade/recover cycles quarantine."""
    for _cycle in range(4):
        for _ in range(3):
            manager.on_step_result("w", "s", TNF)
        if manager.get_mode("w") is S.QUARANTINED:
            break
        for _ in range(5):
            manager.on_step_result("w", "s", OK)
    assert manager.get_mode("w") is S.QUARANTINED


def test_quarantine_blocks_until_operator_release(
    manager: AutoHealManager, sink: InMemorySink
) -> None:
    """QUARANTINED blocks; force_transition releases, clears the window, and is audited."""
    for _ in range(10):
        manager.on_step_result("w", "s", POST)
    assert not manager.should_execute_step("w", "s")[0]
    info = manager.force_transition("w", S.RUNNING, reason="selector fixed", actor="alice")
    assert info.state is S.RUNNING and info.actor == "alice" and info.reason == "selector fixed"
    assert manager.should_execute_step("w", "s") == (True, "running")
    manager.on_step_result("w", "s", POST)
    assert manager.get_mode("w") is S.RUNNING  # the window was cleared by the release
    forced = sink.transitions[-1]
    assert (forced.cause, forced.actor, forced.message) == ("operator", "alice", "selector fixed")


def test_global_failure_limit_pauses_every_workflow(
    make_manager: Callable[..., AutoHealManager], sink: InMemorySink
) -> None:
    """Failures across workflows reaching the global limit pause every workflow, new ones too."""
    manager = make_manager(policy_with(breakers={"global": {"failure_threshold": 12}}))
    manager.on_step_result("bystander", "s", OK)
    for i in range(12):
        manager.on_step_result(f"w{i % 4}", f"s{i}", POST)
    for wid in ("bystander", "w0", "w1", "w2", "w3", "never-seen"):
        assert manager.get_mode(wid) is S.PAUSED, wid
        assert not manager.should_execute_step(wid, "s")[0]
    report = manager.get_status_report()
    assert report.global_.health == "critical" and report.global_.paused
    assert "global.failure_window" in report.global_.reason
    assert sink.of_kind(EventKind.GLOBAL)[0].rule.rule == Rule.GLOBAL_FAILURE_WINDOW  # type: ignore[union-attr]


def test_three_quarantines_pause_everything(manager: AutoHealManager) -> None:
    """A third quarantined workflow trips the global breaker; quarantined ones stay quarantined."""
    manager.on_step_result("other", "s", OK)
    for wid in ("a", "b", "c"):
        for _ in range(10):
            manager.on_step_result(wid, "s", POST)
    assert [manager.get_mode(w) for w in ("a", "b", "c")] == [S.QUARANTINED] * 3
    assert manager.get_mode("other") is S.PAUSED
    assert manager.get_status_report().global_.health == "critical"


def test_operator_release_after_global_pause(make_manager: Callable[..., AutoHealManager]) -> None:
    """Releasing a paused workflow clears the global latch; resume_all releases the rest."""
    manager = make_manager(policy_with(breakers={"global": {"failure_threshold": 5}}))
    for i in range(5):
        manager.on_step_result(f"w{i}", "s", POST)
    manager.force_transition("w0", S.RUNNING, reason="checked the screen")
    assert manager.get_mode("w0") is S.RUNNING
    assert manager.get_mode("w1") is S.PAUSED
    assert manager.get_mode("new") is S.RUNNING  # the latch is cleared
    manager.on_step_result("w0", "s", POST)  # the global window restarted from zero
    assert manager.get_mode("w0") is S.RUNNING
    released = manager.resume_all(reason="all clear", actor="bob")
    assert sorted(released) == ["w1", "w2", "w3", "w4"]
    assert manager.get_status_report().global_.health == "ok"


def test_forced_moves_follow_the_table(manager: AutoHealManager) -> None:
    """Forcing ROLLBACK needs a versioned store; out of QUARANTINED to ROLLBACK is no edge for
    the breakers; a same-state force is a no-op."""
    with pytest.raises(InvalidInputError, match="versioned store"):
        manager.force_transition("w", S.ROLLBACK, reason="try")
    manager.should_execute_step("w", "s")
    ledger = Ledger(manager.policy, "test", (0.0, manager.clock.now()))
    wf = ledger.workflow("w", At(0.0, None, NO_TRACE, None))
    with pytest.raises(IllegalTransitionError):
        ledger.move(
            wf,
            S.ROLLBACK,
            Cause.RECOVERY,
            At(0.0, None, NO_TRACE, None),
            "x",
            "x",
        )
    info = manager.force_transition("w", S.RUNNING, reason="noop")
    assert info.state is S.RUNNING and info.reason == "started"
    manager.force_transition("w", "quarantined", reason="maintenance window")
    assert manager.get_mode("w") is S.QUARANTINED


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("w", "exploded", "r"), "state"),
        (("w", S.PAUSED, ""), "reason"),
        (("", S.PAUSED, "r"), "workflow_id"),
    ],
    ids=["bad-state", "empty-reason", "empty-id"],
)
def test_force_transition_rejects_bad_input(
    manager: AutoHealManager, args: tuple[str, str, str], field: str
) -> None:
    """Bad operator input names the field."""
    with pytest.raises(InvalidInputError) as err:
        manager.force_transition(*args)
    assert err.value.field == field


@pytest.mark.parametrize("bad", ["", "a\x00", 7, None], ids=["empty", "nul", "int", "none"])
def test_hooks_reject_unusable_ids_without_recording(manager: AutoHealManager, bad: object) -> None:
    """A bad id raises InvalidInputError naming it, and nothing is recorded for it."""
    with pytest.raises(InvalidInputError):
        manager.should_execute_step(bad, "s")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        manager.on_step_result("w", bad, OK)  # type: ignore[arg-type]
    assert list(manager.get_status_report().workflows) in ([], ["w"])


def test_result_given_as_mapping_or_garbage(manager: AutoHealManager) -> None:
    """A mapping of StepResult fields is accepted; anything else names the field."""
    manager.on_step_result("w", "s", {"outcome": "target_not_found"})  # type: ignore[arg-type]
    assert manager.get_status_report().workflows["w"].failures == 1
    with pytest.raises(InvalidInputError, match="result"):
        manager.on_step_result("w", "s", "success")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="confidence"):
        manager.on_step_result("w", "s", {"outcome": "success", "confidence": float("nan")})  # type: ignore[arg-type]


def test_status_report_counters_against_thresholds(
    manager: AutoHealManager, clock: FakeClock
) -> None:
    """The report shows each workflow's windows and step counters against their thresholds."""
    manager.on_step_result("w", "s", TNF)
    manager.on_step_result("w", "s", TNF)
    clock.advance(30)
    report = manager.get_status_report()
    wf = report.workflows["w"]
    assert (wf.window.count, wf.window.threshold, wf.window.window_seconds) == (2, 10, 600)
    assert wf.steps["s"].consecutive_target_not_found == 2
    assert wf.steps["s"].consecutive_target_not_found_threshold == 3
    assert wf.settings.min_confidence == 0.75 and wf.state is S.RUNNING
    assert report.global_.window.count == 2 and report.global_.health == "ok"
    assert len(wf.last_errors) == 2 and wf.last_errors[0]["ts"] == "2026-01-01T00:00:00+00:00"
    assert '"global"' in report.to_json()


def test_closed_manager_refuses_hooks(manager: AutoHealManager, sink: InMemorySink) -> None:
    """After close() sinks are closed and hooks raise ManagerClosedError; close is idempotent."""
    manager.close()
    manager.close()
    assert sink.closed
    with pytest.raises(ManagerClosedError):
        manager.should_execute_step("w", "s")


def test_context_manager_closes() -> None:
    """`with AutoHealManager() as m` closes the sinks on exit."""
    sink = InMemorySink()
    with AutoHealManager(clock=FakeClock(), sinks=[sink]) as m:
        m.should_execute_step("w", "s")
    assert sink.closed and len(sink.events) == 1


def test_per_workflow_override_changes_only_that_workflow(
    make_manager: Callable[..., AutoHealManager],
) -> None:
    """A workflow override (failure_threshold 2) quarantines it while others keep the default."""
    manager = make_manager(
        policy_with(workflows={"fragile": {"breakers": {"workflow": {"failure_threshold": 2}}}})
    )
    for wid in ("fragile", "sturdy"):
        manager.on_step_result(wid, "s", POST)
        manager.on_step_result(wid, "s", POST)
    assert manager.get_mode("fragile") is S.QUARANTINED
    assert manager.get_mode("sturdy") is S.RUNNING
