"""Operator moves other writers recorded, applied by this machine and acknowledged.

An operator's move (``autoheal force``, ``resume``, ``versions rollback``) is recorded by the
process that made it; every other manager on the data directory applies it as an input of its
own machine (:func:`apply_moves`, fed by :mod:`~autoheal_otel.runtime._follow`) and records an
``ack`` naming the move's writer and ``seq``: applied, already there, or refused (no such
edge from this process's state). The transition itself is not recorded again. A function
over the ledger: no clock, no I/O; what the operator should read in the process's log is
returned, not logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..base._models import ExecutionState
from ..semconv import Cause, EventKind, Reason, Rule
from . import _upkeep
from ._ledger import NO_TRACE, At, Ledger, Notes
from ._transitions import is_legal

__all__ = ["Move", "apply_moves"]


@dataclass(frozen=True, slots=True)
class Move:
    """One move another writer recorded: what it does, and which record it is.

    ``kind`` is ``transition`` (``target`` a state, ``cause`` operator or a restore's),
    ``resume`` (the global pause lifted) or ``activation`` (``target`` an artifact version).
    """

    writer: str
    seq: int
    ts: datetime
    kind: str
    workflow_id: str | None
    target: str
    cause: str
    reason: str
    actor: str


def apply_moves(
    ledger: Ledger,
    moves: list[Move],
    rollbacks: set[tuple[str, str]],
    notes: Notes,
    at: At,
) -> None:
    """Input: moves other writers recorded; apply each and record an ack for it.

    The transition itself is not recorded again (its writer's record is the audit entry,
    dated when it was made); the ack says what this process did with it: ``move.applied``,
    ``move.already`` (nothing to do) or ``move.refused`` (no such edge from this process's
    state). ``rollbacks`` holds the (writer, workflow) pairs whose operator rollback this
    process followed: only their restore results are followed (the writer did the restore).
    What the process's log should say (a move refused for want of an edge) goes to ``notes``.
    """
    for move in moves:
        wf = ledger.workflow(move.workflow_id, at) if move.workflow_id else None
        previous = wf.state if wf is not None else None
        outcome = _apply(ledger, move, rollbacks, at.now, notes)
        if outcome is None:
            continue
        ledger.record(
            at,
            EventKind.ACK,
            move.workflow_id,
            None,
            wf.state if wf is not None else None,
            previous_state=previous,
            reason=outcome.value,
            message=f"{move.kind} {move.target or 'resume'} recorded by {move.writer}"
            f" (seq {move.seq}): {move.reason}",
            actor=move.actor,
            details={
                "move_writer": move.writer,
                "move_seq": move.seq,
                "move_ts": move.ts.isoformat(),
                "move_kind": move.kind,
                "move_target": move.target,
                "move_cause": move.cause,
                "lag_s": round((ledger.wall(at.now, at.ts) - move.ts).total_seconds(), 6),
            },
        )


def _apply(
    ledger: Ledger, move: Move, rollbacks: set[tuple[str, str]], now: float, notes: Notes
) -> Reason | None:
    """Apply one move unrecorded; return the ack's reason (None: not this process's to ack)."""
    unrecorded = At(now, move.ts, NO_TRACE, None)
    if move.kind == "resume":
        if not ledger.glob.paused:
            return Reason.MOVE_ALREADY
        ledger.clear_global_pause(unrecorded, move.actor, move.reason)
        return Reason.MOVE_APPLIED
    if move.kind == "activation":
        _upkeep.activate(ledger, move.workflow_id, move.target, move.reason, move.actor, unrecorded)
        return Reason.MOVE_APPLIED
    assert move.workflow_id is not None
    wf = ledger.workflows[move.workflow_id]
    target = ExecutionState(move.target)
    key = (move.writer, move.workflow_id)
    if move.cause != Cause.OPERATOR:
        # A restore's result: followed only after that writer's operator rollback.
        if key not in rollbacks:
            return None
        rollbacks.discard(key)
        if wf.state is not ExecutionState.ROLLBACK:
            return Reason.MOVE_ALREADY
        cause = Cause(move.cause)
        if not is_legal(wf.state, target, cause):
            return Reason.MOVE_REFUSED
        rule = Rule.ROLLBACK_RESTORE
        ledger.move(wf, target, cause, unrecorded, rule, move.reason, actor=move.actor)
        return Reason.MOVE_APPLIED
    if target is ExecutionState.ROLLBACK:
        rollbacks.add(key)  # its writer restores the artifacts; this process waits for it
    if wf.state is target:
        return Reason.MOVE_ALREADY
    if not is_legal(wf.state, target, Cause.OPERATOR):
        notes.append(
            (
                f"autoheal cannot apply {move.writer}'s move of {move.workflow_id!r} from "
                f"{wf.state.value} to {target.value}: not an operator edge",
                None,
            )
        )
        return Reason.MOVE_REFUSED
    ledger.operator_move(wf, target, move.reason, move.actor, unrecorded)
    return Reason.MOVE_APPLIED
