"""What a manager is made of, read-only, and its background jobs on demand.

:class:`PartsView` gives :class:`~._manager.AutoHealManager` its
read-only properties (the policy in force, the clock, the writer id, the data directory, the
sinks, the store, the fleet link, the meter) and :meth:`~PartsView.run_background`, the
documented seam through which a test or a host runs one turn of a background job now.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base._clock import Clock
from ..base._errors import PolicyError
from ..core._machine import Machine
from ..policy._config import PolicyConfig
from ..sinks.jsonl import JsonlAuditSink
from ..sinks.sqlite import SuccessStore
from ..versioning import VersionedStore
from ._artifacts import ArtifactKeeper
from ._build import Parts
from ._polling import Periodic

if TYPE_CHECKING:
    from ..fleet import FleetLink

__all__ = ["PartsView"]


class PartsView:
    """The manager's parts, read-only (see the module)."""

    _machine: Machine
    _parts: Parts
    _artifacts: ArtifactKeeper
    _periodic: Periodic

    @property
    def policy(self) -> PolicyConfig:
        """Return the policy in force."""
        return self._machine.policy

    @property
    def clock(self) -> Clock:
        """Return the injected clock."""
        return self._parts.clock

    @property
    def writer(self) -> str:
        """Return this process's writer id in the audit log."""
        return self._parts.writer

    @property
    def data_dir(self) -> Path | None:
        """Return the data directory (None: memory only)."""
        return self._parts.data_dir

    @property
    def read_only(self) -> bool:
        """Return True when the manager writes nothing (``read_only=True``)."""
        return self._parts.read_only

    @property
    def store(self) -> VersionedStore | None:
        """Return the attached versioned store, if any."""
        return self._artifacts.store

    @property
    def audit(self) -> JsonlAuditSink | None:
        """Return the JSONL audit sink (None without a writable data directory)."""
        return self._parts.audit

    @property
    def success_store(self) -> SuccessStore | None:
        """Return the SQLite success store (None without a writable data directory)."""
        return self._parts.success_store

    @property
    def last_policy_error(self) -> PolicyError | None:
        """Return why the last policy edit was rejected (None after a good one)."""
        return self._periodic.last_error

    @property
    def fleet(self) -> FleetLink | None:
        """Return the fleet link (None with the fleet off): status, fleet-wide moves."""
        return self._parts.fleet

    @property
    def meter(self) -> Any:
        """Return the OpenTelemetry meter integrations record with (None without one)."""
        return self._parts.telemetry.meter

    def run_background(self, job: str) -> int:
        """Do one turn of a background job now, on this thread, and return what it did.

        The manager runs these on threads of its own; a test, or a host that wants one done
        before it goes on, calls this instead of waiting: ``"follow"`` (apply other writers'
        moves now; returns how many), ``"checkpoint"`` (record one if due; 1 or 0),
        ``"compaction"`` (compact closed segments now; how many), ``"retention"`` (measure the
        disk, and run retention if due; 1 when it was due). ``"sync"`` is the exception: the
        shared global figures are read on their own thread when a hook finds a sync due, and
        this waits up to 30 s for a pending one to finish (1 when none is pending). So is
        ``"shadow"``: the policy's shadow judges the published inputs in a process of its own,
        and this flushes, waits for shadows being stopped to end, then waits until the running
        one has judged every input so far (1 when one runs and caught up; its name and counts
        are in the status report's ``shadow``). A job this manager does not run returns 0
        (:meth:`background_jobs` lists those it runs).

        Raises:
            InvalidInputError: no job has that name.
        """
        return self._parts.run_background(job)

    def background_jobs(self) -> list[str]:
        """Return the background jobs this manager runs on threads of their own."""
        return self._parts.jobs()
