"""A warm restart's lean read (fewer gates, columns, scoped calibration) restores what a full read does."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from autoheal_otel import AutoHealManager, Outcome, PolicyConfig, StepResult
from autoheal_otel.analytics import AuditAnalytics, restore
from autoheal_otel.analytics.compaction import compact
from autoheal_otel.testing import FakeClock

from .conftest import policy_with


def _log(data_dir: Path, clock: FakeClock, steps: int, seed: int) -> None:
    """Gates, results of two matching methods, failures and transitions over several hours."""
    rng = random.Random(seed)
    quiet = policy_with(audit={"compact_interval_seconds": 0})
    with AutoHealManager(data_dir=data_dir, clock=clock, policy=quiet) as m:
        for i in range(steps):
            wf = f"w{i % 4}"
            if not m.should_execute_step(wf, "s")[0]:
                clock.advance(rng.uniform(1, 120))
                continue
            outcome = rng.choice(
                [Outcome.SUCCESS] * 5 + [Outcome.POSTCONDITION_FAILED, Outcome.TARGET_NOT_FOUND]
            )
            result = StepResult(
                outcome=outcome,
                confidence=round(rng.random(), 3),
                validated=outcome is Outcome.SUCCESS,
                details={"method": rng.choice(["faiss", "ocr"])},
            )
            m.on_step_result(wf, "s", result)
            clock.advance(rng.uniform(1, 240))


@pytest.mark.parametrize("compacted", [False, True])
def test_lean_restore_equals_a_full_read(
    tmp_path: Path, clock: FakeClock, compacted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leaving out old gates and unread columns, and scoping the samples, changes no restored row."""
    _log(tmp_path, clock, 400, seed=7)
    if compacted:
        compact(tmp_path)
        _log(tmp_path, clock, 50, seed=8)
    policy = PolicyConfig.from_dict({"calibration": {"window": 25}})
    lean = restore.load_restored_state(tmp_path, policy, clock.now())

    def full(data_dir: Path, **_: Any) -> AuditAnalytics:
        return AuditAnalytics(data_dir)

    monkeypatch.setattr(restore, "AuditAnalytics", full)
    everything = restore.load_restored_state(tmp_path, policy, clock.now())
    assert lean == everything
    assert lean.entries and lean.workflows and lean.max_seq > 0
    assert {m for m, _, _ in lean.calibration_samples} == {"faiss", "ocr"}
    assert len(lean.calibration_samples) == 50  # two methods, a window of 25 each
