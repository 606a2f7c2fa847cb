"""A real redis-server for the fleet tests: started on a free loopback port, stopped by its pid."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


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
            if os.environ.get("CI"):
                raise RuntimeError("redis-server is not installed: make test installs it")
            pytest.skip("redis-server is not installed (make redis, or apt-get install it)")
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
