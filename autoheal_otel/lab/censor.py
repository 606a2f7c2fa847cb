"""Assume what a labelled stop hid: the results the stopped workflow would have had.

A stop censors the history: while a workflow was QUARANTINED its gates were refused and no
step ran, so a policy that would have stopped later (or not at all) has nothing to replay
there, and a replay alone could never favour a more patient policy. :func:`assume` adds,
after each refused gate of a labelled stop's workflow between the stop and the operator's
release (or the end of the log), an *assumed* result that a candidate sees only if it let
that gate pass: for a true stop, the step's last result before the stop (a failing step goes
on failing); for a false stop, the step's last success before it (the workflow would have
run clean, as it did once released). Missed incidents hide nothing: the machine let them run.

Invariant: the recorded rows are unchanged and in order; a policy that refuses the same gates
as the log replays exactly as its what-if (it never sees an assumed result).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from .decoded import ASSUMED, GATE, RESULT, DecodedLog, Row
from .objective import Incident

__all__ = ["assume"]


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def assume(log: DecodedLog, incidents: list[Incident]) -> DecodedLog:
    """Return ``log`` with assumed results in the spans its labelled automatic stops hid."""
    spans: dict[Any, list[tuple[datetime, datetime, bool]]] = {}
    end = log.rows[-1][5] if log.rows else None
    for incident in incidents:
        lab = incident.label
        if lab.stopped_by != "automatic" or end is None:
            continue
        until = _aware(lab.released_at) if lab.released_at is not None else end
        spans.setdefault(lab.workflow_id, []).append((incident.stop, until, incident.right))
    if not spans:
        return log
    last_any: dict[tuple[Any, Any], Any] = {}
    last_ok: dict[tuple[Any, Any], Any] = {}
    frozen: dict[tuple[Any, Any, datetime], Any] = {}
    rows: list[Row] = []
    for row in log.rows:
        rows.append(row)
        code, wid, step, ts = row[0], row[3], row[4], row[5]
        if code == RESULT and not isinstance(row[7], Exception):
            last_any[wid, step] = row[7][0]
            if row[7][0].outcome == "success":
                last_ok[wid, step] = row[7][0]
            continue
        if code != GATE or row[7] is not False or wid not in spans:
            continue
        for start, until, right in spans[wid]:
            if start <= ts < until:
                key = (wid, step, start)
                if key not in frozen:  # what the step did last before this stop
                    frozen[key] = (last_any if right else last_ok).get((wid, step))
                made = frozen[key]
                if made is not None:
                    rows.append((ASSUMED, row[1], row[2], wid, step, ts, row[6], (made, None)))
                break
    return replace(log, rows=rows)
