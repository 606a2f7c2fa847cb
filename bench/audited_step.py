"""The audited step against its floor, telemetry against bare SDK spans, bytes per line.

Every figure is a median of interleaved repetitions in this one process, printed with its
baseline from the same run (shared machines are noisy: quote the ratios):

- **floor**: a minimal controller that does what an audited step must and nothing more —
  10-minute windows at workflow and global scope, then one compact JSON line per decision
  (gate and result, orjson, one ``os.write`` each on an ``O_APPEND`` descriptor);
- **jsonl**: ``should_execute_step`` + ``on_step_result`` with the JSONL audit log (defaults,
  clean successes in RUNNING: every decision written before its hook returns); **gates held**:
  the same with the opt-in ``audit.allowed_gates_with_result`` (one write a step), which shows
  what the durable default costs; **jsonl+sqlite**: the default with the SQLite success store;
- **otel**: the hooks with the OpenTelemetry SDK (tracer and meter, batch span processor,
  no audit log) against **two bare SDK spans** carrying the same attributes;
- **bytes per line**: the audit log's mean line length for gates and results.

Run: ``.venv/bin/python bench/audited_step.py [--number N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

from autoheal_otel import AutoHealManager, Outcome, PolicyConfig, StepResult

OK = StepResult(outcome=Outcome.SUCCESS, confidence=0.93, validated=True, duration_s=0.25)
WORKFLOWS = [f"wf-{k:04d}" for k in range(1024)]
WINDOW = 600.0


class Floor:
    """The least an audited step can do (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.seq = 0
        self.windows: dict[str, deque[float]] = {}
        self.global_window: deque[float] = deque()

    def _line(self, kind: str, wf: str, step: str, **fields: object) -> None:
        self.seq += 1
        rec = {
            "schema_version": 1,
            "ts": datetime.now(UTC),
            "seq": self.seq,
            "writer": "host.1234.abcd",
            "kind": kind,
            "workflow_id": wf,
            "step_id": step,
            "state": "running",
            "reason": "ok",
            "policy_version": "3f2a9c1b",
            **fields,
        }
        os.write(self.fd, orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))

    def should_execute_step(self, wf: str, step: str) -> bool:
        now = time.monotonic()
        for w in (self.windows.setdefault(wf, deque()), self.global_window):
            while w and now - w[0] >= WINDOW:
                w.popleft()
        self._line("gate", wf, step, allowed=True)
        return True

    def on_step_result(self, wf: str, step: str, confidence: float) -> None:
        self._line(
            "result",
            wf,
            step,
            outcome="success",
            confidence=confidence,
            validated=True,
            duration_s=0.25,
            learning=True,
        )


def floor_run(floor: Floor) -> Callable[[int], None]:
    def run(n: int) -> None:
        for i in range(n):
            wf = WORKFLOWS[i & 1023]
            if floor.should_execute_step(wf, "step-003"):
                floor.on_step_result(wf, "step-003", 0.93)

    return run


def manager_run(manager: AutoHealManager) -> Callable[[int], None]:
    gate, report = manager.should_execute_step, manager.on_step_result

    def run(n: int) -> None:
        for i in range(n):
            wf = WORKFLOWS[i & 1023]
            if gate(wf, "step-003")[0]:
                report(wf, "step-003", OK)

    return run


def bare_spans() -> tuple[Callable[[int], None], object]:
    """Two SDK spans per step with the attributes the hooks' spans carry."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    tracer = provider.get_tracer("bench")
    attrs = {
        "autoheal.workflow.id": "",
        "autoheal.step.id": "step-003",
        "autoheal.state": "running",
        "autoheal.reason": "ok",
        "autoheal.allowed": True,
    }

    def run(n: int) -> None:
        for i in range(n):
            wf = WORKFLOWS[i & 1023]
            for name in ("autoheal.should_execute_step", "autoheal.on_step_result"):
                span = tracer.start_span(name, attributes={**attrs, "autoheal.workflow.id": wf})
                span.end()

    return run, provider


def otel_manager() -> tuple[AutoHealManager, object, object]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    manager = AutoHealManager(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return manager, tracer_provider, meter_provider


def measure(runs: dict[str, Callable[[int], None]], n: int, repeat: int) -> dict[str, float]:
    """Median µs per step of each run, the runs interleaved repetition by repetition."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            started = time.perf_counter()
            run(n)
            samples[name].append((time.perf_counter() - started) / n * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def line_bytes(data_dir: Path) -> float:
    sizes = [
        len(line)
        for path in sorted((data_dir / "audit").glob("*.jsonl"))
        for line in path.read_bytes().splitlines(keepends=True)
        if b'"kind":"gate"' in line or b'"kind":"result"' in line
    ]
    return statistics.mean(sizes) if sizes else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autoheal-bench-") as tmp:
        root = Path(tmp)
        jsonl = AutoHealManager(data_dir=root / "jsonl")
        assert jsonl.success_store is not None
        jsonl.remove_sink(jsonl.success_store)
        # The opt-in that holds an allowed gate back for its step's result (one write a step):
        # what the durable default (every decision written before its hook returns) costs.
        held_policy = PolicyConfig.from_dict({"audit": {"allowed_gates_with_result": True}})
        held = AutoHealManager(policy=held_policy, data_dir=root / "held")
        assert held.success_store is not None
        held.remove_sink(held.success_store)
        both = AutoHealManager(data_dir=root / "both")
        otel, tp, mp = otel_manager()
        spans, sp = bare_spans()
        floor = Floor(root / "floor.jsonl")
        figures = measure(
            {
                "floor": floor_run(floor),
                "jsonl": manager_run(jsonl),
                "jsonl, gates held": manager_run(held),
                "jsonl+sqlite": manager_run(both),
                "bare spans": spans,
                "otel": manager_run(otel),
            },
            args.number,
            args.repeat,
        )
        for manager in (jsonl, held, both, otel):
            manager.close()
        for provider in (tp, mp, sp):
            provider.shutdown()  # type: ignore[attr-defined]
        os.close(floor.fd)
        size = line_bytes(root / "jsonl")
        floor_size = statistics.mean(
            len(line) for line in (root / "floor.jsonl").read_bytes().splitlines(keepends=True)
        )
    f = figures
    print(
        f"audited step, jsonl        {f['jsonl']:7.2f} us  = {f['jsonl'] / f['floor']:.2f}x the floor ({f['floor']:.2f} us)"
    )
    held_s = f["jsonl, gates held"]
    print(
        f"  gates held (opt-in)      {held_s:7.2f} us  = {held_s / f['floor']:.2f}x the floor"
        f" (the durable default costs {f['jsonl'] / held_s:.2f}x it)"
    )
    print(
        f"audited step, jsonl+sqlite {f['jsonl+sqlite']:7.2f} us  = {f['jsonl+sqlite'] / f['floor']:.2f}x the floor"
    )
    print(
        f"step with the OTel SDK     {f['otel']:7.2f} us  = {f['otel'] / f['bare spans']:.2f}x two bare SDK spans ({f['bare spans']:.2f} us)"
    )
    print(f"bytes per audit line       {size:7.0f} B   (the floor's lines: {floor_size:.0f} B)")


if __name__ == "__main__":
    main()
