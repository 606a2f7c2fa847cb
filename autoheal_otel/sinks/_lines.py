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

import math
from typing import Any

import orjson

from .._events import DecisionEvent, Template, dumps, record_fields

__all__ = ["LineEncoder"]

# The fields that vary from line to line; every other field is part of the cached template.
_VARYING = ("confidence", "second_best", "duration_s", "trace_id", "span_id")
_STRUCTURED = ("rule", "counts", "details")


_NO_TRACE = b',"trace_id":null,"span_id":null'
_OPTIONS = orjson.OPT_UTC_Z
_dumps = orjson.dumps


_FINITE = math.isfinite


def _number(name: bytes, value: float) -> bytes:
    # Not finite: JSON has no such number (orjson writes null).
    return b',"%s":%s' % (name, dumps(value))


def _text(value: str | None) -> bytes:
    # Trace ids are hex: JSON strings as they stand.
    return b'"%s"' % value.encode() if value else b"null"


class LineEncoder:
    """Turn decision events into audit lines (see the module docstring)."""

    def __init__(self, max_templates: int = 4096) -> None:
        self._templates: dict[tuple[Any, ...], bytes] = {}
        # The middles of repeated events, under their Template (compared by identity).
        self._repeated: dict[Template, bytes] = {}
        self._max = max_templates

    def encode(self, event: DecisionEvent) -> bytes:
        """Return the event's line, newline included."""
        e = event
        template = e.template
        if template is not None:
            middle = self._repeated.get(template)
            if middle is None:
                if len(self._repeated) >= self._max:
                    self._repeated.clear()
                middle = self._repeated[template] = self._middle(e)
        else:
            middle = self._middle_of(e)
        line = b'{"ts":%s,"seq":%d%s' % (_dumps(e.ts, option=_OPTIONS), e.seq, middle)
        # %r of a finite float is its shortest round-trip form, valid JSON as it stands.
        value = e.confidence
        if value is not None:
            line += b',"confidence":%r' % value if _FINITE(value) else _number(b"confidence", value)
        value = e.second_best
        if value is not None:
            line += (
                b',"second_best":%r' % value if _FINITE(value) else _number(b"second_best", value)
            )
        value = e.duration_s
        if value is not None:
            line += b',"duration_s":%r' % value if _FINITE(value) else _number(b"duration_s", value)
        trace_id = e.trace_id
        if trace_id is None and e.span_id is None:
            line += _NO_TRACE
        else:
            line += b',"trace_id":%s,"span_id":%s' % (_text(trace_id), _text(e.span_id))
        if e.rule is not None:
            line += b',"rule":' + dumps(e.rule.to_dict())
        if e.counts:
            line += b',"counts":' + dumps(e.counts)
        if e.details:
            line += b',"details":' + dumps(e.details)
        return line + b"}\n"

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
            middle = self._templates[key] = self._middle(e)
        return middle

    @staticmethod
    def _middle(e: DecisionEvent) -> bytes:
        """Return the constant middle of the event's line (every field but the varying)."""
        record = record_fields(e)
        for name in ("ts", "seq", *_VARYING, *_STRUCTURED):
            record.pop(name, None)
        middle = dumps(record)[1:-1]
        return b"," + middle if middle else b""
