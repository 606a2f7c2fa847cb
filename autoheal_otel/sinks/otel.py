"""OpenTelemetry export of decisions: hook spans, log-based events, metrics.

Library code uses ``opentelemetry-api`` only; the application (or the CLI/demo) configures the
SDK. Providers are injectable; with None the globals are used, and a global that was never
configured (the API's proxy) turns that signal off entirely, so an unconfigured process pays
nothing for it. Invariants:

- one span per hook call, started before the manager's lock (its ids go into the audit
  record) and ended after the events are published; transitions are also span events;
- transitions, global pauses, probes and policy changes are log records with ``event_name``
  in the hook span's context;
- metric attributes are bounded: workflow id, state, outcome, trigger, rule, cause — never a
  step id or a trace id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from .. import semconv as sc
from ..base._events import DecisionEvent
from ..base._models import ExecutionState
from ..semconv import EventKind
from ._otel_attrs import EVENT_NAMES, attrs, bump, resolve_providers, span_attrs

__all__ = ["GaugeSnapshot", "OTelSink", "resolve_providers"]

_INFO, _WARN = _logs.SeverityNumber.INFO, _logs.SeverityNumber.WARN
#: (workflow_id, state, [(scope, rule, count, threshold)]) for every workflow, plus
#: ("*", "paused"|"running", [global windows]) for the global scope.
GaugeSnapshot = Callable[[], Sequence[tuple[str, str, Sequence[tuple[str, str, int, int]]]]]


class OTelSink:
    """Turn decision events into OpenTelemetry spans, log events and metrics.

    The manager creates it when at least one signal is configured, calls :meth:`start_span`
    and :meth:`end_span` around each hook, and registers it as a sink for the rest.
    """

    def __init__(
        self,
        tracer_provider: Any,
        meter_provider: Any,
        logger_provider: Any,
        snapshot: GaugeSnapshot,
        sink_errors: Callable[[], dict[str, int]],
        version: str,
        dropped: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.tracer = (
            tracer_provider.get_tracer(sc.INSTRUMENTATION_SCOPE, version)
            if tracer_provider
            else None
        )
        self.logger = (
            logger_provider.get_logger(sc.INSTRUMENTATION_SCOPE, version)
            if logger_provider
            else None
        )
        self._snapshot = snapshot
        self._sink_errors = sink_errors
        self._dropped: Callable[[], dict[str, int]] = dropped or (lambda: {})
        self._counts_lock = threading.Lock()
        self._decisions: dict[tuple[tuple[str, str], ...], int] = {}
        self._outcomes: dict[tuple[tuple[str, str], ...], int] = {}
        self._transitions: dict[tuple[tuple[str, str], ...], int] = {}
        self._reloads: dict[tuple[tuple[str, str], ...], int] = {}
        self.meter = (
            meter_provider.get_meter(sc.INSTRUMENTATION_SCOPE, version) if meter_provider else None
        )
        if self.meter is None:
            return
        m = self.meter
        # Pull-based counters: emit() bumps plain counts (about 0.1 us); the reader collects
        # them through observable counters, instead of an SDK add() (a few us) per decision.
        for name, counts, unit, description in (
            (
                sc.METRIC_DECISIONS,
                self._decisions,
                "{decision}",
                "Decisions made, by kind and state.",
            ),
            (sc.METRIC_OUTCOMES, self._outcomes, "{step}", "Step results, by outcome and trigger."),
            (
                sc.METRIC_TRANSITIONS,
                self._transitions,
                "{transition}",
                "State changes, by states and cause.",
            ),
            (
                sc.METRIC_POLICY_RELOADS,
                self._reloads,
                "{reload}",
                "Policy changes applied or rejected.",
            ),
        ):
            m.create_observable_counter(name, [self._observe_counts(counts)], unit, description)
        self.hook_duration = m.create_histogram(
            sc.METRIC_HOOK_DURATION,
            "s",
            "Time spent in a hook call.",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS_S,
        )
        self.operation_duration = m.create_histogram(
            sc.METRIC_OPERATION_DURATION,
            "s",
            "Time taken by auto-heal operations: snapshot, rollback, warm restart, shared-log queries.",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS_S,
        )
        self.state_duration = m.create_histogram(
            sc.METRIC_STATE_DURATION,
            "s",
            "Time a workflow spent in a state before leaving it.",
            explicit_bucket_boundaries_advisory=sc.STATE_DURATION_BUCKETS_S,
        )
        m.create_observable_gauge(
            sc.METRIC_WORKFLOWS, [self._observe_states], "{workflow}", "Workflows per state."
        )
        m.create_observable_gauge(
            sc.METRIC_WORKFLOW_STATE,
            [self._observe_workflow_state],
            "1",
            "1 for each workflow's current state.",
        )
        m.create_observable_gauge(
            sc.METRIC_WINDOW_COUNT,
            [self._observe_window(2)],
            "{failure}",
            "Failures inside a sliding window.",
        )
        m.create_observable_gauge(
            sc.METRIC_WINDOW_THRESHOLD,
            [self._observe_window(3)],
            "{failure}",
            "The threshold of a sliding window.",
        )
        m.create_observable_gauge(
            sc.METRIC_WINDOW_FILL, [self._observe_fill], "1", "Window count over its threshold."
        )
        m.create_observable_gauge(
            sc.METRIC_GLOBAL_PAUSED,
            [self._observe_paused],
            "1",
            "1 while the global breaker pauses every workflow.",
        )
        m.create_observable_counter(
            sc.METRIC_EVENTS_DROPPED,
            [lambda _o: [Observation(n, {sc.ATTR_SINK: s}) for s, n in self._dropped().items()]],
            "{event}",
            "Audit lines dropped after the retry buffer overflowed (a full disk for a long time).",
        )
        m.create_observable_counter(
            sc.METRIC_SINK_ERRORS,
            [self._observe_sink_errors],
            "{error}",
            "Errors raised by event sinks (audit writes included).",
        )

    # -- spans around hooks ------------------------------------------------------------------

    def start_span(self, name: str, workflow_id: Any, step_id: Any) -> Any:
        """Start a hook span (not made current: nothing runs inside it but the decision)."""
        if self.tracer is None:
            return None
        attributes = {sc.ATTR_WORKFLOW_ID: str(workflow_id)}
        if step_id is not None:
            attributes[sc.ATTR_STEP_ID] = str(step_id)
        return self.tracer.start_span(name, attributes=attributes)

    def record_operation(self, operation: str, seconds: float) -> None:
        """Record the duration of an auto-heal operation (snapshot, rollback, warm restart)."""
        if self.meter is not None:
            self.operation_duration.record(seconds, {sc.ATTR_OPERATION: operation})

    def end_span(
        self, span: Any, hook: str, events: Iterable[DecisionEvent] | None, duration_s: float
    ) -> None:
        """Annotate the hook span with its decisions, end it, and record the hook duration."""
        if span is not None:
            for event in events or ():
                if event.kind is EventKind.GATE or event.kind is EventKind.RESULT:
                    span.set_attributes(span_attrs(event))
                else:
                    span.add_event(
                        EVENT_NAMES.get(event.kind, "autoheal." + event.kind.value), attrs(event)
                    )
            span.end()
        if self.meter is not None:
            self.hook_duration.record(duration_s, {sc.ATTR_HOOK: hook})

    # -- the sink ------------------------------------------------------------------------

    def emit(self, event: DecisionEvent) -> None:
        """Count the event and, for state changes, emit a log-based event."""
        kind = event.kind
        if self.meter is not None:
            wid = event.workflow_id or ""
            state = event.state.value if event.state is not None else ""
            with self._counts_lock:
                bump(
                    self._decisions,
                    (
                        (sc.ATTR_KIND, kind.value),
                        (sc.ATTR_WORKFLOW_ID, wid),
                        (sc.ATTR_STATE, state),
                    ),
                )
                if kind is EventKind.RESULT and event.outcome is not None:
                    bump(
                        self._outcomes,
                        (
                            (sc.ATTR_WORKFLOW_ID, wid),
                            (sc.ATTR_OUTCOME, event.outcome.value),
                            (sc.ATTR_TRIGGER, event.trigger.value if event.trigger else "none"),
                        ),
                    )
                elif kind is EventKind.TRANSITION:
                    previous = event.previous_state.value if event.previous_state else ""
                    bump(
                        self._transitions,
                        (
                            (sc.ATTR_WORKFLOW_ID, wid),
                            (sc.ATTR_PREVIOUS_STATE, previous),
                            (sc.ATTR_STATE, state),
                            (sc.ATTR_CAUSE, event.cause or ""),
                            (sc.ATTR_RULE, event.rule.rule if event.rule else event.reason),
                        ),
                    )
                elif kind is EventKind.POLICY_RELOAD or kind is EventKind.POLICY_REJECTED:
                    result = "applied" if kind is EventKind.POLICY_RELOAD else "rejected"
                    bump(self._reloads, (("autoheal.result", result),))
            if kind is EventKind.TRANSITION:
                spent = event.details.get("time_in_previous_state_s")
                if isinstance(spent, int | float) and event.previous_state is not None:
                    self.state_duration.record(spent, {sc.ATTR_STATE: event.previous_state.value})
        name = EVENT_NAMES.get(kind)
        if name is not None and self.logger is not None:
            context = None
            if event.trace_id and event.span_id:
                parent = SpanContext(
                    int(event.trace_id, 16),
                    int(event.span_id, 16),
                    is_remote=False,
                    trace_flags=TraceFlags(TraceFlags.SAMPLED),
                )
                context = trace.set_span_in_context(NonRecordingSpan(parent))
            self.logger.emit(
                timestamp=int(event.ts.timestamp() * 1e9) if event.ts else None,
                context=context,
                severity_number=_WARN
                if kind in (EventKind.GLOBAL, EventKind.POLICY_REJECTED)
                or (event.state is not None and event.state.is_blocked)
                else _INFO,
                body=event.message or event.reason,
                attributes=attrs(event),
                event_name=name,
            )

    def flush(self) -> None:
        """Nothing is buffered here (the SDK's processors own their queues)."""

    def close(self) -> None:
        """Nothing to release (the providers belong to the application)."""

    # -- pull-based gauges (run in the metric reader's thread) ------------------------------

    def _observe_counts(
        self, counts: dict[tuple[tuple[str, str], ...], int]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            with self._counts_lock:
                items = list(counts.items())
            return [Observation(n, dict(key)) for key, n in items]

        return observe

    def _observe_states(self, options: CallbackOptions) -> Iterable[Observation]:
        counts: dict[str, int] = {}
        for wid, state, _ in self._snapshot():
            if wid != "*":
                counts[state] = counts.get(state, 0) + 1
        return [
            Observation(counts.get(s.value, 0), {sc.ATTR_STATE: s.value}) for s in ExecutionState
        ]

    def _observe_workflow_state(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(1, {sc.ATTR_WORKFLOW_ID: wid, sc.ATTR_STATE: state})
            for wid, state, _ in self._snapshot()
            if wid != "*"
        ]

    def _observe_window(self, index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(
                    int(window[index]),
                    {sc.ATTR_WORKFLOW_ID: wid, sc.ATTR_SCOPE: window[0], sc.ATTR_RULE: window[1]},
                )
                for wid, _, windows in self._snapshot()
                for window in windows
            ]

        return observe

    def _observe_fill(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(
                count / threshold if threshold else 0.0,
                {sc.ATTR_WORKFLOW_ID: wid, sc.ATTR_SCOPE: scope, sc.ATTR_RULE: rule},
            )
            for wid, _, windows in self._snapshot()
            for scope, rule, count, threshold in windows
        ]

    def _observe_paused(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(1 if state == "paused" else 0)
            for wid, state, _ in self._snapshot()
            if wid == "*"
        ]

    def _observe_sink_errors(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {sc.ATTR_SINK: name}) for name, n in self._sink_errors().items()]
