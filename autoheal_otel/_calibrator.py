"""Per-method calibration data: the decided matches and the threshold they give.

A validated success after a match is a correct match; a failed postcondition after a match is
a wrong one (the robot acted on something that was not the target); any other result says
nothing about the match. Per matching method (``details["method"]`` when it is a string, else
``faiss``) a :class:`Calibrator` keeps the last ``window`` decided matches and derives the
observed precision and the calibrated threshold (:func:`threshold_of`).

Invariants:
- ``ordered[m]`` holds exactly the pairs of ``samples[m]``, sorted, and ``correct[m]`` counts
  their correct ones (while calibration is off, ``ordered[m]`` is rebuilt when next read);
- ``recorded[m]`` is the threshold last recorded for ``m``: a ``calibration`` record is made
  only when a method's threshold moves or first appears, never twice for one value;
- the threshold is a pure function of the window's pairs and the target, the same function the
  packaged ``precision`` query computes in SQL, so a live run, a warm restart (which reads the
  samples back with that SQL) and a replay agree.

The machine's inputs that feed it are in :mod:`._calibration`.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._calibration_policy import CalibrationPolicy
from ._models import Outcome, StepResult

__all__ = ["DEFAULT_METHOD", "Calibration", "Calibrator", "decided", "method_of", "threshold_of"]

DEFAULT_METHOD = "faiss"


def method_of(details: Mapping[str, Any]) -> str:
    """Return the matching method a result names (``faiss`` when it names none)."""
    method = details.get("method")
    return method if isinstance(method, str) else DEFAULT_METHOD


def decided(result: StepResult) -> bool | None:
    """Return True for a correct match, False for a wrong one, None when it says nothing."""
    if result.confidence is None:
        return None
    if result.outcome is Outcome.SUCCESS:
        return True if result.validated else None
    return False if result.outcome is Outcome.POSTCONDITION_FAILED else None


def threshold_of(ordered: list[tuple[float, bool]], correct: int, target: float) -> float:
    """Return the lowest confidence at or above which the precision reaches ``target``.

    ``ordered`` is sorted by confidence and ``correct`` counts its correct pairs. Only the
    confidences seen are candidates; 1.0 when none qualifies.
    """
    n = len(ordered)
    seen_correct = 0
    previous: float | None = None
    for i, (confidence, ok) in enumerate(ordered):
        if confidence != previous:
            if (correct - seen_correct) / (n - i) >= target:
                return confidence
            previous = confidence
        seen_correct += ok
    return 1.0


@dataclass(frozen=True, slots=True)
class Calibration:
    """One method's calibration and its evidence."""

    method: str
    samples: int
    correct: int
    precision: float | None
    #: The calibrated threshold in force (None until ``min_samples`` decided matches).
    threshold: float | None
    target_precision: float
    min_samples: int
    window: int
    #: When the threshold in force was recorded (None: never).
    since: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "method": self.method,
            "samples": self.samples,
            "correct": self.correct,
            "precision": self.precision,
            "threshold": self.threshold,
            "target_precision": self.target_precision,
            "min_samples": self.min_samples,
            "window": self.window,
            "since": self.since.isoformat() if self.since is not None else None,
        }


class Calibrator:
    """The decided matches per method and the thresholds recorded from them."""

    def __init__(self, policy: CalibrationPolicy) -> None:
        self.base = policy
        self.overrides: dict[str, Any] = {}
        self.settings = policy
        #: ``settings.enabled``, read on every result.
        self.enabled = policy.enabled
        self.samples: dict[str, deque[tuple[float, bool]]] = {}
        self.ordered: dict[str, list[tuple[float, bool]]] = {}
        self.correct: dict[str, int] = {}
        self.recorded: dict[str, float] = {}
        self.since: dict[str, datetime] = {}
        # Methods whose sorted copy lags their window (samples added while calibration was off).
        self._stale: set[str] = set()

    def retune(self, policy: CalibrationPolicy) -> None:
        """Apply a new policy section (the overrides stay), trimming every window."""
        self.base = policy
        merged = policy.model_copy(update=self.overrides)
        self.settings = merged
        self.enabled = merged.enabled
        for method in self.samples:
            self._resize(method, merged.window)

    def restart(self) -> None:
        """Forget the overrides and keep what a warm restart restores (the policy's window).

        A new process starts from its policy: it restores each method's last
        ``policy.window`` decided matches, and its integrations configure it again.
        """
        self.overrides = {}
        self.settings = self.base
        self.enabled = self.base.enabled
        for method in self.samples:
            self._resize(method, self.base.window)

    def _resize(self, method: str, window: int) -> None:
        old = self.samples[method]
        if old.maxlen == window:
            return
        kept = deque(old, maxlen=window)
        self.samples[method] = kept
        self.ordered[method] = sorted(kept)
        self._stale.discard(method)
        self.correct[method] = sum(ok for _, ok in kept)

    def add(self, method: str, confidence: float, ok: bool) -> bool:
        """Add one decided match to a method's window (evicting the oldest when full).

        While calibration is off, only the window is kept (an append); its sorted copy is
        rebuilt the first time a threshold is computed, so the default costs next to nothing.
        Returns whether calibration is on (then the caller evaluates the threshold).
        """
        samples = self.samples.get(method)
        if samples is None:
            samples = self.samples[method] = deque(maxlen=self.settings.window)
            self.ordered[method] = []
            self.correct[method] = 0
        gone = samples[0] if len(samples) == samples.maxlen else None
        enabled = self.enabled
        if enabled:
            ordered = self._ordered(method)
            if gone is not None:
                del ordered[bisect_left(ordered, gone)]
            insort(ordered, (confidence, ok))
        else:
            self._stale.add(method)
        samples.append((confidence, ok))
        self.correct[method] += ok - gone[1] if gone is not None else ok
        return enabled

    def _ordered(self, method: str) -> list[tuple[float, bool]]:
        """Return a method's window sorted, rebuilding it if samples came in while off."""
        if method in self._stale:
            self._stale.discard(method)
            self.ordered[method] = sorted(self.samples[method])
        return self.ordered[method]

    def compute(self, method: str) -> float | None:
        """Return the threshold a method's window gives now (None below ``min_samples``)."""
        if method not in self.ordered:
            return None
        ordered = self._ordered(method)
        if len(ordered) < self.settings.min_samples:
            return None
        return threshold_of(ordered, self.correct[method], self.settings.target_precision)

    def evidence(self, method: str) -> Calibration:
        """Return a method's calibration: its window's figures and the threshold in force."""
        n = len(self.samples.get(method, ()))
        correct = self.correct.get(method, 0)
        s = self.settings
        return Calibration(
            method=method,
            samples=n,
            correct=correct,
            precision=correct / n if n else None,
            threshold=self.recorded.get(method),
            target_precision=s.target_precision,
            min_samples=s.min_samples,
            window=s.window,
            since=self.since.get(method),
        )

    def all_evidence(self) -> dict[str, Calibration]:
        """Return every method's calibration (see :meth:`evidence`), by method."""
        return {m: self.evidence(m) for m in self.methods()}

    def thresholds(self) -> dict[str, float]:
        """Return the thresholds in force, per method (none while calibration is off)."""
        return dict(self.recorded) if self.settings.enabled else {}

    def methods(self) -> list[str]:
        """Return every method seen (in the window or recorded), sorted."""
        return sorted(set(self.samples) | set(self.recorded))
