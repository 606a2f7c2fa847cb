"""The step wrapper: gate, timing, exception mapping and the watchdog, on the fake clock."""

from __future__ import annotations

import pytest

from autoheal_otel import (
    AutoHealManager,
    EventKind,
    ExecutionState,
    Outcome,
    PostconditionFailed,
    StepBlockedError,
    StepResult,
    TargetNotFound,
)
from autoheal_otel.testing import FakeClock, InMemorySink

from .conftest import POST


def _last_result(sink: InMemorySink):  # type: ignore[no-untyped-def]
    return sink.of_kind(EventKind.RESULT)[-1]


def test_reported_success_is_timed(
    manager: AutoHealManager, clock: FakeClock, sink: InMemorySink
) -> None:
    """A body that succeeds reports its scores and the elapsed time of the fake clock."""
    with manager.step("w", "s", timeout_s=10) as step:
        assert step.settings is not None and step.settings.min_confidence == 0.75
        clock.advance(2.5)
        step.succeed(confidence=0.9, second_best=0.3, validated=True)
    event = _last_result(sink)
    assert event.outcome is Outcome.SUCCESS and event.validated
    assert event.duration_s == pytest.approx(2.5) and event.confidence == 0.9


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (TargetNotFound("gone"), Outcome.TARGET_NOT_FOUND),
        (PostconditionFailed("no receipt"), Outcome.POSTCONDITION_FAILED),
        (TimeoutError(), Outcome.WATCHDOG_TIMEOUT),
        (KeyError("x"), Outcome.ERROR),
    ],
    ids=["target", "postcondition", "timeout", "other"],
)
def test_exceptions_map_to_outcomes_and_propagate(
    manager: AutoHealManager, sink: InMemorySink, exc: Exception, outcome: Outcome
) -> None:
    """An exception in the body is reported with its outcome and re-raised unchanged."""
    with pytest.raises(type(exc)), manager.step("w", "s"):
        raise exc
    event = _last_result(sink)
    assert event.outcome is outcome
    assert event.details["error_type"] == type(exc).__name__


def test_custom_exception_mapping(manager: AutoHealManager, sink: InMemorySink) -> None:
    """Executor-specific exceptions can be mapped to outcomes."""

    class ElementMissing(Exception):
        pass

    with (
        pytest.raises(ElementMissing),
        manager.step("w", "s", exceptions={ElementMissing: "target_not_found"}),
    ):
        raise ElementMissing
    assert _last_result(sink).outcome is Outcome.TARGET_NOT_FOUND


def test_overrunning_body_is_a_watchdog_timeout(
    manager: AutoHealManager, clock: FakeClock, sink: InMemorySink
) -> None:
    """A body that ran past its deadline is reported as WATCHDOG_TIMEOUT whatever it said."""
    with manager.step("w", "s", timeout_s=5) as step:
        clock.advance(6)
        step.succeed(confidence=0.99, validated=True)
    event = _last_result(sink)
    assert event.outcome is Outcome.WATCHDOG_TIMEOUT
    assert event.details["original_outcome"] == "success" and not event.validated


def test_check_deadline_raises_inside_the_body(
    manager: AutoHealManager, clock: FakeClock, sink: InMemorySink
) -> None:
    """check_deadline() lets a long body stop itself once the deadline has passed."""

    def body() -> None:
        with manager.step("w", "s", timeout_s=1) as step:
            step.check_deadline()
            clock.advance(1.5)
            step.check_deadline()
            raise AssertionError("unreachable: check_deadline raises")

    with pytest.raises(TimeoutError):
        body()
    assert _last_result(sink).outcome is Outcome.WATCHDOG_TIMEOUT


def test_blocked_step_raises_before_the_body(manager: AutoHealManager) -> None:
    """A refused gate raises StepBlockedError and the body never runs."""
    for _ in range(10):
        manager.on_step_result("w", "s", POST)
    ran = []
    with pytest.raises(StepBlockedError) as err, manager.step("w", "s"):
        ran.append(True)
    assert not ran
    assert err.value.state == "quarantined" and "workflow.failure_window" in err.value.reason


def test_silent_body_is_an_unvalidated_success(
    manager: AutoHealManager, sink: InMemorySink
) -> None:
    """A body that reports nothing counts as a success without a verified postcondition."""
    with manager.step("w", "s"):
        pass
    event = _last_result(sink)
    assert event.outcome is Outcome.SUCCESS and event.validated is False


def test_default_deadline_comes_from_the_policy(manager: AutoHealManager) -> None:
    """Without timeout_s the watchdog uses watchdog.default_timeout_seconds."""
    assert manager.step("w", "s").timeout_s == 60


def test_decorator_reports_returned_results(manager: AutoHealManager, sink: InMemorySink) -> None:
    """@manager.guard runs a function as a step and reports a returned StepResult."""

    @manager.guard("w", "click")
    def click() -> StepResult:
        return StepResult(outcome=Outcome.TARGET_NOT_FOUND, confidence=0.2)

    for _ in range(3):
        click()
    assert manager.get_mode("w") is ExecutionState.DEGRADED
    assert _last_result(sink).step_id == "click"


def test_readme_mapping_a_users_exception_degrades_the_workflow(
    manager: AutoHealManager,
) -> None:
    """As the README says: an unmapped exception is an `error` that never degrades; mapped, it does."""

    class ElementNotFound(Exception):
        pass

    for _ in range(3):
        with pytest.raises(ElementNotFound), manager.step("w", "s"):
            raise ElementNotFound
    assert manager.get_mode("w") is ExecutionState.RUNNING
    for _ in range(3):
        with (
            pytest.raises(ElementNotFound),
            manager.step("w", "s", exceptions={ElementNotFound: Outcome.TARGET_NOT_FOUND}),
        ):
            raise ElementNotFound
    assert manager.get_mode("w") is ExecutionState.DEGRADED
