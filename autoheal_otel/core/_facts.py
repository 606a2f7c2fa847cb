"""Other processes' decisions on the same data directory, fed to this machine (shared decisions).

Under ``audit.shared_decisions`` every process's turn first feeds its machine what the others
recorded since its last turn (:mod:`~autoheal_otel.runtime._shared` reads them): their gates
and results as if they were its own, unrecorded (their writer recorded them), and their
automatic transitions taken over when this machine did not reach the same state by itself.
Pure: the machine is fed values; what the process's log should say is returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ..base._models import ExecutionState, StepResult
from ..semconv import Cause
from ._ledger import NO_TRACE, At, Events, Ledger, Notes, Trace
from ._transitions import is_legal

__all__ = ["Fact", "Fed", "apply_facts"]


class Fed(Protocol):
    """What the catch-up feeds: the machine's two hook inputs."""

    def gate(
        self,
        workflow_id: str,
        step_id: str,
        now: float,
        ts: datetime | None,
        trace: Trace,
        events: Events,
    ) -> tuple[bool, str]: ...

    def result(
        self,
        workflow_id: str,
        step_id: str,
        result: StepResult,
        now: float,
        ts: datetime | None,
        trace: Trace,
        events: Events,
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class Fact:
    """One decision another process recorded: a gate, a step result, or a transition."""

    ts: datetime
    writer: str
    seq: int
    kind: str
    workflow_id: str
    step_id: str | None
    result: StepResult | None = None
    state: ExecutionState | None = None
    cause: str = ""
    message: str = ""


def apply_facts(
    machine: Fed,
    ledger: Ledger,
    facts: list[Fact],
    floor: float,
    notes: Notes,
    at: At,
) -> None:
    """Input: other processes' decisions, fed to this machine in their order, unrecorded.

    Each fact is fed at its own time on this process's clock (``now`` less its age), never
    before ``floor`` (this machine's last input: its windows take times in order) or the
    previous fact, nor after ``now``. The turn's ``trace`` and ``events`` are not used: what
    a fact makes this machine decide was recorded by the fact's writer. A fact this
    machine cannot take is skipped, and said in ``notes`` (for the process's log, with the
    exception when one was raised); the others are still fed.
    """
    now, ts = at.now, at.ts
    for fact in sorted(facts, key=lambda f: (f.ts, f.writer, f.seq)):
        age = (ts - fact.ts).total_seconds() if ts is not None else 0.0
        fed_at = min(now, max(floor, now - max(0.0, age)))
        floor = fed_at
        try:
            _apply_fact(machine, ledger, fact, fed_at, notes)
        except Exception as exc:  # another writer's record must never stop this machine's turn
            notes.append((f"autoheal skipped {fact.writer}'s record seq {fact.seq}", exc))


def _apply_fact(machine: Fed, ledger: Ledger, fact: Fact, at: float, notes: Notes) -> None:
    """Feed one fact (see :func:`apply_facts`)."""
    if fact.kind == "gate":
        assert fact.step_id is not None
        machine.gate(fact.workflow_id, fact.step_id, at, fact.ts, NO_TRACE, None)
        return
    if fact.kind == "result":
        assert fact.step_id is not None and fact.result is not None
        machine.result(fact.workflow_id, fact.step_id, fact.result, at, fact.ts, NO_TRACE, None)
        return
    unrecorded = At(at, fact.ts, NO_TRACE, None)
    wf = ledger.workflow(fact.workflow_id, unrecorded)
    target = fact.state
    assert target is not None
    if wf.state is target:
        return  # this machine decided the same by itself
    cause = Cause(fact.cause)
    if not is_legal(wf.state, target, cause):
        notes.append((
            f"autoheal cannot take over {fact.writer}'s transition of {fact.workflow_id!r} "
            f"from {wf.state.value} to {target.value} ({cause.value})",
            None,
        ))  # fmt: skip
        return
    message = fact.message or f"taken over from {fact.writer}"
    ledger.move(wf, target, cause, unrecorded, "taken_over", message)
