"""Multi-policy replay gives, per candidate, exactly what a what-if of that policy gives."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from autoheal_otel import AutoHealManager, ExecutionState, Outcome, PolicyConfig, StepResult
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.analytics import _replayer as replayer_module
from autoheal_otel.analytics import replay as replay_module
from autoheal_otel.base._errors import AutoHealError
from autoheal_otel.lab import decode, multi_replay
from autoheal_otel.lab.labels import record_label
from autoheal_otel.testing import FakeClock, FleetEvent, apply_fleet_event

from .conftest import OK, POST, TNF, policy_with

RESULTS = [
    OK,
    TNF,
    POST,
    StepResult(outcome=Outcome.SUCCESS, confidence=0.6, validated=True),
    StepResult(outcome=Outcome.SUCCESS, confidence=0.9, second_best=0.88, validated=True),
    StepResult(outcome=Outcome.SUCCESS, confidence=0.8, validated=True, details={"method": "ocr"}),
    StepResult(outcome=Outcome.POSTCONDITION_FAILED, confidence=0.72, details={"method": "ocr"}),
    StepResult(outcome=Outcome.WATCHDOG_TIMEOUT, duration_s=3.0),
]

#: The policies a log may be recorded under (a restart may change it).
RECORDED = [
    PolicyConfig(),
    policy_with(breakers={"workflow": {"failure_threshold": 3, "window_seconds": 120}}),
    policy_with(quarantine={"probe_enabled": True, "probe_cooldown_seconds": 30}),
]

#: The candidates every log is replayed under.
CANDIDATES = [
    PolicyConfig(),
    policy_with(breakers={"workflow": {"failure_threshold": 2, "window_seconds": 60}}),
    policy_with(
        breakers={
            "workflow": {"failure_threshold": 4, "window_seconds": 300},
            "step": {"consecutive_target_not_found": 1},
        },
        degraded={"recovery_successes": 2},
    ),
    policy_with(
        calibration={"enabled": True, "min_samples": 3, "window": 20},
        quarantine={"probe_enabled": True, "probe_cooldown_seconds": 10},
    ),
    policy_with(
        breakers={"global": {"failure_threshold": 4, "quarantined_workflows_threshold": 1}}
    ),
]

OP = st.one_of(
    st.tuples(
        st.just("step"),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["s1", "s2"]),
        st.integers(0, len(RESULTS) - 1),
        st.sampled_from([0.5, 5.0, 40.0, 400.0]),
    ),
    st.tuples(st.just("force"), st.sampled_from(["a", "b"]), st.sampled_from(list(ExecutionState))),
    st.tuples(st.just("restart"), st.integers(0, len(RECORDED) - 1)),
    st.tuples(st.just("fleet"), st.sampled_from(["a", "c"])),
    st.tuples(st.just("calibrate"), st.integers(2, 5)),
    st.tuples(st.just("label"), st.booleans()),
    st.tuples(st.just("artifact"), st.sampled_from(["a", "b"]), st.sampled_from(["v1", "v2"])),
)


def _write(data_dir: Path, ops: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    manager = AutoHealManager(policy=RECORDED[0], data_dir=data_dir, clock=clock)
    fleet_ids = 0
    try:
        for op in ops:
            try:
                if op[0] == "step":
                    clock.advance(op[4])
                    if manager.should_execute_step(op[1], op[2])[0]:
                        manager.on_step_result(op[1], op[2], RESULTS[op[3]])
                elif op[0] == "force":
                    manager.force_transition(op[1], op[2], reason="operator check")
                elif op[0] == "restart":
                    manager.close()
                    clock.advance(1.0)
                    manager = AutoHealManager(
                        policy=RECORDED[op[1]], data_dir=data_dir, clock=clock
                    )
                elif op[0] == "fleet":
                    fleet_ids += 1
                    event = FleetEvent(
                        id=f"{fleet_ids}-0",
                        kind="quarantine",
                        host="h7",
                        workflow_id=op[1],
                        target=ExecutionState.QUARANTINED,
                        rule="workflow.failure_window",
                        count=10,
                        threshold=10,
                        window_seconds=300.0,
                    )
                    apply_fleet_event(manager, event)
                elif op[0] == "label":
                    _label(manager, data_dir, op[1])
                elif op[0] == "calibrate":
                    manager.configure_calibration(min_samples=op[1], window=10)
                else:
                    manager.set_artifact_version(op[1], op[2], reason="learned")
            except AutoHealError:
                pass  # an illegal move is refused, as it is live
    finally:
        manager.close()


def _label(manager: AutoHealManager, data_dir: Path, verdict: bool) -> None:
    """Label the last transition recorded so far, as `autoheal label` does."""
    manager.flush()
    with AuditAnalytics(data_dir) as db:
        rows = db.sql(
            "SELECT writer, seq, workflow_id FROM audit WHERE kind = 'transition'"
            " ORDER BY ts DESC, seq DESC LIMIT 1"
        )
    if rows:
        record_label(manager, rows[0], verdict, "operator check", "ann")


class _Kept(replayer_module.Replayer):
    """The what-if's feed, kept so its list of automatic transitions can be compared."""

    last: Any = None

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        _Kept.last = self


def _what_if(data_dir: Path, policy: PolicyConfig) -> tuple[dict[str, Any], list[Any]]:
    original = replay_module.Replayer
    replay_module.Replayer = _Kept  # type: ignore[assignment,misc]
    try:
        report = replay_module.replay(data_dir, policy=policy)
    finally:
        replay_module.Replayer = original  # type: ignore[misc]
    kept = _Kept.last.replayed if report.records else []
    return report.to_dict(), kept


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OP, min_size=1, max_size=120))
@example([("step", "a", "s1", 1, 5.0)] * 12 + [("label", True), ("restart", 1), ("fleet", "c")])
# A clean success between target-not-found results resets the step's streak (on the way that
# calls no machine too).
@example([("step", "a", "s1", i, 5.0) for i in (1, 1, 0, 1, 1)])
# A restart reads the streak back (from what every candidate shares): the third one degrades.
@example([("step", "a", "s1", 1, 5.0)] * 2 + [("restart", 0), ("step", "a", "s1", 1, 5.0)])
def test_multi_policy_replay_equals_what_if_per_candidate(ops: list[tuple[Any, ...]]) -> None:
    """On random logs (restarts, operator moves, calibration, fleet records, artifact
    versions, operator labels), every candidate's report and automatic transitions equal its what-if's."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        _write(data, ops)
        got = multi_replay(data, CANDIDATES, workers=2)
        assert len(got) == len(CANDIDATES)
        for policy, candidate in zip(CANDIDATES, got, strict=True):
            want, transitions = _what_if(data, policy)
            assert candidate.report.to_dict() == want
            assert candidate.transitions == transitions


def test_a_decoded_log_is_shared_by_every_candidate(tmp_path: Path) -> None:
    """Decoding once and replaying in one process gives what two processes give."""
    ops = [("step", "a", "s1", 1, 5.0)] * 30 + [("restart", 1)] + [("step", "b", "s2", 2, 5.0)] * 30
    _write(tmp_path, ops)
    log = decode(tmp_path)
    assert log.records > 50
    one = multi_replay(log, CANDIDATES, workers=1)
    two = multi_replay(tmp_path, CANDIDATES, workers=2)
    assert [c.report.to_dict() for c in one] == [c.report.to_dict() for c in two]
    assert any(c.transitions for c in one)


def test_a_log_whose_head_was_deleted_replays_from_its_checkpoint(tmp_path: Path) -> None:
    """With its first records deleted, every candidate starts at the first checkpoint, as
    its what-if does."""
    clock = FakeClock()
    with AutoHealManager(policy=RECORDED[1], data_dir=tmp_path, clock=clock) as manager:
        for i in range(40):
            clock.advance(5.0)
            if i == 20:
                manager.checkpoint()
            wid = "a" if i % 2 else "b"
            if manager.should_execute_step(wid, "s1")[0]:
                manager.on_step_result(wid, "s1", RESULTS[i % 3])
    (segment,) = sorted((tmp_path / "audit").glob("*.jsonl"))
    lines = segment.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if '"kind":"checkpoint"' in line)
    segment.write_text("".join(lines[cut - 3 :]), encoding="utf-8")  # the head deleted
    got = multi_replay(tmp_path, CANDIDATES, workers=2)
    assert decode(tmp_path).headless
    for policy, candidate in zip(CANDIDATES, got, strict=True):
        want, transitions = _what_if(tmp_path, policy)
        assert want["from_checkpoint"] is not None and want["before_checkpoint"] == 3
        assert candidate.report.to_dict() == want
        assert candidate.transitions == transitions
