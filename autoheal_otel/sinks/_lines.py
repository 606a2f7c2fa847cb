"""Audit lines: one compact JSON object per decision, built from cached templates.

A decision's line is the event's fields (schema version 1) with one rule that keeps it short
without losing anything: a field with no value (null, empty text, empty list or object) is
left out — a reader sees it as null, as it always did — except the keys every record carries
(``schema_version``, ``ts``, ``seq``, ``kind``, ``writer``, ``workflow_id``, ``step_id``,
``state``, ``reason``, ``trace_id``, ``span_id``).

Most lines of a busy log differ only in their time, sequence number and scores: a gate of
workflow W, step S, in RUNNING under policy P is the same text every time. :class:`LineEncoder`
caches that constant middle per combination of the fields that rarely change (for a repeated
event, under its template's id) and serializes only the varying
fields per line, so the common line costs a lookup and one small orjson call instead of a
full serialization. Both caches are bounded (each cleared when full). A line parses to
exactly :meth:`DecisionEvent.to_record` (a test holds the two equal); only the order of keys
differs.
"""

from __future__ import annotations

from typing import Any

import orjson

from .._events import DecisionEvent, dumps, record_fields, unwritable

__all__ = ["LineEncoder"]

# The fields that vary from line to line; every other field is part of the cached template.
_VARYING = ("confidence", "second_best", "duration_s", "trace_id", "span_id")
_STRUCTURED = ("rule", "counts", "details")
# Numbers, text, a datetime and None need no fallback: orjson alone, as dumps() would write them.
_plain = orjson.dumps
_PLAIN = orjson.OPT_UTC_Z


class LineEncoder:
    """Turn decision events into audit lines (see the module docstring)."""

    def __init__(self, max_templates: int = 4096) -> None:
        self._templates: dict[tuple[Any, ...], bytes] = {}
        # The middles of repeated events, under their template's id.
        self._repeated: dict[int, bytes] = {}
        self._max = max_templates

    def encode(self, event: DecisionEvent) -> bytes:
        """Return the event's line, newline included."""
        e = event
        template = e.template_id
        if template is not None:
            middle = self._repeated.get(template)
            if middle is None:
                if len(self._repeated) >= self._max:
                    self._repeated.clear()
                middle = self._repeated[template] = self._middle(e)
        else:
            middle = self._middle_of(e)
        # The varying fields in one orjson call (it writes a float's shortest round-trip form,
        # and null for one JSON cannot hold); the cached middle goes before the closing brace.
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
