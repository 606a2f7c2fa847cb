"""Shared fixtures: a fake clock, an in-memory sink, and a manager wired to both."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from autoheal_otel import AutoHealManager, Outcome, PolicyConfig, StepResult
from autoheal_otel.testing import FakeClock, InMemorySink

#: Under CI (``CI=true``) every property test draws the same examples on every run, so a run
#: fails only for a change; run locally, each draws new ones, and a failure found so is kept
#: as an ``@example`` beside the test.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI") == "true",
)
settings.load_profile("ci")

OK = StepResult(outcome=Outcome.SUCCESS, confidence=0.95, second_best=0.2, validated=True)
TNF = StepResult(outcome=Outcome.TARGET_NOT_FOUND, confidence=0.41)
POST = StepResult(outcome=Outcome.POSTCONDITION_FAILED, confidence=0.9)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink() -> InMemorySink:
    return InMemorySink()


@pytest.fixture
def make_manager(clock: FakeClock, sink: InMemorySink) -> Iterator[Callable[..., AutoHealManager]]:
    made: list[AutoHealManager] = []

    def make(policy: Any = None, **kwargs: Any) -> AutoHealManager:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("sinks", [sink])
        manager = AutoHealManager(policy=policy, **kwargs)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.close()


@pytest.fixture
def manager(make_manager: Callable[..., AutoHealManager]) -> AutoHealManager:
    return make_manager()


def policy_with(**sections: Any) -> PolicyConfig:
    """Build a policy from partial sections given as dicts."""
    return PolicyConfig.from_dict(sections)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo run (through the installed `autoheal` command) that CLI tests read or copy."""
    from .cli_support import run

    data = tmp_path_factory.mktemp("demo-shared") / "demo-data"
    proc = run(["demo", "--no-live", "--data-dir", str(data)])
    assert proc.returncode == 0, proc.stderr
    return data


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real redis-server for the test session (skipped when it is not installed)."""
    from .redis_support import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()
