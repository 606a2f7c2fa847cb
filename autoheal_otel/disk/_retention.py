"""Retention on a thread of its own: measure the data directory, delete what is too old.

A writing manager with a data directory starts a :class:`RetentionKeeper`. Its thread, never
a hook's, measures the directory every ``measure_interval`` seconds (the figure the status
report, ``/health`` and the ``autoheal.disk.*`` gauges hand out) and, every
``retention.check_interval_seconds`` with ``retention.enabled``, deletes the failure cases and
mini reports past their keep-days (:mod:`._sweep`), then the audit log's compacted files and
the success store's rows (:mod:`._audit_keeper`: keep_days, the budget, the free-space floor,
pins). Invariants:

- a run that deleted something is one audit record (kind ``retention``, reason
  ``retention.deleted``) through the manager's single input path (``decide``): what was
  deleted (bounded list), why (the keep-days and the cut-off), bytes freed; a run that finds
  nothing writes nothing;
- a run killed part-way is finished and recorded by the next one (``resumed``), in this
  process or the next: the journal is removed only after the record is written;
- one run at a time per data directory: a run takes this keeper's lock and the directory's
  ``.retention.lock`` (``flock``, not waited for: a run another process holds is skipped), so
  processes sharing a directory never race on one journal;
- the first deletion comes :data:`FIRST_SWEEP_DELAY` seconds after the thread starts (a
  process that starts and stops at once deletes nothing), then every check interval;
- a failure (a read-only directory, a full disk) is logged and counted, never raised; the
  next run starts over;
- the age of a file is measured against the injected clock's ``now()``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base._clock import Clock
from ..policy._retention import RetentionPolicy
from ._audit_keeper import AuditKeeper
from ._metrics import register_disk_gauges
from ._sweep import Unit, clear_journal, delete_units, plan, resume
from ._usage import DiskMeter

if TYPE_CHECKING:
    from ..core._machine import Machine

__all__ = ["RetentionKeeper", "start_retention", "summarize"]

_log = logging.getLogger("autoheal_otel")

#: Seconds (of the manager's clock) from the thread's start to its first deletion.
FIRST_SWEEP_DELAY = 60.0
#: The lock file that makes runs exclusive across the processes sharing a directory.
LOCK_NAME = ".retention.lock"

#: Units listed by path in one record (the counts and bytes cover every unit).
MAX_LISTED = 100


def summarize(
    units: list[Unit], policy: RetentionPolicy, now: datetime, resumed: bool
) -> dict[str, Any]:
    """Return a run's record details: what was deleted, why, and the bytes freed."""
    keep = {
        "failure_cases": policy.failure_cases_keep_days,
        "reports": policy.reports_keep_days,
    }
    areas: dict[str, dict[str, Any]] = {}
    for unit in units:
        area = areas.setdefault(
            unit.area,
            {
                "units": 0,
                "files": 0,
                "bytes": 0,
                "keep_days": keep[unit.area],
                "cut_off": (now - timedelta(days=keep[unit.area])).isoformat(),
            },
        )
        area["units"] += 1
        area["files"] += len(unit.names)
        area["bytes"] += unit.bytes
    return {
        "resumed": resumed,
        "bytes_freed": sum(u.bytes for u in units),
        "units": len(units),
        "areas": areas,
        "deleted": [u.path for u in units[:MAX_LISTED]],
        "deleted_not_listed": max(0, len(units) - MAX_LISTED),
        "oldest": units[0].stamp.isoformat() if units else None,
        "newest": units[-1].stamp.isoformat() if units else None,
    }


class RetentionKeeper:
    """Measure ``disk`` and delete what is past its keep-days, off the hooks.

    Args:
        disk: the manager's disk meter (this thread becomes its only walker).
        policy: returns the retention section in force.
        wall / monotonic: the injected clock.
        record: feeds one retention record (a run's details) through the manager's input path.
        measure_interval: seconds between measurements (real time).

    The thread runs from :meth:`start` (after the session's first record); a test (or a
    host) does one turn now with the manager's ``run_background("retention")`` (:meth:`tick`).
    """

    def __init__(
        self,
        disk: DiskMeter,
        policy: Callable[[], RetentionPolicy],
        wall: Callable[[], datetime],
        monotonic: Callable[[], float],
        record: Callable[[dict[str, Any]], None],
        measure_interval: float = 30.0,
        audit: AuditKeeper | None = None,
    ) -> None:
        self.disk = disk
        self.data_dir: Path = disk.data_dir
        self._policy = policy
        self._wall = wall
        self._monotonic = monotonic
        self._record = record
        self.measure_interval = measure_interval
        #: Runs that deleted something, and runs (or measurements) that failed.
        self.runs = 0
        self.errors = 0
        self.last_details: dict[str, Any] | None = None
        #: The audit log's part of a run (None: failure cases and reports only).
        self.audit = audit
        self._next_sweep = monotonic() + FIRST_SWEEP_DELAY
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        disk.background = True

    def start(self) -> None:
        """Start the thread: a measurement and a first look at once, then on schedule."""
        self._thread = threading.Thread(target=self._loop, name="autoheal-retention", daemon=True)
        self._thread.start()

    def run_once(self) -> dict[str, Any] | None:
        """Finish an interrupted run, then delete what is past its keep-days now.

        Returns the details recorded (None: nothing was deleted, or another run holds the
        directory).
        """
        with self._run_lock:
            fd = os.open(self.data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return None  # another process runs retention here now
                return self._run()
            finally:
                os.close(fd)  # releases the flock

    def _run(self) -> dict[str, Any] | None:
        policy = self._policy()
        now = self._wall()
        details = None
        resumed = resume(self.data_dir)
        if resumed is not None:
            details = summarize(resumed, policy, now, True)
            self._record(details)
            clear_journal(self.data_dir)
        if policy.enabled:
            keep = {
                "failure_cases": policy.failure_cases_keep_days,
                "reports": policy.reports_keep_days,
            }
            units = plan(self.data_dir, keep, now)
            if not delete_units(self.data_dir, units, self._stop.is_set):
                return details  # closing: the next run finishes and records this one
            if units:
                details = summarize(units, policy, now, False)
                self._record(details)
                clear_journal(self.data_dir)
        if self.audit is not None:
            audited = self.audit.run(self._stop.is_set)
            details = audited or details
        if details is not None:
            self.runs += 1
            self.last_details = details
        return details

    def tick(self) -> bool:
        """Measure now, and run retention when it is due (one turn of the thread); return True
        when a retention run was due."""
        due = self._monotonic() >= self._next_sweep
        if due:
            self._next_sweep = self._monotonic() + self._policy().check_interval_seconds
            self.run_once()
        self.disk.measure_now()
        return due

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # retention must never break the manager
                self.errors += 1
                _log.exception("autoheal retention could not run in %s", self.data_dir)
            # allowed: the retention thread sleeps until its interval passes or close()
            self._wake.wait(self.measure_interval)
            self._wake.clear()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread: a run under way stops after its current unit; the next run (in
        this process or another) finishes and records it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)


def start_retention(
    data_dir: Path | None,
    machine: Machine,
    decide: Callable[..., Any],
    read_only: bool,
    clock: Clock,
    meter: Any,
) -> tuple[DiskMeter | None, RetentionKeeper | None]:
    """Build a manager's disk meter (and its gauges on ``meter``) and, for a writing manager,
    its retention keeper (started by ``Parts.start``). (None, None): no directory."""
    if data_dir is None:
        return None, None

    def policy() -> RetentionPolicy:
        return machine.policy.retention

    disk = DiskMeter(data_dir, policy, clock.monotonic, clock.now)
    if meter is not None:
        register_disk_gauges(meter, disk.usage)
    if read_only:
        return disk, None

    def record(details: dict[str, Any]) -> None:
        decide(None, "retention", None, None, machine.record_retention, details)

    def record_log(details: dict[str, Any]) -> None:
        decide(None, "retention", None, None, machine.record_audit_retention, details)

    audit = AuditKeeper(disk, lambda: machine.policy, clock.now, record_log)
    return disk, RetentionKeeper(disk, policy, clock.now, clock.monotonic, record, audit=audit)
