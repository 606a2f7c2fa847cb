"""The timed half-open probe of a quarantine: one trial step, released or re-quarantined."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from autoheal_otel import AutoHealManager, EventKind, ExecutionState
from autoheal_otel.testing import FakeClock, InMemorySink

from .conftest import OK, POST, policy_with

S = ExecutionState


@pytest.fixture
def quarantined(make_manager: Callable[..., AutoHealManager]) -> AutoHealManager:
    manager = make_manager(
        policy_with(
            quarantine={
                "probe_enabled": True,
                "probe_cooldown_seconds": 100,
                "probe_backoff_factor": 2,
                "probe_max_cooldown_seconds": 300,
                "probe_timeout_seconds": 30,
            }
        )
    )
    for _ in range(10):
        manager.on_step_result("w", "s", POST)
    assert manager.get_mode("w") is S.QUARANTINED
    return manager


def test_probe_is_off_by_default(manager: AutoHealManager, clock: FakeClock) -> None:
    """Without the policy switch, a quarantine never admits a step, however long it lasts."""
    for _ in range(10):
        manager.on_step_result("w", "s", POST)
    clock.advance(100_000)
    assert not manager.should_execute_step("w", "s")[0]


def test_one_probe_after_cooldown_then_release(
    quarantined: AutoHealManager, clock: FakeClock, sink: InMemorySink
) -> None:
    """After the cool-down exactly one step is admitted; its success releases to DEGRADED."""
    clock.advance(99)
    assert not quarantined.should_execute_step("w", "s")[0]
    clock.advance(1)
    allowed, reason = quarantined.should_execute_step("w", "s")
    assert allowed and reason.startswith("quarantine probe")
    assert not quarantined.should_execute_step("w", "other")[0]
    quarantined.on_step_result("w", "s", OK)
    assert quarantined.get_mode("w") is S.DEGRADED
    assert sink.transitions[-1].cause == "probe_success"
    quarantined.on_step_result("w", "s", POST)  # the window was cleared by the release
    assert quarantined.get_mode("w") is S.DEGRADED


def test_failed_probe_grows_the_cooldown_up_to_the_cap(
    quarantined: AutoHealManager, clock: FakeClock, sink: InMemorySink
) -> None:
    """Each failed probe doubles the cool-down (100, 200, 300 capped, 300)."""
    waits = []
    for _ in range(4):
        waited = 0
        while not quarantined.should_execute_step("w", "s")[0]:
            clock.advance(10)
            waited += 10
        waits.append(waited)
        quarantined.on_step_result("w", "s", POST)
        assert quarantined.get_mode("w") is S.QUARANTINED
    assert waits == [100, 200, 300, 300]
    failed = [e for e in sink.of_kind(EventKind.PROBE) if e.reason == "probe.failed"]
    assert len(failed) == 4


def test_silent_probe_expires_and_counts_as_failed(
    quarantined: AutoHealManager, clock: FakeClock, sink: InMemorySink
) -> None:
    """A probe with no result within probe_timeout_seconds is failed at the next gate."""
    clock.advance(100)
    assert quarantined.should_execute_step("w", "s")[0]
    clock.advance(31)
    assert not quarantined.should_execute_step("w", "s")[0]
    assert [e.reason for e in sink.of_kind(EventKind.PROBE)] == ["probe.admitted", "probe.expired"]


def test_exactly_one_probe_under_concurrent_callers(
    quarantined: AutoHealManager, clock: FakeClock
) -> None:
    """8 threads asking at once after the cool-down: exactly one is admitted."""
    clock.advance(100)
    barrier = threading.Barrier(8)
    admitted: list[bool] = []
    lock = threading.Lock()

    def ask(i: int) -> None:
        barrier.wait()
        allowed, _ = quarantined.should_execute_step("w", f"s{i}")
        with lock:
            admitted.append(allowed)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(admitted) == [False] * 7 + [True]
