"""Compaction: closed JSONL segments become Parquet (zstd), queried together with the live log.

A segment is closed when no writer holds its lock. Invariants:
- the Parquet file is written under a temporary name, fsynced, then renamed into place; only
  then is the JSONL segment deleted. A crash before the rename leaves the segment (compaction
  runs again); a crash after it leaves both, and the view reads the Parquet file only;
- torn or foreign lines are not copied; their count is reported per segment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..sinks.jsonl import AUDIT_DIR, is_segment_live, segment_paths
from ._view import COMPACTED_DIR, read_json_sql

__all__ = ["CompactionReport", "compact"]


@dataclass
class CompactionReport:
    """What one compaction did."""

    compacted: list[str] = field(default_factory=list)
    skipped_live: list[str] = field(default_factory=list)
    rows: int = 0
    bad_lines: dict[str, int] = field(default_factory=dict)
    bytes_in: int = 0
    bytes_out: int = 0


def compact(
    data_dir: str | Path, progress: Callable[[int, int], None] | None = None
) -> CompactionReport:
    """Compact every closed segment of ``data_dir``'s audit log to Parquet."""
    import duckdb

    audit = Path(data_dir) / AUDIT_DIR
    out_dir = audit / COMPACTED_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    report = CompactionReport()
    segments = segment_paths(audit)
    con = duckdb.connect(":memory:")
    try:
        for index, segment in enumerate(segments, start=1):
            if progress is not None:
                progress(index, len(segments))
            target = out_dir / f"{segment.stem}.parquet"
            if target.exists():  # a crash after the rename: the Parquet file is complete
                segment.unlink(missing_ok=True)
                continue
            if is_segment_live(segment):
                report.skipped_live.append(segment.name)
                continue
            size = segment.stat().st_size
            if size == 0:
                segment.unlink()
                continue
            tmp = out_dir / f".{segment.stem}.parquet.tmp"
            select = read_json_sql([segment])
            quoted = "'" + str(tmp).replace("'", "''") + "'"
            con.execute(
                f"COPY ({select} ORDER BY ts, seq) TO {quoted}"
                " (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
            )
            rows = con.execute(f"SELECT count(*) FROM read_parquet({quoted})").fetchall()[0][0]
            lines = _count_lines(segment)
            if lines != rows:
                report.bad_lines[segment.name] = lines - rows
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
            _fsync_dir(out_dir)
            segment.unlink()
            report.compacted.append(segment.name)
            report.rows += rows
            report.bytes_in += size
            report.bytes_out += target.stat().st_size
    finally:
        con.close()
    return report


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
