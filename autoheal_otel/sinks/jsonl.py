"""The JSONL audit log: the record of truth, one JSON object per line per decision.

Layout: ``<data_dir>/audit/audit-<YYYYMMDD>-<writer>-<NNNN>.jsonl``, where ``writer`` names
one manager process (host, pid, a random token). Invariants:

- one segment per writer: processes sharing a data directory never write the same file, so
  lines never interleave; a segment is created with ``O_EXCL`` and never reopened;
- the lines of one decision (a hook's events) are written with one ``write`` call on an
  ``O_APPEND`` descriptor, so a crash keeps all of them or none; they have reached the OS
  when the hook returns (``fsync`` by policy: ``always``, ``interval`` = group commit on the
  events' timestamps, ``never``) — except, opted in by ``audit.allowed_gates_with_result``
  (off by default), an allowed gate, which is then written with its step's result (one write
  per step; a crash between the two loses the record that the robot was allowed to act;
  refused gates and every other decision are written before the hook returns);
- a live segment holds an exclusive ``flock``; a segment whose lock can be taken is closed
  (its writer rotated away or died), which is what compaction looks for;
- a failed write (full disk, read-only directory) keeps the line in a bounded retry buffer,
  counts the error and raises, so the publisher logs it; the next emit or flush retries the
  buffered lines first, in order, into the same segment: a write that failed part-way is
  truncated back to the last whole line first (the segment never holds a torn line before a
  whole one), and only a segment that cannot be truncated is abandoned for a new one. So a
  full disk costs no new files, and nothing acknowledged is dropped until the buffer
  overflows; overflows are counted.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import socket
from collections import deque
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from ..base._events import DecisionEvent, LineEncoder
from ..policy._config import AuditPolicy
from ..semconv import EventKind

__all__ = [
    "AUDIT_DIR",
    "JsonlAuditSink",
    "is_segment_live",
    "live_writers",
    "new_writer_id",
    "segment_paths",
    "segment_writer",
]

AUDIT_DIR = "audit"
#: A segment's name: ``audit-<YYYYMMDD>-<writer>-<NNNN>.jsonl`` (the writer in group 1).
SEGMENT_NAME = re.compile(r"audit-\d{8}-([A-Za-z0-9_.:@-]{1,128})-\d{4,}\.jsonl")
_SAFE = re.compile(r"[^A-Za-z0-9_.]+")
MAX_PENDING = 100_000
#: At most this many allowed gates wait for a result before they are written anyway.
MAX_HELD = 64


def new_writer_id() -> str:
    """Return an id for this process's segments: host, pid and a random token, path-safe."""
    host = _SAFE.sub("_", socket.gethostname())[:32] or "host"
    return f"{host}.{os.getpid()}.{secrets.token_hex(3)}"


def segment_paths(audit_dir: Path) -> list[Path]:
    """Return the JSONL segments of an audit directory, oldest name first.

    Only regular files (never a symlink, a directory or a FIFO) whose names are segment names
    (:data:`SEGMENT_NAME`: no glob characters, so a name is never read as a pattern).
    """
    try:
        with os.scandir(audit_dir) as entries:
            found = [
                Path(e.path)
                for e in entries
                if SEGMENT_NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False)
            ]
    except OSError:
        return []
    return sorted(found)


def segment_writer(name: str) -> str | None:
    """Return the writer id in a segment's file name (None: not a segment's name)."""
    match = SEGMENT_NAME.fullmatch(name)
    return match.group(1) if match is not None else None


def live_writers(audit_dir: Path) -> set[str]:
    """Return the writers that hold a live segment: the processes running on the directory.

    A writer's ``flock`` on its segment is its lease: the kernel drops it when the process
    ends, however it ends (``kill -9`` included), so this is no guess from file times.
    """
    writers: set[str] = set()
    try:
        entries = list(os.scandir(audit_dir))
    except OSError:
        return writers
    for entry in entries:
        writer = segment_writer(entry.name)
        if (
            writer is not None
            and writer not in writers
            and entry.is_file(follow_symlinks=False)
            and is_segment_live(Path(entry.path))
        ):
            writers.add(writer)
    return writers


def is_segment_live(path: Path) -> bool:
    """Return True while a writer holds the segment (its lock cannot be taken)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also releases a lock we took
    return False


class JsonlAuditSink:
    """Write every decision event as one line of the audit log.

    Args:
        data_dir: the manager's data directory (the log goes to ``<data_dir>/audit``).
        policy: rotation size, day rotation and fsync mode.
        writer: this process's writer id (default: :func:`new_writer_id`).
    """

    def __init__(self, data_dir: Path, policy: AuditPolicy, writer: str | None = None) -> None:
        self.directory = Path(data_dir) / AUDIT_DIR
        self.directory.mkdir(parents=True, exist_ok=True, mode=policy.dir_mode)
        self.policy = policy
        self.writer = writer or new_writer_id()
        self.write_errors = 0
        self.dropped = 0
        self.lines = 0
        self._pending: deque[bytes] = deque()
        self._encoder = LineEncoder()
        # Allowed gates waiting to travel with their step's result (see emit_many).
        self._held: list[bytes] = []
        self._hold = policy.allowed_gates_with_result
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._day: date | None = None
        self._counter = 0
        self._last_fsync = float("-inf")
        self._unsynced = False

    @property
    def path(self) -> Path | None:
        """Return the live segment (None before the first line)."""
        return self._path

    def emit(self, event: DecisionEvent) -> None:
        """Append the event's record to the live segment."""
        self.emit_many((event,))

    def emit_many(self, events: Sequence[DecisionEvent]) -> None:
        """Append the records of one decision's events with one ``write``.

        A lone allowed gate is held (opt-in ``audit.allowed_gates_with_result``) and written
        with the next decision's lines, its step's result: one write per step.
        """
        encode = self._encoder.encode
        first = events[0]
        if (
            self._hold
            and len(events) == 1
            and first.allowed is True
            and first.kind is EventKind.GATE
            and not self._pending
            and len(self._held) < MAX_HELD
        ):
            self._held.append(encode(first))
            return
        lines = [encode(first)] if len(events) == 1 else [encode(e) for e in events]
        if self._held:
            lines[:0] = self._held
            self._held = []
        self._append(lines, events[-1].ts)

    def _append(self, lines: list[bytes], ts: datetime | None) -> None:
        data = lines[0] if len(lines) == 1 else b"".join(lines)
        day = ts.date() if ts is not None else self._day
        if (
            not self._pending
            and self._fd is not None
            and day == self._day
            and self._size + len(data) <= self.policy.segment_max_bytes
        ):
            # The common case, kept short: nothing to retry, no rotation due.
            try:
                written = os.write(self._fd, data)
                if written < len(data):  # rare (a signal, a nearly full disk): finish it
                    _write_all(self._fd, data, written)
            except OSError as exc:
                self._pending.extend(lines)
                self._fail(isinstance(exc, TornWriteError))
                raise
            self._size += len(data)
            self.lines += len(lines)
            self._unsynced = True
            if self.policy.fsync != "never":
                self._maybe_fsync(ts.timestamp() if ts is not None else 0.0)
            return
        self._pending.extend(lines)
        while len(self._pending) > MAX_PENDING:
            self._pending.popleft()
            self.dropped += 1
        self._write_pending(day, ts.timestamp() if ts is not None else 0.0)

    def _write_pending(self, day: date | None, now: float) -> None:
        pending = self._pending
        try:
            while pending:
                line = pending[0]
                if (
                    self._fd is None
                    or self._size + len(line) > self.policy.segment_max_bytes
                    or (self.policy.rotate_daily and day is not None and day != self._day)
                ):
                    self._rotate(day)
                assert self._fd is not None
                _write_all(self._fd, line)
                pending.popleft()
                self._size += len(line)
                self.lines += 1
                self._unsynced = True
        except OSError as exc:
            self._fail(isinstance(exc, TornWriteError))
            raise
        try:
            self._maybe_fsync(now)
        except OSError:
            # The kernel may have dropped what it failed to sync: end this segment.
            self.write_errors += 1
            self._abandon()
            raise

    def _fail(self, torn: bool) -> None:
        """Count a failed write; keep the segment for the retry when it is still whole.

        A write that failed part-way left a torn prefix: cut it off (the segment's size is
        known, it has one writer) so the retry appends right after the last whole line. A
        segment that cannot be cut is abandoned: the retry opens a new one, and readers skip
        the torn last line of this one.
        """
        self.write_errors += 1
        if torn and self._fd is not None:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                self._abandon()

    def _abandon(self) -> None:
        try:
            self._close_segment()
        except OSError:
            self._fd = None

    def _maybe_fsync(self, now: float) -> None:
        mode = self.policy.fsync
        if mode == "always" or (
            mode == "interval" and now - self._last_fsync >= self.policy.fsync_interval_seconds
        ):
            self._fsync(now)

    def _rotate(self, day: date | None) -> None:
        self._close_segment()
        self._day = day
        stamp = day.strftime("%Y%m%d") if day is not None else "00000000"
        while True:
            self._counter += 1
            path = self.directory / f"audit-{stamp}-{self.writer}-{self._counter:04d}.jsonl"
            try:
                fd = os.open(
                    path,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC,
                    self.policy.mode,
                )
            except FileExistsError:
                continue
            break
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd, self._path, self._size = fd, path, 0

    def _fsync(self, now: float) -> None:
        if self._fd is not None and self._unsynced:
            os.fsync(self._fd)
        self._last_fsync = now
        self._unsynced = False

    def _close_segment(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                if self._unsynced and self.policy.fsync != "never":
                    os.fsync(fd)
            finally:
                os.close(fd)  # releases the flock: the segment is now closed
            self._unsynced = False

    def flush(self) -> None:
        """Write held gates and retry buffered lines, then fsync (durable on return)."""
        if self._held:
            self._pending.extend(self._held)
            self._held = []
        self._write_pending(self._day, float("inf"))
        if self._fd is not None and self._unsynced:
            os.fsync(self._fd)
            self._unsynced = False

    def close(self) -> None:
        """Flush and close the live segment (it becomes eligible for compaction)."""
        try:
            self.flush()
        finally:
            self._close_segment()

    def fileno(self) -> int | None:
        """Return the descriptor of the live segment (None before the first write, or after
        close), for monitoring and for tests that put a full disk under it."""
        return self._fd

    @property
    def pending(self) -> int:
        """Return how many lines wait for a retry after a failed write."""
        return len(self._pending)


class TornWriteError(OSError):
    """A write failed after part of the line reached the file."""


def _write_all(fd: int, data: bytes, written: int = 0) -> None:
    """Write ``data[written:]``; a failure after any byte of ``data`` reached the file is torn."""
    view = memoryview(data)[written:]
    while view:
        try:
            n = os.write(fd, view)
        except OSError as exc:
            if len(view) == len(data):
                raise
            raise TornWriteError(exc.errno, exc.strerror) from exc
        view = view[n:]
