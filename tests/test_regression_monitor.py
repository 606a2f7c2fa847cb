"""The regression monitor: version against version, with a proper test for small samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoheal_otel import AutoHealManager, PolicyConfig
from autoheal_otel.analytics.regression import (
    check_regression,
    two_proportion_p_value,
    wilson_interval,
)
from autoheal_otel.testing import FakeClock

from .conftest import OK, POST, policy_with

LENIENT = policy_with(
    breakers={"workflow": {"failure_threshold": 1000}, "global": {"failure_threshold": 1000}}
)


def run_versions(data_dir: Path, outcomes: dict[str, tuple[int, int]]) -> None:
    """Record, per version in order, (successes, failures)."""
    with AutoHealManager(policy=LENIENT, data_dir=data_dir, clock=FakeClock()) as m:
        for version, (ok, bad) in outcomes.items():
            m.set_artifact_version("w", version, reason="test")
            for i in range(ok + bad):
                m.on_step_result("w", "s", OK if i < ok else POST)


@pytest.mark.parametrize(
    ("outcomes", "verdict"),
    [
        ({"v1": (19, 1), "v2": (9, 11)}, "fail"),
        ({"v1": (19, 1), "v2": (18, 2)}, "pass"),
        ({"v1": (19, 1), "v2": (3, 2)}, "inconclusive"),
        ({"v1": (4, 0), "v2": (3, 1)}, "inconclusive"),
        ({"v1": (10, 0), "v2": (8, 2)}, "pass"),  # 20 points, but 10 vs 10 is not significant
        ({"v1": (20, 0)}, "inconclusive"),
    ],
    ids=["clear-drop", "same", "too-few-active", "tiny", "drop-not-significant", "one-version"],
)
def test_verdicts(tmp_path: Path, outcomes: dict[str, tuple[int, int]], verdict: str) -> None:
    """Fail needs both the drop in points and significance; small samples are inconclusive."""
    run_versions(tmp_path, outcomes)
    result = check_regression(tmp_path, "w", PolicyConfig().rollback)
    assert result.verdict == verdict, result.reason
    if len(outcomes) == 2:
        assert (result.previous_version, result.active_version) == ("v1", "v2")


def test_evidence_is_reported(tmp_path: Path) -> None:
    """A failed verdict carries both rates, sample sizes, intervals and the p-value."""
    run_versions(tmp_path, {"v1": (19, 1), "v2": (9, 11)})
    r = check_regression(tmp_path, "w", PolicyConfig().rollback)
    assert (
        r.previous_executions,
        r.previous_successes,
        r.active_executions,
        r.active_successes,
    ) == (20, 19, 20, 9)
    assert r.drop_points == pytest.approx(50.0)
    assert r.p_value is not None and r.p_value < 0.01
    assert r.active_interval is not None and r.active_interval[1] < 0.7


@given(st.integers(0, 200), st.integers(1, 200), st.floats(0.5, 0.999))
def test_wilson_interval_contains_the_rate(successes: int, n: int, confidence: float) -> None:
    """The Wilson interval lies in [0, 1] and contains the observed rate."""
    successes = min(successes, n)
    low, high = wilson_interval(successes, n, confidence)
    assert 0.0 <= low <= successes / n <= high <= 1.0


def test_p_value_direction() -> None:
    """A lower second rate gives a small p-value; an equal or higher one does not."""
    assert two_proportion_p_value(90, 100, 50, 100) < 0.001
    assert two_proportion_p_value(50, 100, 90, 100) > 0.99
    assert two_proportion_p_value(10, 10, 10, 10) == 1.0
