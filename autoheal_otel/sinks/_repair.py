"""Rebuild the success store's rows that a crash lost, from the audit log (the record of truth).

The success store writes its rows in batches, so a process killed mid-batch loses up to a
batch of validated successes that its audit segment already holds (each hook's lines reach the
OS before the hook returns). Every row names its writer and seq, and a writer's rows are
written in seq order, so what a dead writer lost is the suffix of its qualifying results after
the highest seq the store holds for it. :func:`repair` reads each dead writer's segments from
the end, newest first, until it meets a qualifying result the store already has, and inserts
what is missing (``INSERT OR IGNORE``: idempotent, safe beside a live writer).

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


def _lines_backwards(path: Path) -> Iterator[bytes]:
    """Yield the lines of a file from the last to the first (symlinks are not followed)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        end = os.fstat(fd).st_size
        carry = b""
        while end > 0:
            start = max(0, end - _CHUNK)
            data = os.pread(fd, end - start, start) + carry
            end = start
            lines = data.split(b"\n")
            carry = lines.pop(0) if start > 0 else b""
            yield from reversed(lines)
        if carry:
            yield carry
    finally:
        os.close(fd)


def _lost(writer: str, paths: list[Path], mark: int) -> list[tuple[Any, ...]]:
    """Return the qualifying rows of ``writer`` after seq ``mark``, newest segment first."""
    rows: list[tuple[Any, ...]] = []
    for path in sorted(paths, reverse=True):
        for line in _lines_backwards(path):
            if not all(w in line for w in _WANTED):
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a torn last line, or a hostile one: the store never held it
            if not isinstance(rec, dict) or not _qualifies(rec):
                continue
            if rec["seq"] <= mark:
                return rows
            rows.append(_row(writer, rec))
    return rows


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
        rows = _lost(writer, paths, mark)
        if rows:
            with conn:
                before = conn.total_changes
                conn.executemany(insert, reversed(rows))
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
