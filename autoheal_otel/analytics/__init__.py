"""DuckDB analytics over the audit log, shipped with the package.

One query per file in ``analytics/sql/``, loaded by name (:func:`load_query`) and used alike by
the state machine (warm restart, global scope, regression monitor), the CLI and the notebooks.

    >>> from autoheal_otel.analytics import AuditAnalytics   # doctest: +SKIP
    >>> with AuditAnalytics("data") as db:
    ...     db.query("summary")
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Self

from ..base._errors import InvalidInputError
from ._columns import AUDIT_COLUMNS
from ._params import QueryParam, expand, parse_params
from ._view import Sources, iter_records, live_tables, read_json_sql, scan, sources, view_sql

__all__ = [
    "AuditAnalytics",
    "QueryParam",
    "iter_records",
    "load_query",
    "query_names",
    "query_params",
    "scan",
    "ts_param",
]

_PARAM = re.compile(r"\$([a-z_]+)")
#: How often :meth:`AuditAnalytics.refresh` lists the files again when one vanished meanwhile.
_REFRESH_ATTEMPTS = 3


def query_names() -> list[str]:
    """Return the names of the packaged queries."""
    folder = resources.files(__name__) / "sql"
    return sorted(p.name.removesuffix(".sql") for p in folder.iterdir() if p.name.endswith(".sql"))


def load_query(name: str) -> str:
    """Return the SQL text of a packaged query.

    Raises:
        InvalidInputError: no query has that name.
    """
    if name not in query_names():
        raise InvalidInputError("query", name, f"must be one of {', '.join(query_names())}")
    return expand((resources.files(__name__) / "sql" / f"{name}.sql").read_text(encoding="utf-8"))


def query_params(name: str) -> list[QueryParam]:
    """Return the parameters a packaged query declares (type, default and help of each).

    Raises:
        InvalidInputError: no query has that name.
    """
    return parse_params(load_query(name))


def ts_param(value: datetime | str | None) -> str:
    """Return a timestamp parameter as the UTC text the queries cast (naive UTC)."""
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ")


_LOOKBACK = re.compile(r"^-- lookback: (.+)$", re.M)


def _horizon(sql: str, params: dict[str, Any]) -> datetime | None:
    """Return the oldest instant a query can look at, from its ``-- lookback:`` header.

    ``-- lookback: $a + $b`` means ``as_of - (a + b) seconds``; ``-- lookback: since`` means
    ``$since``. A query without the header (or without its parameters) reads everything.
    """
    match = _LOOKBACK.search(sql)
    if match is None:
        return None
    spec = match.group(1).strip()
    try:
        if spec == "since":
            return _naive(params["since"])
        seconds = sum(float(params[name.strip().lstrip("$")]) for name in spec.split("+"))
        return _naive(params["as_of"]) - timedelta(seconds=seconds)
    except (KeyError, TypeError, ValueError):
        return None


def _naive(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)


def data_dirs(data_dir: str | Path | Sequence[str | Path]) -> list[Path]:
    """Return the data directories meant: one, several, or those a glob pattern matches.

    Several directories (a fleet's hosts, one each) are read as one log: every query sees
    the union of their records.
    """
    if isinstance(data_dir, str | Path):
        text = str(data_dir)
        if any(c in text for c in "*?["):
            return sorted(Path(p) for p in glob.glob(text) if Path(p).is_dir())
        return [Path(data_dir)]
    return [Path(d) for d in data_dir]


def _merged(parts: list[Sources]) -> Sources:
    if len(parts) == 1:
        return parts[0]
    merged = Sources([], [], [], {}, [])
    for part in parts:
        merged.jsonl += part.jsonl
        merged.results += part.results
        merged.events += part.events
        merged.ranges.update(part.ranges)
        merged.rollups += part.rollups
        merged.hourlies += part.hourlies
        merged.hourly_complete = merged.hourly_complete and part.hourly_complete
    return merged


def quiet(con: Any) -> None:
    """Turn DuckDB's progress bar off on ``con``: a library prints nothing of its own.

    Under Jupyter without ipywidgets DuckDB refuses to change the setting (it is off there).
    """
    import duckdb

    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")


def _spill_dir(data_dir: Path) -> Path:
    """Return a fresh folder name for one reader's spill files (DuckDB creates it if needed)."""
    audit = data_dir / "audit"
    name = f".spill-{os.getpid()}-{next(_SPILLS)}"
    if audit.is_dir() and not audit.is_symlink() and os.access(audit, os.W_OK):
        return audit / name
    return Path(tempfile.gettempdir()) / f"autoheal{name}-{os.getuid()}"


_SPILLS = itertools.count(1)


class AuditAnalytics:
    """Run the packaged queries over one data directory's audit log.

    An in-memory DuckDB connection with the views ``audit`` and ``audit_events`` over the
    live JSONL segments and the compacted Parquet files. Live JSONL is parsed once per
    :meth:`refresh` (so call it to see records written since); compacted files are scoped per
    query to the time its ``-- lookback:`` header says it needs. Thread-safe (one cursor per
    query, under a lock).
    """

    def __init__(
        self,
        data_dir: str | Path | Sequence[str | Path],
        *,
        memory_limit: str | None = None,
        gates_after: datetime | None = None,
        omit: Collection[str] = (),
        after: datetime | None = None,
    ) -> None:
        """Open the views over ``data_dir`` (one directory, several, or a glob).

        ``memory_limit`` (DuckDB's, e.g. ``"256MB"``) bounds what DuckDB keeps in memory;
        beyond it, it spills to temporary files (replay of a large raw log uses it).
        ``gates_after`` (naive UTC) leaves the live JSONL's gates up to that instant out of the
        views: for a reader whose queries read gates only after it (a warm restart), about
        half the rows of a raw log it need not hold. ``omit`` names columns of the live
        JSONL not held (they read as null): for a reader whose queries never read them.
        ``after`` (naive UTC) leaves out the compacted outputs wholly older than it and the
        live records before it: a reader that starts at a checkpoint reads no further back.
        """
        import duckdb  # imported lazily: only the analytics need it

        #: Every data directory read (a fleet: one per host); ``data_dir`` is the first.
        self.data_dirs = data_dirs(data_dir)
        self.data_dir = self.data_dirs[0] if self.data_dirs else Path(str(data_dir))
        self._lock = threading.Lock()
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET TimeZone = 'UTC'")
        quiet(self._con)
        #: Where DuckDB spills past ``memory_limit`` (removed at close; None: no limit set).
        self.spill: Path | None = None
        if memory_limit is not None:
            self._con.execute("SET memory_limit = ?", [memory_limit])
            self._con.execute("SET preserve_insertion_order = false")
            # Never DuckDB's default (``.tmp`` in the working directory): inside the data
            # directory, or a private temporary folder when the directory is read-only.
            self.spill = _spill_dir(self.data_dir)
            self._con.execute("SET temp_directory = ?", [str(self.spill)])
        # Keep parsed Parquet footers between queries (DuckDB re-parses them otherwise, which
        # costs more than reading the few row groups a windowed query needs).
        self._con.execute("SET parquet_metadata_cache = true")
        self._scope: tuple[str, ...] | None = None
        self._gates_after = gates_after
        self._after = after
        self._omit = frozenset(omit)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the list of files and the live JSONL (records written since become visible).

        A compaction that ran meanwhile (another process, or the manager's background one)
        may have replaced a listed segment by Parquet: the listing is then read again.
        """
        import duckdb

        for attempt in range(_REFRESH_ATTEMPTS):
            after = self._after
            src = _merged(
                [sources(d, after) for d in self.data_dirs] or [sources(self.data_dir, after)]
            )
            try:
                self._load(src)
                return
            except duckdb.IOException:
                if attempt == _REFRESH_ATTEMPTS - 1 or all(p.exists() for p in src.jsonl):
                    raise

    def _load(self, src: Sources) -> None:
        with self._lock:
            self._pending: dict[str, tuple[str, str]] = {}
            if src.jsonl:
                select = read_json_sql(src.jsonl)
                if self._gates_after is not None:
                    select += f" AND (kind <> 'gate' OR ts > '{ts_param(self._gates_after)}')"
                if self._after is not None:
                    select += f" AND ts >= '{ts_param(self._after)}'"
                if self._omit:
                    kept = ", ".join(f'"{c}"' for c in AUDIT_COLUMNS if c not in self._omit)
                    select = f"SELECT {kept} FROM ({select})"
                self._con.execute(f"CREATE OR REPLACE TABLE live AS {select}")
                for view, (table, select) in live_tables("live", self._omit).items():
                    # Built now (the events) or at the first query that reads the view.
                    limit = "" if view == "audit_events" else " LIMIT 0"
                    self._con.execute(f"CREATE OR REPLACE TABLE {table} AS {select}{limit}")
                    if limit:
                        self._pending[view] = (table, select)
            self._sources = src
            self._live = "live" if src.jsonl else None
            self._scope = None
            self._scope_views(None)

    def _derive(self, text: str) -> None:
        """Fill the live rollups the query reads, once per refresh (call with the lock held)."""
        for view in [v for v in self._pending if v in text]:
            table, select = self._pending.pop(view)
            self._con.execute(f"INSERT INTO {table} {select}")

    def _scope_views(self, horizon: datetime | None) -> None:
        """Point the views at the files a query needs (call with the lock held)."""
        files = tuple(p.name for p in self._sources.results_since(horizon))
        if files == self._scope:
            return
        for name, sql in view_sql(self._sources, self._live, horizon, self._omit).items():
            self._con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        self._scope = files

    def sql(self, text: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run SQL against the ``audit`` / ``audit_events`` views and return rows as dicts."""
        wanted = set(_PARAM.findall(text))
        bound = {k: v for k, v in (params or {}).items() if k in wanted}
        missing = wanted - set(bound)
        if missing:
            raise InvalidInputError("params", sorted(missing), "are required by the query")
        horizon = _horizon(text, bound)
        with self._lock:
            self._derive(text)
            self._scope_views(horizon)
            cursor = self._con.cursor()
            try:
                result = cursor.execute(text, bound) if bound else cursor.execute(text)
                names = [d[0] for d in result.description or ()]
                return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
            finally:
                cursor.close()

    def live_records(self) -> int:
        """Return how many records the views hold from the live segments.

        Every readable line, on a connection opened without a gate horizon (a warm restart's
        connection leaves out older gates): the live lines minus this are the lines every
        reader skips.
        """
        if self._live is None:
            return 0
        return int(self.sql(f"SELECT count(*) AS n FROM {self._live}")[0]["n"])

    def iter_sql(self, text: str, batch: int = 10_000) -> Iterator[dict[str, Any]]:
        """Run SQL over the whole log and yield its rows as dicts, ``batch`` at a time.

        For results too large to hold at once (replay): memory stays at one batch.
        """
        with self._lock:
            self._derive(text)
            self._scope_views(None)
            cursor = self._con.cursor()
            result = cursor.execute(text)
        try:
            names = [d[0] for d in result.description or ()]
            while rows := result.fetchmany(batch):
                for row in rows:
                    yield dict(zip(names, row, strict=True))
        finally:
            cursor.close()

    def iter_rows(
        self, text: str, params: Sequence[Any] = (), batch: int = 10_000
    ) -> Iterator[tuple[Any, ...]]:
        """Run SQL (``?`` parameters) over the whole log and yield plain tuples, ``batch`` at
        a time: :meth:`iter_sql` without a dict per row (the multi-policy decoder)."""
        with self._lock:
            self._derive(text)
            self._scope_views(None)
            cursor = self._con.cursor()
            result = cursor.execute(text, list(params)) if params else cursor.execute(text)
        try:
            while rows := result.fetchmany(batch):
                yield from rows
        finally:
            cursor.close()

    def rows(self, name: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run a packaged query by name and return plain tuples (for large results)."""
        text = load_query(name)
        bound = {k: ts_param(v) if isinstance(v, datetime) else v for k, v in params.items()}
        bound = {k: v for k, v in bound.items() if k in set(_PARAM.findall(text))}
        with self._lock:
            self._derive(text)
            self._scope_views(_horizon(text, bound))
            cursor = self._con.cursor()
            try:
                return cursor.execute(text, bound).fetchall()
            finally:
                cursor.close()

    def query(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run a packaged query by name; datetime parameters may be given as datetimes."""
        bound = {k: ts_param(v) if isinstance(v, datetime) else v for k, v in params.items()}
        return self.sql(load_query(name), bound)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._con.close()
        if self.spill is not None:
            shutil.rmtree(self.spill, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
