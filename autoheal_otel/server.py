"""The health and metrics endpoint: ``/health``, ``/status`` and ``/metrics``, read-only.

Embed it next to a running manager (``AutoHealServer(manager).start()``) or run
``autoheal serve``. It binds 127.0.0.1 unless told otherwise; control stays in the CLI.

- ``GET /health``: ``{"status": "ok" | "degraded" | "critical", ...}`` with HTTP 200 for ok and
  degraded (the robot still works, carefully) and 503 for critical (the global breaker paused
  everything) — what a load balancer or an uptime check needs; a fleet host adds ``fleet``
  (its host id, whether its link is up and why not) and is degraded while the link is down;
- ``GET /status``: the manager's status report as JSON;
- ``GET /metrics``: Prometheus text exposition of the manager's OpenTelemetry metrics (give the
  manager the meter provider from :func:`prometheus_meter_provider`).

Other paths answer 404, other methods 405, a failure inside 500 with a one-line JSON error.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ._manager import AutoHealManager

__all__ = ["HEALTH_STATUS", "AutoHealServer", "prometheus_meter_provider"]

_log = logging.getLogger("autoheal_otel")

#: HTTP status per health.
HEALTH_STATUS = {"ok": 200, "degraded": 200, "critical": 503}


def prometheus_meter_provider(service_name: str = "autoheal") -> tuple[Any, Any]:
    """Return (meter provider, prometheus registry) for a manager whose metrics are scraped."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": service_name})
    )
    return provider, registry


class AutoHealServer:
    """Serve one manager's health, status and metrics over HTTP (see the module docstring)."""

    def __init__(
        self,
        manager: AutoHealManager,
        host: str = "127.0.0.1",
        port: int = 9464,
        registry: Any = None,
    ) -> None:
        self.manager = manager
        self.registry = registry
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Return the (host, port) actually bound (port 0 picks a free one)."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> AutoHealServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="autoheal-http", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (from another thread or a signal handler)."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> AutoHealServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "autoheal"

            def do_GET(self) -> None:
                path = urlsplit(self.path).path.rstrip("/") or "/"
                try:
                    if path == "/health":
                        report = server.manager.get_status_report()
                        body = {
                            "status": report.global_.health,
                            "paused": report.global_.paused,
                            "workflows": {s.value: n for s, n in report.global_.states.items()},
                            "policy_version": report.policy_version,
                        }
                        if report.fleet is not None:  # which host, and is its fleet link up
                            body["fleet"] = report.fleet
                            body["reason"] = report.global_.reason
                        self._send(
                            HEALTH_STATUS[report.global_.health],
                            "application/json",
                            json.dumps(body).encode(),
                        )
                    elif path == "/status":
                        self._send(
                            200,
                            "application/json",
                            server.manager.get_status_report().to_json().encode(),
                        )
                    elif path == "/metrics":
                        if server.registry is None:
                            self._error(404, "metrics are not configured for this server")
                            return
                        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

                        self._send(200, CONTENT_TYPE_LATEST, generate_latest(server.registry))
                    else:
                        self._error(404, f"no such path {path!r}; try /health, /status or /metrics")
                except Exception:  # contained: a request must never take the process down
                    _log.exception("autoheal server failed on %s", path)
                    self._error(500, "internal error (see the server log)")

            def do_HEAD(self) -> None:
                self.do_GET()

            def _refuse(self) -> None:
                self._error(405, f"{self.command} is not allowed: this endpoint is read-only")

            do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

            def _error(self, code: int, message: str) -> None:
                self._send(code, "application/json", json.dumps({"error": message}).encode())

            def _send(self, code: int, content_type: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, fmt: str, *args: Any) -> None:
                _log.debug("autoheal http: " + fmt, *args)

        return Handler
