"""The whole log in replay order, (ts, seq, writer), in bounded memory: slices of time.

One ``ORDER BY`` over the whole log makes DuckDB hold every row, payload included, before it
yields the first; past its memory limit its sort of wide rows (strings, lists, JSON) does not
spill to disk but fails with an out-of-memory error, and whether it fails depends on how the
threads' buffers happened to fill. So the log is read in slices of time instead:

1. a histogram of the timestamps (keys only: a few hundred counters) splits the log's time
   span into consecutive half-open ranges ``[lo, hi)`` of at most :data:`SLICE_ROWS` records
   each; a bucket holding more is split again with a finer width, down to one microsecond;
2. each range is sorted and streamed on its own (a sort of at most :data:`SLICE_ROWS` rows,
   well within the memory limit; the compacted files are sorted by time, so their row-group
   statistics skip what lies outside the range).

Invariants: the ranges are disjoint and together cover every record (the last one ends past
the newest), so every record is yielded exactly once, in (ts, seq, writer) order. The one case
left unbounded is more than :data:`SLICE_ROWS` records on a single microsecond.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import AuditAnalytics

__all__ = ["SLICE_ROWS", "ordered"]

#: Records sorted at once: ~100,000 rows of a few hundred bytes fit DuckDB's memory limit of
#: a replay (192 MB) several times over.
SLICE_ROWS = 100_000
#: Buckets per slice in a histogram: ranges come out 1/16 of a slice close to the target.
_BUCKETS_PER_SLICE = 16
_EPOCH = datetime(1970, 1, 1)


def _at(micros: int) -> str:
    """Return a naive UTC instant, microseconds since the epoch, as a TIMESTAMP literal."""
    return f"TIMESTAMP '{(_EPOCH + timedelta(microseconds=micros)).isoformat(sep=' ')}'"


def _ranges(db: AuditAnalytics, lo: int, hi: int, count: int) -> Iterator[tuple[int, int]]:
    """Yield consecutive ranges ``[lo, hi)`` (microseconds) of at most SLICE_ROWS records."""
    if count <= SLICE_ROWS or hi - lo <= 1:
        yield lo, hi
        return
    buckets = _BUCKETS_PER_SLICE * (count // SLICE_ROWS + 1)
    width = max(1, -(-(hi - lo) // buckets))
    rows = db.sql(
        f"SELECT (epoch_us(ts) - {lo}) // {width} AS b, count(*) AS n FROM audit"
        f" WHERE ts >= {_at(lo)} AND ts < {_at(hi)} GROUP BY b ORDER BY b"
    )
    start, held = lo, 0
    for row in rows:
        b_lo = lo + int(row["b"]) * width
        b_hi = min(hi, b_lo + width)
        n = int(row["n"])
        if held and held + n > SLICE_ROWS:
            yield start, b_lo
            start, held = b_lo, 0
        if n > SLICE_ROWS:  # one bucket too many: split it finer
            yield from _ranges(db, b_lo, b_hi, n)
            start = b_hi
            continue
        held += n
    if start < hi:
        yield start, hi


def ordered(
    db: AuditAnalytics, columns: str, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Yield every record of ``db``'s ``audit`` view in (ts, seq, writer) order, slice by slice
    (with ``since``, naive UTC: the records at or after it)."""
    where = "" if since is None else f" WHERE ts >= TIMESTAMP '{since.isoformat(sep=' ')}'"
    span = db.sql(
        "SELECT epoch_us(min(ts)) AS lo, epoch_us(max(ts)) AS hi, count(*) AS n FROM audit" + where
    )[0]
    if not span["n"]:
        return
    order = "ORDER BY ts, seq, writer"
    for lo, hi in _ranges(db, int(span["lo"]), int(span["hi"]) + 1, int(span["n"])):
        where = f"ts >= {_at(lo)} AND ts < {_at(hi)}"
        yield from db.iter_sql(f"SELECT {columns} FROM audit WHERE {where} {order}")
