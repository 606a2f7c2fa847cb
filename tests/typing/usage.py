"""Typing examples: what users write, checked by mypy (strict) in ``make lint``.

A line marked ``# type: ignore[...]`` must be an error for mypy: with ``warn_unused_ignores``
a marker that stops matching an error fails the check, so the examples pin both what the
API accepts and what it refuses.
"""

from __future__ import annotations

from autoheal_otel import (
    AutoHealManager,
    EffectiveSettings,
    ExecutionState,
    ExecutionStateInfo,
    Outcome,
    PolicyConfig,
    StatusReport,
    StepResult,
)
from autoheal_otel.testing import FakeClock, InMemorySink


def executor_loop(manager: AutoHealManager) -> None:
    """The three-line integration, fully typed."""
    allowed, reason = manager.should_execute_step("invoice", "click_submit")
    assert isinstance(allowed, bool) and isinstance(reason, str)
    manager.on_step_result(
        "invoice", "click_submit", StepResult(outcome=Outcome.SUCCESS, confidence=0.9)
    )
    mode: ExecutionState = manager.get_mode("invoice")
    settings: EffectiveSettings = manager.get_effective_settings("invoice")
    delay: float = settings.step_delay_s
    info: ExecutionStateInfo = manager.force_transition("invoice", "running", reason="fixed")
    report: StatusReport = manager.get_status_report()
    print(mode, delay, info.state, report.global_.health)


def guarded(manager: AutoHealManager) -> None:
    """The step wrapper as a context manager."""
    with manager.step("invoice", "click_submit", timeout_s=5.0) as step:
        step.report(Outcome.SUCCESS, confidence=0.93, validated=True)


def construct() -> AutoHealManager:
    """Constructor arguments are typed; tests inject a fake clock and an in-memory sink."""
    clock = FakeClock()
    clock.advance(1.5)
    return AutoHealManager(policy=PolicyConfig(), clock=clock, sinks=[InMemorySink()])


def refused(manager: AutoHealManager) -> None:
    """What the types refuse."""
    manager.should_execute_step("invoice", 3)  # type: ignore[arg-type]
    manager.writer = "someone else"  # type: ignore[misc]
    AutoHealManager(policy=42)  # type: ignore[arg-type]
