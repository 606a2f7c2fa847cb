"""Per-step cost of the hooks against pybreaker, and memory per 10,000 workflows.

Run: ``make bench`` (or ``.venv/bin/python bench/hot_path.py``). Every figure is a median of
several interleaved repetitions measured in this process, reported as a ratio against
``pybreaker.CircuitBreaker.call`` on a success, so a noisy shared machine moves both alike.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import timeit
import tracemalloc
from collections.abc import Callable

import pybreaker

from autoheal_otel import AutoHealManager, Outcome, StepResult
from autoheal_otel.testing import FakeClock

OK = StepResult(outcome=Outcome.SUCCESS, confidence=0.93, second_best=0.4, validated=True)


def pybreaker_step() -> Callable[[], None]:
    """One guarded call of a no-op action through pybreaker (the baseline)."""
    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)

    def action() -> None:
        return None

    def step() -> None:
        breaker.call(action)

    return step


def autoheal_step(manager: AutoHealManager) -> Callable[[], None]:
    """One gate + one result on a RUNNING workflow (step, workflow and global scope)."""
    gate = manager.should_execute_step
    report = manager.on_step_result

    def step() -> None:
        gate("invoice", "click_submit")
        report("invoice", "click_submit", OK)

    return step


def per_call_us(func: Callable[[], None], number: int) -> float:
    """Return microseconds per call for one timing run."""
    return timeit.timeit(func, number=number) / number * 1e6


def compare(
    candidates: dict[str, Callable[[], None]], number: int, repeat: int
) -> dict[str, float]:
    """Return the median microseconds per call of each candidate, runs interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for func in candidates.values():
        per_call_us(func, number // 10)  # warm up
    for _ in range(repeat):
        for name, func in candidates.items():
            samples[name].append(per_call_us(func, number))
    return {name: statistics.median(values) for name, values in samples.items()}


def memory_per_workflow(count: int) -> float:
    """Return bytes of traced memory per active workflow (one step each, one gate + result)."""
    gc.collect()
    manager = AutoHealManager(clock=FakeClock())
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(count):
        wid = f"workflow-{i:06d}"
        manager.should_execute_step(wid, "click_submit")
        manager.on_step_result(wid, "click_submit", OK)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    manager.close()
    return (after - before) / count


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    manager = AutoHealManager(clock=FakeClock())
    system = AutoHealManager()  # the real clock: time.monotonic on every hook
    medians = compare(
        {
            "pybreaker.call": pybreaker_step(),
            "autoheal (fake clock)": autoheal_step(manager),
            "autoheal (system clock)": autoheal_step(system),
        },
        args.number,
        args.repeat,
    )
    base = medians["pybreaker.call"]
    print(f"hot path, median of {args.repeat} x {args.number} steps, no sinks")
    for name, value in medians.items():
        print(f"  {name:<26} {value:7.3f} us/step   {value / base:5.2f}x pybreaker")
    per_wf = memory_per_workflow(10_000)
    total_mib = per_wf * 10_000 / 2**20
    print(f"memory: {per_wf:,.0f} B per active workflow -> {total_mib:.1f} MiB per 10,000")


if __name__ == "__main__":
    main()
