"""Other writers' operator moves, applied by a running manager within a second, and acknowledged.

An operator's move is a command, not only a record: ``autoheal force``, ``autoheal resume``,
``autoheal versions rollback`` or another process write it to their own audit segment, and
every running manager on the same data directory applies it. :class:`Follower` runs a thread of
its own (never a hook's) that reads, every ``audit.follow_interval_seconds`` of real time, the
lines other writers appended since its last look (:class:`~._tail.SegmentTail`: appended bytes
only, no query), turns the moves among them into :class:`Move` values and feeds them to the
machine through the manager's one input path (:func:`~autoheal_otel.core._moves.apply_moves`),
which records one ``ack`` per move: this writer applied it (or already was there, or could not
take that edge).

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
from pathlib import Path
from typing import Any

from ..base._models import MAX_TEXT, ExecutionState, printable
from ..core._moves import Move
from ..semconv import Cause, EventKind, Reason
from ._shared import SharedTurns, parse_fact
from ._tail import SegmentTail, stamp

__all__ = ["Follower", "SharedFollow", "parse_move"]

_log = logging.getLogger("autoheal_otel")

#: Byte markers of the lines that can hold a move (every other line is not decoded).
MARKERS = (
    b'"cause":"operator"',
    b'"reason":"global.resumed"',
    b'"kind":"activation"',
    b'"cause":"restore_ok"',
    b'"cause":"restore_failed"',
)


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


@dataclass(frozen=True, slots=True)
class SharedFollow:
    """What a follower does under shared decisions: other processes' decisions among the lines
    (their ``markers``) are fed by ``feed_facts``, and every look is one of the ``turns``."""

    feed_facts: Callable[[list[Any]], None]
    markers: tuple[bytes, ...]
    turns: SharedTurns


class Follower:
    """Read other writers' moves off the hooks and feed them to the machine (see the module).

    Args:
        audit_dir: the data directory's ``audit`` folder.
        writer: this process's writer id (its own segments are not read).
        feed: ``feed(moves)`` applies moves as one machine input (the manager's decide).
        interval: seconds of real time between two looks (at most 1 s: the promise).
        shared: under shared decisions, how other processes' decisions are fed too.
    """

    def __init__(
        self,
        audit_dir: Path,
        writer: str,
        feed: Callable[[list[Move]], None],
        interval: float,
        shared: SharedFollow | None = None,
    ) -> None:
        markers = MARKERS if shared is None else MARKERS + shared.markers
        self.tail = SegmentTail(audit_dir, exclude=writer, markers=markers)
        self.interval = interval
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
        feed_facts = self._shared.feed_facts
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

    def look_now(self) -> int:
        """Look now, on the caller's thread, as the thread does; return the moves found.

        Under shared decisions the look is one turn (others may not take theirs meanwhile),
        so what it feeds does not start a catch-up of its own (which would read again).
        """
        if self._shared is None:
            return self.poll()
        turns = self._shared.turns
        turns.begin()
        try:
            return self.poll()
        finally:
            turns.end()

    def _look(self) -> None:
        """One look of the thread: under shared decisions only when some file grew (it reads
        whatever the counter says: a CLI takes no turns)."""
        if self._shared is not None and not self.tail.grew():
            return  # nothing new anywhere: the hooks' turns are not held up by a lock taken
        self.look_now()

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
