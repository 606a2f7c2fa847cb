"""Shadow policies: what another policy would decide on the live inputs, off the hook's thread.

:class:`ShadowSink` is an event sink (``manager.add_sink(ShadowSink(policy, data_dir))``). On
the hook's thread it only appends the published batch to a bounded queue (past
:data:`MAX_PENDING` events it drops and counts, never blocks); a worker thread feeds the
gates, results and operator moves to a machine of its own, under the shadow policy, and
writes one ``shadow`` record per gate it judged (and per transition the shadow made) to
``<data_dir>/shadow/shadow-<writer>.jsonl``. Nothing flows back: no gate reads the shadow's
decisions, so the live answers are the same with or without it.

A gate the live log did not record (allowed gates may be left out) is implied by the result
that follows it: the shadow judges that gate too. :func:`shadow_report` compares live and
shadow on the same steps and scores both against the labels (:mod:`.objective`).

Invariant: the shadow machine sees the live inputs in ``seq`` order, once each.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ..base._errors import AutoHealError
from ..base._events import DecisionEvent
from ..base._models import ExecutionState, StepResult
from ..core._ledger import NO_TRACE
from ..core._machine import Machine
from ..policy._config import PolicyConfig
from ..semconv import Cause, EventKind

__all__ = ["MAX_PENDING", "ShadowSink"]

_log = logging.getLogger("autoheal_otel")
MAX_PENDING = 100_000
#: How often an idle worker looks at the queue, and the batch that wakes it sooner.
POLL_SECONDS = 0.05
BATCH = 1024
_WANTED = frozenset({EventKind.GATE, EventKind.RESULT, EventKind.TRANSITION})


class ShadowSink:
    """Decide every live input again under ``policy`` on a worker thread (module docstring)."""

    def __init__(self, policy: PolicyConfig, data_dir: str | Path, name: str = "shadow") -> None:
        self.policy = policy
        self.folder = Path(data_dir) / "shadow"
        self.name = name
        self.dropped = 0
        self.judged = 0
        self._pending: deque[DecisionEvent] = deque()
        self._wake = threading.Condition()
        self._idle = True
        self._closed = False
        self._machine: Machine | None = None
        self._anchor: datetime | None = None
        self._gated: set[tuple[str, str]] = set()
        self._file: Any = None
        self._writer = "writer"
        self._thread = threading.Thread(target=self._work, name="autoheal-shadow", daemon=True)
        self._thread.start()

    # -- the hook's side: O(1), never blocks on the worker ---------------------------------

    def emit(self, event: DecisionEvent) -> None:
        """Queue one event."""
        self.emit_many([event])

    def emit_many(self, events: Sequence[DecisionEvent]) -> None:
        """Queue a drain's events for the worker (dropped and counted past the bound)."""
        if len(self._pending) >= MAX_PENDING:
            self.dropped += len(events)
            return
        self._pending.extend(events)
        # No lock and no wake-up per hook: the worker looks every POLL_SECONDS, or at once
        # when a batch has gathered.
        if self._idle and len(self._pending) >= BATCH:
            with self._wake:
                self._wake.notify()

    # -- the worker ------------------------------------------------------------------------

    def _work(self) -> None:
        pending = self._pending
        while True:
            with self._wake:
                while not pending and not self._closed:
                    self._idle = True
                    self._wake.notify_all()
                    self._wake.wait(POLL_SECONDS)
                if not pending and self._closed:
                    self._wake.notify_all()  # _idle stays True: flush() never waits on it
                    return
                self._idle = False
            lines: list[str] = []
            while pending:
                event = pending.popleft()
                if event.kind in _WANTED:
                    try:
                        self._judge(event, lines)
                    except Exception:  # contained: a shadow must never stop its worker
                        _log.exception("autoheal shadow could not judge event %s", event.seq)
            if lines:
                self._write(lines)

    def _write(self, lines: list[str]) -> None:
        if self._file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{self.name}-{self._writer}")[:200]
            self._file = (self.folder / f"{safe}.jsonl").open("a", encoding="utf-8")
        self._file.write("".join(lines))

    def _judge(self, event: DecisionEvent, lines: list[str]) -> None:
        ts = event.ts
        if ts is None or event.workflow_id is None:
            return
        if self._machine is None:
            self._anchor = ts
            self._writer = event.writer or "writer"
            self._machine = Machine(self.policy, f"shadow:{self._writer}", (0.0, ts))
        m, now = self._machine, (ts - (self._anchor or ts)).total_seconds()
        wid, step = event.workflow_id, event.step_id
        events: list[DecisionEvent] = []
        if event.kind is EventKind.TRANSITION:
            if event.cause == Cause.OPERATOR and event.state is not None:
                # The shadow may be there already, or have no such edge: then nothing moves.
                with contextlib.suppress(AutoHealError):
                    actor = event.actor or "operator"
                    m.operator(wid, event.state, event.message, actor, now, ts, NO_TRACE, events)
        elif step is not None and event.kind is EventKind.GATE:
            self._gate(event, event.allowed is not False, m, now, ts, lines, events)
            self._gated.add((wid, step))
        elif step is not None and event.outcome is not None:
            if (wid, step) not in self._gated:  # the allowed gate the log left out
                self._gate(event, True, m, now, ts, lines, events)
            self._gated.discard((wid, step))
            result = StepResult(
                outcome=event.outcome,
                confidence=event.confidence,
                second_best=event.second_best,
                validated=bool(event.validated),
                duration_s=event.duration_s,
                details=event.details,
            )
            m.result(wid, step, result, now, ts, NO_TRACE, events)
        for e in events:
            if e.kind is EventKind.TRANSITION and e.cause != Cause.OPERATOR:
                more = {"previous": e.previous_state, "cause": e.cause, "rule": e.reason}
                lines.append(_line(event, "transition", e.state, **more))

    def _gate(
        self,
        event: DecisionEvent,
        live: bool,
        m: Machine,
        now: float,
        ts: datetime,
        lines: list[str],
        events: list[DecisionEvent],
    ) -> None:
        wid, step = event.workflow_id, event.step_id
        assert wid is not None and step is not None
        allowed = m.gate(wid, step, now, ts, NO_TRACE, events)[0]
        self.judged += 1
        state = m.ledger.workflows[wid].state
        lines.append(_line(event, "gate", state, live_allowed=live, shadow_allowed=allowed))

    def flush(self) -> None:
        """Wait until the worker has judged every queued event, then flush the shadow log."""
        with self._wake:
            while (self._pending or not self._idle) and self._thread.is_alive():
                self._wake.notify_all()
                self._wake.wait(timeout=POLL_SECONDS)
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Judge what is queued, stop the worker and close the shadow log (once)."""
        if self._closed:
            return
        self.flush()
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self._thread.join(timeout=10.0)
        if self._file is not None:
            self._file.close()
            self._file = None


def _line(event: DecisionEvent, what: str, state: ExecutionState | None, **more: Any) -> str:
    record = {
        "kind": "shadow",
        "what": what,
        "ts": event.ts.isoformat() if event.ts else None,
        "seq": event.seq,
        "writer": event.writer,
        "workflow_id": event.workflow_id,
        "step_id": event.step_id,
        "live_state": event.state.value if event.state else None,
        "state": state.value if state else None,
    }
    for key, value in more.items():
        record[key] = value.value if isinstance(value, ExecutionState) else value
    return json.dumps(record, separators=(",", ":")) + "\n"
