"""The global scope across processes that share a data directory (read from the audit log)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from autoheal_otel import AutoHealManager, EventKind, ExecutionState
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.testing import FakeClock, InMemorySink

from .conftest import POST, policy_with

SHARED = {"breakers": {"global": {"shared_across_processes": True, "sync_interval_seconds": 10}}}

OTHER = """
import sys
from autoheal_otel import AutoHealManager, PolicyConfig, StepResult
policy = PolicyConfig.from_json(sys.argv[2])
with AutoHealManager(policy=policy, data_dir=sys.argv[1]) as m:
    for i in range(int(sys.argv[3])):
        m.on_step_result(f"other{i}", "s", StepResult(outcome="postcondition_failed"))
"""


def catch_up(clock: FakeClock, at_least: float) -> None:
    """Advance the fake clock past the other process's real timestamps (however slow it was)."""
    behind = (datetime.now(UTC) - clock.now()).total_seconds() + 1
    clock.advance(max(at_least, behind))


def _other_process(data_dir: Path, failures: int, policy_json: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", OTHER, str(data_dir), policy_json, str(failures)],
        timeout=120,
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_the_shared_log_is_never_queried_on_the_hooks_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A due sync only wakes the sync thread: the DuckDB query runs on another thread."""
    import threading

    policy = policy_with(**SHARED)
    clock = FakeClock(start=datetime.now(UTC))
    m = AutoHealManager(policy=policy, data_dir=tmp_path, clock=clock)
    threads: list[str] = []
    query = AuditAnalytics.query

    def watched(db: AuditAnalytics, name: str, **params: Any) -> list[dict[str, Any]]:
        if name == "global_window":  # the query of the shared global figures
            threads.append(threading.current_thread().name)
        return query(db, name, **params)

    monkeypatch.setattr(AuditAnalytics, "query", watched)
    catch_up(clock, 10)
    m.should_execute_step("w", "s")
    assert m.run_background("sync")
    m.close()
    assert threads == ["autoheal-shared-sync"]


def test_failures_of_all_processes_count(tmp_path: Path) -> None:
    """30 failures here and 20 in another process reach the global limit of 50 at the next sync."""
    policy = policy_with(**SHARED)
    clock = FakeClock(start=datetime.now(UTC))
    sink = InMemorySink()
    m = AutoHealManager(policy=policy, data_dir=tmp_path, clock=clock, sinks=[sink])
    _other_process(tmp_path, 30, policy.dump_json())  # runs while this manager is up
    for i in range(20):
        m.on_step_result(f"mine{i}", "s", POST)
    assert m.get_mode("mine0") is ExecutionState.RUNNING  # 20 < 50 in this process alone
    catch_up(clock, 10)
    m.should_execute_step("mine0", "s")  # due: wakes the sync thread, answers at once
    assert m.run_background("sync")
    allowed, reason = m.should_execute_step("mine0", "s")
    assert not allowed and "global.failure_window: 50" in reason
    assert m.get_mode("mine19") is ExecutionState.PAUSED
    assert sink.of_kind(EventKind.GLOBAL)[0].rule.count == 50  # type: ignore[union-attr]
    m.close()


def test_restart_counts_every_writer(tmp_path: Path) -> None:
    """A manager starting on a shared directory restores the global window of every writer."""
    policy = policy_with(breakers={"global": {"failure_threshold": 5}})
    _other_process(tmp_path, 4, policy.dump_json())
    m = AutoHealManager(policy=policy, data_dir=tmp_path, clock=FakeClock(start=datetime.now(UTC)))
    assert m.get_status_report().global_.window.count == 4
    m.close()


def test_a_pause_in_another_process_is_followed(tmp_path: Path) -> None:
    """When another process paused everything, this one pauses at its next sync."""
    policy = policy_with(
        breakers={"global": {"failure_threshold": 5, "shared_across_processes": True}}
    )
    clock = FakeClock(start=datetime.now(UTC))
    m = AutoHealManager(policy=policy, data_dir=tmp_path, clock=clock)
    _other_process(tmp_path, 5, policy.dump_json())
    assert m.should_execute_step("mine", "s")[0]
    catch_up(clock, 11)
    m.should_execute_step("mine", "s")
    assert m.run_background("sync")
    assert not m.should_execute_step("mine", "s")[0]
    m.close()


def test_off_by_default(tmp_path: Path) -> None:
    """Without shared_across_processes, other processes' failures do not count here."""
    policy = policy_with(breakers={"global": {"failure_threshold": 5}})
    clock = FakeClock(start=datetime.now(UTC))
    m = AutoHealManager(policy=policy, data_dir=tmp_path, clock=clock)
    _other_process(tmp_path, 4, policy.dump_json())
    m.on_step_result("mine", "s", POST)
    catch_up(clock, 60)
    m.should_execute_step("mine", "s")
    assert "sync" not in m.background_jobs() and m.run_background("sync") == 0
    assert m.should_execute_step("mine", "s")[0]
    m.close()


def test_a_running_manager_follows_autoheal_force(tmp_path: Path) -> None:
    """`autoheal force` from another process reaches a running manager at its next sync."""
    import shutil

    policy = policy_with(**SHARED)
    clock = FakeClock(start=datetime.now(UTC))
    m = AutoHealManager(policy=policy, data_dir=tmp_path, clock=clock)
    m.on_step_result("invoice", "s", POST)
    exe = shutil.which("autoheal", path=str(Path(sys.executable).parent))
    assert exe is not None
    for state in ("quarantined", "running"):
        proc = subprocess.run(
            [
                exe,
                "force",
                "invoice",
                state,
                "--reason",
                f"ops {state}",
                "--actor",
                "ann",
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        catch_up(clock, 10)
        m.should_execute_step("invoice", "s")  # wakes the sync thread
        assert m.run_background("sync")
        assert m.get_mode("invoice").value == state
        assert m.get_state_info("invoice").actor == "ann"
    m.close()
    from autoheal_otel.analytics import AuditAnalytics

    with AuditAnalytics(tmp_path) as db:  # recorded once, by the CLI, not again by the manager
        moves = db.query("transitions", workflow_id="invoice")
    assert [(t["state"], t["actor"]) for t in moves] == [("quarantined", "ann"), ("running", "ann")]
