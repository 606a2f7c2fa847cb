"""The step wrapper: an executor integrates in three lines.

::

    with manager.step("invoice", "click_submit") as step:   # asks the gate
        score, runner_up = find_and_click(...)               # the executor's own action
        step.succeed(confidence=score, second_best=runner_up, validated=check_page())

Invariants: the gate is asked once on entry (a refusal raises :class:`StepBlockedError`);
exactly one result is reported on exit; the executor's action never runs under the manager's
lock; the watchdog deadline is checked against the injected clock, on exit and whenever the
body calls :meth:`StepGuard.check_deadline` — nothing sleeps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Protocol

from ..base._clock import Clock
from ..base._errors import PostconditionFailed, StepBlockedError, TargetNotFound, WatchdogTimeout
from ..base._models import EffectiveSettings, ExecutionState, Outcome, StepResult


class Hooks(Protocol):
    """What a guarded step needs of the manager (the manager satisfies it)."""

    @property
    def clock(self) -> Clock:
        """Return the injected clock."""
        ...

    def should_execute_step(self, workflow_id: str, step_id: str) -> tuple[bool, str]:
        """Ask the gate."""
        ...

    def on_step_result(self, workflow_id: str, step_id: str, result: StepResult) -> None:
        """Report the step's result."""
        ...

    def get_mode(self, workflow_id: str) -> ExecutionState:
        """Return the workflow's state."""
        ...

    def get_effective_settings(self, workflow_id: str) -> EffectiveSettings:
        """Return the workflow's settings."""
        ...

    def step(
        self,
        workflow_id: str,
        step_id: str,
        *,
        timeout_s: float | None = None,
        exceptions: Mapping[type[BaseException], Any] | None = None,
    ) -> StepGuard:
        """Wrap one step."""
        ...


__all__ = [
    "PostconditionFailed",
    "StepGuard",
    "TargetNotFound",
    "WatchdogTimeout",
    "guard_decorator",
]


DEFAULT_EXCEPTIONS: Mapping[type[BaseException], Outcome] = {
    TargetNotFound: Outcome.TARGET_NOT_FOUND,
    PostconditionFailed: Outcome.POSTCONDITION_FAILED,
    TimeoutError: Outcome.WATCHDOG_TIMEOUT,
}


class StepGuard:
    """Context manager around one step (see the module docstring).

    Exceptions raised by the body are mapped to outcomes (``TargetNotFound`` ->
    TARGET_NOT_FOUND, ``PostconditionFailed`` -> POSTCONDITION_FAILED, ``TimeoutError`` ->
    WATCHDOG_TIMEOUT, anything else -> ERROR; extend with ``exceptions``), reported, and
    re-raised. A body that ran past ``timeout_s`` is reported as WATCHDOG_TIMEOUT whatever it
    said. A body that reported nothing counts as an unvalidated success.
    """

    def __init__(
        self,
        manager: Hooks,
        workflow_id: str,
        step_id: str,
        *,
        timeout_s: float,
        exceptions: Mapping[type[BaseException], Any] | None = None,
    ) -> None:
        self.manager = manager
        self.workflow_id = workflow_id
        self.step_id = step_id
        self.timeout_s = timeout_s
        self._exceptions = {
            **DEFAULT_EXCEPTIONS,
            **{k: Outcome(v) for k, v in (exceptions or {}).items()},
        }
        self._result: StepResult | None = None
        self._started: float | None = None
        self.settings: EffectiveSettings | None = None
        self.reason = ""
        self.result: StepResult | None = None

    # -- inside the body ---------------------------------------------------------------------

    def succeed(
        self,
        *,
        confidence: float | None = None,
        second_best: float | None = None,
        validated: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Report a success (validated when the postcondition was checked)."""
        self.report(
            Outcome.SUCCESS,
            confidence=confidence,
            second_best=second_best,
            validated=validated,
            details=details,
        )

    def fail(
        self,
        outcome: Outcome | str,
        *,
        confidence: float | None = None,
        second_best: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Report a failure without raising."""
        self.report(outcome, confidence=confidence, second_best=second_best, details=details)

    def report(
        self,
        outcome: Outcome | str,
        *,
        confidence: float | None = None,
        second_best: float | None = None,
        validated: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Set the result to report on exit (validated now: a bad score raises here)."""
        self._result = StepResult(
            outcome=Outcome(outcome) if not isinstance(outcome, Outcome) else outcome,
            confidence=confidence,
            second_best=second_best,
            validated=validated,
            details=dict(details or {}),
        )

    @property
    def elapsed_s(self) -> float:
        """Return the seconds since the step started."""
        if self._started is None:
            return 0.0
        return self.manager.clock.monotonic() - self._started

    @property
    def remaining_s(self) -> float:
        """Return the seconds left before the watchdog deadline."""
        return self.timeout_s - self.elapsed_s

    def check_deadline(self) -> None:
        """Raise :class:`WatchdogTimeout` if the deadline has passed (call between actions)."""
        if self.elapsed_s > self.timeout_s:
            raise WatchdogTimeout(
                f"step {self.step_id!r} of {self.workflow_id!r} exceeded its "
                f"{self.timeout_s:g} s deadline"
            )

    # -- protocol ---------------------------------------------------------------------------

    def __enter__(self) -> StepGuard:
        allowed, reason = self.manager.should_execute_step(self.workflow_id, self.step_id)
        self.reason = reason
        if not allowed:
            state = self.manager.get_mode(self.workflow_id)
            raise StepBlockedError(self.workflow_id, self.step_id, state.value, reason)
        self.settings = self.manager.get_effective_settings(self.workflow_id)
        self._started = self.manager.clock.monotonic()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = self.elapsed_s
        reported = self._result
        details: dict[str, Any] = dict(reported.details) if reported else {}
        if exc is not None:
            outcome = self._outcome_of(exc)
            details.update(error_type=type(exc).__name__, error=str(exc)[:500])
        else:
            outcome = reported.outcome if reported else Outcome.SUCCESS
        if elapsed > self.timeout_s and outcome is not Outcome.WATCHDOG_TIMEOUT:
            details.update(timeout_s=self.timeout_s, original_outcome=outcome.value)
            outcome = Outcome.WATCHDOG_TIMEOUT
        self.result = StepResult(
            outcome=outcome,
            confidence=reported.confidence if reported else None,
            second_best=reported.second_best if reported else None,
            validated=bool(reported and reported.validated and outcome is Outcome.SUCCESS),
            duration_s=elapsed,
            details=details,
        )
        self.manager.on_step_result(self.workflow_id, self.step_id, self.result)

    def _outcome_of(self, exc: BaseException) -> Outcome:
        for klass in type(exc).__mro__:
            if klass in self._exceptions:
                return self._exceptions[klass]
        return Outcome.ERROR


def guard_decorator(
    manager: Hooks, workflow_id: str, step_id: str, timeout_s: float | None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Build the decorator of :meth:`AutoHealManager.guard`.

    The wrapped function may return a :class:`StepResult` (reported as is, timing added);
    any other return value counts as an unvalidated success and is passed through.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with manager.step(workflow_id, step_id, timeout_s=timeout_s) as step:
                value = func(*args, **kwargs)
                if isinstance(value, StepResult):
                    step.report(
                        value.outcome,
                        confidence=value.confidence,
                        second_best=value.second_best,
                        validated=value.validated,
                        details=value.details,
                    )
            return value

        return wrapper

    return decorate
