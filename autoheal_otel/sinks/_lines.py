"""Audit lines: one compact JSON object per decision, built from cached templates.

A decision's line is the event's fields (schema version 1) with one rule that keeps it short
without losing anything: a field with no value (null, empty text, empty list or object) is
left out — a reader sees it as null, as it always did — except the keys every record carries
(``schema_version``, ``ts``, ``seq``, ``kind``, ``writer``, ``workflow_id``, ``step_id``,
``state``, ``reason``, ``trace_id``, ``span_id``).

Most lines of a busy log differ only in their time, sequence number and scores: a gate of
workflow W, step S, in RUNNING under policy P is the same text every time. :class:`LineEncoder`
caches that constant middle per combination of the fields that rarely change and writes only
the varying fields per line, so the common line costs a dictionary lookup and a join instead
of a full serialization. The cache is bounded (cleared when full). A line parses to exactly
:meth:`DecisionEvent.to_record` (a test holds the two equal); only the order of keys differs.
"""

from __future__ import annotations

from typing import Any

from .._events import DecisionEvent, dumps, record_fields

__all__ = ["LineEncoder"]

# The fields that vary from line to line; every other field is part of the cached template.
_VARYING = ("confidence", "second_best", "duration_s", "trace_id", "span_id")
_STRUCTURED = ("rule", "counts", "details")
_INF = float("inf")


def _number(name: bytes, value: float) -> bytes:
    # repr() of a finite float is its shortest round-trip form, valid JSON as it stands.
    if -_INF < value < _INF:
        return b',"%s":%s' % (name, repr(value).encode())
    return b',"%s":%s' % (name, dumps(value))


class LineEncoder:
    """Turn decision events into audit lines (see the module docstring)."""

    def __init__(self, max_templates: int = 4096) -> None:
        self._templates: dict[tuple[Any, ...], bytes] = {}
        self._max = max_templates

    def encode(self, event: DecisionEvent) -> bytes:
        """Return the event's line, newline included."""
        e = event
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
            middle = self._template(e, key)
        parts = [b'{"ts":', dumps(e.ts), b',"seq":', str(e.seq).encode(), middle]
        if e.confidence is not None:
            parts.append(_number(b"confidence", e.confidence))
        if e.second_best is not None:
            parts.append(_number(b"second_best", e.second_best))
        if e.duration_s is not None:
            parts.append(_number(b"duration_s", e.duration_s))
        trace_id, span_id = e.trace_id, e.span_id
        parts.append(b',"trace_id":' + (b'"%s"' % trace_id.encode() if trace_id else b"null"))
        parts.append(b',"span_id":' + (b'"%s"' % span_id.encode() if span_id else b"null"))
        if e.rule is not None:
            parts.append(b',"rule":' + dumps(e.rule.to_dict()))
        if e.counts:
            parts.append(b',"counts":' + dumps(e.counts))
        if e.details:
            parts.append(b',"details":' + dumps(e.details))
        parts.append(b"}\n")
        return b"".join(parts)

    def _template(self, e: DecisionEvent, key: tuple[Any, ...]) -> bytes:
        record = record_fields(e)
        for name in ("ts", "seq", *_VARYING, *_STRUCTURED):
            record.pop(name, None)
        middle = dumps(record)[1:-1]
        middle = b"," + middle if middle else b""
        if len(self._templates) >= self._max:
            self._templates.clear()
        self._templates[key] = middle
        return middle
