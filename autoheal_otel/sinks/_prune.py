"""Bounding the success store: validated successes older than ``retention.keep_days`` go.

The one reader of old rows, :meth:`~.sqlite.SuccessStore.learning_success_rate` (the target
memory's counts and mean confidence per workflow and artifact version), reads
``success_rollup``: every row is folded into it first, in the same transaction that moves its
mark, so deleting a folded row changes no figure any reader gets; that transaction also sums
the rollup's rows into one per workflow and version (each fold appends its own). Then rows up to the mark
and older than the cut-off are deleted in small transactions (:data:`BATCH_ROWS` each,
oldest ``id`` first: the scan stops at the first batch's worth), so a writer waits at most
one batch. SQLite puts the freed pages on its free list and reuses them for new rows, so the
file stops growing once as many rows go as come (no ``VACUUM``: it would rewrite the file).

Runs on the retention thread, never a hook's; a store that does not exist is left alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from .sqlite import _FOLD, _MARK, _MOVE_MARK, ROLLUP_SCHEMA, SuccessStore, connect

__all__ = ["BATCH_ROWS", "prune_successes"]

#: Rows deleted per transaction.
BATCH_ROWS = 5_000

_COLLAPSE = (
    "CREATE TEMP TABLE IF NOT EXISTS collapsed AS SELECT * FROM success_rollup LIMIT 0",
    "DELETE FROM collapsed",
    "INSERT INTO collapsed SELECT workflow_id, artifact_version, sum(successes),"
    " sum(confidences), sum(confidence_sum) FROM success_rollup"
    " GROUP BY workflow_id, artifact_version",
    "DELETE FROM success_rollup",
    "INSERT INTO success_rollup SELECT * FROM collapsed",
    "DELETE FROM collapsed",
)
_DELETE = (
    "DELETE FROM successes WHERE id IN (SELECT id FROM successes"
    f" WHERE id <= {_MARK} AND ts < ? ORDER BY id LIMIT {BATCH_ROWS})"
)


def prune_successes(data_dir: Path, before: datetime, stopping: Callable[[], bool] = bool) -> int:
    """Delete the store's rows older than ``before``; return how many went."""
    path = Path(data_dir) / SuccessStore.FILENAME
    if not path.is_file():
        return 0
    cut = before.astimezone(UTC).isoformat()
    conn = connect(path)
    deleted = 0
    try:
        conn.executescript(ROLLUP_SCHEMA)
        with conn:  # every row is in the rollup before any goes
            conn.execute(_FOLD)
            conn.execute(_MOVE_MARK)
            # Each fold appends a row per workflow and version: sum them into one, so the
            # rollup stays as small as the set of workflows and versions.
            for statement in _COLLAPSE:
                conn.execute(statement)
        while not stopping():
            with conn:
                gone = conn.execute(_DELETE, (cut,)).rowcount
            deleted += gone
            if gone < BATCH_ROWS:
                break
    except sqlite3.Error:
        if deleted == 0:
            raise
    finally:
        conn.close()
    return deleted
