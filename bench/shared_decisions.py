"""What shared decisions cost a lone robot: a durable audited step with and without turns.

Run: ``.venv/bin/python bench/shared_decisions.py``. One manager on a fresh data directory
takes ``should_execute_step`` + ``on_step_result`` per step; the same loop runs with
``shared_decisions`` off (the baseline) and on, interleaved, several repetitions. Reported:
the median and range of each, and the per-repetition ratio shared / alone.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from autoheal_otel import AutoHealManager, Outcome, StepResult

OK = StepResult(outcome=Outcome.SUCCESS, validated=True)


def per_step_us(shared: bool, steps: int) -> float:
    """Return the mean microseconds of one gated, audited step."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        AutoHealManager(None, Path(tmp), shared_decisions=shared) as manager,
    ):
        for _ in range(200):  # warm up: the workflow exists, the segment is open
            manager.should_execute_step("w", "s")
            manager.on_step_result("w", "s", OK)
        started = time.perf_counter()
        for _ in range(steps):
            manager.should_execute_step("w", "s")
            manager.on_step_result("w", "s", OK)
        return (time.perf_counter() - started) / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    alone, shared = [], []
    for _ in range(args.repeats):
        alone.append(per_step_us(False, args.steps))
        shared.append(per_step_us(True, args.steps))
    ratios = [s / a for a, s in zip(alone, shared, strict=True)]
    for name, values in (("alone", alone), ("shared", shared)):
        print(f"{name:7} µs/step  median {statistics.median(values):6.1f}"
              f"  range {min(values):6.1f}–{max(values):6.1f}")  # fmt: skip
    print(f"ratio shared/alone  median {statistics.median(ratios):.2f}"
          f"  range {min(ratios):.2f}–{max(ratios):.2f}  ({args.repeats} runs)")  # fmt: skip


if __name__ == "__main__":
    main()
