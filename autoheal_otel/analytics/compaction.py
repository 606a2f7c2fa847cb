"""Compaction: closed JSONL segments become Parquet (zstd), queried together with the live log.

A segment is closed when no writer holds its lock. A run takes the closed segments it finds
in batches (oldest first, :data:`BATCH_LINES` lines each) and writes one output per batch:
``<id>.parquet`` (gates and results, the bulk) and ``<id>.events.parquet`` (everything else:
small, read by the state queries), with their rollups. A later run also merges small outputs
into one, so the number of files (each costs every query a little) stays low. Invariants:

- the manifest (``manifest.jsonl``) is the completion record. Files are written under
  temporary names, fsynced and renamed; then one manifest line (fsynced) names them, the
  segments they hold, their time range, and any outputs they replace; only then are those
  segments and replaced files deleted;
- a crash before the manifest line leaves orphan files that readers ignore and the next run
  deletes; a crash after it leaves segments or replaced files that readers ignore (the
  manifest says where their records are) and the next run deletes;
- torn or foreign lines are not copied; their count is reported per run;
- every output carries its rollups: a run rewrites an output whose rollup files are missing
  (one compacted before they existed), through the same manifest steps as a merge;
- memory is bounded whatever the backlog: DuckDB holds at most :data:`MEMORY_LIMIT` on
  :data:`THREADS` thread(s) and spills the rest to ``audit/compaction.spill/`` (inside the
  data directory, emptied at the start and the end of every run, so a killed run's spill
  files go with the next run); each batch is one commit (its own manifest line), so a run
  killed mid-backlog keeps the batches it finished and the next run takes the rest;
- one run at a time per data directory: a run holds an exclusive ``flock`` on
  ``compacted/compaction.lock`` (processes sharing a directory, and a manager's background
  compaction next to ``autoheal compact``, take turns instead of compacting a segment twice).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..base._errors import InvalidInputError
from ..base._fs import fresh_temp, fsync_path
from ..sinks.jsonl import AUDIT_DIR, is_segment_live, segment_paths
from . import quiet
from ._view import (
    AUDIT_COLUMNS,
    COMPACTED_DIR,
    HOURLY_SQL,
    MANIFEST,
    ROLLUP_SQL,
    CompactedOutput,
    read_json_sql,
    read_manifest,
)

_log = logging.getLogger("autoheal_otel")

__all__ = ["CompactionReport", "compact", "pending_segments"]

LOCK = "compaction.lock"
#: Where DuckDB spills what does not fit in :data:`MEMORY_LIMIT` (under ``audit/``).
SPILL_DIR = "compaction.spill"
#: What DuckDB may hold during a run: with the interpreter and DuckDB's own buffers (the
#: Parquet writer's row group, the JSON reader's), a run peaks at about 230 MB RSS whatever
#: the backlog (``bench/compaction.py``); below about 96 MB a sort of a batch cannot finish.
MEMORY_LIMIT = "128MB"
#: One thread: compaction runs beside a robot, and every thread adds buffers of its own.
THREADS = 1
#: Lines per batch (one output each): ~2.5M lines of ~320 B is ~800 MB of JSONL, an output
#: big enough that no later merge rewrites it (its gates and results pass SMALL_OUTPUT_ROWS).
BATCH_LINES = 2_500_000

#: Rows per Parquet row group: a 10-minute window reads one or two groups at a few hundred
#: decisions per second, and the footer a fresh connection must parse stays small.
ROW_GROUP_ROWS = 65_536
#: Outputs with fewer result rows than this are merged once there are MERGE_AT of them
#: within MERGE_SPAN of time: a merged output never spans more, so retention, which deletes
#: whole outputs, can still cut a quiet host's log by the day.
SMALL_OUTPUT_ROWS = 2_000_000
MERGE_AT = 4
MERGE_SPAN = timedelta(days=1)


@dataclass
class CompactionReport:
    """What one compaction did."""

    compacted: list[str] = field(default_factory=list)
    skipped_live: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    #: Outputs rewritten because rollup files they should carry were missing.
    repaired: list[str] = field(default_factory=list)
    rows: int = 0
    bad_lines: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    cleaned: list[str] = field(default_factory=list)


def compact(
    data_dir: str | Path,
    progress: Callable[[int, int], None] | None = None,
    connected: Callable[[Any], None] | None = None,
    settle_seconds: float = 0.0,
) -> CompactionReport:
    """Compact every closed segment of ``data_dir``'s audit log, then merge small outputs.

    ``settle_seconds``: leave a closed segment written to less than this long ago (real
    time) for a later run, as if it were live. A running robot's own compaction waits so:
    other processes on the directory follow a segment's last lines from the file itself
    (:mod:`autoheal_otel.runtime._tail`), and a segment compacted away before they read them would
    take those decisions out of their view.

    ``connected`` receives the run's DuckDB connection as soon as it is open (before any
    statement), so another thread can ``interrupt()`` the run: it then stops at its current
    statement with ``duckdb.InterruptException``, and the invariants above hold as for a crash.

    Raises:
        InvalidInputError: ``data_dir`` cannot be written (read-only, full): nothing was
            lost, and the next run picks up where this one stopped.
    """
    import duckdb

    try:
        return _compact(data_dir, progress, connected, settle_seconds)
    except (OSError, duckdb.IOException) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidInputError(
            "data_dir", str(data_dir), f"must be writable to compact ({reason})"
        ) from exc


def pending_segments(data_dir: str | Path, settle_seconds: float = 0.0) -> list[Path]:
    """Return the closed segments no compaction output holds yet (what a run would compact)."""
    audit = Path(data_dir) / AUDIT_DIR
    done = {s for out in read_manifest(audit / COMPACTED_DIR) for s in out.segments}
    return [
        p
        for p in segment_paths(audit)
        if p.stem not in done and not is_segment_live(p) and _settled(p, settle_seconds)
    ]


def _settled(path: Path, settle_seconds: float) -> bool:
    """Return True when ``path`` was last written at least ``settle_seconds`` ago."""
    if settle_seconds <= 0:
        return True
    try:
        return time.time() - path.stat().st_mtime >= settle_seconds
    except OSError:
        return False


def _rebuild_successes(data_dir: Path, segments: list[Path]) -> None:
    """Put the validated successes these segments hold into the success store first.

    A writer that died mid-batch lost its last rows from the store; once its segment is
    compacted away, a restart no longer finds them in JSONL, so compaction rebuilds them.
    """
    from ..sinks.sqlite import rebuild_from_segments

    try:
        rebuild_from_segments(data_dir, segments)
    except sqlite3.Error as exc:  # the rows stay in the compacted log, the record of truth
        _log.warning("autoheal could not rebuild lost successes before compaction: %s", exc)


def _compact(
    data_dir: str | Path,
    progress: Callable[[int, int], None] | None,
    connected: Callable[[Any], None] | None,
    settle_seconds: float = 0.0,
) -> CompactionReport:
    folder = Path(data_dir) / AUDIT_DIR / COMPACTED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one run at a time (see the invariants)
        return _compact_locked(data_dir, progress, connected, settle_seconds)
    finally:
        os.close(fd)  # releases the lock


def _compact_locked(
    data_dir: str | Path,
    progress: Callable[[int, int], None] | None,
    connected: Callable[[Any], None] | None,
    settle_seconds: float = 0.0,
) -> CompactionReport:
    audit = Path(data_dir) / AUDIT_DIR
    folder = audit / COMPACTED_DIR
    report = CompactionReport()
    _clean(folder, audit, report)
    done = {s for out in read_manifest(folder) for s in out.segments}
    segments = []
    for path in segment_paths(audit):
        if path.stem in done:
            continue
        if is_segment_live(path) or not _settled(path, settle_seconds):
            report.skipped_live.append(path.name)
        else:
            segments.append(path)
    spill = _fresh_dir(audit / SPILL_DIR)
    try:
        con = _connect(spill)
        try:
            if connected is not None:
                connected(con)
            _compact_segments(con, Path(data_dir), folder, segments, report, progress)
            _merge_small(con, folder, report)
            _repair_rollups(con, folder, report)
        finally:
            con.close()
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    return report


def _connect(spill: Path) -> Any:
    """Open the run's DuckDB connection: bounded memory, spilling into ``spill``."""
    import duckdb

    con = duckdb.connect(
        ":memory:",
        config={
            "memory_limit": MEMORY_LIMIT,
            "threads": THREADS,
            "temp_directory": str(spill),
            # Every COPY has its ORDER BY; nothing else needs the scan order kept.
            "preserve_insertion_order": False,
        },
    )
    quiet(con)  # it may run on a manager's thread
    return con


def _fresh_dir(path: Path) -> Path:
    """Return ``path`` as a new empty directory (what a killed run left there is deleted; a
    planted symlink or file is removed, never followed)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    path.mkdir(mode=0o700)
    return path


def _batches(segments: list[Path], lines: dict[Path, int]) -> Iterator[list[Path]]:
    """Yield the segments, oldest first, in batches of about :data:`BATCH_LINES` lines."""
    batch: list[Path] = []
    held = 0
    for path in segments:
        batch.append(path)
        held += lines[path]
        if held >= BATCH_LINES:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def _compact_segments(
    con: Any,
    data_dir: Path,
    folder: Path,
    segments: list[Path],
    report: CompactionReport,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Compact ``segments`` batch by batch: each batch is written and committed, then its
    segments are deleted, before the next is read."""
    if not segments:
        return
    if progress is not None:
        progress(0, len(segments))
    lines = {p: _count_lines(p) for p in segments}
    for batch in _batches(segments, lines):
        _rebuild_successes(data_dir, batch)
        con.execute(f"CREATE OR REPLACE TABLE batch AS {read_json_sql(batch)}")
        out = _write_output(con, folder, "batch", [p.stem for p in batch], ())
        con.execute("DROP TABLE batch")
        report.bad_lines += sum(lines[p] for p in batch) - out.rows
        report.rows += out.rows
        report.bytes_in += sum(p.stat().st_size for p in batch)
        report.bytes_out += (folder / out.results).stat().st_size + (
            folder / out.events
        ).stat().st_size
        for path in batch:
            path.unlink(missing_ok=True)
        report.compacted += [p.name for p in batch]
        if progress is not None:
            progress(len(report.compacted), len(segments))


def _write_output(
    con: Any, folder: Path, table: str, segments: list[str], replaces: tuple[str, ...]
) -> CompactedOutput:
    """Write a table's rows as one output and record it in the manifest (see the invariants).

    Four files: the gates and results, the other records, a rollup of executions and
    successes per workflow and artifact version (what a warm restart needs, without a scan),
    and an hourly rollup (the regression query's whole hours, calibration's lookback).
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out_id = f"c-{stamp}-{secrets.token_hex(3)}"
    names = {
        "results": f"{out_id}.parquet",
        "events": f"{out_id}.events.parquet",
        "rollup": f"{out_id}.rollup.parquet",
        "hourly": f"{out_id}.hourly.parquet",
    }
    options = f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
    columns = ", ".join(f'"{c}"' for c in AUDIT_COLUMNS)
    selects = {
        "results": f"SELECT {columns} FROM {table} WHERE kind IN ('gate', 'result') ORDER BY ts, seq",
        "events": f"SELECT {columns} FROM {table} WHERE kind NOT IN ('gate', 'result') ORDER BY ts, seq",
        "rollup": ROLLUP_SQL.format(source=table),
        "hourly": HOURLY_SQL.format(source=table) + " ORDER BY hour",
    }
    for key, name in names.items():
        tmp = fresh_temp(folder / f".{name}.tmp")
        con.execute(f"COPY ({selects[key]}) TO {_quote(tmp)} {options}")
        fsync_path(tmp)
        os.replace(tmp, folder / name)
    rows, lo, hi = con.execute(
        f"SELECT count(*), min(ts), max(ts) FROM {table} WHERE kind IN ('gate', 'result')"
    ).fetchall()[0]
    total, first, last = con.execute(f"SELECT count(*), min(ts), max(ts) FROM {table}").fetchall()[
        0
    ]
    total = int(total)
    entry = {
        "id": out_id,
        **names,
        "segments": list(segments),
        "min_ts": lo.isoformat() if lo else None,
        "max_ts": hi.isoformat() if hi else None,
        "rows": int(rows),
        "total_rows": total,
        "first_ts": first.isoformat() if first else None,
        "last_ts": last.isoformat() if last else None,
        "replaces": list(replaces),
    }
    fsync_path(folder)
    with (folder / MANIFEST).open("a", encoding="utf-8") as manifest:
        manifest.write(json.dumps(entry) + "\n")
        manifest.flush()
        os.fsync(manifest.fileno())
    return CompactedOutput(
        id=out_id,
        results=names["results"],
        events=names["events"],
        segments=tuple(segments),
        min_ts=lo,
        max_ts=hi,
        rows=total,
        replaces=replaces,
        rollup=names["rollup"],
        hourly=names["hourly"],
        first_ts=first,
        last_ts=last,
    )


def _merge_small(con: Any, folder: Path, report: CompactionReport) -> None:
    """Merge the small outputs into one when there are enough of them."""
    small = [o for o in read_manifest(folder) if o.rows < SMALL_OUTPUT_ROWS]
    for group in _within_span(small):
        if len(group) >= MERGE_AT:
            _rewrite(con, folder, group)
            report.merged += [o.id for o in group]


def _within_span(outputs: list[CompactedOutput]) -> list[list[CompactedOutput]]:
    """Group outputs, oldest first, into runs that together span at most MERGE_SPAN."""
    groups: list[list[CompactedOutput]] = []
    start: datetime | None = None
    for out in sorted(outputs, key=lambda o: o.first_ts or o.min_ts or datetime.min):
        first = out.first_ts or out.min_ts or datetime.min
        last = out.last_ts or out.max_ts or first
        if groups and start is not None and last - start <= MERGE_SPAN:
            groups[-1].append(out)
        else:
            groups.append([out])
            start = first
    return groups


def _repair_rollups(con: Any, folder: Path, report: CompactionReport) -> None:
    """Rewrite each output whose rollup files are missing (written before they existed, or
    deleted as orphans by a run that did not know them): readers of a directory with such an
    output roll the whole log up from its rows on every query."""
    for output in read_manifest(folder):
        if not all(name and (folder / name).exists() for name in (output.rollup, output.hourly)):
            _rewrite(con, folder, [output])
            report.repaired.append(output.id)


def _rewrite(con: Any, folder: Path, outputs: list[CompactedOutput]) -> None:
    """Write the records of ``outputs`` as one new output that replaces them."""
    files = [folder / name for o in outputs for name in (o.results, o.events)]
    listing = "[" + ", ".join(_quote(p) for p in files) + "]"
    con.execute(f"CREATE OR REPLACE TABLE merged AS SELECT * FROM read_parquet({listing})")
    segments = [s for o in outputs for s in o.segments]
    _write_output(con, folder, "merged", segments, tuple(o.id for o in outputs))
    con.execute("DROP TABLE merged")
    for path in [folder / name for o in outputs for name in _files_of(o) if name]:
        path.unlink(missing_ok=True)


def _clean(folder: Path, audit: Path, report: CompactionReport) -> None:
    """Delete what a crashed run left: orphan files, compacted segments, replaced outputs."""
    outputs = read_manifest(folder)
    named = {MANIFEST, LOCK} | {name for o in outputs for name in _files_of(o) if name}
    for path in folder.iterdir():
        if path.name not in named:
            path.unlink(missing_ok=True)
            report.cleaned.append(path.name)
    done = {s for o in outputs for s in o.segments}
    for path in segment_paths(audit):
        if path.stem in done:
            path.unlink(missing_ok=True)
            report.cleaned.append(path.name)


def _files_of(output: CompactedOutput) -> tuple[str | None, ...]:
    """Every file an output's manifest line names (all of them are kept by ``_clean``)."""
    return (output.results, output.events, output.rollup, output.hourly)


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
