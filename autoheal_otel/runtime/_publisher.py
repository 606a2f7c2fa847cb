"""The publisher: hands decision events to the sinks, in order, containing their failures.

Invariants:
- the events of one drain (in practice: one hook's decisions) reach a sink that has
  ``emit_many`` in one call, so a sink can write them at once (the JSONL log: one ``write``,
  so a crash keeps all of a decision's lines or none); other sinks get ``emit`` per event;
- events reach every sink in ``seq`` order, even when several threads decide at once: the
  thread that publishes drains a shared queue under a publish lock, so when a hook returns its
  own events have been handed to every sink;
- a sink that raises is contained: the error is counted (per sink) and logged, the other sinks
  still get the event, and the executor's hook never sees the exception.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable

from ..base._events import DecisionEvent, EventSink

__all__ = ["Publisher"]

_log = logging.getLogger("autoheal_otel")


class Publisher:
    """Fan events out to the sinks, in order, containing each sink's failures."""

    def __init__(self) -> None:
        #: The registered sinks; a plain attribute because the hot path tests it on every hook.
        self.sinks: tuple[EventSink, ...] = ()
        self._pending: deque[DecisionEvent] = deque()
        self._routes: tuple[
            tuple[EventSink, Callable[[list[DecisionEvent]], None] | None], ...
        ] = ()
        self._publish_lock = threading.Lock()
        self.published = 0
        self.errors: dict[str, int] = {}

    def add(self, sink: EventSink) -> None:
        """Register a sink (copy-on-write, so publishing never sees a half-updated list)."""
        if not isinstance(sink, EventSink):
            raise TypeError(f"sink must have emit/flush/close methods, but was {sink!r}")
        self.sinks = (*self.sinks, sink)
        self._route()

    def remove(self, sink: EventSink) -> None:
        """Unregister a sink."""
        self.sinks = tuple(s for s in self.sinks if s is not sink)
        self._route()

    def _route(self) -> None:
        # Per sink: the call that takes a whole drain at once, or None to call emit per event.
        self._routes = tuple((s, getattr(s, "emit_many", None)) for s in self.sinks)

    def enqueue(self, events: Iterable[DecisionEvent]) -> None:
        """Queue events built under the manager's lock (call it while holding that lock)."""
        self._pending.extend(events)

    def drain(self) -> None:
        """Hand every queued event to every sink, in order (call it after the lock)."""
        pending = self._pending
        with self._publish_lock:
            n = len(pending)
            if not n:
                return
            # popleft, never clear(): another thread may be appending right now. One event
            # (a hook's usual decision) without the comprehension's frame.
            popleft = pending.popleft
            batch = [popleft()] if n == 1 else [popleft() for _ in range(n)]
            for sink, emit_many in self._routes:
                if emit_many is not None:
                    try:
                        emit_many(batch)
                    except Exception:  # a sink must never break the executor's hook
                        self._count_error(sink, "emit")
                    continue
                emit = sink.emit
                for event in batch:
                    try:
                        emit(event)
                    except Exception:  # a sink must never break the executor's hook
                        self._count_error(sink, "emit")
            self.published += n

    def flush(self) -> None:
        """Drain, then flush every sink."""
        self.drain()
        # Under the publish lock: a sink never flushes while another thread's drain writes to
        # it (the JSONL sink's held gates and retry buffer are touched by both).
        with self._publish_lock:
            for sink in self.sinks:
                try:
                    sink.flush()
                except Exception:  # contained like emit
                    self._count_error(sink, "flush")

    def close(self) -> None:
        """Drain, then close every sink."""
        self.drain()
        with self._publish_lock:  # as in flush()
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception:  # contained like emit
                    self._count_error(sink, "close")

    def _count_error(self, sink: EventSink, operation: str) -> None:
        name = type(sink).__name__
        self.errors[name] = self.errors.get(name, 0) + 1
        _log.exception("autoheal sink %s failed in %s", name, operation)
