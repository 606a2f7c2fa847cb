"""Other writers' operator moves, applied by a running manager within a second, and acknowledged.

An operator's move is a command, not only a record: ``autoheal force``, ``autoheal resume``,
``autoheal versions rollback`` or another process write it to their own audit segment, and
every running manager on the same data directory applies it. :class:`Follower` runs a thread
of its own (never a hook's) that reads, every ``audit.follow_interval_seconds`` of real time,
the lines other writers appended since its last look (:class:`~autoheal_otel.runtime._tail.SegmentTail`: appended
bytes only, no query), turns the moves among them into :class:`Move` values and feeds them to
the machine through the manager's one input path (:func:`apply_moves`), which records one
``ack`` per move: this writer applied it (or already was there, or could not take that edge).

Invariants: a move is applied once per process (each line is read once; the segments that
existed when the manager started were read back by the warm restart instead); the move's own
record stays the audit entry of the transition (the ack names it by writer and seq); a line
that is not a well-formed move is skipped, never raised; nothing here ever reaches a hook.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..base._models import MAX_TEXT, ExecutionState, printable
from ..core import _upkeep
from ..core._ledger import NO_TRACE, Events, Ledger, Trace
from ..core._transitions import is_legal
from ..semconv import Cause, EventKind, Reason, Rule
from ._shared import SharedTurns, parse_fact
from ._tail import SegmentTail, stamp

__all__ = ["Follower", "Move", "apply_moves", "parse_move"]

_log = logging.getLogger("autoheal_otel")

#: Byte markers of the lines that can hold a move (every other line is not decoded).
MARKERS = (
    b'"cause":"operator"',
    b'"reason":"global.resumed"',
    b'"kind":"activation"',
    b'"cause":"restore_ok"',
    b'"cause":"restore_failed"',
)


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


def _text(value: Any, default: str) -> str:
    return printable(value, MAX_TEXT) or default


def parse_move(writer: str, record: dict[str, Any]) -> Move | None:
    """Return the move a record holds, or None (not a move, or malformed)."""
    kind, stamped = record.get("kind"), stamp(record)
    if stamped is None:
        return None
    seq, when = stamped
    wid = record.get("workflow_id")
    if wid is not None and (not isinstance(wid, str) or not wid or not wid.isprintable()):
        return None
    reason = _text(record.get("message"), "operator")
    actor = _text(record.get("actor"), "operator")
    cause = record.get("cause")
    if kind == EventKind.TRANSITION and wid is not None:
        if cause not in (Cause.OPERATOR, Cause.RESTORE_OK, Cause.RESTORE_FAILED):
            return None
        if record.get("state") not in ExecutionState._value2member_map_:
            return None
        return Move(writer, seq, when, "transition", wid, record["state"], cause, reason, actor)
    if kind == EventKind.GLOBAL and record.get("reason") == Reason.GLOBAL_RESUMED:
        if cause not in (None, Cause.OPERATOR):
            return None  # the fleet's resumes reach every host through the fleet itself
        return Move(writer, seq, when, "resume", None, "", Cause.OPERATOR, reason, actor)
    if kind == EventKind.ACTIVATION:
        version = record.get("artifact_version")
        if not isinstance(version, str) or not version or not version.isprintable():
            return None
        return Move(writer, seq, when, "activation", wid, version[:MAX_TEXT], "", reason, actor)
    return None


def apply_moves(
    ledger: Ledger,
    moves: list[Move],
    rollbacks: set[tuple[str, str]],
    now: float,
    ts: datetime | None,
    trace: Trace,
    events: Events,
) -> None:
    """Input: moves other writers recorded; apply each and record an ack for it.

    The transition itself is not recorded again (its writer's record is the audit entry,
    dated when it was made); the ack says what this process did with it: ``move.applied``,
    ``move.already`` (nothing to do) or ``move.refused`` (no such edge from this process's
    state). ``rollbacks`` holds the (writer, workflow) pairs whose operator rollback this
    process followed: only their restore results are followed (the writer did the restore).
    """
    for move in moves:
        wf = ledger.workflow(move.workflow_id, now, ts, trace, events) if move.workflow_id else None
        previous = wf.state if wf is not None else None
        outcome = _apply(ledger, move, rollbacks, now)
        if outcome is None:
            continue
        if events is not None:
            ledger.emit(
                events,
                EventKind.ACK,
                ts,
                trace,
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
                    "lag_s": round((ledger.wall(now, ts) - move.ts).total_seconds(), 6),
                },
            )


def _apply(
    ledger: Ledger, move: Move, rollbacks: set[tuple[str, str]], now: float
) -> Reason | None:
    """Apply one move unrecorded; return the ack's reason (None: not this process's to ack)."""
    ts = move.ts
    if move.kind == "resume":
        if not ledger.glob.paused:
            return Reason.MOVE_ALREADY
        ledger.clear_global_pause(now, ts, NO_TRACE, None, move.actor, move.reason)
        return Reason.MOVE_APPLIED
    if move.kind == "activation":
        _upkeep.activate(
            ledger, move.workflow_id, move.target, move.reason, move.actor, now, ts, NO_TRACE, None
        )
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
        ledger.move(wf, target, cause, now, ts, NO_TRACE, None, rule, move.reason, actor=move.actor)
        return Reason.MOVE_APPLIED
    if target is ExecutionState.ROLLBACK:
        rollbacks.add(key)  # its writer restores the artifacts; this process waits for it
    if wf.state is target:
        return Reason.MOVE_ALREADY
    if not is_legal(wf.state, target, Cause.OPERATOR):
        _log.warning(
            "autoheal cannot apply %s's move of %r from %s to %s: not an operator edge",
            move.writer,
            move.workflow_id,
            wf.state.value,
            target.value,
        )
        return Reason.MOVE_REFUSED
    ledger.operator_move(wf, target, move.reason, move.actor, now, ts, NO_TRACE, None)
    return Reason.MOVE_APPLIED


class Follower:
    """Read other writers' moves off the hooks and feed them to the machine (see the module).

    Args:
        audit_dir: the data directory's ``audit`` folder.
        writer: this process's writer id (its own segments are not read).
        feed: ``feed(moves)`` applies moves as one machine input (the manager's decide).
        interval: seconds of real time between two looks (at most 1 s: the promise).
    """

    def __init__(
        self,
        audit_dir: Path,
        writer: str,
        feed: Callable[[list[Move]], None],
        interval: float,
        shared: tuple[Callable[[list[Any]], None], tuple[bytes, ...], SharedTurns] | None = None,
    ) -> None:
        markers = MARKERS if shared is None else MARKERS + shared[1]
        self.tail = SegmentTail(audit_dir, exclude=writer, markers=markers)
        self.interval = interval
        # Under shared decisions: (feed facts, their markers, the turns every look takes).
        self._shared = shared
        #: Moves applied (acked) since start, and lines skipped as malformed.
        self.followed = 0
        self._feed = feed
        self._reading = threading.Lock()  # the thread and a direct poll() never read at once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def skip_existing(self) -> None:
        """Start after what exists now: the warm restart reads that back instead."""
        self.tail.skip_existing()

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="autoheal-follow", daemon=True)
            self._thread.start()

    def poll(self) -> int:
        """Read and apply what other writers appended now; return how many moves it found.

        Under shared decisions, other processes' decisions among the lines are fed too, in
        runs, in the order they were read (a hook's turn calls this when others wrote).
        """
        if self._shared is None:
            with self._reading:
                moves = [m for w, rec in self.tail.read() if (m := parse_move(w, rec)) is not None]
                if moves:
                    self._feed(moves)
                    self.followed += len(moves)
            return len(moves)
        feed_facts = self._shared[0]
        found = 0
        with self._reading:
            items: list[Any] = []
            for writer, rec in self.tail.read():
                # A restore's result is another process's to take over (whoever rolled back).
                restore = rec.get("cause") in (Cause.RESTORE_OK, Cause.RESTORE_FAILED)
                item = parse_fact(writer, rec) if restore else parse_move(writer, rec)
                item = item or parse_fact(writer, rec)
                if item is not None:
                    items.append(item)
            # In the order they were decided, whichever file each was read from.
            items.sort(key=lambda i: (i.ts, i.writer, i.seq))
            run: list[Any] = []
            for item in items:
                if run and type(run[-1]) is not type(item):
                    found += self._apply_run(run, feed_facts)
                    run = []
                run.append(item)
            if run:
                found += self._apply_run(run, feed_facts)
        return found

    def _apply_run(self, run: list[Any], feed_facts: Callable[[list[Any]], None]) -> int:
        if isinstance(run[0], Move):
            self._feed(run)
            self.followed += len(run)
            return len(run)
        feed_facts(run)
        return 0

    def _look(self) -> None:
        """One look of the thread: under shared decisions, inside a turn (others may not take
        theirs meanwhile) when some file grew; it reads whatever the counter says (a CLI
        takes no turns)."""
        if self._shared is None:
            self.poll()
            return
        if not self.tail.grew():
            return  # nothing new anywhere: the hooks' turns are not held up by a lock taken
        turns = self._shared[2]
        turns.begin()
        try:
            self.poll()
        finally:
            turns.end()

    def _run(self) -> None:
        # allowed: the follower's own thread waits between looks; no hook ever waits here.
        while not self._stop.wait(self.interval):
            try:
                self._look()
            except Exception:  # another writer's lines must never stop this thread
                _log.exception("autoheal could not follow other writers' moves")

    def close(self) -> None:
        """Stop the thread; a last look applies nothing more."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
