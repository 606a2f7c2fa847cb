"""Sliding time windows that count failures per trigger.

A :class:`SlidingWindow` keeps the monotonic timestamps of the events inside its window, in
order, with a running count per trigger. Invariants:

- ``total`` equals ``len`` of the live entries and the sum of ``counts``;
- an entry at time ``t`` is live at ``now`` iff ``now - t < window_seconds`` (an entry exactly
  one window old has expired);
- every update and read is O(1) amortized: each entry is appended once and evicted once, and
  eviction subtracts from the running counts instead of re-counting.

Timestamps must be non-decreasing (they come from one monotonic clock under one lock).
The window holds at most ``max_entries`` entries; beyond that the oldest are dropped, which
only matters for a caller that ignores every breaker (thresholds are far below the cap).
"""

from __future__ import annotations

from collections import deque

from ..base._models import Trigger

__all__ = ["TRIGGERS", "SlidingWindow"]

TRIGGERS: tuple[Trigger, ...] = tuple(Trigger)
_INDEX = {t: i for i, t in enumerate(TRIGGERS)}
# Shared, never mutated: ``add`` replaces them before the first append.
_EMPTY: deque[tuple[float, int]] = deque(maxlen=0)
_ZEROS = [0] * len(TRIGGERS)


class SlidingWindow:
    """Count events per trigger over the last ``window_seconds`` of a monotonic clock."""

    __slots__ = ("_counts", "_entries", "max_entries", "window_seconds")

    def __init__(self, window_seconds: float, max_entries: int = 100_000) -> None:
        self.window_seconds = window_seconds
        self.max_entries = max_entries
        # Allocated on the first event: most workflows never fail, and an empty deque costs
        # more memory than everything else a healthy workflow holds.
        self._entries: deque[tuple[float, int]] = _EMPTY
        self._counts = _ZEROS

    def add(self, now: float, trigger: Trigger) -> int:
        """Record one event at ``now`` and return the live total."""
        if self._entries is _EMPTY:
            self._entries = deque()
            self._counts = [0] * len(TRIGGERS)
        self.evict(now)
        entries = self._entries
        if len(entries) >= self.max_entries:
            _, oldest = entries.popleft()
            self._counts[oldest] -= 1
        index = _INDEX[trigger]
        entries.append((now, index))
        self._counts[index] += 1
        return len(entries)

    def evict(self, now: float) -> None:
        """Drop the entries that are one window old or older at ``now``."""
        entries = self._entries
        window = self.window_seconds
        counts = self._counts
        # Written as the invariant (``now - t >= window`` expires), not as ``t <= now - window``:
        # the two differ in floating point at the boundary.
        while entries and now - entries[0][0] >= window:
            counts[entries.popleft()[1]] -= 1

    def total(self, now: float) -> int:
        """Return how many events are live at ``now``."""
        self.evict(now)
        return len(self._entries)

    def count(self, now: float, trigger: Trigger) -> int:
        """Return how many events of one trigger are live at ``now``."""
        self.evict(now)
        return self._counts[_INDEX[trigger]]

    def counts(self, now: float) -> dict[Trigger, int]:
        """Return the live count of every trigger that has one."""
        self.evict(now)
        return {t: n for t, n in zip(TRIGGERS, self._counts, strict=True) if n}

    def oldest(self, now: float) -> float | None:
        """Return the timestamp of the oldest live event, if any."""
        self.evict(now)
        return self._entries[0][0] if self._entries else None

    def clear(self) -> None:
        """Forget every event (an operator reset)."""
        self._entries = _EMPTY
        self._counts = _ZEROS

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"SlidingWindow(window_seconds={self.window_seconds}, entries={len(self._entries)})"
