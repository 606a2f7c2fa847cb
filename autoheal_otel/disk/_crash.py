"""Where a retention run may die: the one hook at each of its durable steps.

Every step of a retention run that a crash may follow calls :func:`deletion_point`: its plan
journalled (failure cases and reports, or the audit log), the audit log's retirement committed
(its manifest line), each file or folder deleted (by a run, or by the next run finishing one
a crash cut short). Invariant: a process that dies right after any of these steps loses
nothing retention keeps and leaves nothing half deleted once the next run has finished.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["deletion_hook", "deletion_point"]

#: Called at every durable step of a retention run. ``None`` outside tests;
#: :func:`autoheal_otel.testing.crash_at_deletion` sets it to prove that a process killed at any
#: of them loses nothing kept.
deletion_hook: Callable[[], None] | None = None


def deletion_point() -> None:
    """Mark a durable step of a retention run (a process may die here; recovery must hold)."""
    if deletion_hook is not None:
        deletion_hook()
