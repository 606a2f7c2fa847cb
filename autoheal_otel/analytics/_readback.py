"""What a warm restart reads back from the log, kept while replay streams it.

A live restart does not carry the last process's memory over: it reads the log back
(:mod:`.restore`), and two of the things it reads are not what the last process held.

- **Calibration windows.** Each method's last ``calibration.window`` decided matches: more
  than the last process held when an override or an older policy kept a smaller window.
- **Step streaks.** Consecutive target-not-found and low-confidence results since the
  workflow's steps were last reset, counted only within ``audit.restore_horizon_seconds``
  before the restart (``step_streaks``): fewer than the last process held when a streak is
  older than that, more when an earlier restart cut it with a shorter horizon.

:class:`Readback` reads the same records the queries read — a result's signals, a transition
that resets a workflow's steps (:func:`~autoheal_otel.core._transitions.resetting`, the
declaration the SQL is generated from) — in the order replay streams them, and answers both
as of a restart, so the replayed restart starts from what the live one did. Pure
bookkeeping: no SQL, no clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from ..base._models import StepResult, Trigger
from ..core._calibrator import DEFAULT_METHOD, Windows, decided, method_of
from ..core._transitions import Reset, resetting
from ..policy._calibration import MAX_WINDOW

__all__ = ["Readback"]

#: The most results of one streak whose times are kept: a restart reads back at most this
#: many of a streak (its counters beyond it are not reproduced exactly).
MAX_STREAK = 100_000

_STEP_RESETS = resetting(Reset.STEPS)
_SIGNALS = (Trigger.TARGET_NOT_FOUND.value, Trigger.LOW_CONFIDENCE.value)

Streak = tuple[deque[datetime], deque[datetime]]


class Readback:
    """The log's decided matches and streak times so far (see the module docstring)."""

    def __init__(self) -> None:
        # Each method's decided matches, as many as any policy's window may reach back.
        self._decided = Windows(MAX_WINDOW)
        # Per workflow, per step: the times of the results of its two current streaks.
        self._streaks: dict[str, dict[str, Streak]] = {}

    def seed(self, samples: dict[str, list[list[Any]]]) -> None:
        """Start the decided matches from a checkpoint's calibration windows (``method ->
        [[confidence, correct], ...]``, oldest first): what came before it is not read."""
        self._decided = Windows(MAX_WINDOW)
        for method, kept in samples.items():
            self._decided[method].extend((float(c), bool(ok)) for c, ok in kept)

    def result(
        self,
        workflow_id: str,
        step_id: str,
        result: StepResult,
        signals: list[str] | None,
        ts: datetime,
    ) -> None:
        """Note a result record: its decided match, and the streaks its signals extend or
        break."""
        ok = decided(result)
        if ok is not None and result.confidence is not None:
            method = method_of(result.details) if result.details else DEFAULT_METHOD
            self._decided[method].append((result.confidence, ok))
        steps = self._streaks.get(workflow_id)
        times = steps.get(step_id) if steps is not None else None
        if times is None:
            if not signals:
                return
            if steps is None:
                steps = self._streaks[workflow_id] = {}
            times = steps[step_id] = (deque(maxlen=MAX_STREAK), deque(maxlen=MAX_STREAK))
        for signal, kept in zip(_SIGNALS, times, strict=True):
            if signals and signal in signals:
                kept.append(ts)
            else:
                kept.clear()

    def transition(self, workflow_id: str, cause: str | None, state: str | None) -> None:
        """Note a transition record: one that resets the workflow's steps ends their streaks."""
        if (cause, state) in _STEP_RESETS:
            self._streaks.pop(workflow_id, None)

    def copy(self) -> Readback:
        """Return a copy that later records do not change (what one restart reads back)."""
        out = Readback()
        for method, window in self._decided.items():
            out._decided[method] = deque(window, maxlen=window.maxlen)
        out._streaks = {
            wid: {
                step: (deque(tnf, maxlen=MAX_STREAK), deque(low, maxlen=MAX_STREAK))
                for step, (tnf, low) in steps.items()
            }
            for wid, steps in self._streaks.items()
        }
        return out

    def calibration_samples(self) -> Iterator[tuple[str, float, bool]]:
        """Return every method's decided matches so far, oldest first (each window keeps its
        last ``window``)."""
        for method, window in self._decided.items():
            for confidence, ok in window:
                yield method, confidence, ok

    def streaks(
        self, as_of: datetime, horizon_seconds: float
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """Return each step's two counters as a restart at ``as_of`` reads them back: the
        results of its current streaks within ``horizon_seconds`` before it."""
        since = as_of - timedelta(seconds=horizon_seconds)
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for workflow_id, steps in self._streaks.items():
            for step_id, (tnf, low) in steps.items():
                counts = (_within(tnf, since), _within(low, since))
                if counts != (0, 0):
                    out[workflow_id, step_id] = counts
        return out


def _within(times: deque[datetime], since: datetime) -> int:
    """Return how many of a streak's result times are after ``since`` (newest last)."""
    inside = 0
    for t in reversed(times):
        if t <= since:
            break
        inside += 1
    return inside
