"""The brake: an operator's move reaches a robot running on the directory, and says so.

A real robot process runs under the shipped policy (the one a new user starts with); the real
``autoheal`` command moves its workflow from another process. No sleeps as assertions: every
wait is on a condition read from the audit log, bounded by a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from autoheal_otel import AutoHealManager, EventKind, ExecutionState
from autoheal_otel.analytics.replay import replay
from autoheal_otel.runtime._follow import parse_move
from autoheal_otel.runtime._tail import SegmentTail
from autoheal_otel.testing import FakeClock

from .cli_support import run
from .conftest import OK, POST

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "auto_heal_policy.json"

# A steady robot: one gate and one result per ~5 ms until its stdin closes. It prints its
# writer id once its first step is recorded.
ROBOT = """
import sys, threading
from autoheal_otel import AutoHealManager, StepResult
ok = StepResult(outcome="success", confidence=0.95, validated=True)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
with AutoHealManager(policy=sys.argv[2], data_dir=sys.argv[1]) as m:
    m.on_step_result("invoice", "click", ok)
    print(m.writer, flush=True)
    while not stop.wait(0.005):
        allowed, _ = m.should_execute_step("invoice", "click")
        if allowed:
            m.on_step_result("invoice", "click", ok)
"""


class Robot:
    """A robot process on a data directory (see ROBOT)."""

    def __init__(self, data_dir: Path, policy: Path = SHIPPED) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ROBOT, str(data_dir), str(policy)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.writer = self.proc.stdout.readline().strip()
        assert self.writer, self.proc.stderr.read() if self.proc.stderr else ""

    def stop(self) -> None:
        """End the robot (its stdin closes) and release its pipes."""
        proc = self.proc
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait(timeout=30)


@pytest.fixture
def robot(tmp_path: Path) -> Iterator[Robot]:
    bot = Robot(tmp_path)
    yield bot
    bot.stop()


def records(data_dir: Path, writer: str | None = None) -> list[dict[str, Any]]:
    """Return every whole record of the log (of one writer), in file order."""
    tail = SegmentTail(data_dir / "audit")
    return [r for w, r in tail.read() if writer is None or w == writer]


def when(rec: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(rec["ts"].replace("Z", "+00:00"))


def wait_for(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Return the condition's first truthy value, polling until the deadline."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        pause.wait(0.02)
    raise AssertionError("condition not met in time")


def gates_after(data_dir: Path, writer: str, instant: datetime) -> list[dict[str, Any]]:
    return [r for r in records(data_dir, writer) if r["kind"] == "gate" and when(r) > instant]


@pytest.mark.parametrize("state", ["paused", "quarantined"])
def test_a_running_robot_stops_within_a_second_of_force(
    tmp_path: Path, robot: Robot, state: str
) -> None:
    """`autoheal force` names the robot that applied it; no gate is allowed 1 s after it returns."""
    proc = run(
        ["force", "invoice", state, "--reason", "vendor outage", "--data-dir", str(tmp_path)]
    )
    returned = datetime.now(UTC)
    assert proc.returncode == 0, proc.stderr
    assert f"applied by 1 of 1 running: {robot.writer} (applied" in proc.stdout
    # The robot keeps asking: wait until it has asked for more than a second since.
    wait_for(
        lambda: any(
            when(g) > returned + timedelta(seconds=1.2)
            for g in gates_after(tmp_path, robot.writer, returned)
        )
    )
    late = [
        g
        for g in gates_after(tmp_path, robot.writer, returned + timedelta(seconds=1))
        if g["allowed"]
    ]
    assert late == []
    # Released: gates are allowed again within a second of the command's return.
    proc = run(["force", "invoice", "running", "--reason", "fixed", "--data-dir", str(tmp_path)])
    released = datetime.now(UTC)
    assert proc.returncode == 0, proc.stderr
    first = wait_for(
        lambda: [g for g in gates_after(tmp_path, robot.writer, released) if g["allowed"]]
    )[0]
    assert when(first) - released < timedelta(seconds=1)
    acks = [r for r in records(tmp_path, robot.writer) if r["kind"] == EventKind.ACK]
    assert [(a["previous_state"], a["state"], a["reason"]) for a in acks] == [
        ("running", state, "move.applied"),
        (state, "running", "move.applied"),
    ]


def test_the_log_never_contradicts_itself_after_a_move(tmp_path: Path, robot: Robot) -> None:
    """After the ack, the robot records its gates in the forced state; replay reproduces them."""
    proc = run(["force", "invoice", "paused", "--reason", "stop", "--data-dir", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    acked = wait_for(
        lambda: [r for r in records(tmp_path, robot.writer) if r["kind"] == EventKind.ACK]
    )[0]
    wait_for(lambda: len(gates_after(tmp_path, robot.writer, when(acked))) > 5)
    robot.stop()
    after = gates_after(tmp_path, robot.writer, when(acked))
    assert after and all(g["state"] == "paused" and not g["allowed"] for g in after)
    report = replay(tmp_path)
    assert report.matches, report.mismatches[:3]


def test_with_no_robot_running_the_command_says_so(tmp_path: Path) -> None:
    """A move with nobody running is recorded, and the command says it applies at the next start."""
    with AutoHealManager(data_dir=tmp_path) as m:
        m.on_step_result("invoice", "s", OK)
    proc = run(["force", "invoice", "paused", "--reason", "x", "--data-dir", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert "no robot is running on this directory" in proc.stdout
    proc = run(
        ["force", "invoice", "running", "--reason", "y", "--data-dir", str(tmp_path), "--json"]
    )
    delivery = json.loads(proc.stdout)["delivery"]
    assert delivery["running"] == [] and delivery["applied"] == {} and len(delivery["moves"]) == 1
    with AutoHealManager(data_dir=tmp_path) as m:  # the next start reads the move back
        assert m.get_mode("invoice") is ExecutionState.RUNNING


def test_a_hung_robot_is_named_and_the_command_fails(tmp_path: Path, robot: Robot) -> None:
    """A running robot that does not acknowledge in time makes the command exit 1, naming it."""
    os.kill(robot.proc.pid, signal.SIGSTOP)
    try:
        proc = run(
            [
                "force",
                "invoice",
                "paused",
                "--reason",
                "x",
                "--data-dir",
                str(tmp_path),
                "--wait",
                "0.5",
            ]
        )
    finally:
        os.kill(robot.proc.pid, signal.SIGCONT)
    assert proc.returncode == 1
    assert "NOT acknowledged within" in proc.stdout and robot.writer in proc.stderr
    # Once it runs again, it applies the move all the same.
    wait_for(lambda: [r for r in records(tmp_path, robot.writer) if r["kind"] == EventKind.ACK])


def test_a_killed_robot_is_not_waited_for(tmp_path: Path, robot: Robot) -> None:
    """kill -9 drops the robot's lease: the next command finds nobody running, at once."""
    robot.proc.kill()
    robot.proc.wait(timeout=30)
    proc = run(["force", "invoice", "paused", "--reason", "x", "--data-dir", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert "no robot is running" in proc.stdout


def test_resume_reaches_the_robot(tmp_path: Path, robot: Robot) -> None:
    """`autoheal resume` releases every paused workflow of a running robot, acknowledged."""
    run(["force", "invoice", "paused", "--reason", "x", "--data-dir", str(tmp_path)])
    proc = run(["resume", "--reason", "all clear", "--data-dir", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert "resumed 1 paused workflow(s) to running: invoice" in proc.stdout
    assert f"{robot.writer} (applied" in proc.stdout
    proc = run(["resume", "--reason", "again", "--data-dir", str(tmp_path)])
    assert proc.returncode == 1 and "nothing is paused" in proc.stderr


def test_no_wait_returns_without_delivery(tmp_path: Path, robot: Robot) -> None:
    """--no-wait records the move and prints no delivery line."""
    proc = run(
        ["force", "invoice", "paused", "--reason", "x", "--data-dir", str(tmp_path), "--no-wait"]
    )
    assert proc.returncode == 0, proc.stderr
    assert "applied by" not in proc.stdout and "no robot" not in proc.stdout
    wait_for(lambda: [r for r in records(tmp_path, robot.writer) if r["kind"] == EventKind.ACK])


# -- in one process, on the fake clock ---------------------------------------------------------


def test_a_manager_follows_another_writers_moves_under_the_default_policy(tmp_path: Path) -> None:
    """Two managers on one directory: the second's move reaches the first at its next look."""
    clock = FakeClock(start=datetime.now(UTC))
    robot = AutoHealManager(data_dir=tmp_path, clock=clock)
    robot.on_step_result("invoice", "s", POST)
    assert "follow" in robot.background_jobs()
    with AutoHealManager(data_dir=tmp_path, clock=clock) as operator:
        operator.force_transition("invoice", "quarantined", reason="ops", actor="ann")
    robot.run_background("follow")  # (or the thread's own look applied it first)
    assert robot.get_mode("invoice") is ExecutionState.QUARANTINED
    assert robot.get_state_info("invoice").actor == "ann"
    assert robot.run_background("follow") == 0  # each line is read once
    robot.close()


def test_moves_recorded_before_a_start_are_read_back_not_followed(tmp_path: Path) -> None:
    """A manager starting after a move restores it from the log; its follower skips that line."""
    with AutoHealManager(data_dir=tmp_path) as operator:
        operator.force_transition("invoice", "paused", reason="ops")
    m = AutoHealManager(data_dir=tmp_path)
    assert m.get_mode("invoice") is ExecutionState.PAUSED
    assert "follow" in m.background_jobs() and m.run_background("follow") == 0
    m.close()


@pytest.mark.parametrize(
    "record",
    [
        {
            "kind": "transition",
            "cause": "operator",
            "seq": "1",
            "ts": "2026-01-01T00:00:00Z",
            "workflow_id": "w",
            "state": "paused",
        },
        {
            "kind": "transition",
            "cause": "operator",
            "seq": 1,
            "ts": "yesterday",
            "workflow_id": "w",
            "state": "paused",
        },
        {
            "kind": "transition",
            "cause": "operator",
            "seq": 1,
            "ts": "2026-01-01T00:00:00Z",
            "workflow_id": "w",
            "state": "bogus",
        },
        {
            "kind": "transition",
            "cause": "operator",
            "seq": 1,
            "ts": "2026-01-01T00:00:00Z",
            "workflow_id": "w\x1b[2J",
            "state": "paused",
        },
        {
            "kind": "transition",
            "cause": "step_breaker",
            "seq": 1,
            "ts": "2026-01-01T00:00:00Z",
            "workflow_id": "w",
            "state": "degraded",
        },
        {"kind": "activation", "seq": 1, "ts": "2026-01-01T00:00:00Z", "artifact_version": 7},
    ],
    ids=["seq-text", "bad-ts", "bad-state", "control-id", "not-operator", "bad-version"],
)
def test_a_malformed_move_is_skipped(record: dict[str, Any]) -> None:
    """A line that is not a well-formed move is no move (never raised)."""
    assert parse_move("w1", record) is None


def test_control_characters_in_a_moves_text_are_neutralised() -> None:
    """A reason with terminal escapes is kept printable."""
    move = parse_move(
        "w1",
        {
            "kind": "transition",
            "cause": "operator",
            "seq": 3,
            "ts": "2026-01-01T00:00:00Z",
            "workflow_id": "w",
            "state": "paused",
            "message": "\x1b]0;T\x07x",
            "actor": "a" * 5000,
        },
    )
    assert move is not None and move.reason.isprintable() and len(move.actor) <= 1003


def test_the_tail_reads_whole_lines_once_and_skips_planted_files(tmp_path: Path) -> None:
    """Torn last lines wait, own and symlinked segments are never read, bad lines are counted."""
    audit = tmp_path / "audit"
    audit.mkdir()
    seg = audit / "audit-20260101-other.1.aa-0001.jsonl"
    seg.write_bytes(b'{"kind":"gate","seq":1}\nnot json\n{"kind":"ga')
    (audit / "audit-20260101-me.1.bb-0001.jsonl").write_bytes(b'{"kind":"gate","seq":9}\n')
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(b'{"kind":"gate","seq":77}\n')
    (audit / "audit-20260101-evil.1.cc-0001.jsonl").symlink_to(outside)
    (audit / "audit-*.jsonl").write_bytes(b'{"kind":"gate","seq":55}\n')
    tail = SegmentTail(audit, exclude="me.1.bb")
    assert [r["seq"] for _, r in tail.read()] == [1]
    assert tail.skipped == 1
    with seg.open("ab") as f:
        f.write(b'te","seq":2}\n')
    assert [(w, r["seq"]) for w, r in tail.read()] == [("other.1.aa", 2)]
    assert tail.read() == []


def test_versions_rollback_reaches_the_robot(demo_data: Path, tmp_path: Path) -> None:
    """`autoheal versions rollback` is applied (and acknowledged) by a robot running on the
    directory: its results carry the restored version from then on."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    bot = Robot(data)
    try:
        proc = run(["versions", "rollback", "--reason", "bad model", "--data-dir", str(data)])
        assert proc.returncode == 0, proc.stderr
        assert f"applied by 1 of 1 running: {bot.writer} (applied" in proc.stdout
        acks = [r for r in records(data, bot.writer) if r["kind"] == EventKind.ACK]
        assert acks and acks[-1]["details"]["move_kind"] == "activation"
        label = acks[-1]["details"]["move_target"]
        assert label.startswith("s")
    finally:
        bot.stop()
