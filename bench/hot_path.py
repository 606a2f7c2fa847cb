"""Per-step cost of the hooks against pybreaker and bare OTel spans; memory per 10,000 workflows.

Run: ``make bench`` (or ``.venv/bin/python bench/hot_path.py``). Every figure is a median of
several interleaved repetitions measured in this process, reported as a ratio against
``pybreaker.CircuitBreaker.call`` on a success, so a noisy shared machine moves both alike.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import timeit
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pybreaker

from autoheal_otel import AutoHealManager, Outcome, PolicyConfig, StepResult
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


class _DiscardExporter:
    """A span exporter that drops everything (the batch processor still does its work)."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def sdk_providers() -> tuple[Any, Any]:
    """Return an SDK tracer provider (batch processor) and a meter provider (no export)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_DiscardExporter()))  # type: ignore[arg-type]
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])


def two_bare_spans(tracer_provider: Any) -> Callable[[], None]:
    """Two SDK spans started and ended: the cost a per-hook span design cannot go below."""
    tracer = tracer_provider.get_tracer("bench")

    def step() -> None:
        tracer.start_span("gate").end()
        tracer.start_span("result").end()

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


def _hot_path(number: int, repeat: int, root: Path) -> None:
    """Measure and print the per-step figures; audited managers write under ``root``."""
    manager = AutoHealManager(clock=FakeClock())
    system = AutoHealManager()  # the real clock: time.monotonic on every hook
    # Audit on: every decision's JSONL line reaches the OS before the hook returns.
    audited = AutoHealManager(data_dir=root / "audited")
    jsonl_only = AutoHealManager(data_dir=root / "jsonl-only")
    assert jsonl_only.success_store is not None
    jsonl_only.remove_sink(jsonl_only.success_store)
    lean = AutoHealManager(
        data_dir=root / "lean",
        policy=PolicyConfig(audit={"record_allowed_gates": False}),
    )
    assert lean.success_store is not None
    lean.remove_sink(lean.success_store)
    medians = compare(
        {
            "pybreaker.call": pybreaker_step(),
            "autoheal (fake clock)": autoheal_step(manager),
            "autoheal (system clock)": autoheal_step(system),
            "+ JSONL audit": autoheal_step(jsonl_only),
            "+ JSONL, no allowed gates": autoheal_step(lean),
            "+ JSONL + success store": autoheal_step(audited),
        },
        number,
        repeat,
    )
    base = medians["pybreaker.call"]
    print(f"hot path, median of {repeat} x {number} steps (gate + result)")
    for name, value in medians.items():
        print(f"  {name:<26} {value:7.3f} us/step   {value / base:5.2f}x pybreaker")
    tracer_provider, meter_provider = sdk_providers()
    traced = AutoHealManager(tracer_provider=tracer_provider, meter_provider=meter_provider)
    otel = compare(
        {
            "two bare SDK spans": two_bare_spans(tracer_provider),
            "autoheal + OTel SDK": autoheal_step(traced),
        },
        number // 5,
        repeat,
    )
    spans = otel["two bare SDK spans"]
    print("with the OTel SDK (batch span processor, metrics on, nothing exported)")
    for name, value in otel.items():
        print(f"  {name:<26} {value:7.3f} us/step   {value / spans:5.2f}x two bare spans")
    for m in (manager, system, audited, jsonl_only, lean, traced):
        m.close()
    tracer_provider.shutdown()
    meter_provider.shutdown()


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    # Every audited manager writes under one temporary folder, removed at the end whatever
    # happens (a full run writes about 2 GB of audit log there).
    with tempfile.TemporaryDirectory(prefix="autoheal-bench-") as root:
        _hot_path(args.number, args.repeat, Path(root))
    per_wf = memory_per_workflow(10_000)
    total_mib = per_wf * 10_000 / 2**20
    print(f"memory: {per_wf:,.0f} B per active workflow -> {total_mib:.1f} MiB per 10,000")


if __name__ == "__main__":
    main()
