"""What a host must tell the fleet, queued from its decision events on the hooks' thread.

:class:`Outbox` turns each decision event into what the shipper sends: a failure to count
(with the fleet events this host had applied when it happened), a probe release, a regression
rollback, a probe-lease hold, and the workflow ids this host runs. Appends only: it never
blocks and never waits on Redis. Bounded: at most ``queue_size`` failures wait (beyond that
they are dropped and counted) and at most ``MAX_KNOWN`` workflow ids are announced.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from ..base._events import DecisionEvent
from ..semconv import Cause, EventKind, Reason

__all__ = ["ANNOUNCE_BATCH", "MAX_KNOWN", "Failure", "Outbox"]

#: The most workflow ids a host announces to the fleet, and per batch.
MAX_KNOWN = 100_000
ANNOUNCE_BATCH = 1000
#: A queued failure: (member, workflow, trigger, seen workflow event, seen global event).
Failure = tuple[str, str, str, str, str]
_PROBE_REASONS = (
    Reason.PROBE_ADMITTED.value,
    Reason.PROBE_FAILED.value,
    Reason.PROBE_EXPIRED.value,
)


class Outbox:
    """The shipper's queues, filled by :meth:`emit` (see the module docstring)."""

    def __init__(self, host: str, queue_size: int, seen: Mapping[str, str]) -> None:
        self.host = host
        self.queue_size = queue_size
        self.failures: deque[Failure] = deque()
        self.controls: deque[tuple[str, str, Any]] = deque()
        self.known: set[str] = set()
        self.announce: deque[str] = deque()
        self.dropped = 0
        self._seen = seen

    def emit(self, event: DecisionEvent) -> None:
        """Queue what the fleet must learn from one decision event (never blocks)."""
        kind = event.kind
        wid = event.workflow_id
        if wid is not None and wid not in self.known and len(self.known) < MAX_KNOWN:
            self.known.add(wid)
            self.announce.append(wid)
        if kind is EventKind.RESULT:
            if event.trigger is None or wid is None:
                return
            if len(self.failures) >= self.queue_size:
                self.dropped += 1
                return
            member = f"{self.host}/{event.writer}/{event.seq}"
            # With what this host knew of the fleet then: a failure from before a release it
            # had not applied yet is not counted after the release (as on one host).
            seen = self._seen
            self.failures.append(
                (member, wid, event.trigger.value, seen.get(wid, ""), seen.get("", ""))
            )
        elif kind is EventKind.TRANSITION and event.cause == Cause.PROBE_SUCCESS.value:
            state = event.state.value if event.state else "running"
            self.controls.append(("release", str(wid), state))
        elif kind is EventKind.TRANSITION and event.cause == Cause.REGRESSION.value:
            self.controls.append(("rollback", str(wid), event))
        elif kind is EventKind.PROBE and event.reason in _PROBE_REASONS:
            self.controls.append(("hold", str(wid), event.reason))

    def take_announcements(self) -> list[str]:
        """Return the next batch of workflow ids to announce (put back if the ship fails)."""
        announce = self.announce
        return [announce.popleft() for _ in range(min(len(announce), ANNOUNCE_BATCH))]

    def announce_all(self) -> None:
        """Queue every known id again (after a reconnect: the fleet may have lost them)."""
        self.announce.extend(sorted(self.known - set(self.announce)))
