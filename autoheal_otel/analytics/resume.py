"""Warm restart from a checkpoint: the newest one at or before the oldest record needed, then
the records after it, instead of the whole log.

A restart at ``as_of`` reads back (see :mod:`.restore`) each workflow's state, windows,
streaks within ``audit.restore_horizon_seconds``, version counts and calibration windows. All
of it but the streaks is in a checkpoint; the streaks are counted from the results within the
restore horizon. So the oldest record a restart needs is ``as_of - restore_horizon_seconds``,
and :func:`resume_state` starts from the newest checkpoint at or before it: it puts the
checkpoint into a machine, feeds it every record after it as replay does
(:class:`~._replayer.Replayer`, which also reads back the streaks and calibration windows as
of the restart), and returns the machine's state as of ``as_of`` as one more checkpoint. The
files it reads are those holding a record at or after that checkpoint, so a restart reads an
hour or two of log whatever the age of the host.

Invariant (held by a property test): a manager restarted this way decides every later input
exactly as one restarted from the whole log by the queries of :mod:`.restore`.

None (the caller reads the whole log): no checkpoint that old, or it cannot be read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..core._machine import Machine
from ..policy._config import PolicyConfig
from . import AuditAnalytics, ts_param
from ._ordered import ordered
from ._replay_report import ReplayReport
from ._replayer import Replayer, details_of
from .replay import _recorded_policy, columns_from
from .restore import RESTORE_MEMORY, UNREAD

__all__ = ["Resumed", "newest_checkpoint", "resume_state"]

_log = logging.getLogger("autoheal_otel")


@dataclass
class Resumed:
    """The machine's state as of a restart, from a checkpoint and the records after it."""

    #: What :func:`~autoheal_otel.core._checkpoint.capture` returned, as of the restart.
    state: dict[str, Any]
    #: The checkpoint started from (its time, naive UTC) and the records read after it.
    checkpoint_ts: datetime
    tail_records: int
    #: (method, confidence, correct) of each calibration window, oldest first.
    calibration_samples: list[tuple[str, float, bool]] = field(default_factory=list)
    #: (workflow, step) -> (target-not-found, low-confidence) within the restore horizon.
    streaks: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    max_seq: int = 0


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def newest_checkpoint(db: AuditAnalytics, at_or_before: datetime) -> datetime | None:
    """Return the time (naive UTC) of the newest checkpoint at or before ``at_or_before``."""
    row = db.sql(
        "SELECT max(ts) AS ts FROM audit_events WHERE kind = 'checkpoint' AND ts <= $at::TIMESTAMP",
        {"at": ts_param(at_or_before)},
    )
    return row[0]["ts"] if row else None


def resume_state(
    data_dir: Path, policy: PolicyConfig, as_of: datetime, *, whole: bool = False
) -> Resumed | None:
    """Return the machine's state as of ``as_of`` from the newest usable checkpoint, or None.

    ``policy`` is the new process's: its restore horizon says how far back the restart reads.
    ``whole``: read the whole log from its first record instead (what the checkpoint spares;
    the property test compares the two).
    """
    horizon = policy.audit.restore_horizon_seconds
    need = _naive(as_of) - timedelta(seconds=horizon)
    if whole:
        with AuditAnalytics(data_dir, memory_limit=RESTORE_MEMORY) as db:
            first = db.sql("SELECT min(ts) AS ts FROM audit")[0]["ts"]
            if first is None:
                return None
            return _from(db, first, need, as_of, horizon, _recorded_policy(db))
    # Gates before the horizon are no checkpoint: a first look need not hold them.
    with AuditAnalytics(data_dir, memory_limit=RESTORE_MEMORY, gates_after=need, omit=UNREAD) as db:
        start = newest_checkpoint(db, need)
    if start is None:
        return None
    with AuditAnalytics(data_dir, memory_limit=RESTORE_MEMORY, after=start) as db:
        return _from(db, start, need, as_of, horizon, None)


def _from(
    db: AuditAnalytics,
    start: datetime,
    need: datetime,
    as_of: datetime,
    horizon: float,
    recorded: PolicyConfig | None,
) -> Resumed | None:
    since = {"since": ts_param(start)}
    last = {
        r["writer"]: (r["last"]["ts"], r["last"]["seq"])
        for r in db.sql(
            "SELECT writer, max({'ts': ts, 'seq': seq}) AS last FROM audit"
            " WHERE ts >= $since::TIMESTAMP GROUP BY writer",
            since,
        )
    }
    report = ReplayReport(what_if=False)
    first = start.replace(tzinfo=UTC)
    # The machine's policy comes from the checkpoint (and the policy changes after it), or
    # from the first session's record when the whole log is read.
    machine = Machine(recorded or PolicyConfig(), "restart", (0.0, first))
    replayer = Replayer(machine, report, first, last)
    replayer.headless = recorded is None  # start at the checkpoint: the records before it wait
    for row in db.sql(
        "SELECT details FROM audit WHERE kind = 'ack' AND ts >= $since::TIMESTAMP", since
    ):
        details = details_of(row["details"])
        if isinstance(details.get("move_writer"), str) and type(details.get("move_seq")) is int:
            replayer.acked.add((details["move_writer"], details["move_seq"]))
    records = 0
    newest = first
    for rec in ordered(db, columns_from(start if recorded is None else None), since=start):
        replayer.feed(rec)
        records += 1
        newest = max(newest, rec["ts"].replace(tzinfo=UTC))
    if replayer.headless or (recorded is None and report.from_checkpoint is None):
        _log.warning("warm restart could not start from the checkpoint of %s", start)
        return None
    wall = max(as_of.astimezone(UTC) if as_of.tzinfo else as_of.replace(tzinfo=UTC), newest)
    now = (wall - first).total_seconds()
    state = machine.checkpoint(now, wall)
    seq = db.query("max_seq", since=need)[0]
    return Resumed(
        state=state,
        checkpoint_ts=start,
        tail_records=records,
        calibration_samples=list(replayer.readback.calibration_samples()),
        streaks=replayer.readback.streaks(wall, horizon),
        max_seq=int(seq["max_seq"]),
    )
