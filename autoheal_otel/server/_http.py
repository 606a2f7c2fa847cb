"""What the health endpoint answers, byte for byte: routes, headers, and the checks on a request.

Pure functions over a request head and a status source (no sockets, except
:func:`send_within`), used by :class:`~autoheal_otel.server.AutoHealServer`. Invariants:

- every answer carries ``Cache-Control: no-store`` and ``X-Content-Type-Options: nosniff``;
- a server bound to a loopback address answers only requests whose ``Host`` names a loopback
  address (or none): a web page cannot reach it through DNS rebinding (421 otherwise);
- an answer 401 names the basic-auth realm (``WWW-Authenticate``);
- a request line longer than the head limit is 414, a longer head 431, never a reset;
- an error body says what went wrong in one line; what failed inside (SQL, paths) is logged,
  never sent.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from ..disk._usage import DISK_HEALTH_KEYS

__all__ = [
    "HEALTH_STATUS",
    "Answer",
    "error",
    "header",
    "host_allowed",
    "parse",
    "render",
    "route",
    "send_within",
]

HEALTH_STATUS = {"ok": 200, "degraded": 200, "critical": 503}
#: (status code, content type, body).
Answer = tuple[int, str, bytes]
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def error(code: int, message: str) -> Answer:
    """Return a one-line JSON error answer."""
    return code, "application/json", json.dumps({"error": message}).encode()


def is_loopback(host: str) -> bool:
    """Return True for a loopback address or name (``127.0.0.1``, ``::1``, ``localhost``)."""
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_allowed(head: bytes, bound: str) -> bool:
    """Return whether a request's ``Host`` may reach a server bound to ``bound``."""
    if not is_loopback(bound):
        return True  # bound to a routable address on purpose: any name may lead there
    for line in head.split(b"\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "host":
            host = value.strip()
            hostname = urlsplit(f"//{host}").hostname or host
            return is_loopback(hostname)
    return True  # HTTP/1.0 without Host: a local client


def header(head: bytes, name: str) -> str | None:
    """Return the value of the first header called ``name`` (any case) in a request head."""
    for line in head.split(b"\n")[1:]:
        key, sep, value = line.decode("latin-1").partition(":")
        if sep and key.strip().lower() == name:
            return value.strip()
    return None


def parse(head: bytes) -> tuple[str, str] | None:
    """Return (method, path) of a request head, or None when its request line is malformed."""
    parts = head.split(b"\n", 1)[0].decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    return parts[0], urlsplit(parts[1]).path.rstrip("/") or "/"


def render(method: str, answer: Answer) -> bytes:
    """Return the bytes of a complete response (no body for HEAD)."""
    code, content_type, body = answer
    headers = (
        f"HTTP/1.1 {code} {HTTPStatus(code).phrase}\r\nServer: autoheal\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
        + ("Allow: GET, HEAD\r\n" if code == 405 else "")
        + ('WWW-Authenticate: Basic realm="autoheal", charset="UTF-8"\r\n' if code == 401 else "")
        + "Connection: close\r\n\r\n"
    )
    return headers.encode("latin-1") + (b"" if method == "HEAD" else body)


def send_within(sock: socket.socket, data: bytes, seconds: float) -> bool:
    """Send ``data`` within ``seconds`` in total; return False when the reader was too slow.

    A per-call timeout would let a client that reads a byte now and then hold a worker
    forever; the deadline bounds the whole answer.
    """
    deadline = time.monotonic() + seconds
    view = memoryview(data)
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            sent = sock.send(view[:65536])
        except TimeoutError:
            return False
        view = view[sent:]
    return True


def route(source: Any, registry: Any, path: str) -> Answer:
    """Return the answer for ``path`` from a status source (a manager or a live view)."""
    freshness = getattr(source, "freshness", None)
    if path == "/health":
        if getattr(source, "has_log", True) is False:
            where = str(getattr(source, "data_dir", "the data directory"))
            body: dict[str, Any] = {
                "status": "no_data",
                "data_dir": where,
                "reason": f"no audit log in {where} yet: is a robot running with this data"
                " directory?",
            }
            return 503, "application/json", json.dumps(body).encode()
        report = source.get_status_report()
        body = {
            "status": report.global_.health,
            "paused": report.global_.paused,
            "workflows": {s.value: n for s, n in report.global_.states.items()},
            "policy_version": report.policy_version,
        }
        if report.fleet is not None:  # which host, and is its fleet link up
            body["fleet"] = report.fleet
            body["reason"] = report.global_.reason
        if report.disk is not None:  # the data directory against its disk budget
            body["disk"] = {k: report.disk[k] for k in DISK_HEALTH_KEYS if k in report.disk}
            body["reason"] = report.global_.reason
        if freshness is not None:
            body.update(freshness())
        return HEALTH_STATUS[report.global_.health], "application/json", json.dumps(body).encode()
    if path == "/status":
        text = source.get_status_report().to_json()
        if freshness is not None:
            data = json.loads(text)
            data["view"] = freshness()
            text = json.dumps(data, indent=2)
        return 200, "application/json", text.encode()
    if path == "/metrics":
        if registry is None:
            return error(404, "metrics are not configured for this server")
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return 200, CONTENT_TYPE_LATEST, generate_latest(registry)
    return error(404, f"no such path {path[:100]!r}; try /health, /status or /metrics")
