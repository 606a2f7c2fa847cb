"""Event sinks: the JSONL audit log, OpenTelemetry, and the SQLite success store."""

from .jsonl import JsonlAuditSink
from .otel import OTelSink
from .sqlite import SuccessStore

__all__ = ["JsonlAuditSink", "OTelSink", "SuccessStore"]
