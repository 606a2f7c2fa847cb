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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..analytics import AuditAnalytics
from ..analytics._replayer import details_of, result_of
from ..analytics._view import sources
from ..analytics.replay import COLUMNS, REPLAY_MEMORY, _headless, count_lines
from ..base._errors import AutoHealError
from ..base._models import StepResult
from ..core._calibrator import DEFAULT_METHOD, decided, method_of
from ..semconv import EventKind

__all__ = ["ASSUMED", "GATE", "OTHER", "RESULT", "DecodedLog", "decode"]

#: Row codes: a gate, a result, any other record (its payload is the record's dict), and a
#: result the history does not hold but a labelled stop lets us assume (:mod:`.censor`).
GATE, RESULT, OTHER, ASSUMED = 0, 1, 2, 3

#: One row: (code, writer, seq, workflow_id, step_id, ts, now, payload). A gate's payload is
#: the recorded answer; a result's is (StepResult, signals, calibration sample, see
#: :func:`sample_of`) or the error its fields raise; an assumed result's is (StepResult, None).
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
    #: The log's first records were deleted: a replay starts at its first checkpoint.
    headless: bool = False


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


#: The fields a result's StepResult and signals come from, and the hash that names them.
_FIELDS = "outcome, confidence, second_best, validated, duration_s, details, signals"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _acked_sql(acked: set[tuple[str, int]]) -> tuple[str, list[Any]]:
    """Return the SQL test of an acknowledged move (kept whole as an OTHER row), and its
    parameters."""
    if not acked:
        return "false", []
    pairs = [{"w": w, "s": s} for w, s in sorted(acked)]
    test = (
        "coalesce(list_contains(?::STRUCT(w VARCHAR, s BIGINT)[], {'w': writer, 's': seq}), false)"
    )
    return test, [pairs]


def _results(db: AuditAnalytics) -> dict[int, Any] | None:
    """Return each distinct result's payload by the hash of its fields (None: two distinct
    results share a hash, and the rows are decoded one by one instead)."""
    out: dict[int, Any] = {}
    names = ["key", *_FIELDS.split(", ")]
    query = f"SELECT DISTINCT hash({_FIELDS}) AS key, {_FIELDS} FROM audit WHERE kind = 'result'"
    for values in db.iter_rows(query):
        rec = dict(zip(names, values, strict=True))
        if rec["key"] in out:
            return None
        try:
            made = result_of(rec)
        except AutoHealError as exc:
            out[rec["key"]] = exc
            continue
        out[rec["key"]] = (made, rec["signals"] or None, sample_of(made))
    return out


def sample_of(made: StepResult) -> tuple[str, tuple[float, bool]] | None:
    """Return what the calibrator's window takes of a result while calibration is off:
    (method, (confidence, correct)), or None when the result decides no match."""
    ok = decided(made)
    if ok is None or made.confidence is None:
        return None
    method = method_of(made.details) if made.details else DEFAULT_METHOD
    return method, (made.confidence, ok)


def decode(data_dir: str | Path) -> DecodedLog:
    """Read the audit log of ``data_dir`` (live JSONL and compacted Parquet) once.

    Gates and results come from DuckDB as a few plain columns (the time as microseconds, a
    result as the hash of its fields, each distinct result decoded once); every other record
    comes whole from a second query in the same order.
    """
    log = DecodedLog()
    lines = count_lines(sources(Path(data_dir)).jsonl)
    with AuditAnalytics(data_dir, memory_limit=REPLAY_MEMORY) as db:
        log.skipped_lines = max(0, lines - db.live_records())
        log.records = int(db.sql("SELECT count(*) AS n FROM audit")[0]["n"])
        if log.records == 0:
            return log
        head = db.sql("SELECT min(ts) AS ts, epoch_us(min(ts)) AS us FROM audit")[0]
        log.first = head["ts"].replace(tzinfo=UTC)
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
        log.headless = _headless(db)
        results = _results(db)
        if results is None:
            _decode_each(db, log)
        else:
            _decode_columns(db, log, results, head["us"])
    return log


def _decode_columns(
    db: AuditAnalytics, log: DecodedLog, results: dict[int, Any], first_us: int
) -> None:
    """Decode the rows from plain columns (see :func:`decode`)."""
    acked, params = _acked_sql(log.acked)
    lean = f"kind IN ('gate', 'result') AND NOT {acked}"
    order = "ORDER BY ts, seq, writer"
    names = [c.strip() for c in COLUMNS.split(",")]
    others = (
        dict(zip(names, values, strict=True))
        for values in db.iter_rows(
            f"SELECT {COLUMNS} FROM audit WHERE NOT ({lean}) {order}", params
        )
    )
    query = (
        f"SELECT CASE WHEN NOT ({lean}) THEN {OTHER} WHEN kind = 'gate' THEN {GATE}"
        f" ELSE {RESULT} END, writer, seq, workflow_id, step_id, epoch_us(ts), allowed,"
        f" CASE WHEN kind = 'result' THEN hash({_FIELDS}) END FROM audit {order}"
    )
    names_of: dict[Any, Any] = {}
    intern = names_of.setdefault
    append = log.rows.append
    epoch, delta = _EPOCH, timedelta
    last_us, ts, now = None, epoch, 0.0
    for code, writer, seq, wid, step, us, allowed, key in db.iter_rows(query, params * 2):
        if us != last_us:  # a gate and its result often share their instant: one datetime
            last_us, ts = us, epoch + delta(microseconds=us)
            now = (us - first_us) / 1_000_000  # what (ts - first).total_seconds() gives
        writer = intern(writer, writer)
        if code == OTHER:
            rec = next(others, None)
            if rec is None or rec["seq"] != seq or rec["writer"] != writer:
                raise AutoHealError(f"the audit log changed while it was read (seq {seq})")
            append((OTHER, writer, seq, None, None, ts, now, rec))
        elif code == GATE:
            append((GATE, writer, seq, intern(wid, wid), intern(step, step), ts, now, allowed))
        else:
            payload = results[key]
            append((RESULT, writer, seq, intern(wid, wid), intern(step, step), ts, now, payload))


def _decode_each(db: AuditAnalytics, log: DecodedLog) -> None:
    """Decode the rows record by record (the way when two results share a hash)."""
    assert log.first is not None
    first = log.first
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
            payload = (
                made
                if isinstance(made, AutoHealError)
                else (made, signals or None, sample_of(made))
            )
            append((RESULT, writer, seq, wid, step, ts, now, payload))
