"""DuckDB analytics over the audit log, shipped with the package.

One query per file in ``analytics/sql/``, loaded by name (:func:`load_query`) and used alike by
the state machine (warm restart, global scope, regression monitor), the CLI and the notebooks.

    >>> from autoheal_otel.analytics import AuditAnalytics   # doctest: +SKIP
    >>> with AuditAnalytics("data") as db:
    ...     db.query("summary")
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Self

from .._errors import InvalidInputError
from ._view import iter_records, scan, view_sql

__all__ = ["AuditAnalytics", "iter_records", "load_query", "query_names", "scan", "ts_param"]

_PARAM = re.compile(r"\$([a-z_]+)")


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
    return (resources.files(__name__) / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def ts_param(value: datetime | str | None) -> str:
    """Return a timestamp parameter as the UTC text the queries cast (naive UTC)."""
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ")


class AuditAnalytics:
    """Run the packaged queries over one data directory's audit log.

    An in-memory DuckDB connection with a view ``audit`` over the live JSONL segments and the
    compacted Parquet files; :meth:`refresh` picks up new segments. Thread-safe (one cursor
    per query, under a lock).
    """

    def __init__(self, data_dir: str | Path) -> None:
        import duckdb  # imported lazily: only the analytics need it

        self.data_dir = Path(data_dir)
        self._lock = threading.Lock()
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET TimeZone = 'UTC'")
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the ``audit`` view over the files present now."""
        sql = view_sql(self.data_dir)
        with self._lock:
            self._con.execute(f"CREATE OR REPLACE VIEW audit AS {sql}")

    def sql(self, text: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run arbitrary SQL against the ``audit`` view and return rows as dicts."""
        wanted = set(_PARAM.findall(text))
        bound = {k: v for k, v in (params or {}).items() if k in wanted}
        missing = wanted - set(bound)
        if missing:
            raise InvalidInputError("params", sorted(missing), "are required by the query")
        with self._lock:
            cursor = self._con.cursor()
            try:
                result = cursor.execute(text, bound) if bound else cursor.execute(text)
                names = [d[0] for d in result.description or ()]
                return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
