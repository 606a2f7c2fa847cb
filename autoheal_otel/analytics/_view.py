"""The ``audit`` view: every readable audit record, from live JSONL and compacted Parquet.

Invariants:
- the log is read with an explicit schema (a column never changes type with the data);
- a torn or malformed line (even one nested too deep to parse), and a record a reader cannot
  use (``_validity``: an unknown ``kind``, state, outcome or trigger, a newer
  ``schema_version``, a ``seq`` outside BIGINT) is excluded from every view and every
  iteration (DuckDB turns a bad line into an all-NULL row, so the views filter on non-null
  keys); :func:`scan` reports each such line with its file, line number and reason;
- compacted data is what the manifest (``compacted/manifest.jsonl``) records: a JSONL segment
  it names is read from Parquet only, and a Parquet file it does not name is ignored, so no
  crash during compaction can lose or double a record;
- scoping a view to a horizon drops only files whose recorded newest record is older than it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from ..core._transitions import Reset, reset_condition
from ..semconv import Reason
from ..sinks.jsonl import AUDIT_DIR, segment_paths
from ._columns import AUDIT_COLUMNS, JSON_SELECT
from ._validity import VALID_SQL, record_problem

_log = logging.getLogger("autoheal_otel")

__all__ = [
    "AUDIT_COLUMNS",
    "COMPACTED_DIR",
    "HOURLY_SQL",
    "MANIFEST",
    "CompactedOutput",
    "LogScan",
    "Sources",
    "iter_records",
    "live_columns",
    "live_tables",
    "read_manifest",
    "scan",
    "sources",
    "view_sql",
]

COMPACTED_DIR = "compacted"

_COLUMN_LIST = ", ".join(f'"{c}"' for c in AUDIT_COLUMNS)
_VALID = VALID_SQL


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def read_json_sql(paths: list[Path]) -> str:
    """Return a SELECT over JSONL files with the explicit audit schema (bad lines excluded)."""
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in AUDIT_COLUMNS.items()) + "}"
    files = "[" + ", ".join(_quote(p) for p in paths) + "]"
    return (
        f"SELECT {JSON_SELECT} FROM read_json({files}, format='newline_delimited',"
        f" ignore_errors=true, columns={columns}) WHERE {_VALID}"
    )


MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class CompactedOutput:
    """One compaction output, as its manifest line records it."""

    id: str
    results: str
    events: str
    segments: tuple[str, ...]
    min_ts: datetime | None
    max_ts: datetime | None
    rows: int
    replaces: tuple[str, ...] = ()
    rollup: str | None = None
    hourly: str | None = None
    #: The oldest and newest record of any kind (None: an entry written before they were kept).
    first_ts: datetime | None = None
    last_ts: datetime | None = None


#: Executions and successes per workflow and artifact version, with the (ts, seq) key of the
#: version's first use: written per compaction output, computed live for the JSONL part.
ROLLUP_SQL = (
    "SELECT workflow_id, artifact_version, min({{'ts': ts, 'seq': seq}}) AS first_key,"
    " count(*) AS executions, count(*) FILTER (WHERE outcome = 'success') AS successes"
    " FROM {source} WHERE kind = 'result' AND artifact_version IS NOT NULL GROUP BY ALL"
)


#: The matching method a result names (its details.method when a string, else faiss) and
#: whether it decided a match (a validated success or a failed postcondition, with a score):
#: what calibration counts, said once for the rollup and the queries.
METHOD_SQL = (
    "CASE WHEN json_type(details -> '$.method') = 'VARCHAR'"
    " THEN details ->> '$.method' ELSE 'faiss' END"
)
DECIDED_SQL = (
    "(confidence IS NOT NULL"
    " AND ((outcome = 'success' AND validated) OR outcome = 'postcondition_failed'))"
)

#: Results per hour and workflow (executions, successes) and decided matches per hour and
#: method: written per compaction output, computed live for the JSONL part. Rows of one
#: workflow and hour are split by method only where results decided a match.
HOURLY_SQL = (
    "SELECT date_trunc('hour', ts) AS hour, workflow_id,"
    f" CASE WHEN {DECIDED_SQL} THEN {METHOD_SQL} END AS method,"
    " count(*) AS executions, count(*) FILTER (WHERE outcome = 'success') AS successes,"
    f" count(*) FILTER (WHERE {DECIDED_SQL}) AS decided"
    " FROM {source} WHERE kind = 'result' GROUP BY ALL"
)
#: A name compaction writes into its folder: bare, of the shape it gives them.
_OUTPUT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,200}")


def _bare_names(out: CompactedOutput) -> bool:
    """Return True when every name a manifest entry holds is bare (a manifest is input too)."""
    names = [out.id, out.results, out.events, *out.segments, *out.replaces, out.rollup, out.hourly]
    return all(n is None or (_OUTPUT_NAME.fullmatch(n) and ".." not in n) for n in names)


def read_manifest(folder: Path) -> list[CompactedOutput]:
    """Return the live compaction outputs: recorded, not replaced by a later merge nor retired
    by retention (a line ``{"retires": [ids], ...}``, written before their files are deleted).

    The manifest is the completion record: a Parquet file it does not name (a crash before
    its line was written) is an orphan that no reader uses.
    """
    outputs: dict[str, CompactedOutput] = {}
    try:
        text = (folder / MANIFEST).read_text(encoding="utf-8")
    except OSError:
        return []
    for line in text.splitlines():
        try:
            e = json.loads(line)
            if isinstance(e, dict) and isinstance(e.get("retires"), list):
                # Retention's commit: these outputs are deleted (their files may linger).
                for old in e["retires"]:
                    outputs.pop(str(old), None)
                continue
            out = CompactedOutput(
                id=e["id"],
                results=e["results"],
                events=e["events"],
                segments=tuple(e["segments"]),
                min_ts=datetime.fromisoformat(e["min_ts"]) if e.get("min_ts") else None,
                max_ts=datetime.fromisoformat(e["max_ts"]) if e.get("max_ts") else None,
                rows=int(e["rows"]),
                replaces=tuple(e.get("replaces", ())),
                rollup=e.get("rollup"),
                hourly=e.get("hourly"),
                first_ts=datetime.fromisoformat(e["first_ts"]) if e.get("first_ts") else None,
                last_ts=datetime.fromisoformat(e["last_ts"]) if e.get("last_ts") else None,
            )
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line: that output is not complete, so it does not count
        if not _bare_names(out):
            _log.warning("autoheal ignores a compaction manifest entry naming %r", e)
            continue  # a planted entry: its files are no output of ours, never read or deleted
        outputs[out.id] = out
        for old in out.replaces:
            outputs.pop(old, None)
    return list(outputs.values())


@dataclass
class Sources:
    """The files behind the views: live JSONL, compacted results (with time ranges), events."""

    jsonl: list[Path]
    results: list[Path]
    events: list[Path]
    ranges: dict[str, tuple[datetime | None, datetime | None]]
    rollups: list[Path] = field(default_factory=list)
    #: The hourly rollups, and whether every compacted output has one (older ones may not).
    hourlies: list[Path] = field(default_factory=list)
    hourly_complete: bool = True

    def results_since(self, horizon: datetime | None) -> list[Path]:
        """Return the result files that may hold a record newer than ``horizon`` (naive UTC)."""
        if horizon is None:
            return self.results
        out = []
        for p in self.results:
            newest = self.ranges.get(p.name, (None, None))[1]
            if newest is None or newest > horizon:
                out.append(p)
        return out


def sources(data_dir: Path, after: datetime | None = None) -> Sources:
    """List the live segments and the compacted files of a data directory.

    A JSONL segment named by a live manifest entry is read from that entry's Parquet files
    only, so a crash between compaction's manifest line and its deletes never doubles a record.
    With ``after`` (naive UTC), the compacted outputs whose newest record of any kind is older
    are left out (an output whose manifest line does not say is kept).
    """
    audit = Path(data_dir) / AUDIT_DIR
    folder = audit / COMPACTED_DIR
    every = read_manifest(folder)
    done = {s for out in every for s in out.segments}
    outputs = [o for o in every if after is None or o.last_ts is None or o.last_ts >= after]
    results = [folder / o.results for o in outputs if (folder / o.results).exists()]
    events = [folder / o.events for o in outputs if (folder / o.events).exists()]
    ranges = {o.results: (o.min_ts, o.max_ts) for o in outputs}
    rollups = [folder / o.rollup for o in outputs if o.rollup and (folder / o.rollup).exists()]
    hourlies = [folder / o.hourly for o in outputs if o.hourly and (folder / o.hourly).exists()]
    jsonl = [p for p in segment_paths(audit) if p.stem not in done and p.stat().st_size > 0]
    return Sources(jsonl, results, events, ranges, rollups, hourlies, len(hourlies) == len(outputs))


def _files(paths: list[Path]) -> str:
    return "[" + ", ".join(_quote(p) for p in paths) + "]"


def _empty() -> str:
    casts = ", ".join(f'NULL::{t} AS "{c}"' for c, t in AUDIT_COLUMNS.items())
    return f"SELECT {casts} WHERE false"


def live_columns(omit: frozenset[str] = frozenset()) -> str:
    """Return the select list of every audit column over a live table without ``omit`` (null)."""
    return ", ".join(
        f'NULL::{kind} AS "{name}"' if name in omit else f'"{name}"'
        for name, kind in AUDIT_COLUMNS.items()
    )


def view_sql(
    src: Sources,
    live_table: str | None,
    horizon: datetime | None = None,
    omit: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """Return the SELECTs of the views over a data directory's log.

    - ``audit``: every record (with ``horizon``, only the compacted files that may hold
      records newer than it — a scoping, not a filter: queries still filter on ``ts``);
    - ``audit_events``: every record that is not a gate or a result (transitions, global,
      activations, sessions, policy, probes): small, for the state queries;
    - ``audit_resets``, ``audit_step_resets``, ``audit_global_resets``: the records that
      reset a workflow's windows, its steps' streaks, the global window;
    - ``audit_version_rollup``: executions and successes per workflow and artifact version,
      from the rollups compaction wrote and the live JSONL;
    - ``audit_hourly``: executions and successes per hour and workflow, decided matches per
      hour and method (:data:`HOURLY_SQL`), from compaction's hourly rollups and the live JSONL.

    ``live_table`` names a table holding the live JSONL rows (None: no live rows), next to
    the tables :func:`live_tables` derives from it; it lacks the columns ``omit`` names
    (they read as null).
    """
    results = src.results_since(horizon)
    live = f"SELECT {live_columns(omit)} FROM {live_table}" if live_table else None
    parts_all = [
        p
        for p in (
            live,
            f"SELECT {_COLUMN_LIST} FROM read_parquet({_files(results)})" if results else None,
            f"SELECT {_COLUMN_LIST} FROM read_parquet({_files(src.events)})"
            if src.events
            else None,
        )
        if p
    ]
    parts_events = [
        p
        for p in (
            f"SELECT * FROM {live_table}_events" if live_table else None,
            f"SELECT {_COLUMN_LIST} FROM read_parquet({_files(src.events)})"
            if src.events
            else None,
        )
        if p
    ]
    parts_rollup = [
        p
        for p in (
            f"SELECT * FROM {live_table}_rollup" if live_table else None,
            f"SELECT * FROM read_parquet({_files(src.rollups)})" if src.rollups else None,
        )
        if p
    ]
    empty_rollup = ROLLUP_SQL.format(source=f"({_empty()})")
    return {
        "audit": " UNION ALL ".join(parts_all) if parts_all else _empty(),
        "audit_events": " UNION ALL ".join(parts_events) if parts_events else _empty(),
        "audit_version_rollup": " UNION ALL ".join(parts_rollup) if parts_rollup else empty_rollup,
        "audit_hourly": _hourly_sql(src, live_table),
        **RESET_VIEWS,
    }


def live_tables(live_table: str, omit: frozenset[str] = frozenset()) -> dict[str, tuple[str, str]]:
    """Return the tables derived from the live rows: view -> (table, SELECT over the rows).

    ``<live>_events`` (the few records that are not gates or results) is built with the live
    table; a rollup is built the first time a query reads its view (``audit_version_rollup``,
    ``audit_hourly``), so a refresh that no query of theirs follows never pays for it.
    """
    return {
        "audit_events": (
            f"{live_table}_events",
            f"SELECT {live_columns(omit)} FROM {live_table} WHERE kind NOT IN ('gate', 'result')",
        ),
        "audit_version_rollup": (f"{live_table}_rollup", ROLLUP_SQL.format(source=live_table)),
        "audit_hourly": (f"{live_table}_hourly", HOURLY_SQL.format(source=live_table)),
    }


def _hourly_sql(src: Sources, live_table: str | None) -> str:
    """Return the hourly rollup view's SELECT: the compacted rollups and the live rows.

    An output compacted before hourly rollups existed has none: then the whole log is rolled
    up from its rows (slower, the same answer).
    """
    if not src.hourly_complete:
        return HOURLY_SQL.format(source="audit")
    parts = [
        f"SELECT * FROM {live_table}_hourly" if live_table else None,
        f"SELECT * FROM read_parquet({_files(src.hourlies)})" if src.hourlies else None,
    ]
    kept = [p for p in parts if p]
    return " UNION ALL ".join(kept) if kept else HOURLY_SQL.format(source=f"({_empty()})")


#: What resets a window or a streak, generated from the transition table's edges (the same
#: declaration the state machine applies), for every query that rebuilds a window.
RESET_VIEWS = {
    "audit_resets": (
        "SELECT workflow_id, ts, seq FROM audit_events WHERE kind = 'transition' AND "
        + reset_condition(Reset.WORKFLOW_WINDOW)
    ),
    "audit_step_resets": (
        "SELECT workflow_id, ts, seq FROM audit_events WHERE kind = 'transition' AND "
        + reset_condition(Reset.STEPS)
    ),
    "audit_global_resets": (
        "SELECT ts, seq FROM audit_events WHERE kind = 'global' AND reason = "
        f"'{Reason.GLOBAL_RESUMED.value}'"
    ),
}


@dataclass
class LogScan:
    """What a scan of the JSONL segments found: readable records and skipped lines."""

    records: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _problem(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        # orjson refuses nesting past 1024 levels itself: no RecursionError can escape.
        if "depth limit" in str(exc):
            return None, "JSON nested too deep to read"
        return None, "torn or malformed JSON"
    problem = record_problem(record)
    return (None, problem) if problem is not None else (record, None)


def iter_records(data_dir: Path, scan_report: LogScan | None = None) -> Iterator[dict[str, Any]]:
    """Yield every readable record of the JSONL segments, in file order.

    Bad lines are skipped and, when ``scan_report`` is given, listed there with their file,
    line number and reason.
    """
    for path in segment_paths(Path(data_dir) / AUDIT_DIR):
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                record, problem = _problem(line)
                if record is None:
                    if scan_report is not None:
                        scan_report.skipped.append(
                            {
                                "file": path.name,
                                "line": number,
                                "reason": problem,
                                "last_line": not line.endswith(b"\n"),
                            }
                        )
                    continue
                if scan_report is not None:
                    scan_report.records += 1
                yield record


def scan(data_dir: Path) -> LogScan:
    """Read every JSONL segment and report the lines a reader skips."""
    report = LogScan()
    for _ in iter_records(data_dir, report):
        pass
    return report
