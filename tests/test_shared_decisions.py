"""Several processes on one data directory decide as one (``audit.shared_decisions``).

Managers on one directory each take a turn per input (a lock on the directory) and first
feed what the others recorded since. The tests hold the promise from two sides: the managers
together decide exactly what one manager fed the same steps would have decided, and the log
they wrote replays to the same decisions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoheal_otel import AutoHealManager, ExecutionState, Outcome, PolicyConfig, StepResult
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.analytics.replay import replay
from autoheal_otel.testing import FakeClock
from tests.cli_support import run

POLICY = {
    "breakers": {
        "step": {"consecutive_target_not_found": 3},
        "workflow": {"failure_threshold": 5, "window_seconds": 60},
        "global": {"failure_threshold": 12, "window_seconds": 60},
    },
    "degraded": {"recovery_successes": 2, "step_delay_ms": 0},
    "quarantine": {"probe_enabled": True, "probe_cooldown_seconds": 30},
}

OUTCOMES = [Outcome.SUCCESS, Outcome.TARGET_NOT_FOUND, Outcome.POSTCONDITION_FAILED]


def _result(outcome: Outcome) -> StepResult:
    return StepResult(outcome=outcome, validated=outcome is Outcome.SUCCESS)


def _transitions(data_dir: Path) -> list[tuple[str, str, str]]:
    with AuditAnalytics(data_dir) as db:
        rows = db.sql(
            "SELECT workflow_id, previous_state, state FROM audit WHERE kind = 'transition'"
            " ORDER BY ts, seq, writer"
        )
    return [(r["workflow_id"], r["previous_state"], r["state"]) for r in rows]


def test_two_processes_three_failures_each_quarantine_at_the_fifth(tmp_path: Path) -> None:
    """3 + 3 failures against a threshold of 5: one quarantine, at the 5th; then both refuse."""
    policy = PolicyConfig.from_dict(POLICY)
    clock = FakeClock()
    a = AutoHealManager(policy, tmp_path, clock=clock, shared_decisions=True)
    b = AutoHealManager(policy, tmp_path, clock=clock, shared_decisions=True)
    fail = _result(Outcome.POSTCONDITION_FAILED)
    answers = []
    for i in range(3):
        for manager in (a, b):
            clock.advance(1)
            allowed, _ = manager.should_execute_step("invoice", f"step-{i}")
            answers.append(allowed)
            if allowed:
                manager.on_step_result("invoice", f"step-{i}", fail)
    assert answers == [True, True, True, True, True, False]
    assert a.get_mode("invoice") is b.get_mode("invoice") is ExecutionState.QUARANTINED
    a.close()
    b.close()
    assert _transitions(tmp_path) == [("invoice", "running", "quarantined")]
    with AuditAnalytics(tmp_path) as db:
        failures = db.sql("SELECT count(*) AS n FROM audit WHERE kind='result'")[0]["n"]
    assert failures == 5
    report = replay(tmp_path)
    assert report.matches and report.unshared_writers == []


def test_alone_each_process_counts_only_its_own(tmp_path: Path) -> None:
    """Without shared decisions the same run stays RUNNING at 6 failures (what pabot did)."""
    policy = PolicyConfig.from_dict(POLICY)
    clock = FakeClock()
    a = AutoHealManager(policy, tmp_path, clock=clock)
    b = AutoHealManager(policy, tmp_path, clock=clock)
    for i in range(3):
        for manager in (a, b):
            clock.advance(1)
            assert manager.should_execute_step("invoice", f"step-{i}")[0]
            manager.on_step_result("invoice", f"step-{i}", _result(Outcome.POSTCONDITION_FAILED))
    assert a.get_mode("invoice") is ExecutionState.RUNNING
    a.close()
    b.close()
    # Replay cannot say what each knew: it says so, naming both writers.
    report = replay(tmp_path)
    assert report.unshared_writers == [sorted([a.writer, b.writer])]
    done = run(["replay", "--data-dir", str(tmp_path)])
    assert "decided at the same time without shared decisions" in done.stdout


step_plan = st.lists(
    st.tuples(
        st.integers(0, 2),  # which process
        st.sampled_from(["invoice", "payroll"]),
        st.integers(0, 1),  # which step
        st.sampled_from(OUTCOMES),
        st.sampled_from([0.5, 2.0, 20.0]),  # seconds before it
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=step_plan)
def test_processes_together_decide_as_one_manager_would(tmp_path_factory, plan) -> None:  # type: ignore[no-untyped-def]
    """Any interleaving of three shared managers gives one manager's gates and transitions,
    and the log they wrote replays to the same decisions."""
    policy = PolicyConfig.from_dict(POLICY)
    shared_dir = tmp_path_factory.mktemp("shared")
    alone_dir = tmp_path_factory.mktemp("alone")
    clock = FakeClock()
    managers = [
        AutoHealManager(policy, shared_dir, clock=clock, shared_decisions=True) for _ in range(3)
    ]
    alone = AutoHealManager(policy, alone_dir, clock=clock)
    for who, workflow, step, outcome, gap in plan:
        clock.advance(gap)
        step_id = f"step-{step}"
        together = managers[who].should_execute_step(workflow, step_id)
        by_one = alone.should_execute_step(workflow, step_id)
        assert together[0] == by_one[0]
        if together[0]:
            managers[who].on_step_result(workflow, step_id, _result(outcome))
            alone.on_step_result(workflow, step_id, _result(outcome))
        for m in managers:
            for wf in ("invoice", "payroll"):
                assert m.get_mode(wf) is alone.get_mode(wf)
    for m in (*managers, alone):
        m.close()
    assert _transitions(shared_dir) == _transitions(alone_dir)
    report = replay(shared_dir)
    assert report.matches, report.mismatches


def test_planted_lines_are_skipped_and_a_good_one_still_counts(tmp_path: Path) -> None:
    """A hostile segment beside the robots: malformed decisions never reach the machine,
    never stop the catch-up, and a well-formed failure in it still counts."""
    policy = PolicyConfig.from_dict(POLICY)
    clock = FakeClock()
    manager = AutoHealManager(policy, tmp_path, clock=clock, shared_decisions=True)
    stamp = clock.now().isoformat().replace("+00:00", "Z")
    base = {"schema_version": 1, "ts": stamp, "writer": "evil.1.abcdef"}
    lines = [
        {**base, "seq": 1, "kind": "gate", "workflow_id": "in\x00voice", "step_id": "s"},
        {**base, "seq": 2, "kind": "result", "workflow_id": "invoice", "step_id": "s",
         "outcome": "bogus"},
        {**base, "seq": 3, "kind": "transition", "workflow_id": "invoice", "state": "nope",
         "cause": "workflow_breaker"},
        {**base, "seq": "4", "kind": "result", "workflow_id": "invoice", "step_id": "s",
         "outcome": "postcondition_failed"},
        {**base, "seq": 5, "kind": "result", "workflow_id": "invoice", "step_id": "s",
         "outcome": "postcondition_failed"},
    ]  # fmt: skip
    segment = tmp_path / "audit" / "audit-20260101-evil.1.abcdef-0001.jsonl"
    segment.write_text(
        "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines) + "{torn",
        encoding="utf-8",
    )
    # The writer took no turn: bump the counter as a turn of its would have.
    (tmp_path / "audit" / ".decide.lock").write_bytes((99).to_bytes(8, "little"))
    clock.advance(1)
    assert manager.should_execute_step("invoice", "s")[0]
    report = manager.get_status_report()
    assert report.workflows["invoice"].window.count == 1  # seq 5 only: the rest is malformed
    assert set(report.workflows) == {"invoice"}
    manager.close()


def _plant(audit: Path, writer: str, lines: list[dict[str, object]]) -> None:
    """Write another writer's segment (compact JSON, as writers write it)."""
    segment = audit / f"audit-20260101-{writer}-0001.jsonl"
    with segment.open("a", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps({"schema_version": 1, "writer": writer, **line},
                               separators=(",", ":")) + "\n")  # fmt: skip
    # The writer took turns: bump the counter as its turn did.
    lock = audit / ".decide.lock"
    count = int.from_bytes(lock.read_bytes()[:8].ljust(8, b"\0"), "little")
    lock.write_bytes((count + 1).to_bytes(8, "little"))


def _at(clock: FakeClock, seconds: float) -> str:
    return (clock.now() + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def test_another_writers_rollback_and_restore_are_taken_over(tmp_path: Path) -> None:
    """A workflow another process rolled back (a regression) comes back with its restore:
    this process never stays in ROLLBACK, refusing every step."""
    clock = FakeClock()
    manager = AutoHealManager(PolicyConfig.from_dict(POLICY), tmp_path, clock=clock,
                              shared_decisions=True)  # fmt: skip
    _plant(tmp_path / "audit", "other.1.aaaaaa", [
        {"seq": 1, "ts": _at(clock, 0.1), "kind": "transition", "workflow_id": "invoice",
         "previous_state": "running", "state": "rollback", "cause": "regression"},
        {"seq": 2, "ts": _at(clock, 0.2), "kind": "transition", "workflow_id": "invoice",
         "previous_state": "rollback", "state": "degraded", "cause": "restore_ok",
         "message": "restored s000001"},
    ])  # fmt: skip
    clock.advance(1)
    assert manager.get_mode("invoice") is ExecutionState.DEGRADED
    assert manager.should_execute_step("invoice", "s")[0]
    manager.close()


def test_records_of_several_files_are_taken_in_the_order_they_were_decided(
    tmp_path: Path,
) -> None:
    """A quarantine in one file and an operator's later release in another (whose name sorts
    first): the release is applied last, as it was decided, whatever the files' order."""
    clock = FakeClock()
    manager = AutoHealManager(PolicyConfig.from_dict(POLICY), tmp_path, clock=clock,
                              shared_decisions=True)  # fmt: skip
    _plant(tmp_path / "audit", "zzz.2.bbbbbb", [
        {"seq": 1, "ts": _at(clock, 0.1), "kind": "transition", "workflow_id": "invoice",
         "previous_state": "running", "state": "quarantined", "cause": "workflow_breaker"},
        {"seq": 2, "ts": _at(clock, 0.2), "kind": "transition", "workflow_id": "other",
         "previous_state": "running", "state": "degraded", "cause": "some_new_cause"},
    ])  # fmt: skip
    _plant(tmp_path / "audit", "aaa.1.cccccc", [
        {"seq": 1, "ts": _at(clock, 0.5), "kind": "transition", "workflow_id": "invoice",
         "previous_state": "quarantined", "state": "running", "cause": "operator",
         "actor": "ops", "message": "fixed"},
    ])  # fmt: skip
    clock.advance(1)
    assert manager.should_execute_step("invoice", "s")[0]  # released, after the quarantine
    assert manager.get_mode("other") is ExecutionState.RUNNING  # an unknown cause: skipped
    manager.close()


def test_a_closed_manager_answers_reads_and_refuses_decisions(tmp_path: Path) -> None:
    """After close(), a read answers from what the process knew; a hook raises
    ManagerClosedError; the directory's lock is free for the others."""
    from autoheal_otel import ManagerClosedError

    clock = FakeClock()
    a = AutoHealManager(
        PolicyConfig.from_dict(POLICY), tmp_path, clock=clock, shared_decisions=True
    )
    b = AutoHealManager(
        PolicyConfig.from_dict(POLICY), tmp_path, clock=clock, shared_decisions=True
    )
    a.close()
    assert a.get_mode("invoice") is ExecutionState.RUNNING
    with pytest.raises(ManagerClosedError):
        a.should_execute_step("invoice", "s")
    assert b.should_execute_step("invoice", "s")[0]
    b.close()


def test_an_interrupted_wait_for_the_lock_leaves_nothing_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal that interrupts the wait for the directory's lock (Ctrl-C) leaves the turn
    not taken: the next input takes the lock and catches up as usual, from any thread."""
    import threading

    from autoheal_otel.runtime import _shared

    turns = _shared.SharedTurns(tmp_path)
    real = _shared.fcntl.flock
    calls = {"n": 0}

    def interrupted(fd: int, op: int) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        real(fd, op)

    monkeypatch.setattr(_shared.fcntl, "flock", interrupted)
    with pytest.raises(KeyboardInterrupt):
        turns.begin()
    other: list[bool] = []
    thread = threading.Thread(target=lambda: (other.append(turns.begin()), turns.end()))
    thread.start()
    thread.join(timeout=10)
    assert other == [True]  # another thread took a whole turn (it was not left nested)
    turns.close()


def test_a_file_system_without_locks_is_refused_with_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared decisions need working file locks (some network file systems have none): the
    manager refuses to start, naming data_dir and how to turn them off."""
    import errno

    from autoheal_otel import InvalidInputError
    from autoheal_otel.runtime import _shared

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(_shared.fcntl, "flock", no_locks)
    with pytest.raises(InvalidInputError, match="shared=off"):
        AutoHealManager(data_dir=tmp_path, shared_decisions=True)


def test_a_manager_that_fails_to_start_leaves_no_lock_file_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm restart that fails (here: made to) closes the directory's lock file again."""
    import os

    from autoheal_otel import InvalidInputError
    from autoheal_otel.runtime import _build

    def failing(*args: object) -> None:
        raise InvalidInputError("data_dir", str(tmp_path), "must be readable")

    monkeypatch.setattr(_build, "open_data_dir", failing)
    with pytest.raises(InvalidInputError):
        AutoHealManager(data_dir=tmp_path, shared_decisions=True)
    fds = os.listdir("/proc/self/fd")
    held = [
        os.readlink(f"/proc/self/fd/{fd}") for fd in fds if os.path.exists(f"/proc/self/fd/{fd}")
    ]
    assert not any(path.endswith(".decide.lock") for path in held)


def test_the_follower_looks_without_the_lock_until_a_file_grew(tmp_path: Path) -> None:
    """The follower's look takes the directory's lock only when some file has new bytes."""
    from autoheal_otel.runtime._tail import SegmentTail

    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / ".decide.lock").write_bytes(b"")
    tail = SegmentTail(audit, exclude="me.1.aaaaaa")
    tail.skip_existing()
    assert not tail.grew()
    _plant(audit, "other.2.bbbbbb", [{"seq": 1, "ts": "2026-01-01T00:00:00Z", "kind": "gate",
                                      "workflow_id": "w", "step_id": "s"}])  # fmt: skip
    assert tail.grew()
    tail.read()
    assert not tail.grew()


def test_a_look_on_demand_under_shared_decisions_takes_one_turn(tmp_path: Path) -> None:
    """Regression: run_background("follow") read other writers' decisions outside a turn, and
    the catch-up their feeding started read again under the same lock: it hung for good."""
    import threading

    clock = FakeClock(start=datetime.now(UTC))
    a = AutoHealManager(data_dir=tmp_path, clock=clock, shared_decisions=True)
    b = AutoHealManager(data_dir=tmp_path, clock=clock, shared_decisions=True)
    b.should_execute_step("w", "s")
    b.on_step_result("w", "s", StepResult(outcome=Outcome.ERROR))
    done: list[int] = []
    look = threading.Thread(target=lambda: done.append(a.run_background("follow")), daemon=True)
    look.start()
    look.join(30)
    # (a hung look holds the directory's lock: closing either manager would hang too)
    assert not look.is_alive(), "the look on demand hung"
    assert done == [0]  # a gate and a result are decisions to take, not moves
    assert a.get_status_report().workflows["w"].failures == 1  # b's failure, taken in
    a.close()
    b.close()
