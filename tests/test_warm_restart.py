"""Warm restart: a new manager on the same data directory continues where the last one stopped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from autoheal_otel import AutoHealManager, ExecutionState
from autoheal_otel.testing import FakeClock

from .conftest import OK, POST, TNF, policy_with
from .test_audit_log import lines

S = ExecutionState


def restart(data_dir: Path, clock: FakeClock, **kwargs: object) -> AutoHealManager:
    return AutoHealManager(data_dir=data_dir, clock=clock, **kwargs)  # type: ignore[arg-type]


def test_nine_failures_restart_one_more_quarantines(tmp_path: Path, clock: FakeClock) -> None:
    """9 failures, a restart, 1 more failure -> QUARANTINED (windows survive the restart)."""
    with restart(tmp_path, clock) as m:
        for _ in range(9):
            m.on_step_result("w", "s", POST)
            clock.advance(10)
    with restart(tmp_path, clock) as m:
        assert m.get_status_report().workflows["w"].window.count == 9
        m.on_step_result("w", "s", POST)
        assert m.get_mode("w") is S.QUARANTINED


def test_restored_failures_expire_on_time(tmp_path: Path, clock: FakeClock) -> None:
    """Failures restored from the log still expire one window after they happened."""
    with restart(tmp_path, clock) as m:
        for _ in range(9):
            m.on_step_result("w", "s", POST)
    clock.advance(300)
    with restart(tmp_path, clock) as m:
        clock.advance(300)
        m.on_step_result("w", "s", POST)
        assert m.get_mode("w") is S.RUNNING
        assert m.get_status_report().workflows["w"].window.count == 1


def test_quarantine_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    """A quarantined workflow is still blocked after a restart, with its reason and since."""
    with restart(tmp_path, clock) as m:
        for _ in range(10):
            m.on_step_result("w", "s", POST)
        since = m.get_state_info("w").since
    clock.advance(3600)
    with restart(tmp_path, clock) as m:
        info = m.get_state_info("w")
        assert info.state is S.QUARANTINED and info.since == since
        allowed, reason = m.should_execute_step("w", "s")
        assert not allowed and "workflow.failure_window" in reason
        m.force_transition("w", S.RUNNING, reason="fixed")
    with restart(tmp_path, clock) as m:
        assert m.get_mode("w") is S.RUNNING
        m.on_step_result("w", "s", POST)  # the release cleared the window, also after restart
        assert m.get_status_report().workflows["w"].window.count == 1


def test_step_streak_survives(tmp_path: Path, clock: FakeClock) -> None:
    """2 consecutive misses, a restart, 1 more miss -> DEGRADED."""
    with restart(tmp_path, clock) as m:
        m.on_step_result("w", "s", TNF)
        m.on_step_result("w", "s", TNF)
    with restart(tmp_path, clock) as m:
        m.on_step_result("w", "s", TNF)
        assert m.get_mode("w") is S.DEGRADED


def test_degraded_restarts_degraded_with_a_fresh_recovery_streak(
    tmp_path: Path, clock: FakeClock
) -> None:
    """DEGRADED survives; the recovery streak restarts at zero (the workflow must prove itself)."""
    with restart(tmp_path, clock) as m:
        for _ in range(3):
            m.on_step_result("w", "s", TNF)
        for _ in range(4):
            m.on_step_result("w", "s", OK)
    with restart(tmp_path, clock) as m:
        assert m.get_mode("w") is S.DEGRADED
        m.on_step_result("w", "s", OK)
        assert m.get_mode("w") is S.DEGRADED
        for _ in range(4):
            m.on_step_result("w", "s", OK)
        assert m.get_mode("w") is S.RUNNING


def test_global_pause_survives(tmp_path: Path, clock: FakeClock) -> None:
    """A global pause is still in force after a restart, for old and new workflows."""
    policy = policy_with(breakers={"global": {"failure_threshold": 4}})
    with restart(tmp_path, clock, policy=policy) as m:
        for i in range(4):
            m.on_step_result(f"w{i}", "s", POST)
        assert m.get_mode("w0") is S.PAUSED
    with restart(tmp_path, clock, policy=policy) as m:
        assert m.get_mode("w0") is S.PAUSED
        assert m.get_mode("brand-new") is S.PAUSED
        assert m.get_status_report().global_.health == "critical"
        m.resume_all(reason="checked")
    with restart(tmp_path, clock, policy=policy) as m:
        assert m.get_mode("w1") is S.RUNNING
        m.on_step_result("w1", "s", POST)  # the resume cleared the global window too
        assert m.get_mode("w1") is S.RUNNING


def test_sequence_continues_after_restart(tmp_path: Path, clock: FakeClock) -> None:
    """A restarted manager numbers its decisions after the last recorded one."""
    with restart(tmp_path, clock) as m:
        m.on_step_result("w", "s", OK)
    with restart(tmp_path, clock) as m:
        m.on_step_result("w", "s", OK)
    seqs = [r["seq"] for r in lines(tmp_path)]
    assert sorted(seqs) == list(range(1, 7))  # two sessions of start, result, stop


CRASHER = """
import os, sys
from autoheal_otel import AutoHealManager, StepResult
m = AutoHealManager(data_dir=sys.argv[1])
for _ in range(9):
    m.on_step_result("w", "s", StepResult(outcome="postcondition_failed"))
os._exit(1)  # killed: no close, no flush
"""


def test_restart_after_a_killed_process(tmp_path: Path) -> None:
    """A process dies without closing; a new one (real clock) still sees its 9 failures."""
    proc = subprocess.run([sys.executable, "-c", CRASHER, str(tmp_path)], timeout=60, check=False)
    assert proc.returncode == 1
    with AutoHealManager(data_dir=tmp_path) as m:
        assert m.get_status_report().workflows["w"].window.count == 9
        m.on_step_result("w", "s", POST)
        assert m.get_mode("w") is S.QUARANTINED


def test_a_workflow_that_never_changed_state_is_running_since_its_first_record(
    tmp_path: Path,
) -> None:
    """Regression: `autoheal status` showed such a workflow running since the moment the
    command ran, with reason "restored" (and /status moved it every refresh)."""
    clock = FakeClock()
    first = clock.now()
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        m.on_step_result("invoice", "s", OK)
    clock.advance(600)
    reader = AutoHealManager(data_dir=tmp_path, clock=clock, read_only=True)
    info = reader.get_state_info("invoice")
    reader.close()
    assert info.since == first and info.reason == "running since its first record"
