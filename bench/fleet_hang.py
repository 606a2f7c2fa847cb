"""The slowest hook while the fleet's Redis hangs (SIGSTOP), against the same robot before it.

A steady robot (gate + result every ~2 ms over 5 workflows, one failure in 7) runs with the
fleet on against a loopback redis-server; each run measures 2,000 steps with Redis up (the
anchor), then 6 s with Redis stopped, then 1,000 steps after it resumes. Reported per run: the
worst hook and p99.9 during the hang beside the same figures with Redis up, in the same run;
then the median and range over ``--runs`` runs. The promise: the worst hook during a hang
stays under the Redis timeout (``fleet.timeout_seconds``, 50 ms). Everything written lives in
one temporary directory, removed at the end (the redis-server stopped by its pid).

Run: ``.venv/bin/python bench/fleet_hang.py [--runs 4] [--seconds 6]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from autoheal_otel import AutoHealManager, PolicyConfig, StepResult

OK = StepResult(outcome="success", confidence=0.9, validated=True)
BAD = StepResult(outcome="target_not_found", confidence=0.3)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _policy(url: str) -> PolicyConfig:
    return PolicyConfig.from_dict(
        {"fleet": {"enabled": True, "url": url, "namespace": "hang", "host_id": "h0"}}
    )


def _figures(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return ordered[-1] * 1000, ordered[int(len(ordered) * 0.999)] * 1000


def one_run(root: Path, seconds: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Return ((worst, p99.9) with Redis up, (worst, p99.9) while it hangs), in ms."""
    port = _port()
    root.mkdir(parents=True)
    redis = subprocess.Popen(
        [
            *("redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(root)),
            *("--save", "", "--appendonly", "no"),
        ],
        stdout=subprocess.DEVNULL,
    )
    pause = threading.Event()
    pause.wait(0.3)  # redis-server answers in ~12 ms; the link reconnects anyway
    try:
        manager = AutoHealManager(_policy(f"redis://127.0.0.1:{port}/0"), data_dir=root / "d")
        link = manager.fleet
        assert link is not None
        deadline = time.monotonic() + 10
        while not link.connected and time.monotonic() < deadline:
            pause.wait(0.01)

        def step(i: int) -> float:
            wf = f"w{i % 5}"
            started = time.perf_counter()
            manager.should_execute_step(wf, "s")
            manager.on_step_result(wf, "s", BAD if i % 7 == 0 else OK)
            return time.perf_counter() - started

        up = [step(i) for i in range(2000)]
        os.kill(redis.pid, signal.SIGSTOP)
        hung: list[float] = []
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            hung.append(step(i))
            i += 1
            pause.wait(0.002)  # a steady robot's pace between steps
        os.kill(redis.pid, signal.SIGCONT)
        for i in range(1000):
            hung.append(step(i))
        manager.close()
        return _figures(up), _figures(hung)
    finally:
        redis.kill()
        redis.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    worst: list[float] = []
    root = Path(tempfile.mkdtemp(prefix="autoheal-bench-hang-"))
    try:
        for run in range(args.runs):
            (up_max, up_p), (hang_max, hang_p) = one_run(root / f"run{run}", args.seconds)
            worst.append(hang_max)
            print(
                f"run {run + 1}: Redis hung: worst {hang_max:.2f} ms, p99.9 {hang_p:.2f} ms"
                f" | Redis up (same run): worst {up_max:.2f} ms, p99.9 {up_p:.2f} ms"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"worst hook while Redis hangs: median {statistics.median(worst):.2f} ms,"
        f" range {min(worst):.2f}-{max(worst):.2f} ms over {len(worst)} runs"
        f" (the Redis timeout: 50 ms)"
    )


if __name__ == "__main__":
    main()
