"""Deterministic replay of a recorded log, and what-if analysis with another policy."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from autoheal_otel import AutoHealManager, ExecutionState, Outcome, PolicyConfig, StepResult
from autoheal_otel.analytics.replay import replay
from autoheal_otel.testing import FakeClock

from .conftest import OK, POST, TNF, policy_with

RESULTS = [
    OK,
    OK,
    OK,
    TNF,
    POST,
    StepResult(outcome=Outcome.SUCCESS, confidence=0.6, validated=True),
    StepResult(outcome=Outcome.SUCCESS, confidence=0.9, second_best=0.88, validated=True),
]


def record(data_dir: Path, seed: int, policy: PolicyConfig | None = None) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    with AutoHealManager(policy=policy, data_dir=data_dir, clock=clock) as m:
        for i in range(400):
            wid = rng.choice(["a", "b", "c"])
            step = rng.choice(["s1", "s2"])
            clock.advance(rng.choice([0.5, 3, 20, 60]))
            allowed, _ = m.should_execute_step(wid, step)
            if allowed:
                m.on_step_result(wid, step, rng.choice(RESULTS))
            if i % 97 == 0 and m.get_mode(wid) is not ExecutionState.RUNNING:
                m.force_transition(wid, ExecutionState.RUNNING, reason="operator check")
            if i == 200:
                m.set_artifact_version(wid, "v2", reason="learned")


def test_replay_reproduces_every_decision(tmp_path: Path) -> None:
    """With the recorded policy, replay makes the same transitions and gate answers."""
    record(tmp_path, seed=7)
    report = replay(tmp_path)
    assert report.records > 800
    assert report.recorded, "the recording should contain transitions"
    assert report.matches, report.mismatches[:3]
    assert report.recorded == report.replayed


def test_replay_detects_a_tampered_log(tmp_path: Path) -> None:
    """A transition that the inputs do not justify shows up as a mismatch."""
    record(tmp_path, seed=3)
    segment = next((tmp_path / "audit").glob("*.jsonl"))
    text = segment.read_text().replace('"cause":"step_breaker"', '"cause":"workflow_breaker"', 1)
    segment.write_text(text)
    assert not replay(tmp_path).matches


def test_replay_places_each_transition_at_the_decision_that_made_it(tmp_path: Path) -> None:
    """The same transitions at another time are a mismatch, not only different transitions.

    The log says the workflow was quarantined 49 s after its tenth failure; replay
    quarantines it at that failure.
    """
    clock = FakeClock()
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        for _ in range(10):
            clock.advance(1.0)
            m.on_step_result("w", "s", POST)
        assert m.get_mode("w") is ExecutionState.QUARANTINED
    assert replay(tmp_path).matches
    segment = next((tmp_path / "audit").glob("*.jsonl"))
    lines = segment.read_text().splitlines(keepends=True)
    [at] = [i for i, line in enumerate(lines) if '"kind":"transition"' in line]
    lines[at] = lines[at].replace('"ts":"2026-01-01T00:00:10Z"', '"ts":"2026-01-01T00:00:59Z"', 1)
    assert lines[at] != segment.read_text().splitlines(keepends=True)[at]
    segment.write_text("".join(lines))
    report = replay(tmp_path)
    assert not report.matches
    assert report.recorded == report.replayed  # the same transitions, counted
    [mismatch] = report.mismatches
    assert mismatch["recorded"][-1] != mismatch["replayed"][-1]  # ... at another time


def test_what_if_reports_what_another_policy_would_do(tmp_path: Path) -> None:
    """A stricter what-if policy reports more quarantines and blocked steps than recorded."""
    record(tmp_path, seed=11)
    strict = policy_with(breakers={"workflow": {"failure_threshold": 3}})
    report = replay(tmp_path, policy=strict)
    assert report.what_if
    assert report.replayed["quarantined"] > report.recorded.get("quarantined", 0)
    assert report.replayed_blocked_gates > report.recorded_blocked_gates
    lenient = replay(
        tmp_path,
        policy=policy_with(
            breakers={
                "step": {"consecutive_target_not_found": 50, "consecutive_low_confidence": 50}
            }
        ),
    )
    assert lenient.replayed.get("degraded", 0) < report.recorded.get("degraded", 0)


def test_replay_applies_recorded_policy_changes(tmp_path: Path) -> None:
    """A policy applied mid-run is applied at the same point of the replay."""
    clock = FakeClock()
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        for _ in range(2):
            m.on_step_result("w", "s", POST)
        m.update_policy(policy_with(breakers={"workflow": {"failure_threshold": 3}}))
        m.on_step_result("w", "s", POST)
        assert m.get_mode("w") is ExecutionState.QUARANTINED
    report = replay(tmp_path)
    assert report.matches and report.replayed["quarantined"] == 1


def test_replay_takes_the_policy_a_restarted_process_started_with(tmp_path: Path) -> None:
    """A process restarted with another policy decides under it; replay follows it there.

    The first process would quarantine at 4 failures; the second, started with the default
    policy (10), does not at 6, though the restart carries the first 3 into its window.
    """
    clock = FakeClock()
    strict = policy_with(breakers={"workflow": {"failure_threshold": 4}})
    with AutoHealManager(strict, data_dir=tmp_path, clock=clock) as m:
        for _ in range(3):
            m.on_step_result("w", "s", POST)
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        for _ in range(3):
            m.on_step_result("w", "s", POST)
        assert m.get_mode("w") is ExecutionState.RUNNING  # 6 of 10
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    assert report.replayed == report.recorded == {}


def test_replay_counts_a_streak_back_only_within_the_restore_horizon(tmp_path: Path) -> None:
    """A restart reads a step's streak back only within ``audit.restore_horizon_seconds``.

    Two target-not-found results, then two hours, a restart and one more: the restarted
    process counts 1 of 3 (the older two are past the one-hour horizon) and stays RUNNING;
    replay counts the same at the restart instead of carrying the 2 over.
    """
    clock = FakeClock()
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        for _ in range(2):
            m.on_step_result("w", "s", TNF)
        m.on_step_result("w", "other", OK)  # the workflow is seen within the horizon
        clock.advance(2 * 3600.0)
        m.on_step_result("w", "other", OK)
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        m.on_step_result("w", "s", TNF)
        assert m.get_mode("w") is ExecutionState.RUNNING
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    assert report.replayed == report.recorded == {}


def test_replay_reads_a_streak_back_with_each_restart_horizon(tmp_path: Path) -> None:
    """A restart with a longer horizon counts back results an earlier restart left out.

    Two target-not-found results 100 s apart; restart A (1 h horizon) reads 1 of them back,
    restart B (2 h horizon) both, so one more degrades the workflow (3 in a row).
    """
    clock = FakeClock()
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        m.on_step_result("w", "s", TNF)
        clock.advance(100.0)
        m.on_step_result("w", "s", TNF)
    clock.advance(3550.0)
    with AutoHealManager(data_dir=tmp_path, clock=clock):  # restart A
        clock.advance(50.0)
    wide = policy_with(audit={"restore_horizon_seconds": 7200})
    with AutoHealManager(wide, data_dir=tmp_path, clock=clock) as m:  # restart B
        m.on_step_result("w", "s", TNF)
        assert m.get_mode("w") is ExecutionState.DEGRADED
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    assert report.replayed == report.recorded == {"degraded": 1}


def test_replay_reads_a_restart_back_as_of_when_it_read_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restore that takes 5 s: the horizon counts from when it read the log, not from its
    session record, in replay as live (the older result is 3,597 s old then, 3,602 s after).
    """
    import autoheal_otel.analytics.restore as restore

    clock = FakeClock()
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        m.on_step_result("w", "s", TNF)
        clock.advance(10.0)
        m.on_step_result("w", "s", TNF)
    clock.advance(3587.0)
    read = restore.load_restored_state

    def slow(*args: Any, **kwargs: Any) -> Any:
        state = read(*args, **kwargs)
        clock.advance(5.0)  # a long log takes a while to read
        return state

    monkeypatch.setattr(restore, "load_restored_state", slow)
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        monkeypatch.setattr(restore, "load_restored_state", read)
        m.on_step_result("w", "s", TNF)
        assert m.get_mode("w") is ExecutionState.DEGRADED  # both older results counted
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    assert report.replayed == report.recorded == {"degraded": 1}


def test_another_writers_short_session_is_not_a_restart(tmp_path: Path) -> None:
    """An operator's short session beside a running robot (``autoheal force``, a snapshot)
    starts with its own policy; the robot, which never restarted, keeps deciding under its own,
    and replay keeps it too.
    """
    clock = FakeClock()
    strict = policy_with(breakers={"workflow": {"failure_threshold": 4}})
    robot = AutoHealManager(strict, data_dir=tmp_path, clock=clock)
    for _ in range(2):
        clock.advance(1.0)
        robot.on_step_result("w", "s", POST)
    clock.advance(1.0)
    with AutoHealManager(data_dir=tmp_path, clock=clock) as operator:  # the default policy
        operator.force_transition("other", ExecutionState.PAUSED, reason="maintenance")
    for _ in range(2):
        clock.advance(1.0)
        robot.on_step_result("w", "s", POST)
    assert robot.get_mode("w") is ExecutionState.QUARANTINED
    robot.close()
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    assert report.replayed == report.recorded == {"paused": 1, "quarantined": 1}


def test_a_move_acknowledged_at_its_own_instant_is_replayed(tmp_path: Path) -> None:
    """The robot follows an operator's move at the instant it was made: its ack then sorts
    before the move (a lower seq at the same time). Replay still applies the move, once:
    before, it waited for an ack already passed and left the move out."""
    clock = FakeClock()
    robot = AutoHealManager(data_dir=tmp_path, clock=clock)
    for _ in range(3):  # the robot's seq runs ahead of the operator's
        robot.should_execute_step("w", "s")
        robot.on_step_result("w", "s", OK)
    with AutoHealManager(data_dir=tmp_path, clock=clock) as operator:
        operator.force_transition("other", ExecutionState.PAUSED, reason="maintenance")
    robot.run_background("follow")  # (or the follower's thread did): the ack, at that instant
    clock.advance(1.0)
    robot.should_execute_step("other", "s")
    assert robot.get_mode("other") is ExecutionState.PAUSED
    robot.close()
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    assert report.replayed == report.recorded == {"paused": 1}
    assert report.gate_mismatches == 0


def test_replay_counts_bad_lines_and_reports_progress_at_once(tmp_path: Path) -> None:
    """A torn line is counted as skipped, and progress is reported before the log is parsed."""
    record(tmp_path, seed=2)
    segment = next((tmp_path / "audit").glob("*.jsonl"))
    with segment.open("ab") as handle:
        handle.write(b'{"schema_version": 1, "ts": "2026-')  # a writer died mid-line
    calls: list[tuple[int, int]] = []
    report = replay(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert report.skipped_lines == 1
    assert report.matches
    assert calls[0][0] == 0 and calls[0][1] >= report.records
    assert calls[-1] == (report.records, report.records)


def test_details_nested_past_the_recursion_limit_do_not_break_replay(tmp_path: Path) -> None:
    """Regression: a result whose details nest 100,000 arrays deep made replay raise
    RecursionError; now those details read as empty and the log replays."""
    with AutoHealManager(data_dir=tmp_path) as m:
        m.on_step_result("w", "s", OK)
    seg = next((tmp_path / "audit").glob("audit-*.jsonl"))
    deep = "[" * 100_000 + "]" * 100_000
    line = (
        '{"schema_version":1,"ts":"2030-01-01T00:00:00Z","seq":999,"kind":"result",'
        '"writer":"x.1.aa","workflow_id":"w","step_id":"s","state":"running","reason":"ok",'
        '"outcome":"success","details":{"d":' + deep + "}}\n"
    )
    (tmp_path / "audit" / "audit-20300101-x.1.aa-0001.jsonl").write_text(line)
    report = replay(tmp_path)
    assert report.records >= 2 and seg.exists()
