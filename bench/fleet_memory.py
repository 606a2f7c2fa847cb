"""The fleet's Redis memory at steady state, per failure rate and window, on a real redis-server.

Run: ``.venv/bin/python bench/fleet_memory.py`` (part of ``make bench``). Once a window has
filled, the fleet keeps every failure of the last ``window`` seconds: one member in its
workflow's window and one in the global window (sorted sets), so the steady state holds
``rate x window`` failures whatever the clock. The Lua scripts read Redis's own ``TIME``, so
the window cannot be filled on a fake clock; instead the benchmark ships exactly that many
failures through the real ``SHIP`` script (the link's own code: ``FleetStore.ship`` with the
items ``to_items`` builds from a robot's queue, members ``<host>/<writer>/<seq>`` as hosts
write them) from 4 hosts over 8 workflows, and reads ``INFO memory`` before and after. It
also reports the append-only file's growth (``appendfsync everysec``) for the same writes.
Each case runs ``--repeat`` times on a fresh server; figures are medians with the range.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from autoheal_otel import PolicyConfig
from autoheal_otel.core._breakers import GlobalRule
from autoheal_otel.fleet._catchup import to_items
from autoheal_otel.fleet._store import FleetStore
from autoheal_otel.policy._fleet import FleetPolicy

HOSTS, WORKFLOWS, BATCH = 4, 8, 500


def _server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (make redis)")
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder), "--save", "",
         "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no",
         "--logfile", str(folder / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.01)  # polling a real server's start with a deadline
    proc.kill()
    sys.exit("redis-server did not start")


def _aof_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in (folder / "appendonlydir").glob("*"))


def measure(failures: int, window_s: float, port: int) -> tuple[int, int]:
    """Return (used_memory growth, AOF growth) in bytes after ``failures`` in one window."""
    folder = Path(tempfile.mkdtemp(prefix="autoheal-fleet-memory-"))
    proc = _server(folder, port)
    try:
        windows = {"window_seconds": window_s}
        policy = PolicyConfig.from_dict({"breakers": {"workflow": windows, "global": windows}})
        fleet = FleetPolicy(url=f"redis://127.0.0.1:{port}/0", timeout_seconds=5.0)
        store = FleetStore(fleet)
        info = redis.Redis(port=port)
        store.ship([], 0, window_s, 2)  # the scripts loaded, the namespace started
        used0, aof0 = int(info.info("memory")["used_memory"]), _aof_bytes(folder)
        queue = [
            (f"robot-{i % HOSTS:02d}/robot-{i % HOSTS:02d}.{4000 + i % HOSTS}.a1b2c3/{i}",
             f"workflow-{i % WORKFLOWS}", "target_not_found", "", "")
            for i in range(failures)
        ]  # fmt: skip
        gp = policy.breakers.global_
        for start in range(0, failures, BATCH):
            items = to_items(policy, ("workflow", "global"), queue[start : start + BATCH])
            store.ship(items, *GlobalRule.of(gp).redis_args(), 2)
        used1 = int(info.info("memory")["used_memory"])
        time.sleep(1.5)  # let everysec write the last second to the AOF before reading its size
        store.close()
        return used1 - used0, _aof_bytes(folder) - aof0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    """Print a table of memory per failure rate for a 600 s window."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=600.0)
    parser.add_argument("--rates", default="1,10,100")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", args.port))
        port = s.getsockname()[1]
    print(
        f"fleet Redis at steady state, window {args.window:g} s, {HOSTS} hosts, {WORKFLOWS} workflows"
    )
    print("rate/s  failures kept  memory MB (median [range])  bytes/failure  AOF MB per window")
    for rate in (float(r) for r in args.rates.split(",")):
        n = int(rate * args.window)
        runs = [measure(n, args.window, port) for _ in range(args.repeat)]
        mem = [r[0] for r in runs]
        aof = [r[1] for r in runs]
        med = statistics.median(mem)
        print(
            f"{rate:6g}  {n:13d}  {med / 1e6:8.2f} [{min(mem) / 1e6:.2f}-{max(mem) / 1e6:.2f}]"
            f"          {med / n:8.0f}       {statistics.median(aof) / 1e6:8.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
