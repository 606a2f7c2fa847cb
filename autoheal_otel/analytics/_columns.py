"""The audit log's columns, derived from the event type.

:class:`~autoheal_otel.base._events.DecisionEvent` is the one definition of an audit record: its
fields, in order, are the record's keys. The DuckDB schema that reads the log (JSONL and
Parquet alike) is computed from those fields' annotations here, so a field added to the event
is a column of every view with no second list to keep in step. An annotation this module does
not know is an error at import time, not a silently missing column.
"""

from __future__ import annotations

import dataclasses

from ..base._events import DecisionEvent, RuleFiring

__all__ = ["AUDIT_COLUMNS", "JSON_SELECT", "audit_columns"]

# Python annotation (as written in the dataclass) -> DuckDB type.
_SQL_TYPES = {
    "int": "BIGINT",
    "str": "VARCHAR",
    "str | None": "VARCHAR",
    "float | None": "DOUBLE",
    "bool | None": "BOOLEAN",
    "datetime | None": "TIMESTAMP",
    "EventKind": "VARCHAR",
    "ExecutionState | None": "VARCHAR",
    "Outcome | None": "VARCHAR",
    "Trigger | None": "VARCHAR",
    "tuple[Trigger, ...]": "VARCHAR[]",
    "Mapping[str, int]": "JSON",
    "Mapping[str, Any]": "JSON",
}
# The schema version is a small number in every file ever written: keep its narrow type.
_OVERRIDES = {"schema_version": "INTEGER"}


def _struct(cls: type) -> str:
    members = ", ".join(f"{f.name} {_SQL_TYPES[str(f.type)]}" for f in dataclasses.fields(cls))
    return f"STRUCT({members})"


def audit_columns() -> dict[str, str]:
    """Return the audit record's columns and DuckDB types, in the event's field order.

    Raises:
        KeyError: a field's annotation has no DuckDB type here (add it to ``_SQL_TYPES``).
    """
    types = {**_SQL_TYPES, "RuleFiring | None": _struct(RuleFiring)}
    return {
        f.name: _OVERRIDES.get(f.name) or types[str(f.type)]
        for f in dataclasses.fields(DecisionEvent)
    }


AUDIT_COLUMNS: dict[str, str] = audit_columns()

# A line leaves out a field with no value (see DecisionEvent.to_json): a missing list or
# object reads back as empty, like the empty value it stands for, never as NULL.
_EMPTY_AS = {"VARCHAR[]": "[]::VARCHAR[]", "JSON": "'{}'::JSON"}

#: The select list over raw JSONL lines: every column, missing lists and objects as empty.
JSON_SELECT = ", ".join(
    f'coalesce("{name}", {_EMPTY_AS[kind]}) AS "{name}"' if kind in _EMPTY_AS else f'"{name}"'
    for name, kind in AUDIT_COLUMNS.items()
)
