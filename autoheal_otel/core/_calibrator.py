"""Per-method calibration data: the decided matches and the threshold they give.

A validated success after a match is a correct match; a failed postcondition after a match is
a wrong one (the robot acted on something that was not the target); any other result says
nothing about the match. Per matching method (``details["method"]`` when it is a string, else
``faiss``) a :class:`Calibrator` keeps the last ``window`` decided matches and derives the
observed precision and the calibrated threshold (:func:`threshold_of`).

Invariants:
- ``samples[m]`` holds method ``m``'s last ``window`` decided matches, on or off;
- while calibration is on, ``_ordered[m]`` holds exactly those pairs, sorted, and
  ``_correct[m]`` counts their correct ones; while it is off, neither is kept (turning it on
  rebuilds them), so a match costs one append;
- ``recorded[m]`` is the threshold last recorded for ``m``: a ``calibration`` record is made
  only when a method's threshold moves or first appears, never twice for one value;
- the threshold is a pure function of the window's pairs and the target, the same function the
  packaged ``precision`` query computes in SQL, so a live run, a warm restart (which reads the
  samples back with that SQL) and a replay agree.

The machine's inputs that feed it are in :mod:`~._calibration`.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..base._models import Outcome, StepResult
from ..policy._calibration import CalibrationPolicy

__all__ = [
    "DEFAULT_METHOD",
    "Calibration",
    "Calibrator",
    "Windows",
    "decided",
    "method_of",
    "threshold_of",
]

DEFAULT_METHOD = "faiss"
SUCCESS = Outcome.SUCCESS
POSTCONDITION_FAILED = Outcome.POSTCONDITION_FAILED


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


class Windows(dict[str, deque[tuple[float, bool]]]):
    """Each method's window of decided matches; a method's first match opens its window."""

    def __init__(self, size: int) -> None:
        super().__init__()
        #: The length of a new window.
        self.size = size

    def __missing__(self, method: str) -> deque[tuple[float, bool]]:
        window = self[method] = deque(maxlen=self.size)
        return window


class Calibrator:
    """The decided matches per method and the thresholds recorded from them."""

    def __init__(self, policy: CalibrationPolicy) -> None:
        self.base = policy
        self.overrides: dict[str, Any] = {}
        self.settings = policy
        #: ``settings.enabled``, read on every result.
        self.enabled = policy.enabled
        self.samples = Windows(policy.window)
        # Kept only while calibration is on (see the module docstring).
        self._ordered: dict[str, list[tuple[float, bool]]] = {}
        self._correct: dict[str, int] = {}
        self.recorded: dict[str, float] = {}
        self.since: dict[str, datetime] = {}

    def retune(self, policy: CalibrationPolicy) -> None:
        """Apply a new policy section (the overrides stay), trimming every window."""
        self.base = policy
        self._apply(policy.model_copy(update=self.overrides))

    def restart(
        self, policy: CalibrationPolicy, samples: Iterable[tuple[str, float, bool]]
    ) -> None:
        """Start over as a new process does: ``policy``'s settings, windows refilled.

        A new process starts from its policy without the last one's overrides, restores each
        method's last ``policy.window`` decided matches from the log (from ``samples``, oldest
        first: more than this process may have held, if an override or an older policy kept
        a smaller window), and its integrations configure it again.
        """
        self.base = policy
        self.overrides = {}
        windows = Windows(policy.window)
        for method, confidence, ok in samples:
            windows[method].append((confidence, ok))
        self.samples = windows
        self._apply(self.base)

    def _apply(self, settings: CalibrationPolicy) -> None:
        """Put ``settings`` in force: resize every window, rebuild the sorted copies."""
        self.settings = settings
        self.enabled = settings.enabled
        window = self.samples.size = settings.window
        for method, old in self.samples.items():
            if old.maxlen != window:
                self.samples[method] = deque(old, maxlen=window)
        self._ordered.clear()
        self._correct.clear()
        if self.enabled:
            for method, kept in self.samples.items():
                self._ordered[method] = sorted(kept)
                self._correct[method] = sum(ok for _, ok in kept)

    def offer(self, result: StepResult) -> str | None:
        """Add a result's match to its method's window if it is decided (see :func:`decided`).

        Returns the method when calibration is on (then the caller evaluates its threshold).
        While calibration is off only the window is kept: one append, so the default costs
        next to nothing on a result.
        """
        # decided(result), inline: this runs on every result with a match.
        outcome = result.outcome
        if outcome is SUCCESS:
            if not result.validated:
                return None
            ok = True
        elif outcome is POSTCONDITION_FAILED:
            ok = False
        else:
            return None
        details = result.details
        method = method_of(details) if details else DEFAULT_METHOD
        confidence = result.confidence
        assert confidence is not None  # only results with a match are offered
        if not self.enabled:
            self.samples[method].append((confidence, ok))
            return None
        self.add(method, confidence, ok)
        return method

    def add(self, method: str, confidence: float, ok: bool) -> bool:
        """Add one decided match to a method's window (evicting the oldest when full).

        Returns whether calibration is on (then the caller evaluates the threshold).
        """
        samples = self.samples[method]
        if not self.enabled:
            samples.append((confidence, ok))
            return False
        ordered = self._ordered.get(method)
        if ordered is None:
            ordered = self._ordered[method] = sorted(samples)
            self._correct[method] = sum(k for _, k in samples)
        if len(samples) == samples.maxlen:
            gone = samples[0]
            del ordered[bisect_left(ordered, gone)]
            self._correct[method] -= gone[1]
        insort(ordered, (confidence, ok))
        samples.append((confidence, ok))
        self._correct[method] += ok
        return True

    def compute(self, method: str) -> float | None:
        """Return the threshold a method's window gives now (None below ``min_samples``).

        Only while calibration is on (off, there is no threshold to compute).
        """
        ordered = self._ordered.get(method)
        if ordered is None or len(ordered) < self.settings.min_samples:
            return None
        return threshold_of(ordered, self._correct[method], self.settings.target_precision)

    def evidence(self, method: str) -> Calibration:
        """Return a method's calibration: its window's figures and the threshold in force."""
        window = self.samples.get(method, ())
        n = len(window)
        correct = sum(ok for _, ok in window)
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
