"""Scope rules: what a step result means, and which breaker it trips.

Pure functions over the in-memory runtime of steps, workflows and the global scope; no I/O,
no time reading (``now`` is passed in). Invariants:

- a result is a *failure* at a scope iff its primary trigger is in that scope's
  ``counted_triggers``; each failing result adds exactly one window entry per scope;
- a window rule fires iff the live count reaches its threshold (expired entries never count);
- a consecutive rule fires iff the counter reaches its threshold; any result that is not of the
  counter's kind resets it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..base._events import RuleFiring, Template
from ..base._models import OUTCOME_TRIGGER, ExecutionState, Outcome, StepResult, Trigger
from ..policy._config import GlobalBreakerPolicy, WorkflowPolicy
from ..semconv import Rule
from ._windows import SlidingWindow

__all__ = [
    "Classification",
    "GlobalRule",
    "GlobalRuntime",
    "StepRuntime",
    "WorkflowRuntime",
    "classify",
    "global_rule",
    "step_rule",
    "workflow_rule",
]


@dataclass(frozen=True, slots=True)
class Classification:
    """What one result means for the breakers.

    ``primary`` is the trigger the windows count (the outcome's for a failing outcome, else
    ambiguity, else low confidence), ``signals`` every trigger the result raised, and
    ``clean`` a success with no signal at all.
    """

    primary: Trigger | None
    signals: tuple[Trigger, ...]
    clean: bool
    low_confidence: bool


CLEAN = Classification(None, (), True, False)


def classify(result: StepResult, wf: WorkflowRuntime) -> Classification:
    """Classify a result under the workflow's settings in its current state.

    Clean when :meth:`WorkflowRuntime.is_clean` says so; otherwise the signals, in order: the
    failing outcome's trigger, an ambiguous match (strict ambiguity in this state, the margin
    to the runner-up too small), a low-confidence match (below the floor).
    """
    if wf.is_clean(result):
        return CLEAN
    confidence = result.confidence
    low = confidence is not None and confidence < wf.floor
    ambiguous = (
        wf.strict
        and confidence is not None
        and result.second_best is not None
        and confidence - result.second_best < wf.margin
    )
    signals: list[Trigger] = []
    failing = OUTCOME_TRIGGER.get(result.outcome)
    if failing is not None:
        signals.append(failing)
    if ambiguous:
        signals.append(Trigger.AMBIGUOUS_MATCH)
    if low:
        signals.append(Trigger.LOW_CONFIDENCE)
    return Classification(signals[0], tuple(signals), False, low)


def counts_toward_recovery(result: StepResult, policy: WorkflowPolicy) -> bool:
    """Return True when a clean success in DEGRADED proves the workflow healthy again.

    It must be validated (when postconditions are required there) and, when a match ran,
    meet the raised threshold.
    """
    if result.outcome is not Outcome.SUCCESS:
        return False
    if policy.degraded.postcondition_required and not result.validated:
        return False
    confidence = result.confidence
    return confidence is None or confidence >= policy.confidence.degraded_threshold


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
        return result.outcome is Outcome.SUCCESS and (
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


def step_rule(
    step: StepRuntime, step_id: str, policy: WorkflowPolicy, now: float
) -> RuleFiring | None:
    """Return the step rule that fires now, if any (TARGET_NOT_FOUND first)."""
    sp = policy.step_breaker
    if step.consecutive_target_not_found >= sp.consecutive_target_not_found:
        return RuleFiring(
            Rule.STEP_CONSECUTIVE_TARGET_NOT_FOUND,
            "step",
            step_id,
            step.consecutive_target_not_found,
            sp.consecutive_target_not_found,
        )
    if step.consecutive_low_confidence >= sp.consecutive_low_confidence:
        return RuleFiring(
            Rule.STEP_CONSECUTIVE_LOW_CONFIDENCE,
            "step",
            step_id,
            step.consecutive_low_confidence,
            sp.consecutive_low_confidence,
        )
    threshold = sp.window_failure_threshold
    if threshold is not None and step.window is not None:
        count = step.window.total(now)
        if count >= threshold:
            return RuleFiring(
                Rule.STEP_FAILURE_WINDOW, "step", step_id, count, threshold, sp.window_seconds
            )
    return None


def workflow_rule(wf: WorkflowRuntime, now: float) -> RuleFiring | None:
    """Return the workflow window rule if it fires now."""
    wp = wf.policy.workflow_breaker
    count = wf.window.total(now)
    if count >= wp.failure_threshold:
        return RuleFiring(
            Rule.WORKFLOW_FAILURE_WINDOW,
            "workflow",
            wf.workflow_id,
            count,
            wp.failure_threshold,
            wp.window_seconds,
        )
    return None


@dataclass(frozen=True)
class GlobalRule:
    """The global rule, once: the only place its thresholds are compared.

    The machine asks it on every counted failure and new quarantine, the shared-directory
    upkeep asks it with every writer's count, and the fleet's Redis script takes its numbers
    from :meth:`redis_args` (a test holds the script's verdict equal to this one).
    """

    failure_threshold: int
    window_seconds: float
    quarantined_threshold: int

    @classmethod
    def of(cls, policy: GlobalBreakerPolicy) -> GlobalRule:
        """Return the rule a policy's ``breakers.global`` section sets."""
        return cls(
            policy.failure_threshold, policy.window_seconds, policy.quarantined_workflows_threshold
        )

    def window_firing(self, count: int, *, forced: bool = False) -> RuleFiring | None:
        """Return the failure-window firing at ``count`` failures in the window, if it fires.

        ``forced``: another writer already paused on it; the firing is taken over, its count
        at least the threshold.
        """
        if count < self.failure_threshold and not forced:
            return None
        shown = max(count, self.failure_threshold) if forced else count
        return RuleFiring(
            Rule.GLOBAL_FAILURE_WINDOW,
            "global",
            "*",
            shown,
            self.failure_threshold,
            self.window_seconds,
        )

    def quarantine_firing(self, quarantined: int) -> RuleFiring | None:
        """Return the quarantined-workflows firing at ``quarantined`` workflows, if it fires."""
        if quarantined < self.quarantined_threshold:
            return None
        return RuleFiring(
            Rule.GLOBAL_QUARANTINED_WORKFLOWS,
            "global",
            "*",
            quarantined,
            self.quarantined_threshold,
        )

    def redis_args(self) -> tuple[int, int]:
        """Return the failure threshold and the window in milliseconds, as the fleet's script
        takes them (it compares ``count >= threshold`` as :meth:`window_firing` does)."""
        return self.failure_threshold, int(self.window_seconds * 1000)


def global_rule(
    glob: GlobalRuntime,
    policy: GlobalBreakerPolicy,
    now: float,
    new_quarantine: bool,
    *,
    windowed: bool = True,
) -> RuleFiring | None:
    """Return the global rule that fires now, if any.

    The quarantine count fires only on a new quarantine (edge-triggered): after an operator
    resumes, the workflows still quarantined do not pause everything again by themselves.
    ``windowed=False`` skips the failure window (the fleet decides it).
    """
    if glob.paused:
        return None
    rule = GlobalRule.of(policy)
    firing = rule.window_firing(glob.window.total(now)) if windowed else None
    if firing is None and new_quarantine:
        firing = rule.quarantine_firing(len(glob.quarantined))
    return firing
