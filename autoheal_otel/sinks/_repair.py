"""Rebuild the success store's rows that a crash lost, from the audit log (the record of truth).

The success store writes its rows in batches, so a process killed mid-batch loses up to a
batch of validated successes that its audit segment already holds (each hook's lines reach the
OS before the hook returns). Every row names its writer and seq, and a writer's rows are
written in seq order, so what a dead writer lost is the suffix of its qualifying results after
the highest seq the store holds for it. :func:`repair` reads each dead writer's segments from
the end, newest first, until it meets a qualifying result the store already has (keeping only
where that is, not the rows), then reads forward from there and inserts what is missing in
chunks of :data:`CHUNK_ROWS`, each committed in seq order (``INSERT OR IGNORE``: idempotent,
safe beside a live writer). So its memory is one chunk whatever was lost, and a repair killed
between chunks left a prefix of the missing rows: the next one starts after it.

Run at every manager start (before the first hook) and before compaction takes a closed
segment away, so nothing acknowledged is lost from the store either. The cost is the size of
what was lost (the tail of each dead writer's last segment), not the size of the log.
"""

from __future__ import annotations

import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from .jsonl import is_segment_live, segment_writer

__all__ = ["repair"]

_CHUNK = 256 * 1024
#: Rows inserted (and committed) at once.
CHUNK_ROWS = 10_000
_WANTED = (b'"kind":"result"', b'"validated":true', b'"outcome":"success"')


def _qualifies(rec: dict[str, Any]) -> bool:
    """The success store's storage rule, on an audit record (see ``stores_success``)."""
    return (
        rec.get("kind") == "result"
        and rec.get("outcome") == "success"
        and rec.get("validated") is True
        and rec.get("trigger") is None
        and rec.get("state") == "running"
        and rec.get("learning") is True
        and type(rec.get("seq")) is int
        and isinstance(rec.get("ts"), str)
        and isinstance(rec.get("workflow_id"), str)
        and isinstance(rec.get("step_id"), str)
    )


def _row(writer: str, rec: dict[str, Any]) -> tuple[Any, ...]:
    details = rec.get("details")
    return (
        writer,
        rec["seq"],
        rec["ts"],
        rec["workflow_id"],
        rec["step_id"],
        rec.get("confidence"),
        rec.get("second_best"),
        rec.get("duration_s"),
        rec.get("policy_version"),
        rec.get("artifact_version"),
        rec.get("trace_id"),
        orjson.dumps(details).decode() if isinstance(details, dict) and details else "{}",
    )


def _lines_backwards(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield (offset, line) of a file from the last line to the first (symlinks are not
    followed); ``offset`` is where the byte after the line starts."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        end = os.fstat(fd).st_size
        carry = b""
        while end > 0:
            start = max(0, end - _CHUNK)
            data = os.pread(fd, end - start, start) + carry
            lines = data.split(b"\n")
            carry = lines.pop(0) if start > 0 else b""
            after = start + len(data)  # the end of the last line of ``data``
            for line in reversed(lines):
                yield after, line
                after -= len(line) + 1
            end = start
        if carry:
            yield len(carry), carry
    finally:
        os.close(fd)


def _lines_forward(path: Path, offset: int) -> Iterator[bytes]:
    """Yield the lines of a file from byte ``offset`` on (symlinks are not followed)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        handle.seek(offset)
        yield from handle


def _record(line: bytes) -> dict[str, Any] | None:
    """Return a line's record if it qualifies for the store (None: not one, or unreadable)."""
    if not all(w in line for w in _WANTED):
        return None
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None  # a torn last line, or a hostile one: the store never held it
    return rec if isinstance(rec, dict) and _qualifies(rec) else None


def _resume_point(paths: list[Path], mark: int) -> tuple[int, int]:
    """Return (segment index, byte offset) just past the newest qualifying record of seq at
    most ``mark``, reading from the end (oldest segment's start when there is none)."""
    for index in range(len(paths) - 1, -1, -1):
        for after, line in _lines_backwards(paths[index]):
            rec = _record(line)
            if rec is not None and rec["seq"] <= mark:
                return index, after
    return 0, 0


def _lost(writer: str, paths: list[Path], mark: int) -> Iterator[list[tuple[Any, ...]]]:
    """Yield the qualifying rows of ``writer`` after seq ``mark``, oldest first, in chunks."""
    paths = sorted(paths)
    first, offset = _resume_point(paths, mark)
    chunk: list[tuple[Any, ...]] = []
    for index in range(first, len(paths)):
        for line in _lines_forward(paths[index], offset if index == first else 0):
            rec = _record(line)
            if rec is None or rec["seq"] <= mark:
                continue
            chunk.append(_row(writer, rec))
            if len(chunk) >= CHUNK_ROWS:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def repair(
    conn: sqlite3.Connection,
    insert: str,
    audit_dir: Path,
    exclude: str | None = None,
    only: Iterable[Path] | None = None,
) -> int:
    """Insert the validated successes that dead writers' segments hold and the store lacks.

    ``insert`` is the store's ``INSERT OR IGNORE`` of one row; ``only``: the segments to look
    at (default: every segment of a writer with no live one). Returns how many rows were
    inserted.
    """
    by_writer: dict[str, list[Path]] = defaultdict(list)
    live: set[str] = set()
    candidates = list(only) if only is not None else _segments(audit_dir)
    for path in candidates:
        writer = segment_writer(path.name)
        if writer is None or writer == exclude:
            continue
        if only is None and is_segment_live(path):
            live.add(writer)
        by_writer[writer].append(path)
    inserted = 0
    for writer, paths in sorted(by_writer.items()):
        if writer in live:
            continue  # a running writer writes its own rows
        found = conn.execute(
            "SELECT max(seq) FROM successes WHERE writer = ?", (writer,)
        ).fetchone()
        mark = found[0] if found and found[0] is not None else -1
        for rows in _lost(writer, paths, mark):
            with conn:  # one commit per chunk, in seq order: a prefix survives a kill
                before = conn.total_changes
                conn.executemany(insert, rows)
                inserted += conn.total_changes - before
    return inserted


def _segments(audit_dir: Path) -> list[Path]:
    try:
        entries = list(os.scandir(audit_dir))
    except OSError:
        return []
    return [
        Path(e.path)
        for e in entries
        if segment_writer(e.name) is not None and e.is_file(follow_symlinks=False)
    ]
