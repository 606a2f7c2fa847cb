"""Disk per million steps, raw and compacted, and the cost of measuring it.

Run: ``.venv/bin/python bench/disk.py --steps 200000 --runs 3``. Each run drives a real
manager (default policy, JSONL audit log, success store) on a fake clock through ``--steps``
steps (a gate and a result each) over 1,000 workflows × 20 steps at 200,000 steps a day,
with ~2 % failed steps, then:

- measures the data directory by part (:func:`autoheal_otel.disk._usage.measure`) and reports the
  raw audit log per million steps;
- compacts the log (``analytics.compaction.compact``) and reports the Parquet per million
  steps, and its ratio to the raw log of the same run (the baseline);
- adds 5,000 small files under ``failure_cases/`` and times :func:`measure` against a plain ``os.walk`` + ``lstat`` sum of the same directory,
  interleaved (the same-run baseline), medians of ``--repeat`` rounds.

Figures are medians over the runs with their range. Everything is written under one
temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from autoheal_otel import AutoHealManager, Outcome, PolicyConfig, StepResult
from autoheal_otel.analytics.compaction import compact
from autoheal_otel.disk._usage import measure
from autoheal_otel.testing import FakeClock

START = datetime(2026, 1, 1, tzinfo=UTC)
WORKFLOWS, STEPS_PER = 1000, 20
STEP_SECONDS = 86_400 / 200_000
CASES = 5000


def drive(data_dir: Path, steps: int, seed: int) -> None:
    """Run ``steps`` steps through a real manager on a fake clock."""
    rng = random.Random(seed)
    clock = FakeClock(start=START)
    # Background compaction off: the run measures raw, then compacts once by hand.
    policy = PolicyConfig.from_dict({"audit": {"compact_interval_seconds": 0}})
    ok = StepResult(outcome=Outcome.SUCCESS, confidence=0.93, validated=True, duration_s=0.4)
    failed = StepResult(outcome=Outcome.TARGET_NOT_FOUND, confidence=0.41, duration_s=1.2)
    with AutoHealManager(policy=policy, data_dir=data_dir, clock=clock) as manager:
        for i in range(steps):
            wf = f"wf{i % WORKFLOWS:04d}"
            step = f"step{(i // WORKFLOWS) % STEPS_PER:02d}"
            allowed, _reason = manager.should_execute_step(wf, step)
            if allowed:
                manager.on_step_result(wf, step, failed if rng.random() < 0.02 else ok)
            clock.advance(STEP_SECONDS)


def plain_walk(root: Path) -> int:
    """The baseline: every file's size under ``root``, links not followed."""
    total = 0
    for folder, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            total += os.lstat(os.path.join(folder, name)).st_size
    return total


def timed(fn: object, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def one_run(root: Path, steps: int, seed: int, repeat: int) -> dict[str, float]:
    data = root / f"run{seed}"
    began = time.perf_counter()
    drive(data, steps, seed)
    drive_s = time.perf_counter() - began
    retention = PolicyConfig().retention
    raw = measure(data, retention, START)
    for i in range(CASES):  # a tree of many small files for the walk to time
        case = data / "failure_cases" / f"wf{i % 100:04d}" / f"20260101T000000-{i:08d}.json"
        case.parent.mkdir(parents=True, exist_ok=True)
        case.write_bytes(b"{}" * 1000)
    per_million = 1_000_000 / steps
    walk, base = [], []
    for _ in range(repeat):  # interleaved: each round times both
        walk.append(timed(lambda: measure(data, retention, START), 1))
        base.append(timed(lambda: plain_walk(data), 1))
    compact(data)
    done = measure(data, retention, START)
    shutil.rmtree(data)
    return {
        "drive_s": drive_s,
        "raw_bytes_per_million": raw.parts["audit_raw"] * per_million,
        "parquet_bytes_per_million": done.parts["audit_compacted"] * per_million,
        "left_raw_after_compaction": done.parts["audit_raw"] * per_million,
        "success_store_per_million": done.parts["success_store"] * per_million,
        "files": raw.files,
        "measure_s": statistics.median(walk),
        "walk_s": statistics.median(base),
    }


def _fmt(values: list[float], scale: float, unit: str) -> str:
    med = statistics.median(values) / scale
    return f"{med:.3g} {unit} (range {min(values) / scale:.3g}–{max(values) / scale:.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="autoheal-bench-disk-"))
    try:
        results = [one_run(root, args.steps, seed, args.repeat) for seed in range(args.runs)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    col = {k: [r[k] for r in results] for k in results[0]}
    mb = 1e6
    print(f"{args.runs} runs of {args.steps:,} steps (a gate and a result each), medians:")
    print(f"  raw audit JSONL per million steps:   {_fmt(col['raw_bytes_per_million'], mb, 'MB')}")
    print(
        f"  Parquet per million steps:           {_fmt(col['parquet_bytes_per_million'], mb, 'MB')}"
    )
    ratios = [
        r / p
        for r, p in zip(col["raw_bytes_per_million"], col["parquet_bytes_per_million"], strict=True)
    ]
    print(f"  raw / Parquet (same run):            {_fmt(ratios, 1, 'x')}")
    print(
        f"  raw left after compaction:           {_fmt(col['left_raw_after_compaction'], mb, 'MB')}"
    )
    print(
        f"  success store per million steps:     {_fmt(col['success_store_per_million'], mb, 'MB')}"
    )
    walks = [m / w for m, w in zip(col["measure_s"], col["walk_s"], strict=True)]
    print(
        f"  measure() of {int(statistics.median(col['files'])) + CASES} files:"
        f" {_fmt(col['measure_s'], 1e-3, 'ms')}; os.walk + lstat baseline"
        f" {_fmt(col['walk_s'], 1e-3, 'ms')}; ratio {_fmt(walks, 1, 'x')}"
    )
    print(f"  driving the steps took {_fmt(col['drive_s'], 1, 's')} per run")


if __name__ == "__main__":
    main()
