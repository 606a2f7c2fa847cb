"""Replay and what-if of a large raw log: wall time, peak memory, and when progress first shows.

Writes a log of about ``2 x --steps`` records (gates and results of 40 workflows on a fake
clock, a rare failure now and then), then runs ``autoheal replay`` and ``autoheal what-if`` on
it as separate processes and prints each one's wall time and peak RSS (the operating system's
figure for the child; the peak is the largest so far, so what-if's covers both), and how long
a replay takes to report its first progress. Everything is written
under one temporary directory, removed at the end.

Run: ``.venv/bin/python bench/replay.py [--steps 500000]`` (1,000,000 records).
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoheal_otel import AutoHealManager, StepResult
from autoheal_otel.testing import FakeClock


def write_log(data_dir: Path, steps: int) -> None:
    rng = random.Random(1)
    clock = FakeClock()
    outcomes = ["success"] * 400 + ["target_not_found", "postcondition_failed"]
    with AutoHealManager(data_dir=data_dir, clock=clock) as m:
        for i in range(steps):
            clock.advance(1.0)
            wf, step = f"wf-{i % 40}", f"s{i % 7}"
            if m.should_execute_step(wf, step)[0]:
                result = StepResult(outcome=rng.choice(outcomes), confidence=0.9, validated=True)
                m.on_step_result(wf, step, result)


def run(args: list[str]) -> tuple[float, float]:
    """Return (wall seconds, peak RSS in MB) of one ``autoheal`` command."""
    exe = shutil.which("autoheal", path=str(Path(sys.executable).parent)) or "autoheal"
    started = time.perf_counter()
    subprocess.run([exe, *args], stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def first_progress(data: Path) -> float:
    """Return the seconds from the start of a replay to its first progress report."""
    from autoheal_otel.analytics.replay import replay

    started = time.perf_counter()
    seen: list[float] = []
    replay(data, progress=lambda _d, _t: seen.append(time.perf_counter() - started))
    return seen[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=500_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autoheal-bench-") as tmp:
        data = Path(tmp) / "data"
        write_log(data, args.steps)
        policy = Path(__file__).resolve().parents[1] / "config" / "auto_heal_policy.json"
        for name, cli in (
            ("replay", ["replay", "--data-dir", str(data)]),
            ("what-if", ["what-if", "--data-dir", str(data), "--policy", str(policy)]),
        ):
            wall, rss = run(cli)
            print(f"{name:8} {2 * args.steps:>9} records: {wall:6.2f} s, peak {rss:6.0f} MB")
        print(f"first progress report after {first_progress(data):.3f} s")


if __name__ == "__main__":
    main()
