"""Audit-log retention: whole compacted files, oldest first, always behind a checkpoint.

What may go: only compaction outputs (Parquet; raw JSONL segments are compacted first, never
deleted by retention), whole outputs (its four files), a prefix of the log oldest first (the
kept log has no holes, so replay and a restart read it through). An output goes when it lies
wholly before a *cut*, and a cut is always a checkpoint that stays:

- ``keep_days``: the cut is the newest checkpoint at or before ``now - keep_days``, so every
  decision of the last ``keep_days`` replays from a kept checkpoint;
- ``max_bytes`` / ``keep_free_bytes``: while the data directory is over its budget (every
  part counted) or the device under its free-space floor, older outputs go too, up to the
  newest checkpoint at or before the oldest record a live decision reads (:func:`protected`:
  the restore horizon, the longest breaker window, the calibration windows when calibration
  is on; a version's executions and successes, the regression rule's and the known-good
  set's evidence, travel in that checkpoint);
- nothing overlapping a pin (:mod:`._pins`) nor newer than one goes.

When the budget cannot be met so, nothing protected is deleted: the plan says why
(``blocked``), the run records it once (``retention.blocked``) and ``/health`` is degraded.

Crash safety (rename-then-delete): a run writes its plan to :data:`JOURNAL` (atomically),
then one fsynced manifest line ``{"retires": [...]}`` — the commit: from it on, no reader
sees those outputs — then unlinks their files, then its record is written and the journal
removed. A run killed before the manifest line deleted nothing (the stale journal is
dropped); after it, the next run (:func:`resume`) unlinks what is left and records the run
(``resumed``). Every step holds compaction's lock, so a merge never races a deletion.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..analytics._view import COMPACTED_DIR, MANIFEST, CompactedOutput, read_manifest
from ..base._crash import RETENTION, crash_point
from ..base._fs import fsync_path, read_regular_file, write_atomic
from ..policy._config import PolicyConfig
from ..sinks.jsonl import AUDIT_DIR, segment_paths
from ._pins import Pin, overlaps
from ._usage import human_bytes

__all__ = [
    "JOURNAL",
    "AuditCut",
    "plan_audit",
    "protected",
    "resume",
    "retire",
]

#: The names of an output's files (what compaction writes): nothing else is ever deleted.
_OUTPUT_FILE = re.compile(r"c-[0-9]{8}T[0-9]{6}-[0-9a-f]{6}(\.events|\.rollup|\.hourly)?\.parquet")
#: The plan of a run under way (in the data directory).
JOURNAL = ".audit-retention-journal.json"
_LOCK = "compaction.lock"


@dataclass
class AuditCut:
    """What one run deletes of the audit log, and why."""

    retire: list[CompactedOutput] = field(default_factory=list)
    #: Per output id: ``keep_days``, ``max_bytes`` or ``keep_free_bytes``.
    why: dict[str, str] = field(default_factory=dict)
    bytes: int = 0
    #: Bytes the budget and the floor asked for (0: met).
    needed: int = 0
    #: The checkpoints kept at the cuts (naive UTC) and the oldest record a decision reads.
    keep_days_cut: datetime | None = None
    budget_cut: datetime | None = None
    protected_from: datetime | None = None
    #: Why the budget cannot be met without deleting what must stay (None: it can).
    blocked: str | None = None


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _newest_at_or_before(times: list[datetime], t: datetime) -> datetime | None:
    kept = [c for c in times if c <= t]
    return max(kept) if kept else None


def protected(db: Any, policy: PolicyConfig, now: datetime) -> datetime:
    """Return (naive UTC) the oldest record a live decision reads as of ``now``."""
    reach = [
        policy.audit.restore_horizon_seconds,
        policy.breakers.global_.window_seconds,
        policy.breakers.workflow.window_seconds,
        policy.breakers.step.window_seconds,
    ]
    for wid in policy.workflows:
        scoped = policy.for_workflow(wid)
        reach += [scoped.workflow_breaker.window_seconds, scoped.step_breaker.window_seconds]
    oldest = _naive(now) - timedelta(seconds=max(reach))
    if policy.calibration.enabled:
        since = db.rows("calibration_horizon", as_of=now, window=policy.calibration.window)
        if since and since[0][0] is not None:
            oldest = min(oldest, since[0][0])
    return oldest


def plan_audit(
    data_dir: Path,
    policy: PolicyConfig,
    now: datetime,
    total_bytes: int,
    free_bytes: int | None,
    pins: list[Pin],
) -> AuditCut:
    """Return what to delete of ``data_dir``'s audit log now (see the module docstring)."""
    from ..analytics import AuditAnalytics
    from ..analytics.restore import RESTORE_MEMORY, UNREAD

    keep = policy.retention
    cut = AuditCut()
    cut.needed = max(0, total_bytes - keep.max_bytes)
    if free_bytes is not None:
        cut.needed = max(cut.needed, keep.keep_free_bytes - free_bytes)
    folder = Path(data_dir) / AUDIT_DIR / COMPACTED_DIR
    raw = {p.stem for p in segment_paths(Path(data_dir) / AUDIT_DIR)}
    outputs = sorted(read_manifest(folder), key=lambda o: _key(o) or datetime.max)
    with AuditAnalytics(data_dir, memory_limit=RESTORE_MEMORY, gates_after=_naive(now),
                        omit=UNREAD) as db:  # fmt: skip
        rows = db.sql("SELECT ts FROM audit_events WHERE kind = 'checkpoint' ORDER BY ts")
        checkpoints = [r["ts"] for r in rows]
        cut.protected_from = protected(db, policy, now)
    cut.keep_days_cut = _newest_at_or_before(
        checkpoints, _naive(now) - timedelta(days=keep.keep_days)
    )
    cut.budget_cut = _newest_at_or_before(checkpoints, cut.protected_from)
    stop = None
    for out in outputs:
        first, last = out.first_ts or out.min_ts, _key(out)
        if last is None or first is None:
            stop = f"compacted output {out.id} does not say its time range"
            break
        pin = next((p for p in pins if overlaps(p, first, last)), None)
        if pin is not None:
            stop = f"pin {pin.id} ({pin.reason}) keeps {out.id} and everything newer"
            break
        if raw & set(out.segments):
            stop = f"compacted output {out.id} still has raw segments beside it"
            break
        size = _size(folder, out)
        if cut.keep_days_cut is not None and last < cut.keep_days_cut:
            why = "keep_days"
        elif cut.bytes < cut.needed and cut.budget_cut is not None and last < cut.budget_cut:
            why = "max_bytes" if total_bytes - cut.bytes > keep.max_bytes else "keep_free_bytes"
        else:
            stop = _why_kept(cut, out, checkpoints)
            break
        cut.retire.append(out)
        cut.why[out.id] = why
        cut.bytes += size
    if cut.bytes < cut.needed:
        cut.blocked = (
            f"{human_bytes(cut.needed - cut.bytes)} more must be freed to meet"
            f" retention.max_bytes / keep_free_bytes, but the rest of the audit log is kept:"
            f" {stop or 'no compacted output is left'}"
        )
    return cut


def _key(out: CompactedOutput) -> datetime | None:
    return out.last_ts or out.max_ts


def _why_kept(cut: AuditCut, out: CompactedOutput, checkpoints: list[datetime]) -> str:
    if cut.budget_cut is None:
        if not checkpoints:
            return "no checkpoint has been recorded yet (restart and replay need one)"
        return f"no checkpoint at or before {cut.protected_from} (what live decisions read)"
    return (
        f"{out.id} holds records at or after {cut.budget_cut}, the newest checkpoint before"
        f" what live decisions read (from {cut.protected_from}: restore horizon, windows,"
        " calibration)"
    )


def _files(out: CompactedOutput) -> list[str]:
    return [n for n in (out.results, out.events, out.rollup, out.hourly) if n]


def _size(folder: Path, out: CompactedOutput) -> int:
    total = 0
    for name in _files(out):
        with contextlib.suppress(OSError):
            total += (folder / name).lstat().st_size
    return total


def _locked(data_dir: Path) -> int | None:
    """Take compaction's lock without waiting; return its descriptor (None: busy)."""
    folder = Path(data_dir) / AUDIT_DIR / COMPACTED_DIR
    fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def details_of(cut: AuditCut, policy: PolicyConfig, run: str) -> dict[str, Any]:
    """Return a run's record details: what goes, why, the cuts, the bytes."""
    return {
        "run": run,
        "area": "audit",
        "resumed": False,
        "bytes_freed": cut.bytes,
        "needed_bytes": cut.needed,
        "deleted": [
            {
                "id": o.id,
                "files": _files(o),
                "first_ts": (o.first_ts or o.min_ts or datetime.min).isoformat(),
                "last_ts": (_key(o) or datetime.min).isoformat(),
                "why": cut.why[o.id],
            }
            for o in cut.retire
        ],
        "keep_days": policy.retention.keep_days,
        "max_bytes": policy.retention.max_bytes,
        "keep_free_bytes": policy.retention.keep_free_bytes,
        "keep_days_cut": cut.keep_days_cut.isoformat() if cut.keep_days_cut else None,
        "budget_cut": cut.budget_cut.isoformat() if cut.budget_cut else None,
        "protected_from": cut.protected_from.isoformat() if cut.protected_from else None,
        "blocked": cut.blocked,
    }


def retire(data_dir: Path, cut: AuditCut, policy: PolicyConfig) -> dict[str, Any] | None:
    """Delete the outputs ``cut`` retires; return the run's details (None: nothing to do, or
    compaction holds the directory now — the next run tries again). The journal, the commit
    line and each file unlinked are a :func:`~autoheal_otel.base._crash.crash_point`."""
    if not cut.retire:
        return None
    fd = _locked(data_dir)
    if fd is None:
        return None
    try:
        folder = Path(data_dir) / AUDIT_DIR / COMPACTED_DIR
        live = {o.id for o in read_manifest(folder)}
        if any(o.id not in live for o in cut.retire):  # merged meanwhile: plan again later
            return None
        details = details_of(cut, policy, f"r-{secrets.token_hex(4)}")
        write_atomic(Path(data_dir) / JOURNAL, json.dumps(details).encode())
        crash_point(RETENTION)
        line = {"retires": [o.id for o in cut.retire], "run": details["run"]}
        with (folder / MANIFEST).open("a", encoding="utf-8") as manifest:
            manifest.write(json.dumps(line) + "\n")
            manifest.flush()
            os.fsync(manifest.fileno())
        crash_point(RETENTION)
        _unlink(folder, details)
        return details
    finally:
        os.close(fd)


def _unlink(folder: Path, details: dict[str, Any]) -> None:
    for item in details["deleted"]:
        for name in item["files"]:
            if not isinstance(name, str) or not _OUTPUT_FILE.fullmatch(name):
                continue  # only an output's own files: never a path, the manifest, a lock
            try:
                (folder / name).unlink()
            except FileNotFoundError:
                continue  # a run a crash cut short had deleted it
            crash_point(RETENTION)
    fsync_path(folder)


def resume(data_dir: Path) -> dict[str, Any] | None:
    """Finish a run a crash interrupted; return its details to record (None: there was none,
    or it had deleted nothing — its journal is dropped)."""
    path = Path(data_dir) / JOURNAL
    if not path.exists():
        return None
    try:
        details = json.loads(read_regular_file(path))
        run = str(details["run"])
    except (OSError, ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)  # a torn journal: written before anything was deleted
        return None
    folder = Path(data_dir) / AUDIT_DIR / COMPACTED_DIR
    committed = False
    with contextlib.suppress(OSError):
        for text in (folder / MANIFEST).read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, AttributeError):
                committed = committed or json.loads(text).get("run") == run
    if not committed:
        path.unlink(missing_ok=True)
        return None
    fd = _locked(data_dir)
    if fd is None:
        return None
    try:
        _unlink(folder, details)
    finally:
        os.close(fd)
    details["resumed"] = True
    return dict(details)


def clear(data_dir: Path) -> None:
    """Remove the journal once the run is recorded."""
    (Path(data_dir) / JOURNAL).unlink(missing_ok=True)
