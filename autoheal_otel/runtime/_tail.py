"""Read what other writers appended to their audit segments since the last look.

:class:`SegmentTail` keeps, per segment file, the offset up to which it has read whole lines,
and on each :meth:`~SegmentTail.read` returns the records of the lines appended since,
decoded, in each segment's order. Only the appended bytes are read (no query, no re-read of a
segment), which is what lets a running manager follow an operator's move within a second.

Invariants: only regular files whose names are segment names are read (a symlink, a
directory or a FIFO planted under such a name is skipped, never followed); a writer's own
segments are never read; a line is consumed only once it ends in a newline (a torn or
half-written last line is read again when it is whole); a line that is not a JSON object, or
whose bytes do not carry one of the wanted markers, is skipped and counted, never raised; one
read takes at most ``max_bytes`` of one segment (the rest waits for the next read).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ..sinks.jsonl import segment_writer

__all__ = ["SegmentTail", "stamp"]

#: The most one read takes from one segment (a backlog is read over several reads).
MAX_READ_BYTES = 4 * 1024 * 1024
#: A line longer than this is no decision the product wrote: skipped.
MAX_LINE_BYTES = 1024 * 1024


def stamp(record: dict[str, Any]) -> tuple[int, datetime] | None:
    """Return a read record's ``(seq, ts)`` (ts aware UTC), or None when either is malformed."""
    seq, ts = record.get("seq"), record.get("ts")
    if type(seq) is not int or not isinstance(ts, str):
        return None
    try:
        return seq, datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


class SegmentTail:
    """Follow the segments of an audit directory from where the last read ended.

    Args:
        audit_dir: the ``audit`` folder of a data directory.
        exclude: a writer whose segments are never read (the reader's own).
        only: read only this writer's segments (None: every writer's but ``exclude``).
        markers: only lines holding one of these byte strings are decoded (None: every line).
    """

    def __init__(
        self,
        audit_dir: Path,
        exclude: str | None = None,
        markers: Iterable[bytes] | None = None,
        max_bytes: int = MAX_READ_BYTES,
        only: str | None = None,
    ) -> None:
        self.audit_dir = audit_dir
        self.exclude = exclude
        self.only = only
        self.markers = tuple(markers) if markers is not None else None
        self.max_bytes = max_bytes
        #: Lines skipped: not JSON objects, or too long.
        self.skipped = 0
        self._offsets: dict[str, int] = {}

    def skip_existing(self) -> None:
        """Start every segment that exists now at its current end (read only what follows)."""
        for name, _writer, size in self._segments():
            self._offsets[name] = size

    def positions(self) -> dict[str, int]:
        """Return, per segment, the offset read up to (to carry a tail to another process)."""
        return dict(self._offsets)

    def resume(self, positions: dict[str, int]) -> None:
        """Continue from offsets :meth:`positions` returned."""
        self._offsets = {str(k): int(v) for k, v in positions.items()}

    def grew(self) -> bool:
        """Return True when a segment holds bytes not read yet (a listing, nothing decoded)."""
        return any(size != self._offsets.get(name, 0) for name, _w, size in self._segments())

    def read(self) -> list[tuple[str, dict[str, Any]]]:
        """Return ``(writer, record)`` for each wanted line appended since the last read."""
        out: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        for name, writer, size in self._segments():
            seen.add(name)
            offset = self._offsets.get(name, 0)
            if size < offset:  # the file was replaced under the same name: start it over
                offset = 0
            if size > offset:
                self._offsets[name] = self._read_one(name, writer, offset, size, out)
        for gone in self._offsets.keys() - seen:  # compacted away, or deleted
            del self._offsets[gone]
        return out

    def _segments(self) -> list[tuple[str, str, int]]:
        try:
            entries = list(os.scandir(self.audit_dir))
        except OSError:
            return []
        found = []
        for entry in entries:
            writer = segment_writer(entry.name)
            if writer is None or writer == self.exclude:
                continue
            if self.only is not None and writer != self.only:
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                size = entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
            found.append((entry.name, writer, size))
        found.sort()
        return found

    def _read_one(
        self, name: str, writer: str, offset: int, size: int, out: list[tuple[str, dict[str, Any]]]
    ) -> int:
        """Decode the whole lines of ``name`` from ``offset``; return the new offset."""
        try:
            fd = os.open(
                self.audit_dir / name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
            )
        except OSError:
            return offset
        try:
            data = os.pread(fd, min(size - offset, self.max_bytes), offset)
        except OSError:
            return offset
        finally:
            os.close(fd)
        end = data.rfind(b"\n") + 1
        if end == 0:
            if len(data) >= self.max_bytes:  # one line longer than a read: skip it whole
                self.skipped += 1
                return offset + len(data)
            return offset
        markers = self.markers
        for line in data[:end].splitlines():
            if markers is not None and not any(m in line for m in markers):
                continue
            if len(line) > MAX_LINE_BYTES:
                self.skipped += 1
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                self.skipped += 1
                continue
            if isinstance(record, dict):
                out.append((writer, record))
            else:
                self.skipped += 1
        return offset + end
