"""Scope rules: what a step result means, and which breaker it trips.

Pure functions over the in-memory state of steps, workflows and the global scope
(:mod:`~._scopes`, whose classes this module names too); no I/O, no time
reading (``now`` is passed in). Invariants:

- a result is a *failure* at a scope iff its primary trigger is in that scope's
  ``counted_triggers``; each failing result adds exactly one window entry per scope;
- a window rule fires iff the live count reaches its threshold (expired entries never count);
- a consecutive rule fires iff the counter reaches its threshold; any result that is not of the
  counter's kind resets it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..base._events import RuleFiring
from ..base._models import OUTCOME_TRIGGER, Outcome, StepResult, Trigger
from ..policy._config import GlobalBreakerPolicy, WorkflowPolicy
from ..semconv import Rule
from ._scopes import GlobalRuntime, StepRuntime, WorkflowRuntime

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


@dataclass(frozen=True, slots=True)
class GlobalRule:
    """The global rule, once: the only place its thresholds are compared.

    The machine asks it on every result that is not clean, the shared-directory
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

    def redis_args(self) -> tuple[int, float]:
        """Return the failure threshold and the window in seconds, as the fleet's store takes
        them (its script compares ``count >= threshold`` as :meth:`window_firing` does)."""
        return self.failure_threshold, self.window_seconds


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
