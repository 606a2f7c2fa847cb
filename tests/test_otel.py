"""OpenTelemetry export with the real SDK: spans, log events, metrics, and the OTLP wire."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from autoheal_otel import AutoHealManager
from autoheal_otel import semconv as sc
from autoheal_otel.testing import FakeClock, InMemorySink

from .conftest import OK, TNF
from .test_audit_log import lines


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.logs = InMemoryLogRecordExporter()
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))

    def manager(self, **kwargs: Any) -> AutoHealManager:
        return AutoHealManager(
            clock=FakeClock(),
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            logger_provider=self.logger_provider,
            **kwargs,
        )

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    out[metric.name] = list(metric.data.data_points)
        return out


@pytest.fixture
def tel() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()
    t.logger_provider.shutdown()


def test_one_span_per_hook_with_decision_attributes(tel: Telemetry) -> None:
    """Each hook call is one span carrying the workflow, step, state and reason."""
    m = tel.manager()
    m.should_execute_step("invoice", "click")
    m.on_step_result("invoice", "click", TNF)
    spans = tel.spans.get_finished_spans()
    assert [s.name for s in spans] == [sc.SPAN_GATE, sc.SPAN_RESULT]
    gate, result = spans
    assert gate.attributes[sc.ATTR_WORKFLOW_ID] == "invoice"
    assert gate.attributes[sc.ATTR_STEP_ID] == "click"
    assert gate.attributes[sc.ATTR_ALLOWED] is True
    assert result.attributes[sc.ATTR_OUTCOME] == "target_not_found"
    assert result.attributes[sc.ATTR_STATE] == "running"


def test_transition_is_a_span_event_and_a_log_event(tel: Telemetry) -> None:
    """A transition shows as a span event and as a log record with event_name in the span."""
    m = tel.manager()
    for _ in range(3):
        m.on_step_result("invoice", "click", TNF)
    span = tel.spans.get_finished_spans()[-1]
    (event,) = span.events
    assert event.name == sc.EVENT_TRANSITION
    assert event.attributes[sc.ATTR_STATE] == "degraded"
    assert event.attributes[sc.ATTR_RULE] == "step.consecutive_target_not_found"
    (log,) = [r.log_record for r in tel.logs.get_finished_logs()]
    assert log.event_name == sc.EVENT_TRANSITION
    assert log.trace_id == span.context.trace_id and log.span_id == span.context.span_id
    assert log.attributes[sc.ATTR_PREVIOUS_STATE] == "running"


def test_metrics_have_bounded_labels(tel: Telemetry) -> None:
    """Counters, gauges and the hook histogram are exported; no step or trace id is a label."""
    m = tel.manager()
    for _ in range(3):
        m.should_execute_step("invoice", "click")
        m.on_step_result("invoice", "click", TNF)
    m.on_step_result("other", "x", OK)
    metrics = tel.metrics()
    outcomes = {
        (p.attributes[sc.ATTR_WORKFLOW_ID], p.attributes[sc.ATTR_OUTCOME]): p.value
        for p in metrics[sc.METRIC_OUTCOMES]
    }
    assert outcomes == {("invoice", "target_not_found"): 3, ("other", "success"): 1}
    (transition,) = metrics[sc.METRIC_TRANSITIONS]
    assert transition.value == 1 and transition.attributes[sc.ATTR_STATE] == "degraded"
    states = {p.attributes[sc.ATTR_STATE]: p.value for p in metrics[sc.METRIC_WORKFLOWS]}
    assert states["degraded"] == 1 and states["running"] == 1 and states["paused"] == 0
    fill = {
        (p.attributes[sc.ATTR_WORKFLOW_ID], p.attributes[sc.ATTR_RULE]): p.value
        for p in metrics[sc.METRIC_WINDOW_FILL]
    }
    assert fill[("invoice", "workflow.failure_window")] == pytest.approx(0.3)
    hooks = {p.attributes[sc.ATTR_HOOK]: p for p in metrics[sc.METRIC_HOOK_DURATION]}
    assert hooks["on_step_result"].count == 4
    assert tuple(hooks["on_step_result"].explicit_bounds) == sc.DURATION_BUCKETS_S
    for points in metrics.values():
        for point in points:
            assert sc.ATTR_STEP_ID not in point.attributes
            assert "trace_id" not in str(point.attributes)


def test_audit_record_carries_the_span_ids(tel: Telemetry, tmp_path: Path) -> None:
    """The JSONL record of a decision names the trace and span of its hook call."""
    m = tel.manager(data_dir=tmp_path)
    m.on_step_result("invoice", "click", OK)
    m.close()
    span = tel.spans.get_finished_spans()[-1]
    record = next(r for r in lines(tmp_path) if r["kind"] == "result")
    assert record["trace_id"] == f"{span.context.trace_id:032x}"
    assert record["span_id"] == f"{span.context.span_id:016x}"


def test_unconfigured_globals_cost_nothing() -> None:
    """With no SDK configured anywhere, the manager creates no telemetry at all."""
    sink = InMemorySink()
    m = AutoHealManager(clock=FakeClock(), sinks=[sink])
    m.should_execute_step("w", "s")
    assert m.meter is None
    assert sink.events and all(e.trace_id is None for e in sink.events)


def test_failing_hook_records_the_exception_on_its_span(tel: Telemetry) -> None:
    """An invalid id ends the hook's span with the exception recorded."""
    m = tel.manager()
    with pytest.raises(Exception, match="workflow_id"):
        m.should_execute_step("", "s")
    (span,) = tel.spans.get_finished_spans()
    assert span.events[0].name == "exception"


# -- the real wire ------------------------------------------------------------------------


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[trace_service_pb2.ExportTraceServiceRequest]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        type(self).received.append(request)
        reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


def _span_names(requests: list[Any]) -> list[str]:
    return [
        span.name
        for req in requests
        for rs in req.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


def _drive(exporter: Any) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    m = AutoHealManager(clock=FakeClock(), tracer_provider=provider)
    for _ in range(3):
        m.on_step_result("invoice", "click", TNF)
    provider.shutdown()


def test_otlp_http_wire() -> None:
    """The real OTLP/HTTP exporter delivers hook spans (gzip) to a receiver on 127.0.0.1."""
    _Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        _drive(
            HttpSpanExporter(
                endpoint=f"http://127.0.0.1:{port}/v1/traces",
                compression=Compression.Gzip,
                timeout=5,
            )
        )
    finally:
        server.shutdown()
        server.server_close()
    names = _span_names(_Collector.received)
    assert names == [sc.SPAN_RESULT] * 3
    last = _Collector.received[-1].resource_spans[0].scope_spans[0]
    assert last.scope.name == sc.INSTRUMENTATION_SCOPE
    event_names = [e.name for e in last.spans[0].events]
    assert event_names == [sc.EVENT_TRANSITION]


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.received: list[Any] = []

    def Export(self, request: Any, context: Any) -> Any:
        self.received.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def test_otlp_grpc_wire() -> None:
    """The real OTLP/gRPC exporter delivers hook spans to a TraceService on 127.0.0.1."""
    service = _TraceService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        _drive(GrpcSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True, timeout=5))
    finally:
        server.stop(grace=None)
    names = _span_names(service.received)
    assert names == [sc.SPAN_RESULT] * 3
    attrs = {
        a.key: a.value.string_value
        for a in service.received[0].resource_spans[0].scope_spans[0].spans[0].attributes
    }
    assert attrs[sc.ATTR_WORKFLOW_ID] == "invoice"
