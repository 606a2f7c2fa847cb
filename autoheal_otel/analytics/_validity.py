"""What makes an audit record usable by a reader, said once for Python and for DuckDB.

A record a reader cannot use is reported (file, line, why) by :func:`scan` and skipped by every
reader: the DuckDB views, the warm restart, replay and the CLI. It never stops a manager from
starting. A record is usable when:

- it is a JSON object of a known ``schema_version`` and ``kind``, with a ``ts`` and a ``seq``
  in ``[0, 2**63 - 1]`` (DuckDB's BIGINT);
- its ``state`` and ``previous_state`` are null or a known :class:`ExecutionState`, its
  ``outcome`` null or a known :class:`Outcome`, its ``trigger`` null or a known
  :class:`Trigger`;
- a transition names a workflow and a state; a gate or a result names a workflow and a step,
  and a result has an outcome; ids are 1-256 characters without control characters.

:func:`record_problem` (Python) and :data:`VALID_SQL` (a DuckDB ``WHERE`` clause) state the
same rule; a test keeps them equal on hostile records.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ..base._models import MAX_ID_LENGTH, ExecutionState, Outcome, Trigger
from ..semconv import AUDIT_SCHEMA_VERSION, EventKind

__all__ = ["KNOWN_KINDS", "SEQ_MAX", "VALID_SQL", "record_problem"]

#: The largest sequence number a reader accepts: DuckDB's BIGINT.
SEQ_MAX = 2**63 - 1

KNOWN_KINDS = tuple(k.value for k in EventKind)
KNOWN_STATES = tuple(s.value for s in ExecutionState)
KNOWN_OUTCOMES = tuple(o.value for o in Outcome)
KNOWN_TRIGGERS = tuple(t.value for t in Trigger)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"({column} IS NULL OR {column} IN ({', '.join(repr(v) for v in values)}))"


def _id_sql(column: str) -> str:
    # An id is a non-empty string of at most MAX_ID_LENGTH characters, no control characters.
    return (
        f"({column} IS NOT NULL AND length({column}) BETWEEN 1 AND {MAX_ID_LENGTH}"
        f" AND NOT regexp_matches({column}, '[\\x00-\\x1f\\x7f]'))"
    )


VALID_SQL = " AND ".join(
    [
        "seq IS NOT NULL AND seq >= 0 AND ts IS NOT NULL AND schema_version IS NOT NULL",
        f"schema_version <= {AUDIT_SCHEMA_VERSION}",
        f"kind IN ({', '.join(repr(k) for k in KNOWN_KINDS)})",
        _in("state", KNOWN_STATES),
        _in("previous_state", KNOWN_STATES),
        _in("outcome", KNOWN_OUTCOMES),
        _in("trigger", KNOWN_TRIGGERS),
        f"(kind <> 'transition' OR (state IS NOT NULL AND {_id_sql('workflow_id')}))",
        f"(kind NOT IN ('gate', 'result') OR ({_id_sql('workflow_id')} AND {_id_sql('step_id')}))",
        "(kind <> 'result' OR outcome IS NOT NULL)",
    ]
)


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _bad_id(value: Any) -> bool:
    return (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_ID_LENGTH
        or _CONTROL.search(value) is not None
    )


_VOCABULARIES = (
    ("state", frozenset(KNOWN_STATES)),
    ("previous_state", frozenset(KNOWN_STATES)),
    ("outcome", frozenset(KNOWN_OUTCOMES)),
    ("trigger", frozenset(KNOWN_TRIGGERS)),
)


def _value_problem(record: dict[str, Any]) -> str | None:
    for key, known in _VOCABULARIES:
        value = record.get(key)
        if value is not None and (not isinstance(value, str) or value not in known):
            return f"unknown {key} {value!r}"
    kind = record["kind"]
    if kind == "transition" and (record.get("state") is None or _bad_id(record.get("workflow_id"))):
        return "a transition without a workflow_id or a state"
    if kind in ("gate", "result"):
        for key in ("workflow_id", "step_id"):
            if _bad_id(record.get(key)):
                return f"bad {key} {record.get(key)!r}"
        if kind == "result" and record.get("outcome") is None:
            return "a result without an outcome"
    return None


def record_problem(record: Any) -> str | None:
    """Return why a parsed audit line is unusable, or None when a reader can use it."""
    if not isinstance(record, dict):
        return "not a JSON object"
    version = record.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > AUDIT_SCHEMA_VERSION:
        return f"unsupported schema_version {version!r}"
    if record.get("kind") not in KNOWN_KINDS:
        return f"unknown kind {record.get('kind')!r}"
    seq, ts = record.get("seq"), record.get("ts")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(ts, str):
        return "missing seq or ts"
    if not 0 <= seq <= SEQ_MAX:
        return f"seq {seq} outside [0, {SEQ_MAX}]"
    try:
        datetime.fromisoformat(ts)
    except ValueError:
        return f"bad ts {ts[:40]!r}"
    return _value_problem(record)
