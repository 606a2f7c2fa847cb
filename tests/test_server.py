"""The HTTP endpoint under load, with idle, slow and vanishing clients (real sockets, loopback)."""

from __future__ import annotations

import json
import logging
import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from autoheal_otel import AutoHealManager
from autoheal_otel.server import AutoHealServer
from autoheal_otel.testing import FakeClock

REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture
def server() -> Iterator[AutoHealServer]:
    manager = AutoHealManager(clock=FakeClock())
    manager.should_execute_step("invoice", "s")
    srv = AutoHealServer(manager, port=0).start()
    yield srv
    srv.stop()
    manager.close()


def get(address: tuple[str, int], raw: bytes = REQUEST, timeout: float = 5) -> tuple[int, bytes]:
    """Send one raw request and return (status, body)."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def burst(address: tuple[str, int], clients: int, timeout: float = 20) -> list[float]:
    """Connect ``clients`` sockets at once, send a request on each, return each latency (s)."""
    sel = selectors.DefaultSelector()
    started: dict[socket.socket, float] = {}
    replies: dict[socket.socket, bytes] = {}
    latencies: list[float] = []
    for _ in range(clients):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(address)
        started[sock] = time.perf_counter()
        replies[sock] = b""
        sel.register(sock, selectors.EVENT_WRITE)
    deadline = time.monotonic() + timeout
    while len(latencies) < clients and time.monotonic() < deadline:
        for key, mask in sel.select(0.5):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if mask & selectors.EVENT_WRITE:
                sock.sendall(REQUEST)
                sel.modify(sock, selectors.EVENT_READ)
                continue
            chunk = sock.recv(65536)
            replies[sock] += chunk
            if not chunk:
                assert replies[sock].startswith(b"HTTP/1.1 200")
                latencies.append(time.perf_counter() - started[sock])
                sel.unregister(sock)
                sock.close()
    for sock in list(sel.get_map().values()):
        sock.fileobj.close()  # type: ignore[union-attr]
    return latencies


def test_endpoint_answers_the_documented_codes(server: AutoHealServer) -> None:
    """GET answers 200/404, a write 405, a malformed request line 400, HEAD has no body."""
    code, body = get(server.address)
    assert code == 200 and json.loads(body)["workflows"]["running"] == 1
    assert get(server.address, b"GET /nope HTTP/1.1\r\n\r\n")[0] == 404
    assert get(server.address, b"POST /health HTTP/1.1\r\n\r\n")[0] == 405
    assert get(server.address, b"nonsense\r\n\r\n")[0] == 400
    assert get(server.address, b"HEAD /status HTTP/1.0\r\n\r\n") == (200, b"")
    code, body = get(server.address, b"GET /status HTTP/1.0\r\n\r\n")
    assert code == 200 and "invoice" in json.loads(body)["workflows"]


def test_burst_of_200_clients_is_answered_fast(server: AutoHealServer) -> None:
    """Regression: with a listen backlog of 5, a burst of 200 clients overflowed the kernel's
    queue and requests took up to 10 s; now all 200 are answered with p99 under a second."""
    latencies = sorted(burst(server.address, 200))
    assert len(latencies) == 200
    p99 = latencies[int(0.99 * len(latencies)) - 1]
    assert p99 < 1.0, f"p99 {p99:.3f} s"


def test_health_answers_while_idle_and_slow_clients_hold_connections(
    server: AutoHealServer,
) -> None:
    """Regression: every connection held a thread of its own (1,000 idle clients made 1,002
    threads); now idle and slow clients hold no worker, threads stay bounded and /health
    still answers within a second."""
    threads_before = threading.active_count()
    idle = [socket.create_connection(server.address, timeout=5) for _ in range(300)]
    slow = [socket.create_connection(server.address, timeout=5) for _ in range(30)]
    for sock in slow:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never finishes its head
    try:
        started = time.perf_counter()
        code, _ = get(server.address)
        assert code == 200 and time.perf_counter() - started < 1.0
        assert threading.active_count() <= threads_before + 8 + 1
    finally:
        for sock in idle + slow:
            sock.close()


def test_idle_client_is_disconnected_after_the_idle_timeout() -> None:
    """A client that sends nothing is disconnected after idle_timeout, freeing its socket."""
    with AutoHealManager(clock=FakeClock()) as manager:
        srv = AutoHealServer(manager, port=0, idle_timeout=0.2).start()
        try:
            with socket.create_connection(srv.address, timeout=5) as sock:
                started = time.perf_counter()
                assert sock.recv(1) == b""  # closed by the server, not by our 5 s timeout
                assert time.perf_counter() - started < 4
            assert srv.dropped == 1
        finally:
            srv.stop()


class _Gated:
    """A status source that holds a request until the test lets it go."""

    def __init__(self, manager: AutoHealManager) -> None:
        self.manager = manager
        self.entered = threading.Event()
        self.release = threading.Event()

    def get_status_report(self) -> Any:
        self.entered.set()
        self.release.wait(10)  # the test sets it as soon as its client is gone
        return self.manager.get_status_report()


def test_client_gone_before_its_answer_is_quiet(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Regression: a client that hung up before reading (a health checker's timeout) made the
    server print tracebacks, log "autoheal server failed" and write a 500 to the dead socket."""
    caplog.set_level(logging.DEBUG, logger="autoheal_otel")
    with AutoHealManager(clock=FakeClock()) as manager:
        gated = _Gated(manager)
        srv = AutoHealServer(gated, port=0).start()  # type: ignore[arg-type]
        try:
            for _ in range(3):
                gated.entered.clear()
                gated.release.clear()
                sock = socket.create_connection(srv.address, timeout=5)
                sock.sendall(b"GET /status HTTP/1.1\r\n\r\n")
                assert gated.entered.wait(5)
                # Close with a reset, as a client killed by its timeout does.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
                gated.release.set()
        finally:
            srv.stop()  # waits for the requests in hand
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "Traceback" not in capfd.readouterr().err


def test_answers_carry_no_store_and_nosniff(server: AutoHealServer) -> None:
    """Every answer tells caches not to keep it and browsers not to sniff it."""
    with socket.create_connection(server.address, timeout=5) as sock:
        sock.sendall(REQUEST)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n")[0].lower()
    assert b"cache-control: no-store" in head and b"x-content-type-options: nosniff" in head


@pytest.mark.parametrize(
    ("host", "code"),
    [(b"127.0.0.1:9464", 200), (b"localhost", 200), (b"[::1]:1", 200), (b"evil.example", 421)],
    ids=["ip", "localhost", "ipv6", "rebinding"],
)
def test_a_loopback_server_answers_loopback_hosts_only(
    server: AutoHealServer, host: bytes, code: int
) -> None:
    """DNS rebinding: a page that resolves its own name to 127.0.0.1 is refused (421)."""
    status, _ = get(server.address, b"GET /health HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert status == code


def test_an_overlong_request_line_is_414_not_a_reset(server: AutoHealServer) -> None:
    """Regression: a 64 KiB request line got its connection reset; now it is 414."""
    status, body = get(server.address, b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\n\r\n")
    assert status == 414 and b"too long" in body


class _Huge:
    """A status source whose /status answer is 32 MB (what 20,000 forged workflows made)."""

    def __init__(self, manager: AutoHealManager) -> None:
        self.manager = manager

    def get_status_report(self) -> Any:
        report = self.manager.get_status_report()

        class Big:
            def __getattr__(self, name: str) -> Any:
                return getattr(report, name)

            def to_json(self) -> str:
                return "x" * (32 * 1024 * 1024)

        return Big()


def test_clients_that_never_read_do_not_starve_health() -> None:
    """Regression: 16 clients asking for /status and never reading tied up every worker and
    /health timed out after 15 s; now /health answers at once and the pool frees itself."""
    with AutoHealManager(clock=FakeClock()) as manager:
        manager.should_execute_step("invoice", "s")
        srv = AutoHealServer(_Huge(manager), port=0, workers=2, write_timeout=1.0).start()  # type: ignore[arg-type]
        hogs = []
        try:
            for _ in range(16):
                hog = socket.create_connection(srv.address, timeout=5)
                hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                hog.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                hogs.append(hog)  # never read
            started = time.perf_counter()
            status, body = get(srv.address, timeout=5)
            assert status == 200 and json.loads(body)["status"] == "ok"
            assert time.perf_counter() - started < 1.0
            # The slow readers are dropped after write_timeout: /status works again.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                code, _ = get(srv.address, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                if code == 404:  # answered by a worker (no registry here): the pool is free
                    break
            assert code == 404
        finally:
            for hog in hogs:
                hog.close()
            srv.stop()
