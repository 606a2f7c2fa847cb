"""The pure core: one machine for live hooks, restart and replay; defects it fixed stay fixed."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from autoheal_otel import AutoHealManager, EventKind, ExecutionState
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.analytics.regression import check_regression
from autoheal_otel.analytics.replay import replay
from autoheal_otel.core._transitions import TRANSITIONS, Reset
from autoheal_otel.sim import SimExecutor, SimWorkflow
from autoheal_otel.testing import FakeClock, InMemorySink

from .conftest import OK, POST, policy_with

S = ExecutionState
WORKFLOW = SimWorkflow.of("invoice", "name", "amount", "date", "vendor", "submit", "confirm")


def test_records_outside_the_hooks_carry_no_hook_span(tmp_path: Path) -> None:
    """Regression: activation and policy records carried the span ids of the last hook."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    sink = InMemorySink()
    with AutoHealManager(clock=FakeClock(), tracer_provider=provider, sinks=[sink]) as m:
        m.should_execute_step("w", "s")  # a hook's span right before each record
        m.update_policy(policy_with(breakers={"workflow": {"failure_threshold": 3}}))
        m.should_execute_step("w", "s")
        m.set_artifact_version("w", "v1", reason="learned")
        m.should_execute_step("w", "s")
        m.activate_artifact_version("v2", reason="learned")
    gate = sink.of_kind(EventKind.GATE)[0]
    assert gate.trace_id is not None and gate.span_id is not None
    records = sink.of_kind(EventKind.ACTIVATION) + sink.of_kind(EventKind.POLICY_RELOAD)
    assert len(records) == 3
    for record in records:
        assert (record.trace_id, record.span_id) == (None, None), record.kind


def test_check_regression_agrees_with_the_live_rule_after_a_rollback(tmp_path: Path) -> None:
    """Regression: after an automatic rollback the SQL called the bad set active and said fail."""
    clock = FakeClock()
    manager = AutoHealManager(data_dir=tmp_path, clock=clock)
    sim = SimExecutor(manager, tmp_path, [WORKFLOW], seed=3)
    sim.run("invoice", 4)
    sim.degrade_prototypes("invoice", fraction=0.5, noise=1.5, reason="learned")
    sim.run("invoice", 2)
    status = manager.get_status_report().workflows["invoice"]
    manager.close()
    assert list(status.versions)[-1] == "s000001", "the known-good set is active again"
    verdict = check_regression(tmp_path, "invoice", manager.policy.rollback)
    assert verdict.active_version == "s000001" and verdict.previous_version == "s000002"
    assert verdict.active_executions == status.versions["s000001"]
    assert verdict.verdict == "pass"
    assert replay(tmp_path).matches


def test_replay_reproduces_an_operator_rollback(tmp_path: Path) -> None:
    """Regression: replay failed on a log holding a forced rollback (it needed a store)."""
    clock = FakeClock()
    manager = AutoHealManager(data_dir=tmp_path, clock=clock)
    sim = SimExecutor(manager, tmp_path, [WORKFLOW], seed=3)
    sim.run("invoice", 2)
    manager.force_transition("invoice", S.ROLLBACK, reason="bad labels")
    assert manager.get_mode("invoice") is S.DEGRADED
    sim.run("invoice", 2)
    manager.close()
    report = replay(tmp_path)
    assert report.matches, report.mismatches[:3]
    assert report.replayed["rollback"] == report.recorded["rollback"] == 1


def test_replay_matches_after_a_warm_restart_and_a_global_pause(tmp_path: Path) -> None:
    """Regression: a restart rebuilt workflows alphabetically, so a global pause replayed in
    another order and replay reported a false mismatch."""
    clock = FakeClock()
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        for wid in ("zeta", "omega", "beta", "alpha"):
            m.should_execute_step(wid, "s")
    clock.advance(1)
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        for wid in ("zeta", "mid", "alpha"):
            for _ in range(10):
                clock.advance(1)
                m.on_step_result(wid, "s", POST)
        assert m.get_status_report().global_.paused
        assert m.get_mode("beta") is S.PAUSED and m.get_mode("omega") is S.PAUSED
    report = replay(tmp_path)
    assert report.recorded["paused"] == 2
    assert report.matches, report.mismatches[:3]


def test_replay_reproduces_probes_and_restarts(tmp_path: Path) -> None:
    """Probes, a policy reload and a restart in the middle replay to the same decisions."""
    clock = FakeClock()
    policy = policy_with(quarantine={"probe_enabled": True, "probe_cooldown_seconds": 30})
    with AutoHealManager(policy=policy, data_dir=tmp_path, clock=clock) as m:
        for _ in range(10):
            clock.advance(1)
            m.on_step_result("w", "s", POST)
        clock.advance(31)
        assert m.should_execute_step("w", "s")[0]  # the probe
        m.on_step_result("w", "s", POST)  # fails: the cool-down backs off
    clock.advance(5)
    with AutoHealManager(policy=policy, data_dir=tmp_path, clock=clock) as m:
        assert m.get_mode("w") is S.QUARANTINED
        clock.advance(31)
        assert m.should_execute_step("w", "s")[0]
        m.on_step_result("w", "s", OK)
        assert m.get_mode("w") is not S.QUARANTINED
    report = replay(tmp_path)
    assert report.matches, report.mismatches[:3]


def test_window_resets_are_declared_once(tmp_path: Path) -> None:
    """The SQL reset views select exactly the transitions whose edge declares the reset."""
    clock = FakeClock()
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        for _ in range(10):
            m.on_step_result("w", "s", POST)
        m.force_transition("w", S.DEGRADED, reason="fixed")
        m.force_transition("w", S.PAUSED, reason="hold")
    with AuditAnalytics(tmp_path) as db:
        resets = db.sql("SELECT count(*) AS n FROM audit_resets")[0]["n"]
        transitions = db.sql(
            "SELECT state, cause FROM audit_events WHERE kind = 'transition' ORDER BY seq"
        )
    expected = sum(
        1
        for t in transitions
        if any(
            Reset.WORKFLOW_WINDOW in e.resets
            for e in TRANSITIONS
            if e.cause == t["cause"] and e.target == t["state"]
        )
    )
    assert resets == expected == 1


def test_a_meter_without_a_tracer_still_decides_and_measures() -> None:
    """Regression: with metrics but no tracing, every hook raised on a missing span."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    with AutoHealManager(clock=FakeClock(), meter_provider=MeterProvider([reader])) as m:
        assert m.should_execute_step("w", "s") == (True, "running")
        m.on_step_result("w", "s", OK)
    data = reader.get_metrics_data()
    assert data is not None
    names = {
        metric.name
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    assert "autoheal.hook.duration" in names


SESSION = """
import os, random, sys
from datetime import datetime
from autoheal_otel import AutoHealManager, ExecutionState, PolicyConfig, StepResult
from autoheal_otel.testing import FakeClock
data_dir, seed, start = sys.argv[1], int(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
policy = PolicyConfig.from_dict({
    "breakers": {"workflow": {"failure_threshold": 4, "window_seconds": 120},
                 "global": {"failure_threshold": 9, "window_seconds": 120}},
    "quarantine": {"probe_enabled": True, "probe_cooldown_seconds": 20},
})
rng = random.Random(seed)
clock = FakeClock(start=start)
m = AutoHealManager(policy=policy, data_dir=data_dir, clock=clock)
outcomes = ["success"] * 6 + ["target_not_found", "postcondition_failed", "error"]
for i in range(120):
    clock.advance(rng.choice([0.5, 2, 5, 15]))
    wid = rng.choice(["alpha", "zeta", "mid", "beta"])
    if m.should_execute_step(wid, "s")[0]:
        m.on_step_result(wid, "s", StepResult(outcome=rng.choice(outcomes), validated=True))
    if i % 40 == 39:
        m.resume_all(reason="operator sweep")
    if i % 50 == 25 and m.get_mode(wid) is not ExecutionState.RUNNING:
        m.force_transition(wid, "running", reason="checked by hand")
print(clock.now().isoformat())
os._exit(0)  # like kill -9: no close, no session stop
"""


def test_replay_matches_across_killed_restarts(tmp_path: Path) -> None:
    """Five sessions, each dying without closing, with pauses, probes and operator moves in
    between: replay reproduces every decision of the whole log."""
    import subprocess
    import sys
    from datetime import datetime, timedelta

    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    for seed in range(5):
        proc = subprocess.run(
            [sys.executable, "-c", SESSION, str(tmp_path), str(seed), start.isoformat()],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        start = datetime.fromisoformat(proc.stdout.strip()) + timedelta(seconds=3)
    report = replay(tmp_path)
    assert report.records > 500
    assert sum(report.recorded.values()) > 10, "the workload should move workflows around"
    assert report.recorded["paused"] > 0 and report.recorded["quarantined"] > 0
    assert report.matches, report.mismatches[:3]


def test_a_clean_result_that_rolls_a_degraded_workflow_back_counts_no_recovery(
    tmp_path: Path,
) -> None:
    """The result that completes a recovery streak can also be the one whose version fails.

    The regression rolls the workflow back (and the store restores the known-good set); the
    recovery is not counted on top of it. It used to be, from the state read before the
    judgment: the hook raised ``no 'recovery' transition from 'rollback'``, the rollback's
    records were lost and the workflow stayed in ROLLBACK.
    """
    from autoheal_otel import Outcome, PolicyConfig, StepResult
    from autoheal_otel.versioning import FileComponent, VersionedStore

    clock = FakeClock()
    sink = InMemorySink()
    policy = PolicyConfig.from_dict(
        {"rollback": {"min_executions": 5}, "degraded": {"recovery_successes": 2}}
    )
    store = VersionedStore(tmp_path, [FileComponent("model")], clock=clock)
    m = AutoHealManager(policy, data_dir=tmp_path, clock=clock, store=store, sinks=[sink])
    ok = StepResult(outcome=Outcome.SUCCESS, confidence=0.95, validated=True)
    tnf = StepResult(outcome=Outcome.TARGET_NOT_FOUND)
    m.snapshot_artifacts("w", "good", known_good=True)
    for result in [ok] * 6 + [None] + [tnf] * 3 + [ok, ok]:  # None: a worse version
        clock.advance(1.0)
        if result is None:
            m.snapshot_artifacts("w", "worse")
        else:
            m.on_step_result("w", "s", result)
    moves = [(e.previous_state, e.state, e.cause) for e in sink.transitions]
    S = ExecutionState
    assert moves == [
        (S.RUNNING, S.DEGRADED, "step_breaker"),
        (S.DEGRADED, S.ROLLBACK, "regression"),
        (S.ROLLBACK, S.DEGRADED, "restore_ok"),
    ]
    assert m.get_mode("w") is S.DEGRADED
    m.close()
    assert replay(tmp_path).matches


def test_what_an_input_did_before_it_raised_is_published(tmp_path: Path) -> None:
    """An input that raises part-way has its events published: the log holds every change."""
    import threading

    from autoheal_otel import PolicyConfig
    from autoheal_otel.core._ledger import Ledger
    from autoheal_otel.runtime._publisher import Publisher
    from autoheal_otel.runtime._runner import Scaffold
    from autoheal_otel.semconv import Reason

    sink, clock, publisher = InMemorySink(), FakeClock(), Publisher()
    publisher.add(sink)
    anchor = (clock.monotonic(), clock.now())
    ledger = Ledger(PolicyConfig(), "w1", anchor)
    scaffold = Scaffold(clock.monotonic, clock.now, publisher, None, threading.Lock(), anchor)

    def feed(_w: object, _s: object, now: float, ts: object, trace: object, events: list) -> None:
        ledger.emit(events, EventKind.SESSION, ts, trace, None, None, None,
                    reason=Reason.SESSION_START.value, message="part-way")  # fmt: skip
        raise RuntimeError("input failed after a change")

    run = scaffold.bind(None, "test", feed)
    try:
        run(None, None)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the input's error must reach the caller")
    assert [e.message for e in sink.events] == ["part-way"]
