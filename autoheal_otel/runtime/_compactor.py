"""Automatic compaction: closed audit segments become Parquet on a thread of its own.

A manager with a data directory starts an :class:`AutoCompactor`. Every
``audit.compact_interval_seconds`` (and whenever :meth:`AutoCompactor.kick` asks) its thread
looks for closed segments — rotated away by this process, or left by a stopped one — and runs
:func:`~autoheal_otel.analytics.compaction.compact` on them. Invariants:

- it never runs on a hook's thread and never takes the manager's lock: a hook never waits
  for it (the thread waits on a :class:`threading.Event` with a timeout, nothing else);
- a crash during it loses or doubles nothing: the manifest is the commit record (see
  ``analytics.compaction``), and the next run cleans up after it;
- its memory is bounded whatever the backlog (``analytics.compaction``: DuckDB's memory limit,
  spill files inside the data directory, batches of segments): a compaction that fell behind
  does not take gigabytes beside the robot;
- a failure (a full disk, a read-only directory) is logged and counted, never raised; the
  next run starts over;
- :meth:`AutoCompactor.close` does not wait for a long run: it interrupts the run's DuckDB
  statement (or stops it before its first one), which is as safe as a crash; the next run,
  in this process or another, compacts those segments.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

from ..analytics.compaction import CompactionReport, pending_segments
from ..policy._sections import AuditPolicy

__all__ = ["AutoCompactor", "start_compactor"]

#: A running robot leaves a segment closed less than this long ago (real time) for its next
#: compaction: other processes on the directory follow its last lines from the file itself.
SETTLE_SECONDS = 30.0

_log = logging.getLogger("autoheal_otel")


class AutoCompactor:
    """Compact ``data_dir``'s closed segments every ``interval`` seconds, off the hooks.

    Args:
        data_dir: the manager's data directory.
        interval: seconds between looks (0: never on its own, only on :meth:`kick`).
    """

    def __init__(
        self, data_dir: Path, interval: float, settle_seconds: float = SETTLE_SECONDS
    ) -> None:
        self.data_dir = Path(data_dir)
        self.interval = interval
        #: A closed segment younger than this (real time) waits for a later run.
        self.settle_seconds = settle_seconds
        #: Runs that compacted something, and runs that failed.
        self.runs = 0
        self.errors = 0
        #: What the last run that compacted something did.
        self.last_report: CompactionReport | None = None
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._closing = False
        # The running compaction's DuckDB connection (None between runs), for close().
        self._running: Any = None
        self._running_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="autoheal-compaction", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """Ask for a look now (returns at once)."""
        self._idle.clear()
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no asked-for run is pending or running; return False on timeout."""
        return self._idle.wait(timeout)

    def run_once(self) -> CompactionReport | None:
        """Compact what is closed now; return the report (None: nothing was closed)."""
        from ..analytics.compaction import compact

        if not pending_segments(self.data_dir, self.settle_seconds):
            return None
        try:
            report = compact(
                self.data_dir, connected=self._connected, settle_seconds=self.settle_seconds
            )
        finally:
            with self._running_lock:
                self._running = None
        self.runs += 1
        self.last_report = report
        return report

    def _connected(self, con: Any) -> None:
        with self._running_lock:
            if self._closing:  # closed while this run was starting: stop before any statement
                raise CompactionStopped
            self._running = con

    def _loop(self) -> None:
        timeout = self.interval if self.interval > 0 else None
        while True:
            # allowed: the compaction thread sleeps until its interval passes or it is kicked
            self._wake.wait(timeout)
            self._wake.clear()
            if self._closing:
                return
            try:
                self.run_once()
            except Exception:  # compaction must never break the manager
                if self._closing:  # stopped by close(): not a failure
                    return
                self.errors += 1
                _log.exception("autoheal could not compact the audit log")
            if not self._wake.is_set():
                self._idle.set()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread: a run under way is interrupted (see the invariants)."""
        with self._running_lock:
            self._closing = True
            running = self._running
        self._wake.set()
        if running is not None:
            # The run may have closed its connection meanwhile: then it is done anyway.
            with contextlib.suppress(Exception):
                running.interrupt()
        self._thread.join(timeout)
        self._idle.set()


class CompactionStopped(Exception):
    """A compaction stopped by :meth:`AutoCompactor.close` before its first statement."""


def start_compactor(
    data_dir: Path | None, policy: AuditPolicy, read_only: bool
) -> AutoCompactor | None:
    """Start a manager's background compaction (None: no directory, read-only, or turned off)."""
    if data_dir is None or read_only or policy.compact_interval_seconds <= 0:
        return None
    return AutoCompactor(data_dir, policy.compact_interval_seconds)
