"""What ``make prod-check`` and the tests both run: a real redis-server, and certificates.

- :class:`RedisServer` / :class:`DeployedRedis`: a redis-server on a free loopback port (the
  second with the deployed configuration from ``deploy/redis``: ACL, TLS, AOF), stopped by
  its pid;
- :func:`make_certs`: a throw-away CA, server and client certificates made with ``openssl``.

A missing command raises :class:`MissingTool`, which the tests turn into a skipped test
(``tests/redis_support.py``, ``tests/tls_support.py``) and prod-check into its one-line error.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class MissingTool(RuntimeError):
    """A command this needs (redis-server, openssl) is not installed; the message says how to
    get it."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int, timeout: float = 0.05) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # up (a password may be set)
    except OSError:
        return False


@dataclass
class RedisServer:
    """One redis-server process (no persistence) in its own directory."""

    directory: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    #: More redis-server arguments (``("--requirepass", "pw")``).
    extra: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        """Return the redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, port: int | None = None) -> RedisServer:
        """Start the server (on ``port``, else a free one) and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise MissingTool("redis-server is not installed (make redis, or apt-get install it)")
        for _ in range(5):  # a port taken meanwhile makes the server exit at once: try another
            self.port = port or _free_port()
            self.proc = subprocess.Popen(
                [
                    binary,
                    "--bind", "127.0.0.1",
                    "--port", str(self.port),
                    "--dir", str(self.directory),
                    "--save", "",
                    "--appendonly", "no",
                    "--daemonize", "no",
                    "--logfile", str(self.directory / "redis.log"),
                    *self.extra,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            for _ in range(2000):  # bounded: ~12 ms in practice
                if self.proc.poll() is not None:
                    break
                if _answers(self.port):
                    return self
            self.stop()
            if port is not None:
                break
        raise RuntimeError(f"redis-server did not start (see {self.directory / 'redis.log'})")

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the server by its pid (SIGSTOP, SIGCONT, SIGKILL)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signum)

    def kill(self) -> None:
        """SIGKILL the server and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        """Kill the server and start an empty one on the same port (no persistence)."""
        self.kill()
        self.start(self.port)

    def stop(self) -> None:
        """Stop the server by its pid (SIGCONT first, in case it was stopped)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "redis"


@dataclass
class DeployedRedis:
    """redis-server run from the shipped ``deploy/redis`` files (TLS, ACL users, AOF).

    The files are copied under ``root`` with their absolute paths (``/etc/autoheal-redis``,
    ``/var/lib/autoheal-redis``), the TLS port and ``supervised`` rewritten; the password
    hashes are filled in; nothing else changes. The data directory survives :meth:`kill`.
    """

    root: Path
    certs: Any
    fleet_password: str = "fleet-pw-7d2c"
    admin_password: str = "admin-pw-91ab"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the rediss:// URL of this server."""
        return f"rediss://127.0.0.1:{self.port}/0"

    @property
    def password_file(self) -> Path:
        """Return the file holding the fleet user's password (what hosts' policies name)."""
        return self.root / "fleet.password"

    def fleet_section(self, **extra: Any) -> dict[str, Any]:
        """Return a policy's fleet section that logs in as the fleet user over TLS."""
        return {
            "enabled": True,
            "url": self.url,
            "username": "autoheal",
            "password_file": str(self.password_file),
            "tls_ca_file": str(self.certs.ca),
            "timeout_seconds": 0.5,
            **extra,
        }

    def _lay_out(self) -> Path:
        etc, var = self.root / "etc", self.root / "var"
        (etc / "tls").mkdir(parents=True, exist_ok=True)
        var.mkdir(exist_ok=True)
        shutil.copy(self.certs.server_cert, etc / "tls" / "redis.crt")
        shutil.copy(self.certs.server_key, etc / "tls" / "redis.key")
        shutil.copy(self.certs.ca, etc / "tls" / "ca.crt")
        self.password_file.write_text(self.fleet_password)
        acl = (DEPLOY / "users.acl").read_text()
        for name, pw in (("FLEET", self.fleet_password), ("ADMIN", self.admin_password)):
            acl = acl.replace(f"@{name}_PASSWORD_SHA256@", hashlib.sha256(pw.encode()).hexdigest())
        (etc / "users.acl").write_text(acl)
        conf = (DEPLOY / "redis.conf").read_text()
        conf = conf.replace("/etc/autoheal-redis", str(etc))
        conf = conf.replace("/var/lib/autoheal-redis", str(var))
        conf = re.sub(r"(?m)^tls-port .*$", f"tls-port {self.port}", conf)
        conf = re.sub(r"(?m)^supervised .*$", "supervised no", conf)
        conf = re.sub(r"(?m)^logfile .*$", f'logfile "{self.root / "redis.log"}"', conf)
        (etc / "redis.conf").write_text(conf)
        return etc / "redis.conf"

    def client(self, user: str = "admin", password: str | None = None, **kw: Any) -> Any:
        """Return a redis-py client logged in as ``user`` over TLS."""
        import redis

        if password is None:
            password = self.admin_password if user == "admin" else self.fleet_password
        return redis.Redis(
            host="127.0.0.1", port=self.port, ssl=True, ssl_ca_certs=str(self.certs.ca),
            username=user, password=password, socket_timeout=2, decode_responses=True, **kw,
        )  # fmt: skip

    def _ready(self) -> bool:
        try:
            with self.client() as c:
                return bool(c.ping())
        except Exception:  # not up yet (refused, handshake cut short, loading the AOF)
            return False

    def start(self, port: int | None = None) -> DeployedRedis:
        """Start the server (on ``port``, else a free one) and wait until the admin gets PONG."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise MissingTool("redis-server is not installed (make redis, or apt-get install it)")
        for _ in range(5):
            self.port = port or _free_port()
            conf = self._lay_out()
            self.proc = subprocess.Popen(
                [binary, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._ready():
                    return self
                time.sleep(0.01)  # allowed: polling a real server's start with a deadline
            self.kill()
            if port is not None:
                break
        raise RuntimeError(f"redis-server did not start (see {self.root / 'redis.log'})")

    def kill(self) -> None:
        """SIGKILL the server by its pid and reap it (its data directory stays)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server by its pid."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass(frozen=True)
class Certs:
    """PEM files of one throw-away CA and the certificates it signed (valid one day)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _run(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _signed(folder: Path, ca: Path, ca_key: Path, name: str, cn: str, ext: str) -> None:
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    _run(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    extfile = folder / f"{name}.ext"
    extfile.write_text(ext + "\n")
    _run(
        "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "1", "-out", str(cert), "-extfile", str(extfile),
    )  # fmt: skip
    key.chmod(0o600)


def make_certs(folder: Path) -> Certs:
    """Make a CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    if shutil.which("openssl") is None:
        raise MissingTool("the openssl command is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.crt", folder / "ca.key"
    _run(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-days", "1", "-subj", "/CN=autoheal test CA", "-keyout", str(ca_key), "-out", str(ca),
    )  # fmt: skip
    _signed(
        folder, ca, ca_key, "server", "127.0.0.1",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
    )  # fmt: skip
    _signed(folder, ca, ca_key, "client", "prometheus", "extendedKeyUsage=clientAuth")
    return Certs(
        ca,
        folder / "server.crt",
        folder / "server.key",
        folder / "client.crt",
        folder / "client.key",
    )
