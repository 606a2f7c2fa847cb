"""Policies that validate always run: upper bounds on every number, and a policy path that
never blocks a hook."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from autoheal_otel import AutoHealManager, EventKind, PolicyConfig, PolicyError
from autoheal_otel.analytics import iter_records
from autoheal_otel.policy._sections import MAX_COUNT, MAX_SECONDS
from autoheal_otel.testing import FakeClock, InMemorySink

from .conftest import POST


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"breakers": {"workflow": {"window_seconds": 1e11}}}, "breakers.workflow.window_seconds"),
        ({"audit": {"restore_horizon_seconds": 1e11}}, "audit.restore_horizon_seconds"),
        (
            {"breakers": {"workflow": {"failure_threshold": 2**64}}},
            "breakers.workflow.failure_threshold",
        ),
        ({"degraded": {"step_delay_ms": 2**40}}, "degraded.step_delay_ms"),
        ({"quarantine": {"probe_backoff_factor": 1e300}}, "quarantine.probe_backoff_factor"),
        (
            {"workflows": {"x": {"breakers": {"step": {"window_failure_threshold": 2**63}}}}},
            "workflows.x.breakers.step.window_failure_threshold",
        ),
    ],
    ids=["window", "horizon", "threshold", "delay", "backoff", "override"],
)
def test_numbers_past_their_bound_are_refused(data: dict[str, Any], field: str) -> None:
    """Regression: 1e11 s windows and 2**64 thresholds validated, then a restart raised
    OverflowError or orjson dropped the session record; now the field and value are named."""
    with pytest.raises(PolicyError) as err:
        PolicyConfig.from_dict(data)
    assert err.value.field == field
    assert "less than or equal" in str(err.value)


def _at_the_bounds() -> PolicyConfig:
    big = {"window_seconds": MAX_SECONDS, "failure_threshold": MAX_COUNT}
    return PolicyConfig.from_dict(
        {
            "breakers": {"workflow": big, "global": {**big, "sync_interval_seconds": MAX_SECONDS}},
            "audit": {"restore_horizon_seconds": MAX_SECONDS},
            "degraded": {"step_delay_ms": MAX_COUNT, "recovery_successes": MAX_COUNT},
        }
    )


def test_policy_at_its_bounds_runs_restarts_and_is_recorded(tmp_path: Path) -> None:
    """A policy with every bound at its maximum restarts on an existing log and is recorded."""
    policy = _at_the_bounds()
    clock = FakeClock()
    with AutoHealManager(policy=policy, data_dir=tmp_path, clock=clock) as m:
        m.on_step_result("w", "s", POST)
    clock.advance(60)
    with AutoHealManager(policy=policy, data_dir=tmp_path, clock=clock) as again:
        assert again.get_status_report().sink_errors == {}
    sessions = [r for r in iter_records(tmp_path) if r["kind"] == "session"]
    recorded = [r["details"]["policy"] for r in sessions if "policy" in r["details"]]
    assert len(recorded) == 2 and recorded[0] == policy.to_dict()


def test_policy_path_replaced_by_a_fifo_never_blocks_a_hook(tmp_path: Path) -> None:
    """Regression: a FIFO at the policy path made the next reload poll block the hook forever;
    now the poll refuses it, keeps the last good policy and records a rejection."""
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"breakers": {"workflow": {"failure_threshold": 7}}}))
    clock, sink = FakeClock(), InMemorySink()
    manager = AutoHealManager(policy=path, clock=clock, sinks=[sink])
    path.unlink()
    os.mkfifo(path)
    clock.advance(10)
    done = threading.Event()
    answer: list[tuple[bool, str]] = []

    def hook() -> None:
        answer.append(manager.should_execute_step("w", "s"))
        done.set()

    worker = threading.Thread(target=hook, daemon=True)
    worker.start()
    try:
        assert done.wait(10), "should_execute_step blocked on the FIFO"
    finally:
        if not done.is_set():  # release the blocked reader so the test process can end
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
    assert answer == [(True, "running")]
    assert manager.policy.breakers.workflow.failure_threshold == 7
    rejected = sink.of_kind(EventKind.POLICY_REJECTED)
    assert len(rejected) == 1 and "not a regular file" in (rejected[0].message or "")
    manager.close()


def test_loading_a_fifo_is_a_clear_error(tmp_path: Path) -> None:
    """Loading a policy from a FIFO fails at once with an error, instead of waiting for a writer."""
    path = tmp_path / "policy.json"
    os.mkfifo(path)
    errors: list[BaseException] = []
    done = threading.Event()

    def load() -> None:
        try:
            PolicyConfig.load(path)
        except PolicyError as exc:
            errors.append(exc)
        done.set()

    threading.Thread(target=load, daemon=True).start()
    try:
        assert done.wait(10), "PolicyConfig.load blocked on the FIFO"
    finally:
        if not done.is_set():
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    assert len(errors) == 1 and "not a regular file" in str(errors[0])
