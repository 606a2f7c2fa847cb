"""What an input says for the process's log reaches it, even when the input raises part-way."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from autoheal_otel import ExecutionState, InvalidInputError, Outcome, PolicyConfig, StepResult
from autoheal_otel.core._facts import Fact
from autoheal_otel.core._ledger import NO_TRACE, At, Notes
from autoheal_otel.core._machine import Machine
from autoheal_otel.core._moves import Move

T0 = datetime(2026, 1, 1, tzinfo=UTC)
S = ExecutionState


def _in_rollback() -> Machine:
    machine = Machine(PolicyConfig(), "w1", (0.0, T0))
    machine.note_store()
    machine.operator("wf", S.ROLLBACK, "check", "ops", At(1.0, T0, NO_TRACE, []))
    return machine


def _move(workflow_id: str, target: str, seq: int) -> Move:
    return Move("w2", seq, T0, "transition", workflow_id, target, "operator", "ops", "ann")


def test_a_refused_move_is_noted_and_kept_when_a_later_move_raises() -> None:
    machine = _in_rollback()
    notes: Notes = []
    events: list = []
    moves = [_move("wf", "running", 1), _move("x" * 300, "paused", 2)]  # a bad id: raises
    with pytest.raises(InvalidInputError):
        machine.apply_moves(moves, set(), notes, At(2.0, T0, NO_TRACE, events))
    assert [m for m, _ in notes] == [
        "autoheal cannot apply w2's move of 'wf' from rollback to running: not an operator edge"
    ]
    assert [e.reason for e in events if e.kind == "ack"] == ["move.refused"]


def test_a_fact_that_fails_is_noted_with_its_exception_and_the_others_are_fed() -> None:
    machine = Machine(PolicyConfig(), "w1", (0.0, T0))
    notes: Notes = []
    bad = Fact(T0, "w2", 1, "result", "wf", "s", None)  # a result without its result
    good = Fact(T0 + timedelta(seconds=1), "w2", 2, "result", "wf", "s",
                StepResult(outcome=Outcome.ERROR))  # fmt: skip
    machine.take_facts([bad, good], 0.0, notes, At(5.0, T0 + timedelta(seconds=5), NO_TRACE, None))
    assert len(notes) == 1
    message, exc = notes[0]
    assert message == "autoheal skipped w2's record seq 1" and isinstance(exc, AssertionError)
    assert machine.view.workflows["wf"].failures == 1


def test_the_runtime_logs_each_note_with_its_exception(caplog: pytest.LogCaptureFixture) -> None:
    from autoheal_otel.runtime._build import _log_all

    caplog.set_level(logging.WARNING, logger="autoheal_otel")
    _log_all([("first", None), ("second", ValueError("bad line"))])
    assert [r.getMessage() for r in caplog.records] == ["first", "second"]
    assert caplog.records[0].exc_info is None
    assert caplog.records[1].exc_info is not None and caplog.records[1].exc_info[0] is ValueError


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("bad\x07id", {}, True, "why", "ann"), "workflow_id"),
        (("w" * 300, {}, True, "why", "ann"), "workflow_id"),
        (("wf", {}, "yes", "why", "ann"), "verdict"),
        (("wf", {"seq": object()}, True, "why", "ann"), "details"),
        (("wf", {1: "x"}, True, "why", "ann"), "details"),
        (("wf", {}, True, "", "ann"), "reason"),
    ],
)
def test_a_label_with_an_unusable_argument_is_refused_naming_it(
    args: tuple[object, ...], field: str
) -> None:
    from autoheal_otel import AutoHealManager

    with AutoHealManager() as manager:
        with pytest.raises(InvalidInputError) as caught:
            manager.label_transition(*args)  # type: ignore[arg-type]
        assert caught.value.field == field
