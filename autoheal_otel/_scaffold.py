"""The one way an input reaches the machine: clock, span, lock, closed check, publishing.

:meth:`Scaffold.decide` runs every input of :class:`~._machine.Machine` (the hooks, operator
moves, activations, policy reloads, other writers' and the fleet's moves):

1. start the hook's span (when tracing), then read the two clocks back to back;
2. the executor's two hooks (the inputs with a ``step_id``) first run the periodic checks
   (policy file, shared log) when they are due, outside the lock;
3. under the lock: the closed check, then the machine's input with the span's ids passed
   explicitly — arithmetic on in-memory state and the building of events only;
4. after the lock: publish the events in ``seq`` order (a failing sink never reaches the
   hook) and end the span.

Inputs take the later of their clock reading and the last input's (``last``): threads may read
the clock in one order and take the lock in the other, and the log's ``(ts, seq)`` order must
be the order of the decisions, as replay feeds them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._assembly import span_ids
from ._errors import ManagerClosedError
from ._events import DecisionEvent
from ._ledger import NO_TRACE
from ._publisher import Publisher

if TYPE_CHECKING:
    from ._polling import Periodic
    from .sinks.otel import OTelSink

__all__ = ["Scaffold"]


class Scaffold:
    """Feed machine inputs one at a time (see the module docstring)."""

    def __init__(
        self,
        monotonic: Callable[[], float],
        wall: Callable[[], datetime],
        publisher: Publisher,
        otel: OTelSink | None,
        lock: threading.Lock,
        anchor: tuple[float, datetime],
    ) -> None:
        #: Guards the machine: every input and every read of its state takes it.
        self.lock = lock
        #: Set (under the lock) by the manager's close(): later inputs raise.
        self.closed = False
        #: The latest (monotonic, wall) instant an input was fed at.
        self.last = anchor
        #: Polled by the two hooks when due; set once the manager has built it.
        self.periodic: Periodic | None = None
        self._monotonic = monotonic
        self._wall = wall
        self._publisher = publisher
        self._otel = otel

    def decide(
        self,
        span_name: str | None,
        hook: str,
        workflow_id: str | None,
        step_id: str | None,
        feed: Callable[..., Any],
        *args: Any,
    ) -> Any:
        """Run ``feed(*args, now, ts, trace, events)`` as one input; return what it returns.

        ``span_name`` None: no span (inputs that are not the executor's or an operator's).
        """
        otel = self._otel if span_name is not None else None
        span = None
        trace = NO_TRACE
        if otel is not None:
            span = otel.start_span(span_name, workflow_id, step_id)  # type: ignore[arg-type]
            if span is not None:
                trace = span_ids(span)
        publisher = self._publisher
        # The two clocks are read back to back: replay runs on the recorded wall time, so a
        # gap between them would move the decision in replay (a probe's cool-down, a window).
        now = self._monotonic()
        ts = self._wall() if publisher.sinks else None
        periodic = self.periodic
        if step_id is not None and periodic is not None and now >= periodic.due:
            periodic.poll(now, self._wall)  # its inputs are ordered by the clamp below
        events: list[DecisionEvent] | None = [] if ts is not None else None
        try:
            with self.lock:
                if self.closed:
                    raise ManagerClosedError(f"{hook} called after close()")
                last = self.last
                if now < last[0]:
                    now, ts = last[0], (last[1] if ts is not None else None)
                elif ts is not None:
                    self.last = (now, ts)
                out = feed(*args, now, ts, trace, events)
                if events:
                    publisher.enqueue(events)
        except BaseException as exc:
            if span is not None:
                span.record_exception(exc)
                span.end()
            raise
        if events:
            publisher.drain()
        if otel is not None:  # the span (None without a tracer) and the hook duration
            otel.end_span(span, hook, events, self._monotonic() - now)
        return out
