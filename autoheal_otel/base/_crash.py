"""Where an operation that must survive a crash may die: one hook per kind of operation.

The versioned store (each fsync'd write or rename of a snapshot or rollback) and retention
(its journal, its commit line, each file or folder deleted, by a run or by the next run
finishing one) call :func:`crash_point` at every durable step. Nothing is hooked outside
tests: :func:`autoheal_otel.testing.crash_at_boundary` and
:func:`~autoheal_otel.testing.crash_at_deletion` hook one kind to end the process at its n-th
step, to prove that a process killed at any of them loses nothing and leaves nothing half done.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["RETENTION", "STORE", "crash_point", "hooks"]

#: The versioned store's snapshots and rollbacks.
STORE = "store"
#: Retention's deletions (failure cases, reports, the audit log's compacted files).
RETENTION = "retention"

#: Per kind, what is called at each of its durable steps (empty outside tests).
hooks: dict[str, Callable[[], None]] = {}


def crash_point(kind: str) -> None:
    """Mark a durable step of an operation of ``kind`` (a process may die here; recovery must
    hold)."""
    hook = hooks.get(kind)
    if hook is not None:
        hook()
