"""Precision of target matches per matching method, and calibrated per-method thresholds.

A validated success is a correct match; a POSTCONDITION_FAILED after a match is a wrong one
(the robot clicked something, and it was not the target). The manager's state machine keeps,
per method (``details["method"]``, default ``faiss``), the last ``window`` decided matches
and derives:

- precision: correct / decided matches;
- the calibrated threshold: the lowest confidence at or above which the observed precision
  reaches ``target_precision`` (needs ``min_samples`` matches; never below the policy's own
  threshold — the effective settings take the larger of the two).

Unlike the other integrations this one changes what the robot does, so it is a recorded
decision: binding the tracker turns calibration on (a ``calibration`` record with the
overrides), every change of a method's threshold is a ``calibration`` record and an OTel log
event, a warm restart reads the calibration back from the log with the packaged
``precision`` SQL, and replay reproduces it. The tracker itself is a view: its gauges and
summaries read the manager's calibration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base._events import DecisionEvent
from ..policy._calibration import CalibrationPolicy
from ..semconv import ATTR_METHOD, METRIC_MATCH_PRECISION, METRIC_MATCH_THRESHOLD

if TYPE_CHECKING:
    from ..core._calibrator import Calibration
    from ..runtime._manager import AutoHealManager

__all__ = ["PrecisionTracker"]


class PrecisionTracker:
    """Turn on per-method threshold calibration for a manager, and export it as gauges.

    Args:
        target_precision, min_samples, window: overrides of the policy's ``calibration``
            section (None: the policy's value, hot-reloaded with it).

    Raises:
        PolicyError: (on binding) an override is out of its bounds.
    """

    def __init__(
        self,
        target_precision: float | None = None,
        min_samples: int | None = None,
        window: int | None = None,
    ) -> None:
        given = {"target_precision": target_precision, "min_samples": min_samples, "window": window}
        self.overrides = {k: v for k, v in given.items() if v is not None}
        self._manager: AutoHealManager | None = None

    def bind(self, manager: AutoHealManager) -> None:
        """Turn calibration on (recorded) and export precision and thresholds as gauges."""
        manager.configure_calibration(**self.overrides)
        self._manager = manager
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

    @property
    def settings(self) -> CalibrationPolicy:
        """Return the calibration settings in force: the policy's, with the overrides."""
        base = self._manager.policy.calibration if self._manager is not None else None
        return (base or CalibrationPolicy()).model_copy(update=self.overrides)

    @property
    def target_precision(self) -> float:
        """Return the precision matches above a calibrated threshold must reach."""
        return self.settings.target_precision

    @property
    def min_samples(self) -> int:
        """Return the decided matches a method needs before it has a threshold."""
        return self.settings.min_samples

    @property
    def window(self) -> int:
        """Return how many of a method's most recent decided matches count."""
        return self.settings.window

    def _calibration(self) -> dict[str, Calibration]:
        return self._manager.get_calibration() if self._manager is not None else {}

    def emit(self, event: DecisionEvent) -> None:
        """Nothing to do: the manager's state machine learns from every result itself."""

    def precision(self) -> dict[str, float]:
        """Return the observed precision per method."""
        return {m: c.precision for m, c in self._calibration().items() if c.precision is not None}

    def thresholds(self) -> dict[str, float]:
        """Return, per method with enough samples, the lowest confidence meeting the target."""
        return {m: c.threshold for m, c in self._calibration().items() if c.threshold is not None}

    def summary(self) -> dict[str, Any]:
        """Return precision, threshold and sample count (and the evidence) per method."""
        return {m: c.to_dict() for m, c in self._calibration().items()}

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """Nothing to release."""
