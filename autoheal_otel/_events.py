"""One event type for every decision, and the publisher that hands it to the sinks.

Invariants:
- a :class:`DecisionEvent` is built under the manager's lock, never changed afterwards, and
  published after the lock is released;
- events reach every sink in ``seq`` order, even when several threads decide at once: the
  thread that publishes drains a shared queue under a publish lock, so when a hook returns its
  own events have been handed to every sink;
- a sink that raises is contained: the error is counted (per sink) and logged, the other sinks
  still get the event, and the executor's hook never sees the exception.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import orjson

from ._models import ExecutionState, Outcome, Trigger
from .semconv import AUDIT_SCHEMA_VERSION, EventKind

__all__ = ["DecisionEvent", "EventSink", "Publisher", "RuleFiring"]

_log = logging.getLogger("autoheal_otel")


@dataclass(frozen=True, slots=True)
class RuleFiring:
    """Why a rule fired: the rule, its scope and key, the count against the threshold."""

    rule: str
    scope: str
    key: str
    count: int
    threshold: int
    window_seconds: float | None = None

    def describe(self) -> str:
        """Return the firing as one readable phrase."""
        if self.window_seconds is None:
            where = f"({self.scope} {self.key!r})" if self.scope != "global" else ""
            kind = "in a row" if "consecutive" in self.rule or "recovery" in self.rule else "now"
            return f"{self.rule}: {self.count} {kind} >= {self.threshold} {where}".rstrip()
        return (
            f"{self.rule}: {self.count} in {self.window_seconds:g} s >= {self.threshold} "
            f"({self.scope} {self.key!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "rule": self.rule,
            "scope": self.scope,
            "key": self.key,
            "count": self.count,
            "threshold": self.threshold,
            "window_seconds": self.window_seconds,
        }


# Not frozen on purpose: a frozen dataclass with this many fields takes ~2.5 us to build
# (object.__setattr__ per field) against ~0.6 us, and two are built on every executor step.
# Sinks receive the same object and must treat it as read-only (the publisher's contract).
@dataclass(slots=True, kw_only=True)
class DecisionEvent:
    """One decision of the manager, as every sink receives it (read-only for sinks).

    The fields, in this order, are the audit record (schema version 1): the JSONL sink
    serializes the event as it is. ``state`` is the workflow's state after the decision;
    ``previous_state`` is set on transitions. ``reason`` is a short machine-readable code (a
    :class:`Rule` value, ``ok``, ``blocked.<state>``, ...); ``message`` says the same for
    people. ``learning`` says, on results, whether learning was on for the workflow (the
    storage rule of the success store reads it). ``trace_id`` / ``span_id`` are the hook span's
    ids in hex when tracing is on.
    """

    schema_version: int = AUDIT_SCHEMA_VERSION
    ts: datetime | None
    seq: int
    kind: EventKind
    writer: str = ""
    workflow_id: str | None
    step_id: str | None = None
    state: ExecutionState | None = None
    previous_state: ExecutionState | None = None
    reason: str = ""
    message: str = ""
    allowed: bool | None = None
    outcome: Outcome | None = None
    trigger: Trigger | None = None
    signals: tuple[Trigger, ...] = ()
    confidence: float | None = None
    second_best: float | None = None
    validated: bool | None = None
    duration_s: float | None = None
    rule: RuleFiring | None = None
    cause: str | None = None
    actor: str | None = None
    policy_version: str = ""
    artifact_version: str | None = None
    learning: bool | None = None
    trace_id: str | None = None
    span_id: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_transition(self) -> bool:
        """Return True for a state change."""
        return self.kind is EventKind.TRANSITION

    def to_json(self) -> bytes:
        """Return the audit line of this event (compact JSON and a newline)."""
        return orjson.dumps(self, option=_ORJSON_OPTIONS, default=_default)

    def to_record(self) -> dict[str, Any]:
        """Return the audit record of this event as plain JSON data."""
        record: dict[str, Any] = orjson.loads(self.to_json())
        return record


_ORJSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def _default(value: Any) -> Any:
    # Free-form details may hold anything: keep what JSON can say, name the rest.
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


@runtime_checkable
class EventSink(Protocol):
    """Where decision events go (shaped like an OpenTelemetry exporter).

    ``emit`` is called once per event, in ``seq`` order, never under the manager's lock;
    ``flush`` makes what was emitted durable; ``close`` releases resources.
    """

    def emit(self, event: DecisionEvent) -> None:
        """Handle one event."""
        ...

    def flush(self) -> None:
        """Make every emitted event durable."""
        ...

    def close(self) -> None:
        """Flush and release resources; no emit follows."""
        ...


class Publisher:
    """Fan events out to the sinks, in order, containing each sink's failures."""

    def __init__(self) -> None:
        #: The registered sinks; a plain attribute because the hot path tests it on every hook.
        self.sinks: tuple[EventSink, ...] = ()
        self._pending: deque[DecisionEvent] = deque()
        self._publish_lock = threading.Lock()
        self.published = 0
        self.errors: dict[str, int] = {}

    def add(self, sink: EventSink) -> None:
        """Register a sink (copy-on-write, so publishing never sees a half-updated list)."""
        if not isinstance(sink, EventSink):
            raise TypeError(f"sink must have emit/flush/close methods, but was {sink!r}")
        self.sinks = (*self.sinks, sink)

    def remove(self, sink: EventSink) -> None:
        """Unregister a sink."""
        self.sinks = tuple(s for s in self.sinks if s is not sink)

    def enqueue(self, events: Iterable[DecisionEvent]) -> None:
        """Queue events built under the manager's lock (call it while holding that lock)."""
        self._pending.extend(events)

    def drain(self) -> None:
        """Hand every queued event to every sink, in order (call it after the lock)."""
        pending = self._pending
        with self._publish_lock:
            while pending:
                event = pending.popleft()
                for sink in self.sinks:
                    try:
                        sink.emit(event)
                    except Exception:  # a sink must never break the executor's hook
                        self._count_error(sink, "emit")
                self.published += 1

    def flush(self) -> None:
        """Drain, then flush every sink."""
        self.drain()
        for sink in self.sinks:
            try:
                sink.flush()
            except Exception:  # contained like emit
                self._count_error(sink, "flush")

    def close(self) -> None:
        """Drain, then close every sink."""
        self.drain()
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # contained like emit
                self._count_error(sink, "close")

    def _count_error(self, sink: EventSink, operation: str) -> None:
        name = type(sink).__name__
        self.errors[name] = self.errors.get(name, 0) + 1
        _log.exception("autoheal sink %s failed in %s", name, operation)
