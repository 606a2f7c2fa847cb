"""A shadow policy's decisions on the live records: one machine, fed what the live one was fed.

:class:`Judge` takes the audit records of one writer in ``seq`` order (the shadow process
reads them from that writer's segments, :mod:`._process`): each gate, result and
operator move becomes the same input to a machine of its own, under the shadow policy, and
it writes one ``shadow`` line per gate it judged (with the live and the shadow answer) and
per transition the shadow made to ``<data_dir>/shadow/<name>-<writer>.jsonl``.

A gate the live log did not record (allowed gates may be left out) is implied by the result
that follows it: the shadow judges that gate too. A record that is not a well-formed input
is skipped and counted, never raised.

Invariant: nothing here reaches the live machine; the shadow's answers are only written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from ...base._errors import AutoHealError
from ...base._events import DecisionEvent
from ...base._models import ExecutionState, StepResult
from ...core._ledger import NO_TRACE, At
from ...core._machine import Machine
from ...policy._config import PolicyConfig
from ...semconv import Cause, EventKind

__all__ = ["MARKERS", "Judge"]

_log = logging.getLogger("autoheal_otel")

#: Byte markers of the lines a shadow reads (every other line is not decoded).
MARKERS = (b'"kind":"gate"', b'"kind":"result"', b'"kind":"transition"')


class Judge:
    """Decide one writer's live records again under ``policy`` (see the module docstring)."""

    def __init__(self, policy: PolicyConfig, folder: Path, name: str) -> None:
        self.policy = policy
        self.folder = folder
        self.name = name
        #: Gates judged, and records skipped (not a well-formed input).
        self.judged = 0
        self.skipped = 0
        self._machine: Machine | None = None
        self._anchor: datetime | None = None
        self._gated: set[tuple[str, str]] = set()
        self._lines: list[str] = []
        self._file: Any = None
        self._writer = "writer"
        #: The last ``seq`` this shadow judges (None: every record).
        self.until: int | None = None

    def feed(self, rec: dict[str, Any]) -> None:
        """Judge one record (contained: a bad record is counted, never raised)."""
        until, seq = self.until, rec.get("seq")
        if until is not None and type(seq) is int and seq > until:
            return
        try:
            self._judge(rec)
        except (AutoHealError, ValueError, TypeError, KeyError):
            self.skipped += 1

    def _judge(self, rec: dict[str, Any]) -> None:
        ts = datetime.fromisoformat(rec["ts"])
        wid, step, kind = rec.get("workflow_id"), rec.get("step_id"), rec.get("kind")
        if not isinstance(wid, str):
            return
        if self._machine is None:
            self._anchor = ts
            self._writer = str(rec.get("writer") or "writer")
            self._machine = Machine(self.policy, f"shadow:{self._writer}", (0.0, ts))
        m, now = self._machine, (ts - (self._anchor or ts)).total_seconds()
        events: list[DecisionEvent] = []
        if kind == EventKind.TRANSITION:
            if rec.get("cause") == Cause.OPERATOR and rec.get("state"):
                # The shadow may be there already, or have no such edge: then nothing moves.
                with contextlib.suppress(AutoHealError):
                    target = ExecutionState(rec["state"])
                    actor = rec.get("actor") or "operator"
                    message = rec.get("message") or ""
                    m.operator(wid, target, message, actor, At(now, ts, NO_TRACE, events))
        elif isinstance(step, str) and kind == EventKind.GATE:
            self._gate(rec, rec.get("allowed") is not False, m, now, ts)
            self._gated.add((wid, step))
        elif isinstance(step, str) and kind == EventKind.RESULT and rec.get("outcome"):
            if (wid, step) not in self._gated:  # the allowed gate the log left out
                self._gate(rec, True, m, now, ts)
            self._gated.discard((wid, step))
            result = StepResult(
                outcome=rec["outcome"],
                confidence=rec.get("confidence"),
                second_best=rec.get("second_best"),
                validated=bool(rec.get("validated")),
                duration_s=rec.get("duration_s"),
                details=rec.get("details") or {},
            )
            m.result(wid, step, result, now, ts, NO_TRACE, events)
        for e in events:
            if e.kind is EventKind.TRANSITION and e.cause != Cause.OPERATOR:
                more = {"previous": e.previous_state, "cause": e.cause, "rule": e.reason}
                self._lines.append(_line(rec, ts, "transition", e.state, **more))

    def _gate(self, rec: dict[str, Any], live: bool, m: Machine, now: float, ts: datetime) -> None:
        wid, step = rec["workflow_id"], rec["step_id"]
        allowed = m.gate(wid, step, now, ts, NO_TRACE, None)[0]
        self.judged += 1
        state = m.view.workflows[wid].state
        line = _line(rec, ts, "gate", state, live_allowed=live, shadow_allowed=allowed)
        self._lines.append(line)

    def write(self) -> None:
        """Write the lines judged so far to the shadow log (opened at the first line)."""
        if not self._lines:
            return
        if self._file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{self.name}-{self._writer}")[:200]
            self._file = (self.folder / f"{safe}.jsonl").open("a", encoding="utf-8")
        self._file.write("".join(self._lines))
        self._lines = []

    def flush(self) -> None:
        """Write, then flush the shadow log."""
        self.write()
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Write, then close the shadow log."""
        self.write()
        if self._file is not None:
            self._file.close()
            self._file = None


def _line(
    rec: dict[str, Any], ts: datetime, what: str, state: ExecutionState | None, **more: Any
) -> str:
    record = {
        "kind": "shadow",
        "what": what,
        "ts": ts.isoformat(),
        "seq": rec.get("seq"),
        "writer": rec.get("writer"),
        "workflow_id": rec.get("workflow_id"),
        "step_id": rec.get("step_id"),
        "live_state": rec.get("state"),
        "state": state.value if state else None,
    }
    for key, value in more.items():
        record[key] = value.value if isinstance(value, ExecutionState) else value
    return json.dumps(record, separators=(",", ":")) + "\n"
