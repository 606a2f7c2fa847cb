"""Names: the one place that spells every event kind, rule, cause, reason code and metric.

Public: code, SQL, dashboards, notebooks and users' own queries import these constants
instead of repeating strings. An audit record's ``kind`` is an :class:`EventKind`, its
``cause`` a :class:`Cause`, its ``reason`` a :class:`Rule`, a :class:`Reason` or
``blocked.<state>`` (see :func:`blocked_reason`).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AUDIT_SCHEMA_VERSION", "Cause", "EventKind", "Reason", "Rule", "blocked_reason"]

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
    SESSION = "session"  # a manager started (with its policy and what it restored) or stopped
    ACTIVATION = "activation"  # a workflow's learned-artifact version became active
    CALIBRATION = "calibration"  # a method's calibrated threshold changed, or was configured
    FLEET = "fleet"  # the fleet link came up or went down, or this host won the probe lease
    ACK = "ack"  # this process applied a move another writer recorded (an operator's command)
    CHECKPOINT = "checkpoint"  # everything the machine needs to continue, as of an instant
    RETENTION = "retention"  # a retention run deleted files past their keep-days (what, why, bytes)
    LABEL = "label"  # an operator judged a stop right or wrong (no gate reads it)


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
    ROLLBACK_REGRESSION = "rollback.regression"
    ROLLBACK_RESTORE = "rollback.restore"
    OPERATOR = "operator"
    FLEET_MAX_WORKFLOWS = "fleet.max_workflows"  # fleet events named more workflows than allowed


class Cause(StrEnum):
    """Why a transition happens (the ``cause`` of a transition or global record)."""

    STEP_BREAKER = "step_breaker"  # consecutive TARGET_NOT_FOUND / low-confidence on a step
    WORKFLOW_BREAKER = "workflow_breaker"  # failures in the workflow window
    GLOBAL_BREAKER = "global_breaker"  # failures of all workflows, or too many quarantines
    RECOVERY = "recovery"  # consecutive validated successes in DEGRADED
    REGRESSION = "regression"  # the active artifact version measurably worse
    RESTORE_OK = "restore_ok"  # rollback restored the last known-good set
    RESTORE_FAILED = "restore_failed"
    PROBE_SUCCESS = "probe_success"  # the half-open probe of a quarantine succeeded
    OPERATOR = "operator"  # force_transition, audited with actor and reason
    FLEET = "fleet"  # a decision of the fleet (another host's breaker, a fleet operator move)


class Reason(StrEnum):
    """The fixed reason codes of records that no :class:`Rule` explains."""

    OK = "ok"  # an allowed gate, a clean result
    PROBE_ADMITTED = "probe.admitted"
    PROBE_FAILED = "probe.failed"
    PROBE_EXPIRED = "probe.expired"
    GLOBAL_RESUMED = "global.resumed"
    ARTIFACT_ACTIVATED = "artifact.activated"
    POLICY_RELOADED = "policy.reloaded"
    POLICY_REJECTED = "policy.rejected"
    SESSION_START = "session.start"
    SESSION_STOP = "session.stop"
    CHECKPOINT = "checkpoint"
    STORE_ATTACHED = "store.attached"
    CALIBRATION_CHANGED = "calibration.changed"  # a method's threshold moved or first appeared
    CALIBRATION_CONFIGURED = "calibration.configured"  # calibration turned on, with overrides
    MOVE_APPLIED = "move.applied"  # an ack: the move changed this process's state
    MOVE_ALREADY = "move.already"  # an ack: this process already was where the move leads
    MOVE_REFUSED = "move.refused"  # an ack: no such edge from this process's state
    FLEET_CONNECTED = "fleet.connected"  # the first connection of this manager's fleet link
    FLEET_RECONNECTED = "fleet.reconnected"
    FLEET_DISCONNECTED = "fleet.disconnected"
    FLEET_EVENT_REJECTED = "fleet.event_rejected"  # a malformed fleet entry, skipped
    FLEET_PROBE_LEASE = "fleet.probe_lease"  # this host holds the fleet's one probe permit
    # The fleet rolled a workflow back, and this host has no versioned store to restore.
    FLEET_ROLLBACK_UNAVAILABLE = "fleet.rollback_unavailable"
    RETENTION_DELETED = "retention.deleted"  # files past their keep-days were deleted
    # The audit log's budget cannot be met without deleting what a live decision reads.
    RETENTION_BLOCKED = "retention.blocked"
    RETENTION_PINNED = "retention.pinned"  # an operator pinned a range of time (kept)
    RETENTION_UNPINNED = "retention.unpinned"  # an operator removed a pin
    LABEL_TRUE = "label.true"  # an operator: the stop (or operator stop) was right
    LABEL_FALSE = "label.false"  # an operator: the stop should not have happened


def blocked_reason(state: str) -> str:
    """Return the reason code of a refused gate in ``state`` (``blocked.quarantined``)."""
    return f"blocked.{state}"


# -- OpenTelemetry names (dotted lowercase; units live in ``unit=``, never in the name) ----

INSTRUMENTATION_SCOPE = "autoheal_otel"

# Span names, one per hook.
SPAN_GATE = "autoheal.should_execute_step"
SPAN_RESULT = "autoheal.on_step_result"
SPAN_FORCE = "autoheal.force_transition"
SPAN_ROLLBACK = "autoheal.rollback"

# Attributes (spans, log events and metrics; metrics never carry step or trace ids).
ATTR_WORKFLOW_ID = "autoheal.workflow.id"
ATTR_STEP_ID = "autoheal.step.id"
ATTR_STATE = "autoheal.state"
ATTR_PREVIOUS_STATE = "autoheal.previous_state"
ATTR_REASON = "autoheal.reason"
ATTR_ALLOWED = "autoheal.allowed"
ATTR_OUTCOME = "autoheal.outcome"
ATTR_TRIGGER = "autoheal.trigger"
ATTR_CONFIDENCE = "autoheal.confidence"
ATTR_RULE = "autoheal.rule"
ATTR_RULE_COUNT = "autoheal.rule.count"
ATTR_RULE_THRESHOLD = "autoheal.rule.threshold"
ATTR_CAUSE = "autoheal.cause"
ATTR_ACTOR = "autoheal.actor"
ATTR_KIND = "autoheal.event.kind"
ATTR_HOOK = "autoheal.hook"
ATTR_SCOPE = "autoheal.scope"
ATTR_SINK = "autoheal.sink"
ATTR_POLICY_VERSION = "autoheal.policy.version"
ATTR_ARTIFACT_VERSION = "autoheal.artifact.version"
ATTR_SEQ = "autoheal.seq"
ATTR_METHOD = "autoheal.match.method"
ATTR_OPERATION = "autoheal.operation"
ATTR_CALIBRATION_PREVIOUS = "autoheal.calibration.previous"
ATTR_CALIBRATION_THRESHOLD = "autoheal.calibration.threshold"
ATTR_CALIBRATION_SAMPLES = "autoheal.calibration.samples"
ATTR_CALIBRATION_PRECISION = "autoheal.calibration.precision"
ATTR_CALIBRATION_TARGET = "autoheal.calibration.target_precision"
#: The ``details`` keys of a calibration record and the log-event attribute of each.
CALIBRATION_ATTRS = {
    "method": ATTR_METHOD,
    "previous": ATTR_CALIBRATION_PREVIOUS,
    "threshold": ATTR_CALIBRATION_THRESHOLD,
    "samples": ATTR_CALIBRATION_SAMPLES,
    "precision": ATTR_CALIBRATION_PRECISION,
    "target_precision": ATTR_CALIBRATION_TARGET,
}

# Log-based events (``event_name``) and span events.
EVENT_TRANSITION = "autoheal.transition"
EVENT_GLOBAL = "autoheal.global"
EVENT_POLICY = "autoheal.policy"
EVENT_PROBE = "autoheal.probe"
EVENT_ACTIVATION = "autoheal.activation"
EVENT_CALIBRATION = "autoheal.calibration"

# Metrics.
METRIC_DECISIONS = "autoheal.decisions"
METRIC_OUTCOMES = "autoheal.step.outcomes"
METRIC_TRANSITIONS = "autoheal.transitions"
METRIC_WORKFLOWS = "autoheal.workflows"
METRIC_WORKFLOW_STATE = "autoheal.workflow.state"
METRIC_WINDOW_COUNT = "autoheal.window.count"
METRIC_WINDOW_THRESHOLD = "autoheal.window.threshold"
METRIC_WINDOW_FILL = "autoheal.window.fill"
METRIC_HOOK_DURATION = "autoheal.hook.duration"
METRIC_STATE_DURATION = "autoheal.state.duration"
METRIC_OPERATION_DURATION = "autoheal.operation.duration"
METRIC_SINK_ERRORS = "autoheal.sink.errors"
METRIC_POLICY_RELOADS = "autoheal.policy.reloads"
METRIC_GLOBAL_PAUSED = "autoheal.global.paused"
METRIC_EVENTS_DROPPED = "autoheal.events.dropped"
METRIC_MATCH_PRECISION = "autoheal.match.precision"
METRIC_MATCH_THRESHOLD = "autoheal.match.threshold"
METRIC_POLICY_ACTIVE = "autoheal.policy.active"  # 1, labelled with the served policy's version
METRIC_VIEW_LAG = "autoheal.view.lag"  # how old the status a follower (`autoheal serve`) shows
METRIC_FLEET_CONNECTED = "autoheal.fleet.connected"  # 1 while the host's fleet link is up
METRIC_FLEET_PROPAGATION = "autoheal.fleet.propagation"  # fleet decision -> applied here
METRIC_FLEET_DROPPED = "autoheal.fleet.dropped"  # results the full shipping queue dropped
METRIC_FLEET_REJECTED = "autoheal.fleet.rejected"  # malformed fleet entries read and skipped
METRIC_DISK_USAGE = "autoheal.disk.usage"  # bytes of the data directory, by part
METRIC_DISK_BUDGET = "autoheal.disk.budget"  # retention.max_bytes
METRIC_DISK_FREE = "autoheal.disk.free"  # free bytes on the data directory's device
METRIC_DISK_FREE_FLOOR = "autoheal.disk.free.floor"  # retention.keep_free_bytes
ATTR_DISK_PART = "autoheal.disk.part"
ATTR_FLEET_HOST = "autoheal.fleet.host"
ATTR_FLEET_KIND = "autoheal.fleet.kind"

#: Histogram buckets in seconds, from a microsecond (a hook) to minutes (time in a state).
DURATION_BUCKETS_S = (
    1e-6,
    2.5e-6,
    5e-6,
    1e-5,
    2.5e-5,
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    1e-2,
    2.5e-2,
    5e-2,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
STATE_DURATION_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)


def prometheus_name(metric: str, kind: str = "gauge", unit: str = "") -> str:
    """Return a metric's name as the OpenTelemetry Prometheus exporter exposes it.

    Dots become underscores; a histogram in seconds gains ``_seconds``, a figure in bytes
    ``_bytes``; counters gain ``_total``. Dashboards and alert rules build their queries
    with it.
    """
    name = metric.replace(".", "_")
    if unit == "s":
        name += "_seconds"
    elif unit == "By":
        name += "_bytes"
    if kind == "counter":
        name += "_total"
    return name


def prometheus_label(attribute: str) -> str:
    """Return an attribute's Prometheus label name."""
    return attribute.replace(".", "_")
