"""Replay and what-if of a large raw log: wall time, peak memory, and when progress first shows.

Writes a log of about ``2 x --steps`` records (gates and results of 40 workflows on a fake
clock, a rare failure now and then), then runs ``autoheal replay`` and ``autoheal what-if`` on
it as separate processes and prints each one's wall time and peak RSS (the operating system's
figure for the child; the peak is the largest so far, so what-if's covers both), and how long
a replay takes to report its first progress. The anchor, in the same run and also a separate
process: a plain DuckDB read of the same segments, sorted by (ts, seq, writer) and streamed
into Python dicts (what any replay must at least do); each figure is printed as a ratio to it.
Everything is written under one temporary directory, removed at the end.

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


#: The anchor: read the log with DuckDB, sort it as replay does, stream every row as a dict.
ANCHOR = """
import sys, duckdb
con = duckdb.connect()  # DuckDB's own memory limit: the anchor is what plain DuckDB does
cur = con.execute(
    "SELECT * FROM read_json(?, format = 'newline_delimited', ignore_errors = true)"
    " WHERE seq IS NOT NULL ORDER BY ts, seq, writer",
    [sys.argv[1] + "/audit/audit-*.jsonl"],
)
names = [d[0] for d in cur.description]
count = 0
while rows := cur.fetchmany(10_000):
    for row in rows:
        dict(zip(names, row))
        count += 1
print(count)
"""


def run(args: list[str], anchor: bool = False) -> tuple[float, float]:
    """Return (wall seconds, peak RSS in MB) of one ``autoheal`` command (or the anchor)."""
    exe = shutil.which("autoheal", path=str(Path(sys.executable).parent)) or "autoheal"
    command = [sys.executable, "-c", ANCHOR, *args] if anchor else [exe, *args]
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
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
        figures = {}
        for name, cli in (
            ("replay", ["replay", "--data-dir", str(data)]),
            ("what-if", ["what-if", "--data-dir", str(data), "--policy", str(policy)]),
        ):
            figures[name] = run(cli)
        # Last: the peak RSS figure is the largest child's so far, so the anchor's comes after.
        base, _ = run([str(data)], anchor=True)
        print(f"anchor   {2 * args.steps:>9} records: {base:6.2f} s (DuckDB sort-and-stream)")
        for name, (wall, rss) in figures.items():
            print(
                f"{name:8} {2 * args.steps:>9} records: {wall:6.2f} s = {wall / base:.2f}x"
                f" the anchor, peak {rss:6.0f} MB"
            )
        print(f"first progress report after {first_progress(data):.3f} s")


if __name__ == "__main__":
    main()
