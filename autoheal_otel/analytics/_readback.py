"""What a warm restart reads back from the log, kept while replay streams it.

A live restart does not carry the last process's memory over: it reads the log back
(:mod:`.restore`), and two of the things it reads are not what the last process held.

- **Calibration windows.** Each method's last ``calibration.window`` decided matches: more
  than the last process held when an override or an older policy kept a smaller window.
- **Step streaks.** Consecutive target-not-found and low-confidence results, counted only
  within ``audit.restore_horizon_seconds`` before the restart (``step_streaks``): fewer
  than the last process held when a streak is older than that.

:class:`Readback` follows the records replay feeds and answers both as of a restart, so the
replayed restart starts from what the live one did. Pure bookkeeping: no SQL, no clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta

from .._calibration_policy import MAX_WINDOW
from .._calibrator import DEFAULT_METHOD, decided, method_of
from .._ledger import Ledger
from .._models import StepResult

__all__ = ["Readback"]

#: The most results of one streak whose times are kept (a longer streak's oldest ones are
#: counted as inside the horizon when the oldest kept one is).
MAX_STREAK = 100_000

Streak = tuple[deque[datetime], deque[datetime]]


class Readback:
    """The log's decided matches and streak times so far (see the module docstring)."""

    def __init__(self) -> None:
        # Each method's decided matches, as many as any policy's window may reach back.
        self._decided: dict[str, deque[tuple[float, bool]]] = {}
        # Per (workflow, step): the times of the results of its current streaks, newest last.
        self._streaks: dict[tuple[str, str], Streak] = {}

    def counters(self, ledger: Ledger, workflow_id: str, step_id: str) -> tuple[int, int]:
        """Return a step's two streak counters in the machine (0, 0 for one not seen)."""
        wf = ledger.workflows.get(workflow_id)
        step = wf.steps.get(step_id) if wf is not None else None
        if step is None:
            return 0, 0
        return step.consecutive_target_not_found, step.consecutive_low_confidence

    def result(
        self,
        ledger: Ledger,
        workflow_id: str,
        step_id: str,
        result: StepResult,
        ts: datetime,
        before: tuple[int, int],
    ) -> None:
        """Note a result the machine was fed; ``before``: the step's counters before it."""
        ok = decided(result)
        if ok is not None and result.confidence is not None:
            method = method_of(result.details) if result.details else DEFAULT_METHOD
            window = self._decided.get(method)
            if window is None:
                window = self._decided[method] = deque(maxlen=MAX_WINDOW)
            window.append((result.confidence, ok))
        after = self.counters(ledger, workflow_id, step_id)
        key = (workflow_id, step_id)
        times = self._streaks.get(key)
        if times is None:
            if after == (0, 0):
                return
            times = self._streaks[key] = (deque(maxlen=MAX_STREAK), deque(maxlen=MAX_STREAK))
        for count, was, kept in zip(after, before, times, strict=True):
            if count == 0:
                kept.clear()
            elif count == was + 1:  # the result extends the streak
                kept.append(ts)

    def calibration_samples(self) -> Iterator[tuple[str, float, bool]]:
        """Return every method's decided matches so far, oldest first (each window keeps its
        last ``window``)."""
        for method, window in self._decided.items():
            for confidence, ok in window:
                yield method, confidence, ok

    def streaks(
        self, ledger: Ledger, as_of: datetime, horizon_seconds: float
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """Return each step's counters as a restart at ``as_of`` reads them back: the results
        of its current streaks within ``horizon_seconds`` (``audit.restore_horizon_seconds``
        of the restarted process's policy)."""
        since = as_of - timedelta(seconds=horizon_seconds)
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for key, times in self._streaks.items():
            counts = self.counters(ledger, *key)
            if counts == (0, 0):
                continue
            out[key] = (
                _within(times[0], counts[0], since),
                _within(times[1], counts[1], since),
            )
        return out


def _within(times: deque[datetime], count: int, since: datetime) -> int:
    """Return how many of the last ``count`` times are after ``since``."""
    if count == 0:
        return 0
    newest = list(times)[-count:]
    inside = sum(1 for t in newest if t > since)
    # A streak longer than what is kept: its older results count when the oldest kept does.
    if count > len(newest) and newest and newest[0] > since:
        inside += count - len(newest)
    return inside
