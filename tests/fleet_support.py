"""Fleet test helpers: host processes driven over pipes, fleet policies, bounded waits."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autoheal_otel import PolicyConfig

ROOT = Path(__file__).resolve().parent.parent


def fleet_policy(url: str, namespace: str, host: str, **sections: Any) -> PolicyConfig:
    """Return a policy with the fleet on (fast link settings) merged with ``sections``."""
    fleet = {
        "enabled": True,
        "url": url,
        "namespace": namespace,
        "host_id": host,
        "block_seconds": 0.5,
        "reconnect_seconds": 0.1,
        "ship_interval_seconds": 0.02,
        **sections.pop("fleet", {}),
    }
    return PolicyConfig.from_dict({"fleet": fleet, **sections})


def wait_until(predicate: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll ``predicate`` every 5 ms for at most ``seconds``; return its last answer."""
    pause = threading.Event()
    for _ in range(int(seconds * 200) + 1):
        if predicate():
            return True
        pause.wait(0.005)  # allowed: polling threads and servers with a bound
    return bool(predicate())


class Host:
    """One ``tests.fleet_host`` process with its own data directory."""

    def __init__(self, data_dir: Path, policy: PolicyConfig, *, store: bool = False) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.policy_path = data_dir.parent / f"{data_dir.name}.policy.json"
        policy.dump(self.policy_path)
        self._lines: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fleet_host",
                str(data_dir),
                str(self.policy_path),
                *(["store"] if store else []),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.writer = self._next(30.0)["ready"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def _next(self, timeout: float) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(self._lines.get(timeout=timeout))
        return answer

    def send(self, *command: Any) -> None:
        """Send one command without waiting for its answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(list(command)) + "\n")
        self.proc.stdin.flush()

    def answer(self, timeout: float = 30.0) -> Any:
        """Return the answer of the oldest command sent."""
        return self._next(timeout)["ok"]

    def ask(self, *command: Any, timeout: float = 30.0) -> Any:
        """Send one command and return its answer."""
        self.send(*command)
        return self.answer(timeout)

    def close(self) -> None:
        """Ask the host to close its manager, then reap it."""
        if self.proc.poll() is None:
            try:
                self.send("close")
                self._next(30.0)
            except (OSError, queue.Empty):
                pass
        self.reap()

    def kill(self) -> None:
        """SIGKILL the host (no close, no flush)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.reap()

    def reap(self) -> None:
        """Wait for the process to end (bounded), closing its pipes."""
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def fleet_windows(manager: Any) -> dict[str, int]:
    """Return the fleet's workflow windows as Redis holds them, read as an outside reader."""
    from autoheal_otel.fleet._store import FleetStore

    store = FleetStore(manager.fleet.policy)
    try:
        counts: dict[str, int] = store.window_counts()
        return counts
    finally:
        store.close()
