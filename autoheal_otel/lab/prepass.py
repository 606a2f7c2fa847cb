"""What every candidate's replay of one log shares: computed once, before the candidates run.

Part of what a replay keeps does not depend on the policy replayed, only on the records:

- what each warm restart reads back (:class:`~..analytics._readback.Readback`: the decided
  matches and the step streaks as of the restart), noted from every result and transition
  record in the order the replay feed takes them (acknowledged moves at their ack);
- the rows as the candidates' loop takes them (a gate and its result as one step);
- which writers were met before each session or ack record (what tells a restart from
  another writer's start), and each writer's decision span and whether its sessions shared
  decisions (what the report names as unshared writers).

:func:`prepass` reads the decoded rows once and keeps these; :class:`SharedReadback` then
answers each replayed restart from its copy, so a candidate's replay notes nothing per
record. Invariant: the restarts a candidate's replay meets are the prepass's, in the same
order (whether a session start is a restart depends on the records only), so the k-th
restart of every candidate reads back the prepass's k-th copy, which is what its own
readback would have held.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..analytics._readback import Readback
from ..analytics._replay_report import ReplayReport
from ..analytics._replayer import Replayer
from ..base._models import StepResult
from ..core._machine import Machine
from ..policy._config import PolicyConfig
from ..semconv import EventKind
from .decoded import ASSUMED, GATE, OTHER, RESULT, DecodedLog, Row

__all__ = ["Prepass", "SharedReadback", "prepass"]

#: The records whose feeding may ask whether a session start is a restart.
_ASKING = (EventKind.SESSION.value, EventKind.ACK.value)


class _Recording(Readback):
    """A readback that keeps a copy of itself at each restart that reads it."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: list[Readback] = []

    def streaks(
        self, as_of: datetime, horizon_seconds: float
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """Keep a copy (a restart reads back), then answer as the readback does."""
        self.taken.append(self.copy())
        return super().streaks(as_of, horizon_seconds)


class SharedReadback(Readback):
    """A readback that notes nothing and answers each restart from the prepass's copy."""

    def __init__(self, taken: list[Readback]) -> None:
        super().__init__()
        self._taken = iter(taken)
        self._now: Readback = Readback()

    def result(
        self,
        workflow_id: str,
        step_id: str,
        result: StepResult,
        signals: list[str] | None,
        ts: datetime,
    ) -> None:
        """Nothing to note: the prepass noted it."""

    def transition(self, workflow_id: str, cause: str | None, state: str | None) -> None:
        """Nothing to note: the prepass noted it."""

    def streaks(
        self, as_of: datetime, horizon_seconds: float
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """Answer the next restart (the streaks are read before the samples)."""
        self._now = next(self._taken)
        return self._now.streaks(as_of, horizon_seconds)

    def calibration_samples(self) -> Iterator[tuple[str, float, bool]]:
        """Answer the restart being made."""
        return self._now.calibration_samples()


#: A program step: a gate and, right after it, its step's result (the two rows in one).
PAIR = 4

#: One program step: (code, workflow_id, step_id, the gate's recorded answer, the result's
#: payload, the index of its (first) row in the decoded rows).
Step = tuple[int, Any, Any, Any, Any, int]


def program(rows: list[Row]) -> list[Step]:
    """Return the rows as the candidates' loop takes them: a gate followed by the result of
    the same workflow and step as one :data:`PAIR` step (what a step of the robot is), every
    other row as a step of its own (taken in the same order: the loop does the pair's two
    rows one after the other)."""
    out: list[Step] = []
    append = out.append
    index, n = 0, len(rows)
    while index < n:
        code, _w, _s, wid, step, _ts, _now, payload = rows[index]
        if code == GATE and index + 1 < n:
            after = rows[index + 1]
            if after[0] == RESULT and after[3] == wid and after[4] == step:
                append((PAIR, wid, step, payload, after[7], index))
                index += 2
                continue
        if code == GATE:
            append((GATE, wid, step, payload, None, index))
        else:
            append((code, wid, step, None, payload, index))
        index += 1
    return out


@dataclass
class Prepass:
    """What every candidate's replay of one log shares (see the module docstring)."""

    readbacks: list[Readback] = field(default_factory=list)
    #: By ``id`` of a session or ack record's dict: the writers met up to it (itself too).
    writers: dict[int, frozenset[Any]] = field(default_factory=dict)
    spans: dict[str, list[datetime]] = field(default_factory=dict)
    shared: dict[str, bool] = field(default_factory=dict)
    #: The rows as the candidates' loop takes them (see :func:`program`).
    program: list[Step] = field(default_factory=list)


def prepass(log: DecodedLog) -> Prepass:
    """Read ``log``'s rows once for what every candidate shares.

    Every other record goes through a replay feed of its own (so acknowledged moves,
    sessions and restarts are taken exactly as a candidate's feed takes them); gates and
    results only extend the writers' spans and, for a result, the readback.
    """
    out = Prepass()
    if log.first is None:
        return out
    machine = Machine(PolicyConfig(), "replay", (0.0, log.first))
    feed = Replayer(machine, ReplayReport(what_if=True), log.first, log.last)
    feed.acked = set(log.acked)
    recording = _Recording()
    feed.readback = recording
    writers, spans = feed.writers, feed.spans
    for code, writer, _seq, wid, step, ts, _now, payload in log.rows:
        if code == ASSUMED:
            continue
        if code == OTHER:
            if payload["kind"] in _ASKING:
                out.writers[id(payload)] = frozenset(writers | {payload["writer"]})
            try:
                feed.feed(payload)
            except Exception:  # only the readback matters here, never this machine's state
                continue
            continue
        writers.add(writer)
        span = spans.get(str(writer))  # as Replayer._note_writer notes a gate or result
        if span is None:
            spans[str(writer)] = [ts, ts]
        else:
            span[1] = ts
        if code == RESULT and type(payload) is tuple:
            recording.result(wid, step, payload[0], payload[1], ts)
    out.readbacks = recording.taken
    out.program = program(log.rows)
    out.spans, out.shared = feed.spans, feed.shared
    return out
