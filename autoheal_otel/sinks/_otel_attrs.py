"""What an OTel signal says about a decision: attributes, event names, provider choice.

Pure helpers of the OTel sink: span and log-record attributes built from a
:class:`~autoheal_otel.base._events.DecisionEvent` (bounded sets only: never a step id or trace id
on a metric), and :func:`resolve_providers`, which turns an unconfigured global into "off".
"""

from __future__ import annotations

from typing import Any

from opentelemetry import _logs, metrics, trace

from .. import semconv as sc
from ..base._events import DecisionEvent
from ..semconv import EventKind

__all__ = ["EVENT_NAMES", "attrs", "bump", "resolve_providers", "span_attrs"]


EVENT_NAMES = {
    EventKind.TRANSITION: sc.EVENT_TRANSITION,
    EventKind.GLOBAL: sc.EVENT_GLOBAL,
    EventKind.POLICY_RELOAD: sc.EVENT_POLICY,
    EventKind.POLICY_REJECTED: sc.EVENT_POLICY,
    EventKind.PROBE: sc.EVENT_PROBE,
    EventKind.ACTIVATION: sc.EVENT_ACTIVATION,
    EventKind.CALIBRATION: sc.EVENT_CALIBRATION,
}


def _configured(provider: Any) -> bool:
    # The API hands out proxies (or no-op providers) until an SDK provider is set.
    return provider is not None and not type(provider).__name__.startswith(
        ("Proxy", "_Proxy", "NoOp", "_NoOp", "DefaultTracerProvider")
    )


def resolve_providers(
    tracer_provider: Any, meter_provider: Any, logger_provider: Any
) -> tuple[Any, Any, Any]:
    """Return the providers to use (explicit ones, else configured globals, else None)."""
    tp = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    mp = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    lp = logger_provider if logger_provider is not None else _logs.get_logger_provider()
    return (
        tp if _configured(tp) else None,
        mp if _configured(mp) else None,
        lp if _configured(lp) else None,
    )


def attrs(event: DecisionEvent) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        sc.ATTR_KIND: event.kind.value,
        sc.ATTR_SEQ: event.seq,
        sc.ATTR_REASON: event.reason,
    }
    if event.workflow_id is not None:
        attrs[sc.ATTR_WORKFLOW_ID] = event.workflow_id
    if event.step_id is not None:
        attrs[sc.ATTR_STEP_ID] = event.step_id
    if event.state is not None:
        attrs[sc.ATTR_STATE] = event.state.value
    if event.previous_state is not None:
        attrs[sc.ATTR_PREVIOUS_STATE] = event.previous_state.value
    if event.allowed is not None:
        attrs[sc.ATTR_ALLOWED] = event.allowed
    if event.outcome is not None:
        attrs[sc.ATTR_OUTCOME] = event.outcome.value
    if event.trigger is not None:
        attrs[sc.ATTR_TRIGGER] = event.trigger.value
    if event.confidence is not None:
        attrs[sc.ATTR_CONFIDENCE] = event.confidence
    if event.rule is not None:
        attrs[sc.ATTR_RULE] = event.rule.rule
        attrs[sc.ATTR_RULE_COUNT] = event.rule.count
        attrs[sc.ATTR_RULE_THRESHOLD] = event.rule.threshold
    if event.cause is not None:
        attrs[sc.ATTR_CAUSE] = event.cause
    if event.actor is not None:
        attrs[sc.ATTR_ACTOR] = event.actor
    if event.policy_version:
        attrs[sc.ATTR_POLICY_VERSION] = event.policy_version
    if event.artifact_version is not None:
        attrs[sc.ATTR_ARTIFACT_VERSION] = event.artifact_version
    if event.kind is EventKind.CALIBRATION:
        attrs.update(_calibration_attrs(event))
    return attrs


def _calibration_attrs(event: DecisionEvent) -> dict[str, Any]:
    """A calibration record's method, old and new threshold, samples, precision, target."""
    details = event.details
    return {
        name: details[key]
        for key, name in sc.CALIBRATION_ATTRS.items()
        if details.get(key) is not None
    }


def bump(counts: dict[tuple[tuple[str, str], ...], int], key: tuple[tuple[str, str], ...]) -> None:
    counts[key] = counts.get(key, 0) + 1


def span_attrs(event: DecisionEvent) -> dict[str, Any]:
    """The few attributes a hook span needs beyond the ids it was started with."""
    attrs: dict[str, Any] = {sc.ATTR_REASON: event.reason}
    if event.state is not None:
        attrs[sc.ATTR_STATE] = event.state.value
    if event.allowed is not None:
        attrs[sc.ATTR_ALLOWED] = event.allowed
    if event.outcome is not None:
        attrs[sc.ATTR_OUTCOME] = event.outcome.value
        if event.trigger is not None:
            attrs[sc.ATTR_TRIGGER] = event.trigger.value
        if event.confidence is not None:
            attrs[sc.ATTR_CONFIDENCE] = event.confidence
    return attrs
