"""Test helpers, public so that users' own tests never sleep either.

- :class:`FakeClock`: time moves only when the test calls :meth:`FakeClock.advance`.
- :class:`InMemorySink`: keeps every decision event in a list, in order.
- :func:`crash_at_boundary`: ends the process at the N-th durable step of a snapshot or
  rollback, to prove recovery from a crash at any of them (run it in a child process).
- :func:`crash_at_deletion`: ends the process at the N-th durable step of a retention run
  (its plan journalled, the audit log's deletion committed, each file deleted), likewise.
- :func:`apply_fleet_event`: feeds a manager one fleet decision (a :class:`FleetEvent`) as its
  fleet link would, without Redis, to test what a fleet record does to a workflow, its log
  and its replay.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .base import _crash
from .base._events import DecisionEvent
from .base._fleet_event import FleetEvent
from .semconv import EventKind

if TYPE_CHECKING:
    from .runtime._manager import AutoHealManager

__all__ = [
    "CRASH_EXIT_CODE",
    "FakeClock",
    "FleetEvent",
    "InMemorySink",
    "apply_fleet_event",
    "crash_at_boundary",
    "crash_at_deletion",
]

#: The exit code of a process ended by :func:`crash_at_boundary` or :func:`crash_at_deletion`.
CRASH_EXIT_CODE = 86

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    """A clock for tests: starts at ``start`` (UTC) and moves only by :meth:`advance`.

    ``monotonic()`` and ``now()`` move together, so durations and timestamps agree.
    """

    def __init__(self, start: datetime = _EPOCH, monotonic_start: float = 1000.0) -> None:
        if start.tzinfo is None:
            raise ValueError(f"start must be timezone-aware, but was {start!r}")
        self._start = start.astimezone(UTC)
        self._origin = monotonic_start
        self._elapsed = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """Return the fake monotonic seconds."""
        return self._origin + self._elapsed

    def now(self) -> datetime:
        """Return the fake current time (aware UTC)."""
        return self._start + timedelta(seconds=self._elapsed)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0)."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, but was {seconds!r}")
        with self._lock:
            self._elapsed += seconds

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now().isoformat()})"


class InMemorySink:
    """An event sink that keeps every event, for assertions."""

    def __init__(self) -> None:
        self.events: list[DecisionEvent] = []
        self.flushed = 0
        self.closed = False
        self._lock = threading.Lock()

    def emit(self, event: DecisionEvent) -> None:
        """Keep the event."""
        with self._lock:
            self.events.append(event)

    def flush(self) -> None:
        """Count the flush."""
        self.flushed += 1

    def close(self) -> None:
        """Mark the sink closed."""
        self.closed = True

    def of_kind(self, kind: EventKind | str) -> list[DecisionEvent]:
        """Return the events of one kind, in order."""
        return [e for e in self.events if e.kind == kind]

    @property
    def transitions(self) -> list[DecisionEvent]:
        """Return the transition events, in order."""
        return self.of_kind(EventKind.TRANSITION)

    def clear(self) -> None:
        """Forget every event."""
        with self._lock:
            self.events.clear()


def crash_at_boundary(n: int) -> None:
    """End this process, as a kill would, at the ``n``-th durable step of a snapshot or rollback.

    Every write of the versioned store that must survive a crash (each fsync'd file, each
    rename) is a boundary; at the ``n``-th one the process exits at once with
    :data:`CRASH_EXIT_CODE`, without cleanup, like ``kill -9``. Call it in a child process
    before the store's operation, then check in the parent that the store opens whole.
    """
    _crash_at(n, _crash.STORE)


def crash_at_deletion(n: int) -> None:
    """End this process, as a kill would, right after the ``n``-th durable step of retention.

    A retention run's durable steps, in order: its plan journalled, then each file or folder
    of a failure case or mini report deleted; for the audit log, its plan journalled, the
    deletion committed (a manifest line), then each compacted file deleted. A run finishing
    one a crash cut short counts its deletions too. At the ``n``-th step, on whichever thread
    runs retention, the process exits at once with :data:`CRASH_EXIT_CODE`, without cleanup
    (no ``finally``, no ``atexit``, no flush), like ``kill -9``. Call it in a child process,
    then run retention (``manager.run_background("retention")`` once it is due), and check in
    the parent that a new manager finishes the run: nothing kept is lost, nothing is left half
    deleted, and the run is recorded (``resumed``).
    """
    _crash_at(n, _crash.RETENTION)


def _crash_at(n: int, kind: str) -> None:
    """Hook the crash points of ``kind`` (:mod:`~autoheal_otel.base._crash`) to end the process
    at the ``n``-th."""
    if n < 1:
        raise ValueError(f"n must be at least 1, but was {n}")
    seen = 0

    def hook() -> None:
        nonlocal seen
        seen += 1
        if seen == n:
            os._exit(CRASH_EXIT_CODE)

    _crash.hooks[kind] = hook


def apply_fleet_event(manager: AutoHealManager, event: FleetEvent) -> bool:
    """Feed ``manager`` one fleet decision, as its fleet link does with one it reads from the
    fleet's stream: one input, recorded in its log like any other. Returns True when it changed
    something here.

    For tests of what a fleet record does (a quarantine, a pause, a resume, a move) without a
    fleet. A fleet rollback moves the workflow to ROLLBACK but carries out no restore: follow
    it with ``force_transition``, or test rollbacks with a real fleet.
    """
    machine = manager._machine
    return bool(manager._decide(None, "fleet", event.workflow_id, None, machine.fleet_apply, event))
