"""Precision of target matches per matching method, and calibrated per-method thresholds.

A validated success is a correct match; a POSTCONDITION_FAILED after a match is a wrong one
(the robot clicked something, and it was not the target). Per method (``details["method"]``,
default ``faiss``) the tracker keeps (confidence, correct) pairs and derives:

- precision: correct / decided matches;
- the calibrated threshold: the lowest confidence at or above which the observed precision
  reaches ``target_precision`` (needs ``min_samples`` matches; never below the policy's own
  threshold — the effective settings take the larger of the two).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from .._events import DecisionEvent
from .._models import Outcome
from ..semconv import ATTR_METHOD, METRIC_MATCH_PRECISION, METRIC_MATCH_THRESHOLD, EventKind

if TYPE_CHECKING:
    from .._manager import AutoHealManager

__all__ = ["PrecisionTracker"]


class PrecisionTracker:
    """Track match precision per method; calibrate per-method thresholds."""

    def __init__(
        self, target_precision: float = 0.95, min_samples: int = 30, window: int = 2000
    ) -> None:
        self.target_precision = target_precision
        self.min_samples = min_samples
        self.window = window
        self._samples: dict[str, deque[tuple[float, bool]]] = {}
        self._lock = threading.Lock()

    def bind(self, manager: AutoHealManager) -> None:
        """Export precision and thresholds as gauges, and feed thresholds to the settings."""
        manager.set_threshold_provider(self.thresholds)
        meter = getattr(manager, "meter", None)
        if meter is not None:
            from opentelemetry.metrics import Observation

            meter.create_observable_gauge(
                METRIC_MATCH_PRECISION,
                [
                    lambda _o: [
                        Observation(p, {ATTR_METHOD: m}) for m, p in self.precision().items()
                    ]
                ],
                "1",
                "Precision of target matches per method (validated outcomes).",
            )
            meter.create_observable_gauge(
                METRIC_MATCH_THRESHOLD,
                [
                    lambda _o: [
                        Observation(t, {ATTR_METHOD: m}) for m, t in self.thresholds().items()
                    ]
                ],
                "1",
                "Calibrated confidence threshold per matching method.",
            )

    def emit(self, event: DecisionEvent) -> None:
        """Learn from a result with a confidence and a decided outcome."""
        if event.kind is not EventKind.RESULT or event.confidence is None:
            return
        if event.outcome is Outcome.SUCCESS and event.validated:
            correct = True
        elif event.outcome is Outcome.POSTCONDITION_FAILED:
            correct = False
        else:
            return  # not found / timed out / unvalidated: says nothing about the match
        method = str(event.details.get("method", "faiss"))
        with self._lock:
            samples = self._samples.setdefault(method, deque(maxlen=self.window))
            samples.append((event.confidence, correct))

    def precision(self) -> dict[str, float]:
        """Return the observed precision per method."""
        with self._lock:
            return {m: sum(c for _, c in s) / len(s) for m, s in self._samples.items() if s}

    def thresholds(self) -> dict[str, float]:
        """Return, per method with enough samples, the lowest confidence meeting the target."""
        out: dict[str, float] = {}
        with self._lock:
            snapshot = {
                m: sorted(s) for m, s in self._samples.items() if len(s) >= self.min_samples
            }
        for method, samples in snapshot.items():
            correct_suffix = [0] * (len(samples) + 1)
            for i in range(len(samples) - 1, -1, -1):
                correct_suffix[i] = correct_suffix[i + 1] + samples[i][1]
            threshold = 1.0
            for i, (confidence, _) in enumerate(samples):
                if i > 0 and confidence == samples[i - 1][0]:
                    continue
                n = len(samples) - i
                if correct_suffix[i] / n >= self.target_precision:
                    threshold = confidence
                    break
            out[method] = threshold
        return out

    def summary(self) -> dict[str, Any]:
        """Return precision, thresholds and sample counts per method."""
        precision = self.precision()
        thresholds = self.thresholds()
        with self._lock:
            counts = {m: len(s) for m, s in self._samples.items()}
        return {
            m: {"precision": precision.get(m), "threshold": thresholds.get(m), "samples": n}
            for m, n in counts.items()
        }

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """Nothing to release."""
