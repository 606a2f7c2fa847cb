"""Load on the health endpoint: a burst of concurrent clients, and /health under idle clients.

Run: ``.venv/bin/python bench/server_load.py``. Loopback only; prints the figures the README's
Reliability section quotes.
"""

from __future__ import annotations

import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autoheal_otel import AutoHealManager
from autoheal_otel.server import AutoHealServer
from autoheal_otel.testing import FakeClock
from tests.test_server import burst, get


def main() -> None:
    """Print latency and thread figures."""
    with AutoHealManager(clock=FakeClock()) as manager:
        for i in range(20):
            manager.should_execute_step(f"wf{i}", "s")
        server = AutoHealServer(manager, port=0).start()
        try:
            for clients in (200, 1000):
                latencies = sorted(burst(server.address, clients, timeout=60))
                p99 = latencies[int(0.99 * len(latencies)) - 1]
                print(
                    f"burst of {clients}: {len(latencies)} answered,"
                    f" p50 {statistics.median(latencies) * 1000:.1f} ms,"
                    f" p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
                )
            idle = [socket.create_connection(server.address, timeout=5) for _ in range(1000)]
            started = time.perf_counter()
            code, _ = get(server.address)
            took = time.perf_counter() - started
            print(
                f"1000 idle connections: /health {code} in {took * 1000:.1f} ms,"
                f" {sum(t.name.startswith('autoheal-http') for t in threading.enumerate())}"
                f" server threads (loop + pool), {threading.active_count()} in the process"
            )
            for sock in idle:
                sock.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
