"""`autoheal serve` over TLS with basic auth, from a web config file in the exporters' format.

Real TLS (certificates made by the openssl command), real bcrypt hashes, and a real Prometheus
scraping the served metrics over TLS with a login (and failing with a wrong one).
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from autoheal_otel import AutoHealManager
from autoheal_otel.server import AutoHealServer
from autoheal_otel.server._web_config import WebConfigError, load_web_config
from autoheal_otel.testing import FakeClock

from .cli_support import run
from .test_prometheus import PROMETHEUS, free_port, poll
from .tls_support import Certs, make_certs

PASSWORD = "s3cret-scrape"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def web_config(folder: Path, certs: Certs, *, client_ca: bool = False, users: bool = True) -> Path:
    """Write a web config (relative paths: read beside the file) and return its path."""
    for src in (certs.server_cert, certs.server_key, certs.ca):
        shutil.copy(src, folder / src.name)
    text = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
    if client_ca:
        text += "  client_ca_file: ca.crt\n"
    if users:
        text += f"basic_auth_users:\n  prometheus: '{HASH}'\n  other: '{HASH}'\n"
    path = folder / "web.yml"
    path.write_text(text)
    return path


def client_context(certs: Certs, *, with_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    if with_cert:
        ctx.load_cert_chain(certs.client_cert, certs.client_key)
    return ctx


def fetch(
    url: str, ctx: ssl.SSLContext, user: str | None = None, password: str = ""
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def tls_server(tmp_path: Path, certs: Certs) -> Iterator[AutoHealServer]:
    manager = AutoHealManager(clock=FakeClock())
    manager.should_execute_step("invoice", "s")
    web = load_web_config(web_config(tmp_path, certs))
    srv = AutoHealServer(manager, port=0, web=web).start()
    yield srv
    srv.stop()
    manager.close()


def test_tls_with_login_answers_and_without_login_is_401(
    tls_server: AutoHealServer, certs: Certs
) -> None:
    """The right login gets every path over TLS; none, a wrong password or an unknown user is
    401 with the realm named, on /health (answered by the loop) as on /status."""
    base = f"https://127.0.0.1:{tls_server.address[1]}"
    ctx = client_context(certs)
    for path in ("/health", "/status", "/health"):  # the second /health: a remembered login
        code, _, body = fetch(base + path, ctx, "prometheus", PASSWORD)
        assert code == 200, body
    for user, password in ((None, ""), ("prometheus", "wrong"), ("nobody", PASSWORD)):
        for path in ("/health", "/status"):
            code, headers, body = fetch(base + path, ctx, user, password)
            assert code == 401, (user, path)
            assert headers["WWW-Authenticate"].startswith('Basic realm="autoheal"')
            assert b"basic auth" in body


def test_plain_http_to_the_tls_port_gets_no_answer(tls_server: AutoHealServer) -> None:
    """A client speaking plain HTTP to the TLS port is closed without an HTTP answer."""
    with socket.create_connection(tls_server.address, timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except ConnectionResetError:
            pass  # the TLS layer resets it: fine, as long as no HTTP answer came
    assert not data.startswith(b"HTTP/")


def test_a_client_certificate_is_required_when_the_config_names_a_client_ca(
    tmp_path: Path, certs: Certs
) -> None:
    """With client_ca_file, a client without a certificate fails the handshake; with one
    signed by that CA it is answered."""
    manager = AutoHealManager(clock=FakeClock())
    web = load_web_config(web_config(tmp_path, certs, client_ca=True, users=False))
    with AutoHealServer(manager, port=0, web=web) as srv:
        url = f"https://127.0.0.1:{srv.address[1]}/health"
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            fetch(url, client_context(certs))
        assert fetch(url, client_context(certs, with_cert=True))[0] == 200
    manager.close()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("basic_auth_users:\n  alice: plain-password\n", "basic_auth_users.alice"),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: x\n",
            "tls_server_config.cert_file",
        ),
        ("tls_server_config:\n  cert: inline\n", "tls_server_config.cert"),
        ("http_server_config:\n  http2: true\n", "http_server_config"),
        ("tls_server_config:\n  key_file: server.key\n", "tls_server_config.cert_file"),
    ],
    ids=["plain-password", "missing-file", "unknown-tls-key", "unknown-section", "no-cert"],
)
def test_a_bad_web_config_is_refused_naming_the_key(
    tmp_path: Path, certs: Certs, text: str, field: str
) -> None:
    """Every bad web config is an error naming its key: never a server with less protection."""
    shutil.copy(certs.server_key, tmp_path / "server.key")
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(WebConfigError) as info:
        load_web_config(path)
    assert info.value.field == field
    assert field.split(".")[-1] in str(info.value)


def test_serve_refuses_a_routable_address_without_web_config(tmp_path: Path) -> None:
    """`serve --host 0.0.0.0` without --web-config is one line and exit 2, unless --insecure."""
    result = run(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert result.returncode == 2
    assert "--web-config" in result.stderr and "--insecure" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    bad = tmp_path / "web.yml"
    bad.write_text("basic_auth_users:\n  alice: plain\n")
    result = run(["serve", "--web-config", str(bad), "--data-dir", str(tmp_path)])
    assert result.returncode == 2 and "basic_auth_users.alice" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed")
def test_prometheus_scrapes_serve_over_tls_with_basic_auth(tmp_path: Path, certs: Certs) -> None:
    """A real Prometheus scrapes `autoheal serve --web-config` (TLS, basic auth): up is 1 and
    the metrics arrive with the right login; a job with a wrong password stays down."""
    exe = shutil.which("autoheal", path=str(Path(sys.executable).parent))
    assert exe is not None
    app_port, prom_port = free_port(), free_port()
    web = web_config(tmp_path, certs)
    (tmp_path / "password").write_text(PASSWORD)
    (tmp_path / "wrong").write_text("not-it")
    app = subprocess.Popen(
        [exe, "serve", "--simulate", "--port", str(app_port), "--web-config", str(web),
         "--data-dir", str(tmp_path / "data"), "--pace", "0.01"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    job = (
        "  - job_name: {name}\n    scheme: https\n    tls_config:\n"
        f"      ca_file: {certs.ca}\n      server_name: 127.0.0.1\n"
        "    basic_auth:\n      username: prometheus\n"
        f"      password_file: {tmp_path}/{{pw}}\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n"
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
        + job.format(name="autoheal", pw="password")
        + job.format(name="intruder", pw="wrong")
    )
    prom = subprocess.Popen(
        [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--storage.tsdb.retention.time=1h"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{prom_port}/api/v1/query?query="
    try:

        def value(expr: str) -> str | None:
            import json

            with urllib.request.urlopen(base + urllib.request.quote(expr), timeout=5) as r:
                result = json.loads(r.read())["data"]["result"]
            return str(result[0]["value"][1]) if result else None

        poll(lambda: value('up{job="autoheal"}') == "1", 60, "the TLS scrape to succeed")
        poll(lambda: value('count(autoheal_decisions_total{job="autoheal"})'), 60, "metrics")
        # Each job is scraped at its own offset in the interval: wait for the intruder's first.
        poll(lambda: value('up{job="intruder"}') is not None, 60, "the intruder's scrape")
        assert value('up{job="intruder"}') == "0"
        assert value('count(autoheal_decisions_total{job="intruder"})') is None
    finally:
        for proc in (app, prom):
            os.kill(proc.pid, signal.SIGTERM)
        for proc in (app, prom):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
