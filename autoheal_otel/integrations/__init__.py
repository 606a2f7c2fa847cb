"""Integration points: small protocols with built-in implementations.

Each integration is an event sink (``emit``/``flush``/``close``) that may also ``bind`` to the
manager to read context. They are optional and contained: one that is missing or raises never
reaches the executor (the publisher counts and logs its errors), and the observing ones never
change a decision. The precision tracker is the exception, on purpose and on the record: it
turns on threshold calibration, whose every change is a recorded ``calibration`` decision.

- :class:`FailureCaseRecorder` — one failure case per quarantine (JSON, plus attachments).
- :class:`MiniReportWriter` — a Markdown and a self-contained HTML report per breaker trip.
- :class:`PrecisionTracker` — match precision per method from validated outcomes, and the
  calibrated per-method thresholds the executor applies (recorded, restored, replayed).
- The target memory is :class:`autoheal_otel.sinks.SuccessStore` (the storage rule).
"""

from ._failure_cases import FailureCaseRecorder
from ._precision import PrecisionTracker
from ._protocols import Integration
from ._reports import MiniReportWriter, render_report

__all__ = [
    "FailureCaseRecorder",
    "Integration",
    "MiniReportWriter",
    "PrecisionTracker",
    "render_report",
]
