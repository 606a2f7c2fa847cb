"""Hot reload of the policy file: applied on the injected clock's cadence, bad edits contained."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autoheal_otel import AutoHealManager, EventKind, ExecutionState, PolicyConfig, PolicyError
from autoheal_otel.testing import FakeClock, InMemorySink

from .conftest import POST, TNF


def _write(path: Path, data: dict[str, object]) -> None:
    path.write_text(json.dumps(data))
    # Make sure the change is visible to a stat-based check even on coarse timestamps.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "auto_heal_policy.json"
    _write(path, {"breakers": {"workflow": {"failure_threshold": 10}}})
    return path


def test_valid_change_applies_after_the_interval(
    policy_file: Path, clock: FakeClock, sink: InMemorySink
) -> None:
    """A valid edit applies at the first hook call after check_interval_seconds, and is recorded."""
    manager = AutoHealManager(policy=policy_file, clock=clock, sinks=[sink])
    old_version = manager.policy.version
    _write(policy_file, {"breakers": {"workflow": {"failure_threshold": 2}}})
    clock.advance(4.9)
    manager.on_step_result("w", "s", POST)
    manager.on_step_result("w", "s", POST)
    assert manager.get_mode("w") is ExecutionState.RUNNING  # not re-checked yet
    clock.advance(0.2)
    manager.on_step_result("w", "s", POST)
    assert manager.policy.breakers.workflow.failure_threshold == 2
    assert manager.get_mode("w") is ExecutionState.QUARANTINED
    (reload,) = sink.of_kind(EventKind.POLICY_RELOAD)
    assert reload.details["previous_version"] == old_version
    assert reload.policy_version == manager.policy.version != old_version


@pytest.mark.parametrize(
    "content",
    ['{"confidence": {"normal_threshold": 3}}', "{ half a file", '{"confidnce": {}}', "[]"],
    ids=["out-of-range", "torn", "typo", "not-object"],
)
def test_invalid_edit_keeps_last_good_policy(
    policy_file: Path, clock: FakeClock, sink: InMemorySink, content: str
) -> None:
    """A bad edit never raises into a hook; the last good policy stays; one error is reported."""
    manager = AutoHealManager(policy=policy_file, clock=clock, sinks=[sink])
    good = manager.policy
    policy_file.write_text(content)
    for _ in range(3):
        clock.advance(6)
        assert manager.should_execute_step("w", "s")[0]
    assert manager.policy is good
    rejected = sink.of_kind(EventKind.POLICY_REJECTED)
    assert len(rejected) == 1
    assert str(policy_file) in rejected[0].message
    report = manager.get_status_report()
    assert report.last_policy_error is not None and str(policy_file) in report.last_policy_error
    # A later fix is picked up and clears the error.
    _write(policy_file, {"degraded": {"recovery_successes": 2}})
    clock.advance(6)
    manager.on_step_result("w", "s", TNF)
    assert manager.policy.degraded.recovery_successes == 2
    assert manager.get_status_report().last_policy_error is None


def test_deleted_file_keeps_policy(policy_file: Path, clock: FakeClock, sink: InMemorySink) -> None:
    """A deleted policy file is reported; decisions go on under the last good policy."""
    manager = AutoHealManager(policy=policy_file, clock=clock, sinks=[sink])
    policy_file.unlink()
    clock.advance(10)
    assert manager.should_execute_step("w", "s") == (True, "running")
    assert "missing" in sink.of_kind(EventKind.POLICY_REJECTED)[0].message


def test_unchanged_file_is_not_reparsed(
    policy_file: Path, clock: FakeClock, sink: InMemorySink
) -> None:
    """Touching the file without changing its bytes records nothing."""
    manager = AutoHealManager(policy=policy_file, clock=clock, sinks=[sink])
    _write(policy_file, json.loads(policy_file.read_text()))
    clock.advance(10)
    manager.should_execute_step("w", "s")
    assert not sink.of_kind(EventKind.POLICY_RELOAD)
    assert not sink.of_kind(EventKind.POLICY_REJECTED)


def test_reload_can_disable_itself(policy_file: Path, clock: FakeClock) -> None:
    """A reloaded policy with hot_reload.enabled false stops further checks."""
    manager = AutoHealManager(policy=policy_file, clock=clock)
    _write(policy_file, {"hot_reload": {"enabled": False}})
    clock.advance(6)
    manager.should_execute_step("w", "s")
    assert not manager.policy.hot_reload.enabled
    _write(policy_file, {"degraded": {"recovery_successes": 2}})
    clock.advance(60)
    manager.should_execute_step("w", "s")
    assert manager.policy.degraded.recovery_successes == 5


def test_initial_bad_file_raises(tmp_path: Path) -> None:
    """A bad policy at construction is an error the caller sees (nothing is running yet)."""
    path = tmp_path / "p.json"
    path.write_text('{"breakers": {"global": {"failure_threshold": -1}}}')
    with pytest.raises(PolicyError) as err:
        AutoHealManager(policy=path, clock=FakeClock())
    assert err.value.field == "breakers.global.failure_threshold"


def test_window_length_change_applies_to_live_windows(clock: FakeClock) -> None:
    """Shortening a window through update_policy expires old failures at the next read."""
    manager = AutoHealManager(clock=clock)
    for _ in range(9):
        manager.on_step_result("w", "s", POST)
    clock.advance(120)
    manager.update_policy(
        PolicyConfig.from_dict({"breakers": {"workflow": {"window_seconds": 60}}})
    )
    manager.on_step_result("w", "s", POST)
    assert manager.get_mode("w") is ExecutionState.RUNNING
    assert manager.get_status_report().workflows["w"].window.count == 1
