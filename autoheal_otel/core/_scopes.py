"""The in-memory state of the breakers' scopes: each step, each workflow, the global scope.

Plain objects the ledger owns and the rules read (:mod:`~._breakers`): a
step's streaks and window, a workflow's state, windows, counters, probe bookkeeping and the
settings cached for its state (:meth:`WorkflowRuntime.refresh`), which
:meth:`WorkflowRuntime.is_clean` compares with; the global window and pause latch.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any

from ..base._events import RuleFiring, Template
from ..base._models import ExecutionState, Outcome, StepResult
from ..policy._config import GlobalBreakerPolicy, WorkflowPolicy
from ._windows import SlidingWindow

__all__ = ["GlobalRuntime", "StepRuntime", "WorkflowRuntime"]

#: A module constant: reading an enum member off its class costs more than the test itself.
SUCCESS = Outcome.SUCCESS


class StepRuntime:
    """Counters of one step."""

    __slots__ = (
        "consecutive_low_confidence",
        "consecutive_target_not_found",
        "gate_template",
        "result_template",
        "window",
    )

    def __init__(self) -> None:
        self.consecutive_target_not_found = 0
        self.consecutive_low_confidence = 0
        self.window: SlidingWindow | None = None
        # What a clean gate / result of this step in RUNNING records (see Ledger.repeat).
        self.gate_template: Template | None = None
        self.result_template: Template | None = None

    def reset(self) -> None:
        """Forget the step's history (recovery or operator release)."""
        self.consecutive_target_not_found = 0
        self.consecutive_low_confidence = 0
        if self.window is not None:
            self.window.clear()


class WorkflowRuntime:
    """The mutable state of one workflow, owned by the manager and guarded by its lock."""

    __slots__ = (
        "actor",
        "artifact_version",
        "executions",
        "failures",
        "floor",
        "history",
        "last_errors",
        "margin",
        "policy",
        "previous_state",
        "probe_cooldown",
        "probe_deadline",
        "probe_ready_at",
        "probe_step",
        "reason",
        "recovery_streak",
        "rule",
        "since",
        "since_monotonic",
        "state",
        "steps",
        "strict",
        "version_counts",
        "versions",
        "window",
        "workflow_id",
    )

    def __init__(
        self, workflow_id: str, policy: WorkflowPolicy, now: float, wall: datetime
    ) -> None:
        self.workflow_id = workflow_id
        self.policy = policy
        self.state = ExecutionState.RUNNING
        self.previous_state: ExecutionState | None = None
        self.since = wall
        self.since_monotonic = now
        self.reason = "started"
        self.actor: str | None = None
        self.artifact_version: str | None = None
        # Activation order of the artifact versions this workflow ran with, and per version
        # [executions, successes]: the regression rule compares the last two.
        self.versions: list[str] = []
        self.version_counts: dict[str, list[int]] = {}
        self.rule: RuleFiring | None = None
        self.window = SlidingWindow(policy.workflow_breaker.window_seconds)
        self.steps: dict[str, StepRuntime] = {}
        self.recovery_streak = 0
        self.executions = 0
        self.failures = 0
        # Allocated on first use (see SlidingWindow: healthy workflows should stay small).
        self.history: deque[dict[str, Any]] | None = None
        self.last_errors: deque[dict[str, Any]] | None = None
        self.probe_cooldown = policy.quarantine.probe_cooldown_seconds
        self.probe_ready_at: float | None = None
        self.probe_deadline: float | None = None
        self.probe_step: str | None = None
        self.floor = self.margin = 0.0
        self.strict = False
        self.refresh()

    def is_clean(self, result: StepResult) -> bool:
        """Return True for a clean result in the workflow's state: the one definition.

        A success whose match, if one ran, reaches the low-confidence floor and, where
        ambiguity is strict in this state, leads its runner-up by the margin.
        """
        conf = result.confidence
        return result.outcome is SUCCESS and (
            conf is None
            or (
                conf >= self.floor
                and (
                    not self.strict
                    or result.second_best is None
                    or conf - result.second_best >= self.margin
                )
            )
        )

    def refresh(self) -> None:
        """Recompute the classification settings for the workflow's state and policy.

        Call after every change of ``state`` or ``policy``: ``floor``, ``strict`` and
        ``margin`` are what :meth:`is_clean` and :func:`classify` compare with.
        """
        conf = self.policy.confidence
        self.floor = conf.low_confidence_floor
        self.margin = conf.ambiguity_margin
        self.strict = (
            self.policy.degraded.strict_ambiguity
            if self.state is ExecutionState.DEGRADED
            else self.policy.running.strict_ambiguity
        )

    def retune(self, policy: WorkflowPolicy) -> None:
        """Put a new policy in force: cached settings and window lengths follow it."""
        self.policy = policy
        self.refresh()
        self.window.window_seconds = policy.workflow_breaker.window_seconds
        for step in self.steps.values():
            if step.window is not None:
                step.window.window_seconds = policy.step_breaker.window_seconds

    def remember(self, entry: dict[str, Any], *, error: bool) -> None:
        """Append a transition (or, with ``error``, a failure) to the bounded history."""
        if error:
            if self.last_errors is None:
                self.last_errors = deque(maxlen=10)
            self.last_errors.append(entry)
        else:
            if self.history is None:
                self.history = deque(maxlen=50)
            self.history.append(entry)

    def activate(self, version: str) -> None:
        """Make ``version`` the workflow's artifact version (remembering the order)."""
        if version != self.artifact_version:
            if version in self.versions:
                self.versions.remove(version)
            self.versions.append(version)
            self.artifact_version = version

    def previous_and_active(
        self,
    ) -> tuple[tuple[str, int, int] | None, tuple[str, int, int] | None]:
        """Return (version, executions, successes) of the previous and the active version."""

        def entry(name: str) -> tuple[str, int, int]:
            n, s = self.version_counts.get(name, (0, 0))
            return (name, n, s)

        if not self.versions:
            return None, None
        active = entry(self.versions[-1])
        return (entry(self.versions[-2]) if len(self.versions) > 1 else None), active

    def reset_steps(self) -> None:
        """Forget the step counters and the recovery streak (after recovery).

        The workflow window is kept on purpose: a workflow that flaps between DEGRADED and
        RUNNING must still reach its quarantine threshold.
        """
        for step in self.steps.values():
            step.reset()
        self.recovery_streak = 0


class GlobalRuntime:
    """The global scope: one failure window over all workflows, and the pause latch."""

    __slots__ = ("cause", "paused", "paused_since", "quarantined", "reason", "rule", "window")

    def __init__(self, policy: GlobalBreakerPolicy) -> None:
        self.window = SlidingWindow(policy.window_seconds)
        self.quarantined: set[str] = set()
        self.paused = False
        #: Who set the pause (a ``Cause`` value; None: not known, as after a restart): a
        #: fleet host re-seeds only a pause the fleet or an operator made, never its own.
        self.cause: str | None = None
        self.paused_since: datetime | None = None
        self.reason = ""
        self.rule: RuleFiring | None = None
