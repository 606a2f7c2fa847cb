"""The health and metrics endpoint: ``/health``, ``/status`` and ``/metrics``, read-only.

Embed it next to a running manager (``AutoHealServer(manager).start()``) or run
``autoheal serve``. It binds 127.0.0.1 unless told otherwise; control stays in the CLI.

- ``GET /health``: ``{"status": "ok" | "degraded" | "critical", ...}`` with HTTP 200 for ok and
  degraded (the robot still works, carefully) and 503 for critical (the global breaker paused
  everything) — what a load balancer or an uptime check needs; a fleet host adds ``fleet``
  (its host id, whether its link is up and why not) and is degraded while the link is down;
  a view of a directory with no audit log yet answers 503 ``{"status": "no_data", ...}``
  naming the directory;
- ``GET /status``: the manager's status report as JSON;
- ``GET /metrics``: Prometheus text exposition of the manager's OpenTelemetry metrics (give the
  manager the meter provider from :func:`prometheus_meter_provider`).

Other paths answer 404, other methods 405, a malformed request 400, a failure inside 500 with
a one-line JSON error. When the source of the status also says how fresh it is (a
``freshness()`` method, as :class:`LiveView` has), ``/health`` and ``/status``
carry it.

It holds load without a thread per client. Invariants:

- one event-loop thread accepts connections (a listen backlog of ``backlog``) and reads each
  request head without blocking; a client that has not sent a complete head within
  ``idle_timeout`` seconds is disconnected, and past ``max_connections`` open connections the
  oldest one is dropped, so idle or slow clients never hold a worker;
- complete requests are answered by a fixed pool of ``workers`` threads, one request per
  connection (``Connection: close``);
- a client that went away before its answer costs a debug log line, never a traceback or an
  error response written to a dead socket.
"""

from __future__ import annotations

import contextlib
import json
import logging
import resource
import selectors
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import urlsplit

from ._live_view import LiveView

__all__ = [
    "HEALTH_STATUS",
    "AutoHealServer",
    "LiveView",
    "StatusSource",
    "prometheus_meter_provider",
]

_log = logging.getLogger("autoheal_otel")

#: HTTP status per health.
HEALTH_STATUS = {"ok": 200, "degraded": 200, "critical": 503}
_MAX_HEAD = 16 * 1024


class StatusSource(Protocol):
    """What the server reads: a manager, or anything else that makes its status report."""

    def get_status_report(self) -> Any:
        """Return a :class:`~autoheal_otel._report.StatusReport`."""
        ...


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


@dataclass
class _Pending:
    """A connection whose request head is still arriving."""

    sock: socket.socket
    deadline: float
    head: bytearray


class AutoHealServer:
    """Serve one manager's health, status and metrics over HTTP (see the module docstring).

    Args:
        manager: the manager (or any :class:`StatusSource`) to report on.
        host, port: where to listen (port 0 picks a free one; see :attr:`address`).
        registry: the Prometheus registry behind ``/metrics`` (None: 404).
        workers: threads answering complete requests.
        idle_timeout: seconds a client has to send its request head.
        max_connections: open connections kept at most (the oldest is dropped past it).
        backlog: the kernel's queue of connections not yet accepted.
    """

    def __init__(
        self,
        manager: StatusSource,
        host: str = "127.0.0.1",
        port: int = 9464,
        registry: Any = None,
        *,
        workers: int = 8,
        idle_timeout: float = 10.0,
        max_connections: int = 1024,
        backlog: int = 1024,
    ) -> None:
        self.manager = manager
        self.registry = registry
        self.idle_timeout = idle_timeout
        # Leave file descriptors for everything else the process opens (logs, databases).
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.max_connections = max(1, min(max_connections, soft // 2 if soft > 0 else 512))
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=backlog)
        self._listener.setblocking(False)
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stopping = threading.Event()
        self._done = threading.Event()
        self._running = False
        self._loop_thread: threading.Thread | None = None
        self._thread: threading.Thread | None = None
        #: Connections dropped for idling past ``idle_timeout`` or to make room.
        self.dropped = 0

    @property
    def address(self) -> tuple[str, int]:
        """Return the (host, port) actually bound (port 0 picks a free one)."""
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> AutoHealServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="autoheal-http", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (from another thread or a signal handler)."""
        self._running = True
        self._loop_thread = threading.current_thread()
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="autoheal-http")
        pending: dict[int, _Pending] = {}
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping.is_set():
                # Real time on purpose: these are network deadlines, not decisions.
                now = time.monotonic()
                wait = min((p.deadline for p in pending.values()), default=now + 1.0) - now
                for key, _ in sel.select(max(0.0, min(wait, 1.0))):
                    if key.data == "accept":
                        self._accept(sel, pending)
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        self._read(sel, pending, key.data)
                now = time.monotonic()
                for fd in [fd for fd, p in pending.items() if p.deadline <= now]:
                    self._drop(sel, pending, fd)
        finally:
            for fd in list(pending):
                self._drop(sel, pending, fd, count=False)
            sel.close()
            self._pool.shutdown(wait=True)
            self._release()
            self._done.set()

    def stop(self) -> None:
        """Stop serving, finish the requests in hand, and release the port.

        From another thread it returns once the port is released; from a signal handler that
        interrupted :meth:`serve_forever` it returns at once and the loop ends right after.
        """
        self._stopping.set()
        with contextlib.suppress(OSError):  # the loop is gone already
            self._wake_w.send(b"x")
        if not self._running:
            self._release()
        elif threading.current_thread() is not self._loop_thread:
            self._done.wait()

    def _release(self) -> None:
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> AutoHealServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the event loop ------------------------------------------------------------------

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(64):
                pass
        except OSError:
            pass  # nothing left to read

    def _accept(self, sel: selectors.BaseSelector, pending: dict[int, _Pending]) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # out of file descriptors: make room, retry on the next turn
                _log.debug("autoheal http: accept failed (%s)", exc)
                if pending:
                    self._drop(sel, pending, min(pending, key=lambda fd: pending[fd].deadline))
                return
            if len(pending) >= self.max_connections:
                self._drop(sel, pending, min(pending, key=lambda fd: pending[fd].deadline))
            sock.setblocking(False)
            fd = sock.fileno()
            pending[fd] = _Pending(sock, time.monotonic() + self.idle_timeout, bytearray())
            sel.register(sock, selectors.EVENT_READ, fd)

    def _read(self, sel: selectors.BaseSelector, pending: dict[int, _Pending], fd: int) -> None:
        conn = pending[fd]
        try:
            data = conn.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # reset by the client: same as a close
        if not data:
            self._drop(sel, pending, fd, count=False)
            return
        conn.head += data
        if b"\r\n\r\n" not in conn.head and b"\n\n" not in conn.head:
            if len(conn.head) > _MAX_HEAD:
                self._drop(sel, pending, fd)
            return
        sel.unregister(conn.sock)
        del pending[fd]
        assert self._pool is not None
        self._pool.submit(self._answer, conn.sock, bytes(conn.head))

    def _drop(
        self, sel: selectors.BaseSelector, pending: dict[int, _Pending], fd: int, count: bool = True
    ) -> None:
        conn = pending.pop(fd)
        sel.unregister(conn.sock)
        if count:
            self.dropped += 1
        conn.sock.close()

    # -- the workers -----------------------------------------------------------------------

    def _answer(self, sock: socket.socket, head: bytes) -> None:
        """Answer one complete request and close the connection (never raises)."""
        try:
            method, code, content_type, body = self._respond(head)
            reason = HTTPStatus(code).phrase
            headers = (
                f"HTTP/1.1 {code} {reason}\r\nServer: autoheal\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                + ("Allow: GET, HEAD\r\n" if code == 405 else "")
                + "Connection: close\r\n\r\n"
            )
            sock.settimeout(self.idle_timeout)
            sock.sendall(headers.encode("latin-1") + (b"" if method == "HEAD" else body))
        except OSError as exc:  # the client went away: nobody is left to tell
            _log.debug("autoheal http: client gone before its answer (%s)", exc)
        finally:
            sock.close()

    def _respond(self, head: bytes) -> tuple[str, int, str, bytes]:
        """Return (method, status, content type, body) for a request head."""
        parts = head.split(b"\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return "GET", *_error(400, "malformed request line")
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return method, *_error(405, f"{method} is not allowed: this endpoint is read-only")
        path = urlsplit(target).path.rstrip("/") or "/"
        try:
            return method, *self._route(path)
        except Exception:  # contained: a request must never take the process down
            _log.exception("autoheal server failed on %s", path)
            return method, *_error(500, "internal error (see the server log)")

    def _route(self, path: str) -> tuple[int, str, bytes]:
        source = self.manager
        freshness = getattr(source, "freshness", None)
        if path == "/health":
            if getattr(source, "has_log", True) is False:
                where = str(getattr(source, "data_dir", "the data directory"))
                return (
                    503,
                    "application/json",
                    json.dumps(
                        {
                            "status": "no_data",
                            "data_dir": where,
                            "reason": f"no audit log in {where} yet: is a robot running with"
                            " this data directory?",
                        }
                    ).encode(),
                )
            report = source.get_status_report()
            body: dict[str, Any] = {
                "status": report.global_.health,
                "paused": report.global_.paused,
                "workflows": {s.value: n for s, n in report.global_.states.items()},
                "policy_version": report.policy_version,
            }
            if report.fleet is not None:  # which host, and is its fleet link up
                body["fleet"] = report.fleet
                body["reason"] = report.global_.reason
            if freshness is not None:
                body.update(freshness())
            return (
                HEALTH_STATUS[report.global_.health],
                "application/json",
                json.dumps(body).encode(),
            )
        if path == "/status":
            text = source.get_status_report().to_json()
            if freshness is not None:
                data = json.loads(text)
                data["view"] = freshness()
                text = json.dumps(data, indent=2)
            return 200, "application/json", text.encode()
        if path == "/metrics":
            if self.registry is None:
                return _error(404, "metrics are not configured for this server")
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        return _error(404, f"no such path {path!r}; try /health, /status or /metrics")


def _error(code: int, message: str) -> tuple[int, str, bytes]:
    return code, "application/json", json.dumps({"error": message}).encode()
