"""The one way an input reaches the machine: clock, span, lock, closed check, publishing.

The runner :meth:`Scaffold.bind` builds feeds every input of
:class:`~autoheal_otel.core._machine.Machine`: the executor's two hooks, bound once by the
manager, and through :meth:`Scaffold.decide` the others (operator moves, activations, policy
reloads, other writers' and the fleet's moves). Per input:

1. start the hook's span (when tracing), then read the two clocks back to back;
2. the executor's two hooks (the inputs with a ``step_id``) first run the periodic checks
   (policy file, shared log) when they are due, outside the lock;
3. under the lock: the closed check, then the machine's input with the span's ids passed
   explicitly — arithmetic on in-memory state and the building of events only (the events
   an input built are published even if it raised part-way);
4. after the lock: publish the events in ``seq`` order (a failing sink never reaches the
   hook) and end the span.

Under shared decisions (:meth:`Scaffold.share`) all of it is one turn of the data directory:
its lock is taken first, and what other processes decided since is fed before the input.

Inputs take the later of their clock reading and the last input's (``last``): threads may read
the clock in one order and take the lock in the other, and the log's ``(ts, seq)`` order must
be the order of the decisions, as replay feeds them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..base._errors import ManagerClosedError
from ..base._events import DecisionEvent
from ..core._ledger import NO_TRACE, At
from ._data_dir import span_ids
from ._publisher import Publisher

if TYPE_CHECKING:
    from ..sinks.otel import OTelSink
    from ._polling import Periodic
    from ._shared import SharedTurns

__all__ = ["Runner", "Scaffold"]

#: What :meth:`Scaffold.bind` returns: ``run(workflow_id, step_id[, value])``.
Runner = Callable[..., Any]

#: ``run``'s value when the input takes none (the gate).
_NOTHING: Any = object()


def _no_catch_up() -> None:
    return None


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
        self._turns: SharedTurns | None = None
        self._catch_up: Callable[[], Any] = _no_catch_up

    def share(self, turns: SharedTurns, catch_up: Callable[[], Any]) -> None:
        """Make every input a turn of the data directory's shared decisions (:mod:`~._shared`):
        ``catch_up()`` first feeds what other processes decided since this one's last turn."""
        self._turns = turns
        self._catch_up = catch_up

    def bind(self, span_name: str | None, hook: str, feed: Callable[..., Any]) -> Runner:
        """Return ``run(workflow_id, step_id[, value])``, which feeds one input per call.

        ``run`` calls ``feed(workflow_id, step_id[, value], now, ts, trace, events)`` as one
        input (the hooks' form; :meth:`decide` packs the four into an ``At`` for the others)
        and returns what it returns. The manager binds the executor's two hooks once, so
        a step pays for no argument packing; ``span_name`` None: no span.
        """
        lock = self.lock
        monotonic = self._monotonic
        wall = self._wall
        publisher = self._publisher
        otel = self._otel if span_name is not None else None

        def run(workflow_id: str | None, step_id: str | None, value: Any = _NOTHING) -> Any:
            span = None
            trace = NO_TRACE
            if otel is not None:
                span = otel.start_span(span_name, workflow_id, step_id)  # type: ignore[arg-type]
                if span is not None:
                    trace = span_ids(span)
            # The two clocks are read back to back: replay runs on the recorded wall time, so
            # a gap between them would move the decision in replay (a cool-down, a window).
            now = monotonic()
            ts = wall() if publisher.sinks else None
            periodic = self.periodic
            if step_id is not None and periodic is not None and now >= periodic.due:
                periodic.poll(now, wall)  # its inputs are ordered by the clamp below
            events: list[DecisionEvent] | None = [] if ts is not None else None
            try:
                lock.acquire()
                try:
                    if self.closed:
                        raise ManagerClosedError(f"{hook} called after close()")
                    last = self.last
                    if now < last[0]:
                        now, ts = last[0], (last[1] if ts is not None else None)
                    elif ts is not None:
                        self.last = (now, ts)
                    if value is _NOTHING:
                        out = feed(workflow_id, step_id, now, ts, trace, events)
                    else:
                        out = feed(workflow_id, step_id, value, now, ts, trace, events)
                finally:
                    # What the input did is recorded even if it raised part-way: the log must
                    # hold every change the machine made, or a restart and replay miss it.
                    if events:
                        publisher.enqueue(events)
                    lock.release()
            except BaseException as exc:
                if events:
                    publisher.drain()
                if span is not None:
                    span.record_exception(exc)
                    span.end()
                raise
            if events:
                publisher.drain()
            if otel is not None:  # the span (None without a tracer) and the hook duration
                otel.end_span(span, hook, events, monotonic() - now)
            return out

        turns = self._turns
        return run if turns is None else self._in_turns(turns, run)

    def catch_up(self) -> None:
        """Under shared decisions, take in what other processes decided (a turn of its own)."""
        turns = self._turns
        if turns is None or turns.closed:
            return  # (after close(): a read answers from what this process last knew)
        if turns.begin():
            try:
                self._catch_up()
            finally:
                turns.end()
        else:
            turns.end()

    def _in_turns(self, turns: SharedTurns, run: Runner) -> Runner:
        """Wrap ``run`` so each call is one turn of the shared decisions (see the module)."""
        publisher = self._publisher
        catch_up = self._catch_up

        def shared_run(workflow_id: str | None, step_id: str | None, value: Any = _NOTHING) -> Any:
            if turns.begin():
                try:
                    catch_up()
                except BaseException:
                    turns.end()
                    raise
            published = publisher.published
            try:
                return run(workflow_id, step_id, value)
            finally:
                if publisher.published != published:
                    turns.wrote()  # drained: in the log before the turn ends
                turns.end()

        return shared_run

    def decide(
        self,
        span_name: str | None,
        hook: str,
        workflow_id: str | None,
        step_id: str | None,
        feed: Callable[..., Any],
        *args: Any,
    ) -> Any:
        """Run ``feed(*args, at)`` as one input (``at``: its :class:`~..core._ledger.At`);
        return what it returns.

        The inputs other than the executor's hooks (operator moves, activations, policy
        reloads, other writers' and the fleet's moves) come this way, through :meth:`bind`.
        """

        def fed(_w: Any, _s: Any, now: float, ts: Any, trace: Any, events: Any) -> Any:
            return feed(*args, At(now, ts, trace, events))

        return self.bind(span_name, hook, fed)(workflow_id, step_id)
