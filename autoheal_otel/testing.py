"""Test helpers, public so that users' own tests never sleep either.

- :class:`FakeClock`: time moves only when the test calls :meth:`FakeClock.advance`.
- :class:`InMemorySink`: keeps every decision event in a list, in order.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from ._events import DecisionEvent
from .semconv import EventKind

__all__ = ["FakeClock", "InMemorySink"]

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
