"""Threads: 8 executors on shared and separate workflows; invariants hold, nothing deadlocks."""

from __future__ import annotations

import threading

from autoheal_otel import AutoHealManager, EventKind, ExecutionState, Outcome, StepResult
from autoheal_otel.testing import FakeClock, InMemorySink

from .conftest import policy_with


def test_eight_threads_keep_counts_and_order() -> None:
    """Every result is counted once, events stay in seq order, and every state is legal."""
    clock = FakeClock()
    sink = InMemorySink()
    manager = AutoHealManager(
        policy=policy_with(
            breakers={
                "workflow": {"failure_threshold": 1000},
                "global": {"failure_threshold": 100_000},
            }
        ),
        clock=clock,
        sinks=[sink],
    )
    barrier = threading.Barrier(8)
    per_thread = 300
    fail = StepResult(outcome=Outcome.ERROR)
    ok = StepResult(outcome=Outcome.SUCCESS, confidence=0.9, validated=True)

    def work(i: int) -> None:
        workflow = "shared" if i % 2 else f"own{i}"
        barrier.wait()
        for n in range(per_thread):
            allowed, _ = manager.should_execute_step(workflow, f"s{n % 3}")
            if allowed:
                manager.on_step_result(workflow, f"s{n % 3}", fail if n % 4 == 0 else ok)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "deadlock"
    report = manager.get_status_report()
    assert report.workflows["shared"].executions == 4 * per_thread
    assert report.workflows["shared"].failures == 4 * per_thread // 4
    assert report.global_.window.count == 8 * per_thread // 4
    assert [e.seq for e in sink.events] == list(range(1, len(sink.events) + 1))
    assert len(sink.of_kind(EventKind.GATE)) == 8 * per_thread
    assert all(wf.state in ExecutionState for wf in report.workflows.values())


def test_threads_tripping_breakers_concurrently_quarantine_once() -> None:
    """Many threads failing one workflow at once produce exactly one quarantine transition."""
    sink = InMemorySink()
    manager = AutoHealManager(clock=FakeClock(), sinks=[sink])
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(20):
            manager.on_step_result("w", "s", StepResult(outcome=Outcome.POSTCONDITION_FAILED))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    quarantines = [e for e in sink.transitions if e.state is ExecutionState.QUARANTINED]
    assert len(quarantines) == 1
    assert manager.get_mode("w") is ExecutionState.QUARANTINED


def test_flushing_while_threads_decide_writes_every_line_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """flush() from one thread while others decide: no audit line lost or written twice."""
    import collections

    import orjson

    manager = AutoHealManager(data_dir=tmp_path)
    stop = threading.Event()
    ok = StepResult(outcome=Outcome.SUCCESS)

    def hooks(k: int) -> None:
        for _ in range(10000):
            manager.should_execute_step(f"w{k}", "s")
            manager.on_step_result(f"w{k}", "s", ok)

    def flusher() -> None:
        while not stop.is_set():
            manager.flush()

    threads = [threading.Thread(target=hooks, args=(k,)) for k in range(3)]
    flushing = threading.Thread(target=flusher)
    flushing.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    flushing.join()
    manager.close()
    seqs = [
        orjson.loads(line)["seq"]
        for path in sorted((tmp_path / "audit").glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]
    doubled = [s for s, n in collections.Counter(seqs).items() if n > 1]
    assert doubled == [] and sorted(seqs) == list(range(1, max(seqs) + 1))
    assert len(seqs) >= 3 * 10000 * 2
