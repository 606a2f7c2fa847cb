"""Which running processes applied an operator's move: the acknowledgement a command waits for.

A command that records a move (``autoheal force``, ``resume``, ``versions rollback``) writes
it under a writer id of its own. Every manager running on the data directory applies it
within ``audit.follow_interval_seconds`` and records an ``ack`` naming that writer and the
move's ``seq`` (:mod:`~._follow`). :class:`DeliveryWatch` is started before the command writes
and, afterwards, waits a bounded time until every process that was running has acknowledged
every move, then says who applied it, who did not, and whether anyone was running at all.

Running processes are known by their lease: a writer's ``flock`` on its live segment, which
the kernel releases when the process ends, however it ends (:func:`~.sinks.jsonl.live_writers`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..sinks.jsonl import AUDIT_DIR, live_writers
from ._follow import MARKERS, parse_move
from ._tail import SegmentTail

__all__ = ["Delivery", "DeliveryWatch"]

#: How often the wait looks for new acknowledgements (seconds).
_LOOK = 0.02


@dataclass(slots=True)
class Delivery:
    """Who applied a command's moves.

    ``running``: the processes that were running on the directory when the moves were recorded;
    ``applied``: per process that acknowledged every move, the last ack's reason
    (``move.applied``, ``move.already``, ``move.refused``) and how long after the command's
    record it came (``after_s``, from the ack); ``missing``: running processes that did not
    acknowledge within the wait; ``stopped``: running processes that ended before they
    acknowledged.
    """

    moves: list[int] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    applied: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    waited_s: float = 0.0

    @property
    def complete(self) -> bool:
        """Return True when every process still running acknowledged every move."""
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        """Return the delivery as JSON-ready data."""
        return asdict(self)

    def describe(self) -> str:
        """Return one line for people."""
        if not self.moves:
            return "nothing was recorded"
        if not self.running:
            return (
                "no robot is running on this directory: the move takes effect when one starts"
                " (it reads the log back)"
            )
        parts = [
            f"{w} ({a['reason'].removeprefix('move.')}"
            + (f", {a['after_s']:.2f} s)" if a["after_s"] is not None else ")")
            for w, a in sorted(self.applied.items())
        ]
        text = f"applied by {len(self.applied)} of {len(self.running)} running: " + (
            ", ".join(parts) or "none"
        )
        if self.stopped:
            text += f"; stopped before acknowledging: {', '.join(self.stopped)}"
        if self.missing:
            text += f"; NOT acknowledged within {self.waited_s:.1f} s: {', '.join(self.missing)}"
        return text


class DeliveryWatch:
    """Start before a command records its moves; :meth:`wait` afterwards (see the module)."""

    def __init__(self, data_dir: Path) -> None:
        self._audit = Path(data_dir) / AUDIT_DIR
        self._acks = SegmentTail(self._audit, markers=(b'"kind":"ack"',))
        self._acks.skip_existing()
        self._started = time.monotonic()

    def wait(self, writer: str, timeout: float) -> Delivery:
        """Wait up to ``timeout`` seconds until every running process acknowledged ``writer``'s
        moves; return who did.
        """
        delivery = Delivery(moves=self._moves_of(writer))
        if not delivery.moves:
            return delivery
        running = set(live_writers(self._audit)) - {writer}
        delivery.running = sorted(running)
        wanted = set(delivery.moves)
        seen: dict[str, set[int]] = {w: set() for w in running}
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while True:
            for ack_writer, rec in self._acks.read():
                details = rec.get("details")
                if not isinstance(details, dict) or details.get("move_writer") != writer:
                    continue
                seq = details.get("move_seq")
                if ack_writer in seen and seq in wanted:
                    seen[ack_writer].add(seq)
                    lag = details.get("lag_s")
                    delivery.applied[ack_writer] = {
                        "reason": str(rec.get("reason")),
                        "state": rec.get("state"),
                        # From the move's record to the process applying it.
                        "after_s": lag if isinstance(lag, int | float) else None,
                    }
            pending = [w for w, got in seen.items() if not wanted <= got]
            if not pending or time.monotonic() >= deadline:
                break
            pause.wait(_LOOK)  # a command's bounded wait, never a hook's
        for w in pending:
            delivery.applied.pop(w, None)
        alive = live_writers(self._audit) if pending else set()
        delivery.missing = sorted(w for w in pending if w in alive)
        delivery.stopped = sorted(w for w in pending if w not in alive)
        delivery.waited_s = round(time.monotonic() - self._started, 3)
        return delivery

    def _moves_of(self, writer: str) -> list[int]:
        """Return the seqs of the moves ``writer`` recorded (read from its own segments)."""
        tail = SegmentTail(self._audit, markers=MARKERS, only=writer)
        return sorted(
            move.seq for w, rec in tail.read() if (move := parse_move(w, rec)) is not None
        )
