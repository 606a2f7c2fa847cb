"""Deterministic replay and what-if analysis of a recorded audit log.

Replay reads the log in order of (ts, seq, writer) and feeds the state machine the same
inputs the live manager fed it — gates, step results, operator moves, finished restores,
artifact activations, policy changes, sessions and restarts — on the recorded times. With the
policy that was recorded, the automatic transitions (breakers, recovery, probes, regressions,
global pauses) and the gate answers must come out as recorded; a what-if replay passes
another policy and reports the degrades, quarantines and pauses it would have produced.

A session start after which no writer met so far writes again is a warm restart: replay puts
the new process's policy in force and starts from what the restart read back from the log
(:mod:`._readback`: calibration windows, step streaks within the restore horizon, as of when
it read). Another writer's session beside a running one (``autoheal force``, a snapshot) is
not: the running writer goes on under its own policy and state, and a move it recorded that a
running process acknowledged takes effect, as it did live, at its first ``ack`` record.

Records stream through in slices of time (``_ordered``), so memory stays flat whatever the
log's size, to :class:`~._replayer.Replayer`, which feeds each to the machine and compares.
Several processes deciding in one directory replay as the one machine they were under shared
decisions; without them, replay names them (``unshared_writers``). Timestamps have
microsecond resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ..core._machine import Machine
from ..policy._config import PolicyConfig
from . import AuditAnalytics
from ._ordered import ordered
from ._replay_report import ReplayReport
from ._replayer import Replayer, details_of
from ._view import sources

__all__ = ["ReplayReport", "replay"]

#: What DuckDB may hold while replay streams a log (beyond it, it spills to temporary files).
REPLAY_MEMORY = "192MB"
COLUMNS = (
    "ts, seq, kind, workflow_id, step_id, state, previous_state, reason, message, allowed,"
    " outcome, confidence, second_best, validated, duration_s, cause, actor, artifact_version,"
    " details, signals, writer"
)


def columns_from(checkpoint: datetime | None) -> str:
    """Return :data:`COLUMNS` with every checkpoint's details but the one at ``checkpoint``
    (naive UTC; None: none) left out: replay starts from one checkpoint at most, and a host's
    hourly checkpoints (hundreds of KB each) would otherwise fill the sort of every slice."""
    keep = "false" if checkpoint is None else f"ts = TIMESTAMP '{checkpoint.isoformat(sep=' ')}'"
    return COLUMNS.replace(
        " details,", f" CASE WHEN kind <> 'checkpoint' OR {keep} THEN details END AS details,"
    )


def count_lines(paths: list[Path]) -> int:
    """Count the lines of JSONL segments by their newlines (a torn last line counts too)."""
    lines = 0
    for path in paths:
        with path.open("rb") as handle:
            last = b"\n"
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
            lines += last != b"\n"
    return lines


def _recorded_policy(db: AuditAnalytics) -> PolicyConfig:
    rows = db.sql(
        "SELECT details FROM audit_events WHERE kind = 'session' AND reason = 'session.start'"
        " ORDER BY ts, seq LIMIT 1"
    )
    policy = details_of(rows[0]["details"]).get("policy") if rows else None
    return PolicyConfig.from_dict(policy) if policy else PolicyConfig()


def _headless(db: AuditAnalytics) -> bool:
    """Return whether the log's first records were deleted (replay then needs a checkpoint).

    A whole log begins with the session start of a manager that found nothing to restore; a
    log whose first record is anything else (a warm restart's session start, a decision)
    lost its head once it holds a checkpoint. Without a checkpoint, a log with no session
    start whose writers' numbering does not begin at 1 lost its head too.
    """
    row = db.sql(
        "SELECT min(ts) FILTER (WHERE kind = 'checkpoint') AS checkpoint,"
        " min(ts) FILTER (WHERE kind = 'session' AND reason = 'session.start') AS session,"
        " min(seq) AS seq FROM audit"
    )[0]
    if row["checkpoint"] is None:
        return row["session"] is None and (row["seq"] or 1) > 1
    first = db.sql(
        "SELECT kind, reason, details FROM audit WHERE ts = (SELECT min(ts) FROM audit)"
        " ORDER BY seq LIMIT 1"
    )[0]
    fresh = (
        first["kind"] == "session"
        and first["reason"] == "session.start"
        and not details_of(first["details"]).get("restored")
    )
    return not fresh


def replay(
    data_dir: str | Path,
    policy: PolicyConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Replay the audit log of ``data_dir``; with ``policy``, as a what-if.

    ``progress(done, total)`` is called at once (with the live lines as the estimate, before
    the log is parsed), before the first record, and every 10,000 records after.
    """
    report = ReplayReport(what_if=policy is not None)
    live = sources(Path(data_dir)).jsonl
    lines = count_lines(live)
    if progress is not None:
        progress(0, max(lines, 1))
    # Live JSONL and compacted Parquet alike; DuckDB spills past REPLAY_MEMORY to disk.
    with AuditAnalytics(data_dir, memory_limit=REPLAY_MEMORY) as db:
        kept = db.live_records()
        # The views and scan() skip by the same rule: what the lines hold beyond the kept rows.
        report.skipped_lines = max(0, lines - kept)
        total = int(db.sql("SELECT count(*) AS n FROM audit")[0]["n"])
        if total == 0:
            return report
        first = db.sql("SELECT min(ts) AS ts FROM audit")[0]["ts"].replace(tzinfo=UTC)
        config = policy or _recorded_policy(db)
        machine = Machine(config, "replay", (0.0, first))
        report.policy_version = machine.policy.version
        last = {
            r["writer"]: (r["last"]["ts"], r["last"]["seq"])
            for r in db.sql(
                "SELECT writer, max({'ts': ts, 'seq': seq}) AS last FROM audit GROUP BY writer"
            )
        }
        replayer = Replayer(machine, report, first, last)
        replayer.headless = _headless(db)
        start = None
        if replayer.headless:
            start = db.sql("SELECT min(ts) AS ts FROM audit WHERE kind = 'checkpoint'")[0]["ts"]
        for row in db.sql("SELECT details FROM audit WHERE kind = 'ack'"):
            details = details_of(row["details"])
            if isinstance(details.get("move_writer"), str) and type(details.get("move_seq")) is int:
                replayer.acked.add((details["move_writer"], details["move_seq"]))
        if progress is not None:
            progress(0, total)
        # One sort of the whole log does not fit DuckDB's memory limit: slices of time.
        for index, rec in enumerate(ordered(db, columns_from(start)), start=1):
            replayer.feed(rec)
            if progress is not None and index % 10_000 == 0:
                progress(index, total)
        report.records = total
        replayer.finish()
    if progress is not None:
        progress(total, total)
    replayer.compare()
    return report
