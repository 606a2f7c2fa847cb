"""Read an audit log once and keep it as compact rows that many replays share.

A what-if reads the log through DuckDB into one dict per record, decodes each record's
``details`` JSON and builds a :class:`~autoheal_otel.StepResult` per result, for every
policy it is given. :func:`decode` does that work once: gates and results (nearly every
record) become small tuples holding interned ids, the record's time both as the aware
datetime and as seconds since the first record, and, for a result, its validated
``StepResult`` (identical results share one object); every other record is kept as the
dict replay reads. The rows are in replay's order (ts, seq, writer).

Invariant: feeding these rows to the replay feed gives the decisions the streamed records
give (``multi_replay`` relies on it; a property test holds them equal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..analytics import AuditAnalytics
from ..analytics._replayer import details_of, result_of
from ..analytics._view import sources
from ..analytics.replay import COLUMNS, REPLAY_MEMORY, count_lines
from ..base._errors import AutoHealError
from ..semconv import EventKind

__all__ = ["ASSUMED", "GATE", "OTHER", "RESULT", "DecodedLog", "decode"]

#: Row codes: a gate, a result, any other record (its payload is the record's dict), and a
#: result the history does not hold but a labelled stop lets us assume (:mod:`.censor`).
GATE, RESULT, OTHER, ASSUMED = 0, 1, 2, 3

#: One row: (code, writer, seq, workflow_id, step_id, ts, now, payload). A gate's payload is
#: the recorded answer; a result's is (StepResult, signals) or the error its fields raise.
Row = tuple[int, Any, int, Any, Any, datetime, float, Any]


@dataclass
class DecodedLog:
    """One audit log, decoded once (see the module docstring)."""

    rows: list[Row] = field(default_factory=list)
    records: int = 0
    skipped_lines: int = 0
    first: datetime | None = None
    #: Each writer's last record as (naive ts, seq): what tells a restart from a visitor.
    last: dict[Any, tuple[datetime, int]] = field(default_factory=dict)
    #: (writer, seq) of every move a running process acknowledged.
    acked: set[tuple[str, int]] = field(default_factory=set)


def _result(rec: dict[str, Any], cache: dict[tuple[Any, ...], Any]) -> Any:
    key = (
        rec["outcome"],
        rec["confidence"],
        rec["second_best"],
        rec["validated"],
        rec["duration_s"],
        rec["details"],
    )
    made = cache.get(key)
    if made is None:
        try:
            made = result_of(rec)
        except AutoHealError as exc:
            made = exc
        if len(cache) < 100_000:  # distinct results are few; a hostile log cannot grow it
            cache[key] = made
    return made


def decode(data_dir: str | Path) -> DecodedLog:
    """Read the audit log of ``data_dir`` (live JSONL and compacted Parquet) once."""
    log = DecodedLog()
    lines = count_lines(sources(Path(data_dir)).jsonl)
    with AuditAnalytics(data_dir, memory_limit=REPLAY_MEMORY) as db:
        log.skipped_lines = max(0, lines - db.live_records())
        log.records = int(db.sql("SELECT count(*) AS n FROM audit")[0]["n"])
        if log.records == 0:
            return log
        first = db.sql("SELECT min(ts) AS ts FROM audit")[0]["ts"].replace(tzinfo=UTC)
        log.first = first
        log.last = {
            r["writer"]: (r["last"]["ts"], r["last"]["seq"])
            for r in db.sql(
                "SELECT writer, max({'ts': ts, 'seq': seq}) AS last FROM audit GROUP BY writer"
            )
        }
        for row in db.sql("SELECT details FROM audit WHERE kind = 'ack'"):
            details = details_of(row["details"])
            if isinstance(details.get("move_writer"), str) and type(details.get("move_seq")) is int:
                log.acked.add((details["move_writer"], details["move_seq"]))
        names: dict[Any, Any] = {}
        results: dict[tuple[Any, ...], Any] = {}
        rows = log.rows
        append = rows.append
        intern = names.setdefault
        for rec in db.iter_sql(f"SELECT {COLUMNS} FROM audit ORDER BY ts, seq, writer"):
            kind, writer, seq = rec["kind"], intern(rec["writer"], rec["writer"]), rec["seq"]
            ts = rec["ts"].replace(tzinfo=UTC)
            now = (ts - first).total_seconds()
            if (writer, seq) in log.acked or kind not in (EventKind.GATE, EventKind.RESULT):
                append((OTHER, writer, seq, None, None, ts, now, rec))
                continue
            wid, step = intern(rec["workflow_id"], rec["workflow_id"]), rec["step_id"]
            step = intern(step, step)
            if kind == EventKind.GATE:
                append((GATE, writer, seq, wid, step, ts, now, rec["allowed"]))
            else:
                made = _result(rec, results)
                signals = rec["signals"]
                if signals:  # a handful of distinct lists: share one of each
                    signals = intern(tuple(signals), signals)
                payload = made if isinstance(made, AutoHealError) else (made, signals or None)
                append((RESULT, writer, seq, wid, step, ts, now, payload))
    return log
