"""Names: the one place that spells every event kind, rule, attribute and metric.

Code, SQL, dashboards and tests import these constants instead of repeating strings.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AUDIT_SCHEMA_VERSION", "EventKind", "Rule"]

#: Version of the audit record layout (bumped on an incompatible change).
AUDIT_SCHEMA_VERSION = 1


class EventKind(StrEnum):
    """The kinds of decision events (the ``kind`` field of an audit record)."""

    GATE = "gate"  # should_execute_step answered
    RESULT = "result"  # on_step_result recorded a step's outcome
    TRANSITION = "transition"  # a workflow changed state (automatic or forced)
    PROBE = "probe"  # a half-open probe was admitted, failed or expired
    GLOBAL = "global"  # the global breaker paused, or an operator resumed, every workflow
    POLICY_RELOAD = "policy_reload"  # a changed policy file was applied
    POLICY_REJECTED = "policy_rejected"  # a changed policy file was invalid; last good kept


class Rule(StrEnum):
    """The rules that can fire, by scope (the ``rule`` of a decision)."""

    STEP_CONSECUTIVE_TARGET_NOT_FOUND = "step.consecutive_target_not_found"
    STEP_CONSECUTIVE_LOW_CONFIDENCE = "step.consecutive_low_confidence"
    STEP_FAILURE_WINDOW = "step.failure_window"
    WORKFLOW_FAILURE_WINDOW = "workflow.failure_window"
    GLOBAL_FAILURE_WINDOW = "global.failure_window"
    GLOBAL_QUARANTINED_WORKFLOWS = "global.quarantined_workflows"
    DEGRADED_RECOVERY = "degraded.recovery"
    QUARANTINE_PROBE = "quarantine.probe"
    OPERATOR = "operator"
