"""Time, injected.

Every reading of time in the library goes through a :class:`Clock`: ``monotonic()`` for
durations and windows (never goes backwards, unaffected by wall-clock changes) and ``now()``
for timestamps (an aware UTC ``datetime``). Nothing else in the package reads time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import partial
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of time: monotonic seconds for durations, aware UTC datetimes for stamps."""

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes backwards."""
        ...

    def now(self) -> datetime:
        """Return the current wall-clock time as an aware UTC datetime."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` and ``datetime.now(UTC)``."""

    __slots__ = ()

    # Bound directly to the C functions: the hot path reads both clocks on every hook.
    monotonic = staticmethod(time.monotonic)
    _now = partial(datetime.now, UTC)
    _now.__doc__ = "Return the current time in UTC (``datetime.now(UTC)``)."
    now = staticmethod(_now)

    def __repr__(self) -> str:
        return "SystemClock()"
