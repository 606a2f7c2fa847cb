"""Compaction: closed JSONL segments become Parquet (zstd), queried together with the live log.

A segment is closed when no writer holds its lock. Invariants:
- a segment becomes two Parquet files: ``<stem>.parquet`` (gates and results, the bulk) and
  ``<stem>.events.parquet`` (everything else: small, read by the state queries);
- both are written under temporary names and fsynced; the event file is renamed first and the
  result file last, as the marker that the segment is done; only then is the JSONL segment
  deleted. A crash before the last rename leaves the segment (compaction runs again and the
  view ignores an event file without its result file); a crash after it leaves both, and the
  view reads the Parquet files only;
- each result file's time range goes to ``manifest.jsonl`` after its rename, so queries can skip
  files older than what they look at (a file missing from the manifest is always read);
- torn or foreign lines are not copied; their count is reported per segment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..sinks.jsonl import AUDIT_DIR, is_segment_live, segment_paths
from ._view import COMPACTED_DIR, MANIFEST, read_json_sql

__all__ = ["CompactionReport", "compact"]

#: Rows per Parquet row group: small enough that a 10-minute window reads one or two groups
#: at a few hundred decisions per second, large enough to compress well.
ROW_GROUP_ROWS = 16_384


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
            tmp_events = out_dir / f".{segment.stem}.events.parquet.tmp"
            con.execute(f"CREATE OR REPLACE TEMP TABLE seg AS {read_json_sql([segment])}")
            options = f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
            con.execute(
                "COPY (SELECT * FROM seg WHERE kind IN ('gate', 'result') ORDER BY ts, seq)"
                f" TO {_quote(tmp)} {options}"
            )
            con.execute(
                "COPY (SELECT * FROM seg WHERE kind NOT IN ('gate', 'result') ORDER BY ts, seq)"
                f" TO {_quote(tmp_events)} {options}"
            )
            rows = con.execute("SELECT count(*) FROM seg").fetchall()[0][0]
            con.execute("DROP TABLE seg")
            lines = _count_lines(segment)
            if lines != rows:
                report.bad_lines[segment.name] = lines - rows
            for path in (tmp, tmp_events):
                _fsync_file(path)
            # The event file first: the result file is the marker that the segment is done.
            os.replace(tmp_events, out_dir / f"{segment.stem}.events.parquet")
            os.replace(tmp, target)
            _fsync_dir(out_dir)
            bounds = con.execute(
                f"SELECT min(ts), max(ts) FROM read_parquet({_quote(target)})"
            ).fetchall()[0]
            if bounds[0] is not None:
                entry = {
                    "file": target.name,
                    "min_ts": bounds[0].isoformat(),
                    "max_ts": bounds[1].isoformat(),
                    "rows": rows,
                }
                with (out_dir / MANIFEST).open("a", encoding="utf-8") as manifest:
                    manifest.write(json.dumps(entry) + "\n")
            segment.unlink()
            report.compacted.append(segment.name)
            report.rows += rows
            report.bytes_in += size
            report.bytes_out += target.stat().st_size
            report.bytes_out += (out_dir / f"{segment.stem}.events.parquet").stat().st_size
    finally:
        con.close()
    return report


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
