"""Disk accounting: what the data directory uses, by part, against the retention budget.

:func:`measure` walks the data directory once with :func:`os.scandir` and sums file sizes by
part (:data:`PARTS`); :class:`DiskMeter` caches the last figure for a while so a status
report, ``/health`` and a metric scrape never walk the tree each. Invariants:

- nothing is followed: a symlink (to a file or a folder, inside or out) counts as its own
  link, never as what it points at, so a planted link cannot make the walk leave the data
  directory or count a disk twice;
- the walk is bounded: past ``max_entries`` directory entries it stops and says so
  (``truncated``), so a directory flooded with files costs a bounded read;
- a file that vanishes or cannot be read during the walk is skipped and counted
  (``unreadable``), never raised: the walk runs beside writers, compaction and retention;
- it only reads (no file is opened; sizes come from ``lstat``);
- the budget is met when the total is at most ``retention.max_bytes`` and the device's free
  space is at least ``retention.keep_free_bytes``; otherwise :meth:`DiskUsage.problems`
  says which, naming the policy field, and the status report is degraded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base._units import human_bytes
from ..policy._retention import RetentionPolicy

if TYPE_CHECKING:
    from ..core._report import StatusReport

__all__ = [
    "DISK_HEALTH_KEYS",
    "PARTS",
    "DiskMeter",
    "DiskUsage",
    "annotate",
    "disk_line",
    "human_bytes",
    "measure",
]

#: The parts of a data directory, as the report, the metric's ``autoheal.disk.part`` label
#: and the dashboard name them.
PARTS = (
    "audit_raw",
    "audit_compacted",
    "success_store",
    "failure_cases",
    "reports",
    "versions",
    "other",
)

#: What ``/health`` shows of the report's ``disk`` (the parts are in ``/status``).
DISK_HEALTH_KEYS = (
    "total_bytes",
    "max_bytes",
    "used_fraction",
    "free_bytes",
    "keep_free_bytes",
    "within_budget",
    "measured_at",
)

#: The most directory entries one walk reads before it stops (``truncated``).
MAX_ENTRIES = 1_000_000

# Top-level names and the part they are counted in (anything else is "other"). Artifact
# versions: the versioned store's records and each component's version folders.
_TOP = {
    "failure_cases": "failure_cases",
    "reports": "reports",
    "versions": "versions",
    "learning": "versions",
    "faiss_index": "versions",
    "target_memory": "versions",
    "target_memory.sqlite": "success_store",
    "target_memory.sqlite-wal": "success_store",
    "target_memory.sqlite-shm": "success_store",
    "target_memory.sqlite-journal": "success_store",
}
_AUDIT = "audit"
_AUDIT_RAW = "audit_raw"
_SEGMENT_DAY = re.compile(r"audit-(\d{8})-")
_COMPACTED = "compacted"


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """One measurement of a data directory (see the module docstring)."""

    #: Bytes per part (every name of :data:`PARTS`, 0 when absent).
    parts: dict[str, int]
    #: Files (and links) counted.
    files: int
    #: The walk stopped at its entry bound: the figures are a lower bound.
    truncated: bool
    #: Entries that vanished or could not be read during the walk.
    unreadable: int
    #: Free bytes on the device for an unprivileged writer (None: unknown).
    free_bytes: int | None
    #: The budget and the floor in force when measured.
    max_bytes: int
    keep_free_bytes: int
    measured_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Return the bytes of every part together."""
        return sum(self.parts.values())

    def problems(self) -> list[str]:
        """Return why the budget is not met (empty: it is), one line each, naming the field."""
        out = []
        if self.total > self.max_bytes:
            out.append(
                f"disk: the data directory uses {human_bytes(self.total)}, over its budget of"
                f" {human_bytes(self.max_bytes)} (retention.max_bytes)"
            )
        if self.free_bytes is not None and self.free_bytes < self.keep_free_bytes:
            out.append(
                f"disk: {human_bytes(self.free_bytes)} free on the device, under the floor of"
                f" {human_bytes(self.keep_free_bytes)} (retention.keep_free_bytes)"
            )
        blocked = self.extra.get("retention_blocked")
        if blocked:
            out.append(f"disk: retention cannot meet the budget: {blocked}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as the status report's ``disk`` (JSON-ready)."""
        return {
            "parts": dict(self.parts),
            "total_bytes": self.total,
            "max_bytes": self.max_bytes,
            "used_fraction": round(self.total / self.max_bytes, 6) if self.max_bytes else None,
            "free_bytes": self.free_bytes,
            "keep_free_bytes": self.keep_free_bytes,
            "files": self.files,
            "truncated": self.truncated,
            "unreadable": self.unreadable,
            "within_budget": not self.problems(),
            "problems": self.problems(),
            "measured_at": self.measured_at.isoformat(),
            **self.extra,
        }


#: Why retention cannot meet the budget, left by the writing process's retention thread for
#: every reader of the directory (``autoheal status``, ``serve``); removed once it can.
BLOCKED_FILE = ".retention-blocked.json"


def read_blocked(data_dir: Path) -> str | None:
    """Return why retention last could not meet the budget (None: it could)."""
    from ..base._fs import read_regular_file

    path = Path(data_dir) / BLOCKED_FILE
    if not path.exists():
        return None
    try:
        reason = json.loads(read_regular_file(path, 64 * 1024)).get("reason")
    except (OSError, ValueError, AttributeError):
        return None
    return str(reason)[:2000] if reason else None


def _child_part(part: str | None, name: str, is_dir: bool) -> str:
    """Return the part of the entry ``name`` in a folder of part ``part``."""
    if part is None:  # the data directory itself
        return _AUDIT if name == _AUDIT and is_dir else _TOP.get(name, "other")
    if part == _AUDIT:  # the audit folder: compacted output, or raw segments and the rest
        return "audit_compacted" if name == _COMPACTED and is_dir else _AUDIT_RAW
    return part


def measure(
    data_dir: Path,
    policy: RetentionPolicy,
    now: datetime,
    max_entries: int = MAX_ENTRIES,
) -> DiskUsage:
    """Walk ``data_dir`` once and return its use by part (see the module's invariants)."""
    parts = dict.fromkeys(PARTS, 0)
    files = unreadable = entries = 0
    truncated = False
    oldest_raw: str | None = None  # the earliest day a raw segment is named after
    # (folder, part): None is the data directory itself, _AUDIT its audit folder, where the
    # entry's name picks the part; below them, everything is in the folder's part.
    stack: list[tuple[str, str | None]] = [(os.fspath(data_dir), None)]
    while stack and not truncated:
        folder, part = stack.pop()
        try:
            it = os.scandir(folder)
        except OSError:
            unreadable += 1
            continue
        with it:
            for entry in it:
                entries += 1
                if entries > max_entries:
                    truncated = True
                    break
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    unreadable += 1
                    continue
                is_dir = stat.S_ISDIR(st.st_mode)
                if part == _AUDIT and not is_dir and (day := _SEGMENT_DAY.match(entry.name)):
                    oldest_raw = min(oldest_raw or day[1], day[1])
                here = _child_part(part, entry.name, is_dir)
                if is_dir:
                    stack.append((entry.path, here))
                else:  # a file, or a link counted as itself
                    parts[_AUDIT_RAW if here == _AUDIT else here] += st.st_size
                    files += 1
    free = _free_bytes(data_dir)
    return DiskUsage(
        parts,
        files,
        truncated,
        unreadable,
        free,
        policy.max_bytes,
        policy.keep_free_bytes,
        now,
        _history(data_dir, oldest_raw, policy.keep_days, now),
    )


def _history(
    data_dir: Path, oldest_raw: str | None, keep_days: int, now: datetime
) -> dict[str, Any]:
    """Return how far back the audit log reaches, against ``retention.keep_days``.

    Measured and reported only: the log's history is deleted behind a checkpoint, which
    restart and replay continue from (not done here).
    """
    from ..analytics._view import read_manifest

    starts = []
    if oldest_raw is not None:
        with contextlib.suppress(ValueError):
            starts.append(datetime.strptime(oldest_raw, "%Y%m%d").replace(tzinfo=UTC))
    for out in read_manifest(data_dir / _AUDIT / _COMPACTED):
        if out.min_ts is not None:
            ts = out.min_ts
            starts.append(ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC))
    oldest = min(starts) if starts else None
    return {
        "audit_oldest": oldest.isoformat() if oldest is not None else None,
        "audit_keep_days": keep_days,
        "audit_past_keep_days": oldest is not None and now - oldest > timedelta(days=keep_days),
    }


def _free_bytes(data_dir: Path) -> int | None:
    try:
        st = os.statvfs(data_dir)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


# The last figure of each directory measured by a read-only meter: (monotonic, usage).
_RECENT: dict[str, tuple[float, DiskUsage]] = {}
_RECENT_LOCK = threading.Lock()
_MAX_RECENT = 64


class DiskMeter:
    """Measure a data directory and hand out the last figure, never walking on a hook's thread.

    A writing manager's retention thread calls :meth:`measure_now` on its own schedule
    (``background``): :meth:`usage` then only hands out its last figure (None before the
    first), because a status report may be asked for on a hook's thread (a failure case is
    written there). A read-only manager (``autoheal status``, ``serve``'s view) has no such
    thread: :meth:`usage` walks when the last figure is older than ``max_age`` seconds.

    Args:
        data_dir: the directory.
        policy: returns the retention section in force (read at each measurement).
        monotonic / wall: the clocks (injected: a fake clock in tests).
        max_age: seconds a measurement is reused for (read-only use).
    """

    def __init__(
        self,
        data_dir: Path,
        policy: Callable[[], RetentionPolicy],
        monotonic: Callable[[], float],
        wall: Callable[[], datetime],
        max_age: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self._policy = policy
        self._monotonic = monotonic
        self._wall = wall
        self.max_age = max_age
        #: Set when a background thread measures: :meth:`usage` never walks then.
        self.background = False
        self._lock = threading.Lock()
        self._last: tuple[float, DiskUsage] | None = None
        #: Walks made (a cached answer makes none).
        self.walks = 0
        #: Why audit retention cannot meet the budget (set by its last run; None: it can).
        self.blocked: str | None = None

    def measure_now(self) -> DiskUsage:
        """Walk the directory now and keep the figure."""
        with self._lock:
            usage = measure(self.data_dir, self._policy(), self._wall())
            blocked = self.blocked or read_blocked(self.data_dir)
            if blocked:
                usage.extra["retention_blocked"] = blocked
            self._last = (self._monotonic(), usage)
            self.walks += 1
            return usage

    def usage(self) -> DiskUsage | None:
        """Return the last figure; without a background thread, walk when it is stale.

        Read-only meters of one directory share their figures (``serve``'s view builds a
        read-only manager every refresh): a walk at most every ``max_age`` seconds each.
        """
        last = self._last
        if self.background:
            return last[1] if last is not None else None
        now = self._monotonic()
        if last is not None and 0 <= now - last[0] < self.max_age:
            return last[1]
        key = os.path.abspath(self.data_dir)
        with _RECENT_LOCK:
            shared = _RECENT.get(key)
        if shared is not None and 0 <= now - shared[0] < self.max_age:
            policy = self._policy()
            usage = replace(
                shared[1], max_bytes=policy.max_bytes, keep_free_bytes=policy.keep_free_bytes
            )
            self._last = (shared[0], usage)
            return usage
        usage = self.measure_now()
        with _RECENT_LOCK:
            if len(_RECENT) >= _MAX_RECENT:
                _RECENT.clear()
            _RECENT[key] = (now, usage)
        return usage


def annotate(report: StatusReport, usage: DiskUsage | None) -> StatusReport:
    """Return ``report`` with its ``disk``; a budget not met makes an ok report degraded."""
    if usage is None:  # not measured yet
        return report
    glob = report.global_
    problems = usage.problems()
    if problems:
        health = "degraded" if glob.health == "ok" else glob.health
        reason = "; ".join(r for r in (glob.reason, *problems) if r)
        glob = glob.model_copy(update={"health": health, "reason": reason})
    return report.model_copy(update={"disk": usage.to_dict(), "global_": glob})


def disk_line(disk: dict[str, Any]) -> str:
    """Return the status report's ``disk`` as one line for a terminal."""
    parts = ", ".join(f"{name} {human_bytes(n)}" for name, n in disk["parts"].items() if n)
    free = disk.get("free_bytes")
    line = (
        f"disk: {human_bytes(disk['total_bytes'])} of {human_bytes(disk['max_bytes'])} budget"
        f" ({100 * (disk.get('used_fraction') or 0):.1f} %)"
        + (f", {human_bytes(free)} free" if free is not None else "")
        + (f"; {parts}" if parts else "")
    )
    if disk.get("truncated"):
        line += " (too many files: a lower bound)"
    if disk.get("audit_past_keep_days"):
        line += (
            f"\n  the audit log reaches back to {disk['audit_oldest']}, past keep_days"
            f" ({disk['audit_keep_days']}): retention deletes it behind the newest checkpoint"
            " before the cut (raw segments once compacted)"
        )
    for problem in disk.get("problems") or []:
        line += f"\n  {problem}"
    return line
