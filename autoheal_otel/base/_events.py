"""One event type for every decision, and the sink interface that receives it.

Invariants:
- a :class:`DecisionEvent` is built under the manager's lock, never changed afterwards, and
  published after the lock is released;
- every sink receives every event once, in ``seq`` order (see
  :mod:`~autoheal_otel.runtime._publisher`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, runtime_checkable

import orjson

from ..semconv import AUDIT_SCHEMA_VERSION, EventKind
from ._models import ExecutionState, Outcome, Trigger

__all__ = [
    "ALWAYS",
    "REPEATED",
    "DecisionEvent",
    "EventSink",
    "LineEncoder",
    "RuleFiring",
    "Template",
    "dumps",
    "encode_line",
    "line_middle",
    "new_event",
    "record_fields",
    "unwritable",
]


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


# Neither frozen nor slotted, on purpose: two events are built on every executor step, and
# :func:`new_event` builds one from the fields a decision has (the rest keep their class
# defaults) at a fraction of the dataclass __init__'s cost. Sinks receive the same object and
# must treat it as read-only (the publisher's contract).
#: The empty mapping every event without counts or details shares (read-only).
_NO_MAPPING: Mapping[str, Any] = MappingProxyType({})


@dataclass(kw_only=True)
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
    #: The id of the :class:`Template` the event repeats (None: built field by field). Not a
    #: field of the record: a sink may cache under it what every repetition shares.
    template_id: ClassVar[int | None] = None

    @property
    def is_transition(self) -> bool:
        """Return True for a state change."""
        return self.kind is EventKind.TRANSITION

    def to_json(self) -> bytes:
        """Return the audit line of this event (compact JSON and a newline).

        The line holds :func:`record_fields`: a field with no value is left out, except
        the keys of :data:`ALWAYS` (a reader sees a missing field as null).
        """
        return encode_line(self)

    def to_record(self) -> dict[str, Any]:
        """Return the audit record of this event as plain JSON data."""
        record: dict[str, Any] = orjson.loads(self.to_json())
        return record


#: The keys every audit record carries, even when their value is null.
ALWAYS = frozenset(
    {
        "schema_version",
        "ts",
        "seq",
        "kind",
        "writer",
        "workflow_id",
        "step_id",
        "state",
        "reason",
        "trace_id",
        "span_id",
    }
)
_EMPTY: tuple[Any, ...] = (None, "", (), {})
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


# Events built by new_event without counts or details read this shared, read-only mapping.
DecisionEvent.counts = _NO_MAPPING
DecisionEvent.details = _NO_MAPPING
_new = object.__new__
#: The record's fields, in order (``__dataclass_fields__`` also lists the class variables).
_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(DecisionEvent))


def new_event(fields: dict[str, Any]) -> DecisionEvent:
    """Return an event whose attributes are ``fields`` (taken over, not copied).

    The fast path of :class:`Ledger.emit <autoheal_otel.core._ledger.Ledger.emit>`: no __init__
    runs, and every field not in ``fields`` reads as its default. ``fields`` must hold the
    fields without defaults (``ts``, ``seq``, ``kind``, ``workflow_id``) and only field names.
    """
    event: DecisionEvent = _new(DecisionEvent)
    event.__dict__ = fields
    return event


#: The fields that differ between repetitions of one :class:`Template`.
REPEATED = frozenset(
    {"seq", "ts", "trace_id", "span_id", "confidence", "second_best", "duration_s", "details"}
)


class Template:
    """The fields a recurring decision repeats: a clean gate or result of one step.

    Built from the first event of its kind (:meth:`of`), so a repetition carries exactly the
    fields the field-by-field path would give it; valid while ``key`` (what those fields
    depend on, such as the policy and artifact versions) is unchanged. Each template has an
    ``id`` unique in the process, which its repetitions carry as ``template_id``: a sink caches
    what it derives from a template (the JSONL sink: the line's constant middle) under it.
    """

    __slots__ = ("fields", "id", "key")

    def __init__(self, key: tuple[Any, ...], fields: dict[str, Any]) -> None:
        self.key = key
        self.id = next(_TEMPLATE_IDS)
        # The repetitions' attributes: the fields, and the id as a plain (JSON-ready) number.
        self.fields = {**fields, "template_id": self.id}

    @classmethod
    def of(cls, event: DecisionEvent, key: tuple[Any, ...]) -> Template:
        """Return the template of ``event``: its fields but the :data:`REPEATED` ones."""
        return cls(key, {k: v for k, v in event.__dict__.items() if k not in REPEATED})


_TEMPLATE_IDS = itertools.count(1)


def record_fields(event: DecisionEvent) -> dict[str, Any]:
    """Return the fields an audit line holds: every field with a value, and :data:`ALWAYS`."""
    out: dict[str, Any] = {}
    for name in _FIELD_NAMES:
        value = getattr(event, name)
        if name in ALWAYS or not (value is None or (not value and value in _EMPTY)):
            out[name] = value
    return out


def _default(value: Any) -> Any:
    # Free-form details may hold anything: keep what JSON can say, name the rest.
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def unwritable(details: Mapping[str, Any], error: Exception) -> dict[str, str]:
    """Return what a record says instead of ``details`` that JSON cannot hold.

    orjson refuses integers beyond 64 bits and nesting past its depth limit; a decision's
    record must never be lost for its free-form details, so they are kept as text.
    """
    return {"unwritable": repr(details)[:2000], "error": str(error)}


def dumps(value: Any) -> bytes:
    """Serialize audit data as the log writes it (compact, UTC ``Z`` times, any details)."""
    return orjson.dumps(value, option=_OPTIONS, default=_default)


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


# The audit line. Most lines of a busy log differ only in their time, sequence number and
# scores: a gate of workflow W, step S, in RUNNING under policy P is the same text every time.
# A line is a *head* of the fields that vary (serialized per line) and a *middle* of the rest
# (cached per combination of the fields that rarely change, or under a template's id), so the
# common line costs a lookup and one small orjson call. A line parses to exactly
# :meth:`DecisionEvent.to_record`; only the order of keys differs from the field order.
_VARYING = ("confidence", "second_best", "duration_s", "trace_id", "span_id")
_STRUCTURED = ("rule", "counts", "details")
# Numbers, text, a datetime and None need no fallback: orjson alone, as dumps() would write them.
_plain = orjson.dumps
_PLAIN = orjson.OPT_UTC_Z


def encode_line(event: DecisionEvent, middle: bytes | None = None) -> bytes:
    """Return the event's audit line, newline included: the one definition of the line.

    ``middle`` is the line's constant part (:func:`line_middle`), when the caller cached it
    (:class:`LineEncoder`). A field with no value is left out, except the keys of
    :data:`ALWAYS`; details JSON cannot hold are kept as text (:func:`unwritable`).
    """
    e = event
    if middle is None:
        middle = line_middle(e)
    # The varying fields in one orjson call (it writes a float's shortest round-trip form,
    # and null for one JSON cannot hold); the middle goes before the closing brace.
    head: dict[str, Any] = {"ts": e.ts, "seq": e.seq}
    if e.confidence is not None:
        head["confidence"] = e.confidence
    if e.second_best is not None:
        head["second_best"] = e.second_best
    if e.duration_s is not None:
        head["duration_s"] = e.duration_s
    head["trace_id"] = e.trace_id or None
    head["span_id"] = e.span_id or None
    if e.rule is None and not e.counts and not e.details:
        return _plain(head, option=_PLAIN)[:-1] + middle + b"}\n"
    if e.rule is not None:
        head["rule"] = e.rule.to_dict()
    if e.counts:
        head["counts"] = e.counts
    if e.details:
        head["details"] = e.details
    try:
        return dumps(head)[:-1] + middle + b"}\n"
    except TypeError as exc:  # details JSON cannot hold: the line is kept, with them as text
        head["details"] = unwritable(e.details, exc)
        return dumps(head)[:-1] + middle + b"}\n"


def line_middle(e: DecisionEvent) -> bytes:
    """Return the constant middle of the event's line (every field but the varying)."""
    record = record_fields(e)
    for name in ("ts", "seq", *_VARYING, *_STRUCTURED):
        record.pop(name, None)
    middle = dumps(record)[1:-1]
    return b"," + middle if middle else b""


class LineEncoder:
    """Turn decision events into audit lines, caching each line's middle (bounded caches)."""

    def __init__(self, max_templates: int = 4096) -> None:
        self._templates: dict[tuple[Any, ...], bytes] = {}
        # The middles of repeated events, under their template's id.
        self._repeated: dict[int, bytes] = {}
        self._max = max_templates

    def encode(self, event: DecisionEvent) -> bytes:
        """Return the event's line, newline included (as :func:`encode_line`)."""
        template = event.template_id
        if template is not None:
            middle = self._repeated.get(template)
            if middle is None:
                if len(self._repeated) >= self._max:
                    self._repeated.clear()
                middle = self._repeated[template] = line_middle(event)
        else:
            middle = self._middle_of(event)
        return encode_line(event, middle)

    def _middle_of(self, e: DecisionEvent) -> bytes:
        """Return the cached middle of an event built field by field (keyed on its fields)."""
        key = (
            e.kind,
            e.writer,
            e.workflow_id,
            e.step_id,
            e.state,
            e.previous_state,
            e.reason,
            e.message,
            e.allowed,
            e.outcome,
            e.trigger,
            e.signals,
            e.validated,
            e.cause,
            e.actor,
            e.policy_version,
            e.artifact_version,
            e.learning,
            e.schema_version,
        )
        middle = self._templates.get(key)
        if middle is None:
            if len(self._templates) >= self._max:
                self._templates.clear()
            middle = self._templates[key] = line_middle(e)
        return middle
