"""The health and metrics endpoint: ``/health``, ``/status`` and ``/metrics``, read-only.

Embed it next to a running manager (``AutoHealServer(manager).start()``) or run
``autoheal serve``. It binds 127.0.0.1 unless told otherwise; control stays in the CLI. Given
a :class:`~._web_config.WebConfig` (``--web-config``), it speaks TLS (the handshake runs in
the event loop, never blocking it) and/or asks every request for a basic-auth login (401
otherwise; a login not seen before is checked by a worker, since bcrypt is slow on purpose).

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
  connection (``Connection: close``); at most ``max_queue`` wait for or hold a worker (more
  are answered 503 at once), and each answer must be taken within ``write_timeout`` seconds
  in total, so clients that never read cannot tie up the pool;
- ``/health`` is answered by the loop itself, at once, whatever the pool is doing;
- the answers, the ``Host`` check (loopback binds answer loopback names only) and the headers
  (``Cache-Control: no-store``, ``X-Content-Type-Options: nosniff``) are :mod:`~._http`'s;
- a client that went away before its answer costs a debug log line, never a traceback or an
  error response written to a dead socket.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import selectors
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from . import _http
from ._live_view import LiveView
from ._web_config import WebConfig

__all__ = [
    "AutoHealServer",
    "LiveView",
    "StatusSource",
    "prometheus_meter_provider",
]

_log = logging.getLogger("autoheal_otel")

#: The longest request head read (a longer one is answered 414 or 431, not reset).
_MAX_HEAD = 16 * 1024


class StatusSource(Protocol):
    """What the server reads: a manager, or anything else that makes its status report."""

    def get_status_report(self) -> Any:
        """Return a :class:`~autoheal_otel.core._report.StatusReport`."""
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
    #: Answered already: what the client still sends is read and dropped until it closes
    #: (closing with unread input would reset the connection before it reads the answer).
    closing: bool = False


class AutoHealServer:
    """Serve one manager's health, status and metrics over HTTP (see the module docstring).

    Args:
        manager: the manager (or any :class:`StatusSource`) to report on.
        host, port: where to listen (port 0 picks a free one; see :attr:`address`).
        registry: the Prometheus registry behind ``/metrics`` (None: 404).
        web: TLS and basic auth from a web config file (None: plain HTTP, no login).
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
        write_timeout: float = 5.0,
        max_queue: int | None = None,
        web: WebConfig | None = None,
    ) -> None:
        self.manager = manager
        #: TLS and basic auth (:mod:`~._web_config`); None: plain HTTP, no login.
        self.web = web or WebConfig()
        self.registry = registry
        self.idle_timeout = idle_timeout
        #: Seconds a client has to take its whole answer (then it is dropped).
        self.write_timeout = write_timeout
        #: Requests waiting for or held by a worker at most; more are answered 503 at once.
        self.max_queue = max_queue if max_queue is not None else 4 * workers
        self._busy = 0
        self._busy_lock = threading.Lock()
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
            if self.web.tls is not None:  # the handshake runs as the first reads arrive
                sock = self.web.tls.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
            fd = sock.fileno()
            pending[fd] = _Pending(sock, time.monotonic() + self.idle_timeout, bytearray())
            sel.register(sock, selectors.EVENT_READ, fd)

    def _read(self, sel: selectors.BaseSelector, pending: dict[int, _Pending], fd: int) -> None:
        conn = pending[fd]
        data = _receive(conn.sock)
        if data is None:
            return
        if not data:
            self._drop(sel, pending, fd, count=False)
            return
        if conn.closing:
            return  # the rest of an overlong request: dropped
        conn.head += data
        if b"\r\n\r\n" not in conn.head and b"\n\n" not in conn.head:
            if len(conn.head) > _MAX_HEAD:  # answered, not reset: 414 or 431
                long_line = b"\n" not in conn.head
                code, what = (414, "request line") if long_line else (431, "request head")
                with contextlib.suppress(OSError):
                    conn.sock.send(_http.render("GET", _http.error(code, f"{what} too long")))
                    conn.sock.shutdown(socket.SHUT_WR)
                conn.closing, conn.head = True, bytearray()
                conn.deadline = min(conn.deadline, time.monotonic() + 1.0)
            return
        head = bytes(conn.head)
        request = _http.parse(head)
        auth = self.web.auth
        quick = auth is None or auth.remembered(_http.header(head, "authorization"))
        if request is not None and request[1] == "/health" and quick:
            # Answered here, at once: a pool busy with slow readers never delays health (a
            # login not seen before goes to the pool: bcrypt must not stall the loop).
            self._inline(sel, pending, fd, *self._respond(head))
            return
        if self._busy >= self.max_queue:
            self._inline(sel, pending, fd, "GET", _http.error(503, "busy: try again"))
            return
        sel.unregister(conn.sock)
        del pending[fd]
        assert self._pool is not None
        with self._busy_lock:
            self._busy += 1
        self._pool.submit(self._work, conn.sock, head)

    def _inline(
        self,
        sel: selectors.BaseSelector,
        pending: dict[int, _Pending],
        fd: int,
        method: str,
        answer: _http.Answer,
    ) -> None:
        """Answer a small request from the loop itself, without waiting on the client."""
        conn = pending.pop(fd)
        sel.unregister(conn.sock)
        with contextlib.suppress(OSError):  # best effort: a full buffer drops the answer
            conn.sock.send(_http.render(method, answer))
        conn.sock.close()

    def _drop(
        self, sel: selectors.BaseSelector, pending: dict[int, _Pending], fd: int, count: bool = True
    ) -> None:
        conn = pending.pop(fd)
        sel.unregister(conn.sock)
        if count:
            self.dropped += 1
        conn.sock.close()

    # -- the workers -----------------------------------------------------------------------

    def _answer(self, sock: socket.socket, method: str, answer: _http.Answer) -> None:
        """Send one answer within ``write_timeout`` and close the connection (never raises)."""
        try:
            if not _http.send_within(sock, _http.render(method, answer), self.write_timeout):
                self.dropped += 1  # a reader too slow to take its answer: it holds no worker
        except OSError as exc:  # the client went away: nobody is left to tell
            _log.debug("autoheal http: client gone before its answer (%s)", exc)
        finally:
            sock.close()
            with self._busy_lock:
                self._busy -= 1

    def _work(self, sock: socket.socket, head: bytes) -> None:
        """Answer one complete request on a worker (never raises)."""
        method, answer = self._respond(head)
        self._answer(sock, method, answer)

    def _respond(self, head: bytes) -> tuple[str, _http.Answer]:
        """Return (method, answer) for a request head."""
        request = _http.parse(head)
        if request is None:
            return "GET", _http.error(400, "malformed request line")
        method, path = request
        if method not in ("GET", "HEAD"):
            return method, _http.error(
                405, f"{method[:20]} is not allowed: this endpoint is read-only"
            )
        if not _http.host_allowed(head, self.address[0]):
            return method, _http.error(421, "this endpoint answers loopback names only (Host)")
        auth = self.web.auth
        if auth is not None and not auth.check(_http.header(head, "authorization")):
            return method, _http.error(401, "a user name and password are required (basic auth)")
        try:
            return method, _http.route(self.manager, self.registry, path)
        except Exception:  # contained: a request must never take the process down
            _log.exception("autoheal server failed on %s", path[:100])
            return method, _http.error(500, "internal error (see the server log)")


def _receive(sock: socket.socket) -> bytes | None:
    """Return what a non-blocking socket has (b"": closed or failed; None: nothing yet).

    A TLS socket first completes its handshake through these reads; what it decrypted beyond
    one read is taken at once (the selector would not signal it again).
    """
    try:
        data = sock.recv(4096)
        while isinstance(sock, ssl.SSLSocket) and data and sock.pending() and len(data) < _MAX_HEAD:
            data += sock.recv(sock.pending())
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return None
    except OSError:  # reset by the client, or a failed handshake: same as a close
        return b""
    return data
