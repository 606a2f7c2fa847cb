"""Labels from history: inferred from what operators did, overridden by `autoheal label`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoheal_otel import AutoHealManager, ExecutionState, PolicyConfig
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.analytics.replay import replay
from autoheal_otel.lab import multi_replay
from autoheal_otel.lab.labels import label_rows
from autoheal_otel.testing import FakeClock

from .cli_support import run
from .conftest import OK, TNF


def _trip(m: AutoHealManager, clock: FakeClock, wid: str, failures: int = 12) -> None:
    for i in range(failures):
        clock.advance(5)
        if m.should_execute_step(wid, f"s{i % 4}")[0]:
            m.on_step_result(wid, f"s{i % 4}", TNF)


def _clean(m: AutoHealManager, clock: FakeClock, wid: str, minutes: int) -> None:
    for _ in range(minutes):
        clock.advance(60)
        if m.should_execute_step(wid, "s1")[0]:
            m.on_step_result(wid, "s1", OK)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """Four stops: one released fast and clean, one kept, one released into more failures,
    and an operator stop of a running workflow."""
    clock = FakeClock()
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        _trip(m, clock, "fast")
        clock.advance(120)
        m.force_transition("fast", ExecutionState.RUNNING, reason="flaky", actor="ann")
        _clean(m, clock, "fast", 40)
        _trip(m, clock, "kept")
        clock.advance(7200)
        m.force_transition("kept", ExecutionState.RUNNING, reason="fixed", actor="ann")
        _trip(m, clock, "again")
        clock.advance(60)
        m.force_transition("again", ExecutionState.RUNNING, reason="try again", actor="ann")
        _trip(m, clock, "again", 5)
        _clean(m, clock, "quiet", 3)
        m.force_transition("quiet", ExecutionState.QUARANTINED, reason="wrong totals", actor="bo")
    return tmp_path


def test_labels_are_inferred_from_what_operators_did(history: Path) -> None:
    """A fast clean release is a false stop; a kept stop or one followed by failures is a true
    stop; an operator stop of a running workflow is a missed incident; each says why."""
    got = {(lab.workflow_id, lab.label, lab.source) for lab in label_rows(history)}
    assert got == {
        ("fast", "false_stop", "inferred"),
        ("kept", "true_stop", "inferred"),
        ("again", "true_stop", "inferred"),
        ("quiet", "missed_incident", "inferred"),
    }
    why = {lab.workflow_id: lab.why for lab in label_rows(history)}
    assert "released after 130 s by ann, then no failure for 1800 s" in why["fast"]
    assert why["kept"].startswith("kept 7210 s before release (more than 1800 s)")
    assert "failures within" in why["again"]
    assert "(bo)" in why["quiet"]
    # A longer release window makes the kept stop a release too (then clean: false).
    longer = {lab.workflow_id: lab.label for lab in label_rows(history, release_seconds=9000)}
    assert longer["kept"] == "false_stop"


def test_an_operator_label_is_recorded_audited_and_overrides(history: Path) -> None:
    """`autoheal label` records a label record with actor and reason; the query shows it as
    the operator's label with the inference beside it; every reader still accepts the log."""
    fast = next(lab for lab in label_rows(history) if lab.workflow_id == "fast")
    before = replay(history, policy=None)
    args = ["label", fast.ref, "true", "--reason", "it was broken", "--actor", "cy"]
    proc = run([*args, "--data-dir", str(history), "--json"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["label"] is True
    with AuditAnalytics(history) as db:
        rows = db.sql(
            "SELECT actor, message, reason, details FROM audit_events WHERE kind = 'label'"
        )
    assert [(r["actor"], r["message"], r["reason"]) for r in rows] == [
        ("cy", "it was broken", "label.true")
    ]
    relabelled = next(lab for lab in label_rows(history) if lab.workflow_id == "fast")
    assert (relabelled.label, relabelled.source) == ("true_stop", "operator")
    assert "labelled true by cy: it was broken (inferred: false_stop" in relabelled.why
    # Replay, what-if, multi-policy replay, status and a process reading the log accept it.
    after = replay(history)
    assert after.matches and after.replayed == before.replayed
    multi = multi_replay(history, [PolicyConfig()], workers=1)[0].report
    assert multi.to_dict() == replay(history, policy=PolicyConfig()).to_dict()
    assert run(["status", "--data-dir", str(history)]).returncode == 0
    with AutoHealManager(data_dir=history) as m:  # restarts now, after the whole log
        assert m.get_mode("fast") is ExecutionState.RUNNING
        assert m.get_mode("quiet") is ExecutionState.QUARANTINED


@pytest.mark.parametrize(
    ("ref", "needle"),
    [("999999", "names no transition"), ("x:y", "must be WRITER:SEQ")],
    ids=["unknown", "malformed"],
)
def test_labelling_what_is_not_a_transition_is_one_line(
    history: Path, ref: str, needle: str
) -> None:
    """A label of no transition is refused in one line (exit 1) and nothing is recorded."""
    proc = run(["label", ref, "false", "--reason", "r", "--data-dir", str(history)])
    assert proc.returncode == 1 and needle in proc.stderr and "Traceback" not in proc.stderr
    with AuditAnalytics(history) as db:
        assert db.sql("SELECT count(*) AS n FROM audit WHERE kind = 'label'")[0]["n"] == 0
