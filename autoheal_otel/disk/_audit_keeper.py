"""The audit log's part of a retention run (:mod:`._audit_retention` plans and deletes).

On the retention thread, never a hook's: finish a run a crash interrupted, read the pins,
measure, compact the raw segments first when over budget, plan, delete, record. When the
budget cannot be met without deleting what must stay, the disk meter is told (``/health``
degraded, naming why) and one ``retention.blocked`` record says why (again only when the
reason changes); a ``pins.json`` that cannot be read blocks every deletion of the audit log.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ..base._fs import write_atomic
from ..policy._config import PolicyConfig
from ._audit_retention import AuditCut, clear, details_of, plan_audit, resume, retire
from ._pins import PinsError, load_pins
from ._usage import BLOCKED_FILE, DiskMeter

__all__ = ["COMPACT_SETTLE_SECONDS", "AuditKeeper"]

#: A closed segment written to less than this long ago is left for a later compaction (as the
#: robot's own compaction does: another process may not have read its last lines yet).
COMPACT_SETTLE_SECONDS = 30.0


class AuditKeeper:
    """The audit log's part of a retention run, on the retention thread (never a hook's).

    Args:
        disk: the manager's disk meter (measured before planning; told when blocked).
        policy: returns the policy in force (its retention section and horizons).
        wall: the injected clock's ``now``.
        record: feeds one record (a run's details) through the manager's input path.
    """

    def __init__(
        self,
        disk: DiskMeter,
        policy: Callable[[], PolicyConfig],
        wall: Callable[[], datetime],
        record: Callable[[dict[str, Any]], None],
    ) -> None:
        self.disk = disk
        self.data_dir = disk.data_dir
        self._policy = policy
        self._wall = wall
        self._record = record
        self._blocked_recorded: str | None = None
        #: Success-store rows deleted (all runs).
        self.pruned_rows = 0

    def run(self, stopping: Callable[[], bool] = bool) -> dict[str, Any] | None:
        """Finish an interrupted run, then delete what retention allows; return the details
        recorded of a deletion (None: nothing deleted). What the run cut, and why, is in its
        record (:func:`~._audit_retention.details_of`)."""
        recorded = None
        resumed = resume(self.data_dir)
        if resumed is not None:
            self._record(resumed)
            clear(self.data_dir)
            recorded = resumed
        policy = self._policy()
        if not policy.retention.enabled or stopping():
            return recorded
        now = self._wall()
        try:
            pins = load_pins(self.data_dir)
        except PinsError as exc:
            self._blocked(f"nothing of the audit log is deleted: {exc}", policy)
            return recorded
        usage = self.disk.measure_now()
        over = usage.total > policy.retention.max_bytes or (
            usage.free_bytes is not None and usage.free_bytes < policy.retention.keep_free_bytes
        )
        from ..analytics.compaction import compact, pending_segments

        if over and pending_segments(self.data_dir, COMPACT_SETTLE_SECONDS):
            compact(self.data_dir, settle_seconds=COMPACT_SETTLE_SECONDS)  # raw goes first
            usage = self.disk.measure_now()
        cut = plan_audit(self.data_dir, policy, now, usage.total, usage.free_bytes, pins)
        details = retire(self.data_dir, cut, policy)
        if details is not None:
            self._record(details)
            clear(self.data_dir)
            recorded = details
        self._prune_successes(policy, now, stopping)
        if cut.blocked:
            self._blocked(cut.blocked, policy, cut)
        elif self.disk.blocked is not None or (self.data_dir / BLOCKED_FILE).exists():
            self.disk.blocked = self._blocked_recorded = None
            (self.data_dir / BLOCKED_FILE).unlink(missing_ok=True)
            self.disk.measure_now()
        return recorded

    def _prune_successes(
        self, policy: PolicyConfig, now: datetime, stopping: Callable[[], bool]
    ) -> None:
        """Delete the success store's rows past keep_days; record how many went."""
        from ..sinks._prune import prune_successes

        before = now - timedelta(days=policy.retention.keep_days)
        rows = prune_successes(self.data_dir, before, stopping)
        if rows:
            self._record(
                {
                    "area": "success_store",
                    "rows_deleted": rows,
                    "cut_off": before.isoformat(),
                    "keep_days": policy.retention.keep_days,
                    "bytes_freed": 0,  # the pages are reused by new rows
                    "deleted": [],
                    "resumed": False,
                }
            )
            self.pruned_rows += rows

    def _blocked(self, why: str, policy: PolicyConfig, cut: AuditCut | None = None) -> None:
        """Degrade /health with ``why``; record it once (again only when it changes)."""
        self.disk.blocked = why
        # Every reader of the directory says it too (a read-only `autoheal serve`, `status`).
        record = {"reason": why, "at": self._wall().isoformat()}
        write_atomic(self.data_dir / BLOCKED_FILE, json.dumps(record).encode())
        self.disk.measure_now()  # /health says it from now on
        if why != self._blocked_recorded:
            details = details_of(cut or AuditCut(), policy, f"r-{secrets.token_hex(4)}")
            # The deletion this run could make is its own record: this one says what stays.
            details.update(blocked=why, deleted=[], bytes_freed=0)
            self._record(details)
            self._blocked_recorded = why
